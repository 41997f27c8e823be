import math
import time

import pytest
import torch

from awdlstm.checkpoints.checkpoint import load_checkpoint
from awdlstm.config import build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.train import finetune as finetune_mod
from awdlstm.train.hooks import Hook
from awdlstm.train.trainer import Trainer


def script_validation(losses):
    """A validation function that returns ``losses`` one epoch after another, then 9."""
    values = iter(losses)
    return lambda: next(values, 9.0)


def make_trainer(tmp_path, *sets, validation=None):
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(train_lines=150, eval_lines=20), folder)
    cfg = build_config("tiny", ["train.optimizer=sgd", "train.schedule=ntasgd", "train.lr=1.0",
                                "train.epochs=6", *sets], corpus=str(folder))
    logs = []
    t = Trainer(cfg, tmp_path / "run", load_corpus(str(folder)), progress=False, log=logs.append,
                validation=validation)
    t.logs = logs
    return t


def epoch_records(t):
    return [r for r in t.records() if r["event"] == "epoch"]


def test_ntasgd_switches_on_the_nonmonotone_trigger(tmp_path):
    t = make_trainer(tmp_path, "train.nonmono=2", "train.when=[3]",
                     validation=script_validation([5, 4, 3, 3.5, 3.6, 3.7]))
    t.run()
    recs = epoch_records(t)
    # Epoch 6: 3.7 > min(history[:-2]) = min(5, 4, 3); no earlier epoch fires.
    assert [bool(r.get("switched")) for r in recs] == [False] * 5 + [True]
    assert t.state.averaging and t.average is not None
    assert recs[3]["lr"] == pytest.approx(0.1)  # divided by 10 after epoch 3 ...
    assert t.state.lr == 1.0  # ... and back to the initial lr at the switch
    assert any("switching to averaged SGD" in line for line in t.logs)
    assert (tmp_path / "run" / "curve.png").stat().st_size > 1000


def test_averaging_is_the_mean_of_all_iterates_over_all_parameters(tmp_path):
    t = make_trainer(tmp_path, "train.epochs=1", "train.bptt=5")
    t.start_averaging()
    iterates = []

    class Record(Hook):  # every iterate, right after its update
        def after_update(self, loop):
            iterates.append([p.detach().clone() for p in loop.model.parameters()])

    t.hooks.append(Record())
    t.run_epoch(time.monotonic())
    assert len(iterates) > 3
    for i, p in enumerate(t.average.module.parameters()):
        torch.testing.assert_close(p, torch.stack([it[i] for it in iterates]).mean(0), atol=1e-6, rtol=1e-5)
    # The evaluated model is the average, not the last iterate.
    assert t.eval_model() is t.average.module


def test_variable_bptt_scales_each_steps_learning_rate(tmp_path):
    t = make_trainer(tmp_path, "train.epochs=1", "train.bptt=20", "train.lr=2.0")
    lengths, lrs = [], []
    t.model.register_forward_pre_hook(lambda m, args: lengths.append(args[0].size(0)))

    class Record(Hook):  # the learning rate each update uses
        def before_update(self, loop):
            lrs.append(loop.optimizer.param_groups[0]["lr"])

    t.hooks.append(Record())
    t.run_epoch(time.monotonic())
    assert len(set(lengths)) > 2
    for n, lr in zip(lengths[:-1], lrs[:-1]):  # the last window may be cut by the data's end
        assert lr == pytest.approx(2.0 * n / 20)
    assert t.state.lr == 2.0  # the base rate is untouched


def test_book_schedule_divides_lr_when_validation_does_not_improve(tmp_path):
    t = make_trainer(tmp_path, "train.schedule=book", "train.lr=20", "train.epochs=5", "train.variable_bptt=false",
                     validation=script_validation([5, 4, 4.5, 3, 3.2]))
    t.run()
    assert [r["lr"] for r in epoch_records(t)] == [20, 20, 20, 5, 5]
    assert t.state.lr == 1.25
    assert t.state.best_val == 3


def test_adam_option_trains(tmp_path):
    t = make_trainer(tmp_path, "train.optimizer=adam", "train.lr=0.003", "train.epochs=2")
    results = t.run()
    assert isinstance(t.optimizer, torch.optim.Adam) and not t.state.averaging
    assert math.isfinite(results["test_loss"])


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    t = make_trainer(tmp_path, "train.checkpoint_batches=1", "train.bptt=5")
    calls = []

    def poison(module, args, out):
        calls.append(1)
        if len(calls) == 3:
            return out._replace(target_logp=out.target_logp * float("nan"))
        return out

    t.model.register_forward_hook(poison)
    with pytest.raises(AwdlstmError, match="loss became nan.*last good checkpoint"):
        t.run()
    _, meta = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["state"]["batches_done"] == 2


def test_finetune_starts_from_best_with_averaging_and_stops_on_trigger(tmp_path):
    t = make_trainer(tmp_path, "train.epochs=2", "train.finetune_epochs=20", "train.nonmono=2",
                     validation=script_validation([4.0, 3.0]))
    t.run()
    ft = finetune_mod.start_finetune(tmp_path / "run", progress=False, log=lambda *a: None,
                                     validation=script_validation([2.9, 2.8, 2.85, 2.9, 3.0]))
    assert ft.state.phase == "finetune" and ft.average is not None and ft.state.best_val == 3.0
    ft.run()
    recs = [r for r in epoch_records(ft) if r["phase"] == "finetune"]
    # Epoch 4: 2.9 is not worse than min(history[:-2]) = 2.9; epoch 5: 3.0 > min(2.9, 2.8) fires.
    assert len(recs) == 5 and ft.state.stop_reason.startswith("fine-tuning")
    assert ft.state.best_val == 2.8
