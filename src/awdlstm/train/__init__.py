"""Training: the loop (trainer.py), its schedules (schedules/), loss terms (losses/) and
hooks (hooks.py), fine-tuning and transfer."""

from .finetune import start_finetune
from .trainer import Interrupted, Trainer

__all__ = ["Interrupted", "Trainer", "start_finetune"]
