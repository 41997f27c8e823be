"""Self-describing checkpoints in one safetensors file (loading never unpickles).

Tensors: ``model.*`` (weights; a tied weight stored once, its aliases listed in the
metadata), ``avg.*`` (NT-ASGD running averages), ``optim.<i>.<key>`` (optimizer state),
``rng.*`` (generator states) and ``hidden.<layer>.<h|c>`` (the carried state of the whole
batch, for an exact mid-epoch resume). Metadata ``awdlstm``: a JSON object with the config,
the vocabulary, the tokenizer (``tokenizer``, and for subword units ``tokenizer_model``: the
model itself, as text) and, in a resumable (``last``) checkpoint, the training state.

Every tensor is written from the CPU, so a file does not remember the device it was
trained on: a checkpoint from a GPU loads on a CPU-only machine and back.

``read_checkpoint`` is the one reader: every other module asks its ``Checkpoint`` for
what it needs, and a missing or malformed entry is a one-line error naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..config import RunConfig
from ..data.tokenizers import Tokenizer, from_meta
from ..errors import AwdlstmError

FORMAT = "awdlstm-checkpoint-1"
TMP_SUFFIX = ".tmp"


def dedupe_tied(prefix: str, state: dict[str, torch.Tensor], tensors: dict, aliases: dict) -> None:
    """Add ``state`` under ``prefix``; tensors sharing storage (tied weights) are stored once."""
    seen: dict[tuple, str] = {}
    for name, t in state.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            aliases[prefix + name] = seen[key]
            continue
        seen[key] = prefix + name
        tensors[prefix + name] = t.detach().contiguous().cpu()


def save_checkpoint(path: Path, tensors_by_prefix: dict[str, dict[str, torch.Tensor]], meta: dict) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename. A failed
    write (a full disk, a vanished folder) removes the temporary file, leaves the previous
    checkpoint as it was, and is a one-line error."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for prefix, state in tensors_by_prefix.items():
        dedupe_tied(prefix, state, tensors, aliases)
    header = {"format": FORMAT, "aliases": aliases, **meta}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp, metadata={"awdlstm": json.dumps(header)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise AwdlstmError(f"{path}: could not write the checkpoint ({_cause(e)}); the previous one, "
                           f"if any, is unchanged") from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def _cause(e: Exception) -> str:
    if isinstance(e, OSError) and e.errno is not None:
        if e.errno == errno.ENOSPC:
            return "no space left on the device"
        return os.strerror(e.errno).lower()
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that a process killed while writing a checkpoint left
    in ``folder`` (``.<name>.<random>.tmp``); returns what was removed."""
    removed = []
    if Path(folder).is_dir():
        for p in Path(folder).glob(f".*.safetensors.*{TMP_SUFFIX}"):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@dataclass
class Checkpoint:
    """An opened checkpoint: tensors grouped by prefix and the metadata, with guarded access."""

    path: Path
    tensors: dict[str, dict[str, torch.Tensor]]
    meta: dict

    def _get(self, key: str, kind: type | tuple, what: str):
        if key not in self.meta:
            raise AwdlstmError(f"{self.path}: checkpoint lacks its {what} ('{key}' in the metadata)")
        value = self.meta[key]
        if not isinstance(value, kind):
            raise AwdlstmError(f"{self.path}: the checkpoint's {what} ('{key}') is malformed")
        return value

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self._get("config", dict, "config"), where=str(self.path))

    def vocab(self) -> list[str]:
        itos = self._get("vocab", list, "vocabulary")
        if not all(isinstance(t, str) for t in itos) or not itos:
            raise AwdlstmError(f"{self.path}: the checkpoint's vocabulary is not a list of tokens")
        if len(set(itos)) != len(itos):
            dup = next(t for i, t in enumerate(itos) if t in itos[:i])
            raise AwdlstmError(f"{self.path}: the checkpoint's vocabulary lists {dup!r} twice")
        return itos

    def tokenizer(self) -> Tokenizer:
        """How the model's corpus was read (its level, and the subword model itself where
        there is one): every command that reads or writes text uses it."""
        level = self._get("level", str, "corpus level")
        self._get("tokenizer", str, "tokenizer")
        if level not in ("word", "char"):
            raise AwdlstmError(f"{self.path}: the checkpoint's level {level!r} is not word or char")
        return from_meta(self.meta, level, str(self.path))

    def section(self, key: str, what: str) -> dict:
        """A JSON object of the metadata, e.g. a classifier's settings."""
        return self._get(key, dict, what)

    def labels(self) -> list[str]:
        """A classifier's class names, in the order of its outputs."""
        labels = self._get("labels", list, "class labels")
        if not labels or not all(isinstance(x, str) for x in labels):
            raise AwdlstmError(f"{self.path}: the checkpoint's class labels are not a list of names")
        return labels

    def weights(self) -> dict[str, torch.Tensor]:
        """The model weights to evaluate: the running average when a ``last`` checkpoint
        was taken while averaging, else the model's own."""
        if "avg." in self.tensors:
            return {k[len("module."):]: v for k, v in self.tensors["avg."].items() if k.startswith("module.")}
        if "model." not in self.tensors:
            raise AwdlstmError(f"{self.path}: checkpoint holds no model weights")
        return self.tensors["model."]

    def kind(self) -> str:
        """'last' (resumable), 'best', 'classifier', ...; files from before the entry: by their tensors."""
        kind = self.meta.get("kind", "last" if "rng." in self.tensors else "best")
        return kind if isinstance(kind, str) else "unknown"

    def training_state(self) -> dict:
        """The training state stored with the weights (phase, epoch, best_val, ...); {} when absent."""
        state = self.meta.get("state")
        return state if isinstance(state, dict) else {}

    def state_dict(self) -> dict:
        """Everything the file holds as one dict: its tensor groups (keys ending in '.') and
        its metadata entries; what a trainer's ``load_state_dict`` takes."""
        return {**self.meta, **self.tensors}

    def is_resumable(self) -> bool:
        return self.kind() == "last"

    def require_resumable(self) -> None:
        if not self.is_resumable():
            raise AwdlstmError(
                f"{self.path}: this is a finished-model checkpoint (best or exported), not a resumable "
                f"one: it has no optimizer, generator or iterator state. Evaluate it with `awdlstm eval`, "
                f"or fine-tune from its run folder with `awdlstm finetune`")
        for prefix in ("model.", "rng."):
            if prefix not in self.tensors:
                raise AwdlstmError(f"{self.path}: resumable checkpoint lacks its '{prefix[:-1]}' tensors")
        for key, kind in (("state", dict), ("optim_groups", list)):
            self._get(key, kind, "training state" if key == "state" else "optimizer settings")


def read_checkpoint(path: Path) -> Checkpoint:
    """Open ``path``. Any unreadable or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AwdlstmError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("awdlstm")
        flat = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise AwdlstmError(f"{path}: not a readable checkpoint (truncated or corrupt: "
                           f"{str(e).splitlines()[0][:120]})") from None
    try:
        meta = json.loads(raw_meta) if raw_meta else None
    except ValueError:
        raise AwdlstmError(f"{path}: the checkpoint's metadata is not valid JSON") from None
    if meta is not None and not isinstance(meta, dict):
        raise AwdlstmError(f"{path}: the checkpoint's metadata is JSON but not an object")
    if not meta or meta.get("format") != FORMAT:
        raise AwdlstmError(f"{path}: not an awdlstm checkpoint (format {meta and meta.get('format')!r}, "
                           f"expected {FORMAT})")
    aliases = meta.get("aliases", {})
    if not isinstance(aliases, dict):
        raise AwdlstmError(f"{path}: the checkpoint's tensor aliases are malformed")
    for alias, target in aliases.items():
        if target not in flat:
            raise AwdlstmError(f"{path}: the checkpoint's alias {alias!r} names a missing tensor {target!r}")
        flat[alias] = flat[target]
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in flat.items():
        prefix, _, rest = name.partition(".")
        grouped.setdefault(prefix + ".", {})[rest] = t
    return Checkpoint(path, grouped, meta)


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """(tensors grouped by prefix, metadata): ``read_checkpoint`` without the accessors."""
    ckpt = read_checkpoint(path)
    return ckpt.tensors, ckpt.meta
