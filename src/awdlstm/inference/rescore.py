"""N-best rescoring: re-rank first-pass hypotheses with the language model.

Input, one hypothesis per line, three tab-separated fields (blank lines and lines starting
with ``#`` are skipped; an utterance's lines need not be consecutive):

    utterance_id <TAB> first_pass_score <TAB> hypothesis text

``first_pass_score`` is the first pass's log score of the hypothesis (higher is better,
e.g. the acoustic log-likelihood). Each hypothesis gets

    total = first_pass_score + lm_scale × log p_LM(text <eos>) + word_bonus × words

with log p_LM in nats, the text read after ``<eos>``. Output: per utterance (in order of
first appearance) its hypotheses best first, as tab-separated
``utterance_id, rank, total, first_pass_score, lm_logprob, words, hypothesis, scored_as_unk``,
the last the hypothesis's words that the model read as ``<unk>`` (space-separated; ``-``: none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import AwdlstmError

HEADER = ["utterance_id", "rank", "total", "first_pass_score", "lm_logprob", "words", "hypothesis", "scored_as_unk"]


@dataclass
class Hypothesis:
    utterance: str
    first_pass: float
    text: str
    lm_logprob: float = 0.0
    words: int = 0
    total: float = 0.0
    unknown: tuple[str, ...] = ()


def parse_nbest(lines: list[str], where: str) -> list[Hypothesis]:
    hyps = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 3:
            raise AwdlstmError(f"{where} line {n}: expected 3 tab-separated fields (utterance_id, "
                               f"first_pass_score, hypothesis), found {len(parts)}")
        utt, score, text = parts
        try:
            value = float(score)
        except ValueError:
            raise AwdlstmError(f"{where} line {n}: first-pass score {score!r} is not a number") from None
        if not math.isfinite(value):
            raise AwdlstmError(f"{where} line {n}: first-pass score {score!r} is not finite")
        hyps.append(Hypothesis(utt, value, text))
    if not hyps:
        raise AwdlstmError(f"{where}: no hypotheses (expected lines of utterance_id<TAB>score<TAB>text)")
    return hyps


def rescore(hyps: list[Hypothesis], lm_logprobs: list[float], words: list[int], lm_scale: float,
            word_bonus: float, unknown: list[list[str]] | None = None) -> dict[str, list[Hypothesis]]:
    """Fill in the LM figures and totals; return each utterance's hypotheses best first
    (ties keep their input order)."""
    by_utt: dict[str, list[Hypothesis]] = {}
    for i, (h, lp, w) in enumerate(zip(hyps, lm_logprobs, words)):
        h.lm_logprob, h.words = lp, w
        h.unknown = tuple(unknown[i]) if unknown else ()
        h.total = h.first_pass + lm_scale * lp + word_bonus * w
        by_utt.setdefault(h.utterance, []).append(h)
    return {u: sorted(hs, key=lambda h: -h.total) for u, hs in by_utt.items()}


def format_ranked(ranked: dict[str, list[Hypothesis]]) -> list[str]:
    rows = ["\t".join(HEADER)]
    for utt, hs in ranked.items():
        for rank, h in enumerate(hs, start=1):
            rows.append(f"{utt}\t{rank}\t{h.total:.4f}\t{h.first_pass:g}\t{h.lm_logprob:.4f}\t{h.words}\t{h.text}\t{' '.join(h.unknown) or '-'}")
    return rows
