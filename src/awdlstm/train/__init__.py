"""Training, evaluation and checkpoints."""

from .evaluate import evaluate, metric
from .finetune import start_finetune
from .machine import Machine
from .run_folder import BEST, LAST, model_from_checkpoint
from .trainer import Interrupted, Trainer

__all__ = ["evaluate", "metric", "BEST", "LAST", "Interrupted", "Machine", "Trainer", "model_from_checkpoint",
           "start_finetune"]
