import numpy as np
import pytest

from awdlstm.data import corpus as corpus_mod
from awdlstm.data.corpus import load_corpus
from awdlstm.data.lines import read_lines
from awdlstm.errors import AwdlstmError
from tests.conftest import write_corpus

README_COUNTS = {
    "ptb": ((929_589, 73_760, 82_430), 10_000),
    "wikitext-2": ((2_088_628, 217_646, 245_569), 33_278),
    "ptb-char": ((5_017_482, 393_042, 442_423), 50),
}


@pytest.mark.parametrize("name", README_COUNTS)
def test_real_corpus_counts_match_readme(real_data, name):
    c = load_corpus(name, data_dir=real_data, download=False)
    tokens, vocab = README_COUNTS[name]
    assert tuple(c.stats[s].tokens for s in ("train", "valid", "test")) == tokens
    assert tuple(len(c.split(s)) for s in ("train", "valid", "test")) == tokens
    assert len(c.vocab) == vocab
    assert c.level == ("char" if name == "ptb-char" else "word")


def test_lines_eos_and_trailing_fragment(tmp_path):
    # The final "\n " fragment (PTB-char's quirk) is not a line; an empty middle line is.
    (tmp_path / "f.txt").write_text("a b\n\nc\n ")
    assert read_lines(tmp_path / "f.txt") == ["a b", "", "c"]
    folder = write_corpus(tmp_path / "c", "a b\n\nc\n ", "a\n", "b c\n")
    c = load_corpus(str(folder))
    assert c.vocab.decode(c.train) == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]
    assert c.stats["train"].lines == 3


def test_char_tokenizer_and_level(tmp_path):
    folder = write_corpus(tmp_path / "c", "ab a\r\n", "ba\n", "a\n")
    c = load_corpus(str(folder), level="char")
    assert c.level == "char"
    assert c.vocab.decode(c.train) == ["a", "b", " ", "a", "<eos>"]


def test_unk_mapping_and_oov_count(tmp_path):
    folder = write_corpus(tmp_path / "c", "a <unk> b\n", "a zz yy\n", "b\n")
    c = load_corpus(str(folder))
    assert c.stats["valid"].oov == 2
    assert c.vocab.decode(c.valid) == ["a", "<unk>", "<unk>", "<eos>"]


def test_alternative_file_names(tmp_path):
    folder = write_corpus(tmp_path / "w", "a\n", "a\n", "a\n",
                          names=("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"))
    assert load_corpus(str(folder)).stats["train"].tokens == 2
    folder = write_corpus(tmp_path / "p", "a\n", "a\n", "a\n",
                          names=("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))
    assert load_corpus(str(folder)).stats["test"].tokens == 2


def test_second_load_is_served_from_cache(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", "a b a\n", "a\n", "b\n")
    first = load_corpus(str(folder))
    assert first.cache_path.is_dir()

    def fail(*a, **k):
        raise AssertionError("numericalised again despite a valid cache entry")

    monkeypatch.setattr(corpus_mod, "write_entry", fail)
    second = load_corpus(str(folder))
    assert second.vocab == first.vocab
    np.testing.assert_array_equal(second.train, first.train)


def test_changed_file_is_never_served_stale(tmp_path):
    folder = write_corpus(tmp_path / "c", "a b\n", "a\n", "b\n")
    first = load_corpus(str(folder))
    (folder / "train.txt").write_text("a b c\n")
    second = load_corpus(str(folder))
    assert second.cache_path != first.cache_path
    assert "c" in second.vocab and second.stats["train"].tokens == 4


def test_no_partial_cache_on_error(tmp_path):
    from awdlstm.data.paths import cache_root
    folder = write_corpus(tmp_path / "c", "a\n", "", "a\n")  # an empty split
    with pytest.raises(AwdlstmError):
        load_corpus(str(folder))
    tokens = cache_root() / "tokens"
    assert not tokens.exists() or not any(tokens.iterdir())


def test_words_the_training_split_lacks_read_as_an_added_unk(tmp_path):
    """Ordinary text: valid and test hold words that training never saw, and the corpus has
    no <unk>. They read as <unk>, added to the vocabulary (last: it stands for no training token)."""
    folder = write_corpus(tmp_path / "c", "the cat sat\nthe dog\n", "the bird sat\n", "a cat\n")
    c = load_corpus(str(folder))
    assert c.vocab.itos == ["the", "<eos>", "cat", "sat", "dog", "<unk>"]
    assert c.vocab.decode(c.valid) == ["the", "<unk>", "sat", "<eos>"]
    assert (c.stats["train"].oov, c.stats["valid"].oov, c.stats["test"].oov) == (0, 1, 1)


def test_max_vocab_and_min_freq_keep_the_most_frequent_words(tmp_path):
    train = "a a a a b b b c c d\n" * 1
    folder = write_corpus(tmp_path / "c", train, "a b c d e\n", "d\n")
    c = load_corpus(str(folder), max_vocab=4)  # a, b, <eos> ... and <unk> for c, d: 4 entries
    assert c.vocab.itos == ["a", "b", "<unk>", "<eos>"]  # <unk> counts c, c, d: 3, tied with b, after it
    assert c.vocab.decode(c.train) == ["a"] * 4 + ["b"] * 3 + ["<unk>"] * 3 + ["<eos>"]
    assert (c.stats["train"].oov, c.stats["valid"].oov, c.stats["test"].oov) == (3, 3, 1)
    f = load_corpus(str(folder), min_freq=2)
    assert f.vocab.itos == ["a", "b", "c", "<unk>", "<eos>"]  # d (once) reads as <unk>; <eos> always stays
    assert f.cache_path != c.cache_path != load_corpus(str(folder)).cache_path  # the cut is part of the key


def test_a_cap_below_the_specials_is_a_one_line_error(tmp_path):
    folder = write_corpus(tmp_path / "c", "a b\n", "a\n", "b\n")
    with pytest.raises(AwdlstmError, match="data.max_vocab=1"):
        load_corpus(str(folder), max_vocab=1)
