"""Self-describing checkpoints in one safetensors file (loading never unpickles).

Tensors: ``model.*`` (weights; a tied weight stored once, its aliases listed in the
metadata), ``avg.*`` (NT-ASGD running averages), ``optim.<i>.<key>`` (optimizer state),
``rng.torch`` and ``hidden.<layer>.<h|c>`` (the carried state, for an exact mid-epoch
resume). Metadata ``awdlstm``: JSON with the config, the vocabulary and the training
state (epoch, iterator position and RNG, history, phase, ...).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import AwdlstmError

FORMAT = "awdlstm-checkpoint-1"


def _dedupe(prefix: str, state: dict[str, torch.Tensor], tensors: dict, aliases: dict) -> None:
    """Add ``state`` under ``prefix``; tensors sharing storage (tied weights) are stored once."""
    seen: dict[tuple, str] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            aliases[prefix + name] = seen[key]
            continue
        seen[key] = prefix + name
        tensors[prefix + name] = t.detach().contiguous().cpu()


def save_checkpoint(path: Path, tensors_by_prefix: dict[str, dict[str, torch.Tensor]], meta: dict) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for prefix, state in tensors_by_prefix.items():
        _dedupe(prefix, state, tensors, aliases)
    header = {"format": FORMAT, "aliases": aliases, **meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"awdlstm": json.dumps(header)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """(tensors grouped by prefix, metadata). Any unreadable file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AwdlstmError(f"{path}: no such checkpoint file")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("awdlstm")
        flat = load_file(str(path))
        meta = json.loads(raw_meta) if raw_meta else None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise AwdlstmError(f"{path}: not a readable checkpoint (truncated or corrupt: "
                           f"{str(e).splitlines()[0][:120]})") from None
    if not meta or meta.get("format") != FORMAT:
        raise AwdlstmError(f"{path}: not an awdlstm checkpoint (format {meta and meta.get('format')!r}, "
                           f"expected {FORMAT})")
    for alias, target in meta.get("aliases", {}).items():
        flat[alias] = flat[target]
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in flat.items():
        prefix, _, rest = name.partition(".")
        grouped.setdefault(prefix + ".", {})[rest] = t
    return grouped, meta
