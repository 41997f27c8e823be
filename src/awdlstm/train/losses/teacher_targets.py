"""The teacher's targets, computed once per (teacher, corpus, batch size, k, partition) and
read from a memory-mapped file every epoch after.

Layout: the training ids batchified at the student's batch size B (rows R = N // B; column
b holds ids[b·R : (b+1)·R], as ``batchify``), so the window that starts at row s with
length L (whatever variable BPTT drew) has its targets at rows [s, s + L). Row r holds the
teacher's distribution after reading row r, over the token of row r + 1.

A student with a full softmax (no cutoffs) reads the teacher's k most probable tokens over
the whole vocabulary and the mass it leaves to the other V − k:

    ids.npy   (R, B, k) uint16 (V ≤ 65,536) or uint32   the kept tokens, most probable first
    logp.npy  (R, B, k) float16                          their log-probabilities at T = 1
    rest.npy  (R, B)    float32                          the other tokens' total probability

A student with an adaptive softmax cut at c_1 < … < c_n reads only what its chain-rule loss
reads (distillation.py): the head's partition at every position, and the distribution
within a cluster only at the positions whose next token lies in it, the only rows where
the student's cluster softmax exists. So the files hold

    ids.npy, logp.npy (R, B, k)   the teacher's k most probable shortlist words [0, c_1)
    rest.npy  (R, B)              the shortlist's other words' total probability
    mass.npy  (R, B, n) float32   each cluster's whole probability P_i
    slot.npy  (R, B) int32        the position's row in the three below, −1 where the next
                                  token is a shortlist word (and on row R − 1: no next token)
    cids.npy  (M, k)              the k most probable words within the next token's cluster,
                                  as offsets from c_i
    clogp.npy (M, k) float16      their log-probabilities within the cluster, log p(w | i)
    crest.npy (M,)   float32      the cluster's other words' probability within it

with M the positions whose next token lies past the shortlist (a sixth of PTB's), in
row-major order. A teacher with the same adaptive head computes exactly those pieces and
never its (N, V) distribution, so the pass costs its forward and its head; any other
teacher's whole distribution is cut into the same pieces (``factor_log_probs``).

(NumPy's .npy: a header with dtype and shape, then the array, memory-mapped read-only; a
window's rows are one contiguous stretch of each file.)

A pass of coverage f < 1 (distill.coverage) writes the first R_f = round(f·R) rows only, the
same numbers as the whole pass's there (the teacher reads each column from its start either
way); a window reaching past them gets the targets of its covered rows, its first positions,
and the loss trains the others on the hard loss (distillation.py).

The teacher reads each column from its start with its state carried from window to window,
as the on-the-fly loss does (evaluation mode: no dropout), so the stored distribution is
the one the student would get from the teacher at that position. The key hashes the
teacher's weights (every tensor's bytes: a retrained teacher at the same path is another
teacher), the training ids, B, k, the cutoffs, the teacher's arithmetic (fp32 or bf16) and
the rows a partial pass covers; a cache of another teacher, corpus, precision or coverage
has another key and is never read. Folders are written whole (``atomic_folder``) under
<cache>/teachers/<key>/.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ...data.batching import batchify
from ...data.paths import cache_root
from ...data.token_cache import atomic_folder, id_dtype
from ...model.adaptive_softmax import Factors
from ...progress import progress_bar

FORMAT = 3
# Rows per teacher forward while writing (the state carries across, so any length gives the
# same): the widest fp32 tensor of a window, (rows·B, width), is kept under glibc's 32 MB
# mmap threshold, so its memory is reused, where larger blocks are mapped and page-faulted
# in anew for every window (a third of the pass's time at 70 rows of a (B·70, 10,000)
# distribution).
MMAP_LIMIT = 30 * 2**20


def rows_per_forward(batch_size: int, width: int) -> int:
    return max(1, MMAP_LIMIT // (4 * batch_size * width))


class Targets(NamedTuple):
    """The teacher's targets over N flattened positions (row-major over (L, b), the order
    of the student's ``x.reshape(-1)``), the layout's arrays as tensors: ids, logp (N, k),
    rest (N,); with cutoffs also mass (N, n), slot (N,) int64 (a row of the next three or
    −1), cids, clogp (M, k) and crest (M,)."""

    ids: torch.Tensor
    logp: torch.Tensor
    rest: torch.Tensor
    mass: torch.Tensor | None = None
    slot: torch.Tensor | None = None
    cids: torch.Tensor | None = None
    clogp: torch.Tensor | None = None
    crest: torch.Tensor | None = None

    def as_stored(self) -> Targets:
        """The same targets with the log-probabilities rounded to fp16, as the cache holds them."""
        def fp16(t):
            return None if t is None else t.half().float()
        return self._replace(logp=fp16(self.logp), clogp=fp16(self.clogp))


@dataclass
class TeacherTargets:
    """The memory-mapped arrays of one cache folder (layout above)."""

    ids: np.ndarray  # (R, B, k)
    logp: np.ndarray  # (R, B, k) float16
    rest: np.ndarray  # (R, B) float32
    path: Path
    mass: np.ndarray | None = None  # (R, B, n) float32, with cutoffs; the rest likewise
    slot: np.ndarray | None = None  # (R, B) int32
    cids: np.ndarray | None = None  # (M, k)
    clogp: np.ndarray | None = None  # (M, k) float16
    crest: np.ndarray | None = None  # (M,) float32

    @property
    def rows(self) -> int:
        """The rows the pass covered (all R, or the first R_f)."""
        return self.rest.shape[0]

    def window(self, start: int, length: int, columns: tuple[int, int], device) -> Targets:
        """Rows [start, start + length) of this process's columns (b of them), flattened to
        N = length · b positions: ids int64, the rest float32. Of a window past the covered
        rows only the covered ones: its first positions (none where it starts past them)."""
        c0, c1 = columns
        rows = slice(start, start + length)
        k = self.ids.shape[-1]

        def load(a, dtype):  # a copy out of the read-only mapping: tensors own writable memory
            return torch.from_numpy(np.array(a, dtype)).to(device)

        flat = (load(self.ids[rows, c0:c1].reshape(-1, k), np.int64), load(self.logp[rows, c0:c1].reshape(-1, k),
                np.float32), load(self.rest[rows, c0:c1].reshape(-1), np.float32))
        if self.slot is None:
            return Targets(*flat)
        slot = self.slot[rows, c0:c1].reshape(-1)
        keep = slot >= 0
        take = slot[keep]  # ascending: the cluster rows of these positions, in their order
        local = np.full(slot.shape, -1, np.int64)
        local[keep] = np.arange(take.size)
        return Targets(*flat, load(self.mass[rows, c0:c1].reshape(-1, self.mass.shape[-1]), np.float32),
                       load(local, np.int64), load(self.cids[take], np.int64), load(self.clogp[take], np.float32),
                       load(self.crest[take], np.float32))


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in order."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(teacher_digest: str, train_ids, batch_size: int, k: int, cutoffs: tuple[int, ...] = (),
              precision: str = "fp32", rows: int | None = None) -> str:
    """``rows``: the rows covered when fewer than all (distill.coverage)."""
    ids = np.ascontiguousarray(np.asarray(train_ids))
    # An fp32 pass over every row keeps the key of format 3's first caches, so they stay valid.
    extra = ("" if precision == "fp32" else f"{precision}:") + ("" if rows is None else f"rows={rows}:")
    h = hashlib.sha256(f"teacher-targets:{FORMAT}:{teacher_digest}:{batch_size}:{k}:{list(cutoffs)}:"
                       f"{extra}{ids.dtype.str}:".encode())
    h.update(memoryview(ids).cast("B"))
    return h.hexdigest()[:24]


def covered_rows(rows: int, coverage: float) -> int:
    """The first rows of R that a pass of ``coverage`` (0, 1] writes: at least one."""
    return max(1, min(rows, round(coverage * rows)))


def cache_path(teacher, train_ids, batch_size: int, k: int, cutoffs: tuple[int, ...] = (),
               root: Path | None = None, coverage: float = 1.0) -> tuple[Path, str, int]:
    """(the cache folder of these targets, the teacher's weights digest, the rows it covers)."""
    # The weights as the teacher computes with them (bf16 LSTMs hashed as bf16: teachers that
    # round alike compute alike) and the precision, which also decides the head's arithmetic.
    digest = weights_digest(teacher.model)
    R = len(train_ids) // batch_size
    rows = covered_rows(R, coverage)
    key = cache_key(digest, train_ids, batch_size, k, tuple(int(c) for c in cutoffs), teacher.precision,
                    None if rows == R else rows)
    return (root or cache_root() / "teachers") / key, digest, rows


def teacher_targets(teacher, train_ids, batch_size: int, k: int, log=print, progress: bool = True,
                    root: Path | None = None, cutoffs: tuple[int, ...] = (), coverage: float = 1.0) -> TeacherTargets:
    """The cache of ``teacher`` (a ``Teacher``: model and state) on ``train_ids`` at batch
    ``batch_size``, cut at the student's ``cutoffs`` when given, over the first ``coverage``
    of the rows: read when it exists, else written first (one teacher pass over that text,
    shown with a progress bar)."""
    cutoffs = tuple(int(c) for c in cutoffs)
    path, digest, covered = cache_path(teacher, train_ids, batch_size, k, cutoffs, root, coverage)
    precision, R = teacher.precision, len(train_ids) // batch_size
    found = read_targets(path)
    if found is not None:
        log(f"teacher targets: {path} (cached, top {k})")
        return found
    if path.exists():  # damaged or cut short: written anew
        shutil.rmtree(path)
    share = "the training text" if covered == R else f"the first {covered:,} of the training text's {R:,} rows"
    log(f"teacher targets: one pass of the teacher ({precision}) over {share}, the top {k} tokens per position, "
        f"into {path}")
    with atomic_folder(path) as tmp:
        write = _write_factored if cutoffs else _write
        write(tmp, teacher, batchify(train_ids, batch_size), k, cutoffs, progress, covered)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "teacher": digest, "precision": precision,
                                                   "batch_size": batch_size, "k": k, "cutoffs": list(cutoffs),
                                                   "vocab": teacher.vocab_size, "rows": covered, "of_rows": R},
                                                  indent=1))
    found = read_targets(path)
    if found is None:
        raise OSError(f"{path}: the teacher targets just written cannot be read back")
    return found


def top_k_targets(lp: torch.Tensor, k: int) -> Targets:
    """lp (N, V) the teacher's log-probabilities, fp32 -> its k most probable tokens (N, k),
    descending, their log-probabilities and the others' mass rest (N,), summed over the tail
    itself (1 − Σ kept would leave fp32's rounding, ~1e-7, where the tail is smaller)."""
    top, idx = top_k(lp, k)
    return Targets(idx, top, lp.exp().scatter_(-1, idx, 0.0).sum(-1))


def top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, W) -> its k largest values per row and their columns (N, k), descending:
    ``torch.topk``, or on CPU where that is slow NumPy's selection. On CPU torch.topk keeps
    a partial sort only while 64·k ≤ W and sorts whole rows above (71 ms for 3,904 rows of
    2,000 at k = 64, against 29 ms at k = 16); ``np.argpartition`` selects the k in linear
    time whatever k (42 ms), then only the k are sorted."""
    W = x.size(-1)
    if x.device.type != "cpu" or x.dim() != 2 or x.dtype not in (torch.float32, torch.float64) or 64 * k <= W \
            or k >= W:
        return x.topk(k, dim=-1)
    a = x.detach().numpy()
    cols = np.argpartition(a, W - k, axis=-1)[:, W - k:]  # the k largest, in no order
    vals = np.take_along_axis(a, cols, -1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    return (torch.from_numpy(np.take_along_axis(vals, order, -1)),
            torch.from_numpy(np.take_along_axis(cols, order, -1)))


def factored_targets(f: Factors, k: int) -> Targets:
    """The teacher's pieces ``f`` over N positions (its head (N, c_1 + n) and, per cluster,
    the rows whose next token lies in it with their log-probabilities within it) -> what
    the chain-rule loss reads (``Targets`` with cutoffs; cluster rows by cluster, then by
    position). Needs k ≤ c_1 and k ≤ every cluster's size."""
    n = len(f.clusters)
    short = f.head[:, :-n]  # (N, c_1)
    top = top_k_targets(short, k)
    slot = torch.full((f.head.size(0),), -1, dtype=torch.long, device=f.head.device)
    within, offset = [], 0
    for rows, lp in f.clusters:
        within.append(top_k_targets(lp, k))
        slot[rows] = torch.arange(offset, offset + rows.numel(), device=slot.device)
        offset += rows.numel()
    cids, clogp, crest = (torch.cat([w[i] for w in within]) for i in range(3))
    return Targets(top.ids, top.logp, top.rest, f.head[:, -n:].exp(), slot, cids, clogp, crest)


def cluster_slots(source: torch.Tensor, shortlist: int) -> np.ndarray:
    """source (R, B) ids -> slot (R, B) int32: each position whose next token (a row below)
    lies past the shortlist numbered in row-major order, −1 elsewhere and on the last row."""
    outside = np.zeros(tuple(source.shape), bool)
    outside[:-1] = source[1:].numpy() >= shortlist
    slot = np.full(outside.shape, -1, np.int32)
    slot[outside] = np.arange(int(outside.sum()), dtype=np.int32)
    return slot


def _arrays(folder: Path, specs: dict) -> dict:
    return {name: np.lib.format.open_memmap(folder / f"{name}.npy", "w+", dtype, shape)
            for name, (dtype, shape) in specs.items()}


def _store_rows(out: dict, start: int, end: int, t: Targets, B: int, dtype) -> None:
    """Rows [start, end) of ids, logp, rest (and mass) from one window's targets over
    (end − start)·B positions; the masses before any fp16 rounding."""
    shape, k = (end - start, B), t.ids.size(-1)
    out["ids"][start:end] = t.ids.view(*shape, k).cpu().numpy().astype(dtype)
    out["logp"][start:end] = t.logp.view(*shape, k).cpu().numpy().astype(np.float16)
    out["rest"][start:end] = t.rest.view(shape).cpu().numpy()
    if t.mass is not None:
        out["mass"][start:end] = t.mass.view(*shape, -1).cpu().numpy()


@torch.no_grad()
def _write(folder: Path, teacher, source: torch.Tensor, k: int, cutoffs, progress: bool, rows: int) -> None:
    """The whole vocabulary's top k at the first ``rows`` rows of ``source`` (R, B)."""
    B, dtype = source.size(1), id_dtype(teacher.vocab_size)
    out = _arrays(folder, {"ids": (dtype, (rows, B, k)), "logp": (np.float16, (rows, B, k)),
                           "rest": (np.float32, (rows, B))})
    teacher.reset(B)
    device = next(teacher.model.parameters()).device
    step = rows_per_forward(B, teacher.vocab_size)
    with progress_bar(total=rows, desc="teacher targets", unit="row", enabled=progress) as bar:
        for start in range(0, rows, step):
            end = min(start + step, rows)
            lp = teacher.log_probs(source[start:end].to(device))  # (L, B, V) fp32
            _store_rows(out, start, end, top_k_targets(lp.reshape(-1, lp.size(-1)), k), B, dtype)
            bar.update(end - start)
    for a in out.values():
        a.flush()
    teacher.hidden = None


@torch.no_grad()
def _write_factored(folder: Path, teacher, source: torch.Tensor, k: int, cutoffs: tuple[int, ...],
                    progress: bool, rows: int) -> None:
    """The head's partition at the first ``rows`` rows of ``source`` (R, B) and each next
    token's cluster where it has one (layout above); row R − 1 has no next token and stays zero."""
    B, dtype = source.size(1), id_dtype(teacher.vocab_size)
    slot = cluster_slots(source[:rows + 1], cutoffs[0])[:rows]  # the next tokens of the covered rows
    last = min(rows, source.size(0) - 1)  # the rows with a next token
    # At least one row of cluster arrays (never read where no next token lies past the shortlist).
    M, n = max(int(slot.max()) + 1, 1), len(cutoffs)
    out = _arrays(folder, {"ids": (dtype, (rows, B, k)), "logp": (np.float16, (rows, B, k)),
                           "rest": (np.float32, (rows, B)), "mass": (np.float32, (rows, B, n)),
                           "slot": (np.int32, (rows, B)), "cids": (dtype, (M, k)),
                           "clogp": (np.float16, (M, k)), "crest": (np.float32, (M,))})
    out["slot"][:] = slot
    teacher.reset(B)
    device = next(teacher.model.parameters()).device
    step = rows_per_forward(B, teacher.head_width(cutoffs))
    with progress_bar(total=rows, desc="teacher targets", unit="row", enabled=progress) as bar:
        for start in range(0, last, step):
            end = min(start + step, last)
            x, y = source[start:end].to(device), source[start + 1:end + 1].to(device)
            t = factored_targets(teacher.factors(x, y, cutoffs), k)
            _store_rows(out, start, end, t, B, dtype)
            here = slot[start:end].reshape(-1)
            keep = here >= 0
            order = t.slot.cpu()[torch.from_numpy(keep)].numpy()  # this window's cluster rows, by position
            out["cids"][here[keep]] = t.cids.cpu().numpy()[order].astype(dtype)
            out["clogp"][here[keep]] = t.clogp.cpu().numpy()[order].astype(np.float16)
            out["crest"][here[keep]] = t.crest.cpu().numpy()[order]
            bar.update(end - start)
        bar.update(rows - last)  # the last row, where covered
    for a in out.values():
        a.flush()
    teacher.hidden = None


def read_targets(path: Path) -> TeacherTargets | None:
    """The cache at ``path``, memory-mapped; None when missing, of another format or cut short."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        names = ("ids", "logp", "rest") + (("mass", "slot", "cids", "clogp", "crest") if meta["cutoffs"] else ())
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in names}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    R, B, k = meta["rows"], meta["batch_size"], meta["k"]
    shapes = {"ids": (R, B, k), "logp": (R, B, k), "rest": (R, B)}
    if meta["cutoffs"]:
        M = arrays["cids"].shape[0]
        shapes |= {"mass": (R, B, len(meta["cutoffs"])), "slot": (R, B), "cids": (M, k), "clogp": (M, k),
                   "crest": (M,)}
    if any(arrays[name].shape != shape for name, shape in shapes.items()):
        return None
    return TeacherTargets(path=path, **arrays)
