"""Checkpoints written before the loop was rebuilt from parts still load and resume: a
mid-epoch `last` of the earlier code (tests/train/data, made with the same config on the
generated corpus below) resumes to the weights the earlier code's uninterrupted run ended with."""

from pathlib import Path

import torch

from awdlstm.checkpoints.checkpoint import load_checkpoint
from awdlstm.data import SyntheticSpec, write_synthetic
from awdlstm.train.trainer import Trainer

DATA = Path(__file__).parent / "data"


def test_a_checkpoint_of_the_earlier_code_resumes_to_its_uninterrupted_weights(tmp_path):
    last_tensors, meta = load_checkpoint(DATA / "pre-refactor-last.safetensors")
    assert "hidden." in last_tensors and meta["state"]["iterator"] is not None  # taken mid-epoch
    folder = Path(meta["config"]["data"]["corpus"])
    write_synthetic(SyntheticSpec(train_lines=150, eval_lines=20), tmp_path / "syn")
    # The file names the corpus folder of the run that wrote it: rewrite it to this test's copy.
    meta["config"]["data"]["corpus"] = str(tmp_path / "syn")
    run = tmp_path / "run"
    run.mkdir()
    from awdlstm.checkpoints.checkpoint import save_checkpoint
    meta = {k: v for k, v in meta.items() if k not in ("format", "aliases")}
    save_checkpoint(run / "last.safetensors", last_tensors, meta)
    assert folder.name == "syn"
    Trainer.resume(run, progress=False, log=lambda *a: None).run()
    want = load_checkpoint(DATA / "pre-refactor-final.safetensors")[0]["model."]
    got = load_checkpoint(run / "last.safetensors")[0]["model."]
    assert set(want) == set(got)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=0)
