"""Load a corpus (a known name or a folder) into a vocabulary and three id arrays.

Lines: a file is split on ``\\n``; a final fragment after the last newline that is empty
or whitespace-only is not a line (the PTB-char files end in ``\\n`` plus one space, so
this yields the published counts, e.g. PTB-char train 5,017,482 tokens). Every line,
empty ones included, contributes one ``<eos>``.

Tokens: ``split`` tokenizer: ``line.split()``; ``chars``: every character of the line
(a trailing ``\\r`` removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AwdlstmError
from .download import fetch_corpus
from .lines import read_lines
from .paths import DATA_ENV, cache_root
from .raw_text import raw_splits, source_files
from .sources import KNOWN, SPLIT_FILE_PATTERNS, SPLITS
from .vocab import EOS, Vocabulary

# Bump when tokenisation or the cache layout changes: old cache entries are then ignored.
CACHE_FORMAT = 1
TOKENIZERS = ("split", "chars")
DEFAULT_FRACTION = 0.05  # of the lines of a raw-text source, for valid and for test
LEVELS = ("word", "char")


@dataclass
class SplitStats:
    """Counts for one split; ``oov`` counts tokens absent from the training vocabulary."""

    lines: int
    tokens: int
    oov: int


@dataclass
class Corpus:
    """A numericalised corpus. ``train``/``valid``/``test`` are int64 id arrays."""

    name: str
    level: str
    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    stats: dict[str, SplitStats]
    folder: Path
    cache_path: Path | None = None
    tokenizer: str = "split"

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise AwdlstmError(f"unknown split '{name}'; valid: {', '.join(SPLITS)}")
        return getattr(self, name)


def tokenize(lines: list[str], tokenizer: str) -> list[str]:
    out: list[str] = []
    if tokenizer == "split":
        for line in lines:
            out.extend(line.split())
            out.append(EOS)
    else:
        for line in lines:
            out.extend(line.rstrip("\r"))
            out.append(EOS)
    return out


def find_split_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise AwdlstmError(f"{folder}: no such corpus folder; give a folder holding train.txt, "
                           f"valid.txt and test.txt, or a known corpus name ({', '.join(KNOWN)})")
    files = {}
    for split in SPLITS:
        for pattern in SPLIT_FILE_PATTERNS:
            candidate = folder / pattern.format(split=split)
            if candidate.is_file():
                files[split] = candidate
                break
        else:
            names = ", ".join(p.format(split=split) for p in SPLIT_FILE_PATTERNS)
            raise AwdlstmError(f"{folder}: no {split} split; expected one of {names}")
    return files


def resolve(name_or_path: str, data_dir: str | Path | None = None, download: bool = True,
            progress: bool = True) -> tuple[str, Path]:
    """Return (corpus name, folder). Order for a known name: ``data_dir/<name>`` →
    ``$AWDLSTM_DATA/<name>`` → the cache → a download into the cache."""
    if name_or_path in KNOWN:
        name = name_or_path
        for base in (data_dir, os.environ.get(DATA_ENV)):
            if base and (Path(base).expanduser() / name).is_dir():
                return name, Path(base).expanduser() / name
        cached = cache_root() / "corpora" / name
        if cached.is_dir():
            return name, cached
        if not download:
            raise AwdlstmError(f"corpus '{name}' not found in --data-dir, ${DATA_ENV} or "
                               f"{cached.parent}, and downloading is off")
        return name, fetch_corpus(KNOWN[name], cached, progress)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve().name, path
    if path.is_file():  # a single text or JSON-lines file (raw_text.py)
        return path.stem, path
    if os.sep in name_or_path or path.exists() or name_or_path.startswith("."):
        find_split_files(path)  # raises the precise error
    raise AwdlstmError(f"unknown corpus '{name_or_path}'; give a folder holding train.txt, "
                       f"valid.txt and test.txt, or one of: {', '.join(KNOWN)}, synthetic")


def _cache_key(files: list[Path], tokenizer: str, max_vocab: int = 0, min_freq: int = 1, split_rule: str = "") -> str:
    """Of the files' contents and every setting that changes the ids: a changed file or
    setting is never served stale. ``split_rule`` describes a raw-text source's split."""
    cut = f":{max_vocab}:{min_freq}" if (max_vocab, min_freq) != (0, 1) else ""
    h = hashlib.sha256(f"awdlstm-corpus-v{CACHE_FORMAT}:{tokenizer}{cut}{split_rule}".encode())
    for f in files:
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:32]


def _numericalise(split_lines: dict[str, list[str]], where: dict[str, Path], tokenizer: str, max_vocab: int = 0,
                  min_freq: int = 1) -> tuple[Vocabulary, dict, dict]:
    arrays, stats = {}, {}
    tokens = {}
    for split in SPLITS:
        lines = split_lines[split]
        if not lines:
            raise AwdlstmError(f"{where[split]}: the {split} split is empty; every split needs "
                               f"at least one line of text")
        tokens[split] = tokenize(lines, tokenizer)
        stats[split] = SplitStats(lines=len(lines), tokens=len(tokens[split]), oov=0)
    try:
        vocab = Vocabulary.build_open(tokens["train"], (tokens["valid"], tokens["test"]), max_vocab, min_freq)
    except ValueError as e:
        raise AwdlstmError(f"data.max_vocab={max_vocab}: {e}; it must leave room for one more token") from None
    for split in SPLITS:
        # Tokens read as <unk>: outside the vocabulary (a literal <unk> of the corpus is not counted).
        stats[split].oov = sum(t not in vocab for t in tokens[split])
        arrays[split] = vocab.encode(tokens[split])
    return vocab, arrays, stats


def _write_cache(path: Path, vocab: Vocabulary, arrays: dict, stats: dict, files: dict) -> None:
    """Write into a temporary folder beside ``path`` and rename it: readers never see a
    half-written entry, and an interrupted write leaves only a stray temp folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        (tmp / "vocab.json").write_text(json.dumps(vocab.itos, ensure_ascii=False))
        for split in SPLITS:
            np.save(tmp / f"{split}.npy", arrays[split].astype(np.int32))
        meta = {"stats": {s: vars(st) for s, st in stats.items()},
                "files": {s: str(f) for s, f in files.items()}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.is_dir():
            raise


def _read_cache(path: Path) -> tuple[Vocabulary, dict, dict] | None:
    try:
        vocab = Vocabulary(json.loads((path / "vocab.json").read_text()))
        meta = json.loads((path / "meta.json").read_text())
        arrays = {s: np.load(path / f"{s}.npy").astype(np.int64) for s in SPLITS}
        stats = {s: SplitStats(**meta["stats"][s]) for s in SPLITS}
    except (OSError, ValueError, KeyError):
        return None
    return vocab, arrays, stats


def _split_files(folder: Path) -> dict[str, Path] | None:
    """A folder's train/valid/test files; None for a raw-text source (a file, or a folder of
    text without split names); a folder with some split files but not all is an error."""
    if folder.is_file():
        return None
    try:
        return find_split_files(folder)
    except AwdlstmError:
        if any(next(folder.glob(p.format(split=s)), None) for s in SPLITS for p in SPLIT_FILE_PATTERNS):
            raise  # some split files but not all: say which is missing
        return None


def load_corpus(name_or_path: str, data_dir: str | Path | None = None, level: str | None = None,
                tokenizer: str | None = None, use_cache: bool = True, download: bool = True,
                progress: bool = True, max_vocab: int = 0, min_freq: int = 1,
                valid_fraction: float = DEFAULT_FRACTION, test_fraction: float = DEFAULT_FRACTION, text_field: str = "text") -> Corpus:
    """Load a corpus by known name, ``synthetic``, or folder path.

    ``level`` ("word" or "char") decides the metric; ``tokenizer`` ("split" or "chars")
    how lines become tokens. Known corpora fix both; a folder defaults to word/split, and
    ``level="char"`` on a folder defaults to the ``chars`` tokenizer. ``max_vocab`` (0: no
    cap) and ``min_freq`` open the vocabulary (above). A single file, or a folder without
    split files, is raw text split by the fractions (raw_text.py; ``text_field`` for JSON lines).
    """
    if name_or_path == "synthetic":
        from .synthetic import SyntheticSpec, ensure_synthetic
        folder = ensure_synthetic(SyntheticSpec())
        name = "synthetic"
    else:
        name, folder = resolve(name_or_path, data_dir, download, progress)
    # A known corpus, by name or by a folder named after it, fixes level and tokenizer.
    known = KNOWN.get(name)
    if known is not None and level is None and tokenizer is None:
        level, tokenizer = known.level, known.tokenizer
    level = level or "word"
    if level not in LEVELS:
        raise AwdlstmError(f"unknown level '{level}'; valid: {', '.join(LEVELS)}")
    tokenizer = tokenizer or ("chars" if level == "char" else "split")
    if tokenizer not in TOKENIZERS:
        raise AwdlstmError(f"unknown tokenizer '{tokenizer}'; valid: {', '.join(TOKENIZERS)}")

    split_files = _split_files(folder)
    if split_files is not None:  # train/valid/test files
        if (valid_fraction, test_fraction) != (DEFAULT_FRACTION, DEFAULT_FRACTION):
            raise AwdlstmError(f"data.valid_fraction / data.test_fraction only act on a single file or a folder "
                               f"without split files; {folder} has its own train, valid and test files")
        files, rule = [split_files[s] for s in SPLITS], ""
    else:  # a raw-text source, split by the fractions
        files, rule = source_files(folder), f":raw:{valid_fraction}:{test_fraction}:{text_field}"
    key = _cache_key(files, tokenizer, max_vocab, min_freq, rule)
    cache_path = cache_root() / "tokens" / key if use_cache else None
    loaded = _read_cache(cache_path) if cache_path is not None and cache_path.is_dir() else None
    if loaded is None:
        if split_files is not None:
            lines, where = {s: read_lines(split_files[s]) for s in SPLITS}, split_files
        else:
            lines, _ = raw_splits(folder, valid_fraction, test_fraction, text_field)
            where = dict.fromkeys(SPLITS, folder)
        loaded = _numericalise(lines, where, tokenizer, max_vocab, min_freq)
        if cache_path is not None:
            _write_cache(cache_path, *loaded, dict(zip(SPLITS, files)) if split_files else {"source": folder})
    vocab, arrays, stats = loaded
    return Corpus(name=name, level=level, vocab=vocab, stats=stats, folder=folder,
                  cache_path=cache_path, tokenizer=tokenizer, **arrays)
