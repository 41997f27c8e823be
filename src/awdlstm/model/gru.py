"""A GRU layer (Cho et al. 2014, PyTorch's gate order r, z, n) with zoneout on h and
Semeniuta et al.'s recurrent dropout in its GRU form:

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) ⊙ m       m: recurrent dropout of the candidate
    h̃ = (1 - z) ⊙ n + z ⊙ h_{t-1}
    h_t = h̃ + d ⊙ (h_{t-1} - h̃)                           zoneout (zoneout.py)

Dropping the candidate n, not h, leaves the memory h_{t-1} intact (Semeniuta et al. 2016).
With neither on (and at evaluation without zoneout) the layer is PyTorch's fused ``nn.GRU``;
weight drop (DropConnect on W_hh) is one mask per forward either way. The per-step path is
TorchScript; the state is (h,).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .masks import Columns, no_autocast
from .recurrent import RecurrentLayer
from .script import interpreted, script
from .zoneout import draw_zone, keep_mask


@script
def gru_steps(xproj: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, h: torch.Tensor,
              zone: torch.Tensor, keep: torch.Tensor):
    """xproj (T, B, 3H) = x W_ih^T + b_ih, w_hh (3H, H), b_hh (3H), h (B, H); zone (T, B, H):
    the zoneout mask, or z everywhere at evaluation; keep (T, B, H): the candidate's dropout
    mask (ones at evaluation) -> outputs (T, B, H), h_T. No optional argument, so that the
    exporter turns the loop into an ONNX Loop."""
    H = h.size(1)
    outs = []
    for t in range(xproj.size(0)):
        gx = xproj[t]
        gh = torch.addmm(b_hh, h, w_hh.t())
        r = torch.sigmoid(gx[:, :H] + gh[:, :H])
        z = torch.sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:]) * keep[t]
        new = n + z * (h - n)
        h = new + zone[t] * (h - new)
        outs.append(h)
    return torch.stack(outs), h


class GRULayer(RecurrentLayer):
    state_size = 1

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, zoneout_h: float = 0.0,
                 recurrent_dropout: float = 0.0):
        super().__init__(input_size, hidden_size, weight_drop)
        self.gru = nn.GRU(input_size, hidden_size)
        self.zoneout_h, self.recurrent_dropout = zoneout_h, recurrent_dropout

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, input_size), state (h,) (1, B, H) -> output (T, B, H), (h_T,). The
        recurrence runs in the weights' dtype (float32) even under autocast."""
        g = self.gru
        dtype = g.weight_hh_l0.dtype
        with no_autocast(x.device), interpreted():
            x, h0 = x.to(dtype), state[0].to(dtype)
            if not self.training:
                return self.export_forward(x, (h0,))
            w_hh = self.dropped(g.weight_hh_l0)
            if not self.zoneout_h and not self.recurrent_dropout:
                out, h = functional_call(g, {"weight_hh_l0": w_hh}, (x, h0)) if w_hh is not g.weight_hh_l0 \
                    else g(x, h0)
                return out, (h,)
            T, B, _ = x.shape
            H = self.hidden_size
            xproj = torch.addmm(g.bias_ih_l0, x.reshape(T * B, -1), g.weight_ih_l0.t()).view(T, B, -1)
            zone = draw_zone(self.zoneout_h, True, T, B, H, x.device, dtype, columns).dense((T, B, H), xproj)
            keep = keep_mask(self.recurrent_dropout, True, T, B, H, x.device, dtype, columns)
            out, h = gru_steps(xproj, w_hh, g.bias_hh_l0, h0[0], zone, xproj.new_ones(T, B, H) if keep is None else keep)
        return out, (h.unsqueeze(0),)

    def export_forward(self, x: torch.Tensor, state):
        """The evaluation forward, in exportable operations: the fused cell, or with zoneout the
        scripted loop at its expectation (an ONNX Loop over a dynamic T); no dropout."""
        g = self.gru
        h0 = state[0]
        if not self.zoneout_h:
            out, h = g(x, h0)
            return out, (h,)
        T, B, _ = x.shape
        xproj = torch.addmm(g.bias_ih_l0, x.reshape(T * B, -1), g.weight_ih_l0.t()).view(T, B, -1)
        ones = torch.ones_like(xproj[:, :, :self.hidden_size])
        out, h = gru_steps(xproj, g.weight_hh_l0, g.bias_hh_l0, h0[0], ones * self.zoneout_h, ones)
        return out, (h.unsqueeze(0),)
