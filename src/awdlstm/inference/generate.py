"""Sampling text from a model, one token at a time (batch 1)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.vocab import Vocabulary
from ..errors import AwdlstmError
from ..runtime.evaluate import lstm_kernel, model_device


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """(V,) logits -> (V,) probabilities (in the logits' dtype) after temperature, top-k and
    nucleus (top-p) filtering. Temperature 0 is greedy decoding."""
    if temperature == 0:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
        return probs
    # In float64, and shifted so that the largest is 0 before dividing: a tiny temperature
    # (down to the smallest subnormal) then sends the others to -inf, greedy in the limit,
    # instead of every logit to ±inf and the softmax to NaN.
    dtype, logits = logits.dtype, logits.double()
    logits = (logits - logits.max()) / temperature
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = sorted_p.cumsum(0) - sorted_p >= top_p
        drop[0] = False  # whatever top_p, even one that rounds to 0
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
        probs /= probs.sum()
    return probs.to(dtype)


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if temperature < 0:
        raise AwdlstmError(f"--temperature {temperature}: must be >= 0 (0 is greedy)")
    if top_k < 0:
        raise AwdlstmError(f"--top-k {top_k}: must be >= 0 (0 keeps every token)")
    if not 0 < top_p <= 1:
        raise AwdlstmError(f"--top-p {top_p}: must be in (0, 1]")


def sample(scores: torch.Tensor, temperature: float, top_k: int, top_p: float,
           generator: torch.Generator | None) -> int:
    """One token id drawn from (V,) logits or log-probabilities (on the CPU) after the
    filters of ``filter_logits``: the sampling step of every generation loop."""
    return int(torch.multinomial(filter_logits(scores, temperature, top_k, top_p), 1, generator=generator))


def sampling_generator(seed: int | None) -> torch.Generator | None:
    """Sampling runs on a CPU generator, so a seed gives the same text on every device."""
    return torch.Generator().manual_seed(seed) if seed is not None else None


@torch.no_grad()
def generate(model, vocab: Vocabulary, n_tokens: int, prompt_ids: list[int], temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> Iterator[int]:
    """Yield ``n_tokens`` sampled ids after ``prompt_ids``. The model is primed with
    ``<eos>`` first, as at the start of a sentence in the training stream."""
    check_sampling(temperature, top_k, top_p)
    model.eval()
    device = model_device(model)
    gen = sampling_generator(seed)
    context = torch.tensor([vocab.eos_id] + list(prompt_ids), device=device).view(-1, 1)  # (T, 1)
    with lstm_kernel(1):
        out = model(context, model.init_hidden(1))
        for _ in range(n_tokens):
            token = sample(out.logits[-1, 0].float().cpu(), temperature, top_k, top_p, gen)
            yield token
            out = model(torch.tensor([[token]], device=device), out.hidden)
