"""A trained model for use from Python: a step function, top-k next words, and batched
per-token scores.

    lm = awdlstm.load("runs/cpu-ptb-…")           # a run, a checkpoint or a model folder
    log_probs, state = lm.step(lm.initial_state(), "<eos>")   # a text starts after <eos>
    log_probs, state = lm.step(state, "the")      # log_probs: (V,) natural-log probabilities
    lm.top_k("the company said", 5)               # [(word, probability), …]
    lm.score(["the company said it"])             # per-token log-probabilities, <eos> last

Every text is read as the model was trained: after ``<eos>`` (a sentence start), split like
its corpus, words outside the vocabulary read as ``<unk>`` (an error when it has none).
The batched calls pad sequences at their end: the model is causal, so a position never
sees the padding after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.metrics import bits
from ..data.tokenizers import Tokenizer
from ..data.tokenizers.subword import UNKNOWN
from ..data.vocab import EOS, UNK, Vocabulary
from ..errors import AwdlstmError
from ..progress import progress_bar
from ..runtime.evaluate import lstm_kernel, model_device
from .text import encode

State = list[tuple[torch.Tensor, ...]]  # one (h, c) (or (h, c, o)) per layer, each (1, 1, H_l)
SCORE_BATCH = 64  # texts read at once by ``score`` (and `awdlstm score`, `rescore`)


@dataclass
class TokenScores:
    """One text scored: ``tokens`` as written (then ``<eos>``), ``scored_as`` the vocabulary
    entry each was read as (the token or ``<unk>``), ``logp`` natural-log probabilities."""

    tokens: list[str]
    scored_as: list[str]
    logp: list[float]

    @property
    def total(self) -> float:
        return sum(self.logp)

    @property
    def unknown(self) -> list[str]:
        """The tokens as written that were scored as ``<unk>`` (or a subword model's unknown piece)."""
        return [t for t, a in zip(self.tokens, self.scored_as) if a != t and a in (UNK, UNKNOWN)]

    @property
    def surprisal_bits(self) -> list[float]:
        return [bits(-lp) for lp in self.logp]


class Predictor:
    def __init__(self, model, vocab: Vocabulary, tokenizer: Tokenizer):
        self.model = model.eval()
        self.vocab = vocab
        self.tokenizer, self.level = tokenizer, tokenizer.level
        self.device = model_device(model)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> Predictor:
        from ..checkpoints.run_folder import model_from_checkpoint
        from ..runtime.machine import resolve_device
        model, vocab, _, ckpt = model_from_checkpoint(Path(path), resolve_device(device))
        return cls(model, vocab, ckpt.tokenizer())

    # -- text <-> ids ---------------------------------------------------------------
    def spelled(self, text: str, where: str = "text") -> tuple[list[str], list[int]]:
        """(the text's tokens as written, their ids): the tokenizer's entries, by the
        vocabulary's rule (a word it lacks reads as ``<unk>``)."""
        written, entries = self.tokenizer.spell(text)
        return written, encode(entries, self.vocab, where)

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer.spell(text)[0]

    def ids(self, text: str, where: str = "text") -> list[int]:
        return self.spelled(text, where)[1]

    def token_id(self, token: str | int) -> int:
        if isinstance(token, int):
            if not 0 <= token < len(self.vocab):
                raise AwdlstmError(f"token id {token}: the vocabulary has ids 0 to {len(self.vocab) - 1}")
            return token
        return encode([token], self.vocab, "token")[0]

    # -- one step at a time -----------------------------------------------------------
    def initial_state(self) -> State:
        """The zero state. Step ``<eos>`` first to start a text as training did."""
        return self.model.init_hidden(1)

    @torch.no_grad()
    def step(self, state: State, token: str | int) -> tuple[torch.Tensor, State]:
        """Feed one token: (log-probabilities of the next token (V,) on the CPU, new state)."""
        log_probs, states = self.advance([state], [self.token_id(token)])
        return log_probs[0], states[0]

    @torch.no_grad()
    def advance(self, states: list[State], tokens: list[int]) -> tuple[torch.Tensor, list[State]]:
        """One step of several independent texts at once: (log_probs (N, V), new states)."""
        hidden = [tuple(torch.cat([s[i][k] for s in states], 1) for k in range(len(states[0][i])))
                  for i in range(len(self.model.layers))]
        x = torch.tensor([tokens], device=self.device)  # (1, N)
        with lstm_kernel(len(tokens)):
            out = self.model(x, hidden)
        log_probs = F.log_softmax(out.logits[0].float(), dim=-1).cpu()
        return log_probs, [_column(out.hidden, j) for j in range(len(tokens))]

    @torch.no_grad()
    def prime(self, contexts: list[list[int]]) -> tuple[torch.Tensor, list[State]]:
        """Read each context after ``<eos>``: (next-token log_probs (N, V), the states after
        each context). Contexts of equal length run together (a state must not see padding)."""
        log_probs = torch.empty(len(contexts), len(self.vocab))
        states: list[State | None] = [None] * len(contexts)
        by_len: dict[int, list[int]] = {}
        for j, ctx in enumerate(contexts):
            by_len.setdefault(len(ctx), []).append(j)
        for group in by_len.values():
            x = torch.tensor([[self.vocab.eos_id] + contexts[j] for j in group], device=self.device).t()
            lp, hidden = self._read(x, [x.size(0) - 1] * len(group))
            log_probs[group] = lp
            for k, j in enumerate(group):
                states[j] = _column(hidden, k)
        return log_probs, states

    # -- batched reading ------------------------------------------------------------
    @torch.no_grad()
    def next_log_probs(self, contexts: list[list[int]]) -> torch.Tensor:
        """Next-token log-probabilities (N, V) after each context, padded into one batch."""
        x = self._padded([[self.vocab.eos_id] + c for c in contexts])
        return self._read(x, [len(c) for c in contexts])[0]

    def _read(self, x: torch.Tensor, last: list[int]) -> tuple[torch.Tensor, State]:
        """Read x (T, N) from the zero state: (the next-token log-probabilities (N, V) at
        position last[j] of each column j, on the CPU; the state after x). The output layer
        runs at those N positions only, not at all T x N."""
        with lstm_kernel(x.size(1)):
            raw, hidden = self.model.encode(x, self.model.init_hidden(x.size(1)))  # (T, N, E); no dropout at eval
            at = raw[torch.tensor(last, device=self.device), torch.arange(x.size(1), device=self.device)]  # (N, E)
            return self.model.decoder.log_probs(at.unsqueeze(0))[0].float().cpu(), hidden

    @torch.no_grad()
    def token_log_probs(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """log p of every token of each sequence and of the ``<eos>`` after it, read after
        ``<eos>``: a list of (len + 1,) tensors."""
        eos = self.vocab.eos_id
        full = [[eos] + s + [eos] for s in seqs]
        x = self._padded([f[:-1] for f in full])
        y = self._padded([f[1:] for f in full])
        with lstm_kernel(len(seqs)):
            out = self.model(x, self.model.init_hidden(len(seqs)), targets=y)
        logp = out.target_logp.cpu()  # (T, N)
        return [logp[: len(s) + 1, j] for j, s in enumerate(seqs)]

    def _padded(self, seqs: list[list[int]]) -> torch.Tensor:
        """(T_max, N) with each sequence in a column, padded at its end with <eos>."""
        T = max(len(s) for s in seqs)
        return torch.tensor([s + [self.vocab.eos_id] * (T - len(s)) for s in seqs], device=self.device).t()

    # -- conveniences ------------------------------------------------------------------
    def top_k(self, context: str, k: int = 10) -> list[tuple[str, float]]:
        """The k most likely next tokens after ``context``, with their probabilities."""
        if k < 1:
            raise AwdlstmError(f"k={k}: must be a positive integer")
        return self.top(self.next_log_probs([self.ids(context)])[0], k)

    def top(self, log_probs: torch.Tensor, k: int) -> list[tuple[str, float]]:
        """The k most likely tokens of a (V,) log-probability vector, with their probabilities."""
        top = torch.topk(log_probs, min(k, log_probs.numel()))
        return [(self.vocab.itos[i], float(p)) for p, i in zip(top.values.exp(), top.indices)]

    def token_scores(self, tokens: list[str], ids: list[int], logp: torch.Tensor) -> TokenScores:
        """A text's tokens as written, their ids and ``token_log_probs``' (len + 1,) row."""
        return TokenScores(tokens + [EOS], self.vocab.decode(ids) + [EOS], logp.tolist())

    def score(self, texts: list[str], batch_size: int = SCORE_BATCH, where: str = "text",
              progress: bool = False) -> list[TokenScores]:
        """Per-token log-probabilities of each text (then ``<eos>``). Texts are sorted by
        length and read ``batch_size`` at a time, so little of a batch is padding.
        ``progress``: a bar, or log lines off a terminal (progress.py)."""
        tokens, ids = map(list, zip(*(self.spelled(t, f"{where} {i + 1}") for i, t in enumerate(texts))))
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        logps: list[torch.Tensor | None] = [None] * len(texts)
        starts = range(0, len(order), batch_size)
        for start in progress_bar(starts, desc="score", unit="batch", enabled=progress):
            chunk = order[start:start + batch_size]
            for j, lp in zip(chunk, self.token_log_probs([ids[j] for j in chunk])):
                logps[j] = lp
        return [self.token_scores(tok, i, lp) for tok, i, lp in zip(tokens, ids, logps)]


def _column(hidden: State, j: int) -> State:
    """Column j of a batched state, as a batch-1 state (views, no copies)."""
    return [tuple(t[:, j:j + 1] for t in state) for state in hidden]


def load(path: str | Path, device: str | None = None) -> Predictor:
    """A run folder, checkpoint file or model folder as a ``Predictor``."""
    return Predictor.load(path, device)
