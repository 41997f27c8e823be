"""A recurrent classifier over the last state: pixels (T, B, 1) -> the layers of the
registry (model/layers.py) -> Linear(H, classes) on h_T."""

from __future__ import annotations

import torch
from torch import nn

from ..model.layers import LAYERS
from .config import PixelConfig


class PixelClassifier(nn.Module):
    def __init__(self, cfg: PixelConfig, steps: int, classes: int = 10):
        super().__init__()
        m = cfg.model_config(steps)
        sizes = [1] + [cfg.hidden_size] * cfg.num_layers
        self.layers = nn.ModuleList(LAYERS[cfg.cell](sizes[i], sizes[i + 1], m) for i in range(cfg.num_layers))
        self.head = nn.Linear(cfg.hidden_size, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, T) in [0, 1] -> class scores (B, classes)."""
        x = pixels.t().unsqueeze(-1)  # (T, B, 1): one pixel per step
        for layer in self.layers:
            x, _ = layer(x, layer.init_state(x.size(1)))
        return self.head(x[-1])
