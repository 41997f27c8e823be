"""The loop's extension points driven directly: each schedule through its hooks on a small
stand-in for the loop, the schedule registry against the config's choices, and the loss
terms the config chooses."""

import dataclasses

import pytest
import torch

from awdlstm.config import RunConfig, TrainConfig, build_config
from awdlstm.model import LMOutput
from awdlstm.train.hooks import Schedule, Step
from awdlstm.train.losses import AR, LOSSES, TAR, CrossEntropy, LossContext, build_losses
from awdlstm.train.schedules import SCHEDULES, build_schedules
from awdlstm.train.state import TrainState


class FakeLoop:
    """What a schedule sees of the trainer."""

    def __init__(self, **train):
        self.cfg = RunConfig(train=TrainConfig(**train))
        self.state = TrainState(lr=self.cfg.train.lr)
        self.logs, self.averaging_started = [], 0

    def start_averaging(self):
        self.state.averaging = True
        self.averaging_started += 1

    def log(self, *args):
        self.logs.append(" ".join(map(str, args)))

    def request_stop(self):
        pass


def epochs(loop, schedules, losses):
    """Run the epoch hooks over scripted validation losses as the trainer does."""
    s, records = loop.state, []
    for val in losses:
        rec = {"lr": s.lr}
        improved = val < s.best_val
        if improved:
            s.best_val = val
        for sch in schedules:
            sch.on_epoch_end(loop, val, improved, rec)
        s.history.append(val)
        records.append(rec)
        s.epoch += 1
        if s.done:
            break
    return records


def test_the_registry_is_the_configs_list_of_schedules():
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "schedule")
    assert set(field.metadata["check"]) == set(SCHEDULES)
    for name, cls in SCHEDULES.items():
        assert issubclass(cls, Schedule) and cls().state_dict() == {}


def test_ntasgd_switches_once_on_the_trigger_and_resets_the_lr():
    loop = FakeLoop(lr=2.0, nonmono=2, when=[2])
    schedules = build_schedules(loop.cfg.train, "train")
    assert [s.name for s in schedules] == ["ntasgd", "when"]
    recs = epochs(loop, schedules, [5, 4, 3, 3.5, 3.6, 3.7, 3.8])
    assert [bool(r.get("switched")) for r in recs] == [False] * 5 + [True, False]
    assert loop.averaging_started == 1 and loop.state.lr == 2.0
    assert any("NT-ASGD" in line for line in loop.logs)


def test_ntasgd_never_switches_under_adam():
    loop = FakeLoop(optimizer="adam", nonmono=1)
    epochs(loop, build_schedules(loop.cfg.train, "train"), [5, 6, 7, 8])
    assert not loop.state.averaging


def test_book_divides_on_every_epoch_that_does_not_improve():
    loop = FakeLoop(schedule="book", lr=20.0, lr_decay=4.0)
    recs = epochs(loop, build_schedules(loop.cfg.train, "train"), [5, 4, 4.5, 3, 3.2])
    assert [r["lr"] for r in recs] == [20, 20, 20, 5, 5] and loop.state.lr == 1.25


def test_finetune_replaces_the_schedule_and_stops_on_the_trigger():
    loop = FakeLoop(nonmono=2)
    schedules = build_schedules(loop.cfg.train, "finetune")
    assert [s.name for s in schedules] == ["finetune"]
    epochs(loop, schedules, [2.9, 2.8, 2.85, 2.9, 3.0, 2.0])
    assert loop.state.done and loop.state.stop_reason.startswith("fine-tuning") and len(loop.state.history) == 5


def test_budget_and_stlr_set_the_lr_from_their_clocks():
    loop = FakeLoop(schedule="budget", max_minutes=1, lr=2.0, warmup=0.1, lr_floor=0.01, average_from=0.5)
    (budget,) = build_schedules(loop.cfg.train, "train")
    budget.on_batch(loop, 0.0, 0.0)
    assert loop.state.lr == pytest.approx(0.02) and not loop.state.averaging
    budget.on_batch(loop, 6.0, 0.0)  # 10% of 60 s: the end of the warm-up
    assert loop.state.lr == pytest.approx(2.0)
    budget.on_batch(loop, 30.0, 0.0)
    assert loop.state.averaging and loop.averaging_started == 1
    budget.on_batch(loop, 60.0, 0.0)
    assert loop.state.lr == pytest.approx(0.02)
    loop = FakeLoop(schedule="stlr", lr=1.0, epochs=2, stlr_cut=0.5, stlr_ratio=4.0)
    (stlr,) = build_schedules(loop.cfg.train, "train")
    stlr.on_batch(loop, 0.0, 0.0)
    assert loop.state.lr == pytest.approx(0.25)
    loop.state.epoch = 2
    stlr.on_batch(loop, 0.0, 0.0)  # half of all batches: the peak
    assert loop.state.lr == pytest.approx(1.0)


def test_the_config_chooses_the_loss_terms():
    ctx = LossContext(["<eos>", "a"], torch.device("cpu"))
    names = lambda cfg: [t.name for t in build_losses(cfg, ctx)]  # noqa: E731
    assert names(build_config("tiny", [])) == ["cross_entropy"]  # alpha = beta = 0
    assert names(build_config("tiny", ["train.alpha=2", "train.beta=1"])) == ["cross_entropy", "ar", "tar"]
    assert list(LOSSES) == ["cross_entropy", "distillation", "ar", "tar"]


def test_each_term_is_its_formula():
    torch.manual_seed(0)
    T, B, V, E = 4, 3, 7, 5
    logits = torch.randn(T, B, V)
    y = torch.randint(V, (T, B))
    raw, dropped = torch.randn(T, B, E), torch.randn(T, B, E)
    whole = Step(torch.zeros(T, B, dtype=torch.long), y, LMOutput(logits, [], raw, dropped))
    ce = torch.nn.functional.cross_entropy(logits.view(-1, V), y.view(-1))
    torch.testing.assert_close(whole.ce, ce)
    target_logp = torch.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    given = Step(whole.x, y, LMOutput(None, [], raw, dropped, target_logp))
    torch.testing.assert_close(given.ce, ce)
    torch.testing.assert_close(CrossEntropy(0.5)(given), 0.5 * ce)
    torch.testing.assert_close(AR(2.0)(given), 2.0 * dropped.pow(2).mean())
    torch.testing.assert_close(TAR(3.0)(given), 3.0 * (raw[1:] - raw[:-1]).pow(2).mean())
