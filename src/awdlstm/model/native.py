"""The compiled CPU kernels of ``awdlstm/csrc/kernels.cpp``: built once, then imported.

``torch.utils.cpp_extension`` compiles the file with the machine's C++ compiler (about a
minute). The build lives in its own folder, ``<root>/awdlstm-<key>``, where root is
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions`` and the key is a hash of the
source, the flags, the torch version and the Python ABI. So:

- a finished build (its ``READY`` file written last) is imported directly, with no
  compiler, lock or ninja involved: it is never rebuilt because a PATH or a checkout's
  location differs, and checkouts with the same source share one build;
- a build runs under an ``flock`` on ``awdlstm-build.lock``. The kernel releases that lock
  when its holder dies, however it dies, so an interrupted build never blocks a later
  command: the next one clears the half-built folder (torch's own ``lock`` file included)
  and builds again. A process that finds another one building says so on stderr and
  waits, up to ``$AWDLSTM_BUILD_TIMEOUT`` seconds (default 900), then gives up with a
  warning and uses the PyTorch implementation.

``awdlstm kernels`` builds ahead of time; training builds before its clock starts. Where
no compiler is present, or ``AWDLSTM_NATIVE=0`` is set, ``native()`` returns None and the
callers use their PyTorch implementations: same semantics, slower.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
import sysconfig
import time
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
_READY = "READY"
_LOCK = "awdlstm-build.lock"


class KernelBuildError(RuntimeError):
    """The kernels could not be built or loaded here."""


def build_key() -> str:
    text = _SOURCE.read_bytes() + repr((_CFLAGS, _LDFLAGS, torch.__version__, sys.version_info[:2],
                                        sysconfig.get_config_var("EXT_SUFFIX"))).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def build_dir() -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(root) / f"awdlstm-{build_key()}"


@functools.cache
def native():
    """The kernels module, or None when it cannot be built here (a warning says why)."""
    if os.environ.get("AWDLSTM_NATIVE", "1") == "0":
        return None
    try:
        return load_or_build()
    except Exception as exc:  # no compiler, no ninja, a read-only cache, a timeout: fall back, say so once
        lines = str(exc).strip().splitlines()
        warnings.warn(f"awdlstm: compiled kernels unavailable ({lines[-1] if lines else type(exc).__name__}); "
                      "using the PyTorch implementation", RuntimeWarning, stacklevel=2)
        return None


def load_or_build():
    folder = build_dir()
    name = f"{_NAME}_{folder.name.split('-', 1)[1]}"
    if (folder / _READY).is_file():
        return _import(name, folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder / _LOCK, f"another process to finish compiling the CPU kernels in {folder}"):
        if (folder / _READY).is_file():  # built by the process we waited for
            return _import(name, folder)
        _clear(folder)
        print(f"awdlstm: compiling the CPU kernels (once, about a minute) in {folder}", file=sys.stderr, flush=True)
        from torch.utils.cpp_extension import load

        module = load(name=name, sources=[str(_SOURCE)], extra_cflags=_CFLAGS, extra_ldflags=_LDFLAGS,
                      build_directory=str(folder), verbose=False)
        (folder / _READY).write_text(f"{Path(module.__file__).name}\n")
        return module


def _import(name: str, folder: Path):
    """Import the library that ``READY`` names (written after a successful build)."""
    library = folder / (folder / _READY).read_text().strip()
    if not library.is_file():
        raise KernelBuildError(f"{folder}: {_READY} is there but the library {library.name} is not; "
                               f"delete the folder to rebuild")
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clear(folder: Path) -> None:
    """Remove what an interrupted build left (objects, a half-written library, ninja's
    records, torch's own lock file): we hold the build lock, so nobody else is using them."""
    for p in folder.iterdir():
        if p.name != _LOCK and p.is_file():
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(path: Path, waiting_for: str):
    """Hold an flock on ``path``; while another process holds it, say so and wait up to
    $AWDLSTM_BUILD_TIMEOUT seconds."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: build without the guard
        yield
        return
    timeout = float(os.environ.get("AWDLSTM_BUILD_TIMEOUT", "900"))
    with open(path, "a+") as f:
        deadline, told = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    f.seek(0)
                    holder = f.read().strip() or "?"
                    print(f"awdlstm: waiting for {waiting_for} (pid {holder}; giving up after {timeout:g} s)",
                          file=sys.stderr, flush=True)
                    told = True
                if time.monotonic() > deadline:
                    raise KernelBuildError(f"gave up after {timeout:g} s waiting for {waiting_for}") from None
                time.sleep(0.5)
        try:
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def usable(*tensors: torch.Tensor) -> bool:
    """True when every tensor is a float32 CPU tensor and the kernels are built."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and native() is not None
