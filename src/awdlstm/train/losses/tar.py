"""Temporal activation regularization (TAR, Merity et al. 2017): beta · mean((h_t − h_{t−1})²)
on the last layer's output before its dropout (train.beta)."""

from __future__ import annotations

import torch

from ...model import tar_penalty
from ..hooks import Penalty, Step


class TAR(Penalty):
    name, KNOB = "tar", "beta"

    def __call__(self, step: Step) -> torch.Tensor:
        return tar_penalty(step.out.raw_output.float(), self.weight)
