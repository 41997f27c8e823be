"""Activation regularization (AR) and temporal activation regularization (TAR), AWD-LSTM §4.6.

AR penalises large outputs of the last layer after its dropout; TAR penalises changes
between consecutive steps of the last layer's output before dropout. Training only.
"""

import torch


def ar_penalty(dropped_output: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * mean(dropped_output ** 2); dropped_output (T, B, E)."""
    return alpha * dropped_output.pow(2).mean()


def tar_penalty(raw_output: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * mean((h_t - h_{t-1}) ** 2) over t = 1..T-1; raw_output (T, B, E)."""
    if raw_output.size(0) < 2:
        return raw_output.new_zeros(())
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()
