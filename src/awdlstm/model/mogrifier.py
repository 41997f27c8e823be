"""Mogrifier LSTM layer (Melis et al. 2019): the input and the previous state gate each
other for a few rounds before the usual LSTM step.

With x (size m) and h_{t-1} (size n), x^{-1} = x, h^0 = h_{t-1}, for i = 1 … r:

    i odd:   x^i = 2 σ(Q^i h^{i-1}) ⊙ x^{i-2}        Q^i (m × n)
    i even:  h^i = 2 σ(R^i x^{i-1}) ⊙ h^{i-2}        R^i (n × m)

then the LSTM step on the last x^i and h^i (gate order i, f, g, o, as nn.LSTM). With
``rank`` k > 0 each Q^i and R^i is a product of two matrices of rank k (Q^i = A B with A
(m × k), B (k × n)). r = 0 is a plain LSTM. Weight drop masks W_hh once per forward; the
gradient reaches the raw parameter through the mask.

The parameters of the LSTM step are an ``nn.LSTM``'s, as in the other layers. x_t depends
on h_{t-1}, so no input-side product can be done for all steps at once; the loop is a
TorchScript function (one implementation for training, evaluation and ONNX export, whose
loop stays a loop over a dynamic T).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .masks import Columns
from .script import script
from .weight_drop import drop_weight


@script
def mogrifier_recurrence(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor,
                         w_hh: torch.Tensor, bias: torch.Tensor, qs: list[torch.Tensor], rs: list[torch.Tensor]):
    """x (T, B, m), h and c (B, n); qs[j] = Q^{2j+1} (m, n), rs[j] = R^{2j+2} (n, m), in the
    order the rounds use them -> outputs (T, B, n), h_T, c_T."""
    n = h.size(1)
    outs = []
    for t in range(x.size(0)):
        xt, ht = x[t], h
        for i in range(len(qs) + len(rs)):
            if i % 2 == 0:
                xt = 2 * torch.sigmoid(torch.mm(ht, qs[i // 2].t())) * xt
            else:
                ht = 2 * torch.sigmoid(torch.mm(xt, rs[i // 2].t())) * ht
        gates = torch.addmm(bias, xt, w_ih.t()) + torch.mm(ht, w_hh.t())
        i_g = torch.sigmoid(gates[:, :n])
        f_g = torch.sigmoid(gates[:, n:2 * n])
        g_g = torch.tanh(gates[:, 2 * n:3 * n])
        o_g = torch.sigmoid(gates[:, 3 * n:])
        c = f_g * c + i_g * g_g
        h = o_g * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


class MogrifierLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, rounds: int = 5, rank: int = 0):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.hidden_size = hidden_size
        self.weight_drop = weight_drop
        self.rounds, self.rank = rounds, rank
        shapes = [(input_size, hidden_size) if i % 2 == 0 else (hidden_size, input_size) for i in range(rounds)]
        if rank:  # each matrix as a (rows, k) @ (k, cols) product
            self.left = nn.ParameterList(nn.Parameter(torch.empty(r, rank)) for r, _ in shapes)
            self.right = nn.ParameterList(nn.Parameter(torch.empty(rank, cl)) for _, cl in shapes)
            for p in list(self.left) + list(self.right):
                nn.init.uniform_(p, -1 / math.sqrt(p.size(1)), 1 / math.sqrt(p.size(1)))
        else:
            self.mats = nn.ParameterList(nn.Parameter(torch.empty(r, cl)) for r, cl in shapes)
            for p in self.mats:
                nn.init.uniform_(p, -1 / math.sqrt(p.size(1)), 1 / math.sqrt(p.size(1)))

    def matrices(self) -> list[torch.Tensor]:
        """Q^1, R^2, Q^3, … as full matrices."""
        if self.rank:
            return [a @ b for a, b in zip(self.left, self.right)]
        return list(self.mats)

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, m), state (h, c) each (1, B, n) -> output (T, B, n), new state. Weight
        drop's mask covers the whole matrix, so a block of columns needs nothing."""
        lstm = self.lstm
        w_hh = lstm.weight_hh_l0
        if self.training and self.weight_drop > 0:
            w_hh = drop_weight(w_hh, self.weight_drop)
        mats = self.matrices()
        out, h, c = mogrifier_recurrence(x, state[0][0], state[1][0], lstm.weight_ih_l0, w_hh,
                                         lstm.bias_ih_l0 + lstm.bias_hh_l0, mats[0::2], mats[1::2])
        return out, (h.unsqueeze(0), c.unsqueeze(0))

    def init_state(self, batch_size: int):
        zeros = self.lstm.weight_hh_l0.new_zeros(1, batch_size, self.hidden_size)
        return zeros, zeros.clone()
