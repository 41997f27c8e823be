"""Weight drop / DropConnect on a hidden-to-hidden matrix (AWD-LSTM §2).

The raw parameter is never modified: each training forward builds
``W_hh_raw * mask`` with one mask for the whole forward (every step and every sequence),
and the layer runs with that tensor in place of its parameter, so gradients flow through
the mask to the raw weight.
"""

from __future__ import annotations

import torch

from . import native as _native
from .philox import uniform16

_LEVELS = 1 << 16


def _seed() -> int:
    """One draw from PyTorch's CPU generator keys each mask, so torch.manual_seed and a
    resumed generator state reproduce it, and both CPU paths consume the generator alike."""
    return int(torch.empty((), dtype=torch.int64).random_())


def keep_mask(shape: torch.Size, p: float, device=None, dtype=torch.float32, seed: int | None = None) -> torch.Tensor:
    """Inverted-dropout mask: 0 where dropped, 1 / (1 - p) where kept (the PyTorch path,
    where the compiled kernel is not: no compiler, float64, CUDA).

    On CPU the mask is the compiled kernel's own, bit for bit: 16-bit uniforms from the
    Philox-4x32-10 stream keyed by one generator draw (philox.py), so a machine without a
    compiler draws what one with a compiler draws. The drop probability is therefore p
    rounded to a multiple of 2^-16 (exact for 0.5, 0.25, ...; at most 7.7e-6 off otherwise),
    and kept entries are scaled by the inverse of that exact keep rate, so E[mask] = 1
    exactly. On CUDA the mask is drawn by torch.rand on the device.
    """
    if device is not None and torch.device(device).type != "cpu":
        return (torch.rand(shape, device=device) >= p).to(dtype).mul_(1.0 / (1 - p))
    n = 1
    for s in shape:
        n *= s
    dropped_levels = round(p * _LEVELS)
    u16 = uniform16(n, _seed() if seed is None else seed).view(shape)
    return (u16 >= dropped_levels).to(dtype).mul_(_LEVELS / (_LEVELS - dropped_levels))


class _DropConnect(torch.autograd.Function):
    """``weight * mask`` in one compiled pass, the mask a function of (seed, index): the
    backward regenerates it from the seed instead of keeping a mask tensor alive."""

    @staticmethod
    def forward(ctx, weight, dropped_levels: int):
        # The seed comes from PyTorch's CPU generator, so torch.manual_seed and a resumed
        # generator state reproduce the masks.
        seed = _seed()
        ctx.seed, ctx.levels = seed, dropped_levels
        return _native.native().dropconnect(weight, dropped_levels, seed)

    @staticmethod
    def backward(ctx, grad):
        return _native.native().dropconnect(grad, ctx.levels, ctx.seed), None


def drop_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """A dropped copy of ``weight``: ``weight * mask`` with the mask of ``keep_mask``
    (16-bit uniforms, drop rate p rounded to 2^-16); gradients reach ``weight``.

    On CPU in float32 the compiled kernel applies the mask in one pass (awdlstm/csrc/kernels.cpp);
    elsewhere PyTorch ops draw the same mask (on CPU) and multiply."""
    if _native.usable(weight):
        return _DropConnect.apply(weight, round(p * _LEVELS))
    return weight * keep_mask(weight.shape, p, weight.device, weight.dtype)
