"""What the commands share: the device option, loading a model, and path options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ..checkpoints.run_folder import check_vocab, corpus_for, model_from_checkpoint
from ..commandline import Arg, Device  # noqa: F401 - Device: the --device of the commands here
from ..errors import AwdlstmError
from ..runtime.machine import resolve_device

# A model to read: a run folder, a checkpoint file or a model folder.
Run = Annotated[str, Arg(positional=True, metavar="RUN|CKPT|MODEL_DIR")]


def progress() -> bool:
    """Commands show progress: a bar on a terminal, a line a minute in a log (progress.py)."""
    return True


def load(path: str, device: str | None):
    """A checkpoint's model on ``device`` (default auto): (model, vocabulary, config, checkpoint)."""
    return model_from_checkpoint(Path(path), resolve_device(device))


def model_and_corpus(path: str, device: str | None):
    """The checkpoint's model, its config, and the corpus it was trained on (vocabulary checked)."""
    model, vocab, cfg, ckpt = load(path, device)
    data = corpus_for(cfg, progress(), ckpt.tokenizer())  # read as the model was trained
    check_vocab(data.vocab, vocab.itos, Path(path), cfg.data.corpus)
    return model, cfg, data


def folder(value: str | None, option: str) -> Path | None:
    """An optional path option: None when absent; an empty string is an error, not the default."""
    if value is None:
        return None
    if not value.strip():
        raise AwdlstmError(f"{option} '': give a path, or leave the option out for the default")
    return Path(value)
