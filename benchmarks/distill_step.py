"""One training step of a distilled student against the same student alone, in one process:
forward, loss and backward of a (bptt × batch) window, the median over interleaved
repetitions, and the ratio of the distilled step's speed to the alone one's.

    python benchmarks/distill_step.py [--preset cpu-ptb] [--set model.hidden_size=256 ...]
        [--top-k 64] [--reps 15] [--threads 1]

The forms timed (w_soft = w_hard = 0.5, T = 1):
  alone       the hard loss only (the adaptive head computes log p(target) alone)
  factored    + the cached soft loss by the chain rule over the adaptive head's pieces
              (what `awdlstm distill --set distill.top_k=K` trains an adaptive student with)
  whole       + the cached soft loss over the student's whole (N, V) distribution (what
              a full-softmax student, or the adaptive one before the chain rule, pays)

The teacher's targets are drawn, not computed (a step's cost does not depend on their
values): tokens and targets from a Zipf law over the frequency-sorted vocabulary, so the
clusters get their natural share, and the top k of a Zipf-shaped random distribution.
The default student is distill_compare.py's: cpu-ptb with emb 128 and 2 × 256.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from awdlstm.config import DistillConfig, build_config
from awdlstm.model import build_model
from awdlstm.model.adaptive_softmax import factor_log_probs
from awdlstm.train.losses.distillation import cache_cutoffs, cached_soft_loss, factored_soft_loss
from awdlstm.train.losses.teacher_targets import factored_targets, top_k_targets

STUDENT = ["model.emb_size=128", "model.hidden_size=256"]
V = 10_000


def zipf(shape, generator) -> torch.Tensor:
    ranks = torch.arange(1, V + 1, dtype=torch.float64)
    return torch.multinomial((1 / ranks).float(), int(torch.tensor(shape).prod()), replacement=True,
                             generator=generator).view(shape)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu-ptb")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, STUDENT + args.set)
    t = cfg.train
    model = build_model(cfg.model, V).train()
    g = torch.Generator().manual_seed(0)
    x, y = zipf((t.bptt, t.batch_size), g), zipf((t.bptt, t.batch_size), g)
    N = y.numel()
    # The teacher: Zipf-shaped log-probabilities with noise, top k and the rest's split.
    prior = -torch.log(torch.arange(1, V + 1, dtype=torch.float32))
    teacher = F.log_softmax(prior + 2 * torch.randn(N, V, generator=g), -1)
    cuts = cache_cutoffs(args.top_k, cfg.model.head, cfg.model.adaptive_cutoffs)
    ids, lp, rest = top_k_targets(teacher, args.top_k).as_stored()[:3]
    if cuts:
        cached = factored_targets(factor_log_probs(teacher, y.reshape(-1), cuts), args.top_k).as_stored()
    soft = DistillConfig(teacher="t", top_k=args.top_k)
    hidden = model.init_hidden(t.batch_size)

    def alone():
        out = model(x, hidden, targets=y)
        return -out.target_logp.mean()

    def factored():
        out = model(x, hidden, targets=y, factors=True)
        return 0.5 * -out.target_logp.mean() + 0.5 * factored_soft_loss(out.factors, cached, soft)

    def whole():
        out = model(x, hidden)
        logp = model.log_probs(out.logits).reshape(N, V)
        return 0.5 * F.nll_loss(logp, y.reshape(-1)) + 0.5 * cached_soft_loss(logp, ids, lp, rest, soft)

    forms = {"alone": alone, "whole": whole} | ({"factored": factored} if cuts else {})
    times = {name: [] for name in forms}
    for rep in range(args.reps + 2):
        for name, step in forms.items():
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step().backward()
            if rep >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    median = {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}
    print(f"student: {args.preset} {' '.join(STUDENT + args.set)}, head {cfg.model.head}, window {t.bptt} x "
          f"{t.batch_size}, top {args.top_k}, {args.threads} thread(s), median of {args.reps}")
    for name, s in median.items():
        print(f"{name:9s} {s * 1000:8.1f} ms/step  {N / s:8,.0f} tok/s  {median['alone'] / s:5.2f}x alone")


if __name__ == "__main__":
    main()
