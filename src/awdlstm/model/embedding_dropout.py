"""Embedding dropout (Gal & Ghahramani 2016; AWD-LSTM §4.3).

One Bernoulli(1 - p) draw per vocabulary row and forward: a dropped word's embedding is
zero at every position of the batch, kept rows are scaled by 1 / (1 - p). Multiplying the
looked-up vectors by the gathered row mask is the same function as masking the (V, E)
weight and looking up, with gradient zero for dropped rows, but costs O(T·B·E) instead of O(V·E).
"""

import torch
from torch import nn


class EmbeddingDropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def row_mask(self, vocab_size: int, device=None) -> torch.Tensor:
        """(V,) mask: 0 for dropped rows, 1 / (1 - p) for kept ones."""
        keep = torch.rand(vocab_size, device=device) >= self.p
        return keep.float() / (1 - self.p)

    def forward(self, embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (T, B) -> embeddings (T, B, E)."""
        emb = embedding(tokens)
        if not self.training or self.p == 0:
            return emb
        mask = self.row_mask(embedding.num_embeddings, tokens.device)
        return emb * mask[tokens].unsqueeze(-1).to(emb.dtype)
