"""Weight drop / DropConnect on a hidden-to-hidden matrix (AWD-LSTM §2).

The raw parameter is never modified: each training forward builds
``W_hh_raw * mask`` with one mask for the whole forward (every step and every sequence),
and the layer runs with that tensor in place of its parameter, so gradients flow through
the mask to the raw weight.
"""

from __future__ import annotations

import torch

from . import native as _native

_LEVELS = 1 << 16


def keep_mask(shape: torch.Size, p: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Inverted-dropout mask: 0 where dropped, 1 / (1 - p) where kept.

    This is the PyTorch path (used where the compiled kernel is not: no compiler, CUDA,
    float64). Drawing the mask is most of weight drop's cost (about two thirds of it for 4600 x 1150). On
    CPU it is drawn from 16-bit uniforms cut out of 64-bit random words, three per word: a
    third of the generator calls of ``torch.rand`` and no float pass, about 2.5x faster for
    a 4600 x 1150 matrix. The drop probability is therefore p rounded to a multiple of
    2^-16 (exact for 0.5, 0.25, ...; at most 7.7e-6 off otherwise), and the kept entries
    are scaled by the inverse of that exact keep rate, so E[mask] = 1 exactly.
    """
    n = 1
    for s in shape:
        n *= s
    if device is not None and torch.device(device).type != "cpu":
        return (torch.rand(shape, device=device) >= p).to(dtype).mul_(1.0 / (1 - p))
    # int64 random_() fills [0, 2^63): the top 16-bit lane has a constant sign bit, so only
    # the three low lanes of each word are used.
    words = torch.empty(-(-n // 3), dtype=torch.int64, device=device).random_()
    u16 = words.view(torch.int16).view(-1, 4)[:, :3].reshape(-1)[:n].view(shape)
    dropped_levels = round(p * _LEVELS)
    threshold = dropped_levels - _LEVELS // 2  # int16 values below it are dropped
    return (u16 >= threshold).to(dtype).mul_(_LEVELS / (_LEVELS - dropped_levels))


class _DropConnect(torch.autograd.Function):
    """``weight * mask`` in one compiled pass, the mask a function of (seed, index): the
    backward regenerates it from the seed instead of keeping a mask tensor alive."""

    @staticmethod
    def forward(ctx, weight, dropped_levels: int):
        # The seed comes from PyTorch's CPU generator, so torch.manual_seed and a resumed
        # generator state reproduce the masks.
        seed = int(torch.empty((), dtype=torch.int64).random_())
        ctx.seed, ctx.levels = seed, dropped_levels
        return _native.native().dropconnect(weight, dropped_levels, seed)

    @staticmethod
    def backward(ctx, grad):
        return _native.native().dropconnect(grad, ctx.levels, ctx.seed), None


def drop_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """A dropped copy of ``weight``: ``weight * mask`` with the mask of ``keep_mask``
    (16-bit uniforms, drop rate p rounded to 2^-16); gradients reach ``weight``.

    On CPU in float32 the compiled kernel draws the mask from a Philox counter stream
    (awdlstm/csrc/kernels.cpp); elsewhere the mask is drawn by PyTorch."""
    if _native.usable(weight):
        return _DropConnect.apply(weight, round(p * _LEVELS))
    return weight * keep_mask(weight.shape, p, weight.device, weight.dtype)
