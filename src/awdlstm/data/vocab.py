"""Vocabulary: token <-> id, built from the training split only.

Order (deterministic, documented): tokens sorted by descending training-split frequency,
ties broken by first occurrence in the training split. Frequent words therefore have
small ids, which the embedding plots and any adaptive softmax rely on.

An open vocabulary (``build_open``): a training token seen fewer than ``min_freq`` times,
or past the ``max_size`` most frequent, and every valid/test token the vocabulary lacks,
is read as ``<unk>``; ``<unk>`` is added when the corpus has none and some token needs it,
ordered among the others by the count of the tokens it stands for. ``<eos>`` always stays.
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

    @classmethod
    def build_open(cls, train: Sequence[str], others: Iterable[Sequence[str]] = (), max_size: int = 0,
                   min_freq: int = 1) -> Vocabulary:
        """The vocabulary of ``train`` cut by ``min_freq`` and ``max_size`` (entries in all,
        ``<eos>`` and ``<unk>`` included; 0: no cap), with ``<unk>`` where needed (above)."""
        counts = Counter(train)
        unseen = any(t not in counts for split in others for t in split)
        return cls.from_counts(counts, unseen, max_size, min_freq)

    @classmethod
    def from_counts(cls, counts: dict[str, int], unseen: bool = False, max_size: int = 0,
                    min_freq: int = 1) -> Vocabulary:
        """``build_open`` from the training counts alone: ``counts`` in first-occurrence order
        (as a Counter keeps them), ``unseen`` whether a valid/test token is missing from them."""
        first = {t: i for i, t in enumerate(counts)}
        order = sorted(counts, key=lambda t: -counts[t])
        always = [t for t in (EOS, UNK) if t in counts]
        kept = [t for t in order if t in always or counts[t] >= min_freq]
        has_unk = UNK in counts
        needs_unk = not has_unk and (len(kept) < len(counts) or bool(max_size and len(kept) > max_size) or unseen)
        if max_size and len(kept) + needs_unk > max_size:
            room = max_size - len(always) - needs_unk  # the place of an added <unk> counts too
            if room < 0:
                raise ValueError(f"max_size {max_size} leaves no room beside {always + [UNK]}")
            keep = set(always) | set([t for t in kept if t not in always][:room])
            kept = [t for t in kept if t in keep]
        keep = set(kept)
        dropped = [t for t in counts if t not in keep]
        # Descending count, ties by first occurrence; <unk> (the corpus's, or the one added)
        # counts the tokens it stands for, and an added one that stands for no training token
        # (only valid/test need it) comes last.
        rank = {t: (-counts[t], first[t]) for t in kept}
        if has_unk or needs_unk:
            rank[UNK] = (-(counts.get(UNK, 0) + sum(counts[t] for t in dropped)),
                         first.get(UNK, min((first[t] for t in dropped), default=len(first))))
        return cls(sorted(rank, key=rank.get))

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
