"""Tokens/s of the whole training loop (Trainer: forward, loss terms, backward, clipping,
step, schedule hooks, the per-batch agreement, progress bookkeeping), one epoch of a
generated corpus at a small shape.

    python benchmarks/loop_speed.py [--reps 3] [--lines 20000] [--size small|tiny]

``--size tiny`` (16 units) makes the Python work around the tensors most of each batch's
time: what the loop itself costs.

It runs against any checkout of awdlstm on PYTHONPATH (the epoch is ``run_epoch``, or
``_run_epoch`` in code from before the loop was rebuilt), so two versions can be compared
in one session: run it with each, alternately, on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import awdlstm
from awdlstm.config import build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic

try:
    from awdlstm.train import Trainer
except ImportError:  # pragma: no cover - older layouts
    from awdlstm.train.trainer import Trainer

SIZES = {"small": ["model.emb_size=128", "model.hidden_size=256"], "tiny": ["model.emb_size=16", "model.hidden_size=16"]}
SETS = ["model.num_layers=2", "model.weight_drop=0.3",
        "model.dropout_emb=0.1", "train.optimizer=sgd", "train.schedule=ntasgd", "train.lr=5", "train.alpha=2",
        "train.beta=1", "train.batch_size=20", "train.bptt=35", "train.epochs=1", "train.checkpoint_minutes=60"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--lines", type=int, default=20000)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    args = p.parse_args()
    torch.manual_seed(0)
    root = Path(tempfile.mkdtemp(prefix="awdlstm-loop-"))
    write_synthetic(SyntheticSpec(train_lines=args.lines, eval_lines=50, fillers=400), root / "syn")
    corpus = load_corpus(str(root / "syn"))
    cfg = build_config("tiny", SIZES[args.size] + SETS, corpus=str(root / "syn"))
    rates = []
    for rep in range(args.reps + 1):
        t = Trainer(cfg, root / f"run{rep}", corpus, progress=False, log=lambda *a: None)
        epoch = getattr(t, "run_epoch", None) or t._run_epoch
        start = time.perf_counter()
        epoch(time.monotonic())
        seconds = time.perf_counter() - start
        if rep:  # the first one warms up (kernels, allocator)
            rates.append(t.state.tokens / seconds)
    print(f"awdlstm from {Path(awdlstm.__file__).parent}: {len(corpus.train):,} training tokens, "
          f"{len(corpus.vocab)} words, size {args.size}; loop {statistics.median(rates):,.0f} tokens/s "
          f"(median of {args.reps}: {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
