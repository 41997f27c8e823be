"""Slanted triangular learning rates (Howard & Ruder 2018), over every batch of every epoch."""

from __future__ import annotations

from ..hooks import Loop, Schedule


def stlr(lr: float, progress: float, cut: float, ratio: float) -> float:
    """Slanted triangular learning rate at ``progress`` in [0, 1] of all the batches: from
    lr / ratio it rises linearly to lr at ``cut``, then falls linearly back to lr / ratio
    at the end."""
    p = min(max(progress, 0.0), 1.0)
    f = p / cut if p < cut else 1.0 - (p - cut) / (1.0 - cut) if cut < 1.0 else 1.0
    return lr * (1.0 + f * (ratio - 1.0)) / ratio


class STLR(Schedule):
    name = "stlr"

    def on_batch(self, loop: Loop, clock: float, epoch_fraction: float) -> None:
        t, s = loop.cfg.train, loop.state
        s.lr = stlr(t.lr, (s.epoch - 1 + epoch_fraction) / t.epochs, t.stlr_cut, t.stlr_ratio)
