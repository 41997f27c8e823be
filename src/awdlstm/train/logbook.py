"""A run's records: ``metrics.jsonl`` (one JSON object per event), TensorBoard scalars when
``tensorboard`` is installed, and the learning-curve plot. Only the main process keeps them."""

from __future__ import annotations

import json
from pathlib import Path

from .plot import plot_curve


def read_records(run_dir: Path) -> list[dict]:
    """The run's metrics.jsonl records. A run killed between logging an epoch and saving
    `last` logs that epoch again after the resume: the latest record of each (phase, epoch)
    is kept."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return list({(r.get("phase"), r.get("epoch")): r for r in rows}.values())


class Logbook:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._tb = None

    def record(self, rec: dict) -> None:
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self._tb = False
        if self._tb and rec.get("event") == "epoch":
            step = len(self.records())
            for k in ("train_loss", "val_loss", "lr"):
                self._tb.add_scalar(k, rec[k], step)

    def records(self) -> list[dict]:
        return read_records(self.run_dir)

    def plot(self, title: str, level: str) -> None:
        if self.enabled:
            plot_curve(self.records(), self.run_dir / "curve.png", title, level)
