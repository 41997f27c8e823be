"""The run's configuration: the [train] and [distill] sections, the whole RunConfig stored
in checkpoints, presets, and ``--set`` overrides.

The [data] and [model] sections live with the packages that read them (data/config.py,
model/config.py); the field machinery is settings.py.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .data.config import DataConfig
from .errors import AwdlstmError
from .model.config import ModelConfig
from .settings import Validated, name_in, param, parse_value

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "DistillConfig", "RunConfig", "build_config"]


# The knobs each optimizer reads (the registry is train/optimizers.py; a test checks the
# names agree). A knob set for an optimizer that does not read it is a config error.
OPTIMIZER_KNOBS = {"sgd": (), "momentum": ("momentum", "nesterov"), "adam": ("adam_beta1",), "adagrad": (),
                   "rmsprop": ("rmsprop_alpha", "momentum")}


@dataclass
class TrainConfig(Validated):
    """Optimisation: SGD/NT-ASGD, the book schedule, or Adam; BPTT; checkpoints."""

    SECTION = "train"
    epochs: int = param(40, "maximum number of epochs", "positive")
    batch_size: int = param(20, "training batch size B (columns of the batchified stream)", "positive")
    eval_batch_size: int = param(10, "validation batch size (AWD protocol: 10)", "positive")
    test_batch_size: int = param(1, "test batch size (AWD protocol: 1)", "positive")
    bptt: int = param(70, "base BPTT length", "positive")
    variable_bptt: bool = param(True, "draw each window's length (bptt, or bptt/2 one time in 20, plus N(0, 5), at "
                          "least 5) and scale its learning rate by length / bptt")
    optimizer: str = param("sgd", "'sgd' (plain SGD, averaged under NT-ASGD), 'momentum' (SGD with train.momentum), "
                           "'adam', 'adagrad' or 'rmsprop' (train/optimizers.py)",
                           ("sgd", "momentum", "adam", "adagrad", "rmsprop"))
    momentum: float = param(0.0, "optimizer 'momentum' (needed) or 'rmsprop' (optional): the momentum factor", "prob")
    nesterov: bool = param(False, "optimizer 'momentum': Nesterov's momentum")
    rmsprop_alpha: float = param(0.0, "optimizer 'rmsprop': decay of the running mean of squared gradients "
                                 "(0: PyTorch's 0.99)", "prob")
    adam_beta1: float = param(0.9, "optimizer 'adam': decay of the running mean of gradients (PyTorch's 0.9; 0: "
                              "RMSProp with Adam's bias correction, the Mogrifier paper's optimizer)", "prob")
    schedule: str = param("ntasgd", "'ntasgd': switch to averaging on the non-monotone trigger; "
                          "'book': divide lr by lr_decay when validation does not improve; 'budget': warm "
                          "up, then decay to lr_floor as max_minutes (or, without it, the epochs) runs out, "
                          "averaging from average_from; "
                          "'stlr': slanted triangular over all epochs' batches (ULMFiT); 'none'",
                          ("ntasgd", "book", "budget", "stlr", "none"))
    lr: float = param(30.0, "initial learning rate", "positive")
    clip: float = param(0.25, "gradient clipping by global norm (0: off)", "nonneg")
    weight_decay: float = param(1.2e-6, "L2 penalty on all parameters", "nonneg")
    nonmono: int = param(5, "n of the non-monotone trigger: compare against min(history[:-n])", "positive")
    alpha: float = param(2.0, "AR coefficient on the dropped last-layer output", "nonneg")
    beta: float = param(1.0, "TAR coefficient on the last layer's output before dropout", "nonneg")
    when: list[int] = param([], "epochs after which the learning rate is divided by 10", "positive")
    warmup: float = param(0.02, "schedule 'budget': fraction of the budget over which lr rises linearly", "prob")
    decay_start: float = param(0.0, "schedule 'budget': fraction of the budget until which lr stays at its peak "
                               "(0: the decay starts right after the warm-up)", "prob")
    decay: str = param("cosine", "schedule 'budget': the decay's shape, from decay_start to the end of the budget",
                       ("cosine", "linear"))
    lr_floor: float = param(0.0, "schedule 'budget': lr at the end of the budget, as a fraction of lr", "prob")
    average_from: float = param(0.75, "schedule 'budget': fraction of the budget after which the evaluated "
                                "weights are the running average of every step (1: never)", "unit")
    lr_decay: float = param(4.0, "book schedule: divisor of lr when validation does not improve", "positive")
    stlr_cut: float = param(0.1, "schedule 'stlr': fraction of the batches over which lr rises (ULMFiT: 0.1)", "unit")
    stlr_ratio: float = param(32.0, "schedule 'stlr': how much smaller the lowest lr is than the peak (ULMFiT: 32)",
                              "positive")
    lr_layer_decay: float = param(1.0, "discriminative learning rates: each layer below the top one trains at the "
                                  "lr of the one above / this (ULMFiT: 2.6; 1: one lr for all)", "positive")
    finetune_epochs: int = param(300, "maximum epochs of `awdlstm finetune`", "positive")
    seed: int = param(141, "seed of every random draw (weights, dropout masks, BPTT lengths)")
    max_minutes: float = param(0.0, "wall-clock budget of the run in minutes (0: none)", "nonneg")
    checkpoint_minutes: float = param(5.0, "minutes between mid-epoch `last` checkpoints", "positive")
    checkpoint_batches: int = param(0, "also checkpoint every this many batches (0: off)", "nonneg")
    threads: int = param(0, "torch threads (0: PyTorch's default)", "nonneg")
    device: str = param("auto", "'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'")
    precision: str = param("fp32", "'fp32', or autocast to 'bf16' (CUDA, CPU) or 'fp16' (CUDA, with a "
                           "gradient scaler); the loss, perplexity and NT-ASGD averages stay fp32",
                           ("fp32", "bf16", "fp16"))

    def batch_size_for(self, split: str) -> int:
        """The AWD protocol: validation at eval_batch_size (10), test at test_batch_size (1)."""
        return self.test_batch_size if split == "test" else self.eval_batch_size

    def validate(self) -> None:
        read = OPTIMIZER_KNOBS[self.optimizer]
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for knob in ("momentum", "nesterov", "rmsprop_alpha", "adam_beta1"):
            if getattr(self, knob) != defaults[knob] and knob not in read:
                users = " or ".join(repr(o) for o, knobs in OPTIMIZER_KNOBS.items() if knob in knobs)
                raise AwdlstmError(f"train.{knob}={getattr(self, knob)} only acts with train.optimizer={users}; "
                                   f"now {self.optimizer!r}")
        if self.optimizer == "momentum" and not self.momentum:
            raise AwdlstmError("train.optimizer='momentum' needs train.momentum, e.g. 0.9 (0 is plain SGD: 'sgd')")
        check_device(self.device, "train.device")
        if self.schedule == "budget" and self.when:
            raise AwdlstmError(f"train.when={self.when} cannot act with train.schedule='budget' (its decay sets lr); "
                               f"drop train.when or choose another schedule")
        if self.schedule != "stlr" and (self.stlr_cut, self.stlr_ratio) != (0.1, 32.0):
            raise AwdlstmError(f"train.stlr_cut={self.stlr_cut} / train.stlr_ratio={self.stlr_ratio} only act with "
                               f"train.schedule='stlr' (now {self.schedule!r})")
        if self.stlr_ratio < 1 or self.lr_layer_decay < 1:
            raise AwdlstmError(f"train.stlr_ratio={self.stlr_ratio} and train.lr_layer_decay={self.lr_layer_decay} "
                               f"must be >= 1 (1: off)")
        if self.precision == "fp16" and self.device == "cpu":
            raise AwdlstmError("train.precision='fp16' needs a CUDA device (train.device='cpu'); "
                               "on CPU use 'bf16' or 'fp32'")


def with_device(cfg: RunConfig, device: str | None) -> RunConfig:
    """``cfg`` with train.device replaced and validated again; ``cfg`` itself when None."""
    if device is None:
        return cfg
    d = cfg.to_dict()
    d["train"]["device"] = device
    return RunConfig.from_dict(d, where="--device")


def check_device(device: str, where: str) -> None:
    """A device name this toolkit accepts: auto, cpu, cuda or cuda:N."""
    kind, _, index = device.partition(":")
    if device in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit()):
        return
    raise AwdlstmError(f"{where}={device!r} is not valid; choose auto, cpu, cuda or cuda:N")


@dataclass
class DistillConfig(Validated):
    """Knowledge distillation: the model trains on a teacher's softened distribution too."""

    SECTION = "distill"
    teacher: str = param("", "the teacher's run folder, checkpoint or model folder (empty: no distillation)")
    # T = 1 by default, the exact KL: on PTB a cpu-ptb-sized student at T = 2 with the whole
    # distribution (SGD lr 30, clip 0.25) let its last layer's output shrink towards 0 and stayed
    # near the unigram (valid ppl 681 after 10 minutes). With the cached chain rule and annealing
    # T = 2 and 3 did better than T = 1 (benchmarks/results/README.md).
    temperature: float = param(1.0, "T: both distributions are softmax(log p / T) in the soft loss", "positive")
    soft_weight: float = param(0.5, "w_soft: weight of KL(teacher_T || student_T)", "nonneg")
    hard_weight: float = param(0.5, "w_hard: weight of the cross-entropy with the corpus's next tokens", "nonneg")
    square_temperature: bool = param(True, "multiply the soft loss by T^2, which keeps its gradients' scale as T "
                                     "changes (Hinton et al. 2015)")
    top_k: int = param(0, "k > 0: the teacher's k most probable tokens per position, computed once per teacher "
                       "and corpus and memory-mapped (the rest's mass kept, shaped as the student's); 0: the "
                       "teacher runs at every step (exact)", "nonneg")

    # On a budget the pass is part of the bill (10 minutes on PTB: the fp32 pass took 1.6 of
    # them); covering part of the text buys part of the teacher's help for part of the pass.
    coverage: float = param(1.0, "with top_k: the fraction of the training text the teacher's pass covers (the "
                            "first rows of every batch column); the rest trains on the hard loss, the soft "
                            "term's weight moved onto it", "unit")
    # bf16 on CPUs with native bfloat16 instructions (AVX512-BF16, AMX) ran the pass of a
    # cpu-ptb teacher 1.6-1.8x faster (oneDNN's bf16 LSTM 2.1x, 3.5x with AMX; the top k
    # stays fp32's) and moved its distribution by a KL of 1e-4 nats per position
    # (benchmarks/teacher_pass.py). A cache made at one precision is never read at the other.
    teacher_precision: str = param("fp32", "the teacher's arithmetic: fp32, or bf16 (its matrix products and "
                                   "LSTM recurrences in bfloat16, its softmax in fp32)", ("fp32", "bf16"))

    anneal: bool = param(False, "teacher annealing (Clark et al. 2019): the soft term's weight moves linearly onto "
                         "the hard loss over the run's budget, w_soft (1 - p) on the KL and w_hard + w_soft p on "
                         "the cross-entropy at progress p")

    def validate(self) -> None:
        changed = [f.name for f in dataclasses.fields(self) if f.name != "teacher" and getattr(self, f.name) != f.default]
        if not self.teacher and changed:
            raise AwdlstmError(f"distill.{changed[0]}={getattr(self, changed[0])} only acts with a teacher; "
                               f"set distill.teacher (or use `awdlstm distill TEACHER`)")
        if self.coverage != 1 and not self.top_k:
            raise AwdlstmError(f"distill.coverage={self.coverage} is the share of the text the cached pass covers; "
                               f"it needs distill.top_k > 0 (without a cache the teacher runs on every batch)")
        if self.anneal and self.soft_weight == 0:
            raise AwdlstmError("distill.anneal=true moves the soft term's weight onto the hard loss, but "
                               "distill.soft_weight is 0; give it a positive weight or turn annealing off")
        if self.teacher and self.soft_weight == 0 and self.hard_weight == 0:
            raise AwdlstmError("distill.soft_weight and distill.hard_weight are both 0; at least one must be "
                               "positive")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "distill": DistillConfig}


@dataclass
class RunConfig:
    """Everything a run needs, as stored in its checkpoints."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> RunConfig:
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise AwdlstmError(f"{where}: unknown section [{sorted(unknown)[0]}]; valid: {', '.join(SECTIONS)}")
        parts = {}
        for name, section in SECTIONS.items():
            values = d.get(name, {})
            valid = {f.name for f in dataclasses.fields(section)}
            bad = set(values) - valid
            if bad:
                raise AwdlstmError(f"{where}: unknown config key '{name}.{sorted(bad)[0]}'; valid keys of "
                                   f"[{name}]: {', '.join(sorted(valid))}")
            parts[name] = section(**values)
        return cls(**parts)


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``key=value`` overrides; a key is ``section.field`` or a field name that only
    one section has."""
    d = {s: dict(d.get(s, {})) for s in SECTIONS}
    for item in overrides:
        if "=" not in item:
            raise AwdlstmError(f"--set {item!r}: expected key=value, e.g. model.emb_size=200")
        key, value = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
        else:
            owners = [s for s, c in SECTIONS.items() if name_in(c, key)]
            if len(owners) != 1:
                raise AwdlstmError(f"--set {key}: unknown config key; use section.key with a section of "
                                   f"{', '.join(SECTIONS)} (see `awdlstm train --help-config`)")
            section, name = owners[0], key
        if section not in SECTIONS or not name_in(SECTIONS[section], name):
            raise AwdlstmError(f"--set {key}: unknown config key; see `awdlstm train --help-config`")
        d[section][name] = parse_value(value)
    return d


PRESET_DIR = Path(__file__).parent / "presets"
DEFAULT_PRESET = "cpu-ptb"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name: str) -> dict:
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise AwdlstmError(f"unknown preset '{name}'; valid: {', '.join(preset_names())}")
    with open(path, "rb") as f:
        return tomllib.load(f)


def build_config(preset: str = DEFAULT_PRESET, overrides: list[str] = (), corpus: str | None = None) -> RunConfig:
    """Preset → ``--corpus`` → ``--set`` overrides → validated RunConfig."""
    d = load_preset(preset)
    if corpus is not None:
        d.setdefault("data", {})["corpus"] = corpus
    return RunConfig.from_dict(apply_overrides(d, list(overrides)), where=f"preset {preset}")


def describe_config() -> str:
    """Every config key with its default and description (``--help-config``)."""
    lines = []
    for name, section in SECTIONS.items():
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"  {name}.{f.name} = {default!r}\n      {f.metadata['doc']}")
    return "\n".join(lines)
