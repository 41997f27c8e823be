"""A corpus's text as a stream of blocks, read in bounded memory.

A *block* is a string of whole lines, each ending in ``\\n``, about ``BLOCK_BYTES`` long:
the unit that tokenizers and the token cache work on, so no split is ever held whole.
The line rules are data/lines.py's (which also reads the bytes: UTF-8 with or without a
byte-order mark, a binary or invalid byte a one-line error naming the file and offset),
applied block by block:

- ``\\r\\n`` reads as ``\\n`` (whitespace tokenizers drop the ``\\r`` anyway; the chars
  tokenizer must not see it);
- a final fragment after the last newline that is empty or whitespace-only is not a line
  (the PTB-char files end in ``\\n`` plus one space);
- a JSON-lines file's documents (``text_field`` of each object) contribute their own lines,
  every one of them (a document ending in ``\\n`` ends with an empty line).

Besides a folder of train/valid/test files, a corpus can be raw text: a single ``.txt`` or
``.jsonl`` file, or a folder of them without split names (read in name order, one stream).
Its lines are split into train, valid and test by ``valid_fraction`` and ``test_fraction``,
contiguously (the last lines are the test split, the ones before them valid), so the split
is deterministic and keeps documents whole: a first pass counts the lines, the second routes
them, train first, then valid, then test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import AwdlstmError
from .lines import decoded_pieces
from .sources import SPLITS

SUFFIXES = (".txt", ".jsonl")  # the files of a raw-text folder
BLOCK_BYTES = 1 << 22  # 4 MiB of text per block: ~1M tokens as Python strings at most (~60 MB)


def source_files(path: Path) -> list[Path]:
    """The files of a raw-text source: ``path`` itself, or a folder's .txt / .jsonl files."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise AwdlstmError(f"{path}: no train/valid/test files and no .txt or .jsonl files to split")
    return files


def text_file_blocks(path: Path, cut_long_lines: bool = True) -> Iterator[str]:
    """The lines of a text file, in blocks (module docstring). A line longer than two blocks
    (text8 is one line of 10^8 characters) is cut after a space into blocks that do not end
    in a newline, unless ``cut_long_lines`` is off (a JSON line is one document): every
    tokenizer reads such a cut as the whitespace it is."""
    pending: list[str] = []  # the start of a line that no block has ended yet
    size = 0
    for piece in decoded_pieces(path, "text file", BLOCK_BYTES):
        cut = piece.rfind("\n") + 1
        if not cut:
            pending.append(piece)
            size += len(piece)
            if cut_long_lines and size >= 2 * BLOCK_BYTES:
                text = "".join(pending)
                cut = text.rfind(" ") + 1 or len(text)
                yield text[:cut].replace("\r\n", "\n")
                pending, size = [text[cut:]], len(text) - cut
            continue
        yield ("".join(pending) + piece[:cut]).replace("\r\n", "\n")
        pending, size = [piece[cut:]], len(piece) - cut
    rest = "".join(pending)
    if rest.strip():
        yield rest.replace("\r\n", "\n").removesuffix("\r") + "\n"


def jsonl_blocks(path: Path, text_field: str) -> Iterator[str]:
    """The lines of each document of a JSON-lines file, in blocks."""
    out, size, number = [], 0, 0
    for block in text_file_blocks(path, cut_long_lines=False):
        for raw in block.split("\n")[:-1]:
            number += 1
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
            except ValueError:
                raise AwdlstmError(f"{path}:{number}: not a JSON object (JSON lines: one object per line)") from None
            if not isinstance(doc, dict) or not isinstance(doc.get(text_field), str):
                raise AwdlstmError(f"{path}:{number}: no string field {text_field!r} (data.text_field names the "
                                   f"field that holds the text)")
            text = doc[text_field].replace("\r\n", "\n") + "\n"
            out.append(text)
            size += len(text)
            if size >= BLOCK_BYTES:
                yield "".join(out)
                out, size = [], 0
    if out:
        yield "".join(out)


def file_blocks(path: Path, text_field: str = "text") -> Iterator[str]:
    return jsonl_blocks(path, text_field) if path.suffix == ".jsonl" else text_file_blocks(path)


def count_lines(files: list[Path], text_field: str) -> int:
    return sum(block.count("\n") for f in files for block in file_blocks(f, text_field))


def split_line_counts(n: int, valid_fraction: float, test_fraction: float, where: Path) -> tuple[int, int, int]:
    """(train, valid, test) line counts of a raw source of ``n`` lines: valid and test are
    round(fraction x n) lines, test last. Every split needs a line."""
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    n_train = n - n_valid - n_test
    if min(n_train, n_valid, n_test) < 1:
        raise AwdlstmError(f"{where}: {n} lines cannot make train, valid and test splits with "
                           f"data.valid_fraction={valid_fraction} and data.test_fraction={test_fraction}; "
                           f"every split needs at least one line (more text, or larger fractions)")
    return n_train, n_valid, n_test


def raw_split_blocks(source: Path, files: list[Path], valid_fraction: float, test_fraction: float,
                     text_field: str) -> Iterator[tuple[str, str]]:
    """(split, block) of a raw-text source, train first: its lines cut contiguously by counts."""
    counts = split_line_counts(count_lines(files, text_field), valid_fraction, test_fraction, source)
    split, left = 0, counts[0]
    for f in files:
        for block in file_blocks(f, text_field):
            while block:
                if left == 0:  # the split is full: the rest goes to the next
                    split += 1
                    left = counts[split]
                n = block.count("\n")
                if n < left or (n == left and block.endswith("\n")):
                    yield SPLITS[split], block
                    left -= n
                    break
                cut = _after_line(block, left)
                yield SPLITS[split], block[:cut]
                block, left = block[cut:], 0


def _after_line(block: str, k: int) -> int:
    """The offset just after the ``k``-th newline of ``block`` (0 for k = 0)."""
    pos = 0
    for _ in range(k):
        pos = block.index("\n", pos) + 1
    return pos


def split_file_blocks(files: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(split, block) of a corpus with its own train/valid/test files, train first."""
    for split in SPLITS:
        for block in text_file_blocks(files[split]):
            yield split, block
