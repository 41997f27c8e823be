"""eval --cache / --dynamic (separately and together) and tune-cache through the CLI."""

import hashlib

import pytest

from awdlstm.cli import main
from tests.test_cli_data import assert_one_line_error


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def value(out, marker):
    line = [l for l in out.splitlines() if marker in l][-1]
    return float(line.rsplit("ppl ", 1)[1])


def test_cache_and_dynamic_on_a_checkpoint(tiny_run, capsys):
    run_dir, _ = tiny_run
    before = digest(run_dir / "best.safetensors")
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--cache", "--lambda", "0")
    assert code == 0, err
    assert abs(value(out, "static:") - value(out, "+ cache")) < 1e-6  # lambda 0: the model itself
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--dynamic", "--lr", "0", "--decay", "0")
    assert code == 0, err
    static_code, static_out, _ = cli(capsys, "eval", str(run_dir), "--split", "valid", "--batch-size", "1")
    assert abs(value(out, "dynamic") - float(static_out.split("ppl ")[1].split()[0])) < 1e-3
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--dynamic", "--cache",
                         "--rule", "sgd", "--lr", "0.01", "--window", "50", "--theta", "0.5", "--lambda", "0.05")
    assert code == 0, err
    assert "dynamic (sgd" in out and "+ cache (window 50" in out
    assert digest(run_dir / "best.safetensors") == before  # the checkpoint is never modified


def test_tune_cache_prints_the_best(tiny_run, capsys):
    run_dir, _ = tiny_run
    code, out, err = cli(capsys, "tune-cache", str(run_dir), "--windows", "20", "100")
    assert code == 0, err
    assert "best: --window" in out


def test_bad_cache_options(tiny_run, capsys):
    run_dir, _ = tiny_run
    code, _, err = cli(capsys, "eval", str(run_dir), "--cache", "--lambda", "1.5")
    assert_one_line_error(code, err, "lambda")
    code, _, err = cli(capsys, "eval", str(run_dir), "--dynamic", "--batch-size", "10")
    assert_one_line_error(code, err, "batch 1")


HEADS = {
    "adaptive": ["--set", "train.epochs=2", "--set", "model.head=adaptive", "--set", "model.adaptive_cutoffs=[8,20]"],
    "mos": ["--set", "train.epochs=1", "--set", "model.head=mos", "--set", "model.mos_experts=3",
            "--set", "model.dropout_latent=0.1"],
    "mogrifier": ["--set", "train.epochs=1", "--set", "model.cell=mogrifier", "--set", "model.mogrifier_rounds=3"],
}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_evaluation_works_with_the_other_heads_and_the_mogrifier(head, capsys, tmp_path):
    """The adaptive and MoS heads' log-probabilities and the Mogrifier cell's states feed
    the cache, dynamic evaluation, scoring and generation; lambda 0 and lr 0 give back the
    static figure."""
    run_dir = tmp_path / head
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--out", str(run_dir), *HEADS[head])
    assert code == 0, err
    code, static_out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--batch-size", "1")
    assert code == 0, err
    static = float(static_out.split("ppl ")[1].split()[0])
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--cache", "--lambda", "0")
    assert code == 0, err
    assert abs(value(out, "+ cache") - static) < 1e-3
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "valid", "--dynamic", "--lr", "0", "--decay", "0")
    assert code == 0, err
    assert abs(value(out, "dynamic") - static) < 1e-3
    code, out, err = cli(capsys, "generate", str(run_dir), "--tokens", "12", "--seed", "3")
    assert code == 0 and out.strip(), err
    (tmp_path / "lines.txt").write_text("a1 w3 w7 z1\n")
    code, out, err = cli(capsys, "score", str(run_dir), str(tmp_path / "lines.txt"))
    assert code == 0 and "ppl" in out, err
