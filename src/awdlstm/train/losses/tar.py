"""Temporal activation regularization (TAR, Merity et al. 2017): beta · mean((h_t − h_{t−1})²)
on the last layer's output before its dropout."""

from __future__ import annotations

import torch

from ...model import tar_penalty
from ..hooks import LossTerm, Step


class TAR(LossTerm):
    name = "tar"

    def __init__(self, beta: float):
        self.beta = beta

    @classmethod
    def from_config(cls, cfg, context) -> TAR | None:
        return cls(cfg.train.beta) if cfg.train.beta else None

    def __call__(self, step: Step) -> torch.Tensor:
        return tar_penalty(step.out.raw_output.float(), self.beta)
