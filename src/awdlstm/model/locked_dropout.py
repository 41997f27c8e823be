"""Locked (variational) dropout: one (1, B, H) mask per forward, shared by every time step."""

import torch
from torch import nn


class LockedDropout(nn.Module):
    def __init__(self, p: float, locked: bool = True):
        super().__init__()
        self.p = p
        self.locked = locked  # False: a fresh mask per step and unit (Zaremba et al. 2014)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, B, H) -> same shape, scaled by 1 / (1 - p) where kept."""
        if not self.training or self.p == 0:
            return x
        shape = (1, x.size(1), x.size(2)) if self.locked else x.shape
        mask = (torch.rand(shape, device=x.device) >= self.p).to(x.dtype) / (1 - self.p)
        return x * mask
