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
    unk = vocab.unk_id
    ids = []
    for t in tokens:
        if t in vocab.stoi:
            ids.append(vocab.stoi[t])
        elif unk is not None:
            ids.append(unk)
        else:
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
