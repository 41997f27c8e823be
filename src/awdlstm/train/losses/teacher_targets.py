"""The teacher's targets, computed once per (teacher, corpus, batch size, k) and read from a
memory-mapped file every epoch after: at every position of the training text, the teacher's
k most probable next tokens and their log-probabilities, plus the probability it leaves to
the other V − k tokens.

Layout: the training ids batchified at the student's batch size B (rows R = N // B; column
b holds ids[b·R : (b+1)·R], as ``batchify``), so the window that starts at row s with
length L (whatever variable BPTT drew) has its targets at rows [s, s + L):

    ids.npy   (R, B, k) uint16 (V ≤ 65,536) or uint32   the kept tokens, most probable first
    logp.npy  (R, B, k) float16                          their log-probabilities at T = 1
    rest.npy  (R, B)    float32                          the other tokens' total probability

(NumPy's .npy: a header with dtype and shape, then the array, memory-mapped read-only; a
window's rows are one contiguous stretch of each file.)

The teacher reads each column from its start with its state carried from window to window,
as the on-the-fly loss does (evaluation mode: no dropout), so the stored distribution is
the one the student would get from the teacher at that position. The key hashes the
teacher's weights (every tensor's bytes: a retrained teacher at the same path is another
teacher), the training ids, B and k; a cache of another teacher or corpus has another key
and is never read. Folders are written whole (``atomic_folder``) under
<cache>/teachers/<key>/.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data.batching import batchify
from ...data.paths import cache_root
from ...data.token_cache import atomic_folder, id_dtype
from ...progress import progress_bar

FORMAT = 1
WINDOW = 70  # rows per teacher forward while writing (the state carries across, so any length gives the same)


@dataclass
class TeacherTargets:
    """The memory-mapped arrays of one cache folder (layout above)."""

    ids: np.ndarray  # (R, B, k)
    logp: np.ndarray  # (R, B, k) float16
    rest: np.ndarray  # (R, B) float32
    path: Path

    def window(self, start: int, length: int, columns: tuple[int, int], device) -> tuple[torch.Tensor, ...]:
        """Rows [start, start + length) of this process's columns: ids (L, b, k) int64,
        logp (L, b, k) and rest (L, b), float32."""
        c0, c1 = columns
        rows = slice(start, start + length)
        # Copies out of the read-only mapping (the tensors must own writable memory).
        ids = torch.from_numpy(self.ids[rows, c0:c1].astype(np.int64))
        logp = torch.from_numpy(self.logp[rows, c0:c1].astype(np.float32))
        rest = torch.from_numpy(np.array(self.rest[rows, c0:c1]))
        return ids.to(device), logp.to(device), rest.to(device)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in order."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(teacher_digest: str, train_ids, batch_size: int, k: int) -> str:
    ids = np.ascontiguousarray(np.asarray(train_ids))
    h = hashlib.sha256(f"teacher-targets:{FORMAT}:{teacher_digest}:{batch_size}:{k}:{ids.dtype.str}:".encode())
    h.update(memoryview(ids).cast("B"))
    return h.hexdigest()[:24]


def teacher_targets(teacher, train_ids, batch_size: int, k: int, log=print, progress: bool = True,
                    root: Path | None = None) -> TeacherTargets:
    """The cache of ``teacher`` (a ``Teacher``: model and state) on ``train_ids`` at batch
    ``batch_size``: read when it exists, else written first (one teacher pass over the
    training text, shown with a progress bar)."""
    digest = weights_digest(teacher.model)
    path = (root or cache_root() / "teachers") / cache_key(digest, train_ids, batch_size, k)
    found = read_targets(path)
    if found is not None:
        log(f"teacher targets: {path} (cached, top {k})")
        return found
    if path.exists():  # damaged or cut short: written anew
        shutil.rmtree(path)
    log(f"teacher targets: one pass of the teacher over the training text, the top {k} tokens per position, "
        f"into {path}")
    with atomic_folder(path) as tmp:
        _write(tmp, teacher, train_ids, batch_size, k, progress)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "teacher": digest, "batch_size": batch_size,
                                                   "k": k, "vocab": teacher.vocab_size,
                                                   "rows": len(train_ids) // batch_size}, indent=1))
    found = read_targets(path)
    if found is None:
        raise OSError(f"{path}: the teacher targets just written cannot be read back")
    return found


@torch.no_grad()
def _write(folder: Path, teacher, train_ids, batch_size: int, k: int, progress: bool) -> None:
    source = batchify(train_ids, batch_size)  # (R, B): the student's batches, all columns
    rows = source.size(0)
    dtype = id_dtype(teacher.vocab_size)
    ids = np.lib.format.open_memmap(folder / "ids.npy", "w+", dtype, (rows, batch_size, k))
    logp = np.lib.format.open_memmap(folder / "logp.npy", "w+", np.float16, (rows, batch_size, k))
    rest = np.lib.format.open_memmap(folder / "rest.npy", "w+", np.float32, (rows, batch_size))
    teacher.reset(batch_size)
    device = next(teacher.model.parameters()).device
    with progress_bar(total=rows, desc="teacher targets", unit="row", enabled=progress) as bar:
        for start in range(0, rows, WINDOW):
            end = min(start + WINDOW, rows)
            lp = teacher.log_probs(source[start:end].to(device))  # (L, B, V) fp32
            top, idx = lp.topk(k, dim=-1)  # (L, B, k), descending
            # The tail's mass summed over the tail itself (1 − Σ kept would leave fp32's
            # rounding, ~1e-7, where the tail is smaller), before any fp16 rounding.
            rest[start:end] = lp.scatter(-1, idx, -math.inf).logsumexp(-1).exp().cpu().numpy()
            ids[start:end] = idx.cpu().numpy().astype(dtype)
            logp[start:end] = top.cpu().numpy().astype(np.float16)
            bar.update(end - start)
    for a in (ids, logp, rest):
        a.flush()
    teacher.hidden = None


def read_targets(path: Path) -> TeacherTargets | None:
    """The cache at ``path``, memory-mapped; None when missing, of another format or cut short."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ("ids", "logp", "rest")}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    shape = (meta["rows"], meta["batch_size"], meta["k"])
    if arrays["ids"].shape != shape or arrays["logp"].shape != shape or arrays["rest"].shape != shape[:2]:
        return None
    return TeacherTargets(path=path, **arrays)
