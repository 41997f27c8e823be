"""How text becomes tokens: the registry of tokenizers (base.py says what one is).

``split`` and ``chars`` build their vocabulary from the corpus; ``bpe`` and ``unigram``
train a SentencePiece model on the training split (subword.py); a given model file is kind
``model``. A new tokenizer is one file plus one line here.
"""

from __future__ import annotations

from ...errors import AwdlstmError
from .base import BlockEncoder, Tokenizer
from .chars import CharsTokenizer
from .subword import TRAINED, SubwordTokenizer, from_state, load_file, train
from .words import SplitTokenizer

BUILT = {"split": SplitTokenizer, "chars": CharsTokenizer}
KINDS = (*BUILT, *TRAINED)  # what data.tokenizer names; "model" is data.tokenizer_model's


def built(kind: str, level: str) -> Tokenizer:
    return BUILT[kind](level)


def from_meta(meta: dict, level: str, where: str) -> Tokenizer:
    """The tokenizer a checkpoint's metadata (``tokenizer``, ``tokenizer_model``) describes."""
    kind = meta.get("tokenizer")
    if kind in BUILT:
        return built(kind, level)
    if kind in (*TRAINED, "model") and isinstance(meta.get("tokenizer_model"), dict):
        return from_state(kind, meta["tokenizer_model"], where)
    raise AwdlstmError(f"{where}: the stored tokenizer {kind!r} is not one of {', '.join(KINDS)} or model "
                       f"(or its model is missing)")


__all__ = ["BlockEncoder", "Tokenizer", "SplitTokenizer", "CharsTokenizer", "SubwordTokenizer", "BUILT",
           "TRAINED", "KINDS", "built", "from_meta", "load_file", "train"]
