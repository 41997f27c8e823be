"""score --per-token: rows that add up to the sentence log-probability, from a file or stdin."""

import io
import json
import math

from awdlstm.cli import main
from tests.conftest import make_model_folder
from tests.test_cli_data import assert_one_line_error

TEXT = "the company said it would buy shares\nthe zebra said\n\na bank\n"


def sentence_logprobs(out):
    return [float(line.split("logprob")[1].split()[0]) for line in out.splitlines() if not line.startswith("total")]


def test_per_token_rows_add_up(tmp_path, capsys, monkeypatch):
    folder = make_model_folder(tmp_path / "m")
    (tmp_path / "s.txt").write_text(TEXT)
    assert main(["score", str(folder), str(tmp_path / "s.txt")]) == 0
    totals = sentence_logprobs(capsys.readouterr().out)
    assert main(["score", str(folder), str(tmp_path / "s.txt"), "--per-token", "--batch-size", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["sentence_id", "token_index", "token", "scored_as", "surprisal_bits"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[2] for r in rows if r[0] == "2"] == ["the", "zebra", "said", "<eos>"]
    assert [r[3] for r in rows if r[0] == "2"] == ["the", "<unk>", "said", "<eos>"]  # reported, not dropped
    assert [r[2] for r in rows if r[0] == "3"] == ["<eos>"]  # an empty line is one <eos>
    for i, total in enumerate(totals, start=1):
        bits = sum(float(r[4]) for r in rows if r[0] == str(i))
        assert abs(-bits * math.log(2) - total) < 2e-3  # score prints 3 decimals
        assert [int(r[1]) for r in rows if r[0] == str(i)] == list(range(len([r for r in rows if r[0] == str(i)])))
    # The same from standard input, as JSON lines.
    monkeypatch.setattr("sys.stdin", io.StringIO(TEXT))
    assert main(["score", str(folder), "-", "--per-token", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(rows)
    assert all(abs(a["surprisal_bits"] - float(b[4])) < 1e-5 and a["token"] == b[2] for a, b in zip(records, rows))
    assert set(records[0]) == {"sentence_id", "token_index", "token", "scored_as", "surprisal_bits"}


def test_a_vocabulary_without_unk_is_a_clear_error(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m", vocab=["<eos>", "the", "bank"])
    (tmp_path / "s.txt").write_text("the zebra\n")
    code = main(["score", str(folder), str(tmp_path / "s.txt"), "--per-token"])
    assert_one_line_error(code, capsys.readouterr().err, "line 1", "'zebra'", "no <unk>")


def test_the_line_rows_name_the_words_scored_as_unk(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m")
    (tmp_path / "s.txt").write_text("the zebra said it\nthe bank\n")
    assert main(["score", str(folder), str(tmp_path / "s.txt"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["lines"]
    assert rows[0]["unk"] == ["zebra"] and rows[1]["unk"] == []
    assert main(["score", str(folder), str(tmp_path / "s.txt")]) == 0
    assert "(as <unk>: zebra)" in capsys.readouterr().out
