"""Subword units: SentencePiece bpe / unigram trained on the training split, or a given
SentencePiece .model or Hugging Face tokenizer.json, used as they are; bad files are one line."""

import numpy as np
import pytest

from awdlstm.cli import main
from awdlstm.data.corpus import load_corpus
from awdlstm.data.tokenizers import SplitTokenizer, from_meta
from awdlstm.data.tokenizers.subword import UNKNOWN
from awdlstm.data.vocab import EOS, UNK
from awdlstm.errors import AwdlstmError
from tests.conftest import write_corpus
from tests.test_cli_data import assert_one_line_error

WORDS = ["alpha", "beta", "gamma", "delta", "alphabet", "betamax", "gammaray", "deltaforce", "the", "of"]


def text(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return "".join(" ".join(rng.choice(WORDS, 6)) + "\n" for _ in range(n))


@pytest.fixture
def folder(tmp_path):
    return write_corpus(tmp_path / "c", text(300, 0) + "an <unk> here\n", text(20, 1), text(20, 2))


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_a_trained_model_round_trips_the_text_and_is_served_from_the_cache(folder, kind):
    c = load_corpus(str(folder), tokenizer=kind, vocab_size=30, progress=False)  # fewer pieces than words
    tok = c.tokenizer
    assert tok.kind == kind and c.level == "word" and c.vocab.itos == tok.vocabulary()
    assert c.vocab.itos[:3] == [UNKNOWN, EOS, UNK] and c.train.dtype == np.uint16
    assert tok.decode(c.vocab.decode(c.valid)) == text(20, 1)  # <eos> ends each line
    assert tok.tokens("an <unk> here").count(UNK) == 1  # the corpus's own <unk> is one piece
    st = c.stats["valid"]
    assert (st.lines, st.words, st.chars) == (20, 20 * 7, len(text(20, 1))) and st.tokens >= st.words
    again = load_corpus(str(folder), tokenizer=kind, vocab_size=30, progress=False)
    assert again.tokenizer == tok and again.cache_path == c.cache_path
    # Rebuilt from what a checkpoint stores (JSON only), it reads text the same way.
    rebuilt = from_meta(tok.meta(), "word", "ckpt")
    assert rebuilt == tok and rebuilt.tokens("gammaray of the deltaforce") == tok.tokens("gammaray of the deltaforce")
    # A character the model cannot spell is its unknown piece, and says what it was.
    written, entries = tok.spell("alpha \u20ac beta")
    assert UNKNOWN in entries and "\u20ac" in written


def test_a_checkpoints_tokenizer_reads_a_corpus_as_it_was_trained(folder, tmp_path):
    c = load_corpus(str(folder), tokenizer="bpe", vocab_size=50, progress=False)
    other = write_corpus(tmp_path / "o", text(100, 5), text(10, 6), text(10, 7))
    fixed = load_corpus(str(other), tokenizer="bpe", vocab_size=50, fixed=c.tokenizer, progress=False)
    assert fixed.tokenizer == c.tokenizer and fixed.vocab == c.vocab
    own = load_corpus(str(other), tokenizer="bpe", vocab_size=50, progress=False)
    assert own.tokenizer != c.tokenizer  # trained on other text: other units
    assert load_corpus(str(other), tokenizer="bpe", vocab_size=50, fixed=c.tokenizer,
                       progress=False).cache_path == fixed.cache_path


def test_a_sentencepiece_model_file_is_used_as_it_is(folder, tmp_path):
    import base64
    trained = load_corpus(str(folder), tokenizer="unigram", vocab_size=40, progress=False).tokenizer
    path = tmp_path / "asr.model"
    path.write_bytes(base64.b64decode(trained.meta()["tokenizer_model"]["model"]))
    c = load_corpus(str(folder), tokenizer_model=str(path), progress=False)
    assert c.tokenizer.kind == "model" and c.vocab.itos == trained.vocabulary()
    assert c.tokenizer.meta()["tokenizer_model"]["source"] == "asr.model"


def test_a_hugging_face_tokenizer_json_without_an_eos_gets_one_appended(folder, tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    hf = Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer, hf.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    hf.train_from_iterator(text(200, 3).splitlines(), trainers.BpeTrainer(vocab_size=50, special_tokens=["[UNK]"],
                                                                          show_progress=False))
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    c = load_corpus(str(folder), tokenizer_model=str(path), progress=False)
    n = hf.get_vocab_size()
    assert len(c.vocab) == n + 1 and c.vocab.itos[-1] == EOS and c.vocab.itos[0] == UNK
    assert c.tokenizer.decode(c.vocab.decode(c.valid)) == text(20, 1)
    assert from_meta(c.tokenizer.meta(), "word", "x") == c.tokenizer


@pytest.mark.parametrize("args, needle", [
    (["--tokenizer-model", "{d}/missing.model"], "missing.model: no such tokenizer file"),
    (["--tokenizer-model", "{d}/bad.model"], "bad.model: not a SentencePiece model that loads"),
    (["--tokenizer-model", "{d}/tokenizer.json"], "tokenizer.json: not a tokenizer.json that loads"),
    (["--tokenizer-model", "{d}/units.txt"], "units.txt: data.tokenizer_model takes a SentencePiece .model"),
    (["--tokenizer", "bpe"], "give data.vocab_size"),
    (["--tokenizer", "split", "--vocab-size", "100"], "data.vocab_size=100 acts only with"),
    (["--tokenizer", "bpe", "--vocab-size", "100", "--max-vocab", "50"], "data.max_vocab / data.min_freq"),
    (["--tokenizer", "bpe", "--vocab-size", "100", "--level", "char"], "its level is 'word'"),
])
def test_bad_tokenizer_settings_and_files_are_one_line_errors(folder, tmp_path, capsys, args, needle):
    (tmp_path / "bad.model").write_bytes(b"\x08\x01garbage")
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    (tmp_path / "units.txt").write_text("a\nb\n")
    code = main(["data", str(folder)] + [a.format(d=tmp_path) for a in args])
    assert_one_line_error(code, capsys.readouterr().err, needle)


def test_a_corpus_too_small_for_the_pieces_trains_what_it_supports(tmp_path):
    folder = write_corpus(tmp_path / "s", "ab ab ba\n" * 5, "ab\n", "ba\n")
    c = load_corpus(str(folder), tokenizer="bpe", vocab_size=500, progress=False)
    assert 3 < len(c.vocab) < 500


def test_data_reports_words_and_characters_beside_the_tokens(folder, capsys):
    assert main(["data", str(folder), "--tokenizer", "unigram", "--vocab-size", "40"]) == 0
    out = capsys.readouterr().out
    assert "words" in out and "chars" in out and "unigram tokenizer" in out


def test_the_split_tokenizer_of_a_character_corpus_spells_word_boundaries():
    tok = SplitTokenizer("char")
    assert tok.tokens("ab c") == ["a", "b", "_", "c"] and tok.token_text("_") == " "
    with pytest.raises(AwdlstmError):
        from_meta({"tokenizer": "bpe"}, "word", "ckpt")  # a subword kind without its model


def each_kind(folder, tmp_path):
    """A tokenizer of each kind: trained bpe and unigram, a SentencePiece file, a tokenizer.json."""
    import base64

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    bpe = load_corpus(str(folder), tokenizer="bpe", vocab_size=40, progress=False).tokenizer
    unigram = load_corpus(str(folder), tokenizer="unigram", vocab_size=40, progress=False).tokenizer
    (tmp_path / "units.model").write_bytes(base64.b64decode(unigram.meta()["tokenizer_model"]["model"]))
    hf = Tokenizer(models.BPE(unk_token="<unk>"))
    hf.pre_tokenizer, hf.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    hf.train_from_iterator(text(200, 3).splitlines(), trainers.BpeTrainer(vocab_size=50, special_tokens=["<unk>"],
                                                                          show_progress=False))
    hf.save(str(tmp_path / "tokenizer.json"))
    return {"bpe": bpe, "unigram": unigram,
            "sentencepiece file": load_corpus(str(folder), tokenizer_model=str(tmp_path / "units.model"),
                                              progress=False).tokenizer,
            "tokenizer.json": load_corpus(str(folder), tokenizer_model=str(tmp_path / "tokenizer.json"),
                                          progress=False).tokenizer}


def test_each_kind_round_trips_text_through_a_model_folder_and_serves(folder, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from awdlstm import load
    from awdlstm.serve.app import create_app
    from tests.conftest import make_model_folder
    line = "the alphabet of gammaray betamax"
    for name, tok in each_kind(folder, tmp_path).items():
        model = make_model_folder(tmp_path / "models" / name.replace(" ", "-"), tokenizer=tok)
        lm = load(model)
        assert lm.tokenizer == tok, name
        assert lm.tokenizer.decode(lm.tokenizer.tokens(line)) == line, name
        with TestClient(create_app(lm)) as client:
            r = client.post("/score", json={"texts": [line, "alpha \u20ac beta"]})
            assert r.status_code == 200, (name, r.text)
            rows = r.json()["results"]
            assert [t["token"] for t in rows[0]["tokens"]][:-1] == lm.tokens(line)
            if name != "tokenizer.json":  # its BPE spells what it can; '€' is its <unk>
                assert rows[1]["unk"] == ["\u20ac"], name
