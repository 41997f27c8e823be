"""Text as it comes: besides a folder of train/valid/test files, a corpus can be

- a single text file, or a folder of ``.txt`` files without split names (read in name
  order, one stream): its lines are split into train, valid and test by
  ``valid_fraction`` and ``test_fraction``, contiguously (the last lines are the test
  split, the ones before them valid), so the split is deterministic and keeps documents whole;
- a JSON-lines file (``.jsonl``), or a folder of them: one JSON object per line whose
  ``text_field`` string is a document, its own lines the corpus's lines; split the same way.

Files are UTF-8, with or without a byte-order mark, with ``\\n`` or ``\\r\\n`` line ends
(data/lines.py); a binary or non-UTF-8 file, a JSON line that is not an object with the
text field, or a split left empty is a one-line error naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import AwdlstmError
from .lines import read_text, split_lines
from .sources import SPLITS

SUFFIXES = (".txt", ".jsonl")


def source_files(path: Path) -> list[Path]:
    """The files of a raw-text source: ``path`` itself, or a folder's .txt / .jsonl files."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise AwdlstmError(f"{path}: no train/valid/test files and no .txt or .jsonl files to split")
    return files


def document_lines(path: Path, text_field: str) -> list[str]:
    """The lines of one file: its own lines, or, for JSON lines, those of each document."""
    text = read_text(path, "text file")
    if path.suffix != ".jsonl":
        return [line.rstrip("\r") for line in split_lines(text)]
    lines = []
    for i, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            raise AwdlstmError(f"{path}:{i}: not a JSON object (JSON lines: one object per line)") from None
        if not isinstance(doc, dict) or not isinstance(doc.get(text_field), str):
            raise AwdlstmError(f"{path}:{i}: no string field {text_field!r} (data.text_field names the field "
                               f"that holds the text)")
        lines.extend(line.rstrip("\r") for line in doc[text_field].split("\n"))
    return lines


def split_by_fraction(lines: list[str], valid_fraction: float, test_fraction: float,
                      where: Path) -> dict[str, list[str]]:
    """Contiguous train / valid / test of ``lines``: valid and test are the last
    round(fraction x lines) lines before the end, test last. Every split needs a line."""
    n = len(lines)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    n_train = n - n_valid - n_test
    if min(n_train, n_valid, n_test) < 1:
        raise AwdlstmError(f"{where}: {n} lines cannot make train, valid and test splits with "
                           f"data.valid_fraction={valid_fraction} and data.test_fraction={test_fraction}; "
                           f"every split needs at least one line (more text, or larger fractions)")
    parts = (lines[:n_train], lines[n_train:n_train + n_valid], lines[n_train + n_valid:])
    return dict(zip(SPLITS, parts))


def raw_splits(path: Path, valid_fraction: float, test_fraction: float,
               text_field: str) -> tuple[dict[str, list[str]], list[Path]]:
    """(the lines of each split, the files read) of a raw-text source."""
    files = source_files(path)
    lines = [line for f in files for line in document_lines(f, text_field)]
    return split_by_fraction(lines, valid_fraction, test_fraction, path), files
