"""The token cache: a corpus numericalised once, block by block in bounded memory, into flat
binary id files that every later load, and every process of a torchrun job, memory-maps.

    DIR/<split>.bin   the split's ids, little-endian uint16 when the vocabulary has at most
                      65,536 entries, else uint32; ``<eos>`` after each line
    DIR/vocab.json    the vocabulary (id order)
    DIR/meta.json     {"format", "dtype", "stats": {split: SplitStats}, "files", "tokenizer": {...}}

A built vocabulary (``split``, ``chars``) is known only when the training split has been
read, so the blocks are first written with provisional ids (one per distinct token, in order
of first occurrence; data/tokenizers/base.py), then mapped to the final ids by a lookup table,
chunk by chunk. Training comes first in every stream, so the types first met in valid or
test are exactly those the training split lacks.

An entry is written into a temporary folder beside it and renamed into place, so a reader
never sees half of one; a folder left by a killed writer (its process gone) is removed by
the next writer.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import AwdlstmError
from ..progress import progress_bar
from .sources import SPLITS
from .tokenizers import Tokenizer
from .vocab import Vocabulary

FORMAT = "awdlstm-tokens-2"
REMAP_CHUNK = 1 << 22  # ids mapped at once from provisional to final (16 MB of uint32, 32 MB of indices)


@dataclass
class SplitStats:
    """Counts for one split: ``oov`` tokens read as ``<unk>`` though the text did not say
    ``<unk>``; ``words`` and ``chars`` by the counting rules of data/tokenizers/base.py."""

    lines: int = 0
    tokens: int = 0
    oov: int = 0
    words: int = 0
    chars: int = 0


def id_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def write_entry(path: Path, blocks: Iterable[tuple[str, str]], tokenizer: Tokenizer, where: dict[str, Path],
                total_bytes: int, max_vocab: int = 0, min_freq: int = 1, progress: bool = True,
                files: dict | None = None) -> Path:
    """Numericalise ``blocks`` ((split, text) pairs, train first) into the entry ``path``;
    returns ``path`` (or the entry another process wrote there first)."""
    with atomic_folder(path) as tmp:
        vocab, stats, dtype = _numericalise(tmp, blocks, tokenizer, where, total_bytes, max_vocab, min_freq,
                                            progress)
        (tmp / "vocab.json").write_text(json.dumps(vocab.itos, ensure_ascii=False))
        meta = {"format": FORMAT, "dtype": dtype.str, "stats": {s: vars(st) for s, st in stats.items()},
                "files": {s: str(f) for s, f in (files or {}).items()}, "tokenizer": tokenizer.meta()}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return path


@contextlib.contextmanager
def atomic_folder(path: Path):
    """Write a cache folder whole or not at all: the body fills a temporary folder beside
    ``path`` (named after this process), renamed to ``path`` at the end; on an error it is
    removed. A killed writer's folder is removed by the next writer, so an interrupted
    build never blocks the next one. When another process finished ``path`` first (the
    rename fails), its folder stays and is the result; ``meta.json`` marks a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / "meta.json").is_file():  # not another process's finished entry
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_abandoned(path: Path) -> None:
    """Temporary folders of ``path`` whose writer is no longer running."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.split(".tmp-")[1].split("-")[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def _numericalise(tmp: Path, blocks, tokenizer: Tokenizer, where: dict[str, Path], total_bytes: int,
                  max_vocab: int, min_freq: int, progress: bool) -> tuple[Vocabulary, dict, np.dtype]:
    enc = tokenizer.encoder()
    fixed = tokenizer.vocabulary()
    dtype = id_dtype(len(fixed)) if fixed is not None else np.dtype("<u4")
    stats = {s: SplitStats() for s in SPLITS}
    counts = {s: np.zeros(0, dtype=np.int64) for s in SPLITS}  # per provisional id (built) or final id
    outs = {s: open(tmp / f"{s}.bin", "wb") for s in SPLITS}
    try:
        with progress_bar(total=total_bytes, desc="tokenize", unit="B", unit_scale=True, enabled=progress) as bar:
            for split, block in blocks:
                ids = enc.ids(block)
                st = stats[split]
                st.lines += block.count("\n")
                st.tokens += len(ids)
                st.words += enc.words(block, ids)
                st.chars += len(block)
                ids.astype(dtype, copy=False).tofile(outs[split])
                c = np.bincount(ids)
                if len(c) > len(counts[split]):
                    c[: len(counts[split])] += counts[split]
                    counts[split] = c
                else:
                    counts[split][: len(c)] += c
                bar.update(len(block))
    finally:
        for f in outs.values():
            f.close()
    for split in SPLITS:
        if stats[split].lines == 0:
            raise AwdlstmError(f"{where[split]}: the {split} split is empty; every split needs at least one "
                               f"line of text")
    if fixed is not None:
        unknown = getattr(tokenizer, "unknown_id", None)
        for split in SPLITS:  # tokens the model's own units could not spell
            c = counts[split]
            stats[split].oov = int(c[unknown]) if unknown is not None and unknown < len(c) else 0
        return Vocabulary(fixed), stats, dtype

    types = enc.tokens()
    train_types = len(counts["train"])  # every provisional id below this was met in training
    train_counts = dict(zip(types[:train_types], counts["train"].tolist()))
    try:
        vocab = Vocabulary.from_counts(train_counts, len(types) > train_types, max_vocab, min_freq)
    except ValueError as e:
        raise AwdlstmError(f"data.max_vocab={max_vocab}: {e}; it must leave room for one more token") from None
    unk = vocab.unk_id
    final = np.array([vocab.stoi.get(t, -1 if unk is None else unk) for t in types], dtype=np.int64)
    if (final < 0).any():  # cannot happen: from_counts adds <unk> when some token needs it
        raise AwdlstmError(f"token {types[int(np.argmax(final < 0))]!r} has no id and the corpus has no <unk>")
    # Read as <unk> though the text did not say <unk>: outside the vocabulary.
    oov = np.array([t not in vocab.stoi for t in types], dtype=bool)
    dtype = id_dtype(len(vocab))
    table = final.astype(dtype)
    for split in SPLITS:
        stats[split].oov = int(counts[split][oov[: len(counts[split])]].sum())
        _remap(tmp / f"{split}.bin", table)
    return vocab, stats, dtype


def _remap(path: Path, table: np.ndarray) -> None:
    """Rewrite a file of provisional uint32 ids through ``table``, chunk by chunk (read, not
    mapped: the pages of a mapping would count as the process's memory)."""
    out_path = path.with_suffix(".final")
    with open(path, "rb") as src, open(out_path, "wb") as out:
        while (chunk := np.fromfile(src, dtype="<u4", count=REMAP_CHUNK)).size:
            table[chunk].tofile(out)
    os.replace(out_path, path)


def _mapped(file: Path, dtype: np.dtype) -> np.memmap:
    """The ids of ``file``, memory-mapped read-only. Training reads B columns far apart, a
    window at a time: the kernel's read-ahead would map megabytes around each, so the
    mapping is marked for random access (a page per fault)."""
    ids = np.memmap(file, dtype=dtype, mode="r")
    if hasattr(mmap, "MADV_RANDOM") and getattr(ids, "_mmap", None) is not None:
        ids._mmap.madvise(mmap.MADV_RANDOM)
    return ids


@dataclass
class Entry:
    vocab: Vocabulary
    arrays: dict[str, np.ndarray]
    stats: dict[str, SplitStats]
    tokenizer: dict


def read_entry(path: Path, memory_map: bool = True) -> Entry | None:
    """The entry at ``path``: ids memory-mapped (read-only), or read into memory; None when
    it is missing, of another format, or damaged (it is then written anew)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        vocab = Vocabulary(json.loads((path / "vocab.json").read_text()))
        dtype = np.dtype(meta["dtype"])
        names = {f.name for f in fields(SplitStats)}
        stats = {s: SplitStats(**{k: v for k, v in meta["stats"][s].items() if k in names}) for s in SPLITS}
        arrays = {}
        for s in SPLITS:
            file = path / f"{s}.bin"
            if file.stat().st_size != stats[s].tokens * dtype.itemsize:
                return None
            arrays[s] = _mapped(file, dtype) if memory_map else np.fromfile(file, dtype=dtype)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Entry(vocab, arrays, stats, meta.get("tokenizer", {}))
