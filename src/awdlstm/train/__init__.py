"""Training, evaluation and checkpoints (SPEC §3, §5)."""

from .evaluate import evaluate, metric
from .trainer import BEST, LAST, Interrupted, Trainer, model_from_checkpoint, start_finetune

__all__ = ["evaluate", "metric", "BEST", "LAST", "Interrupted", "Trainer", "model_from_checkpoint", "start_finetune"]
