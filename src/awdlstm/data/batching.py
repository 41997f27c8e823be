"""Batchify a token stream and walk it in (variable-length) BPTT windows.

A stream of N ids is cut into B equal columns (the tail that does not fill a row is
dropped): ``source`` has shape (N // B, B) and column b holds ids
``[b * N//B, (b+1) * N//B)``. A batch starting at row i with length L is
``x = source[i : i+L]`` and ``y = source[i+1 : i+1+L]``, both (L, B): the target of each
token is the one after it in the same column, so the hidden state carries over from
batch to batch (truncated BPTT).

``source`` is a view (``Columns``): each window is gathered from the id array when it is
read, so a memory-mapped corpus is never copied whole and training memory does not grow
with the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import AwdlstmError


class Columns:
    """The (rows, B) view above of a flat id array (NumPy, memory-mapped or not, or a CPU
    tensor): ``source[rows]`` or ``source[rows, cols]`` is an int64 tensor gathered from it;
    ``columns(start, end)`` is the view of some columns (one process's share)."""

    def __init__(self, ids, batch_size: int, start: int = 0, end: int | None = None):
        self.ids = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        self.batch_size = batch_size
        self.rows = len(self.ids) // batch_size
        self.start, self.end = start, batch_size if end is None else end

    def size(self, dim: int) -> int:
        return (self.rows, self.end - self.start)[dim]

    @property
    def shape(self) -> tuple[int, int]:
        return self.size(0), self.size(1)

    dtype = torch.long

    def columns(self, start: int, end: int) -> Columns:
        return Columns(self.ids, self.batch_size, self.start + start, self.start + min(end, self.size(1)))

    def __getitem__(self, key) -> torch.Tensor:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        r = _positions(rows, self.rows)
        c = _positions(cols, self.end - self.start) + self.start
        # Row i of column b is id b * rows + i: (len(r), len(c)) positions, or fewer dims for ints.
        return torch.from_numpy(self.ids[np.add.outer(r, c * self.rows)].astype(np.int64))

    def __contains__(self, value: int) -> bool:
        return bool((self[:] == value).any())


def _positions(key, n: int) -> np.ndarray:
    """The positions ``key`` (an int or a slice) picks of ``range(n)``, without building all n."""
    picked = range(n)[key]  # an IndexError for an int out of range, as for a tensor
    if isinstance(picked, int):
        return np.int64(picked)
    return np.arange(picked.start, picked.stop, picked.step)


def batchify(ids, batch_size: int) -> Columns:
    """(N,) ids -> the (N // B, B) view above."""
    source = Columns(ids, batch_size)
    if source.rows < 2:
        raise AwdlstmError(f"split of {len(source.ids)} tokens is too short for batch size "
                           f"{batch_size}; it needs at least {2 * batch_size} tokens")
    return source


@dataclass
class Batch:
    """One BPTT window. ``lr_scale`` = seq_len / bptt scales that step's learning rate."""

    x: torch.Tensor  # (seq_len, B) inputs
    y: torch.Tensor  # (seq_len, B) targets, shifted by one token
    start: int  # first row of x in the batchified source
    lr_scale: float


def sample_seq_len(rng: np.random.Generator, bptt: int, p_full: float = 0.95, std: float = 5.0,
                   min_len: int = 5) -> int:
    """AWD-LSTM's variable BPTT: base = bptt with probability p_full else bptt / 2;
    seq_len = max(min_len, int(N(base, std)))."""
    base = bptt if rng.random() < p_full else bptt / 2
    return max(min_len, int(rng.normal(base, std)))


class BPTTIterator:
    """Walks a batchified source in windows; ``state_dict`` lets a run resume mid-epoch.

    With ``variable=True`` each window's length is drawn by ``sample_seq_len`` from a
    NumPy PCG64 generator seeded with ``seed``; windows never run past the last row.
    """

    def __init__(self, source: torch.Tensor, bptt: int, variable: bool = False, seed: int = 0):
        if bptt < 1:
            raise AwdlstmError(f"bptt={bptt} must be a positive integer")
        self.source = source
        self.bptt = bptt
        self.variable = variable
        self.rng = np.random.default_rng(seed)
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        last = self.source.size(0) - 1  # the final row is only ever a target
        if self.pos >= last:
            raise StopIteration
        seq_len = sample_seq_len(self.rng, self.bptt) if self.variable else self.bptt
        start = self.pos
        n = min(seq_len, last - start)
        self.pos = start + n
        return Batch(self.source[start:start + n], self.source[start + 1:start + 1 + n], start,
                     seq_len / self.bptt)

    def __len__(self) -> int:
        """Number of windows at the nominal bptt (an estimate when ``variable``)."""
        return -(-(self.source.size(0) - 1) // self.bptt)

    def state_dict(self) -> dict:
        return {"pos": self.pos, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.pos = int(state["pos"])
        self.rng.bit_generator.state = state["rng"]
