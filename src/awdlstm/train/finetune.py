"""Fine-tuning (the AWD-LSTM recipe's second stage): restart from the best weights with
averaged SGD from the first step, until the non-monotone trigger fires."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..checkpoints.run_folder import BEST, LAST, check_vocab, corpus_for, model_from_checkpoint, open_checkpoint
from ..config import with_device
from .state import TrainState
from .trainer import Trainer


def start_finetune(run_dir: Path, progress: bool = True, log=print, device: str | None = None,
                   **kwargs) -> Trainer:
    """A Trainer in the fine-tuning phase; an interrupted fine-tuning continues instead.
    ``kwargs`` go to the Trainer (hooks, clock, validation)."""
    run_dir = Path(run_dir)
    if (run_dir / LAST).is_file():
        state = open_checkpoint(run_dir / LAST).training_state()
        if state.get("phase") == "finetune" and not state.get("done"):
            return Trainer.resume(run_dir, progress, log, device, **kwargs)
    model, vocab, cfg, best = model_from_checkpoint(run_dir / BEST)
    cfg = with_device(cfg, device)
    corpus = corpus_for(cfg, progress, best.tokenizer())  # read as the run was trained
    check_vocab(corpus.vocab, vocab.itos, run_dir / BEST, cfg.data.corpus)
    trainer = Trainer(cfg, run_dir, corpus, progress, log, start={"model.": model.state_dict()}, **kwargs)
    best_val = best.training_state().get("best_val")
    if not isinstance(best_val, (int, float)):
        best_val = trainer.validate()
    # The fine-tuning state: its own phase, epochs and history, averaging from the first step.
    state = TrainState(phase="finetune", lr=cfg.train.lr, best_val=best_val, averaging=True)
    trainer.load_state_dict({"state": dataclasses.asdict(state)})
    trainer.log(f"fine-tuning from {run_dir / BEST} (valid loss {best_val:.4f}) with averaged SGD")
    return trainer
