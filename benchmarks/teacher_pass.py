"""The teacher's one-time pass (distill.top_k) in fp32 and in bf16 (distill.teacher_precision):
its speed, and what bf16 moves in the targets it writes.

    python benchmarks/teacher_pass.py TEACHER_RUN [--preset cpu-ptb] [--set ...] [--top-k 64]
        [--tokens 200000] [--reps 3] [--threads 1]

Speed: the pass (teacher forward, top k, the writes into the memory-mapped cache; what
``awdlstm distill`` runs before its clock starts) over the first --tokens of the training
text at the student's batch size and cutoffs, fp32 and bf16 interleaved, the median of
--reps each, in tokens/s, and the whole corpus's pass in minutes at that rate.

Approximation, on the first 40 windows of 70 rows of the same text: the teacher's log-loss
on its next tokens in both arithmetics, the KL(fp32 ‖ bf16) of its next-token distribution
per position (nats), and how often the two keep the same top k set (shortlist and cluster).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from distill_step import STUDENT  # distill_compare.py's student

from awdlstm.checkpoints.run_folder import corpus_for
from awdlstm.config import build_config
from awdlstm.data.batching import batchify
from awdlstm.train.losses.distillation import Teacher, cache_cutoffs
from awdlstm.train.losses.teacher_targets import teacher_targets, top_k_targets


def time_pass(teacher: Teacher, ids, batch_size: int, k: int, cutoffs) -> float:
    """Seconds of one pass written into a fresh folder (never a cache hit)."""
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        teacher_targets(teacher, ids, batch_size, k, lambda *a: None, False, root=Path(root), cutoffs=cutoffs)
        return time.perf_counter() - start


@torch.no_grad()
def compare(fp32: Teacher, bf16: Teacher, ids, batch_size: int, k: int, cutoffs, windows: int = 40) -> dict:
    source = batchify(ids, batch_size)
    fp32.reset(batch_size)
    bf16.reset(batch_size)
    nll = {"fp32": 0.0, "bf16": 0.0}
    kl = same = positions = 0.0
    for w in range(min(windows, (source.size(0) - 1) // 70)):
        x, y = source[w * 70:(w + 1) * 70], source[w * 70 + 1:(w + 1) * 70 + 1].reshape(-1)
        a = fp32.log_probs(x).reshape(y.numel(), -1)
        b = bf16.log_probs(x).reshape(y.numel(), -1)
        nll["fp32"] -= a.gather(1, y[:, None]).sum().item()
        nll["bf16"] -= b.gather(1, y[:, None]).sum().item()
        kl += (a.exp() * (a - b)).sum().item()
        width = cutoffs[0] if cutoffs else a.size(1)  # the sets the cache keeps: the shortlist's top k
        ta, tb = top_k_targets(a[:, :width], k), top_k_targets(b[:, :width], k)
        same += (ta.ids.sort(1).values == tb.ids.sort(1).values).all(1).sum().item()
        positions += y.numel()
    return {"ppl_fp32": float(torch.tensor(nll["fp32"] / positions).exp()),
            "ppl_bf16": float(torch.tensor(nll["bf16"] / positions).exp()),
            "kl": kl / positions, "same_top_k": same / positions}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teacher")
    p.add_argument("--preset", default="cpu-ptb")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, STUDENT + args.set)
    corpus = corpus_for(cfg, False)
    cutoffs = cache_cutoffs(args.top_k, cfg.model.head, cfg.model.adaptive_cutoffs)
    B = cfg.train.batch_size
    teachers = {prec: Teacher(args.teacher, corpus.vocab.itos, torch.device("cpu"), prec) for prec in ("fp32", "bf16")}
    ids = corpus.train[:args.tokens]
    times = {prec: [] for prec in teachers}
    for _ in range(args.reps):
        for prec, teacher in teachers.items():
            times[prec].append(time_pass(teacher, ids, B, args.top_k, cutoffs))
    print(f"teacher pass over {len(ids):,} tokens (batch {B}, top {args.top_k}, cutoffs {list(cutoffs)}, "
          f"{args.threads} thread(s)):")
    rate = {}
    for prec, ts in times.items():
        rate[prec] = len(ids) / statistics.median(ts)
        print(f"  {prec}: {rate[prec]:>8,.0f} tokens/s   the whole training text ({len(corpus.train):,} tokens): "
              f"{len(corpus.train) / rate[prec] / 60:.2f} min")
    print(f"  bf16 / fp32: {rate['bf16'] / rate['fp32']:.2f}x")
    c = compare(teachers["fp32"], teachers["bf16"], corpus.train, B, args.top_k, cutoffs)
    print(f"approximation (first 40 windows): teacher ppl fp32 {c['ppl_fp32']:.3f}, bf16 {c['ppl_bf16']:.3f}; "
          f"KL(fp32 || bf16) {c['kl']:.2e} nats/position; the same top-{args.top_k} set at "
          f"{c['same_top_k']:.1%} of positions")


if __name__ == "__main__":
    main()
