"""Mixture of Softmaxes head (Yang et al. 2018, "Breaking the softmax bottleneck").

With the last layer's output x_t (size D), K experts and embedding size E:

    latent_k = tanh(W_l x_t + b_l)[k]            (T, B, K, E), locked dropout p_l on (T, B, K·E)
    π_t      = softmax(W_π x_t)                  (T, B, K)   prior over experts, no bias
    p(w | t) = Σ_k π_{t,k} softmax(W latent_k + b)_w

W (V, E) is the embedding's own Parameter when tied. The mixture is taken in probability
space and its log computed stably as logsumexp_k(log π_k + log_softmax_k), in fp32. With
K = 1 the head is softmax(W tanh(W_l x + b_l) + b).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AwdlstmError
from .head import LogProbHead
from .locked_dropout import LockedDropout
from .masks import Columns


class MixtureOfSoftmaxes(LogProbHead, nn.Module):
    KNOBS = ("mos_experts", "mos_last_size", "dropout_latent")

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.mos_experts < 1:
            raise AwdlstmError("model.head='mos' needs model.mos_experts >= 1 (the paper uses 15)")

    @staticmethod
    def input_size(cfg) -> int:
        """The last layer feeds the latent projection (paper: 620 -> 15 x 280)."""
        return cfg.mos_last_size or cfg.emb_size

    @classmethod
    def build(cls, in_size: int, vocab_size: int, cfg, tied: nn.Parameter | None) -> MixtureOfSoftmaxes:
        return cls(in_size, cfg.emb_size, vocab_size, cfg.mos_experts, cfg.dropout_latent, cfg.locked_dropout, tied)

    def __init__(self, in_features: int, emb_size: int, vocab_size: int, experts: int, dropout_latent: float,
                 locked: bool = True, weight: nn.Parameter | None = None):
        super().__init__()
        self.experts, self.emb_size = experts, emb_size
        self.prior = nn.Linear(in_features, experts, bias=False)
        self.latent = nn.Linear(in_features, experts * emb_size)
        self.latent_dropout = LockedDropout(dropout_latent, locked)
        self.weight = weight if weight is not None else nn.Parameter(torch.empty(vocab_size, emb_size))
        if weight is None:
            nn.init.uniform_(self.weight, -0.1, 0.1)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def _parts(self, x: torch.Tensor, columns: Columns | None):
        """x (T, B, D) -> (expert logits (T, B, K, V), log prior (T, B, K)), fp32."""
        T, B, _ = x.shape
        latent = self.latent_dropout(torch.tanh(self.latent(x)), columns)  # (T, B, K·E)
        logits = F.linear(latent.view(T, B, self.experts, self.emb_size), self.weight, self.bias)
        return logits.float(), F.log_softmax(self.prior(x).float(), dim=-1)

    def log_probs(self, x: torch.Tensor, columns: Columns | None = None) -> torch.Tensor:
        """x (T, B, D) -> log p (T, B, V), fp32."""
        logits, log_prior = self._parts(x, columns)
        return torch.logsumexp(log_prior.unsqueeze(-1) + F.log_softmax(logits, dim=-1), dim=2)

    def target_log_prob(self, x: torch.Tensor, targets: torch.Tensor, columns: Columns | None = None):
        """x (T, B, D), targets (T, B) -> log p(target) (T, B), fp32:
        logsumexp_k(log π_k + logit_{k,y} - logsumexp_w logit_{k,w}), no (T, B, K, V) log-softmax kept."""
        T, B, _ = x.shape
        K = self.experts
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32 and \
                not torch.is_autocast_enabled(x.device.type):
            latent = self.latent_dropout(torch.tanh(self.latent(x)), columns)  # (T, B, K·E)
            rows = targets.reshape(T * B, 1).expand(T * B, K).reshape(-1)  # each expert's row wants y
            target = ExpertTargetLogProb.apply(latent.reshape(T * B * K, self.emb_size), self.weight, self.bias,
                                               rows).view(T, B, K)
            log_prior = F.log_softmax(self.prior(x), dim=-1)
            return torch.logsumexp(log_prior + target, dim=-1)
        logits, log_prior = self._parts(x, columns)
        target = logits.gather(-1, targets.unsqueeze(-1).unsqueeze(-1).expand(*targets.shape, K, 1)).squeeze(-1)
        return torch.logsumexp(log_prior + target - torch.logsumexp(logits, dim=-1), dim=-1)


class ExpertTargetLogProb(torch.autograd.Function):
    """Each expert's log-probability of the target, log_softmax(W latent + b)_y, with one
    (rows, V) buffer: the forward keeps softmax(z) in the logits' own memory, and the
    backward turns it in place into the logits' gradient,

        ∂ℓ/∂z_v = δ_{v,y} − s_v,   so   dz = g · (onehot(y) − s)   (g: the gradient of ℓ),

    then two matrix products give d latent and dW. Autograd through logits → logsumexp →
    gather would keep the logits and a softmax and make several passes over (rows, V)."""

    @staticmethod
    def forward(ctx, latent, weight, bias, targets):
        """latent (rows, E), weight (V, E), bias (V), targets (rows) -> ℓ (rows)."""
        z = torch.addmm(bias, latent, weight.t())  # (rows, V)
        lse = torch.logsumexp(z, dim=1)
        out = z.gather(1, targets.unsqueeze(1)).squeeze(1) - lse
        z.sub_(lse.unsqueeze(1)).exp_()  # softmax, in place
        ctx.save_for_backward(latent, weight, z, targets)
        return out

    @staticmethod
    def backward(ctx, grad):
        latent, weight, s, targets = ctx.saved_tensors
        dz = s.mul_(-grad.unsqueeze(1))  # −g s, in place: the saved softmax is not needed again
        dz.scatter_add_(1, targets.unsqueeze(1), grad.unsqueeze(1))  # + g at y
        d_latent = dz @ weight if ctx.needs_input_grad[0] else None
        d_weight = dz.t() @ latent if ctx.needs_input_grad[1] else None
        d_bias = dz.sum(0) if ctx.needs_input_grad[2] else None
        return d_latent, d_weight, d_bias, None
