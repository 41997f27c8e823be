"""Training a pixel classifier: shuffled batches (the order of epoch e drawn from seed x 1000
+ e), cross-entropy on the last state, gradient-norm clipping, validation accuracy after each
epoch, ``best`` kept by it, and ``last`` after each epoch and on a stop (Ctrl-C, SIGTERM,
the time budget) with everything an exact resume needs: weights, optimizer, the epoch and
batch reached, the generator state, the history. A progress bar shows loss, accuracy and
images/s. The run folder holds ``last.safetensors``, ``best.safetensors`` and ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoints.checkpoint import read_checkpoint, save_checkpoint
from ..checkpoints.run_folder import BEST, LAST, checkpoint_file
from ..data.pixels import PixelSet, permutation
from ..errors import AwdlstmError
from ..progress import progress_bar
from ..train.snapshot import load_optimizer_state, optimizer_state
from ..train.trainer import Interrupted
from .config import PixelConfig
from .model import PixelClassifier

KIND = "pixels"  # the task a checkpoint of this trainer names


def make_optimizer(cfg: PixelConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha)


def ordered(cfg: PixelConfig, steps: int) -> np.ndarray | None:
    return permutation(cfg.permutation_seed if cfg.permute else None, steps)


@torch.no_grad()
def accuracy(model, x: np.ndarray, y: np.ndarray, order: np.ndarray | None, batch: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` at evaluation on images x (N, T)."""
    was = model.training
    model.eval()
    right, loss = 0, 0.0
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i:i + batch] if order is None else x[i:i + batch][:, order])
        yb = torch.from_numpy(y[i:i + batch])
        scores = model(xb)
        right += int((scores.argmax(1) == yb).sum())
        loss += float(F.cross_entropy(scores, yb, reduction="sum"))
    model.train(was)
    return right / len(x), loss / len(x)


class PixelTrainer:
    def __init__(self, cfg: PixelConfig, run_dir: Path, data: PixelSet, progress: bool = True, log=print,
                 start: dict | None = None, stop_after: int | None = None):
        """``start``: a ``last`` checkpoint's state to resume; ``stop_after``: stop (as on
        Ctrl-C) after this many batches of this process (tests)."""
        self.cfg, self.run_dir, self.data, self.progress, self.log = cfg, Path(run_dir), data, progress, log
        torch.manual_seed(cfg.seed)
        self.order = ordered(cfg, data.steps)
        self.model = PixelClassifier(cfg, data.steps, data.classes)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.state = {"epoch": 1, "batch": 0, "best_valid": -1.0, "elapsed": 0.0, "history": []}
        self._stop = threading.Event()
        self._stop_after, self._done = stop_after, 0
        if start is not None:
            self.load_state_dict(start)

    # ---- state -------------------------------------------------------------------------
    def header(self, kind: str) -> dict:
        return {"kind": kind, "task": KIND, "pixels": dataclasses.asdict(self.cfg), "steps": self.data.steps,
                "classes": self.data.classes, "permutation": None if self.order is None else self.order.tolist()}

    def save(self, name: str, kind: str) -> None:
        tensors = {"model.": self.model.state_dict()}
        meta = self.header(kind)
        if kind == "last":
            opt = optimizer_state(self.optimizer)
            tensors.update({"optim.": opt["optim."], "rng.": {"cpu": torch.get_rng_state()}})
            meta.update({"state": self.state, "optim_groups": opt["optim_groups"], "optim_scalars": opt["optim_scalars"]})
        save_checkpoint(self.run_dir / name, tensors, meta)

    def load_state_dict(self, d: dict) -> None:
        self.model.load_state_dict(d["model."])
        load_optimizer_state(self.optimizer, d)
        torch.set_rng_state(d["rng."]["cpu"])
        self.state = dict(d["state"])

    # ---- the loop ----------------------------------------------------------------------
    def _batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.x["train"][idx]
        return torch.from_numpy(x if self.order is None else x[:, self.order]), torch.from_numpy(self.data.y["train"][idx])

    def run(self) -> dict:
        cfg, s = self.cfg, self.state
        self.run_dir.mkdir(parents=True, exist_ok=True)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} \
            if threading.current_thread() is threading.main_thread() else {}
        try:
            while s["epoch"] <= cfg.epochs:
                self._epoch()
            return self.finish()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        self._stop.set()

    def _epoch(self) -> None:
        cfg, s = self.cfg, self.state
        n = len(self.data.y["train"])
        order = np.random.default_rng(cfg.seed * 1000 + s["epoch"]).permutation(n)
        batches = -(-n // cfg.batch_size)
        started, seen = time.monotonic(), 0
        self.model.train()
        with progress_bar(total=batches, initial=s["batch"], desc=f"epoch {s['epoch']}", unit="batch",
                          enabled=self.progress) as bar:
            for i in range(s["batch"], batches):
                x, y = self._batch(order[i * cfg.batch_size:(i + 1) * cfg.batch_size])
                scores = self.model(x)
                loss = F.cross_entropy(scores, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
                self.optimizer.step()
                s["batch"] = i + 1
                seen += len(y)
                self._done += 1
                bar.update()
                bar.set_postfix_str(f"loss {loss.item():.3f} | acc {(scores.argmax(1) == y).float().mean():.3f} | "
                                    f"{seen / max(time.monotonic() - started, 1e-9):.0f} images/s", refresh=False)
                over = cfg.max_minutes and s["elapsed"] + time.monotonic() - started > 60 * cfg.max_minutes
                if self._stop.is_set() or over or (self._stop_after is not None and self._done >= self._stop_after):
                    s["elapsed"] += time.monotonic() - started
                    self.save(LAST, "last")
                    if over:
                        s["epoch"] = cfg.epochs + 1  # the budget ends the run: finish with what is best
                        return
                    raise Interrupted(f"stopped; resume with `awdlstm pixels train --resume {self.run_dir}`")
        s["elapsed"] += time.monotonic() - started
        acc, loss = accuracy(self.model, self.data.x["valid"], self.data.y["valid"], self.order, cfg.eval_batch_size)
        s["history"].append({"epoch": s["epoch"], "valid_acc": acc, "valid_loss": loss, "minutes": s["elapsed"] / 60})
        self.log(f"epoch {s['epoch']}: valid accuracy {acc:.2%} | loss {loss:.4f} | {s['elapsed'] / 60:.1f} min")
        if acc > s["best_valid"]:
            s["best_valid"] = acc
            self.save(BEST, "best")
        s["epoch"] += 1
        s["batch"] = 0
        self.save(LAST, "last")

    def finish(self) -> dict:
        if not (self.run_dir / BEST).is_file():  # stopped before an epoch ended: the weights so far
            self.save(BEST, "best")
        best = open_pixel_model(self.run_dir)[0]
        results = {"data": self.cfg.data, "permuted": self.cfg.permute, "cell": self.cfg.cell,
                   "epochs": len(self.state["history"]), "minutes": round(self.state["elapsed"] / 60, 2),
                   "parameters": sum(p.numel() for p in self.model.parameters()), "history": self.state["history"]}
        for split in ("valid", "test"):
            acc, loss = accuracy(best, self.data.x[split], self.data.y[split], self.order, self.cfg.eval_batch_size)
            results[f"{split}_acc"], results[f"{split}_loss"] = acc, loss
        (self.run_dir / "results.json").write_text(json.dumps(results, indent=1))
        self.log(f"best model: valid accuracy {results['valid_acc']:.2%} | test accuracy {results['test_acc']:.2%} "
                 f"({self.run_dir})")
        return results


def open_pixel_checkpoint(path: Path):
    """A run folder's best checkpoint (its last before an epoch ended), or the file itself."""
    ckpt = read_checkpoint(checkpoint_file(Path(path)))
    if ckpt.meta.get("task") != KIND:
        raise AwdlstmError(f"{ckpt.path}: not a pixel classifier (train one with `awdlstm pixels train`)")
    return ckpt


def open_pixel_model(path: Path):
    """(model in eval mode, its PixelConfig, its stored permutation or None, the checkpoint)."""
    ckpt = open_pixel_checkpoint(path)
    values = ckpt.section(PixelConfig.SECTION, "pixel settings")
    known = {f.name for f in dataclasses.fields(PixelConfig)}
    if set(values) - known:
        raise AwdlstmError(f"{ckpt.path}: unknown pixel setting {sorted(set(values) - known)[0]!r}")
    cfg = PixelConfig(**values)
    model = PixelClassifier(cfg, int(ckpt.meta["steps"]), int(ckpt.meta.get("classes", 10)))
    try:
        model.load_state_dict(ckpt.weights())
    except RuntimeError as e:
        raise AwdlstmError(f"{ckpt.path}: weights do not fit the stored settings ({str(e).splitlines()[0]})") from None
    perm = ckpt.meta.get("permutation")
    return model.eval(), cfg, None if perm is None else np.asarray(perm), ckpt
