"""Per-token results of a pass over a split: what the cache and the metrics need."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.batching import batchify
from ..runtime.evaluate import read_carried


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
    hs, lps, ts = [], [], []
    for _, y, out in read_carried(model, batchify(ids, 1), bptt, progress=progress, desc="score"):
        hs.append(out.raw_output[:, 0].float())
        lps.append(out.target_logp[:, 0])
        ts.append(y[:, 0])
    return Scored(torch.cat(hs), torch.cat(lps), torch.cat(ts))
