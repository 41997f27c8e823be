"""The recurrent batch-normalized LSTM of Cooijmans et al. 2016 (their eq. 6-8), PyTorch's
gate order i, f, g, o, with zoneout on c and h (their best pixel-MNIST result combines the two):

    gates = BN(W_h h_{t-1}; γ_h, 0) + BN(W_x x_t; γ_x, 0) + b
    c̃ = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g),     h̃ = σ(o) ⊙ tanh(BN(c̃; γ_c, β_c))
    c_t, h_t: zoneout of c̃, h̃ (zoneout.py)

The paper's rules: the recurrent and the input terms are normalized separately, with no
shift of their own (b is it); every γ starts at 0.1 (so tanh and σ start in their linear
range and gradients flow); the forget-gate bias starts at 1. BN(a) = γ ⊙ (a - μ_t) /
sqrt(σ²_t + ε) + β with statistics *per time step* t (below): in training μ_t and
σ²_t are the batch's (biased variance), and the population averages of each step t <
``max_steps`` are updated (momentum 0.1, unbiased variance, as nn.BatchNorm1d); a step at or
beyond ``max_steps`` uses, and updates, those of the last one. At evaluation the population
statistics are used. With several processes each normalizes by its own block's statistics.

t counts the steps since the start of the text, not of the call: the state is (h, c, n), n
(1, B, H) holding each column's steps so far. So a language model's later BPTT windows use
the last (steady-state) statistics as the paper's longer test sequences do, and a text read
token by token (generation, the service) gets exactly the numbers of one read in a piece.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .masks import Columns, no_autocast
from .recurrent import RecurrentLayer
from .script import interpreted, script
from .zoneout import draw_zone, zoneout_step

EPS = 1e-5
MOMENTUM = 0.1
GAMMA0 = 0.1


@script
def _bn(a: torch.Tensor, gamma: torch.Tensor, beta: Optional[torch.Tensor], mean: Optional[torch.Tensor],
        var: Optional[torch.Tensor], eps: float):
    """a (B, F) normalized by the batch's statistics (mean None) or the given ones; also
    returns the batch mean and unbiased variance (for the population averages)."""
    if mean is None or var is None:
        m = a.mean(0)
        v = a.var(0, unbiased=False)
        n = a.size(0)
        v_unbiased = v * n / max(n - 1, 1)
    else:
        m, v = mean, var
        v_unbiased = v
    out = gamma * (a - m) / torch.sqrt(v + eps)
    if beta is not None:
        out = out + beta
    return out, m, v_unbiased


@script
def batchnorm_lstm_steps(xn: torch.Tensor, w_hh: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                         g_h: torch.Tensor, g_c: torch.Tensor, b_c: torch.Tensor,
                         pop_h_mean: Optional[torch.Tensor], pop_h_var: Optional[torch.Tensor],
                         pop_c_mean: Optional[torch.Tensor], pop_c_var: Optional[torch.Tensor],
                         zone_c: Optional[torch.Tensor], zc_p: float, zone_h: Optional[torch.Tensor], zh_p: float,
                         eps: float):
    """xn (T, B, 4H) = BN(W_x x) + b; w_hh (4H, H); h, c (B, H); γ_h (4H), γ_c, β_c (H); the
    population statistics of each step (T, 4H) / (T, H) at evaluation, None in training ->
    outputs (T, B, H), h_T, c_T, and the batch statistics of each step (training)."""
    H = h.size(1)
    outs = []
    hm, hv, cm, cv = [], [], [], []
    for t in range(xn.size(0)):
        rec, m1, v1 = _bn(torch.mm(h, w_hh.t()), g_h, None, None if pop_h_mean is None else pop_h_mean[t],
                          None if pop_h_var is None else pop_h_var[t], eps)
        gates = xn[t] + rec
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        g = torch.tanh(gates[:, 2 * H:3 * H])
        o = torch.sigmoid(gates[:, 3 * H:])
        cn = f * c + i * g
        nc, m2, v2 = _bn(cn, g_c, b_c, None if pop_c_mean is None else pop_c_mean[t],
                         None if pop_c_var is None else pop_c_var[t], eps)
        hn = o * torch.tanh(nc)
        c, h = zoneout_step(cn, c, zone_c, t, zc_p), zoneout_step(hn, h, zone_h, t, zh_p)
        outs.append(h)
        hm.append(m1)
        hv.append(v1)
        cm.append(m2)
        cv.append(v2)
    return torch.stack(outs), h, c, torch.stack(hm), torch.stack(hv), torch.stack(cm), torch.stack(cv)


class BatchNormLSTMLayer(RecurrentLayer):
    exportable = False

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, zoneout_c: float = 0.0,
                 zoneout_h: float = 0.0, max_steps: int = 100):
        super().__init__(input_size, hidden_size, weight_drop)
        H = hidden_size
        k = H ** -0.5
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-k, k))
        bias = torch.zeros(4 * H)
        bias[H:2 * H] = 1.0  # the forget gate's
        self.bias = nn.Parameter(bias)
        self.gamma_x = nn.Parameter(torch.full((4 * H,), GAMMA0))
        self.gamma_h = nn.Parameter(torch.full((4 * H,), GAMMA0))
        self.gamma_c = nn.Parameter(torch.full((H,), GAMMA0))
        self.beta_c = nn.Parameter(torch.zeros(H))
        self.max_steps = max_steps
        for name, size in (("x", 4 * H), ("h", 4 * H), ("c", H)):
            self.register_buffer(f"mean_{name}", torch.zeros(max_steps, size))
            self.register_buffer(f"var_{name}", torch.ones(max_steps, size))
        self.zoneout_c, self.zoneout_h = zoneout_c, zoneout_h

    state_size = 3  # (h, c, steps so far)

    def _slots(self, T: int, done: torch.Tensor) -> torch.Tensor:
        """(T, B) statistics slot of each step of each column: its step since the start of the
        text (``done`` (B,) steps before this call), or the last slot beyond ``max_steps``."""
        steps = torch.arange(T, device=done.device).unsqueeze(1) + done.long().unsqueeze(0)
        return steps.clamp(max=self.max_steps - 1)

    @torch.no_grad()
    def _update(self, name: str, means: torch.Tensor, variances: torch.Tensor, slots: list[int]) -> None:
        """Fold one forward's per-step batch statistics (T, F) into the population averages of
        their ``slots``, in step order."""
        last = self.max_steps - 1
        head = sum(s < last for s in slots)  # steps with a slot of their own: the first ones
        for buf, stats in ((getattr(self, f"mean_{name}"), means), (getattr(self, f"var_{name}"), variances)):
            stats = stats.to(buf.dtype)
            if head:  # one update each, all at once
                idx = torch.tensor(slots[:head], device=buf.device)
                buf[idx] = buf[idx] * (1 - MOMENTUM) + stats[:head] * MOMENTUM
            k = len(slots) - head
            if k:  # k updates of the last slot in step order: (1 - m)^k b + sum_j m (1 - m)^(k-1-j) x_j
                w = MOMENTUM * (1 - MOMENTUM) ** torch.arange(k - 1, -1, -1, device=buf.device, dtype=buf.dtype)
                buf[last] = buf[last] * (1 - MOMENTUM) ** k + (w.unsqueeze(1) * stats[head:]).sum(0)

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, input_size), state (h, c, n) each (1, B, H) -> output (T, B, H), (h_T, c_T, n + T)."""
        T, B, _ = x.shape
        H, dtype = self.hidden_size, self.weight_hh.dtype
        slots = self._slots(T, state[2][0, :, 0])  # (T, B)
        with no_autocast(x.device), interpreted():
            xw = torch.matmul(x.to(dtype), self.weight_ih.t())  # (T, B, 4H)
            if self.training:
                mx, vx = xw.mean(1, keepdim=True), xw.var(1, unbiased=False, keepdim=True)  # (T, 1, 4H) per step
                pop = [None] * 4
            else:  # each column's step's population statistics: (T, B, F)
                mx, vx = self.mean_x[slots], self.var_x[slots]
                pop = [self.mean_h[slots], self.var_h[slots], self.mean_c[slots], self.var_c[slots]]
            xn = self.gamma_x * (xw - mx) / torch.sqrt(vx + EPS) + self.bias
            zc = draw_zone(self.zoneout_c, self.training, T, B, H, x.device, dtype, columns)
            zh = draw_zone(self.zoneout_h, self.training, T, B, H, x.device, dtype, columns)
            out, h, c, hm, hv, cm, cv = batchnorm_lstm_steps(
                xn, self.dropped(self.weight_hh), state[0][0].to(dtype), state[1][0].to(dtype), self.gamma_h,
                self.gamma_c, self.beta_c, *pop, zc.mask, zc.p, zh.mask, zh.p, EPS)
        if self.training:  # a training batch's columns start together: column 0's slots are all of theirs
            s = slots[:, 0].tolist()
            self._update("x", mx[:, 0].detach(), vx[:, 0].detach() * B / max(B - 1, 1), s)
            self._update("h", hm.detach(), hv.detach(), s)
            self._update("c", cm.detach(), cv.detach(), s)
        return out, (h.unsqueeze(0), c.unsqueeze(0), state[2] + T)
