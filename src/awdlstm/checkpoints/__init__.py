"""Reading and writing trained models: checkpoints, run folders and model folders."""

from .checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from .run_folder import BEST, LAST, model_from_checkpoint, open_checkpoint

__all__ = ["Checkpoint", "read_checkpoint", "save_checkpoint", "BEST", "LAST", "model_from_checkpoint",
           "open_checkpoint"]
