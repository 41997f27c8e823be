"""Vocabulary: token <-> id, built from the training split only.

Order (deterministic, documented): tokens sorted by descending training-split frequency,
ties broken by first occurrence in the training split. Frequent words therefore have
small ids, which the embedding plots and any adaptive softmax rely on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

EOS = "<eos>"
UNK = "<unk>"


class Vocabulary:
    """An immutable list of tokens with a reverse index."""

    def __init__(self, tokens: Sequence[str]):
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(cls, tokens: Iterable[str]) -> Vocabulary:
        """Frequency-descending order, ties by first occurrence (Counter keeps insertion order
        and ``sorted`` is stable)."""
        counts = Counter(tokens)
        return cls(sorted(counts, key=lambda t: -counts[t]))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    @property
    def unk_id(self) -> int | None:
        return self.stoi.get(UNK)

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def lookup(self, tokens: Sequence[str]) -> list[int | None]:
        """The one rule for words outside the vocabulary: each token's id, else ``<unk>``'s
        id where the vocabulary has one, else None (the caller decides: an error, or skip)."""
        get, unk = self.stoi.get, self.unk_id
        return [get(t, unk) for t in tokens]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids as int64; unknown tokens map to ``<unk>`` (KeyError if there is none)."""
        ids = self.lookup(tokens)
        if None in ids:
            raise KeyError(tokens[ids.index(None)])
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]
