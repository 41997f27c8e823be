"""Discriminative learning rates (Howard & Ruder 2018): one optimizer group per layer,
each training at the learning rate of the layer above divided by a factor."""

from __future__ import annotations

from torch import nn


def layer_groups(layers: list[list[nn.Parameter]], decay: float) -> list[dict]:
    """Optimizer groups for ``layers`` listed bottom to top: the top one gets lr_scale 1,
    the one below 1 / decay, and so on. A parameter listed twice (a tied matrix) stays in
    the lowest group that names it; frozen parameters are left out."""
    seen: set[int] = set()
    groups = []
    for depth, params in enumerate(layers):
        own = []
        for p in params:
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                own.append(p)
        groups.append({"params": own, "lr_scale": decay ** -(len(layers) - 1 - depth)})
    return [g for g in groups if g["params"]]


def lm_layers(model) -> list[list[nn.Parameter]]:
    """A language model's parameter groups bottom to top, as fastai splits an AWD-LSTM
    language model for ULMFiT (``awd_lstm_lm_split``): each recurrent layer alone, then the
    embedding with the decoder, whose matrix is the embedding's when tied. That last group
    trains at the full rate: the word rows are what changes most when the corpus does."""
    return [list(layer.parameters()) for layer in model.layers] + \
        [list(model.embedding.parameters()) + list(model.decoder.parameters())]
