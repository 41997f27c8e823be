"""The layer-normalized LSTM of Ba et al. 2016 (their eq. 20-22), PyTorch's gate order
i, f, g, o, with zoneout on c and h:

    gates = LN(W_h h_{t-1}; α_h, β_h) + LN(W_x x_t; α_x, β_x) + b       LN over the 4H gates
    c̃ = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g),     h̃ = σ(o) ⊙ tanh(LN(c̃; α_c, β_c))
    c_t, h_t: zoneout of c̃, h̃ (zoneout.py)

LN(a; α, β) = α ⊙ (a - mean(a)) / sqrt(var(a) + ε) + β over the features of each sample
and step, so training and evaluation compute the same thing and no statistics are kept.
The input half is normalized for all steps at once; the rest runs per step in TorchScript.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .masks import Columns, no_autocast
from .recurrent import RecurrentLayer
from .script import interpreted, script
from .zoneout import draw_zone, zoneout_step

EPS = 1e-5


@script
def layernorm_lstm_steps(xn: torch.Tensor, w_hh: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                         a_h: torch.Tensor, b_h: torch.Tensor, a_c: torch.Tensor, b_c: torch.Tensor,
                         zone_c: Optional[torch.Tensor], zc_p: float, zone_h: Optional[torch.Tensor], zh_p: float,
                         eps: float):
    """xn (T, B, 4H) = LN(W_x x) + b, w_hh (4H, H), h, c (B, H), the LN gains and biases ->
    outputs (T, B, H), h_T, c_T."""
    H = h.size(1)
    outs = []
    for t in range(xn.size(0)):
        gates = xn[t] + F.layer_norm(torch.mm(h, w_hh.t()), [4 * H], a_h, b_h, eps)
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        g = torch.tanh(gates[:, 2 * H:3 * H])
        o = torch.sigmoid(gates[:, 3 * H:])
        cn = f * c + i * g
        hn = o * torch.tanh(F.layer_norm(cn, [H], a_c, b_c, eps))
        c, h = zoneout_step(cn, c, zone_c, t, zc_p), zoneout_step(hn, h, zone_h, t, zh_p)
        outs.append(h)
    return torch.stack(outs), h, c


class LayerNormLSTMLayer(RecurrentLayer):
    exportable = False

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, zoneout_c: float = 0.0,
                 zoneout_h: float = 0.0):
        super().__init__(input_size, hidden_size, weight_drop)
        H = hidden_size
        k = H ** -0.5  # nn.LSTM's initialization
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-k, k))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.ln_x, self.ln_h, self.ln_c = nn.LayerNorm(4 * H, EPS), nn.LayerNorm(4 * H, EPS), nn.LayerNorm(H, EPS)
        self.zoneout_c, self.zoneout_h = zoneout_c, zoneout_h

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, input_size), state (h, c) each (1, B, H) -> output (T, B, H), (h_T, c_T)."""
        T, B, _ = x.shape
        H, dtype = self.hidden_size, self.weight_hh.dtype
        with no_autocast(x.device), interpreted():
            xn = self.ln_x(torch.matmul(x.to(dtype), self.weight_ih.t())) + self.bias  # (T, B, 4H)
            zc = draw_zone(self.zoneout_c, self.training, T, B, H, x.device, dtype, columns)
            zh = draw_zone(self.zoneout_h, self.training, T, B, H, x.device, dtype, columns)
            out, h, c = layernorm_lstm_steps(xn, self.dropped(self.weight_hh), state[0][0].to(dtype),
                                             state[1][0].to(dtype), self.ln_h.weight, self.ln_h.bias,
                                             self.ln_c.weight, self.ln_c.bias, zc.mask, zc.p, zh.mask, zh.p, EPS)
        return out, (h.unsqueeze(0), c.unsqueeze(0))
