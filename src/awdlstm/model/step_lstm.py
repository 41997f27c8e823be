"""A per-time-step LSTM layer for zoneout and the recurrent-dropout family.

All variants are one recurrence with optional per-step masks (PyTorch gate order i, f, g, o):

    gates  = x_t W_ih^T + b  +  (h_{t-1} ⊙ m_gal) W_hh^T
    u      = i ⊙ g ⊙ m_u                        recurrent dropout (Semeniuta) / output-gate variant
    c̃      = (f ⊙ c_{t-1} + u) ⊙ m_cell          cell dropout
    o'     = o + z_o ⊙ (o_{t-1} - o)             zoneout on the output gate (o_{-1} carried)
    h̃      = o' ⊙ tanh(c̃)
    c_t    = c̃ + z_c ⊙ (c_{t-1} - c̃)             zoneout on the cell
    h_t    = h̃ + z_h ⊙ (h_{t-1} - h̃)             zoneout on the hidden state

A mask that is absent is 1 (m_*) or 0 (z_*). The input projection for all steps is one
matrix product done by autograd outside; ``StepLSTMFunction`` runs the loop without
autograd, saves the activations, and its backward is a hand-written reverse loop whose
W_hh gradient is one matrix product over all steps. W_hh may be a weight-dropped copy: the
gradient flows on to the raw parameter.

With output-gate zoneout the layer's state is (h, c, o): the previous step's output gate
is carried like h and c (zeros at the start of a text), so a text scored in one call, token
by token or in chunks of any length reads the same numbers. Like the rest of the state
between BPTT windows, the carried o is a constant of the next call: no gradient flows
back into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import native as _native
from .expected_lstm import expected_forward
from .masks import Columns, bernoulli, no_autocast
from .recurrent import LSTMLayer

Mask = torch.Tensor | float | None  # (T, B, H) per step, (B, H) per sequence, a constant, or absent


def _at(m: Mask, t: int):
    return m[t] if torch.is_tensor(m) and m.dim() == 3 else m


@dataclass
class StepMasks:
    """The per-step masks of one forward. Tensors are (T, B, H), except ``gal`` (B, H)."""

    u: Mask = None
    cell: Mask = None
    z_c: Mask = None
    z_h: Mask = None
    z_o: Mask = None
    gal: Mask = None


def _native_args(masks) -> list:
    """Masks as the compiled kernels take them: (tensor or None, constant or None) pairs for
    u, cell, z_c, z_h, z_o, then the Gal tensor."""
    args = []
    for m in masks[:5]:
        args += [m, None] if torch.is_tensor(m) or m is None else [None, float(m)]
    return args + [masks[5]]


def _use_native(*tensors) -> bool:
    return _native.usable(*(t for t in tensors if torch.is_tensor(t)))


class StepLSTMFunction(torch.autograd.Function):
    """The recurrence above. On CPU in float32 both loops run compiled
    (awdlstm/csrc/kernels.cpp: per step one GEMM and one fused pointwise pass). Elsewhere
    they run here: per step the forward issues about ten tensor ops and the backward about
    a dozen, every derivative factor that does not depend on the carried gradient being
    computed for all steps at once before the reverse loop."""

    @staticmethod
    def forward(ctx, xproj, w_hh, h0, c0, o0, m_u, m_cell, z_c, z_h, z_o, m_gal):
        """xproj (T, B, 4H), w_hh (4H, H), h0, c0 and the previous output gate o0 (B, H; None:
        no previous gate) -> outputs (T, B, H), h_T, c_T, o_T."""
        masks = (m_u, m_cell, z_c, z_h, z_o, m_gal)
        ctx.masks = masks
        ctx.o0 = o0
        ctx.native = _use_native(xproj, w_hh, h0, c0, *masks)
        if ctx.native:
            acts, cs, ctil, out = _native.native().step_forward(xproj.contiguous(), w_hh, h0, c0,
                                                                 *_native_args(masks), _gates0(o0, xproj))
            ctx.save_for_backward(w_hh, acts, cs, ctil, out, h0)
            return out, out[-1].clone(), cs[-1].clone(), acts[-1, :, 3 * h0.size(1):].clone()
        T, B, H4 = xproj.shape
        H = H4 // 4
        acts = xproj.new_empty(T, B, H4)  # i, f, g, o after their nonlinearities
        cs = xproj.new_empty(T + 1, B, H)  # c_0 .. c_T
        ctil = xproj.new_empty(T, B, H)  # tanh(c~_t)
        out = xproj.new_empty(T, B, H)  # h_1 .. h_T
        cs[0] = c0
        wt = w_hh.t()
        h, o_prev = h0, o0
        for t in range(T):
            hin = h if m_gal is None else h * m_gal
            gates = torch.addmm(xproj[t], hin, wt)
            a = acts[t]
            torch.sigmoid(gates, out=a)
            torch.tanh(gates[:, 2 * H: 3 * H], out=a[:, 2 * H: 3 * H])
            i, f, g, o = a[:, :H], a[:, H: 2 * H], a[:, 2 * H: 3 * H], a[:, 3 * H:]
            mu, mc, zc, zh, zo = _at(m_u, t), _at(m_cell, t), _at(z_c, t), _at(z_h, t), _at(z_o, t)
            u = i * g
            if mu is not None:
                u.mul_(mu)
            if zc is None and mc is None:
                cn = torch.addcmul(u, f, cs[t], out=cs[t + 1])
            else:
                cn = torch.addcmul(u, f, cs[t])
                if mc is not None:
                    cn.mul_(mc)
                if zc is None:
                    cs[t + 1] = cn
                else:
                    torch.lerp(cn, cs[t], zc, out=cs[t + 1])
            tc = torch.tanh(cn, out=ctil[t])
            op = o if zo is None or o_prev is None else torch.lerp(o, o_prev, zo)
            if zh is None:
                h = torch.mul(op, tc, out=out[t])
            else:
                h = torch.lerp(op * tc, h, zh, out=out[t])
            o_prev = o
        ctx.save_for_backward(w_hh, acts, cs, ctil, out, h0)
        return out, out[T - 1].clone(), cs[T].clone(), acts[T - 1, :, 3 * H:].clone()

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c, grad_o):
        # grad_o is dropped: the carried output gate is a constant of the next call (see above).
        w_hh, acts, cs, ctil, out, h0 = ctx.saved_tensors
        m_u, m_cell, z_c, z_h, z_o, m_gal = ctx.masks
        o0 = ctx.o0
        T, B, H4 = acts.shape
        H = H4 // 4
        # Autograd materializes the gradient of an unused output as zeros, so none is None.
        if ctx.native:
            dgates, dh, dc = _native.native().step_backward(grad_out, grad_h, grad_c, w_hh, acts, cs, ctil,
                                                           *_native_args(ctx.masks), _gates0(o0, acts))
            return (dgates, _recurrent_weight_grad(dgates, out, h0, m_gal), dh, dc,
                    None, None, None, None, None, None, None)
        i, f, g, o = (acts[..., k * H:(k + 1) * H] for k in range(4))
        # Output gate as used: o'_t = lerp(o_t, o_{t-1}, z_o), with o_{-1} the carried gate
        # (without one, step 0 uses its own: o'_0 = o_0).
        previous = o[:1] if o0 is None else o0.unsqueeze(0)
        op = o if z_o is None else torch.lerp(o, torch.cat([previous, o[:-1]]), z_o)
        # Factors of each gate's pre-activation gradient, for all steps at once:
        #   d(pre_i, pre_f, pre_g) = dpre * (m_u g i(1-i), c_{t-1} f(1-f), m_u i (1-g^2)),
        #   d(pre_o) = do * o(1-o),  dc~ += dh~ * o' (1 - tanh^2).
        a_i, a_g = g * i * (1 - i), i * (1 - g * g)
        if m_u is not None:
            a_i, a_g = a_i * m_u, a_g * m_u
        a3 = torch.stack([a_i, cs[:-1] * f * (1 - f), a_g], dim=2)  # (T, B, 3, H)
        a_o = o * (1 - o)
        bc = op * (1 - ctil * ctil)
        om_zh = None if z_h is None else 1 - z_h
        om_zc = None if z_c is None else 1 - z_c
        om_zo = None if z_o is None else 1 - z_o
        dgates = torch.empty_like(acts)
        dh, dc = grad_h.clone(), grad_c.clone()
        do_next = None  # gradient reaching o_t through o'_{t+1}
        for t in range(T - 1, -1, -1):
            dh = dh + grad_out[t]
            zh, zc, zo, mc = _at(z_h, t), _at(z_c, t), _at(z_o, t), _at(m_cell, t)
            dhn, dh_prev = (dh, None) if zh is None else (dh * _at(om_zh, t), dh * zh)
            dcn, dc_prev = (dc, None) if zc is None else (dc * _at(om_zc, t), dc * zc)
            dcn = torch.addcmul(dcn, dhn, bc[t])
            do = dhn * ctil[t]
            if zo is not None and (t > 0 or o0 is not None):
                do_here_prev = do * zo  # at t = 0: towards the carried o_{-1}, a constant (dropped)
                do = do * _at(om_zo, t)
            else:
                do_here_prev = None
            if do_next is not None:
                do = do + do_next
            do_next = do_here_prev
            dpre = dcn if mc is None else dcn * mc
            dg = dgates[t]
            torch.mul(dpre.unsqueeze(1), a3[t], out=dg[:, : 3 * H].view(B, 3, H))
            torch.mul(do, a_o[t], out=dg[:, 3 * H:])
            if m_gal is None and dh_prev is not None:
                dh = torch.addmm(dh_prev, dg, w_hh)
            else:
                dh = dg @ w_hh
                if m_gal is not None:
                    dh = dh * m_gal
                if dh_prev is not None:
                    dh = dh + dh_prev
            dc = dpre * f[t] if dc_prev is None else torch.addcmul(dc_prev, dpre, f[t])
        return dgates, _recurrent_weight_grad(dgates, out, h0, m_gal), dh, dc, None, None, None, None, None, None, None


def _gates0(o0, like):
    """The kernels' "gates of step -1": (B, 4H) zeros with o0 in the output gate's columns,
    or None without a carried gate."""
    if o0 is None:
        return None
    g = o0.new_zeros(o0.size(0), 4 * o0.size(1))
    g[:, 3 * o0.size(1):] = o0
    return g


def _recurrent_weight_grad(dgates, out, h0, m_gal):
    """dL/dW_hh, (4H, H): one product over all steps and sequences of the gate gradients
    dgates (T, B, 4H) and the recurrent inputs h_{t-1} (⊙ m_gal)."""
    T, B, H4 = dgates.shape
    hin = torch.cat([h0.unsqueeze(0), out[:-1]])  # h_{t-1} for every t: (T, B, H)
    if m_gal is not None:
        hin = hin * m_gal
    return dgates.reshape(T * B, H4).t() @ hin.reshape(T * B, -1)


def step_lstm(xproj, w_hh, h0, c0, masks: StepMasks, o0=None):
    """-> (out, h_T, c_T, o_T); o0 the carried output gate (B, H) or None."""
    return StepLSTMFunction.apply(xproj, w_hh, h0, c0, o0, masks.u, masks.cell, masks.z_c, masks.z_h,
                                  masks.z_o, masks.gal)


class StepLSTMLayer(LSTMLayer):
    """One LSTM layer with zoneout / recurrent-dropout variants and weight drop.

    Probabilities (0 turns a variant off):
      zoneout_c, zoneout_h: zoneout on the cell and the hidden state, masks per step and
          unit; evaluation uses the expectation (z = p).
      recurrent_dropout: Semeniuta's dropout of the cell update i ⊙ g, per step and unit,
          scaled by 1 / (1 - p) in training (identity at evaluation).
      cell_dropout: dropout of the new cell c̃, per step and unit, scaled by 1 / (1 - p).
      output_zoneout: the zoneout paper's output-gate variant with one mask d per step and
          unit: c_t = f ⊙ c_{t-1} + d ⊙ i ⊙ g, h_t = ((1 - d) ⊙ o_t + d ⊙ o_{t-1}) ⊙ tanh(c_t);
          evaluation uses E[d] = p.
      variational_x, variational_h: Gal's dropout, one mask per sequence on x_t and on
          h_{t-1} inside the gates, scaled by 1 / (1 - p).
    """

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0, zoneout_c: float = 0.0,
                 zoneout_h: float = 0.0, recurrent_dropout: float = 0.0, cell_dropout: float = 0.0,
                 output_zoneout: float = 0.0, variational_x: float = 0.0, variational_h: float = 0.0):
        super().__init__(input_size, hidden_size, weight_drop)
        self.state_size = 3 if output_zoneout else 2  # (h, c, o): the previous output gate is carried
        self.p = dict(zoneout_c=zoneout_c, zoneout_h=zoneout_h, recurrent_dropout=recurrent_dropout,
                      cell_dropout=cell_dropout, output_zoneout=output_zoneout,
                      variational_x=variational_x, variational_h=variational_h)

    def draw_masks(self, T: int, B: int, device=None, dtype=torch.float32,
                   columns: Columns | None = None) -> StepMasks:
        """Training masks for one forward (drawn from the device's global generator, in the
        recurrence's dtype), or the evaluation expectations. Per-step masks are (T, B, H),
        the Gal mask (B, H); with ``columns`` they are the full batch's masks cut to the block."""
        p, H = self.p, self.hidden_size
        if not self.training:
            return StepMasks(z_c=p["zoneout_c"] or None, z_h=p["zoneout_h"] or None,
                             z_o=p["output_zoneout"] or None, u=p["output_zoneout"] or None)

        def draw(q, shape=(T, B, H), batch_dim=1):
            return bernoulli(shape, q, batch_dim, columns, device, dtype)

        m = StepMasks()
        if p["zoneout_c"]:
            m.z_c = draw(p["zoneout_c"])
        if p["zoneout_h"]:
            m.z_h = draw(p["zoneout_h"])
        if p["recurrent_dropout"]:
            m.u = (1 - draw(p["recurrent_dropout"])) / (1 - p["recurrent_dropout"])
        if p["output_zoneout"]:
            d = draw(p["output_zoneout"])
            m.z_o = d
            m.u = d if m.u is None else m.u * d
        if p["cell_dropout"]:
            m.cell = (1 - draw(p["cell_dropout"])) / (1 - p["cell_dropout"])
        if p["variational_h"]:
            m.gal = (1 - draw(p["variational_h"], (B, H), 0)) / (1 - p["variational_h"])
        return m

    def forward(self, x: torch.Tensor, state, columns: Columns | None = None):
        """x (T, B, input_size), state (h, c) or, with output-gate zoneout, (h, c, o), each
        (1, B, H) -> output (T, B, H), new state.

        The recurrence runs in the parameters' dtype even under autocast: the compiled
        kernel is float32, and carrying c_t through hundreds of steps in 16 bits loses it.
        Only the input projection takes the autocast dtype."""
        lstm = self.lstm
        T, B, _ = x.shape
        dtype = lstm.weight_hh_l0.dtype
        if self.training and self.p["variational_x"]:
            keep = 1 - bernoulli((1, B, x.size(2)), self.p["variational_x"], 1, columns, x.device, x.dtype)
            x = x * keep / (1 - self.p["variational_x"])
        # The input projection of every step in one matrix product: (T, B, 4H).
        xproj = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, x.reshape(T * B, -1),
                            lstm.weight_ih_l0.t()).view(T, B, -1)
        w_hh = self.dropped(lstm.weight_hh_l0)
        h0, c0 = state[0], state[1]
        o0 = state[2][0].to(dtype) if self.state_size == 3 else None
        masks = self.draw_masks(T, B, x.device, dtype, columns)
        with no_autocast(x.device):
            out, h, c, o = step_lstm(xproj.to(dtype), w_hh, h0[0].to(dtype), c0[0].to(dtype), masks, o0)
        if self.state_size == 3:
            return out, (h.unsqueeze(0), c.unsqueeze(0), o.unsqueeze(0))
        return out, (h.unsqueeze(0), c.unsqueeze(0))

    def export_forward(self, x: torch.Tensor, state):
        return expected_forward(self, x, state)  # the compiled recurrence does not export
