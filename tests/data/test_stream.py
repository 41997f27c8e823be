"""The streaming loader reads, block by block, exactly what the list-based rule reads: each
line's tokens then <eos>, the vocabulary of the training counts (vocab.py), whatever the
block size and however the blocks fall across lines, files and splits."""

import json

import numpy as np
import pytest

from awdlstm.data import stream
from awdlstm.data.corpus import load_corpus
from awdlstm.data.vocab import EOS, Vocabulary
from awdlstm.errors import AwdlstmError
from tests.conftest import write_corpus


def reference(texts: dict[str, str], chars: bool = False):
    """The rule written out on whole strings: lines split at \\n, a final blank fragment
    dropped, a trailing \\r removed; tokens then <eos>; vocabulary from the training counts."""
    tokens = {}
    for split, text in texts.items():
        lines = text.split("\n")
        if lines and not lines[-1].strip():
            lines.pop()
        tokens[split] = [t for line in lines for t in ([*line.rstrip("\r")] if chars else line.split()) + [EOS]]
    vocab = Vocabulary.build_open(tokens["train"], (tokens["valid"], tokens["test"]))
    return vocab, {s: vocab.encode(t) for s, t in tokens.items()}


TEXTS = {"train": "the cat sat\n\nthe dog  ran far\r\nand the cat\n a\n",
         "valid": "the bird sat\nzebra\n", "test": "dog cat\nthe end \n "}


@pytest.mark.parametrize("block", [7, 16, 1 << 22])
@pytest.mark.parametrize("chars", [False, True])
def test_any_block_size_reads_what_the_whole_text_rule_reads(tmp_path, monkeypatch, block, chars):
    monkeypatch.setattr(stream, "BLOCK_BYTES", block)
    folder = write_corpus(tmp_path / "c", TEXTS["train"], TEXTS["valid"], TEXTS["test"])
    vocab, ids = reference(TEXTS, chars)
    c = load_corpus(str(folder), level="char" if chars else None, use_cache=False)
    assert c.vocab.itos == vocab.itos
    for split in ids:
        np.testing.assert_array_equal(c.split(split), ids[split])
        assert c.stats[split].tokens == len(ids[split])


def test_raw_text_split_across_blocks_and_files_keeps_the_line_counts(tmp_path, monkeypatch):
    lines = [f"w{i % 11} v{i % 7} u{i}" for i in range(60)]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(lines[:24]) + "\n")
    (folder / "b.jsonl").write_text("\n".join(json.dumps({"text": f"{lines[i]}\n{lines[i + 1]}"})
                                              for i in range(24, 60, 2)) + "\n")
    whole = load_corpus(str(folder), valid_fraction=0.2, test_fraction=0.1, use_cache=False)
    monkeypatch.setattr(stream, "BLOCK_BYTES", 9)  # blocks of a line or two: every cut lands inside one
    small = load_corpus(str(folder), valid_fraction=0.2, test_fraction=0.1, use_cache=False)
    assert [small.stats[s].lines for s in ("train", "valid", "test")] == [42, 12, 6]
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(small.split(split), whole.split(split))
    assert small.vocab.decode(small.valid)[:4] == lines[42].split()[:2] + ["<unk>", EOS]  # u42: not in training


def test_a_line_longer_than_two_blocks_is_cut_at_a_space(tmp_path, monkeypatch):
    """text8 is one line of 10^8 characters: it is read in blocks, not whole."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 64)
    text = " ".join(f"word{i % 13}" for i in range(400))  # ~2,900 characters, no newline
    path = tmp_path / "one.txt"
    path.write_text(text)
    blocks = list(stream.text_file_blocks(path))
    assert len(blocks) > 10 and max(map(len, blocks)) < 4 * 64
    assert "".join(blocks) == text + "\n" and all(b.endswith((" ", "\n")) for b in blocks)
    folder = write_corpus(tmp_path / "c", text, "word1 word2", "word3")
    for level in ("word", "char"):
        vocab, ids = reference({"train": text, "valid": "word1 word2", "test": "word3"}, level == "char")
        np.testing.assert_array_equal(load_corpus(str(folder), level=level, use_cache=False).train, ids["train"])


def test_a_bad_byte_in_a_later_block_names_its_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_BYTES", 8)
    path = tmp_path / "t.txt"
    path.write_bytes(b"abc def\nghi jkl\nmn\xff op\n")
    with pytest.raises(AwdlstmError, match=r"t.txt: not UTF-8 text \(byte 0xff at offset 18\)"):
        list(stream.text_file_blocks(path))
    path.write_bytes(b"abc def\nghi jkl\nmn\x00 op\n")
    with pytest.raises(AwdlstmError, match="t.txt: a binary file"):
        list(stream.text_file_blocks(path))
