"""Adaptive softmax (Grave et al. 2017) over a frequency-sorted vocabulary, with its
output matrix optionally tied to the embedding.

The vocabulary is cut at ``cutoffs`` c_1 < … < c_n < V into a head (ids below c_1) and n
tail clusters [c_i, c_{i+1}). The head is a softmax over the c_1 frequent words plus one
logit per cluster; a word w in cluster i gets

    log p(w) = log p_head(cluster i) + log p_cluster_i(w)

so the probabilities over the whole vocabulary sum to 1. Training only evaluates a
cluster's softmax for the tokens whose target lies in it: with PTB's Zipfian counts most
targets are in the head, and the output layer costs a fraction of a full softmax.

Every word keeps one full-size row of the (V, E) output matrix (no tail projections), so
the matrix can be the embedding's own Parameter, as in the tied full softmax; the
clusters add only their (n, E) head rows and biases.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AwdlstmError
from .head import LogProbHead


class Factors(NamedTuple):
    """log p(target) and the pieces it is made of, over N = T·B flattened positions:
    ``head`` (N, c_1 + n) the head's log-probabilities (shortlist words, then clusters);
    ``clusters`` per cluster i, the rows whose target lies in it (n_i,) and their
    log-probabilities within the cluster (n_i, c_{i+1} − c_i); ``target_logp`` (T, B)."""

    head: torch.Tensor
    clusters: list[tuple[torch.Tensor, torch.Tensor]]
    target_logp: torch.Tensor

    def first(self, n: int) -> Factors:
        """The pieces of the first n positions (``target_logp`` flattened to (n,)); a
        cluster's rows ascend, so its rows below n are a prefix of them."""
        clusters = []
        for rows, within in self.clusters:
            m = int((rows < n).sum())
            clusters.append((rows[:m], within[:m]))
        return Factors(self.head[:n], clusters, self.target_logp.reshape(-1)[:n])


def factor_log_probs(lp: torch.Tensor, targets: torch.Tensor, cutoffs) -> Factors:
    """Any distribution cut as this head is: lp (N, V) log-probabilities, targets (N,),
    cutoffs c_1 < … < c_n -> its ``Factors`` (the head: the shortlist words' log-probabilities,
    then each cluster's log of its mass; within cluster i, log p(w) − log P_i on the rows
    whose target lies in it). The pieces ``AdaptiveSoftmax.factor`` computes for itself."""
    bounds = (*[int(c) for c in cutoffs], lp.size(1))
    mass = torch.stack([lp[:, a:b].logsumexp(1) for a, b in zip(bounds, bounds[1:])], 1)  # (N, n) log P_i
    cluster = torch.bucketize(targets, torch.tensor(bounds[:-1], device=targets.device), right=True) - 1
    clusters = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        rows = (cluster == i).nonzero().squeeze(1)
        clusters.append((rows, lp[rows, a:b] - mass[rows, i:i + 1]))
    return Factors(torch.cat([lp[:, :bounds[0]], mass], 1), clusters, lp.gather(1, targets.unsqueeze(1)).squeeze(1))


class AdaptiveSoftmax(LogProbHead, nn.Module):
    KNOBS = ("adaptive_cutoffs",)

    @classmethod
    def check(cls, cfg) -> None:
        c = cfg.adaptive_cutoffs
        if not c:
            raise AwdlstmError("model.head='adaptive' needs model.adaptive_cutoffs, e.g. [2000, 6000]")
        if any(b <= a for a, b in zip(c, c[1:])):
            raise AwdlstmError(f"model.adaptive_cutoffs={c} must be strictly ascending")

    @classmethod
    def build(cls, in_size: int, vocab_size: int, cfg, tied: nn.Parameter | None) -> AdaptiveSoftmax:
        if cfg.adaptive_cutoffs[-1] >= vocab_size:
            raise AwdlstmError(f"model.adaptive_cutoffs={cfg.adaptive_cutoffs} must end below the vocabulary "
                               f"size {vocab_size}")
        return cls(in_size, vocab_size, cfg.adaptive_cutoffs, tied)

    def __init__(self, in_features: int, vocab_size: int, cutoffs: list[int], weight: nn.Parameter | None = None):
        super().__init__()
        self.cutoffs = [int(c) for c in cutoffs] + [vocab_size]
        self.shortlist = self.cutoffs[0]
        n = len(cutoffs)
        # (V, E): a row per word, tied or its own.
        self.weight = weight if weight is not None else nn.Parameter(torch.empty(vocab_size, in_features))
        if weight is None:
            nn.init.uniform_(self.weight, -0.1, 0.1)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.cluster_weight = nn.Parameter(torch.zeros(n, in_features))  # (n, E) the clusters' head rows
        self.cluster_bias = nn.Parameter(torch.zeros(n))

    def _head_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, E) -> (N, c_1 + n): log-probabilities of the shortlist words, then of each cluster."""
        w = torch.cat([self.weight[: self.shortlist], self.cluster_weight])
        b = torch.cat([self.bias[: self.shortlist], self.cluster_bias])
        return F.log_softmax(F.linear(x, w, b).float(), dim=-1)

    def _cluster_log_probs(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """x (N, E) -> (N, c_{i+1} - c_i): log-probabilities within cluster i."""
        lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
        return F.log_softmax(F.linear(x, self.weight[lo:hi], self.bias[lo:hi]).float(), dim=-1)

    def factor(self, x: torch.Tensor, targets: torch.Tensor) -> Factors:
        """x (..., E), targets (...) -> the pieces of log p(target) (``Factors``), computing
        each cluster only for the tokens whose target lies in it."""
        x, y = x.reshape(-1, x.size(-1)), targets.reshape(-1)
        head = self._head_log_probs(x)  # (N, c_1 + n)
        in_head = y < self.shortlist
        # Words of the shortlist read their own column; the others start from their cluster's.
        cluster = torch.bucketize(y, torch.tensor(self.cutoffs[:-1], device=y.device), right=True) - 1
        col = torch.where(in_head, y, self.shortlist + cluster.clamp(min=0))
        out = head.gather(1, col.unsqueeze(1)).squeeze(1)  # (N,)
        clusters = []
        for i in range(len(self.cutoffs) - 1):
            rows = (cluster == i).nonzero().squeeze(1)
            within = self._cluster_log_probs(x.index_select(0, rows), i)  # (n_i, c_{i+1} - c_i)
            clusters.append((rows, within))
            if rows.numel():
                out = out.index_add(0, rows, within.gather(1, (y[rows] - self.cutoffs[i]).unsqueeze(1)).squeeze(1))
        return Factors(head, clusters, out.view(targets.shape))

    def target_log_prob(self, x: torch.Tensor, targets: torch.Tensor, columns=None) -> torch.Tensor:
        """x (..., E), targets (...) -> log p(target) (...) in fp32 (``factor``'s last piece).
        ``columns`` is unused: the head draws no masks."""
        return self.factor(x, targets).target_logp

    def log_probs(self, x: torch.Tensor, columns=None) -> torch.Tensor:
        """x (..., E) -> (..., V) log-probabilities over the whole vocabulary, fp32 (``columns``: unused)."""
        flat = x.reshape(-1, x.size(-1))
        head = self._head_log_probs(flat)
        parts = [head[:, : self.shortlist]]
        for i in range(len(self.cutoffs) - 1):
            parts.append(head[:, self.shortlist + i: self.shortlist + i + 1] + self._cluster_log_probs(flat, i))
        return torch.cat(parts, dim=1).view(*x.shape[:-1], -1)
