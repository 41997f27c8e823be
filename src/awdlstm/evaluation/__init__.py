"""Beyond static perplexity: neural cache and dynamic evaluation."""

from .cache import cache_loss, cache_target_probs, tune
from .dynamic import score_dynamic
from .scored import Scored, score_static

__all__ = ["cache_loss", "cache_target_probs", "tune", "score_dynamic", "Scored", "score_static"]
