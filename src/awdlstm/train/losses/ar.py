"""Activation regularization (AR, Merity et al. 2017): alpha · mean(h²) over the last
layer's output after its dropout (train.alpha)."""

from __future__ import annotations

import torch

from ...model import ar_penalty
from ..hooks import Penalty, Step


class AR(Penalty):
    name, KNOB = "ar", "alpha"

    def __call__(self, step: Step) -> torch.Tensor:
        return ar_penalty(step.out.dropped_output.float(), self.weight)  # fp32 whatever the autocast dtype
