"""Locked (variational) dropout: one (1, B, H) mask per forward, shared by every time step."""

import torch
from torch import nn

from .masks import Columns, bernoulli


class LockedDropout(nn.Module):
    def __init__(self, p: float, locked: bool = True):
        super().__init__()
        self.p = p
        self.locked = locked  # False: a fresh mask per step and unit (Zaremba et al. 2014)

    def forward(self, x: torch.Tensor, columns: Columns | None = None) -> torch.Tensor:
        """x (T, B, H) -> same shape, scaled by 1 / (1 - p) where kept. With ``columns`` the
        mask is the full batch's mask cut to this block of columns."""
        if not self.training or self.p == 0:
            return x
        shape = (1, x.size(1), x.size(2)) if self.locked else tuple(x.shape)
        keep = 1 - bernoulli(shape, self.p, 1, columns, x.device, x.dtype)
        return x * keep / (1 - self.p)
