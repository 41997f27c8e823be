"""The full softmax head: logits = W x + b over the whole vocabulary, W (V, D) tied to the
embedding when model.tie_weights (one Parameter, two uses)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .head import Head


class SoftmaxHead(Head, nn.Linear):
    @classmethod
    def build(cls, in_size: int, vocab_size: int, cfg, tied: nn.Parameter | None) -> SoftmaxHead:
        head = cls(in_size, vocab_size)
        if tied is not None:
            head.weight = tied
        nn.init.zeros_(head.bias)
        return head

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, columns=None):
        logits = F.linear(x, self.weight, self.bias)  # (T, B, V), the autocast dtype
        target_logp = None
        if targets is not None:  # in fp32 whatever the autocast dtype
            target_logp = -F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                           reduction="none").view(targets.shape)
        return logits, target_logp

    def log_probs(self, x: torch.Tensor, columns=None) -> torch.Tensor:
        return F.log_softmax(F.linear(x, self.weight, self.bias).float(), dim=-1)
