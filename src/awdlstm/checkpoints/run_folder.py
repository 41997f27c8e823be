"""Reading a run folder or a checkpoint file: which file, which corpus, which model.

A run folder holds ``last.safetensors`` (resumable) and ``best.safetensors`` (the weights
to use); commands that take a run accept the folder or either file, or an exported model
folder (model_folder.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import RunConfig
from ..data.corpus import Corpus, load_corpus
from ..data.tokenizers import Tokenizer
from ..data.vocab import Vocabulary
from ..errors import AwdlstmError
from ..model import build_model
from .checkpoint import Checkpoint, read_checkpoint
from .model_folder import is_model_folder, read_model_folder

LAST, BEST = "last.safetensors", "best.safetensors"


def checkpoint_file(path: Path) -> Path:
    """A run folder's best checkpoint (its last one before any epoch ended), or the file itself."""
    path = Path(path)
    if path.is_dir():
        return path / BEST if (path / BEST).is_file() else path / LAST
    return path


def open_checkpoint(path: Path) -> Checkpoint:
    if is_model_folder(path):
        return read_model_folder(path)
    return read_checkpoint(checkpoint_file(path))


def corpus_for(cfg: RunConfig, progress: bool = True, tokenizer: Tokenizer | None = None) -> Corpus:
    """The corpus ``cfg.data`` names; read with ``tokenizer`` (a checkpoint's) when given."""
    d = cfg.data
    return load_corpus(d.corpus, data_dir=d.data_dir or None, level=d.level or None,
                       tokenizer=d.tokenizer or None, progress=progress, max_vocab=d.max_vocab, min_freq=d.min_freq,
                       valid_fraction=d.valid_fraction, test_fraction=d.test_fraction, text_field=d.text_field,
                       vocab_size=d.vocab_size, tokenizer_model=d.tokenizer_model, fixed=tokenizer)


def check_vocab(vocab: Vocabulary, itos: list[str], where: Path, corpus: str) -> None:
    if vocab.itos != itos:
        raise AwdlstmError(f"{where}: checkpoint vocabulary ({len(itos)} tokens) does not match corpus "
                           f"'{corpus}' ({len(vocab)} tokens); use the corpus the model was trained on")


def model_from_checkpoint(path: Path, device: torch.device | str = "cpu"):
    """Rebuild the model from the file alone, on ``device``: (model in eval mode,
    vocabulary, config, the opened checkpoint)."""
    ckpt = open_checkpoint(path)
    cfg, itos = ckpt.config(), ckpt.vocab()
    model = build_model(cfg.model, len(itos))
    try:
        model.load_state_dict(ckpt.weights())
    except RuntimeError as e:
        raise AwdlstmError(f"{ckpt.path}: weights do not fit the stored config ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), Vocabulary(itos), cfg, ckpt
