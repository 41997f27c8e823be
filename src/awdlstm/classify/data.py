"""Labelled documents: ``label<TAB>text`` lines (.tsv, .txt), ``label,text`` rows (.csv),
or a folder holding train / valid / test files of either kind.

Every problem is a one-line error naming the file and line: a line with no label column,
an empty label or document, an unknown label where the labels are fixed (evaluation).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..data.lines import read_text
from ..errors import AwdlstmError

SUFFIXES = (".tsv", ".txt", ".csv")


@dataclass
class Document:
    label: str
    text: str
    where: str  # file:line, for errors


def read_labelled(path: Path, labels: list[str] | None = None) -> list[Document]:
    """Documents of one file. With ``labels``, every label must be one of them."""
    path = Path(path)
    raw = read_text(path, "file of labelled lines")
    docs = []
    if path.suffix == ".csv":
        rows = ((i, row) for i, row in enumerate(csv.reader(io.StringIO(raw)), 1))
        sep = "a comma"
    else:
        rows = ((i, line.split("\t", 1)) for i, line in enumerate(raw.splitlines(), 1))
        sep = "a tab"
    for i, row in rows:
        where = f"{path}:{i}"
        if not row or row == [""]:
            continue  # a blank line
        if len(row) < 2:
            raise AwdlstmError(f"{where}: no label column; each line must be label, {sep}, then the text")
        label, text = row[0].strip(), " ".join(row[1:]).strip()
        if not label:
            raise AwdlstmError(f"{where}: the label is empty")
        if not text:
            raise AwdlstmError(f"{where}: the document is empty (label {label!r} and no text)")
        docs.append(Document(label, text, where))
    if not docs:
        raise AwdlstmError(f"{path}: holds no labelled lines")
    if labels is not None:
        require_labels(docs, labels)
    return docs


def require_labels(docs: list[Document], labels: list[str]) -> None:
    """Every document's label is one of ``labels`` (the classes a classifier has)."""
    for d in docs:
        if d.label not in labels:
            raise AwdlstmError(f"{d.where}: unknown label {d.label!r}; the classifier knows {', '.join(labels)}")


def find_split(folder: Path, split: str) -> Path | None:
    """``folder/<split>.tsv`` (or .txt, .csv); None when absent."""
    for suffix in SUFFIXES:
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    return None


def training_sets(data: Path) -> tuple[list[Document], list[Document] | None, list[Document] | None]:
    """(train, valid or None, test or None) from a file (train only) or a folder."""
    data = Path(data)
    if data.is_file():
        return read_labelled(data), None, None
    if not data.is_dir():
        raise AwdlstmError(f"{data}: no such file or folder of labelled lines")
    train = find_split(data, "train")
    if train is None:
        raise AwdlstmError(f"{data}: no train file (train.tsv, train.txt or train.csv)")
    parts = [find_split(data, s) for s in ("valid", "test")]
    return read_labelled(train), *(read_labelled(p) if p else None for p in parts)


def evaluation_set(data: Path, labels: list[str]) -> list[Document]:
    """A file, or a folder's test file (else its valid file), checked against ``labels``."""
    data = Path(data)
    if data.is_dir():
        found = find_split(data, "test") or find_split(data, "valid")
        if found is None:
            raise AwdlstmError(f"{data}: no test or valid file (test.tsv, valid.tsv, ...) to evaluate on")
        data = found
    return read_labelled(data, labels)
