"""Philox-4x32-10 in PyTorch integer ops: the weight-drop mask of the compiled kernel
(csrc/kernels.cpp), bit for bit, on machines without a compiler (or for float64), so that a
run resumes, and N processes equal one, whichever machines they run on.

The rounds run on NumPy's unsigned 64-bit integers, whose products of two 32-bit words
are exact (below 2^64) and whose arithmetic wraps by definition.
"""

from __future__ import annotations

import numpy as np
import torch

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF
CTR = 128  # Philox blocks per chunk; a chunk is 8 x CTR elements (the kernel's layout)


def philox_blocks(counters: np.ndarray, key: int) -> list[np.ndarray]:
    """The four 32-bit outputs (uint64 arrays) of Philox-4x32-10 for counters (c, 0, 0, 0)
    (c below 2^32) under the 64-bit ``key``."""
    x0 = counters.astype(np.uint64) & MASK32
    x1, x2, x3 = np.zeros_like(x0), np.zeros_like(x0), np.zeros_like(x0)
    k0, k1 = key & MASK32, (key >> 32) & MASK32
    m0, m1, shift, low = np.uint64(M0), np.uint64(M1), np.uint64(32), np.uint64(MASK32)
    for r in range(10):
        p0, p1 = x0 * m0, x2 * m1  # exact: both factors below 2^32
        x0, x1, x2, x3 = ((p1 >> shift) ^ x1 ^ np.uint64((k0 + r * W0) & MASK32), p1 & low,
                          (p0 >> shift) ^ x3 ^ np.uint64((k1 + r * W1) & MASK32), p0 & low)
    return [x0, x1, x2, x3]


def uniform16(n: int, seed: int) -> torch.Tensor:
    """n 16-bit uniforms (int64 in [0, 65536)) in the kernel's order: element
    c·1024 + lane·128 + j is 16-bit half ``lane`` of block c·128 + j."""
    chunks = -(-n // (8 * CTR))
    words = philox_blocks(np.arange(chunks * CTR, dtype=np.uint64), seed & ((1 << 64) - 1))
    halves = np.empty((chunks * CTR, 8), dtype=np.uint16)  # (blocks, 8): the halves of x0 .. x3
    for k, w in enumerate(words):
        halves[:, 2 * k], halves[:, 2 * k + 1] = w & np.uint64(0xFFFF), w >> np.uint64(16)
    return torch.from_numpy(halves.reshape(chunks, CTR, 8).transpose(0, 2, 1).reshape(-1)[:n].astype(np.int32))
