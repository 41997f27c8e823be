"""Mogrifier LSTM layer (Melis et al. 2019): the input and the previous state gate each
other for a few rounds before the usual LSTM step.

With x (size m) and h_{t-1} (size n), x^{-1} = x, h^0 = h_{t-1}, for i = 1 … r:

    i odd:   x^i = 2 σ(Q^i h^{i-1}) ⊙ x^{i-2}        Q^i (m × n)
    i even:  h^i = 2 σ(R^i x^{i-1}) ⊙ h^{i-2}        R^i (n × m)

then the LSTM step on the last x^i and h^i (gate order i, f, g, o, as nn.LSTM). With
``rank`` k > 0 each Q^i and R^i is a product of two matrices of rank k (Q^i = A B with A
(m × k), B (k × n)), and the loop multiplies by the two factors in turn: k (m + n) per
row and round instead of m n. r = 0 is a plain LSTM. Weight drop masks W_hh once per forward; the
gradient reaches the raw parameter through the mask.

The parameters of the LSTM step are an ``nn.LSTM``'s, as in the other layers. x_t depends
on h_{t-1}, so no input-side product can be done for all steps at once: every round is a
product per step. ``MogrifierFunction`` runs the loop without autograd and has a
hand-written backward; on CPU in float32 both loops are compiled (awdlstm/csrc/kernels.cpp),
elsewhere they run as PyTorch ops here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import native as _native
from .masks import Columns, no_autocast
from .recurrent import LSTMLayer


class MogrifierFunction(torch.autograd.Function):
    """The recurrence above with a hand-written backward. Autograd through the loop records
    every round's product and pointwise op per step and computes each weight gradient once
    per step; here the forward keeps each round's operands and gates, the reverse loop
    carries only the gradients of x and h through the rounds (one product per round and
    one for the gates), and every weight gradient (W_ih, W_hh, b, each Q and R) is one
    matrix product over all T·B rows after the loop.

    ``factored``: ``mats`` are the pairs A^1, B^1, A^2, B^2, … of Q^i = A^i B^i, and each
    round's product is two thin ones, (driver B^T) A^T: with rank k, k (rows + cols)
    multiply-adds per row instead of rows · cols. The middle u = driver B^T and, in the
    backward, v = dpre A give the factors' gradients: dA = dpre^T u, dB = v^T driver."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, factored, *mats):
        """x (T, B, m), h0 and c0 (B, n), w_ih (4n, m), w_hh (4n, n), bias (4n), mats
        Q^1, R^2, Q^3, … (or their factor pairs) -> outputs (T, B, n), h_T, c_T."""
        w = torch.cat([w_ih, w_hh], 1)  # (4n, m + n): one product for both halves of the gates
        ctx.native = _native.usable(x, h0, c0, w, bias, *mats)
        ctx.factored = factored
        rounds = len(mats) // (2 if factored else 1)
        if ctx.native:
            xs, hs, xh, acts, cs, tcs, out, *rest = _native.native().mogrifier_forward(
                x, h0, c0, w, bias, list(mats), factored)
            sig, us = rest[:rounds], rest[rounds:]
        else:
            xs, hs, xh, acts, cs, tcs, out, sig, us = _forward_loop(x, h0, c0, w, bias, mats, factored)
        ctx.rounds = rounds
        ctx.save_for_backward(w, xs, hs, xh, acts, cs, tcs, *mats, *sig, *us)
        return out, out[-1].clone(), cs[-1].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c):
        w, xs, hs, xh, acts, cs, tcs, *rest = ctx.saved_tensors
        r, f = ctx.rounds, 2 if ctx.factored else 1
        mats, sig, us = rest[:f * r], rest[f * r:f * r + r], rest[f * r + r:]
        # Autograd materializes the gradient of an unused output as zeros, so none is None.
        if ctx.native:
            dx, dh, dc, dgates, *out = _native.native().mogrifier_backward(
                grad_out, grad_h, grad_c, w, list(mats), xs, hs, acts, cs, tcs, list(sig), ctx.factored)
            dpres, vs = out[:r], out[r:]
        else:
            dx, dh, dc, dgates, dpres, vs = _backward_loop(grad_out, grad_h, grad_c, w, mats, xs, hs, acts, cs, tcs,
                                                           sig, ctx.factored)
        T, B, n4 = acts.shape
        m, rows = xs.size(3), T * B
        dw = dgates.reshape(rows, n4).t() @ xh.reshape(rows, -1)  # (4n, m + n)
        dmats = []
        for i, dpre in enumerate(dpres):  # Q: (m, rows) @ h^{2k} (rows, n); R: (n, rows) @ x^{2k+1} (rows, m)
            driver = (hs[i // 2] if i % 2 == 0 else xs[i // 2 + 1]).reshape(rows, -1)
            dpre = dpre.reshape(rows, -1)
            if ctx.factored:  # dA = dpre^T u (out, k), dB = v^T driver (k, in)
                dmats += [dpre.t() @ us[i].reshape(rows, -1), vs[i].reshape(rows, -1).t() @ driver]
            else:
                dmats.append(dpre.t() @ driver)
        return (dx, dh, dc, dw[:, :m], dw[:, m:], dgates.sum((0, 1)), None, *dmats)


def _round_product(driver, mats, i, factored, u_out=None):
    """driver @ Q^T for round i; factored: (driver B^T) A^T, u = driver B^T kept in ``u_out``."""
    if not factored:
        return driver @ mats[i].t()
    u = torch.matmul(driver, mats[2 * i + 1].t(), out=u_out)
    return u @ mats[2 * i].t()


def _forward_loop(x, h0, c0, w, bias, mats, factored=False):
    """MogrifierFunction's forward in PyTorch ops (other dtypes and devices, or no
    compiler); the same outputs as the compiled ``mogrifier_forward``."""
    T, B, m = x.shape
    n = h0.size(1)
    f = 2 if factored else 1
    rounds = len(mats) // f
    outs = [mats[f * i] for i in range(rounds)]  # Q or A: (rows, ·)
    wt = w.t()
    xs = x.new_empty((rounds + 1) // 2 + 1, T, B, m)  # x^{-1} = x_t, x^1, x^3, …
    hs = x.new_empty(rounds // 2 + 1, T, B, n)  # h^0 = h_{t-1}, h^2, h^4, …
    sig = [x.new_empty(T, B, q.size(0)) for q in outs]  # σ(Q h) or σ(R x) of each round
    us = [x.new_empty(T, B, q.size(1)) for q in outs] if factored else []  # driver B^T of each round
    xh = x.new_empty(T, B, m + n)  # the last x^i and h^i side by side, the gates' input
    acts = x.new_empty(T, B, 4 * n)  # i, f, g, o after their nonlinearities
    cs = x.new_empty(T + 1, B, n)  # c_0 … c_T
    tcs = x.new_empty(T, B, n)  # tanh(c_t)
    out = x.new_empty(T, B, n)  # h_1 … h_T
    xs[0] = x
    cs[0] = c0
    h = h0
    for t in range(T):
        hs[0, t] = h
        for i in range(rounds):
            k, s = i // 2, sig[i][t]
            u = us[i][t] if factored else None
            if i % 2 == 0:  # x^{2k+1} = 2 σ(Q h^{2k}) ⊙ x^{2k-1}
                torch.sigmoid(_round_product(hs[k, t], mats, i, factored, u), out=s)
                torch.mul(s, xs[k, t], out=xs[k + 1, t]).mul_(2)
            else:  # h^{2k+2} = 2 σ(R x^{2k+1}) ⊙ h^{2k}
                torch.sigmoid(_round_product(xs[k + 1, t], mats, i, factored, u), out=s)
                torch.mul(s, hs[k, t], out=hs[k + 1, t]).mul_(2)
        xh[t, :, :m] = xs[-1, t]
        xh[t, :, m:] = hs[-1, t]
        gates = torch.addmm(bias, xh[t], wt)
        a = acts[t]
        torch.sigmoid(gates, out=a)
        torch.tanh(gates[:, 2 * n:3 * n], out=a[:, 2 * n:3 * n])
        torch.addcmul(a[:, :n] * a[:, 2 * n:3 * n], a[:, n:2 * n], cs[t], out=cs[t + 1])
        h = torch.mul(a[:, 3 * n:], torch.tanh(cs[t + 1], out=tcs[t]), out=out[t])
    return xs, hs, xh, acts, cs, tcs, out, sig, us


def _backward_loop(grad_out, grad_h, grad_c, w, mats, xs, hs, acts, cs, tcs, sig, factored=False):
    """The reverse loop of MogrifierFunction's backward in PyTorch ops, as the compiled
    ``mogrifier_backward``: -> dx (T, B, m), dh_0, dc_0, dgates (T, B, 4n), each round's
    pre-activation gradient (T, B, rows) and (factored) each round's v = dpre A (T, B, k)."""
    T, B, n4 = acts.shape
    n, m = n4 // 4, xs.size(3)
    i_, f_, g_, o_ = (acts[..., k * n:(k + 1) * n] for k in range(4))
    # Derivative factors that do not depend on the carried gradient, for all steps at once.
    a3 = torch.stack([g_ * i_ * (1 - i_), cs[:-1] * f_ * (1 - f_), i_ * (1 - g_ * g_)], 2)  # (T, B, 3, n)
    a_o = o_ * (1 - o_) * tcs
    bc = o_ * (1 - tcs * tcs)
    # Round i made new = 2 s ⊙ gated with s = σ(pre): the new value's gradient g gives
    # dpre = g ⊙ gated ⊙ 2 s (1 - s) and, for the gated value, g ⊙ 2 s.
    two_s = [2 * s for s in sig]
    dsig = [2 * s * (1 - s) for s in sig]
    dgates = torch.empty_like(acts)
    dpres = [torch.empty_like(s) for s in sig]
    vs = [s.new_empty(T, B, mats[2 * i].size(1)) for i, s in enumerate(sig)] if factored else []
    dx = torch.empty_like(xs[0])
    dh, dc = grad_h.clone(), grad_c.clone()

    def back(dpre, i, t):  # dpre @ Q, through v = dpre A when factored
        if not factored:
            return dpre @ mats[i]
        return torch.matmul(dpre, mats[2 * i], out=vs[i][t]) @ mats[2 * i + 1]

    for t in range(T - 1, -1, -1):
        dh = dh + grad_out[t]
        dc = torch.addcmul(dc, dh, bc[t])
        dg = dgates[t]
        torch.mul(dc.unsqueeze(1), a3[t], out=dg[:, :3 * n].view(B, 3, n))
        torch.mul(dh, a_o[t], out=dg[:, 3 * n:])
        dc = dc * f_[t]
        dxh = dg @ w  # (B, m + n)
        gx, gh = dxh[:, :m], dxh[:, m:]
        for i in range(len(sig) - 1, -1, -1):
            k = i // 2
            if i % 2 == 0:  # gx is ∂L/∂x^{2k+1}; the round gated x^{2k-1} by σ(Q h^{2k})
                dpre = torch.mul(gx * xs[k, t], dsig[i][t], out=dpres[i][t])
                gh = gh + back(dpre, i, t)
                gx = gx * two_s[i][t]
            else:  # gh is ∂L/∂h^{2k+2}; the round gated h^{2k} by σ(R x^{2k+1})
                dpre = torch.mul(gh * hs[k, t], dsig[i][t], out=dpres[i][t])
                gx = gx + back(dpre, i, t)
                gh = gh * two_s[i][t]
        dx[t] = gx
        dh = gh
    return dx, dh, dc, dgates, dpres, vs


class MogrifierLayer(LSTMLayer):
    exportable = False  # its rounds do not export as an ONNX loop yet

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, rounds: int = 5, rank: int = 0):
        super().__init__(input_size, hidden_size, weight_drop)
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

    def operands(self) -> list[torch.Tensor]:
        """What the loop multiplies by: the full matrices, or the factor pairs A^1, B^1, …"""
        if self.rank:
            return [p for a, b in zip(self.left, self.right) for p in (a, b)]
        return list(self.mats)

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, m), state (h, c) each (1, B, n) -> output (T, B, n), new state. Weight
        drop's mask covers the whole matrix, so a block of columns needs nothing."""
        lstm = self.lstm
        w_hh = self.dropped(lstm.weight_hh_l0)
        with no_autocast(x.device):  # the recurrence runs in the weights' dtype
            dtype = w_hh.dtype
            out, h, c = MogrifierFunction.apply(x.to(dtype), state[0][0].to(dtype), state[1][0].to(dtype),
                                                lstm.weight_ih_l0, w_hh, lstm.bias_ih_l0 + lstm.bias_hh_l0,
                                                bool(self.rank), *self.operands())
        return out, (h.unsqueeze(0), c.unsqueeze(0))

