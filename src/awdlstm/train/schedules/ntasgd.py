"""NT-ASGD (Merity et al. 2017): plain SGD until the non-monotone trigger fires, then an
equal-weight average of every iterate, the learning rate back at train.lr."""

from __future__ import annotations

from ..hooks import Loop, Schedule


def nonmono_triggered(history: list[float], val_loss: float, n: int) -> bool:
    """The non-monotone trigger of NT-ASGD: more than n earlier epochs, and the new
    validation loss is worse than the best of all but the last n of them. ``history``
    holds the earlier epochs' losses; ``val_loss`` is not yet in it."""
    return len(history) > n and val_loss > min(history[:-n])


class NTASGD(Schedule):
    name = "ntasgd"

    def on_epoch_end(self, loop: Loop, val: float, improved: bool, record: dict) -> None:
        t, s = loop.cfg.train, loop.state
        # Averaging is SGD's: with Adam the trigger never switches.
        if t.optimizer == "sgd" and not s.averaging and nonmono_triggered(s.history, val, t.nonmono):
            loop.start_averaging()
            s.lr = t.lr
            record["switched"] = True
            loop.log(f"epoch {s.epoch}: validation did not improve on the best before the last "
                     f"{t.nonmono} epochs; switching to averaged SGD (NT-ASGD)")
