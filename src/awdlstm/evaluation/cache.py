"""Neural cache pointer (Grave et al. 2017), vectorised over the window.

Position j keeps the pairs (h_i, x_{i+1}) of the ``window`` positions i in [j - window, j)
before it. p_cache(w) ∝ Σ_{i: x_{i+1} = w} exp(θ h_j·h_i), and the prediction is
p = (1 - λ) p_model + λ p_cache. Only the target's probability is needed for perplexity,
so for a chunk of L positions one (L, M + L) score matrix against the M stored states and
the chunk itself, a causal window mask, and a softmax give every p_cache(target) at once.
The first position has an empty cache and keeps p_model.
"""

from __future__ import annotations

import torch

from ..errors import AwdlstmError

# Cache settings of the spec (Grave et al. / AWD-LSTM), by corpus: (window, theta, lambda).
CACHE_DEFAULTS = {"wikitext-2": (3785, 0.662, 0.1279)}
CACHE_FALLBACK = (500, 1.0, 0.1)  # PTB's


def cache_settings(corpus: str, window: int | None, theta: float | None,
                   lam: float | None) -> tuple[int, float, float]:
    """The given settings, the corpus's published ones where a value is None; checked."""
    dw, dt, dl = CACHE_DEFAULTS.get(corpus, CACHE_FALLBACK)
    window = dw if window is None else window
    theta = dt if theta is None else theta
    lam = dl if lam is None else lam
    if window < 1 or theta < 0 or not 0 <= lam <= 1:
        raise AwdlstmError(f"cache settings window={window} theta={theta} lambda={lam}: need window >= 1, "
                           f"theta >= 0, 0 <= lambda <= 1")
    return window, theta, lam


@torch.no_grad()
def cache_target_probs(hidden: torch.Tensor, targets: torch.Tensor, theta: float, window: int,
                       chunk: int = 512) -> torch.Tensor:
    """hidden (N, E), targets (N,) -> p_cache(target_j) (N,); 0 where the cache is empty."""
    n, device = hidden.size(0), hidden.device
    out = torch.zeros(n, dtype=hidden.dtype, device=device)
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        lo = max(0, start - window)
        keys = hidden[lo:end]  # (K, E): stored states then the chunk's own
        key_targets = targets[lo:end]  # (K,): the word that followed each key
        scores = theta * hidden[start:end] @ keys.t()  # (L, K)
        q = torch.arange(start, end, device=device).unsqueeze(1)  # query positions (L, 1)
        k = torch.arange(lo, end, device=device).unsqueeze(0)  # key positions (1, K)
        valid = (k < q) & (k >= q - window)
        scores = scores.masked_fill(~valid, float("-inf"))
        attn = torch.softmax(scores, dim=1).nan_to_num_(0.0)  # an empty row (j = 0) gives 0
        hit = key_targets.unsqueeze(0) == targets[start:end].unsqueeze(1)  # (L, K)
        out[start:end] = (attn * hit).sum(1)
    return out


def cache_loss(logp_model: torch.Tensor, p_cache: torch.Tensor, lam: float) -> float:
    """Mean NLL of the interpolation; positions with an empty cache keep the model's
    probability (their p_cache is 0 but they are not interpolated)."""
    p = torch.where(torch.arange(len(p_cache), device=p_cache.device) == 0, logp_model.exp(),
                    (1 - lam) * logp_model.exp() + lam * p_cache)
    return -p.clamp_min(1e-30).log().mean().item()


def tune(hidden, targets, logp_model, thetas, lambdas, windows) -> list[tuple[float, int, float, float]]:
    """Grid search; returns (loss, window, theta, lambda) sorted best first. One cache pass
    per (window, theta); the λ sweep reuses it."""
    results = []
    for window in windows:
        for theta in thetas:
            pc = cache_target_probs(hidden, targets, theta, window)
            for lam in lambdas:
                results.append((cache_loss(logp_model, pc, lam), window, theta, lam))
    results.sort()
    return results


def default_grid() -> tuple[list[float], list[float]]:
    thetas = [round(0.1 * i, 2) for i in range(1, 11)] + [1.25, 1.5]
    lambdas = [round(0.025 * i, 3) for i in range(1, 13)]
    return thetas, lambdas

