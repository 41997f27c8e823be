"""A synthetic corpus whose exact entropy per token is known, and that needs memory.

Each line is one "sentence": an opener ``a<k>`` (k uniform over K), then filler words
``w<j>`` (uniform over F), then the closer ``z<k>`` that must match the opener, then the
loader's ``<eos>``. After the opener, every position is a closer with probability q and a
filler otherwise, so the filler length is geometric (mean (1-q)/q) and a model must carry
k across the whole filler to predict the closer.

Exact entropy rate (nats/token) of an ideal predictor, by the renewal-reward theorem:
    per sentence: ln K  (opener)  +  (1/q) * h  (each of the 1/q expected stop-or-fill
                  decisions, h = H_b(q) + (1-q) ln F)  +  0  (closer is determined by k; <eos> too)
    tokens per sentence: 3 + (1-q)/q   (opener, fillers, closer, <eos>)
A model that forgets k pays an extra ln K on each closer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import AwdlstmError
from .paths import cache_root
from .token_cache import atomic_folder


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic corpus; equal specs give byte-identical files."""

    openers: int = 8
    """K: number of opener/closer pairs."""
    fillers: int = 16
    """F: number of filler words."""
    stop: float = 0.25
    """q: probability that the next position after the opener or a filler is the closer."""
    train_lines: int = 6000
    """Sentences in the training split."""
    eval_lines: int = 600
    """Sentences in each of the validation and test splits."""
    seed: int = 0
    """Seed of the generator (NumPy PCG64)."""

    def __post_init__(self):
        if self.openers < 2 or self.fillers < 1:
            raise AwdlstmError("synthetic corpus: openers must be >= 2 and fillers >= 1")
        if not 0 < self.stop < 1:
            raise AwdlstmError(f"synthetic corpus: stop={self.stop} must be in (0, 1)")
        if self.train_lines < 1 or self.eval_lines < 1:
            raise AwdlstmError("synthetic corpus: line counts must be positive")

    def entropy_per_token(self) -> float:
        """Exact entropy rate in nats per token (``<eos>`` counted as a token)."""
        q = self.stop
        h = -q * math.log(q) - (1 - q) * math.log((1 - q) / self.fillers)
        return (math.log(self.openers) + h / q) / (3 + (1 - q) / q)

    def memoryless_entropy_per_token(self) -> float:
        """What a model that cannot remember the opener attains at best."""
        q = self.stop
        return self.entropy_per_token() + math.log(self.openers) / (3 + (1 - q) / q)

    def key(self) -> str:
        return f"K{self.openers}-F{self.fillers}-q{self.stop}-n{self.train_lines}-{self.eval_lines}-s{self.seed}"


def generate_lines(spec: SyntheticSpec, n: int, rng: np.random.Generator) -> list[str]:
    lines = []
    for _ in range(n):
        k = int(rng.integers(spec.openers))
        # Geometric number of fillers: failures before the first success with p = q.
        n_fill = int(rng.geometric(spec.stop)) - 1
        words = [f"a{k}"] + [f"w{j}" for j in rng.integers(spec.fillers, size=n_fill)] + [f"z{k}"]
        lines.append(" ".join(words))
    return lines


# The labelled set: "yes" when the filler w0 occurs anywhere in the line, else "no", half
# of the lines each. The label is not in the first or last words: a classifier has to read
# the whole line.
LABEL_WORD = "w0"


def labelled_lines(spec: SyntheticSpec, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` lines ``label<TAB>text``, alternating yes and no (drawn by rejection)."""
    out = []
    while len(out) < n:
        want = "yes" if len(out) % 2 == 0 else "no"
        line = generate_lines(spec, 1, rng)[0]
        if ("yes" if LABEL_WORD in line.split() else "no") == want:
            out.append(f"{want}\t{line}")
    return out


def write_labelled_synthetic(spec: SyntheticSpec, folder) -> None:
    """Write train.tsv / valid.tsv / test.tsv of labelled lines for ``spec`` into ``folder``."""
    from pathlib import Path
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed + 1)
    for split, n in (("train", spec.train_lines), ("valid", spec.eval_lines), ("test", spec.eval_lines)):
        (folder / f"{split}.tsv").write_text("\n".join(labelled_lines(spec, n, rng)) + "\n", encoding="utf-8")


def write_synthetic(spec: SyntheticSpec, folder) -> None:
    """Write train.txt / valid.txt / test.txt for ``spec`` into ``folder``."""
    from pathlib import Path
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    for split, n in (("train", spec.train_lines), ("valid", spec.eval_lines), ("test", spec.eval_lines)):
        text = "\n".join(generate_lines(spec, n, rng)) + "\n"
        tmp = folder / f".{split}.txt.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / f"{split}.txt")


def ensure_synthetic(spec: SyntheticSpec):
    """The folder of ``spec`` in the cache, generated on first use."""
    folder = cache_root() / "corpora" / f"synthetic-{spec.key()}"
    if not all((folder / f"{s}.txt").is_file() for s in ("train", "valid", "test")):
        # Written whole under a temporary name: runs started together (an ablation's variants)
        # generate it at once, and none may read another's half-written files.
        with atomic_folder(folder) as tmp:
            write_synthetic(spec, tmp)
            (tmp / "meta.json").write_text(json.dumps({"synthetic": spec.key()}))
    return folder
