"""The budget schedule in the training loop, on a simulated clock: each batch takes
1.5 s, so a 1-minute budget is 40 batches (plus the one that finds it spent)."""

import pytest
import torch

from awdlstm import commands
from awdlstm.checkpoints.checkpoint import load_checkpoint
from awdlstm.config import build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.train.hooks import Hook
from awdlstm.train.trainer import Interrupted, Trainer

LR, FLOOR, STEP = 2.0, 0.01, 1.5
SETS = ["train.optimizer=sgd", "train.schedule=budget", f"train.lr={LR}", "train.epochs=100",
        "train.max_minutes=1", "train.warmup=0.1", f"train.lr_floor={FLOOR}", "train.average_from=0.5",
        "train.variable_bptt=false"]


def corpus_folder(tmp_path):
    folder = tmp_path / "syn"
    if not folder.is_dir():
        write_synthetic(SyntheticSpec(train_lines=150, eval_lines=20), folder)
    return folder


class SimulatedClock(Hook):
    """Each update records its learning rate and advances the clock by STEP seconds;
    ``stop_after`` updates in, it asks for a stop as Ctrl-C would."""

    def __init__(self, lrs, stop_after=None):
        self.now, self.lrs, self.stop_after = 0.0, lrs, stop_after

    def __call__(self):
        return self.now

    def before_update(self, loop):
        self.lrs.append(loop.optimizer.param_groups[0]["lr"])

    def after_update(self, loop):
        self.now += STEP
        if self.stop_after is not None and len(self.lrs) == self.stop_after:
            loop.request_stop()


def on_simulated_clock(lrs, stop_after=None) -> dict:
    """The Trainer arguments that put it on a simulated clock."""
    clock = SimulatedClock(lrs, stop_after)
    return {"clock": clock, "hooks": [clock]}


def make(tmp_path, name, lrs, stop_after=None):
    folder = corpus_folder(tmp_path)
    cfg = build_config("tiny", SETS, corpus=str(folder))
    return Trainer(cfg, tmp_path / name, load_corpus(str(folder)), progress=False, log=lambda *a: None,
                   **on_simulated_clock(lrs, stop_after))


def test_lr_reaches_its_floor_when_the_budget_ends(tmp_path):
    lrs = []
    t = make(tmp_path, "run", lrs)
    t.run()
    assert "wall-clock budget" in t.state.stop_reason
    assert len(lrs) == 41  # batches at 0, 1.5, …, 60 s: the one at 60 s finds the budget spent
    assert lrs[-1] == pytest.approx(LR * FLOOR)
    assert lrs[0] == pytest.approx(LR * FLOOR)  # the warm-up starts at the floor
    assert lrs[4] == pytest.approx(LR)  # 6 s = 10% of the budget: the end of the warm-up
    assert min(lrs) >= 0.0
    assert all(b <= a for a, b in zip(lrs[4:], lrs[5:]))
    assert t.state.averaging  # from 50% of the budget on


def test_resume_mid_schedule_continues_on_the_same_curve(tmp_path):
    full = []
    a = make(tmp_path, "full", full)
    a.run()
    first = []
    b = make(tmp_path, "cut", first, stop_after=25)  # after averaging started (batch 20)
    with pytest.raises(Interrupted):
        b.run()
    assert len(first) == 26  # the stop is seen in the next batch's all-reduce, after its step
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors")[1]["state"]["elapsed"] == 26 * STEP
    rest = []
    resumed = Trainer.resume(tmp_path / "cut", progress=False, log=lambda *a: None, **on_simulated_clock(rest))
    resumed.run()
    assert first + rest == full  # the same learning rate at every step
    for (name, x), (_, y) in zip(a.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0, msg=name)
    for x, y in zip(a.average.module.parameters(), resumed.average.module.parameters()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def test_without_minutes_the_budget_is_the_epochs(tmp_path):
    """Planned over train.epochs: the same learning rates whatever the clock says."""
    folder = corpus_folder(tmp_path)
    sets = [x for x in SETS if not x.startswith(("train.max_minutes", "train.epochs"))] + ["train.epochs=3"]
    runs = []
    for step in (1.5, 100.0):  # a fast and a slow machine
        lrs = []
        clock = SimulatedClock(lrs)
        clock.after_update = lambda loop, c=clock, d=step: setattr(c, "now", c.now + d)
        t = Trainer(build_config("tiny", sets, corpus=str(folder)), tmp_path / f"run{step}", load_corpus(str(folder)),
                    progress=False, log=lambda *a: None, clock=clock, hooks=[clock])
        t.run()
        assert t.state.stop_reason == "reached 3 epochs" and t.state.averaging
        runs.append(lrs)
    assert runs[0] == runs[1]
    lrs, per_epoch = runs[0], len(runs[0]) // 3
    assert lrs[0] == pytest.approx(LR * FLOOR) and 0.9 * LR < max(lrs) <= LR  # the warm-up ends between batches
    assert lrs[-1] < LR * (FLOOR + 2 / per_epoch)  # the last batch ends one batch short of the floor
    peak = lrs.index(max(lrs))
    assert all(b <= a for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_budget_schedule_excludes_when():
    with pytest.raises(AwdlstmError, match="train.when"):
        build_config("tiny", ["train.schedule=budget", "train.max_minutes=1", "train.when=[3]"])


def test_minutes_overrides_the_preset(tmp_path):
    folder = corpus_folder(tmp_path)
    run_dir = tmp_path / "run"
    results = commands.train("tiny", str(folder), ["train.max_minutes=30", "train.epochs=100000"], str(run_dir), None,
                             log=lambda *a: None, minutes=0.01)
    assert "wall-clock budget of 0.01 minutes" in results["stop_reason"]
    assert load_checkpoint(run_dir / "last.safetensors")[1]["config"]["train"]["max_minutes"] == 0.01
    with pytest.raises(AwdlstmError, match="--minutes"):
        commands.train(None, None, [], None, str(run_dir), log=lambda *a: None, minutes=5)
