"""StepLSTMLayer at evaluation, in plain PyTorch ops (no autograd.Function, no compiled
kernel), so that the layer can be traced or exported (ONNX).

At evaluation the zoneout family uses the expectation of its masks, a constant per variant
(gate order i, f, g, o; z = 0 where a variant is off):

    u_t  = i ⊙ g ⊙ (z_o if output zoneout else 1)
    o'_t = o_t + z_o (o_{t-1} - o_t)   (o_{-1}: the carried output gate of the state)
    c̃    = f ⊙ c_{t-1} + u_t,   h̃ = o' ⊙ tanh(c̃)
    c_t  = c̃ + z_c (c_{t-1} - c̃),  h_t = h̃ + z_h (h_{t-1} - h̃)

Recurrent dropout, cell dropout and Gal's dropout are the identity at evaluation, so with
z_c = z_h = z_o = 0 the layer is its ``nn.LSTM``, run as such.
"""

from __future__ import annotations

import torch

from .script import script


@script
def expected_recurrence(xproj: torch.Tensor, w_hh: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                        o_prev: torch.Tensor, z_c: float, z_h: float, z_o: float):
    """xproj (T, B, 4H) input projections with both biases, w_hh (4H, H), h, c and the
    previous output gate o_prev (B, H) -> outputs (T, B, H), h_T, c_T, o_T. Scripted, so an
    export keeps the loop over a dynamic T."""
    H = h.size(1)
    outs = []
    for t in range(xproj.size(0)):
        gates = xproj[t] + torch.mm(h, w_hh.t())
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        g = torch.tanh(gates[:, 2 * H:3 * H])
        o = torch.sigmoid(gates[:, 3 * H:])
        u = i * g
        op = o
        if z_o > 0.0:
            u = u * z_o
            op = o + z_o * (o_prev - o)
        cn = f * c + u
        hn = op * torch.tanh(cn)
        c = cn + z_c * (c - cn)
        h = hn + z_h * (h - hn)
        o_prev = o
        outs.append(h)
    return torch.stack(outs), h, c, o_prev


def expected_forward(layer, x: torch.Tensor, state):
    """The evaluation forward of a StepLSTMLayer ``layer``: x (T, B, I), state (h, c), or
    (h, c, o) with output-gate zoneout, each (1, B, H)."""
    p = layer.p
    z_c, z_h, z_o = p["zoneout_c"], p["zoneout_h"], p["output_zoneout"]
    lstm = layer.lstm
    if not (z_c or z_h or z_o):
        return lstm(x, state)
    T, B, _ = x.shape
    xproj = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, x.reshape(T * B, -1), lstm.weight_ih_l0.t())
    o = state[2][0] if len(state) > 2 else torch.zeros_like(state[0][0])  # unread when z_o = 0
    out, h, c, o = expected_recurrence(xproj.view(T, B, -1), lstm.weight_hh_l0, state[0][0], state[1][0], o,
                                       float(z_c), float(z_h), float(z_o))
    if len(state) > 2:
        return out, (h.unsqueeze(0), c.unsqueeze(0), o.unsqueeze(0))
    return out, (h.unsqueeze(0), c.unsqueeze(0))
