"""Rescoring re-ranks an n-best list as computed by hand."""

import pytest

import awdlstm
from awdlstm.cli import main
from awdlstm.errors import AwdlstmError
from awdlstm.inference.rescore import parse_nbest
from tests.conftest import make_model_folder
from tests.test_cli_data import assert_one_line_error

NBEST = """# utterance<TAB>first-pass score<TAB>hypothesis
u1\t-10.0\tthe company said it would buy shares
u1\t-9.5\tthe company said it would by shares
u1\t-9.8\ta company sad it would buy shares
u2\t-4.0\tthe bank
u2\t-4.2\tthe bank said
"""


def test_rescore_by_hand(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m")
    lm = awdlstm.load(folder)
    (tmp_path / "nbest.tsv").write_text(NBEST)
    for scale, bonus in ((1.0, 0.0), (0.3, 2.0)):
        assert main(["rescore", str(folder), str(tmp_path / "nbest.tsv"), "--lm-scale", str(scale),
                     "--word-bonus", str(bonus), "--out", str(tmp_path / "out.tsv")]) == 0
        rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text().splitlines()[1:]]
        expected = {}
        for line in NBEST.splitlines()[1:]:
            utt, first, text = line.split("\t")
            total = float(first) + scale * lm.score([text])[0].total + bonus * len(text.split())
            expected.setdefault(utt, []).append((total, text))
        for utt in expected:
            expected[utt].sort(key=lambda p: -p[0])
        assert [r[0] for r in rows] == ["u1"] * 3 + ["u2"] * 2
        for utt, hyps in expected.items():
            mine = [r for r in rows if r[0] == utt]
            assert [r[6] for r in mine] == [t for _, t in hyps]
            assert [r[1] for r in mine] == [str(i) for i in range(1, len(hyps) + 1)]
            assert [float(r[2]) for r in mine] == pytest.approx([s for s, _ in hyps], abs=1e-3)


def test_bad_nbest_lines():
    with pytest.raises(AwdlstmError, match="line 2: expected 3 tab-separated fields"):
        parse_nbest(["u1\t-1\ta", "u1 -1 a b"], "f")
    with pytest.raises(AwdlstmError, match="line 1: first-pass score 'x'"):
        parse_nbest(["u1\tx\ta"], "f")
    with pytest.raises(AwdlstmError, match="no hypotheses"):
        parse_nbest(["# only a comment", ""], "f")


def test_rescore_cli_error(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m")
    (tmp_path / "bad.tsv").write_text("u1\tnot-a-number\ttext\n")
    code = main(["rescore", str(folder), str(tmp_path / "bad.tsv")])
    assert_one_line_error(code, capsys.readouterr().err, "bad.tsv line 1")
