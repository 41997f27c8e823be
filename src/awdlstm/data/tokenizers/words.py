"""``split``: whitespace-separated words, ``<eos>`` after each line (PTB, WikiText). At
character level (PTB-char, whose files spell characters separated by spaces and a word
boundary as ``_``) user text is spelled the same way."""

from __future__ import annotations

import numpy as np

from ..vocab import EOS
from .base import BlockEncoder, Tokenizer


class _Types(dict):
    """token -> provisional id; a token not seen before gets the next id."""

    def __missing__(self, token: str) -> int:
        self[token] = i = len(self)
        return i


class WordEncoder(BlockEncoder):
    def __init__(self):
        self.types = _Types()

    def ids(self, block: str) -> np.ndarray:
        # "a b\nc\n" -> "a b <eos> c <eos> " -> [a, b, <eos>, c, <eos>]: split() drops every
        # whitespace run, so this is line.split() + [<eos>] for each line, in one C-level pass.
        words = block.replace("\n", f" {EOS} ").split()
        return np.fromiter(map(self.types.__getitem__, words), dtype=np.uint32, count=len(words))

    def words(self, block: str, ids: np.ndarray) -> int:
        return len(ids)  # the tokens are the words (rule in base.py)

    def tokens(self) -> list[str]:
        return list(self.types)


class SplitTokenizer(Tokenizer):
    kind = "split"

    def __init__(self, level: str = "word"):
        self.level = level

    def tokens(self, text: str) -> list[str]:
        if self.level == "char":
            return list("_".join(text.split()))
        return text.split()

    def token_text(self, token: str) -> str:
        if token == EOS:
            return "\n"
        if self.level == "char":
            return " " if token == "_" else token
        return token + " "

    def encoder(self) -> BlockEncoder:
        return WordEncoder()
