"""The plain tanh RNN (Elman), with zoneout on h:

    h̃ = tanh(W_ih x + b_ih + W_hh h_{t-1} + b_hh),   h_t = h̃ + d ⊙ (h_{t-1} - h̃)   (zoneout.py)

Without zoneout the layer is PyTorch's fused ``nn.RNN``; weight drop (DropConnect on W_hh)
is one mask per forward either way. The per-step path is TorchScript; the state is (h,).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .masks import Columns, no_autocast
from .recurrent import RecurrentLayer
from .script import interpreted, script
from .zoneout import draw_zone


@script
def rnn_steps(xproj: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, h: torch.Tensor,
              zone: torch.Tensor):
    """xproj (T, B, H) = x W_ih^T + b_ih, w_hh (H, H), b_hh (H), h (B, H); zone (T, B, H): the
    zoneout mask, or z everywhere at evaluation -> outputs (T, B, H), h_T."""
    outs = []
    for t in range(xproj.size(0)):
        new = torch.tanh(xproj[t] + torch.addmm(b_hh, h, w_hh.t()))
        h = new + zone[t] * (h - new)
        outs.append(h)
    return torch.stack(outs), h


class RNNLayer(RecurrentLayer):
    state_size = 1

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, zoneout_h: float = 0.0):
        super().__init__(input_size, hidden_size, weight_drop)
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity="tanh")
        self.zoneout_h = zoneout_h

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, input_size), state (h,) (1, B, H) -> output (T, B, H), (h_T,)."""
        r = self.rnn
        dtype = r.weight_hh_l0.dtype
        with no_autocast(x.device), interpreted():
            x, h0 = x.to(dtype), state[0].to(dtype)
            if not self.training:
                return self.export_forward(x, (h0,))
            w_hh = self.dropped(r.weight_hh_l0)
            if not self.zoneout_h:
                out, h = functional_call(r, {"weight_hh_l0": w_hh}, (x, h0)) if w_hh is not r.weight_hh_l0 \
                    else r(x, h0)
                return out, (h,)
            T, B, _ = x.shape
            xproj = torch.addmm(r.bias_ih_l0, x.reshape(T * B, -1), r.weight_ih_l0.t()).view(T, B, -1)
            zone = draw_zone(self.zoneout_h, True, T, B, self.hidden_size, x.device, dtype, columns)
            out, h = rnn_steps(xproj, w_hh, r.bias_hh_l0, h0[0], zone.dense(xproj.shape, xproj))
        return out, (h.unsqueeze(0),)

    def export_forward(self, x: torch.Tensor, state):
        """The evaluation forward in exportable operations: the fused cell, or with zoneout the
        scripted loop at its expectation (an ONNX Loop over a dynamic T)."""
        r = self.rnn
        h0 = state[0]
        if not self.zoneout_h:
            out, h = r(x, h0)
            return out, (h,)
        T, B, _ = x.shape
        xproj = torch.addmm(r.bias_ih_l0, x.reshape(T * B, -1), r.weight_ih_l0.t()).view(T, B, -1)
        out, h = rnn_steps(xproj, r.weight_hh_l0, r.bias_hh_l0, h0[0], torch.full_like(xproj, self.zoneout_h))
        return out, (h.unsqueeze(0),)
