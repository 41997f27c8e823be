"""train -> eval -> generate -> score through the CLI, and every bad input of the main job."""

import json
import math

import pytest

from awdlstm.cli import main
from awdlstm.data import SyntheticSpec, write_synthetic
from tests.test_cli_data import assert_one_line_error


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip_eval_generate_score(tiny_run, capsys, tmp_path, monkeypatch):
    run_dir, results = tiny_run
    monkeypatch.setenv("AWDLSTM_CACHE", str(run_dir.parent.parent / "session-cache0"))
    for name in ("best.safetensors", "last.safetensors", "metrics.jsonl", "curve.png", "results.json"):
        assert (run_dir / name).is_file(), name
    code, out, err = cli(capsys, "eval", str(run_dir), "--split", "test", "--batch-size", "10")
    assert code == 0, err
    ppl = float(out.split("ppl ")[1].split()[0])
    assert math.isclose(math.log(ppl), results["test_loss"], rel_tol=0.02)
    code, out, err = cli(capsys, "eval", str(run_dir / "best.safetensors"), "--split", "valid")
    assert code == 0 and "valid: loss" in out
    code, out, err = cli(capsys, "generate", str(run_dir), "--tokens", "40", "--prompt", "a3 w1", "--seed", "3",
                         "--top-k", "10", "--top-p", "0.9", "--temperature", "0.8")
    assert code == 0, err
    words = out.split()
    assert words[:2] == ["a3", "w1"] and len(words) >= 30
    code2, out2, _ = cli(capsys, "generate", str(run_dir), "--tokens", "40", "--prompt", "a3 w1", "--seed", "3",
                         "--top-k", "10", "--top-p", "0.9", "--temperature", "0.8")
    assert out2 == out  # the seed makes it reproducible
    (tmp_path / "s.txt").write_text("a1 w2 w3 z1\na1 w2 w3 z5\n")
    code, out, err = cli(capsys, "score", str(run_dir), str(tmp_path / "s.txt"), "--json")
    assert code == 0, err
    scored = json.loads(out)
    good, bad = scored["lines"]
    assert good["tokens"] == 5 and good["logprob"] > bad["logprob"]  # the matching closer is likelier
    assert scored["total"]["tokens"] == 10


def test_unknown_preset(capsys):
    code, _, err = cli(capsys, "train", "--preset", "nope")
    assert_one_line_error(code, err, "'nope'", "cpu-ptb", "tiny")


@pytest.mark.parametrize("setting,fragments", [
    ("model.colour=red", ("model.colour", "unknown config key")),
    ("colour=red", ("colour", "unknown config key")),
    ("model.dropout_emb=1.5", ("model.dropout_emb", "[0, 1)")),
    ("model.hidden_size=0", ("model.hidden_size", "positive")),
    ("train.bptt=0", ("train.bptt", "positive")),
    ("train.lr=-1", ("train.lr", "positive")),
    ("train.optimizer=lbfgs", ("train.optimizer", "sgd")),
    ("train.epochs=two", ("train.epochs", "int")),
    ("novalue", ("key=value",)),
])
def test_bad_config_values(capsys, tmp_path, setting, fragments):
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--set", setting, "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "r").exists()


def test_existing_run_is_never_overwritten(tiny_run, capsys):
    run_dir, _ = tiny_run
    before = (run_dir / "best.safetensors").read_bytes()
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--out", str(run_dir))
    assert_one_line_error(code, err, str(run_dir), "--resume")
    assert (run_dir / "best.safetensors").read_bytes() == before


def test_corrupt_and_truncated_checkpoints(tiny_run, capsys, tmp_path):
    run_dir, _ = tiny_run
    data = (run_dir / "best.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    code, _, err = cli(capsys, "eval", str(tmp_path / "cut.safetensors"))
    assert_one_line_error(code, err, "cut.safetensors", "truncated or corrupt")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    code, _, err = cli(capsys, "generate", str(tmp_path / "junk.safetensors"))
    assert_one_line_error(code, err, "junk.safetensors")
    code, _, err = cli(capsys, "eval", str(tmp_path / "none.safetensors"))
    assert_one_line_error(code, err, "none.safetensors")


def test_vocabulary_mismatch(capsys, tmp_path):
    folder = tmp_path / "corpus"
    write_synthetic(SyntheticSpec(train_lines=150, eval_lines=20), folder)
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--corpus", str(folder), "--set", "train.epochs=1",
                       "--out", str(run_dir))
    assert code == 0, err
    (folder / "train.txt").write_text((folder / "train.txt").read_text() + "a1 newword z1\n")
    before = sorted(p.name for p in run_dir.iterdir())
    code, _, err = cli(capsys, "eval", str(run_dir))
    assert_one_line_error(code, err, "vocabulary", "does not match")
    code, _, err = cli(capsys, "train", "--resume", str(run_dir))
    assert_one_line_error(code, err, "vocabulary", "does not match")
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_bad_sampling_options(tiny_run, capsys):
    run_dir, _ = tiny_run
    code, _, err = cli(capsys, "generate", str(run_dir), "--top-p", "1.5")
    assert_one_line_error(code, err, "--top-p")
    code, _, err = cli(capsys, "generate", str(run_dir), "--prompt", "unknownword")
    assert_one_line_error(code, err, "'unknownword'")


def test_resume_of_missing_run(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "--resume", str(tmp_path / "nothing"))
    assert_one_line_error(code, err, "nothing", "last.safetensors")


def test_ordinary_text_with_unseen_words_and_a_capped_vocabulary_trains_and_evaluates(tmp_path, capsys):
    """Text nobody reduced to a closed vocabulary: valid and test hold words training never
    saw. With data.max_vocab the rarer words read as <unk> too; eval rebuilds the same vocabulary."""
    import random

    from awdlstm.checkpoints.checkpoint import load_checkpoint
    from awdlstm.cli import main
    from tests.conftest import write_corpus
    rng = random.Random(0)
    words = [f"w{i}" for i in range(60)]
    line = lambda: " ".join(rng.choice(words[: 10 + rng.randrange(50)]) for _ in range(8))  # noqa: E731
    folder = write_corpus(tmp_path / "text", "\n".join(line() for _ in range(300)) + "\n",
                          "\n".join(line() for _ in range(30)) + " zebra\n", "\n".join(line() for _ in range(30)) + " yak\n")
    run = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--corpus", str(folder), "--set", "train.epochs=1",
                 "--set", "data.max_vocab=30", "--out", str(run)]) == 0, capsys.readouterr().err
    _, meta = load_checkpoint(run / "best.safetensors")
    assert len(meta["vocab"]) == 30 and "<unk>" in meta["vocab"] and meta["config"]["data"]["max_vocab"] == 30
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "test"]) == 0
    assert "ppl" in capsys.readouterr().out
