"""train.when: divide the learning rate by 10 after each listed epoch (the reference
repository's --when), on top of whichever schedule runs."""

from __future__ import annotations

from ..hooks import Loop, Schedule


class When(Schedule):
    name = "when"

    def on_epoch_end(self, loop: Loop, val: float, improved: bool, record: dict) -> None:
        s = loop.state
        if s.epoch in loop.cfg.train.when:
            s.lr /= 10
            loop.log(f"epoch {s.epoch}: lr divided by 10 -> {s.lr:g}")
