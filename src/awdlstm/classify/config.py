"""The classifier's settings: a typed dataclass validated on creation, stored in its file."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AwdlstmError
from ..settings import Validated, apply_overrides_to, param


@dataclass
class ClassifierConfig(Validated):
    """Training a classifier head (and, gradually, the encoder) on labelled lines."""

    SECTION = "classify"
    epochs: int = param(6, "epochs over the training lines", "positive")
    batch_size: int = param(32, "documents per batch (similar lengths together)", "positive")
    lr: float = param(1e-2, "peak learning rate of the top group (Adam, slanted triangular)", "positive")
    lr_layer_decay: float = param(2.6, "each group below the head trains at the lr of the one above / this "
                                  "(ULMFiT: 2.6; 1: one lr)", "positive")
    stlr_cut: float = param(0.1, "fraction of the batches over which lr rises", "unit")
    stlr_ratio: float = param(32.0, "how much smaller the lowest lr is than the peak", "positive")
    unfreeze: str = param("gradual", "'gradual': epoch 1 trains the head, each later epoch also the next layer "
                          "down, the embedding last (ULMFiT); 'all': everything from the start",
                          ("gradual", "all"))
    head_hidden: int = param(50, "size of the head's hidden layer", "positive")
    dropout_pool: float = param(0.2, "dropout on the pooled features, before the first linear layer", "prob")
    dropout_head: float = param(0.1, "dropout before the output layer", "prob")
    max_tokens: int = param(400, "a document is cut to its first this many tokens", "positive")
    valid_fraction: float = param(0.1, "share of the training lines held out when no validation file is given",
                                  "prob")
    weight_decay: float = param(0.0, "L2 penalty of Adam", "nonneg")
    seed: int = param(0, "seed of the head's weights, the dropout masks and the batch order")

    def validate(self) -> None:
        if self.stlr_ratio < 1 or self.lr_layer_decay < 1:
            raise AwdlstmError(f"classify.stlr_ratio={self.stlr_ratio} and classify.lr_layer_decay="
                               f"{self.lr_layer_decay} must be >= 1 (1: off)")


def classifier_config(sets: list[str]) -> ClassifierConfig:
    """Defaults with ``key=value`` overrides (``--set epochs=4``)."""
    return ClassifierConfig(**apply_overrides_to(ClassifierConfig, sets))
