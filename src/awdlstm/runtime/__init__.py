"""Where and how a model runs: the device, precision and processes (machine.py), the batch-1
kernel choice, and the full-split evaluation every part shares (evaluate.py)."""

from .evaluate import evaluate, evaluate_sums, lstm_kernel, model_device
from .machine import Machine, resolve_device

__all__ = ["evaluate", "evaluate_sums", "lstm_kernel", "model_device", "Machine", "resolve_device"]
