"""Dynamic evaluation (Krause et al. 2018): score each segment, then adapt the weights to it.

The rules are those of the authors' code (benkrause/dynamic-evaluation, ``dynamiceval.py``),
for every trainable parameter θ with trained value θ0 and gradient g of the segment's mean
cross-entropy:

  sgd:  θ ← θ − lr·g + decay·(θ0 − θ)
  rms:  θ ← θ − lr·g / (MS + ε) + decay·r·(θ0 − θ)

- MS = sqrt(mean of g² over training segments), elementwise. The statistics are read over
  the whole training split (``stat_batches`` caps the count) at batch ``STAT_BATCH`` (their
  100) in segments of the same length as the evaluation's, the model in evaluation mode.
- r = MS / mean_k(mean(MS_k)): each tensor's MS divided by the mean over the tensors of
  their mean MS (a per-tensor normalization, so a large matrix counts as much as a bias),
  clipped at 1 / decay so that the pull never overshoots θ0.
- Defaults as published for AWD-LSTM on PTB: lr 5e-5, decay 0.002, ε 2e-5, segments of 5.
- A parameter that a segment's loss does not reach (no gradient: an output cluster no
  target fell in, say) counts a zero gradient: its MS grows by nothing, and its update is
  the pull toward θ0 alone. Frozen parameters (requires_grad False) are left out.

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
DEFAULT_RULE, DEFAULT_LR, DEFAULT_DECAY, DEFAULT_BPTT = "rms", 5e-5, 0.002, 5
EPSILON = 2e-5  # ε of the rms rule
STAT_BATCH = 100  # the batch size of the gradient statistics


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d params, zeros where the loss does not reach a parameter."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def gradient_ms(model, train_ids, bptt: int, batches: int | None = None,
                batch_size: int = STAT_BATCH) -> list[torch.Tensor]:
    """MS of each trainable parameter: sqrt of its mean squared gradient over the training
    segments (all of them, or the first ``batches``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    ms = [torch.zeros_like(p) for p in params]
    n = 0
    segments = read_carried(model, batchify(train_ids, batch_size), bptt, detach=True)
    for _, _, out in itertools.islice(segments, batches):
        for m, g in zip(ms, _grads(-out.target_logp.mean(), params)):
            m += g * g
        n += 1
    return [(m / max(n, 1)).sqrt() for m in ms]


def decay_rates(ms: list[torch.Tensor], decay: float) -> list[torch.Tensor]:
    """decay · r per element, r = MS / (the mean over tensors of each tensor's mean MS),
    r clipped at 1 / decay."""
    gsum = torch.stack([m.mean() for m in ms]).mean()
    r = [m / gsum for m in ms]
    if decay > 0:
        r = [x.clamp(max=1.0 / decay) for x in r]
    return [decay * x for x in r]


def score_dynamic(model, ids, lr: float, decay: float = 0.0, rule: str = DEFAULT_RULE, bptt: int = DEFAULT_BPTT,
                  train_ids=None, stat_batches: int | None = None, eps: float = EPSILON,
                  progress: bool = False) -> Scored:
    """Read ``ids`` at batch 1 in segments of ``bptt`` tokens: score, then update."""
    if rule not in RULES:
        raise AwdlstmError(f"--rule {rule!r}: choose one of {', '.join(RULES)}")
    if lr < 0 or decay < 0:
        raise AwdlstmError("--lr and --decay must be >= 0")
    model = copy.deepcopy(model).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    theta0 = [p.detach().clone() for p in params]
    if rule == "rms":
        if train_ids is None:
            raise AwdlstmError("the rms rule needs the training split for its gradient statistics")
        ms = gradient_ms(model, train_ids, bptt, stat_batches)
        pull = decay_rates(ms, decay)
        step = [1.0 / (m + eps) for m in ms]
    hs, lps, ts = [], [], []
    for _, y, out in read_carried(model, batchify(ids, 1), bptt, detach=True, progress=progress,
                                  desc="dynamic eval", unit="segment"):
        logp = out.target_logp[:, 0]
        hs.append(out.raw_output[:, 0].detach())
        lps.append(logp.detach())
        ts.append(y[:, 0])
        if lr == 0 and decay == 0:
            continue
        grads = _grads(-logp.mean(), params)
        with torch.no_grad():
            for i, (p, g, p0) in enumerate(zip(params, grads, theta0)):
                # Both terms are taken at the current θ, then added in one step.
                if rule == "sgd":
                    p.add_(-lr * g + decay * (p0 - p))
                else:
                    p.add_(-lr * g * step[i] + pull[i] * (p0 - p))
    return Scored(torch.cat(hs), torch.cat(lps), torch.cat(ts))
