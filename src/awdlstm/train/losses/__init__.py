"""The loss of a batch as a list of terms, each one file (see ../hooks.py for ``LossTerm``).
A term's ``from_config(cfg, context)`` returns the term, or None when its knob leaves it
off; the loss is the terms' sum, in this registry's order. A new term is one file plus its
line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..hooks import LossTerm
from .ar import AR
from .cross_entropy import CrossEntropy
from .distillation import Distillation
from .tar import TAR

LOSSES: dict[str, type[LossTerm]] = {
    "cross_entropy": CrossEntropy,
    "distillation": Distillation,
    "ar": AR,
    "tar": TAR,
}


@dataclass
class LossContext:
    """What a term may need besides the config: the corpus's vocabulary, the device, this
    process's columns of the batch, and the cached teacher targets of the training text
    (``teacher_targets(teacher, k, cutoffs, coverage)``: read or written once; teacher_targets.py)."""

    itos: list[str]
    device: torch.device
    columns: tuple[int, int] = (0, 0)
    teacher_targets: Callable[..., Any] | None = None


def build_losses(cfg, context: LossContext) -> list[LossTerm]:
    return [term for cls in LOSSES.values() if (term := cls.from_config(cfg, context)) is not None]


__all__ = ["LOSSES", "LossContext", "build_losses", "AR", "CrossEntropy", "Distillation", "TAR"]
