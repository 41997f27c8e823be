"""Shared pieces of the benchmark scripts: a plain nn.LSTM language model to compare
against, and an interleaved timer (figures are noisy, so variants alternate step by step
in one process and the median of per-pair ratios is reported)."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

SHAPES = {
    # name: (emb, hidden, layers)
    "awd-ptb": (400, 1150, 3),
    "small": (200, 200, 2),
}


RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class PlainLM(nn.Module):
    """Embedding -> stacked nn.LSTM (or nn.GRU, nn.RNN: ``kind``; sizes as AWD-LSTM, tied)
    -> decoder; no regularizer."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, kind: str = "lstm"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        sizes = [emb] + [hidden] * (layers - 1) + [emb]
        self.rnns = nn.ModuleList(RNNS[kind](sizes[i], sizes[i + 1]) for i in range(layers))
        self.decoder = nn.Linear(emb, vocab)
        self.decoder.weight = self.embedding.weight

    def forward(self, x):
        h = self.embedding(x)
        for rnn in self.rnns:
            h, _ = rnn(h)
        return self.decoder(h)


def train_step_fn(model, forward, vocab: int, batch: int, bptt: int, lr: float = 1.0):
    """A closure running one forward + cross-entropy + backward + clip + SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x = torch.randint(0, vocab, (bptt, batch))
    y = torch.randint(0, vocab, (bptt, batch))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = forward(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    return step


def interleaved(steps: dict, warmup: int = 2, reps: int = 7) -> dict[str, list[float]]:
    """Seconds per call of each function, alternating between them."""
    for _ in range(warmup):
        for f in steps.values():
            f()
    times = {k: [] for k in steps}
    for _ in range(reps):
        for k, f in steps.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return times


def ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over repetitions of (base time / name time): throughput relative to base."""
    return statistics.median(b / t for b, t in zip(times[base], times[name]))
