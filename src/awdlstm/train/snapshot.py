"""Checkpoint assembly and restore for a Trainer.

``last`` holds everything an exact resume needs: weights, the NT-ASGD average, optimizer
and gradient-scaler state, generator states, and, mid-epoch, the hidden state carried
between windows. The hidden state is stored for the whole batch (gathered from every
process), so a run resumes with a different number of processes: each takes its block
of columns back out. ``best`` holds only the weights to use (the average once it is on).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

from .checkpoint import Checkpoint, save_checkpoint
from .run_folder import BEST, LAST
from .state import TrainState

if TYPE_CHECKING:
    from .trainer import Trainer


def _meta(tr: Trainer, kind: str, **extra) -> dict:
    return {"kind": kind, "config": tr.cfg.to_dict(), "vocab": tr.corpus.vocab.itos,
            "level": tr.corpus.level, "tokenizer": tr.corpus.tokenizer,
            "state": dataclasses.asdict(tr.state), **extra}


def save_last(tr: Trainer) -> None:
    """Collective when several processes train (the hidden state is gathered); rank 0 writes."""
    hidden = {}  # the student's state, and a teacher's, whole-batch
    if tr.hidden is not None and tr.state.iterator is not None:
        B = tr.cfg.train.batch_size
        states = {"hidden.": tr.hidden}
        if tr.teacher is not None and tr.teacher.hidden is not None:
            states["teacher_hidden."] = tr.teacher.hidden
        hidden = {prefix: {f"{i}.{n}": tr.machine.gather_columns(t, 1, B)
                           for i, (h, c) in enumerate(state) for n, t in (("h", h), ("c", c))}
                  for prefix, state in states.items()}
    if not tr.machine.is_main:
        return
    opt = tr.optimizer.state_dict()
    groups = {"model.": tr.model.state_dict(), "rng.": tr.machine.rng_state(),
              "optim.": {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()
                         if torch.is_tensor(v)}}
    if tr.average is not None:
        groups["avg."] = tr.average.state_dict()
    groups.update(hidden)
    extra = {"optim_groups": opt["param_groups"],
             "optim_scalars": {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()
                               if not torch.is_tensor(v)}}
    if tr.scaler is not None:
        extra["grad_scaler"] = tr.scaler.state_dict()
    save_checkpoint(tr.run_dir / LAST, groups, _meta(tr, "last", **extra))


def save_best(tr: Trainer) -> None:
    if tr.machine.is_main:
        save_checkpoint(tr.run_dir / BEST, {"model.": tr.eval_model().state_dict()},
                       _meta(tr, "best", from_average=tr.state.averaging))


def restore(tr: Trainer, ckpt: Checkpoint) -> None:
    """Put a resumable checkpoint's state (``Trainer.resume`` checked that it is one) into
    a freshly built Trainer with the same config."""
    device = tr.machine.device
    tr.state = TrainState.from_dict(ckpt.meta["state"], str(ckpt.path))
    tr.model.load_state_dict(ckpt.tensors["model."])
    if tr.state.averaging:
        tr.start_averaging()
        tr.average.load_state_dict(ckpt.tensors["avg."])
    tr.optimizer = tr.make_optimizer()
    opt_state = {"state": {}, "param_groups": ckpt.meta["optim_groups"]}
    for name, t in ckpt.tensors.get("optim.", {}).items():
        idx, key = name.split(".", 1)
        opt_state["state"].setdefault(int(idx), {})[key] = t
    for name, v in ckpt.meta.get("optim_scalars", {}).items():
        idx, key = name.split(".", 1)
        opt_state["state"].setdefault(int(idx), {})[key] = v
    tr.optimizer.load_state_dict(opt_state)  # moves the state to the parameters' device
    if tr.scaler is not None and "grad_scaler" in ckpt.meta:
        tr.scaler.load_state_dict(ckpt.meta["grad_scaler"])
    tr.machine.set_rng_state(ckpt.tensors["rng."])
    start, end = tr.machine.block(tr.cfg.train.batch_size)

    def block(h: dict, layers: int):
        return [tuple(h[f"{i}.{n}"][:, start:end].to(device) for n in ("h", "c")) for i in range(layers)]

    if "hidden." in ckpt.tensors:
        tr.hidden = block(ckpt.tensors["hidden."], len(tr.model.layers))
    if tr.teacher is not None and "teacher_hidden." in ckpt.tensors:
        tr.teacher.hidden = block(ckpt.tensors["teacher_hidden."], len(tr.teacher.model.layers))
