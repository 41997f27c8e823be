"""Reading text files as lines: the one reader behind corpora, scoring, rescoring and
classification. A file that is missing, unreadable or not UTF-8 is a one-line error naming
it; a final empty line (the newline that ends the file) is not a line."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import AwdlstmError

PIECE_BYTES = 1 << 22  # bytes read and decoded at a time


def decoded_pieces(path: Path, what: str = "file", size: int = PIECE_BYTES) -> Iterator[str]:
    """The file's text in pieces of about ``size`` bytes (cut anywhere, not at lines), UTF-8
    with or without a byte-order mark (which is dropped). A NUL byte (binary), an invalid
    byte (named with its offset), a missing or unreadable file is a one-line error."""
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    try:
        with open(path, "rb") as f:
            while data := f.read(size):
                if b"\x00" in data:
                    raise AwdlstmError(f"{path}: a binary file (it holds NUL bytes), not text; give UTF-8 text")
                try:
                    yield decoder.decode(data)
                except UnicodeDecodeError as e:
                    raise AwdlstmError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                                       f"{offset + e.start}); convert the file to UTF-8") from None
                offset += len(data)
            try:
                yield decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise AwdlstmError(f"{path}: not UTF-8 text (it ends inside a character); convert the file "
                                   f"to UTF-8") from None
    except FileNotFoundError:
        raise AwdlstmError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise AwdlstmError(f"{path}: a folder, not a {what}") from None
    except OSError as e:
        raise AwdlstmError(f"{path}: cannot read ({e.strerror})") from None


def read_text(path: Path, what: str = "file") -> str:
    """The whole file's text (``decoded_pieces``' rules)."""
    return "".join(decoded_pieces(path, what))


def split_lines(text: str) -> list[str]:
    """Lines split at \\n (a \\r before it is kept: tokenizers that split on whitespace drop it)."""
    lines = text.split("\n")
    if lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_lines(path: Path, what: str = "file") -> list[str]:
    return split_lines(read_text(path, what))


def input_lines(file: str) -> tuple[list[str], str]:
    """The lines of ``file``, or of standard input when it is ``-``: (lines, name for errors)."""
    if file == "-":
        return [line.rstrip("\r") for line in split_lines(sys.stdin.read())], "<stdin>"
    return read_lines(Path(file)), file
