"""Log-probability of given sentences under a model."""

from __future__ import annotations

import math

import torch

from ..data.vocab import Vocabulary
from ..train.evaluate import lstm_kernel, model_device


@torch.no_grad()
def score_ids(model, vocab: Vocabulary, ids: list[int]) -> float:
    """Natural-log probability of ``ids`` followed by ``<eos>``, the model primed with
    ``<eos>`` (a sentence start)."""
    model.eval()
    seq = torch.tensor([vocab.eos_id] + list(ids) + [vocab.eos_id], device=model_device(model))
    with lstm_kernel(1):
        out = model(seq[:-1].view(-1, 1), model.init_hidden(1), targets=seq[1:].view(-1, 1))
    return out.target_logp.sum().item()


def summarize(rows: list[dict]) -> dict:
    """Overall log-probability, token count and perplexity of scored lines."""
    total = sum(r["logprob"] for r in rows)
    tokens = sum(r["tokens"] for r in rows)
    return {"logprob": total, "tokens": tokens, "ppl": math.exp(-total / tokens) if tokens else float("nan")}
