"""What the training loop offers the objects that extend it, and what it asks of them.

The loop (trainer.py) is extended by three kinds of object, never by flags:

- a ``Schedule`` sets the base learning rate and decides when averaging starts or the run
  stops (schedules/: one file each, chosen by ``train.schedule`` from the registry);
- a ``LossTerm`` adds one term to the loss of a batch (losses/: one file each);
- a ``Hook`` watches every update (tests, benchmarks, a user's own logging).

Each sees the loop through the ``Loop`` surface below, and each schedule and loss term
keeps its own ``state_dict``: the trainer's checkpoint is the sum of its parts' states.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import torch
import torch.nn.functional as F


class Loop(Protocol):
    """The part of the trainer that schedules, loss terms and hooks may use."""

    cfg: Any  # the RunConfig
    state: Any  # the TrainState: lr, epoch, history, best_val, averaging, done, stop_reason, ...
    optimizer: torch.optim.Optimizer

    def start_averaging(self) -> None: ...
    def log(self, *args) -> None: ...
    def request_stop(self) -> None: ...


@dataclass
class Step:
    """One batch after the forward: x, y (T, B), the model's output and where the window
    starts. ``logp`` (T, B, V)
    and ``ce`` are computed once, when a term first asks for them."""

    x: torch.Tensor
    y: torch.Tensor
    out: Any  # LMOutput
    start: int = 0  # the window's first row in the batchified training text

    @cached_property
    def logp(self) -> torch.Tensor:
        """The whole distribution (T, B, V) in fp32: needs a forward without targets."""
        return F.log_softmax(self.out.logits.float(), -1)

    @cached_property
    def ce(self) -> torch.Tensor:
        """The mean cross-entropy with the next tokens (nats), fp32."""
        if self.out.target_logp is not None:  # log p(target), fp32 from the model
            return -self.out.target_logp.mean()
        return F.nll_loss(self.logp.reshape(-1, self.logp.size(-1)), self.y.reshape(-1))


def budget_progress(t, s, clock: float, epoch_fraction: float) -> float:
    """The fraction of the run's budget spent, in [0, 1]: the training clock over
    train.max_minutes when one is set, else the epochs done (the one in progress counted by
    its batches) over train.epochs. ``t`` the TrainConfig, ``s`` the TrainState."""
    if t.max_minutes:
        progress = clock / (t.max_minutes * 60)
    else:
        progress = (s.epoch - 1 + epoch_fraction) / t.epochs
    return min(max(progress, 0.0), 1.0)


class Schedule:
    """The base learning rate over the run. ``on_batch`` runs before every update with the
    training clock (rank 0's seconds, the same on every rank) and the fraction of the epoch
    done; ``on_epoch_end`` after each validation. Both act on ``loop.state``."""

    name = ""

    def on_batch(self, loop: Loop, clock: float, epoch_fraction: float) -> None:
        pass

    def on_epoch_end(self, loop: Loop, val: float, improved: bool, record: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class LossTerm:
    """One term of a batch's loss. ``needs_distribution``: the term reads ``step.logp``, so
    the forward must return the whole (T, B, V) distribution; ``needs_factors``: it reads
    ``step.out.factors``, the adaptive head's pieces of log p(target). ``state_dict`` holds what a
    mid-epoch resume needs (tensor groups under keys ending in '.', JSON values otherwise);
    ``gather`` turns this rank's block of a batch-wide tensor into the whole batch."""

    name = ""
    needs_distribution = False
    needs_factors = False

    def __call__(self, step: Step) -> torch.Tensor:
        raise NotImplementedError

    def on_batch(self, loop: Loop, clock: float, epoch_fraction: float) -> None:
        """After each batch's forward, with the schedules' arguments: what the next batch's
        term may depend on (the run's progress); keep it in ``state_dict`` for a resume."""

    def start_epoch(self, batch_size: int) -> None:
        pass

    def end_epoch(self) -> None:
        pass

    def state_dict(self, gather) -> dict:
        return {}

    def load_state_dict(self, state: dict, block) -> None:
        pass


class Penalty(LossTerm):
    """A term weighted by one coefficient of [train] (``KNOB``), off when it is 0."""

    KNOB = ""

    def __init__(self, weight: float):
        self.weight = weight

    @classmethod
    def from_config(cls, cfg, context):
        weight = getattr(cfg.train, cls.KNOB)
        return cls(weight) if weight else None


class Hook:
    """Called around every optimizer update (after the batch's learning rate is set)."""

    def before_update(self, loop: Loop) -> None:
        pass

    def after_update(self, loop: Loop) -> None:
        pass
