"""Dynamic evaluation (Krause et al. 2018): score each segment, then adapt the weights to it.

Rules, for every parameter θ with trained value θ0 and segment gradient g:
  sgd:  θ ← θ − lr·g + decay·(θ0 − θ)
  rms:  θ ← θ − lr·g / (RMS + ε) + decay·r·(θ0 − θ),  RMS = sqrt(mean g² over training
        segments), r = RMS / mean(RMS) clipped so that decay·r ≤ 1 (parameters that move
        a lot on training data are pulled back harder).
The model is a deep copy: the caller's weights and the checkpoint on disk never change.
The model stays in eval mode (no dropout); the hidden state is carried through.
"""

from __future__ import annotations

import copy
import itertools

import torch

from ..data.batching import batchify
from ..errors import AwdlstmError
from ..runtime.evaluate import read_carried
from .scored import Scored

RULES = ("sgd", "rms")
# The defaults of `awdlstm eval --dynamic`: rule, learning rate, decay, segment length.
DEFAULT_RULE, DEFAULT_LR, DEFAULT_DECAY, DEFAULT_BPTT = "rms", 2e-5, 0.02, 5


def gradient_rms(model, train_ids, bptt: int, batches: int, batch_size: int = 20) -> list[torch.Tensor]:
    """sqrt of the mean squared gradient of each parameter over ``batches`` training segments."""
    params = list(model.parameters())
    ms = [torch.zeros_like(p) for p in params]
    n = 0
    for _, _, out in itertools.islice(read_carried(model, batchify(train_ids, batch_size), bptt, detach=True),
                                      batches):
        loss = -out.target_logp.mean()
        for m, g in zip(ms, torch.autograd.grad(loss, params)):
            m += g * g
        n += 1
    return [(m / max(n, 1)).sqrt() for m in ms]


def score_dynamic(model, ids, lr: float, decay: float = 0.0, rule: str = DEFAULT_RULE, bptt: int = DEFAULT_BPTT,
                  train_ids=None, stat_batches: int = 200, eps: float = 2e-5, progress: bool = False) -> Scored:
    """Read ``ids`` at batch 1 in segments of ``bptt`` tokens: score, then update."""
    if rule not in RULES:
        raise AwdlstmError(f"--rule {rule!r}: choose one of {', '.join(RULES)}")
    if lr < 0 or decay < 0:
        raise AwdlstmError("--lr and --decay must be >= 0")
    model = copy.deepcopy(model).eval()
    params = list(model.parameters())
    theta0 = [p.detach().clone() for p in params]
    if rule == "rms":
        if train_ids is None:
            raise AwdlstmError("the rms rule needs the training split for its gradient statistics")
        rms = gradient_rms(model, train_ids, bptt, stat_batches)
        mean_rms = torch.cat([r.view(-1) for r in rms]).mean()
        pull = [(decay * r / mean_rms).clamp(max=1.0) for r in rms]
        step = [1.0 / (r + eps) for r in rms]
    hs, lps, ts = [], [], []
    for _, y, out in read_carried(model, batchify(ids, 1), bptt, detach=True, progress=progress,
                                  desc="dynamic eval", unit="segment"):
        logp = out.target_logp[:, 0]
        hs.append(out.raw_output[:, 0].detach())
        lps.append(logp.detach())
        ts.append(y[:, 0])
        if lr == 0 and decay == 0:
            continue
        grads = torch.autograd.grad(-logp.mean(), params)
        with torch.no_grad():
            for i, (p, g, p0) in enumerate(zip(params, grads, theta0)):
                # Both terms are taken at the current θ, then added in one step.
                if rule == "sgd":
                    p.add_(-lr * g + decay * (p0 - p))
                else:
                    p.add_(-lr * g * step[i] + pull[i] * (p0 - p))
    return Scored(torch.cat(hs), torch.cat(lps), torch.cat(ts))
