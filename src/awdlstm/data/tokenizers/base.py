"""What a tokenizer is: how a line of text becomes vocabulary entries, how a generated token
is printed, and how a block of corpus text becomes ids (data/stream.py's blocks).

Two families. A *built* tokenizer (``split``, ``chars``) fixes only the rule; the
vocabulary comes from the training split's counts (data/vocab.py), so its block encoder
hands out *provisional* ids, one per distinct token in order of first occurrence, that the
token cache maps to the final ids once the counts are known. A *model* tokenizer (``bpe``,
``unigram``, or a given SentencePiece / Hugging Face file) fixes its own vocabulary, so its
encoder's ids are final.

Counting rules, the same for every tokenizer, so that models of the same text compare
(data/metrics.py): a text's *words* are its whitespace-separated words plus one end of line
per line (what a word-level model predicts), its *characters* those of each line plus one
newline per line (what a character-level model predicts).
"""

from __future__ import annotations

import numpy as np


def count_units(line: str) -> tuple[int, int]:
    """(words, characters) of one line by the rules above: its end of line counts in each."""
    return len(line.split()) + 1, len(line) + 1


class BlockEncoder:
    """Ids of blocks of whole lines, ``<eos>`` after each line: (tokens,) uint32."""

    def ids(self, block: str) -> np.ndarray:
        raise NotImplementedError

    def words(self, block: str, ids: np.ndarray) -> int:
        """The block's word count (rule above)."""
        return len(block.split()) + block.count("\n")

    def tokens(self) -> list[str]:
        """Built tokenizers: the distinct tokens seen so far, in provisional-id order."""
        raise NotImplementedError


class Tokenizer:
    """The rule between text and vocabulary entries (module docstring)."""

    kind: str = ""
    level: str = "word"

    def tokens(self, text: str) -> list[str]:
        """One line of user text as vocabulary entries (no ``<eos>``)."""
        raise NotImplementedError

    def spell(self, text: str) -> tuple[list[str], list[str]]:
        """(the tokens as written, the vocabulary entries they are read as): they differ where
        a model tokenizer cannot spell a character (read as its unknown piece); a built
        vocabulary's ``<unk>`` rule is the vocabulary's own (vocab.py)."""
        tokens = self.tokens(text)
        return tokens, tokens

    def token_text(self, token: str) -> str:
        """The text a generated token adds to the output."""
        raise NotImplementedError

    def vocabulary(self) -> list[str] | None:
        """A model tokenizer's own vocabulary (``<eos>`` included), in id order; None when the
        vocabulary is built from the corpus."""
        return None

    def encoder(self) -> BlockEncoder:
        raise NotImplementedError

    def meta(self) -> dict:
        """What a checkpoint stores to rebuild this tokenizer (JSON; no side file)."""
        return {"tokenizer": self.kind}

    def cache_key(self) -> str:
        """What of the tokenizer changes the ids (part of the token cache's key)."""
        return self.kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.meta() == other.meta() and self.level == other.level

    def __repr__(self) -> str:
        return f"<{self.kind} tokenizer, {self.level} level>"

