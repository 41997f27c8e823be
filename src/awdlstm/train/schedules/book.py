"""The book baseline's schedule (BetterRnnlm): divide the learning rate by train.lr_decay
after an epoch whose validation loss did not improve on the best so far."""

from __future__ import annotations

from ..hooks import Loop, Schedule


def book_lr(lr: float, val_loss: float, best_val: float, decay: float) -> float:
    """BetterRnnlm: divide the learning rate by ``decay`` when validation did not improve."""
    return lr if val_loss < best_val else lr / decay


class Book(Schedule):
    name = "book"

    def on_epoch_end(self, loop: Loop, val: float, improved: bool, record: dict) -> None:
        s = loop.state
        if not improved:  # best_val already holds the best before this epoch, or this one
            s.lr = book_lr(s.lr, val, s.best_val, loop.cfg.train.lr_decay)
            loop.log(f"epoch {s.epoch}: validation did not improve; lr -> {s.lr:g}")
