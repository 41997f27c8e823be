"""Failures through the CLI: one line, exit status 2, no traceback, nothing saved lost."""

import errno
import json
import os

import pytest
from safetensors.torch import load_file, save_file

from awdlstm.checkpoints import checkpoint as checkpoint_mod
from awdlstm.cli import main
from awdlstm.data import SyntheticSpec, write_synthetic
from tests.test_cli_data import assert_one_line_error


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(train_lines=150, eval_lines=20), folder)
    return folder


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_disk_full_while_saving(capsys, tmp_path, corpus, monkeypatch):
    run_dir = tmp_path / "run"
    real = checkpoint_mod.save_file
    calls, before = [], {}

    def filling_disk(tensors, path, metadata=None):
        if os.path.basename(path).startswith(".last."):
            calls.append(path)
        if len(calls) == 2:  # the second `last` checkpoint finds the disk full half-way through
            before.update(snapshot(run_dir))
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_mod, "save_file", filling_disk)
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--corpus", corpus, "--set", "train.checkpoint_batches=2",
                       "--out", run_dir)
    assert_one_line_error(code, err, str(run_dir / "last.safetensors"), "no space left on the device")
    assert not list(run_dir.glob(".*.tmp"))
    assert len(calls) == 2 and "last.safetensors" in before
    after = snapshot(run_dir)  # the previous checkpoint is intact, nothing else changed
    assert after == {k: v for k, v in before.items() if not k.endswith(".tmp")}
    assert load_file(str(run_dir / "last.safetensors"))


def test_stale_temporaries_are_cleaned_on_resume(capsys, tmp_path, corpus):
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--corpus", corpus, "--set", "train.epochs=1",
                       "--out", run_dir)
    assert code == 0, err
    stale = run_dir / ".last.safetensors.k3j2x9.tmp"
    stale.write_bytes(b"half a checkpoint")
    code, _, err = cli(capsys, "train", "--resume", run_dir)
    assert code == 0, err
    assert not stale.exists()


def rewrite(src, dst, meta_text=None, edit=None):
    """Copy a checkpoint with its metadata replaced by ``meta_text`` or changed by ``edit``."""
    from safetensors import safe_open
    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["awdlstm"])
    if edit:
        edit(meta)
    save_file(load_file(str(src)), str(dst), metadata={"awdlstm": meta_text if meta_text is not None else json.dumps(meta)})


@pytest.mark.parametrize("case,meta_text,edit,fragments", [
    ("list", "[1, 2, 3]", None, ("JSON but not an object",)),
    ("json", "{not json", None, ("not valid JSON",)),
    ("dupvocab", None, lambda m: m["vocab"].__setitem__(1, m["vocab"][0]), ("vocabulary lists", "twice")),
    ("noconfig", None, lambda m: m.pop("config"), ("lacks its config",)),
    ("novocab", None, lambda m: m.pop("vocab"), ("lacks its vocabulary",)),
    ("badlevel", None, lambda m: m.__setitem__("level", 3), ("corpus level",)),
])
def test_valid_files_that_are_wrong_inside(capsys, tiny_run, tmp_path, case, meta_text, edit, fragments):
    run_dir, _ = tiny_run
    bad = tmp_path / f"{case}.safetensors"
    rewrite(run_dir / "best.safetensors", bad, meta_text, edit)
    before = bad.read_bytes()
    command = "generate" if case == "badlevel" else "eval"
    code, _, err = cli(capsys, command, bad)
    assert_one_line_error(code, err, bad.name, *fragments)
    assert bad.read_bytes() == before


def test_best_copied_over_last_is_not_resumable(capsys, tiny_run, tmp_path):
    import shutil
    run_dir, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.copy(copy / "best.safetensors", copy / "last.safetensors")
    before = snapshot(copy)
    code, _, err = cli(capsys, "train", "--resume", copy)
    assert_one_line_error(code, err, "last.safetensors", "not a resumable", "awdlstm finetune")
    assert snapshot(copy) == before


def test_resumable_checkpoint_missing_its_state(capsys, tiny_run, tmp_path):
    import shutil
    run_dir, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    rewrite(run_dir / "last.safetensors", copy / "last.safetensors", edit=lambda m: m["state"].pop("epoch"))
    code, _, err = cli(capsys, "train", "--resume", copy)
    assert_one_line_error(code, err, "training state", "'epoch'")


def test_score_of_an_empty_file(capsys, tiny_run, tmp_path):
    run_dir, _ = tiny_run
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out, err = cli(capsys, "score", run_dir, empty)
    assert_one_line_error(code, err, "empty.txt", "no lines to score")
    assert "nan" not in out


def test_an_explicit_zero_is_not_the_default(capsys, tiny_run, tmp_path):
    run_dir, _ = tiny_run
    code, _, err = cli(capsys, "eval", run_dir, "--cache", "--window", "0")
    assert_one_line_error(code, err, "window=0", "window >= 1")
    code, _, err = cli(capsys, "train", "--preset", "", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "unknown preset ''")
    code, _, err = cli(capsys, "train", "--preset", "tiny", "--out", "")
    assert_one_line_error(code, err, "--out ''")
    code, _, err = cli(capsys, "eval", run_dir, "--device", "")
    assert_one_line_error(code, err, "--device=''")


def test_non_finite_loss_on_the_first_batch_says_nothing_was_saved(tmp_path, corpus):
    from awdlstm.config import build_config
    from awdlstm.data import load_corpus
    from awdlstm.errors import AwdlstmError
    from awdlstm.train import Trainer

    t = Trainer(build_config("tiny", [], str(corpus)), tmp_path / "run", load_corpus(str(corpus)), progress=False,
                log=lambda *a: None)
    t.model.register_forward_hook(lambda m, a, out: out._replace(target_logp=out.target_logp * float("nan")))
    with pytest.raises(AwdlstmError, match="batch 1; stopped, no checkpoint had been written yet"):
        t.run()
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_version_and_top_level_help(capsys):
    import awdlstm
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"awdlstm {awdlstm.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "No logic" not in out and "torchrun" in out and "train" in out
