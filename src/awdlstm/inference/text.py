"""Between user text and token ids, following the corpus's tokenizer and level."""

from __future__ import annotations

from ..data.vocab import EOS, Vocabulary
from ..errors import AwdlstmError


def to_tokens(text: str, tokenizer: str, level: str) -> list[str]:
    """Split user text like the corpus was split. PTB-char style corpora (char level, split
    tokenizer) spell a word boundary as ``_``."""
    if tokenizer == "chars":
        return list(text)
    if level == "char":
        return list("_".join(text.split()))
    return text.split()


def encode(tokens: list[str], vocab: Vocabulary, where: str) -> list[int]:
    """Token ids by the vocabulary's rule (unknown words read as ``<unk>``); a word it cannot
    read (no ``<unk>``) is a one-line error naming ``where``."""
    ids = vocab.lookup(tokens)
    if None in ids:
        t = tokens[ids.index(None)]
        raise AwdlstmError(f"{where}: token {t!r} is not in the model's vocabulary and it has no <unk>")
    return ids


def detokenize(token: str, tokenizer: str, level: str) -> str:
    """The text to print for one generated token."""
    if token == EOS:
        return "\n"
    if tokenizer == "chars":
        return token
    if level == "char":
        return " " if token == "_" else token
    return token + " "
