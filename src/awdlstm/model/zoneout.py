"""Zoneout as every per-step cell uses it (Krueger et al. 2016): a unit keeps its previous
value with probability z, else takes its new one,

    s_t = s̃_t + d_t ⊙ (s_{t-1} - s̃_t),   d_t ~ Bernoulli(z) per unit and step (training)
    s_t = s̃_t + z  (s_{t-1} - s̃_t)                                          (evaluation)

so the gradient through a zoned-out unit passes unchanged to the previous step. ``Zone``
carries one forward's choice: a (T, B, H) mask in training, the constant z at evaluation.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .masks import Columns, bernoulli
from .script import script


class Zone(NamedTuple):
    mask: Optional[torch.Tensor]  # (T, B, H) of 0/1 in training, else None
    p: float  # the constant at evaluation (0: no zoneout)

    def dense(self, shape, like: torch.Tensor) -> torch.Tensor:
        """The mask, or the constant as a tensor of ``shape`` (like ``like``'s dtype and device)."""
        return self.mask if self.mask is not None else like.new_full(tuple(shape), self.p)


@script
def zoneout_step(new: torch.Tensor, old: torch.Tensor, mask: Optional[torch.Tensor], t: int, p: float) -> torch.Tensor:
    """Step t of the rule above: the mask's row t in training, the constant p at evaluation."""
    if mask is not None:
        return new + mask[t] * (old - new)
    if p > 0.0:
        return new + p * (old - new)
    return new


def draw_zone(p: float, training: bool, T: int, B: int, H: int, device, dtype,
              columns: Columns | None = None) -> Zone:
    """One forward's zoneout of probability ``p``: masks over the whole batch, cut to
    ``columns`` (masks.py), in training; the expectation at evaluation."""
    if not p:
        return Zone(None, 0.0)
    if training:
        return Zone(bernoulli((T, B, H), p, 1, columns, device, dtype), 0.0)
    return Zone(None, float(p))


def keep_mask(p: float, training: bool, T: int, B: int, H: int, device, dtype,
              columns: Columns | None = None) -> Optional[torch.Tensor]:
    """Inverted dropout of probability ``p`` per unit and step, (T, B, H) scaled by
    1 / (1 - p), in training; None (the identity) at evaluation or when p = 0."""
    if not p or not training:
        return None
    return (1 - bernoulli((T, B, H), p, 1, columns, device, dtype)) / (1 - p)
