"""Every bad data input through the CLI: one line, exit status 2, no traceback."""

import subprocess
import sys

import pytest

from awdlstm.cli import main
from tests.conftest import write_corpus


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("awdlstm: error:")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_missing_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "nope", "no such corpus folder", "train.txt")


def test_missing_split(capsys, tmp_path):
    folder = write_corpus(tmp_path / "c", "a\n", "a\n", "a\n")
    (folder / "valid.txt").unlink()
    code, _, err = run_cli(capsys, "data", str(folder))
    assert_one_line_error(code, err, "no valid split", "valid.txt")


def test_empty_split(capsys, tmp_path):
    folder = write_corpus(tmp_path / "c", "a\n", "", "a\n")
    code, _, err = run_cli(capsys, "data", str(folder))
    assert_one_line_error(code, err, "valid.txt", "empty")


def test_not_utf8(capsys, tmp_path):
    folder = write_corpus(tmp_path / "c", "a\n", "a\n", "a\n")
    (folder / "train.txt").write_bytes(b"a \xff b\n")
    code, _, err = run_cli(capsys, "data", str(folder))
    assert_one_line_error(code, err, "train.txt", "not UTF-8", "0xff")


def test_unseen_token_without_unk_reads_as_an_added_unk_and_is_reported(capsys, tmp_path):
    """Ordinary text (issue 24): a test word the training split lacks no longer stops the
    load; it reads as <unk>, and `awdlstm data` reports the OOV count and rate per split."""
    folder = write_corpus(tmp_path / "c", "a b\n", "a b\n", "a qqq\n")
    code, out, err = run_cli(capsys, "data", str(folder))
    assert code == 0, err
    test_row = next(line for line in out.splitlines() if line.startswith("test"))
    assert test_row.split()[-2:] == ["1", "33.33%"] and "<unk> present" in out
    code, out, _ = run_cli(capsys, "data", str(folder), "--max-vocab", "3")
    assert code == 0 and "vocabulary 3 " in out


def test_unknown_corpus_name(capsys):
    code, _, err = run_cli(capsys, "data", "ptb3")
    assert_one_line_error(code, err, "'ptb3'", "ptb", "wikitext-2")


def test_summary_output(capsys, tmp_path):
    folder = write_corpus(tmp_path / "c", "a b\nb <unk>\n", "a\n", "b zz\n")
    code, out, _ = run_cli(capsys, "data", str(folder))
    assert code == 0
    assert "train" in out and "vocabulary 4" in out and "cache " in out and "<unk> present" in out


def test_synthetic_command_writes_folder_and_reports_entropy(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "data", "synthetic", "--out", str(tmp_path / "s"), "--train-lines", "100")
    assert code == 0 and "entropy" in out
    assert (tmp_path / "s" / "train.txt").read_text().count("\n") == 100


def test_real_entry_point_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "awdlstm.cli", "data", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["ptb", "wikitext-2", "ptb-char"])
def test_real_corpus_summary(real_data, capsys, name):
    code, out, _ = run_cli(capsys, "data", name, "--data-dir", str(real_data), "--no-download")
    assert code == 0
    expected = {"ptb": "929,589", "wikitext-2": "2,088,628", "ptb-char": "5,017,482"}[name]
    assert expected in out
