"""The output-layer protocol every head follows (the registry is heads.py).

A head maps the last layer's dropped output x (T, B, D) to the next-token distribution:

    head(x, targets=None, columns=None) -> (scores, target_logp)
        scores       (T, B, V), whose log_softmax is the distribution (logits for the full
                     softmax, log-probabilities already for the others); None when the
                     head computes log p(target) without the whole distribution
        target_logp  (T, B) fp32, log p(target), when targets (T, B) were given
    head.log_probs(x, columns=None) -> (T, B, V) fp32 log-probabilities

``word_rows`` names the parameters with one row per vocabulary entry (the rows transfer
re-indexes when the vocabulary changes; ``weight`` is the matrix tied to the embedding).
The class methods describe a head to the config before any model exists: the config
knobs it reads (``KNOBS``, an error under another head), its own rules (``check``), the
size of the last layer it reads (``input_size``) and how to build it (``build``).
"""

from __future__ import annotations

import torch
from torch import nn


class Head:
    KNOBS: tuple[str, ...] = ()
    word_rows: tuple[str, ...] = ("weight", "bias")

    @classmethod
    def check(cls, cfg) -> None:
        """Raise AwdlstmError when ``cfg`` (a ModelConfig) cannot build this head."""

    @staticmethod
    def input_size(cfg) -> int:
        """The size D of the last recurrent layer's output: E when tied, else H."""
        return cfg.emb_size if cfg.tie_weights else cfg.hidden_size

    @classmethod
    def build(cls, in_size: int, vocab_size: int, cfg, tied: nn.Parameter | None) -> Head:
        raise NotImplementedError

    def log_probs(self, x: torch.Tensor, columns=None) -> torch.Tensor:
        raise NotImplementedError


class LogProbHead(Head):
    """A head whose scores are log-probabilities and which computes log p(target) alone
    (without the (T, B, V) distribution) when given the targets."""

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, columns=None):
        if targets is not None:
            return None, self.target_log_prob(x, targets, columns)
        return self.log_probs(x, columns), None

    def target_log_prob(self, x: torch.Tensor, targets: torch.Tensor, columns=None) -> torch.Tensor:
        raise NotImplementedError
