"""Subword units: a SentencePiece model (trained here as ``bpe`` or ``unigram``, or a given
``.model`` file) or a Hugging Face ``tokenizer.json``, used exactly as they come so that an
ASR system's units are the model's.

Why SentencePiece trains the models here: on WikiText-2's training text (10.8 MB, 8,000
pieces, 2 cores, 2026-12-02; ``benchmarks/tokenizers.py``) it encoded 8.9 (bpe) and 24.0
(unigram) MB/s against Hugging Face ``tokenizers``' 5.0 and 4.5, trained in 0.6 s and 4.6 s
against 1.2 s and 3.7 s, and peaked at 138 / 268 MB of memory against 404 / 528 MB; its
``.model`` files are also what ASR toolkits ship. ``tokenizer.json`` files are read by ``tokenizers``.

The vocabulary is the model's pieces in id order. The model's end-of-sentence piece (or
``</s>``) is the corpus's ``<eos>`` and its unknown piece ``<unk>``; a model without an
end-of-sentence piece gets ``<eos>`` appended as one more id. A model trained here keeps
``<unk>`` as one piece that the text itself may hold (the closed-vocabulary corpora, PTB and
WikiText, spell their rare words so), and names its own unknown piece, for characters it
cannot spell, ``UNKNOWN``: the out-of-vocabulary count is of that piece. Both travel in the checkpoint
as text (the SentencePiece protobuf in base64, the tokenizer's JSON): loading never unpickles.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ...errors import AwdlstmError
from ..vocab import EOS, UNK
from .base import BlockEncoder, Tokenizer

TRAINED = ("bpe", "unigram")
UNKNOWN = "<unknown>"  # the unknown piece of a model trained here
TRAIN_CHARS = 100_000_000  # a model is trained on the first 100 M characters of the training split
SPACE_MARKS = {"\u2581": " ", "\u0120": " ", "\u010a": "\n"}  # SentencePiece's and byte-level BPE's


class SentencePieceModel:
    library = "sentencepiece"

    def __init__(self, proto: bytes, where: str):
        import sentencepiece as spm
        try:
            self.sp = spm.SentencePieceProcessor(model_proto=proto)
        except (RuntimeError, OSError, TypeError) as e:
            raise AwdlstmError(f"{where}: not a SentencePiece model that loads ({_first_line(e)})") from None
        self.proto = proto
        self.size = self.sp.get_piece_size()
        self.eos_id = self.sp.eos_id() if self.sp.eos_id() >= 0 else None
        self.unk_id = self.sp.unk_id() if self.sp.unk_id() >= 0 else None

    def pieces(self) -> list[str]:
        return [self.sp.id_to_piece(i) for i in range(self.size)]

    def encode(self, lines: list[str]) -> list[list[int]]:
        return self.sp.encode(lines, num_threads=os.cpu_count() or 1)

    def spell(self, text: str) -> list[tuple[int, str]]:
        # As strings, SentencePiece gives an unknown piece's surface text instead of its name.
        return list(zip(self.sp.encode(text), self.sp.encode(text, out_type=str)))

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def state(self) -> str:
        return base64.b64encode(self.proto).decode("ascii")


class HFModel:
    library = "tokenizers"

    def __init__(self, text: str, where: str):
        from tokenizers import Tokenizer as HFTokenizer
        try:
            self.tok = HFTokenizer.from_str(text)
        except Exception as e:  # the library raises its own exception types for a bad file
            raise AwdlstmError(f"{where}: not a tokenizer.json that loads ({_first_line(e)})") from None
        self.text = text
        self.size = self.tok.get_vocab_size(with_added_tokens=True)
        vocab = self.tok.get_vocab(with_added_tokens=True)
        self.eos_id = next((vocab[t] for t in (EOS, "</s>") if t in vocab), None)
        unk = getattr(self.tok.model, "unk_token", None)
        self.unk_id = vocab.get(unk) if isinstance(unk, str) else vocab.get(UNK)

    def pieces(self) -> list[str]:
        pieces = [self.tok.id_to_token(i) for i in range(self.size)]
        if None in pieces:
            raise AwdlstmError(f"tokenizer.json: ids are not contiguous (no token for id {pieces.index(None)})")
        return pieces

    def encode(self, lines: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(lines, add_special_tokens=False)]

    def spell(self, text: str) -> list[tuple[int, str]]:
        e = self.tok.encode(text, add_special_tokens=False)
        return [(i, text[a:b]) for i, (a, b) in zip(e.ids, e.offsets)]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False)

    def state(self) -> str:
        return self.text


BACKENDS = {"sentencepiece": SentencePieceModel, "tokenizers": HFModel}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


class SubwordEncoder(BlockEncoder):
    def __init__(self, tokenizer: SubwordTokenizer):
        self.model, self.eos = tokenizer.model, tokenizer.eos_id

    def ids(self, block: str) -> np.ndarray:
        lines = block.split("\n")
        tail = lines.pop()  # the start of a line cut at a space (data/stream.py), or ""
        seqs = self.model.encode(lines + [tail] if tail else lines)
        for s in seqs[: len(lines)]:
            s.append(self.eos)
        return np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.uint32,
                           count=sum(map(len, seqs)))


class SubwordTokenizer(Tokenizer):
    """``kind``: 'bpe' or 'unigram' (trained here), or 'model' (a given file)."""

    level = "word"

    def __init__(self, model: SentencePieceModel | HFModel, kind: str, source: str = ""):
        self.model, self.kind, self.source = model, kind, source
        itos = model.pieces()
        if model.eos_id is not None:
            itos[model.eos_id] = EOS
            self.eos_id = model.eos_id
        else:
            self.eos_id = len(itos)
            itos.append(EOS)
        if model.unk_id is not None and UNK not in itos:
            itos[model.unk_id] = UNK
        self.unknown_id = model.unk_id  # what the model reads a character it cannot spell as
        if len(set(itos)) != len(itos):
            dup = next(t for i, t in enumerate(itos) if t in itos[:i])
            raise AwdlstmError(f"{source or 'tokenizer'}: the tokenizer lists {dup!r} twice")
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}

    def vocabulary(self) -> list[str]:
        return list(self.itos)

    def tokens(self, text: str) -> list[str]:
        return [self.itos[i] for i in self.model.encode([text])[0]]

    def spell(self, text: str) -> tuple[list[str], list[str]]:
        pieces = self.model.spell(text)
        entries = [self.itos[i] for i, _ in pieces]
        return [s if i == self.unknown_id else e for (i, s), e in zip(pieces, entries)], entries

    def token_text(self, token: str) -> str:
        if token == EOS:
            return "\n"
        for mark, text in SPACE_MARKS.items():
            token = token.replace(mark, text)
        return token

    def decode(self, tokens: list[str]) -> str:
        """Text of vocabulary entries, lines at ``<eos>`` (the model's own decoder)."""
        lines, line = [], []
        for t in tokens:
            if t == EOS:
                lines.append(line)
                line = []
            else:
                line.append(self.stoi[t])
        return "\n".join(self.model.decode(ids) for ids in lines + [line])

    def encoder(self) -> BlockEncoder:
        return SubwordEncoder(self)

    def meta(self) -> dict:
        return {"tokenizer": self.kind, "tokenizer_model": {"library": self.model.library,
                                                            "model": self.model.state(), "source": self.source}}

    def cache_key(self) -> str:
        import hashlib
        return f"{self.kind}:{self.model.library}:{hashlib.sha256(self.model.state().encode()).hexdigest()}"

    def __repr__(self) -> str:
        return f"<{self.kind} tokenizer ({self.model.library}, {len(self.itos):,} entries)>"


def from_state(kind: str, state: dict, where: str) -> SubwordTokenizer:
    """The tokenizer a checkpoint's ``tokenizer_model`` entry describes."""
    library, model = state.get("library"), state.get("model")
    if library not in BACKENDS or not isinstance(model, str):
        raise AwdlstmError(f"{where}: the stored tokenizer model is malformed (library {library!r})")
    if library == "sentencepiece":
        try:
            data: bytes | str = base64.b64decode(model, validate=True)
        except ValueError:
            raise AwdlstmError(f"{where}: the stored SentencePiece model is not base64") from None
    else:
        data = model
    return SubwordTokenizer(BACKENDS[library](data, where), kind, str(state.get("source", "")))


def load_file(path: Path) -> SubwordTokenizer:
    """``data.tokenizer_model``: a SentencePiece ``.model`` or a Hugging Face ``tokenizer.json``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AwdlstmError(f"{path}: no such tokenizer file (data.tokenizer_model)") from None
    except OSError as e:
        raise AwdlstmError(f"{path}: cannot read the tokenizer file ({e.strerror})") from None
    if path.suffix == ".json":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise AwdlstmError(f"{path}: not a tokenizer.json (not UTF-8 text)") from None
        model: SentencePieceModel | HFModel = HFModel(text, str(path))
    elif path.suffix == ".model":
        model = SentencePieceModel(data, str(path))
    else:
        raise AwdlstmError(f"{path}: data.tokenizer_model takes a SentencePiece .model or a Hugging Face "
                           f"tokenizer.json file")
    return SubwordTokenizer(model, "model", path.name)


def train(kind: str, vocab_size: int, lines: Iterable[str], where: str) -> SubwordTokenizer:
    """A SentencePiece ``kind`` model of at most ``vocab_size`` pieces (its unknown piece id 0,
    ``<eos>`` id 1 and ``<unk>`` id 2 included) trained on ``lines`` (TRAIN_CHARS of them at most)."""
    import sentencepiece as spm

    def sample():
        left = TRAIN_CHARS
        for line in lines:
            if left <= 0:
                return
            left -= len(line)
            yield line

    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sample(), model_writer=out, model_type=kind, vocab_size=vocab_size,
            unk_id=0, eos_id=1, bos_id=-1, pad_id=-1, unk_piece=UNKNOWN, eos_piece=EOS, user_defined_symbols=[UNK],
            # A small corpus may not support vocab_size pieces: take what it supports.
            hard_vocab_limit=False, max_sentence_length=1 << 16, input_sentence_size=0,
            num_threads=os.cpu_count() or 1, minloglevel=2)
    except RuntimeError as e:
        raise AwdlstmError(f"{where}: cannot train a {kind} tokenizer of data.vocab_size={vocab_size} pieces "
                           f"({_first_line(e)})") from None
    return SubwordTokenizer(SentencePieceModel(out.getvalue(), where), kind)
