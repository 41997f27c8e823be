"""The AWD-LSTM language model, also the book baseline and a plain LSTM LM.

Shapes, with T steps, batch B, vocabulary V, embedding E and hidden H:

    tokens (T, B) ─ embedding (+ embedding dropout) → (T, B, E) ─ locked dropout p_i
      → layer 1 (E → H) ─ locked dropout p_h → … → layer L (H → E if tied, else H)
      ─ locked dropout p_o → decoder (tied to the embedding) → logits (T, B, V)

The decoder is the head named by ``model.head`` (heads.py; the protocol is head.py): a
full softmax, an adaptive softmax or a mixture of softmaxes. Its "logits" are raw logits
or already log-probabilities, so ``log_softmax(logits)`` is the model's distribution either
way. Given the targets, a forward also returns log p(target), which the adaptive softmax
and the mixture compute without the whole (T, B, V) distribution.

The hidden state is a list with one state per layer: (h, c), each (1, B, H_l), or (h, c, o)
for a layer that carries its output gate (output-gate zoneout). It is passed in and
returned, never stored on the module, so the batch size can change between calls.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .embedding_dropout import EmbeddingDropout
from .head import LogProbHead
from .heads import HEADS
from .layers import LAYERS
from .locked_dropout import LockedDropout
from .masks import Columns

Hidden = list[tuple[torch.Tensor, ...]]
STATE_NAMES = ("h", "c", "o")  # the tensors of a layer's state, in order (checkpoints, ONNX)


class LMOutput(NamedTuple):
    """What a forward returns. ``raw_output`` (T, B, E) is the last layer's output before
    its dropout (TAR, the neural cache); ``dropped_output`` is after it (AR).
    ``target_logp`` (T, B) fp32 is log p(target) when targets were given, else None;
    ``logits`` (T, B, V) is None only for the adaptive and MoS heads given targets.
    ``factors``: the adaptive head's pieces of log p(target) when asked for (``Factors``)."""

    logits: torch.Tensor | None
    hidden: Hidden
    raw_output: torch.Tensor
    dropped_output: torch.Tensor
    target_logp: torch.Tensor | None = None
    factors: Any = None


class LanguageModel(nn.Module):
    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        c = config
        self.embedding = nn.Embedding(vocab_size, c.emb_size)
        self.embedding_dropout = EmbeddingDropout(c.dropout_emb)
        self.input_dropout = LockedDropout(c.dropout_input, c.locked_dropout)
        self.hidden_dropout = LockedDropout(c.dropout_hidden, c.locked_dropout)
        self.output_dropout = LockedDropout(c.dropout_output, c.locked_dropout)
        cells = c.layer_cells or [c.cell] * c.num_layers
        head = HEADS[c.head]
        out_size = head.input_size(c)
        sizes = [c.emb_size] + [c.hidden_size] * (c.num_layers - 1) + [out_size]
        self.layers = nn.ModuleList(LAYERS[cells[i]](sizes[i], sizes[i + 1], c) for i in range(c.num_layers))
        nn.init.uniform_(self.embedding.weight, -c.init_range, c.init_range)
        tied = self.embedding.weight if c.tie_weights else None  # one Parameter, two uses
        self.decoder = head.build(out_size, vocab_size, c, tied)

    def init_hidden(self, batch_size: int) -> Hidden:
        """Zero state for every layer: [(h, c)] (or (h, c, o)), each (1, batch_size, H_l)."""
        return [layer.init_state(batch_size) for layer in self.layers]

    def forward(self, tokens: torch.Tensor, hidden: Hidden, columns: Columns | None = None,
                targets: torch.Tensor | None = None, factors: bool = False) -> LMOutput:
        """tokens (T, B) int64, hidden from ``init_hidden`` or a previous call. ``columns``
        says that the B columns are a block of a larger batch: masks that vary over the
        batch are then drawn for the whole batch and cut to the block (data parallelism).
        ``targets`` (T, B): also return log p(target); with ``factors`` (an adaptive head
        only) also the pieces it is made of, the whole distribution never built."""
        raw_output, new_hidden = self.encode(tokens, hidden, columns)
        dropped = self.output_dropout(raw_output, columns)
        if factors:
            f = self.decoder.factor(dropped, targets)
            return LMOutput(None, new_hidden, raw_output, dropped, f.target_logp, f)
        logits, target_logp = self.decoder(dropped, targets, columns)  # (T, B, V) or None, (T, B) or None
        return LMOutput(logits, new_hidden, raw_output, dropped, target_logp)

    def log_probs(self, scores: torch.Tensor) -> torch.Tensor:
        """A forward's ``logits`` (..., V) -> log-probabilities (..., V) fp32: the full
        softmax's logits normalized; the other heads' scores are log-probabilities already,
        and normalizing them again would cost a few passes over (..., V) for nothing."""
        scores = scores.float()
        return scores if isinstance(self.decoder, LogProbHead) else F.log_softmax(scores, -1)

    def encode(self, tokens: torch.Tensor, hidden: Hidden, columns: Columns | None = None) -> tuple[torch.Tensor, Hidden]:
        """The encoder alone: tokens (T, B) -> (the last layer's output before its dropout
        (T, B, E), the new hidden state). A classifier reads this; the decoder is not run."""
        x = self.input_dropout(self.embedding_dropout(self.embedding, tokens), columns)  # (T, B, E)
        new_hidden = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, hidden[i], columns)
            new_hidden.append(state)
            if i < len(self.layers) - 1:
                x = self.hidden_dropout(x, columns)  # (T, B, H)
        return x, new_hidden

    def num_parameters(self) -> int:
        """Trainable parameters, the tied matrix counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph between BPTT windows (truncated backpropagation)."""
    return [tuple(t.detach() for t in state) for state in hidden]


def build_model(config: ModelConfig, vocab_size: int) -> LanguageModel:
    """The model for ``config`` over a vocabulary of ``vocab_size`` tokens."""
    return LanguageModel(config, vocab_size)
