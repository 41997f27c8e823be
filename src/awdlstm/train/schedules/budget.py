"""The budget schedule: warm-up, stable, and a decay planned over the run's budget, with
averaging from train.average_from of the budget on. The budget is the wall clock
(train.max_minutes) when one is set, else the epochs (train.epochs): an epoch budget gives
the same curve on any machine, at any load (the experiments compare runs that way)."""

from __future__ import annotations

import math

from ..hooks import Loop, Schedule, budget_progress


def budget_lr(lr: float, progress: float, warmup: float, floor: float, shape: str, decay_start: float = 0.0) -> float:
    """The budget schedule at ``progress`` in [0, 1] of the run's wall-clock budget: a
    linear rise from ``floor`` x lr to lr over the first ``warmup`` of the budget, lr held
    until ``decay_start`` (warm-up, stable, decay), then a cosine (or linear) decay that
    reaches ``floor`` x lr exactly when the budget ends.

    Progress is the training clock over the budget. At the observed token rate r the run
    will process tokens_done + r x time_left tokens in all, and tokens_done over that
    planned total is elapsed / budget: the plan is re-estimated at every batch, so a
    slower or faster machine (or a resume elsewhere) still ends on the floor."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return lr * (floor + (1.0 - floor) * p / warmup)
    start = max(warmup, decay_start)
    q = max(p - start, 0.0) / (1.0 - start) if start < 1.0 else 1.0
    f = 0.5 * (1.0 + math.cos(math.pi * q)) if shape == "cosine" else 1.0 - q
    return lr * (floor + (1.0 - floor) * f)


class Budget(Schedule):
    """The clock and the epoch are part of the saved run state (TrainState.elapsed, .epoch),
    so a resumed run continues on the same curve."""

    name = "budget"

    def on_batch(self, loop: Loop, clock: float, epoch_fraction: float) -> None:
        t, s = loop.cfg.train, loop.state
        progress = budget_progress(t, s, clock, epoch_fraction)
        s.lr = budget_lr(t.lr, progress, t.warmup, t.lr_floor, t.decay, t.decay_start)
        if not s.averaging and t.average_from < 1.0 and progress >= t.average_from:
            loop.start_averaging()
            loop.log(f"\n{progress:.0%} of the budget: evaluating the running average of the weights from now on")
