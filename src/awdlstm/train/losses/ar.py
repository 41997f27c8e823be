"""Activation regularization (AR, Merity et al. 2017): alpha · mean(h²) over the last
layer's output after its dropout."""

from __future__ import annotations

import torch

from ...model import ar_penalty
from ..hooks import LossTerm, Step


class AR(LossTerm):
    name = "ar"

    def __init__(self, alpha: float):
        self.alpha = alpha

    @classmethod
    def from_config(cls, cfg, context) -> AR | None:
        return cls(cfg.train.alpha) if cfg.train.alpha else None

    def __call__(self, step: Step) -> torch.Tensor:
        return ar_penalty(step.out.dropped_output.float(), self.alpha)  # fp32 whatever the autocast dtype
