"""``chars``: every character of a line is a token, then ``<eos>`` (text8, enwik8)."""

from __future__ import annotations

import numpy as np

from ..vocab import EOS
from .base import BlockEncoder, Tokenizer

NEWLINE = 10  # the code point that ends each line of a block: read as <eos>


class CharEncoder(BlockEncoder):
    """Provisional ids by code point through a table over all of Unicode (4.4 MB), so a
    block is encoded by NumPy without a Python loop over its characters."""

    def __init__(self):
        self.table = np.full(0x110000, -1, dtype=np.int64)
        self.points: list[int] = []

    def ids(self, block: str) -> np.ndarray:
        points = np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32)  # (chars,)
        unique, first = np.unique(points, return_index=True)
        unseen = self.table[unique] < 0
        # New code points get ids in order of their first occurrence in the block.
        for p in unique[unseen][np.argsort(first[unseen])]:
            self.table[p] = len(self.points)
            self.points.append(int(p))
        return self.table[points].astype(np.uint32)

    def tokens(self) -> list[str]:
        return [EOS if p == NEWLINE else chr(p) for p in self.points]


class CharsTokenizer(Tokenizer):
    kind = "chars"

    def __init__(self, level: str = "char"):
        self.level = level

    def tokens(self, text: str) -> list[str]:
        return list(text)

    def token_text(self, token: str) -> str:
        return "\n" if token == EOS else token

    def encoder(self) -> BlockEncoder:
        return CharEncoder()
