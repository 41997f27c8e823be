"""Learning-rate schedules (NT-ASGD's trigger, the book's decay) as pure functions of the validation history."""

from __future__ import annotations


def nonmono_triggered(history: list[float], val_loss: float, n: int) -> bool:
    """The non-monotone trigger of NT-ASGD: more than n earlier epochs, and the new
    validation loss is worse than the best of all but the last n of them. ``history``
    holds the earlier epochs' losses; ``val_loss`` is not yet in it."""
    return len(history) > n and val_loss > min(history[:-n])


def book_lr(lr: float, val_loss: float, best_val: float, decay: float) -> float:
    """BetterRnnlm: divide the learning rate by ``decay`` when validation did not improve."""
    return lr if val_loss < best_val else lr / decay
