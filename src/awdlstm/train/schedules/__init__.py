"""Learning-rate schedules, chosen by name (``train.schedule``). A new schedule is one file
with a ``Schedule`` subclass (see ../hooks.py) plus its line here and its name in the
``train.schedule`` choices of config.py (the config sits below train and cannot read this
registry; a test checks that the two agree)."""

from __future__ import annotations

from ..hooks import Schedule
from .book import Book
from .budget import Budget
from .finetune import FineTune
from .ntasgd import NTASGD
from .stlr import STLR
from .when import When

SCHEDULES: dict[str, type[Schedule]] = {
    "ntasgd": NTASGD,
    "book": Book,
    "budget": Budget,
    "stlr": STLR,
    "none": Schedule,  # the learning rate stays at train.lr
}


def build_schedules(train_cfg, phase: str) -> list[Schedule]:
    """The schedules of a phase, in the order their epoch hooks run: the fine-tuning phase
    runs FineTune in place of train.schedule; train.when adds its drops after either."""
    main = FineTune() if phase == "finetune" else SCHEDULES[train_cfg.schedule]()
    return [main] + ([When()] if train_cfg.when else [])


__all__ = ["SCHEDULES", "build_schedules", "Book", "Budget", "FineTune", "NTASGD", "STLR", "When"]
