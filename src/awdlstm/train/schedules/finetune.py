"""The fine-tuning phase of the AWD-LSTM recipe: averaged SGD from the first step (the
trainer starts it with averaging on), until the non-monotone trigger fires."""

from __future__ import annotations

from ..hooks import Loop, Schedule
from .ntasgd import nonmono_triggered


class FineTune(Schedule):
    name = "finetune"

    def on_epoch_end(self, loop: Loop, val: float, improved: bool, record: dict) -> None:
        s = loop.state
        if nonmono_triggered(s.history, val, loop.cfg.train.nonmono):
            s.done, s.stop_reason = True, "fine-tuning: the non-monotone trigger fired"
