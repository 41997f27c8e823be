"""A trainer's checkpoint as the sum of its parts' states, and back.

A state is one flat dict: keys ending in '.' hold a group of tensors (``model.``,
``avg.``, ``optim.``, ``rng.``, ``hidden.``, ``teacher_hidden.``), every other key a JSON
value (``state``, ``optim_groups``, ``schedules``, ...). ``write`` splits it into the
safetensors file's tensors and metadata; ``Checkpoint.state_dict`` joins an opened file back
into one dict, which ``Trainer.load_state_dict`` takes part by part. Fine-tuning and transfer
build such a dict themselves (weights and a TrainState), so every way into the loop is the
same one.

``last`` holds everything an exact resume needs; ``best`` only the weights to use.
"""

from __future__ import annotations

import torch

from ..checkpoints.checkpoint import save_checkpoint


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state_dict as tensors (``optim.<i>.<key>``) and JSON (groups, scalars)."""
    opt = optimizer.state_dict()
    return {"optim.": {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items() if torch.is_tensor(v)},
            "optim_groups": opt["param_groups"],
            "optim_scalars": {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()
                              if not torch.is_tensor(v)}}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    opt_state = {"state": {}, "param_groups": state["optim_groups"]}
    for group in ("optim.", "optim_scalars"):
        for name, v in state.get(group, {}).items():
            idx, key = name.split(".", 1)
            opt_state["state"].setdefault(int(idx), {})[key] = v
    optimizer.load_state_dict(opt_state)  # moves the state to the parameters' device


def write(path, state: dict, header: dict) -> None:
    """Write ``state`` (with ``header``: kind, config, vocabulary, ...) atomically."""
    tensors = {k: v for k, v in state.items() if k.endswith(".")}
    meta = {**header, **{k: v for k, v in state.items() if not k.endswith(".")}}
    save_checkpoint(path, tensors, meta)

