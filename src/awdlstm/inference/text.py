"""Between user text and token ids: the model's tokenizer (data/tokenizers/) gives the
vocabulary entries of a text, the vocabulary's one rule gives their ids."""

from __future__ import annotations

from ..data.vocab import Vocabulary
from ..errors import AwdlstmError


def encode(tokens: list[str], vocab: Vocabulary, where: str) -> list[int]:
    """Token ids by the vocabulary's rule (unknown words read as ``<unk>``); a word it cannot
    read (no ``<unk>``) is a one-line error naming ``where``."""
    ids = vocab.lookup(tokens)
    if None in ids:
        t = tokens[ids.index(None)]
        raise AwdlstmError(f"{where}: token {t!r} is not in the model's vocabulary and it has no <unk>")
    return ids
