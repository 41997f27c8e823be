"""The data term: the mean cross-entropy with the next tokens. Distilling, it is the hard
loss and weighs distill.hard_weight; otherwise it is the loss, weight 1."""

from __future__ import annotations

import torch

from ..hooks import LossTerm, Step


class CrossEntropy(LossTerm):
    name = "cross_entropy"

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    @classmethod
    def from_config(cls, cfg, context) -> CrossEntropy | None:
        return cls(cfg.distill.hard_weight if cfg.distill.teacher else 1.0)

    def __call__(self, step: Step) -> torch.Tensor:
        return step.ce if self.weight == 1.0 else self.weight * step.ce
