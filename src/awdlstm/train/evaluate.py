"""Full-split evaluation with the hidden state carried through (SPEC §5)."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.batching import BPTTIterator, batchify


@contextlib.contextmanager
def lstm_kernel(batch_size: int):
    """At batch 1 PyTorch's native LSTM kernel is about 3x faster on CPU than oneDNN
    (shared/PERFORMANCE.md); at larger batches oneDNN wins. Set the switch directly:
    ``mkldnn.flags()`` also touches the TF32 setting and warns on CPU-only builds."""
    if batch_size != 1 or not torch.backends.mkldnn.is_available():
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


@torch.no_grad()
def evaluate(model, ids, batch_size: int, bptt: int = 70, progress: bool = False, desc: str = "eval") -> float:
    """Mean negative log-likelihood (nats per token) of ``ids`` over the whole split."""
    was_training = model.training
    model.eval()
    source = batchify(ids, batch_size)
    hidden = model.init_hidden(batch_size)
    total, count = 0.0, 0
    it = BPTTIterator(source, bptt)
    with lstm_kernel(batch_size), tqdm(total=len(it), desc=desc, unit="batch", leave=False,
                                       disable=None if progress else True) as bar:
        for batch in it:
            out = model(batch.x, hidden)
            hidden = out.hidden
            total += F.cross_entropy(out.logits.view(-1, out.logits.size(-1)), batch.y.reshape(-1),
                                     reduction="sum").item()
            count += batch.y.numel()
            bar.update()
    model.train(was_training)
    return total / count


def metric(loss: float, level: str) -> tuple[str, float]:
    """('ppl', exp(loss)) at word level, ('bpc', loss / ln 2) at character level."""
    if level == "char":
        return "bpc", loss / math.log(2)
    return "ppl", math.exp(min(loss, 700.0))
