"""How a loss in nats per token is reported: perplexity at word level, bits per character at
character level. The one place of the rule (and of its overflow clamp)."""

from __future__ import annotations

import math

# exp(700) is near the largest float64; a diverged run's loss reports a huge but finite perplexity.
MAX_LOSS = 700.0


def perplexity(loss: float) -> float:
    """exp(mean negative log-likelihood in nats)."""
    return math.exp(min(loss, MAX_LOSS))


def bits(nats: float) -> float:
    """Nats to bits: a loss per character in bits, or a surprisal."""
    return nats / math.log(2)


def per_unit(loss: float, tokens: int, words: int, chars: int) -> dict[str, float]:
    """Per-word perplexity and bits per character of a text of ``tokens`` tokens, ``words``
    words and ``chars`` characters (counting rules: data/tokenizers/base.py) whose mean loss
    per token is ``loss``: the same total log-probability, loss x tokens, divided by the words
    or the characters, so that a subword, a word and a character model of the same text
    compare. (When batching leaves a split's last few tokens unscored, the mean over the
    scored ones stands for them.)"""
    total = loss * tokens
    return {"word_ppl": perplexity(total / max(words, 1)), "bpc": bits(total / max(chars, 1))}


def metric(loss: float, level: str) -> tuple[str, float]:
    """('ppl', exp(loss)) at word level, ('bpc', loss / ln 2) at character level."""
    if level == "char":
        return "bpc", bits(loss)
    return "ppl", perplexity(loss)


def split_units(data, split: str, loss: float) -> dict[str, float]:
    """Per-word perplexity and bits per character of ``split`` (data/metrics.py's rule) where
    its tokens are not its words (subword units); {} for a word or character corpus, whose
    metric already is one of them."""
    st = data.stats[split]
    if st.tokens == st.words or data.level == "char" or not st.words:
        return {}
    return per_unit(loss, st.tokens, st.words, st.chars)


def format_units(units: dict[str, float]) -> str:
    return f" | per word ppl {units['word_ppl']:.3f} | bpc {units['bpc']:.4f}" if units else ""
