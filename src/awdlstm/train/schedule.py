"""Learning-rate schedules as pure functions: NT-ASGD's trigger and the book's decay of the
validation history, and the budget schedule of the training clock."""

from __future__ import annotations

import math


def nonmono_triggered(history: list[float], val_loss: float, n: int) -> bool:
    """The non-monotone trigger of NT-ASGD: more than n earlier epochs, and the new
    validation loss is worse than the best of all but the last n of them. ``history``
    holds the earlier epochs' losses; ``val_loss`` is not yet in it."""
    return len(history) > n and val_loss > min(history[:-n])


def book_lr(lr: float, val_loss: float, best_val: float, decay: float) -> float:
    """BetterRnnlm: divide the learning rate by ``decay`` when validation did not improve."""
    return lr if val_loss < best_val else lr / decay


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


def stlr(lr: float, progress: float, cut: float, ratio: float) -> float:
    """Slanted triangular learning rate (Howard & Ruder 2018) at ``progress`` in [0, 1] of
    all the batches: from lr / ratio it rises linearly to lr at ``cut``, then falls
    linearly back to lr / ratio at the end."""
    p = min(max(progress, 0.0), 1.0)
    f = p / cut if p < cut else 1.0 - (p - cut) / (1.0 - cut) if cut < 1.0 else 1.0
    return lr * (1.0 + f * (ratio - 1.0)) / ratio
