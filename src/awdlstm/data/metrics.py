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


def metric(loss: float, level: str) -> tuple[str, float]:
    """('ppl', exp(loss)) at word level, ('bpc', loss / ln 2) at character level."""
    if level == "char":
        return "bpc", bits(loss)
    return "ppl", perplexity(loss)
