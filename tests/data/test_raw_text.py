"""Raw text as it comes: a single file or a folder of text split by fractions, JSON lines,
a byte-order mark and CRLF line ends; bad files are one-line errors naming them."""

import json

import pytest

from awdlstm.cli import main
from awdlstm.data.corpus import load_corpus
from awdlstm.errors import AwdlstmError
from tests.test_cli_data import assert_one_line_error

LINES = [f"w{i % 7} v{i % 5} u{i % 3}" for i in range(100)]  # every word seen in the first 70 lines


def test_a_single_file_splits_contiguously_by_the_fractions(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    c = load_corpus(str(path), valid_fraction=0.1, test_fraction=0.2)
    assert (c.stats["train"].lines, c.stats["valid"].lines, c.stats["test"].lines) == (70, 10, 20)
    assert c.vocab.decode(c.valid)[:4] == LINES[70].split() + ["<eos>"]  # the lines after the training ones
    assert c.vocab.decode(c.test)[-4:] == LINES[99].split() + ["<eos>"]
    again = load_corpus(str(path), valid_fraction=0.1, test_fraction=0.2)
    assert (again.train == c.train).all() and again.cache_path == c.cache_path  # deterministic, cached
    assert load_corpus(str(path)).cache_path != c.cache_path  # other fractions, another entry


def test_a_folder_of_text_files_is_one_stream_in_name_order(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.txt").write_text("\n".join(LINES[50:]) + "\n")
    (folder / "a.txt").write_text("\n".join(LINES[:50]) + "\n")
    (folder / "notes.md").write_text("not read\n")
    c = load_corpus(str(folder), valid_fraction=0.1, test_fraction=0.1)
    assert sum(c.stats[s].lines for s in ("train", "valid", "test")) == 100
    assert c.vocab.decode(c.train)[:4] == LINES[0].split() + ["<eos>"]


def test_json_lines_read_the_text_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "body": f"{LINES[i]}\n{LINES[i + 1]}"}) for i in range(0, 100, 2))
                    + "\n\n")
    c = load_corpus(str(path), text_field="body")
    assert sum(c.stats[s].lines for s in ("train", "valid", "test")) == 100
    with pytest.raises(AwdlstmError, match="docs.jsonl:1: no string field 'text'"):
        load_corpus(str(path), use_cache=False)


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_plain_text(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(LINES).encode() + b"\r\n")
    c = load_corpus(str(path))
    assert c.vocab.decode(c.train)[:4] == LINES[0].split() + ["<eos>"]
    assert not any("\ufeff" in t or "\r" in t for t in c.vocab.itos)
    chars = load_corpus(str(path), level="char")
    assert "\r" not in chars.vocab and "\ufeff" not in chars.vocab


@pytest.mark.parametrize("content, needle", [
    (b"\x00\x01\x02binary", "binary file"),
    (b"caf\xe9\n" * 40, "not UTF-8"),
    (b"one line\n", "cannot make train, valid and test splits"),
])
def test_bad_raw_text_is_a_one_line_error_naming_the_file(tmp_path, capsys, content, needle):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    code = main(["data", str(path)])
    assert_one_line_error(code, capsys.readouterr().err, "bad.txt", needle)


def test_a_bad_json_line_and_fractions_on_a_split_folder_are_one_line_errors(tmp_path, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a b"}\n[1, 2]\n')
    assert_one_line_error(main(["data", str(path)]), capsys.readouterr().err, "docs.jsonl:2", "text")
    path.write_text('{"text": "a b"}\n{"text": \n')
    assert_one_line_error(main(["data", str(path)]), capsys.readouterr().err, "docs.jsonl:2", "not a JSON object")
    from tests.conftest import write_corpus
    folder = write_corpus(tmp_path / "c", "a\n", "a\n", "a\n")
    assert_one_line_error(main(["data", str(folder), "--valid-fraction", "0.2"]), capsys.readouterr().err,
                          "valid_fraction", "own train, valid and test files")
    assert_one_line_error(main(["data", str(folder), "--valid-fraction", "0.6", "--test-fraction", "0.5"]),
                          capsys.readouterr().err, "sum must be below 1")
