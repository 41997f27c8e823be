"""What `awdlstm pixels train|eval` do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np

from ..commandline import Arg, command, command_group
from ..data.pixels import load_pixels
from ..errors import AwdlstmError
from .config import PixelConfig, overridden, pixel_config, preset_names
from .trainer import LAST, PixelTrainer, accuracy, open_pixel_model, ordered

command_group("pixels", "pixel-by-pixel classification: sequential / permuted MNIST and the 8x8 digits")


def _data(cfg: PixelConfig, progress: bool = True):
    return load_pixels(cfg.data, cfg.data_dir or None, progress=progress)


def _check_steps(data, steps: int, where) -> None:
    if data.steps != steps:
        raise AwdlstmError(f"{where}: the model reads {steps} pixels per image but {data.name} has {data.steps}; "
                           f"use the data it was trained on")


@command("pixels train", help="train a pixel classifier (presets: " + ", ".join(preset_names()) + ")")
def pixels_train(preset: Annotated[str | None, Arg("the recipe (default digits)")] = None,
                 sets: Annotated[list[str], Arg("override a setting, e.g. --set hidden_size=128 (see "
                                                "awdlstm/pixels/config.py)", flag="--set", metavar="KEY=VALUE")] = (),
                 out: Annotated[str | None, Arg("the run folder (default runs/pixels-<preset>)")] = None,
                 resume: Annotated[str | None, Arg("continue the run in this folder from its last checkpoint")] = None,
                 minutes: Annotated[float | None, Arg("wall-clock budget in minutes")] = None,
                 log=print, progress: bool = True) -> dict:
    if resume:
        if preset or sets or out:
            raise AwdlstmError("--resume takes the settings from the run's checkpoint; drop --preset, --set and --out")
        _, cfg, _, ckpt = open_pixel_model(Path(resume) / LAST)
        ckpt.require_resumable()
        if minutes is not None:
            cfg = overridden(cfg, [f"max_minutes={cfg.max_minutes + minutes}"])
        data = _data(cfg, progress)
        _check_steps(data, int(ckpt.meta["steps"]), ckpt.path)
        trainer = PixelTrainer(cfg, Path(resume), data, progress, log, start=ckpt.state_dict())
        log(f"resuming {resume} at epoch {trainer.state['epoch']}, batch {trainer.state['batch']}")
    else:
        name = preset or "digits"
        cfg = pixel_config(name, list(sets) + ([f"max_minutes={minutes}"] if minutes is not None else []))
        data = _data(cfg, progress)
        run_dir = Path(out) if out else Path("runs") / f"pixels-{name}"
        if (run_dir / LAST).is_file():
            raise AwdlstmError(f"--out {run_dir}: holds a run already; continue it with --resume {run_dir}, or "
                               f"choose another folder")
        trainer = PixelTrainer(cfg, run_dir, data, progress, log)
        log(f"{name}: {data.name}, {data.steps} steps{' (permuted)' if cfg.permute else ''}, "
            f"{len(data.y['train']):,} training images, {cfg.cell} x {cfg.num_layers} of {cfg.hidden_size}")
    return trainer.run()


@command("pixels eval", help="accuracy of a pixel classifier on a split")
def pixels_eval(run: Annotated[str, Arg("a run folder or checkpoint of `pixels train`", positional=True)],
                split: Annotated[str, Arg("the split", choices=("valid", "test"))] = "test",
                sets: Annotated[list[str], Arg("read other data (data=..., data_dir=...); the pixel order is the "
                                               "model's", flag="--set", metavar="KEY=VALUE")] = (),
                log=print) -> dict:
    model, trained, stored, ckpt = open_pixel_model(Path(run))
    cfg = overridden(trained, list(sets))
    order = ordered(cfg, int(ckpt.meta["steps"]))
    if (order is None) != (stored is None) or (order is not None and not np.array_equal(order, stored)):
        raise AwdlstmError(f"{ckpt.path}: the model was trained on pixels in the order of permute="
                           f"{trained.permute}, permutation_seed={trained.permutation_seed}; "
                           f"the settings given ask for another, which it cannot read")
    data = _data(cfg)
    _check_steps(data, int(ckpt.meta["steps"]), ckpt.path)
    acc, loss = accuracy(model, data.x[split], data.y[split], stored, cfg.eval_batch_size)
    log(f"{split}: accuracy {acc:.2%} | loss {loss:.4f} | {len(data.y[split]):,} images")
    return {"split": split, "accuracy": acc, "loss": loss}
