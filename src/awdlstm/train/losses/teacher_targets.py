"""The teacher's targets, computed once per (teacher, corpus, batch size, k, partition) and
read from a memory-mapped file every epoch after: at every position of the training text,
the teacher's k most probable next tokens and their log-probabilities, plus the probability
it leaves to the other V − k tokens, in total and (for a student with an adaptive softmax)
split over the student's head partition: the shortlist [0, c_1) and each cluster
[c_i, c_{i+1}).

Layout: the training ids batchified at the student's batch size B (rows R = N // B; column
b holds ids[b·R : (b+1)·R], as ``batchify``), so the window that starts at row s with
length L (whatever variable BPTT drew) has its targets at rows [s, s + L):

    ids.npy   (R, B, k) uint16 (V ≤ 65,536) or uint32   the kept tokens, most probable first
    logp.npy  (R, B, k) float16                          their log-probabilities at T = 1
    rest.npy  (R, B)    float32                          the other tokens' total probability
    parts.npy (R, B, n + 1) float32                      the same split over shortlist, clusters
                                                         (only with cutoffs c_1 < … < c_n)

(NumPy's .npy: a header with dtype and shape, then the array, memory-mapped read-only; a
window's rows are one contiguous stretch of each file.)

The teacher reads each column from its start with its state carried from window to window,
as the on-the-fly loss does (evaluation mode: no dropout), so the stored distribution is
the one the student would get from the teacher at that position. The key hashes the
teacher's weights (every tensor's bytes: a retrained teacher at the same path is another
teacher), the training ids, B, k and the cutoffs; a cache of another teacher or corpus has
another key and is never read. Folders are written whole (``atomic_folder``) under
<cache>/teachers/<key>/.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data.batching import batchify
from ...data.paths import cache_root
from ...data.token_cache import atomic_folder, id_dtype
from ...progress import progress_bar

FORMAT = 2
# Rows per teacher forward while writing (the state carries across, so any length gives the
# same): 20 rows keep a window's (20·B, V) fp32 tensors at B = 32, V = 10,000 under glibc's
# 32 MB mmap limit, so their memory is reused, where 70 rows' 90 MB blocks were mapped and
# page-faulted in anew for every window (a third of the pass's time).
WINDOW = 20


@dataclass
class TeacherTargets:
    """The memory-mapped arrays of one cache folder (layout above)."""

    ids: np.ndarray  # (R, B, k)
    logp: np.ndarray  # (R, B, k) float16
    rest: np.ndarray  # (R, B) float32
    path: Path
    parts: np.ndarray | None = None  # (R, B, n + 1) float32, with cutoffs

    def window(self, start: int, length: int, columns: tuple[int, int], device) -> tuple:
        """Rows [start, start + length) of this process's columns: ids (L, b, k) int64,
        logp (L, b, k), rest (L, b) and parts (L, b, n + 1) or None, float32."""
        c0, c1 = columns
        rows = slice(start, start + length)
        # Copies out of the read-only mapping (the tensors must own writable memory).
        ids = torch.from_numpy(self.ids[rows, c0:c1].astype(np.int64)).to(device)
        logp = torch.from_numpy(self.logp[rows, c0:c1].astype(np.float32)).to(device)
        rest = torch.from_numpy(np.array(self.rest[rows, c0:c1])).to(device)
        parts = None if self.parts is None else torch.from_numpy(np.array(self.parts[rows, c0:c1])).to(device)
        return ids, logp, rest, parts


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in order."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(teacher_digest: str, train_ids, batch_size: int, k: int, cutoffs: tuple[int, ...] = ()) -> str:
    ids = np.ascontiguousarray(np.asarray(train_ids))
    h = hashlib.sha256(f"teacher-targets:{FORMAT}:{teacher_digest}:{batch_size}:{k}:{list(cutoffs)}:"
                       f"{ids.dtype.str}:".encode())
    h.update(memoryview(ids).cast("B"))
    return h.hexdigest()[:24]


def teacher_targets(teacher, train_ids, batch_size: int, k: int, log=print, progress: bool = True,
                    root: Path | None = None, cutoffs: tuple[int, ...] = ()) -> TeacherTargets:
    """The cache of ``teacher`` (a ``Teacher``: model and state) on ``train_ids`` at batch
    ``batch_size``, with the tail split at ``cutoffs`` when given: read when it exists, else
    written first (one teacher pass over the training text, shown with a progress bar)."""
    cutoffs = tuple(int(c) for c in cutoffs)
    digest = weights_digest(teacher.model)
    path = (root or cache_root() / "teachers") / cache_key(digest, train_ids, batch_size, k, cutoffs)
    found = read_targets(path)
    if found is not None:
        log(f"teacher targets: {path} (cached, top {k})")
        return found
    if path.exists():  # damaged or cut short: written anew
        shutil.rmtree(path)
    log(f"teacher targets: one pass of the teacher over the training text, the top {k} tokens per position, "
        f"into {path}")
    with atomic_folder(path) as tmp:
        _write(tmp, teacher, train_ids, batch_size, k, cutoffs, progress)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "teacher": digest, "batch_size": batch_size,
                                                   "k": k, "cutoffs": list(cutoffs), "vocab": teacher.vocab_size,
                                                   "rows": len(train_ids) // batch_size}, indent=1))
    found = read_targets(path)
    if found is None:
        raise OSError(f"{path}: the teacher targets just written cannot be read back")
    return found


def top_k_targets(lp: torch.Tensor, k: int, cutoffs: tuple[int, ...] = ()) -> tuple:
    """lp (..., V) the teacher's log-probabilities, fp32 -> its k most probable tokens ids
    (..., k), descending, their log-probabilities (..., k), the others' mass rest (...) and,
    with cutoffs, that mass per part of [0, c_1), [c_1, c_2), …, [c_n, V): parts (..., n + 1)
    (else None). The masses are summed over the tail itself (1 − Σ kept would leave fp32's
    rounding, ~1e-7, where the tail is smaller)."""
    top, idx = lp.topk(k, dim=-1)
    tail = lp.exp().scatter_(-1, idx, 0.0)  # (..., V) probabilities, the kept tokens' set to 0
    rest = tail.sum(-1)
    parts = None
    if cutoffs:
        bounds = (0, *cutoffs, lp.size(-1))
        parts = torch.stack([tail[..., a:b].sum(-1) for a, b in zip(bounds, bounds[1:])], -1)
    return idx, top, rest, parts


@torch.no_grad()
def _write(folder: Path, teacher, train_ids, batch_size: int, k: int, cutoffs: tuple[int, ...],
           progress: bool) -> None:
    source = batchify(train_ids, batch_size)  # (R, B): the student's batches, all columns
    rows = source.size(0)
    dtype = id_dtype(teacher.vocab_size)
    ids = np.lib.format.open_memmap(folder / "ids.npy", "w+", dtype, (rows, batch_size, k))
    logp = np.lib.format.open_memmap(folder / "logp.npy", "w+", np.float16, (rows, batch_size, k))
    rest = np.lib.format.open_memmap(folder / "rest.npy", "w+", np.float32, (rows, batch_size))
    arrays = [ids, logp, rest]
    if cutoffs:
        parts = np.lib.format.open_memmap(folder / "parts.npy", "w+", np.float32, (rows, batch_size, len(cutoffs) + 1))
        arrays.append(parts)
    teacher.reset(batch_size)
    device = next(teacher.model.parameters()).device
    with progress_bar(total=rows, desc="teacher targets", unit="row", enabled=progress) as bar:
        for start in range(0, rows, WINDOW):
            end = min(start + WINDOW, rows)
            lp = teacher.log_probs(source[start:end].to(device))  # (L, B, V) fp32
            idx, top, tail, split = top_k_targets(lp, k, cutoffs)  # masses before any fp16 rounding
            rest[start:end] = tail.cpu().numpy()
            ids[start:end] = idx.cpu().numpy().astype(dtype)
            logp[start:end] = top.cpu().numpy().astype(np.float16)
            if cutoffs:
                parts[start:end] = split.cpu().numpy()
            bar.update(end - start)
    for a in arrays:
        a.flush()
    teacher.hidden = None


def read_targets(path: Path) -> TeacherTargets | None:
    """The cache at ``path``, memory-mapped; None when missing, of another format or cut short."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        names = ("ids", "logp", "rest") + (("parts",) if meta["cutoffs"] else ())
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in names}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    shape = (meta["rows"], meta["batch_size"], meta["k"])
    if arrays["ids"].shape != shape or arrays["logp"].shape != shape or arrays["rest"].shape != shape[:2]:
        return None
    if "parts" in arrays and arrays["parts"].shape != shape[:2] + (len(meta["cutoffs"]) + 1,):
        return None
    return TeacherTargets(path=path, **arrays)
