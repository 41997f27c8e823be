"""The run state that is not a tensor: saved as JSON in every resumable checkpoint."""

from __future__ import annotations

import dataclasses
import math

from ..errors import AwdlstmError


@dataclasses.dataclass
class TrainState:
    """Everything besides tensors that a resume needs. It describes the whole (global)
    batch, never one process's share, so a run resumes with any number of processes."""

    phase: str = "train"  # "train" or "finetune"
    epoch: int = 1  # the epoch in progress, or the next one to run
    iterator: dict | None = None  # BPTTIterator state while an epoch is in progress
    batches_done: int = 0
    loss_sum: float = 0.0  # sum over the epoch's batches of raw loss x tokens (all processes)
    tokens: int = 0
    lr: float = 0.0  # the base learning rate (schedules change it)
    averaging: bool = False
    history: list = dataclasses.field(default_factory=list)  # validation losses of this phase
    best_val: float = math.inf
    elapsed: float = 0.0  # seconds of training, over all sessions
    done: bool = False
    stop_reason: str = ""

    @classmethod
    def from_dict(cls, d: dict, where: str) -> TrainState:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - set(d) - {"stop_reason"}
        unknown = set(d) - names
        if missing or unknown:
            what = f"lacks {sorted(missing)[0]!r}" if missing else f"has an unknown entry {sorted(unknown)[0]!r}"
            raise AwdlstmError(f"{where}: the checkpoint's training state {what}")
        return cls(**d)
