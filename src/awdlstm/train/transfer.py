"""Language-model fine-tuning on another corpus and vocabulary (ULMFiT, Howard & Ruder 2018).

The model keeps every weight but the ones indexed by word: the embedding rows, and the
decoder's rows and bias when the decoder has its own (a tied decoder is the embedding).
A word both vocabularies hold keeps its trained row; a new word starts from the mean of
the old rows (its bias from the mean bias), so it begins as an average word rather than
as noise. Training then runs as any run does, on the new corpus, into a new run folder;
discriminative learning rates (train.lr_layer_decay) and the slanted triangular schedule
(train.schedule = "stlr") are the options ULMFiT uses here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoints.run_folder import corpus_for, model_from_checkpoint
from ..config import RunConfig, apply_overrides, with_device
from ..data.metrics import metric
from ..data.vocab import EOS
from ..errors import AwdlstmError
from .trainer import Trainer


def word_rows(model) -> list[str]:
    """The state entries with one row per word (first dimension V): the embedding's, and
    those the head names (head.py's ``word_rows``)."""
    return ["embedding.weight"] + [f"decoder.{name}" for name in model.decoder.word_rows]


def transfer_rows(state: dict[str, torch.Tensor], old_itos: list[str], new_itos: list[str],
                  rows: list[str]) -> dict[str, torch.Tensor]:
    """``state`` with every per-word entry (``rows``) re-indexed from ``old_itos`` to
    ``new_itos``: shared words keep their rows exactly, new words get the mean row."""
    old = {w: i for i, w in enumerate(old_itos)}
    new_ids = [i for i, w in enumerate(new_itos) if w in old]
    old_ids = torch.tensor([old[new_itos[i]] for i in new_ids], dtype=torch.long)
    new_ids = torch.tensor(new_ids, dtype=torch.long)
    out = dict(state)
    for name in rows:
        if name not in state:
            continue
        t = state[name]
        rows = t.mean(0, keepdim=True).expand(len(new_itos), *t.shape[1:]).clone()  # (V_new, ...)
        rows[new_ids] = t[old_ids]
        out[name] = rows
    return out


def start_transfer(source: Path, corpus: str, run_dir: Path, sets: list[str], minutes: float | None,
                   progress: bool = True, log=print, device: str | None = None, **kwargs) -> Trainer:
    """A Trainer on ``corpus`` whose model starts from ``source``'s weights, its vocabulary
    moved to the new corpus's. Writes ``transfer.json`` (source, shared and new words, and
    the validation loss before training) into ``run_dir``."""
    model, vocab, cfg, ckpt = model_from_checkpoint(source)
    d = cfg.to_dict()
    d["data"]["corpus"] = corpus
    d["distill"] = {}  # a teacher of the old vocabulary cannot teach the new one
    if minutes is not None:
        sets = sets + [f"train.max_minutes={minutes}"]
    new_cfg = with_device(RunConfig.from_dict(apply_overrides(d, sets), where=f"{source} + --set"), device)
    # Subword units stay the source's (the new text is spelled in them); a built vocabulary is the new corpus's.
    units = ckpt.tokenizer()
    data = corpus_for(new_cfg, progress, units if units.vocabulary() is not None else None)
    new_itos = data.vocab.itos
    shared = sum(w in vocab.stoi for w in new_itos)
    if not any(w in vocab.stoi for w in new_itos if w != EOS):
        raise AwdlstmError(f"corpus '{corpus}' shares no word with {source}'s vocabulary; train a new model instead")
    weights = transfer_rows(model.state_dict(), vocab.itos, new_itos, word_rows(model))
    trainer = Trainer(new_cfg, run_dir, data, progress, log, start={"model.": weights}, **kwargs)
    before = trainer.validate()
    name, value = metric(before, data.level)
    trainer.log(f"vocabulary: {shared:,} of {len(new_itos):,} words carried over from {source} "
                f"({len(new_itos) - shared:,} new, starting from the mean embedding); "
                f"valid {name} before fine-tuning {value:.2f}")
    if trainer.machine.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "transfer.json").write_text(json.dumps(
            {"source": str(source), "corpus": corpus, "shared_words": shared, "new_words": len(new_itos) - shared,
             "valid_loss_before": before, f"valid_{name}_before": value}, indent=1))
    return trainer
