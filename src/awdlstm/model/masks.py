"""Random masks over the batch dimension, for a batch that may be a block of columns of a
larger one.

Data-parallel training gives each process a contiguous block of the global batch's
columns. A mask that varies over the batch (locked dropout, zoneout, ...) is then drawn
for the whole global batch and cut to the block: every process consumes the same random
numbers, and the block's masks are exactly those one process would use for those columns.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch


class Columns(NamedTuple):
    """This batch holds columns ``start .. start + B - 1`` of a batch of ``total`` columns."""

    start: int
    total: int


def batch_uniform(shape: tuple[int, ...], batch_dim: int, columns: Columns | None,
                  device: torch.device) -> torch.Tensor:
    """U[0, 1) float32 of ``shape`` on ``device``; with ``columns``, drawn at the full
    batch size along ``batch_dim`` and narrowed to this block."""
    if columns is None:
        return torch.rand(shape, device=device)
    full = list(shape)
    full[batch_dim] = columns.total
    return torch.rand(full, device=device).narrow(batch_dim, columns.start, shape[batch_dim])


def bernoulli(shape: tuple[int, ...], p: float, batch_dim: int, columns: Columns | None,
              device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """1 with probability p, else 0, as ``dtype`` on ``device``."""
    return (batch_uniform(shape, batch_dim, columns, device) < p).to(dtype)


def no_autocast(device: torch.device):
    """A context that turns autocast off on ``device`` (a no-op where autocast is not on)."""
    kind = device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        return torch.autocast(kind, enabled=False)
    return contextlib.nullcontext()
