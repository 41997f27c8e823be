"""The language model and its regularizers."""

from .ar_tar import ar_penalty, tar_penalty
from .embedding_dropout import EmbeddingDropout
from .layers import LAYERS
from .lm import Hidden, LanguageModel, LMOutput, build_model, detach_hidden
from .locked_dropout import LockedDropout
from .weight_drop import drop_weight

__all__ = ["ar_penalty", "tar_penalty", "EmbeddingDropout", "LAYERS", "Hidden", "LanguageModel",
           "LMOutput", "build_model", "detach_hidden", "LockedDropout", "drop_weight"]
