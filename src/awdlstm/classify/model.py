"""A classifier on a language model's encoder (ULMFiT, Howard & Ruder 2018).

    tokens (T, B), lengths (B) ─ encoder (embedding, AWD dropouts, LSTM layers) → out (T, B, E)
      ─ concat pooling over each document's own positions:
        [out at its last token, max over time, mean over time]      (B, 3E)
      ─ BatchNorm → Dropout → Linear(3E, hidden) → ReLU
      ─ BatchNorm → Dropout → Linear(hidden, classes)               (B, C) logits

Documents are right-padded to the batch's longest: an LSTM's output at a real position
never depends on the padding after it, and the pooling masks the padding out.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import LanguageModel
from .config import ClassifierConfig


def concat_pool(out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """out (T, B, E), lengths (B) -> (B, 3E): last real position, max and mean over the
    real positions of each column."""
    T = out.size(0)
    real = (torch.arange(T, device=out.device).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2)  # (T, B, 1)
    last = out.gather(0, (lengths - 1).view(1, -1, 1).expand(1, -1, out.size(2))).squeeze(0)  # (B, E)
    biggest = out.masked_fill(~real, float("-inf")).max(0).values
    mean = (out * real).sum(0) / lengths.unsqueeze(1).to(out.dtype)
    return torch.cat([last, biggest, mean], 1)


class Classifier(nn.Module):
    def __init__(self, lm: LanguageModel, classes: int, cfg: ClassifierConfig):
        super().__init__()
        self.lm = lm  # its decoder is kept (so the file rebuilds a LanguageModel) but never run
        size = lm.init_hidden(1)[-1][0].size(-1) * 3  # the last layer's output size, three poolings
        self.head = nn.Sequential(
            nn.BatchNorm1d(size), nn.Dropout(cfg.dropout_pool), nn.Linear(size, cfg.head_hidden), nn.ReLU(),
            nn.BatchNorm1d(cfg.head_hidden), nn.Dropout(cfg.dropout_head), nn.Linear(cfg.head_hidden, classes))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (T, B) right-padded, lengths (B) -> logits (B, classes)."""
        out, _ = self.lm.encode(tokens, self.lm.init_hidden(tokens.size(1)))
        return self.head(concat_pool(out, lengths))

    def groups(self) -> list[list[nn.Parameter]]:
        """Parameters bottom to top, the unit of gradual unfreezing and of discriminative
        learning rates: the embedding, each recurrent layer, the head."""
        return [list(self.lm.embedding.parameters())] + [list(layer.parameters()) for layer in self.lm.layers] + \
            [list(self.head.parameters())]
