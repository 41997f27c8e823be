"""awdlstm train, finetune and distill."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from ..checkpoints.run_folder import BEST, LAST, corpus_for, open_checkpoint
from ..commandline import Arg, command
from ..config import DEFAULT_PRESET, build_config, describe_config, preset_names
from ..errors import AwdlstmError
from ..train import Trainer, start_finetune
from ..train.transfer import start_transfer
from .common import Device, folder, progress

Sets = Annotated[list[str], Arg("override a config value, e.g. --set model.dropout_emb=0 --set train.epochs=3",
                                flag="--set", metavar="KEY=VALUE")]
Minutes = Annotated[float | None, Arg("wall-clock budget of training in minutes (train.max_minutes), overriding "
                                      "the preset's", metavar="N")]


def _run(trainer: Trainer) -> dict:
    try:
        return trainer.run()
    finally:
        trainer.machine.close()


def _refuse_existing(run_dir: Path, resume_hint: str) -> None:
    if (run_dir / LAST).exists() or (run_dir / BEST).exists():
        raise AwdlstmError(f"{run_dir} already holds a run; continue it with {resume_hint} or choose another --out")


@command("train", help="train a model (default preset: cpu-ptb)")
def train(preset: Annotated[str | None, Arg("recipe name (see --help-config); default cpu-ptb")] = None,
          corpus: Annotated[str | None, Arg("corpus name or folder, overriding the preset's")] = None,
          sets: Sets = (),
          out: Annotated[str | None, Arg("run folder (default runs/<preset>-<time>)")] = None,
          resume: Annotated[str | None, Arg("continue an interrupted run exactly; 'auto' with --out: continue the "
                                            "run in --out when it holds one, else start it there (one command "
                                            "line for torchrun --max-restarts and a scheduler's requeue)",
                                            metavar="RUN_DIR|auto")] = None,
          log=print,
          device: Device = None,
          minutes: Minutes = None,
          command_line: str | None = None,
          help_config: Annotated[bool, Arg("list every config key and the presets")] = False) -> dict | None:
    """Train a new run (or resume one). ``command_line`` is kept in the run folder
    (command.txt) for the model card of an export."""
    if help_config:
        log(describe_config() + "\n\npresets: " + ", ".join(preset_names()))
        return None
    sets = list(sets)
    if resume == "auto":
        resume = _auto_resume(preset, corpus, sets, out, device, minutes)
        if resume:
            preset = corpus = minutes = None
            sets = []
    if resume:
        if preset or corpus or sets or minutes is not None:
            raise AwdlstmError("--resume takes the config from the run's checkpoint; drop --preset, --corpus, "
                               "--set and --minutes (--device may change)")
        trainer = Trainer.resume(Path(resume), progress(), log, device)
        s = trainer.state
        done = s.batches_done if s.iterator is not None else 0  # a saved epoch end starts the next at batch 0
        trainer.log(f"resuming {resume}: {s.phase} epoch {s.epoch}, "
                    f"batch {done}, on {trainer.machine.world} process(es), "
                    f"{trainer.machine.device}")
        return _run(trainer)
    preset = DEFAULT_PRESET if preset is None else preset
    extra = ([f"train.device={device}"] if device is not None else []) + \
        ([f"train.max_minutes={minutes}"] if minutes is not None else [])
    cfg = build_config(preset, sets + extra, corpus)
    run_dir = folder(out, "--out") or Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    _refuse_existing(run_dir, f"--resume {run_dir}")
    data = corpus_for(cfg, progress())
    trainer = Trainer(cfg, run_dir, data, progress(), log)
    if command_line and trainer.machine.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "command.txt").write_text(command_line + "\n", encoding="utf-8")
    m = trainer.machine
    trainer.log(f"{preset}: {cfg.data.corpus} ({len(data.vocab):,} words), model "
                f"{trainer.model.num_parameters():,} parameters, {m.device} {m.precision}"
                f"{f', {m.world} processes' if m.distributed else ''}, run folder {run_dir}")
    return _run(trainer)


def _auto_resume(preset, corpus, sets, out, device, minutes) -> str | None:
    """``--resume auto``: the run folder to resume when ``out`` holds a resumable run, else
    None (start one there). The command line must describe the run it continues."""
    run_dir = folder(out, "--out")
    if run_dir is None:
        raise AwdlstmError("--resume auto needs --out DIR: the folder to start the run in, or to continue it from")
    if not (run_dir / LAST).is_file():
        return None  # a new run; a folder with only a best checkpoint is refused as usual
    ckpt = open_checkpoint(run_dir / LAST)
    ckpt.require_resumable()
    given = build_config(DEFAULT_PRESET if preset is None else preset,
                         sets + ([f"train.max_minutes={minutes}"] if minutes is not None else []), corpus).to_dict()
    stored = ckpt.config().to_dict()
    for d in (given, stored):
        d["train"].pop("device")  # --device may change between attempts
    if given != stored:
        key = next(f"{s}.{k}" for s in stored for k in stored[s] if given[s].get(k) != stored[s][k])
        section, name = key.split(".", 1)
        raise AwdlstmError(f"--resume auto: {run_dir} holds a run whose {key} is {stored[section][name]!r}, but this "
                           f"command line gives {given[section][name]!r}; give the run's own options, or another --out")
    return str(run_dir)


@command("distill", help="train a student model on a teacher's corpus and softened distribution: "
                         "w_soft T^2 KL(teacher_T || student_T) + w_hard CE")
def distill(teacher: Annotated[str | None, Arg("the teacher's run, checkpoint or model folder", positional=True,
                                               nargs="?", metavar="TEACHER")] = None,
            preset: Annotated[str | None, Arg("the student's recipe (default cpu-ptb); its corpus is replaced by "
                                              "the teacher's")] = None,
            sets: Annotated[list[str], Arg("override the student's config", flag="--set",
                                           metavar="KEY=VALUE")] = (),
            out: Annotated[str | None, Arg("run folder (default runs/distill-<preset>-<time>)")] = None,
            resume: Annotated[str | None, Arg("continue an interrupted distillation exactly",
                                              metavar="RUN_DIR")] = None,
            corpus: Annotated[str | None, Arg("another corpus with the teacher's vocabulary")] = None,
            log=print,
            device: Device = None,
            minutes: Annotated[float | None, Arg("wall-clock budget of training in minutes", metavar="N")] = None,
            temperature: Annotated[float | None, Arg("T (default: distill.temperature's)")] = None,
            soft_weight: Annotated[float | None, Arg("w_soft (default: distill.soft_weight's)")] = None,
            hard_weight: Annotated[float | None, Arg("w_hard (default: distill.hard_weight's)")] = None,
            square_temperature: Annotated[bool | None, Arg("leave out the T^2 factor of the soft loss",
                                                           flag="--no-square-temperature", negate=True)] = None,
            top_k: Annotated[int | None, Arg("read the teacher's top K per position from a cache made once "
                                             "(default: distill.top_k's; 0: run the teacher at every step)",
                                             metavar="K")] = None,
            command_line: str | None = None) -> dict:
    """Train a student (``preset`` with ``sets``) on the teacher's corpus with the
    distillation loss (train/losses/); ``resume`` continues an interrupted one."""
    if resume:
        if teacher:
            raise AwdlstmError("--resume takes the teacher from the run's checkpoint; drop TEACHER")
        return train(None, None, [], None, resume, log, device)
    if not teacher:
        raise AwdlstmError("distill needs TEACHER (a run folder, checkpoint or model folder) or --resume RUN_DIR")
    path = Path(teacher)
    if not path.exists():
        raise AwdlstmError(f"{teacher}: no such run folder, checkpoint or model folder (the teacher)")
    data = open_checkpoint(path).config().data
    knobs = {"temperature": temperature, "soft_weight": soft_weight, "hard_weight": hard_weight,
             "square_temperature": square_temperature, "top_k": top_k}
    # The student reads the teacher's corpus, unless --corpus names another (whose
    # vocabulary must then be the same).
    inherited = [f"data.{k}={v}" for k, v in vars(data).items()
                 if not (k == "corpus" and corpus is not None) and v != ""]
    own = [f"distill.teacher={path.resolve()}"] + [f"distill.{k}={v}" for k, v in knobs.items() if v is not None]
    preset = DEFAULT_PRESET if preset is None else preset
    out = out or str(Path("runs") / f"distill-{preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    return train(preset, corpus, inherited + list(sets) + own, out, None, log, device, minutes, command_line)


@command("finetune", help="continue from the best averaged weights with ASGD (NT-ASGD fine-tuning); with --corpus, "
                          "fine-tune on another corpus and vocabulary (ULMFiT)")
def finetune(run_dir: Annotated[str, Arg(positional=True, metavar="RUN")],
             log=print,
             device: Annotated[str | None, Arg("auto, cpu, cuda or cuda:N (default: the run's train.device)")] = None,
             corpus: Annotated[str | None, Arg("fine-tune the language model on this corpus (name or folder): "
                                               "shared words keep their embeddings, new ones start from the "
                                               "mean")] = None,
             out: Annotated[str | None, Arg("with --corpus: the new run folder (default runs/<RUN>-to-<corpus>)")] = None,
             sets: Annotated[list[str], Arg("with --corpus: override the run's config, e.g. --set "
                                            "train.schedule=stlr --set train.lr_layer_decay=2.6 --set "
                                            "train.epochs=3", flag="--set", metavar="KEY=VALUE")] = (),
             minutes: Annotated[float | None, Arg("with --corpus: wall-clock budget in minutes",
                                                  metavar="N")] = None) -> dict:
    """NT-ASGD fine-tuning of a run; with ``corpus``, language-model fine-tuning on another
    corpus and vocabulary into the run folder ``out`` (train/transfer.py)."""
    path = Path(run_dir)
    if corpus is None:
        if out is not None or sets or minutes is not None:
            raise AwdlstmError("--out, --set and --minutes go with --corpus (fine-tuning on a new corpus); "
                               "plain `finetune RUN` continues the run with averaged SGD in its own folder")
        if not path.is_dir():
            raise AwdlstmError(f"{path}: no such run folder")
        return _run(start_finetune(path, progress(), log, device))
    if not path.exists():
        raise AwdlstmError(f"{path}: no such run folder, checkpoint or model folder")
    target = folder(out, "--out") or Path("runs") / f"{path.name}-to-{Path(corpus).name}"
    _refuse_existing(target, f"`awdlstm train --resume {target}`")
    return _run(start_transfer(path, corpus, target, list(sets), minutes, progress(), log, device))
