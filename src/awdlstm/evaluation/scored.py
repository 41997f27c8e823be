"""Per-token results of a pass over a split: what the cache and the metrics need."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..data.batching import BPTTIterator, batchify
from ..runtime.evaluate import lstm_kernel, model_device


@dataclass
class Scored:
    """For N tokens of a split read in order (batch 1): the last layer's output before
    dropout ``hidden`` (N, E), the model's log-probability of each target ``logp`` (N,),
    and the targets (N,); on the model's device."""

    hidden: torch.Tensor
    logp: torch.Tensor
    targets: torch.Tensor

    def loss(self) -> float:
        return -self.logp.mean().item()


@torch.no_grad()
def score_static(model, ids, bptt: int = 70, progress: bool = False) -> Scored:
    """Read ``ids`` at batch 1 with the hidden state carried through (the AWD test protocol)."""
    model.eval()
    device = model_device(model)
    source = batchify(ids, 1).to(device)
    hidden = model.init_hidden(1)
    hs, lps, ts = [], [], []
    it = BPTTIterator(source, bptt)
    with lstm_kernel(1):
        for batch in tqdm(it, total=len(it), desc="score", unit="batch", leave=False,
                          disable=None if progress else True):
            out = model(batch.x, hidden, targets=batch.y)
            hidden = out.hidden
            hs.append(out.raw_output[:, 0].float())
            lps.append(out.target_logp[:, 0])
            ts.append(batch.y[:, 0])
    return Scored(torch.cat(hs), torch.cat(lps), torch.cat(ts))
