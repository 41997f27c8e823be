"""Load a corpus (a known name, a folder or raw text) into a vocabulary, a tokenizer and
three id arrays, through the token cache (token_cache.py): the first load streams the text
block by block (stream.py) in bounded memory; every later one memory-maps the cached ids.

Lines and their ``<eos>``: stream.py. Tokens: the tokenizer (tokenizers/): ``split``
(``line.split()``), ``chars`` (every character), ``bpe`` / ``unigram`` (a SentencePiece model
trained on the training split, ``data.vocab_size`` pieces), or a given model file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AwdlstmError
from .download import fetch_corpus
from .paths import DATA_ENV, cache_root
from .sources import KNOWN, SPLIT_FILE_PATTERNS, SPLITS
from .stream import raw_split_blocks, source_files, split_file_blocks
from .token_cache import SplitStats, read_entry, write_entry
from .tokenizers import BUILT, KINDS, TRAINED, Tokenizer, built, from_meta, load_file, train
from .vocab import Vocabulary

# Bump when tokenisation or the cache layout changes: old cache entries are then ignored.
CACHE_FORMAT = 2
DEFAULT_FRACTION = 0.05  # of the lines of a raw-text source, for valid and for test
LEVELS = ("word", "char")


@dataclass
class Corpus:
    """A numericalised corpus. ``train``/``valid``/``test`` are uint16 or uint32 id arrays,
    memory-mapped from the token cache (read-only) or in memory."""

    name: str
    level: str
    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    stats: dict[str, SplitStats]
    folder: Path
    tokenizer: Tokenizer
    cache_path: Path | None = None

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise AwdlstmError(f"unknown split '{name}'; valid: {', '.join(SPLITS)}")
        return getattr(self, name)


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
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()[:32]


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


def choose_tokenizer(level: str | None, tokenizer: str | None, vocab_size: int, tokenizer_model: str,
                     known_level: str | None = None, known_tokenizer: str | None = None) -> tuple[str, str]:
    """(level, tokenizer kind) from the settings: a known corpus fixes both unless told
    otherwise; a subword tokenizer is word level (its metric is a perplexity) and needs
    ``vocab_size``; a model file is kind ``model``."""
    if tokenizer_model:
        if tokenizer:
            raise AwdlstmError(f"data.tokenizer={tokenizer!r} and data.tokenizer_model={tokenizer_model!r}: give "
                               f"one (a model file fixes its own tokenizer)")
        tokenizer = "model"
    elif known_tokenizer is not None and level is None and tokenizer is None:
        level, tokenizer = known_level, known_tokenizer
    if tokenizer is not None and tokenizer not in (*KINDS, "model"):
        raise AwdlstmError(f"unknown tokenizer '{tokenizer}'; valid: {', '.join(KINDS)}")
    subword = tokenizer in (*TRAINED, "model")
    if subword and level == "char":
        raise AwdlstmError(f"data.tokenizer={tokenizer} reads subword units: its level is 'word' (perplexity, "
                           f"with per-word perplexity and bits per character beside it), not 'char'")
    level = level or "word"
    if level not in LEVELS:
        raise AwdlstmError(f"unknown level '{level}'; valid: {', '.join(LEVELS)}")
    tokenizer = tokenizer or ("chars" if level == "char" else "split")
    if tokenizer in TRAINED and vocab_size < 2:
        raise AwdlstmError(f"data.tokenizer={tokenizer} trains a subword model: give data.vocab_size, the number "
                           f"of pieces (e.g. 8000)")
    if tokenizer not in TRAINED and vocab_size:
        raise AwdlstmError(f"data.vocab_size={vocab_size} acts only with data.tokenizer=bpe or unigram; "
                           f"with {tokenizer} the vocabulary is cut by data.max_vocab and data.min_freq")
    return level, tokenizer


def load_corpus(name_or_path: str, data_dir: str | Path | None = None, level: str | None = None,
                tokenizer: str | None = None, use_cache: bool = True, download: bool = True,
                progress: bool = True, max_vocab: int = 0, min_freq: int = 1,
                valid_fraction: float = DEFAULT_FRACTION, test_fraction: float = DEFAULT_FRACTION,
                text_field: str = "text", vocab_size: int = 0, tokenizer_model: str = "",
                fixed: Tokenizer | None = None) -> Corpus:
    """Load a corpus by known name, ``synthetic``, folder or raw-text path.

    ``level`` ("word" or "char") decides the metric; ``tokenizer`` how lines become tokens
    (``choose_tokenizer``). ``max_vocab`` (0: no cap) and ``min_freq`` open a built
    vocabulary (vocab.py). A single file, or a folder without split files, is raw text split
    by the fractions (stream.py; ``text_field`` for JSON lines). ``fixed``: read the text with
    this tokenizer (a checkpoint's), whatever the settings say. ``use_cache=False`` reads the
    ids into memory and leaves no cache entry.
    """
    if name_or_path == "synthetic":
        from .synthetic import SyntheticSpec, ensure_synthetic
        folder = ensure_synthetic(SyntheticSpec())
        name = "synthetic"
    else:
        name, folder = resolve(name_or_path, data_dir, download, progress)
    known = KNOWN.get(name)
    if fixed is not None:
        level, kind = fixed.level, fixed.kind
    else:
        level, kind = choose_tokenizer(level, tokenizer, vocab_size, tokenizer_model,
                                       known and known.level, known and known.tokenizer)
    if kind not in BUILT and (max_vocab or min_freq != 1):
        raise AwdlstmError(f"data.max_vocab / data.min_freq cut a vocabulary built from the corpus; the {kind} "
                           f"tokenizer has its own (data.vocab_size sets a trained one's size)")
    tok = fixed or (load_file(Path(tokenizer_model).expanduser()) if kind == "model" else
                    built(kind, level) if kind in BUILT else None)

    split_files = _split_files(folder)
    if split_files is not None:  # train/valid/test files
        if (valid_fraction, test_fraction) != (DEFAULT_FRACTION, DEFAULT_FRACTION):
            raise AwdlstmError(f"data.valid_fraction / data.test_fraction only act on a single file or a folder "
                               f"without split files; {folder} has its own train, valid and test files")
        files, rule = [split_files[s] for s in SPLITS], ""
        where = split_files

        def blocks() -> Iterator[tuple[str, str]]:
            return split_file_blocks(split_files)
    else:  # a raw-text source, split by the fractions
        files, rule = source_files(folder), f":raw:{valid_fraction}:{test_fraction}:{text_field}"
        where = dict.fromkeys(SPLITS, folder)

        def blocks() -> Iterator[tuple[str, str]]:
            return raw_split_blocks(folder, files, valid_fraction, test_fraction, text_field)
    # A trained model is found by its settings (it is stored in the entry), a given one by its
    # content; a checkpoint's trained model first by the settings it was trained with.
    keys = [] if tok is not None and (fixed is None or kind not in TRAINED) else [f"{kind}:{vocab_size}"]
    keys += [tok.cache_key()] if tok is not None else []
    entry, cache_path = None, None
    for tok_key in keys:
        cache_path = cache_root() / "tokens" / _cache_key(files, tok_key, max_vocab, min_freq, rule) \
            if use_cache else None
        entry = read_entry(cache_path) if cache_path is not None else None
        if entry is not None and fixed is not None and from_meta(entry.tokenizer, level, str(cache_path)) != fixed:
            entry = None  # trained with the same settings on other text: not this model's ids
        if entry is not None:
            break
    if entry is None:
        if tok is None:
            tok = train(kind, vocab_size, _train_lines(blocks), str(where["train"]))
        target = cache_path or Path(tempfile.mkdtemp(prefix="awdlstm-corpus-")) / "entry"
        if target.exists():  # entries appear whole (a rename): one that does not read is damaged or old
            shutil.rmtree(target, ignore_errors=True)
        try:
            write_entry(target, blocks(), tok, where, sum(f.stat().st_size for f in files), max_vocab, min_freq,
                        progress, dict(zip(SPLITS, files)) if split_files else {"source": folder})
            entry = read_entry(target, memory_map=cache_path is not None)
        finally:
            if cache_path is None:
                shutil.rmtree(target.parent, ignore_errors=True)
        if entry is None:
            raise AwdlstmError(f"{target}: the token cache entry just written cannot be read back")
    if tok is None:
        tok = from_meta(entry.tokenizer, level, str(cache_path))
    return Corpus(name=name, level=level, vocab=entry.vocab, stats=entry.stats, folder=folder,
                  cache_path=cache_path, tokenizer=tok, **entry.arrays)


def _train_lines(blocks: Callable[[], Iterator[tuple[str, str]]]) -> Iterator[str]:
    """The training split's lines, for training a subword model."""
    for split, block in blocks():
        if split != "train":
            return
        yield from block.split("\n")[:-1]
