"""The compiled CPU kernels of ``awdlstm/csrc/kernels.cpp``, built on first use.

``torch.utils.cpp_extension`` compiles the file with the machine's C++ compiler (about a
minute, once; the build is cached under ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions`` and rebuilt only when the source changes). Where no compiler
is present, or ``AWDLSTM_NATIVE=0`` is set, ``native()`` returns None and the callers use
their PyTorch implementations: same semantics, slower.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path

import torch

_NAME = "awdlstm_kernels"
_SOURCE = Path(__file__).resolve().parents[1] / "csrc" / "kernels.cpp"
# -ffast-math lets gcc call glibc's vector exp (libmvec) inside the `omp simd` loops; it is a
# compile flag only, so the flush-to-zero start-up code of -ffast-math is never linked in.
# -fopenmp makes at::parallel_for use PyTorch's own OpenMP pool (the wheel's libgomp.so.1 is
# already loaded, so the extension binds to it rather than to a second runtime).
_CFLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp"]
_LDFLAGS = ["-fopenmp"]


@functools.cache
def native():
    """The kernels module, or None when it cannot be built here (a warning says why)."""
    if os.environ.get("AWDLSTM_NATIVE", "1") == "0":
        return None
    marker = _build_marker()
    if marker is not None and not marker.exists():
        print("awdlstm: compiling the CPU kernels (once, about a minute)", file=sys.stderr, flush=True)
    try:
        from torch.utils.cpp_extension import load

        module = load(name=_NAME, sources=[str(_SOURCE)], extra_cflags=_CFLAGS, extra_ldflags=_LDFLAGS,
                      verbose=False)
    except Exception as exc:  # no compiler, no ninja, a read-only cache: fall back, say so once
        lines = str(exc).strip().splitlines()
        warnings.warn(f"awdlstm: compiled kernels unavailable ({lines[-1] if lines else type(exc).__name__}); "
                      "using the PyTorch implementation", RuntimeWarning, stacklevel=2)
        return None
    if marker is not None:
        with contextlib.suppress(OSError):
            marker.touch()
    return module


def _build_marker() -> Path | None:
    """A file in torch's build folder named by the hash of the source, flags and torch
    version: torch rebuilds when those change, so a missing marker means this load will
    compile, and the minute of silence is announced. None where the folder is unknown
    (the announcement is only a courtesy)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        key = hashlib.sha256(_SOURCE.read_bytes() + repr((_CFLAGS, _LDFLAGS, torch.__version__)).encode())
        return Path(_get_build_directory(_NAME, verbose=False)) / f"awdlstm-{key.hexdigest()[:16]}.built"
    except Exception:
        return None


def usable(*tensors: torch.Tensor) -> bool:
    """True when every tensor is a float32 CPU tensor and the kernels are built."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and native() is not None
