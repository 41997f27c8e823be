"""Learned word embeddings: nearest neighbours, analogies, a 2-D projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.vocab import Vocabulary
from ..errors import AwdlstmError


def _index(vocab: Vocabulary, word: str) -> int:
    if word not in vocab:
        raise AwdlstmError(f"word {word!r} is not in the model's vocabulary ({len(vocab):,} words)")
    return vocab.stoi[word]


def nearest(emb: torch.Tensor, vocab: Vocabulary, query: torch.Tensor, k: int, exclude=()) -> list[tuple[str, float]]:
    """The k words whose embeddings have the highest cosine similarity to ``query`` (E,)."""
    sims = F.normalize(emb, dim=1) @ F.normalize(query, dim=0)
    for i in exclude:
        sims[i] = float("-inf")
    top = torch.topk(sims, min(k, len(vocab) - len(exclude)))
    return [(vocab.itos[i], s) for i, s in zip(top.indices.tolist(), top.values.tolist())]


def neighbours(emb, vocab, word: str, k: int = 10) -> list[tuple[str, float]]:
    i = _index(vocab, word)
    return nearest(emb, vocab, emb[i], k, exclude=(i,))


def analogy(emb, vocab, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
    """a : b :: c : ?  answered by the words nearest to b - a + c (a, b, c excluded)."""
    ia, ib, ic = (_index(vocab, w) for w in (a, b, c))
    unit = F.normalize(emb, dim=1)
    return nearest(emb, vocab, unit[ib] - unit[ia] + unit[ic], k, exclude=(ia, ib, ic))


def projection(emb: torch.Tensor, n: int) -> torch.Tensor:
    """2-D PCA of the first n rows (the n most frequent words: the vocabulary is ordered by
    training frequency) -> (n, 2)."""
    x = emb[:n]
    u, s, _ = torch.pca_lowrank(x, q=2, center=True)
    return u[:, :2] * s[:2]


def plot_projection(points: torch.Tensor, words: list[str], path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.5)
    for (x, y), w in zip(points.tolist(), words):
        ax.annotate(w, (x, y), fontsize=7, alpha=0.8)
    ax.set_title(title)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
