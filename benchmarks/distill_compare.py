"""Distillation at equal time: a student trained alone and the same student distilled
from a teacher, for the same minutes each, then every model's parameters, validation
perplexity and batch-1 speed.

    python benchmarks/distill_compare.py TEACHER_RUN --minutes 5 --out runs/bench-distill \\
        [--preset cpu-ptb] [--set model.hidden_size=256 ...] [--temperature 1] [--top-k 64] \\
        [--temperatures 2 20] [--jobs 2] [--distill-set distill.anneal=true ...] [--runs alone distilled+pass]

Each run is a real `awdlstm train` / `awdlstm distill` process (output in its train.log);
a finished run is reused. With --top-k K the distilled student reads the teacher's cached
top K (distill.top_k): "distilled+pass" times the one-time pass and then trains for the
minutes it left (equal time including the pass), beside "alone" with --jobs 2; "distilled"
trains for all of them (the pass already cached), and each of --temperatures gives one more
cached run (soft loss at that T, hard loss at T = 1). --jobs 2 runs two at a time on one
thread each, so the tokens/s of runs side by side compare; --runs keeps some of them (a pair
side by side). distill.teacher_precision=bf16 and distill.coverage=F among --distill-set make
the pass bf16's and cover the first F of the text.

    python benchmarks/distill_compare.py TEACHER_RUN --approximation STUDENT_RUN [--ks 16 64 256]

measures the cached loss's approximation instead: on the first windows of the training
text (batch 32, bptt 70), the soft loss from the teacher's top k (the rest's mass spread in
the student's own shape; for an adaptive student also the chain rule over its head's
pieces, the form it trains with) against the exact one over the whole vocabulary, at T = 1,
2 and 20.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

import awdlstm

STUDENT = ["model.emb_size=128", "model.hidden_size=256", "train.test_batch_size=10"]


def ms_per_token(run: Path, tokens: int = 300) -> float:
    """Median over 3 passes of one step at batch 1 (the next-word service's case)."""
    lm = awdlstm.load(str(run))
    words = [w for w in lm.vocab.itos if w != "<eos>"][:50]
    times = []
    for _ in range(3):
        state = lm.initial_state()
        start = time.perf_counter()
        for i in range(tokens):
            _, state = lm.step(state, words[i % len(words)])
        times.append((time.perf_counter() - start) / tokens * 1000)
    return sorted(times)[1]


def approximation(teacher_run: str, student_run: str, ks: list[int], windows: int = 20) -> None:
    """The relative error of the top-k loss against the exact KL, per k and T: over the whole
    distribution ("full"), and (an adaptive student) by the chain rule over its head's pieces
    ("factored", the training path: the cluster terms sampled by the targets)."""
    from awdlstm.checkpoints.run_folder import corpus_for, model_from_checkpoint
    from awdlstm.config import DistillConfig
    from awdlstm.data.batching import batchify
    from awdlstm.model.adaptive_softmax import factor_log_probs
    from awdlstm.train.losses.distillation import (
        Teacher,
        cache_cutoffs,
        cached_soft_loss,
        factored_soft_loss,
        soft_loss,
    )
    from awdlstm.train.losses.teacher_targets import factored_targets, top_k_targets

    student, vocab, cfg, ckpt = model_from_checkpoint(Path(student_run))
    student.eval()
    cuts = cache_cutoffs(1, cfg.model.head, cfg.model.adaptive_cutoffs)
    corpus = corpus_for(cfg, False, ckpt.tokenizer())
    teacher = Teacher(teacher_run, vocab.itos, torch.device("cpu"))
    source = batchify(corpus.train, 32)
    teacher.reset(32)
    hidden = student.init_hidden(32)
    batches = []  # (the student's (N, V) log-probabilities, its factors or None, the teacher's (N, V), targets)
    with torch.no_grad():
        for w in range(min(windows, (source.size(0) - 1) // 70)):
            x, y = source[w * 70:(w + 1) * 70], source[w * 70 + 1:(w + 1) * 70 + 1]
            out = student(x, hidden)
            f = student(x, hidden, targets=y, factors=True).factors if cuts else None
            hidden = out.hidden
            V = out.logits.size(-1)
            batches.append((student.log_probs(out.logits).reshape(-1, V), f,
                            teacher.log_probs(x).reshape(-1, V), y.reshape(-1)))
    forms = ["full"] + (["factored"] if cuts else [])
    print(f"{'T':>5s} {'exact':>9s} " + " ".join(f"{f + ' k=' + str(k):>22s}" for k in ks for f in forms))
    for T in (1.0, 2.0, 20.0):
        cfg_t = DistillConfig(teacher=teacher_run, temperature=T)
        exact = sum(soft_loss(q, p, cfg_t).item() for q, _, p, _ in batches) / len(batches)
        cells = []
        for k in ks:
            totals = dict.fromkeys(forms, 0.0)
            for q, f, p, y in batches:
                ids, top, rest = top_k_targets(p, k).as_stored()[:3]
                totals["full"] += cached_soft_loss(q, ids, top, rest, cfg_t).item()
                if f is not None:
                    t = factored_targets(factor_log_probs(p, y, cuts), k).as_stored()
                    totals["factored"] += factored_soft_loss(f, t, cfg_t).item()
            for form in forms:
                approx = totals[form] / len(batches)
                cells.append(f"{approx:9.4f} ({(approx - exact) / exact:+.2%})")
        print(f"{T:5g} {exact:9.4f} " + " ".join(f"{c:>22s}" for c in cells))


def one_time_pass(teacher_run: str, preset: str, sets: list[str], k: int, out: Path,
                  distill_sets: list[str] = ()) -> float:
    """Write the teacher's top-k cache for the student's corpus and batch size (what
    ``awdlstm distill --top-k`` would write before its clock starts, in the distilled runs'
    distill.teacher_precision) and return its seconds; recorded in <out>/pass.json, so a
    rerun reuses the time it measured."""
    from awdlstm.checkpoints.run_folder import corpus_for
    from awdlstm.config import build_config
    from awdlstm.train.losses.distillation import Teacher, cache_cutoffs
    from awdlstm.train.losses.teacher_targets import cache_path, teacher_targets

    record = out / "pass.json"
    if record.is_file():
        return json.loads(record.read_text())["seconds"]
    cfg = build_config(preset, [*sets, f"distill.teacher={teacher_run}", f"distill.top_k={k}", *distill_sets])
    corpus = corpus_for(cfg, False)
    cutoffs = cache_cutoffs(k, cfg.model.head, cfg.model.adaptive_cutoffs)
    start = time.perf_counter()  # loading the teacher is part of the pass
    teacher = Teacher(teacher_run, corpus.vocab.itos, torch.device("cpu"), cfg.distill.teacher_precision)
    loading = time.perf_counter() - start
    coverage = cfg.distill.coverage
    folder, _, _ = cache_path(teacher, corpus.train, cfg.train.batch_size, k, cutoffs, coverage=coverage)
    if folder.exists():  # an earlier benchmark's: the pass is timed anew, never read
        print(f"== removing the cached pass {folder} to time it anew", flush=True)
        shutil.rmtree(folder)
    start = time.perf_counter()
    teacher_targets(teacher, corpus.train, cfg.train.batch_size, k, cutoffs=cutoffs, coverage=coverage)
    seconds = loading + time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"seconds": seconds, "k": k, "batch_size": cfg.train.batch_size,
                                  "precision": cfg.distill.teacher_precision, "coverage": coverage}))
    return seconds


def tokens_per_s(run: Path) -> float:
    """Training tokens per second: the mean of the run's epoch records' rates."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["event"] == "epoch"]
    return sum(r["tokens_per_s"] for r in recs) / len(recs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teacher")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--out", default="runs/bench-distill")
    p.add_argument("--preset", default="cpu-ptb")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--temperatures", type=float, nargs="*", default=[],
                   help="with --top-k: more distilled runs (cached) at these soft temperatures, hard loss at T = 1")
    p.add_argument("--soft-weight", type=float, default=0.5)
    p.add_argument("--hard-weight", type=float, default=0.5)
    p.add_argument("--top-k", type=int, default=0, help="distill.top_k of the distilled run (0: exact)")
    p.add_argument("--distill-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the distilled runs only, e.g. distill.anneal=true")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each (default 1: all threads)")
    p.add_argument("--runs", nargs="+", metavar="NAME",
                   help="only these runs (alone, distilled+pass, distilled, distilled-T<T>), e.g. a pair side by side")
    p.add_argument("--approximation", metavar="STUDENT_RUN", help="measure the top-k loss against the exact one")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    args = p.parse_args()
    if args.approximation:
        return approximation(args.teacher, args.approximation, args.ks)
    if args.temperatures and not args.top_k:
        p.error("--temperatures needs --top-k (each run reads the one cached pass)")
    out = Path(args.out)
    threads = ["train.threads=1"] if args.jobs > 1 else []
    student = STUDENT + args.set + threads
    sets = [x for s in student for x in ("--set", s)]
    cli = [sys.executable, "-m", "awdlstm.cli"]

    def distill(temperature: float, minutes: float, name: str) -> list[str]:
        return cli + ["distill", args.teacher, "--preset", args.preset, *sets, "--minutes", f"{minutes:.3f}",
                      "--temperature", str(temperature), "--soft-weight", str(args.soft_weight),
                      "--hard-weight", str(args.hard_weight), "--set", f"distill.top_k={args.top_k}",
                      *[x for s in args.distill_set for x in ("--set", s)], "--out", str(out / name)]

    # With the cache, "distilled+pass" is the one-time pass (timed, in this process) and then
    # the minutes it left of the budget (10 minutes including the pass), side by side with
    # "alone" when --jobs 2; "distilled" gets the whole budget with the pass already done
    # (its cache is read, not rewritten), as does each of --temperatures; those wait for it.
    runs = {"alone": cli + ["train", "--preset", args.preset, *sets, "--minutes", str(args.minutes),
                            "--out", str(out / "alone")]}
    cached = threading.Event()
    if args.top_k:
        runs["distilled+pass"] = None  # its minutes are known after the pass
    else:
        cached.set()
    runs["distilled"] = distill(args.temperature, args.minutes, "distilled")
    for T in args.temperatures:
        runs[f"distilled-T{T:g}"] = distill(T, args.minutes, f"distilled-T{T:g}")

    if args.runs:
        unknown = sorted(set(args.runs) - set(runs))
        if unknown:
            p.error(f"--runs {' '.join(unknown)}: not among this command's runs ({', '.join(runs)})")
        runs = {name: cmd for name, cmd in runs.items() if name in args.runs}
        if "distilled+pass" not in runs:
            cached.set()  # the cached runs read a cache made earlier (or write it, untimed)

    def train(name: str) -> None:
        if name == "distilled+pass":
            if args.jobs > 1:
                torch.set_num_threads(1)
            try:
                pass_s = one_time_pass(args.teacher, args.preset, student, args.top_k, out, args.distill_set)
            finally:
                cached.set()  # the others never wait on a pass that failed
            print(f"== the teacher's top {args.top_k}: {pass_s / 60:.2f} minutes (once per teacher, corpus and "
                  f"batch size)", flush=True)
            if pass_s / 60 >= args.minutes:
                raise SystemExit(f"--minutes {args.minutes}: the one-time pass alone took {pass_s / 60:.2f} minutes, "
                                 f"so 'distilled+pass' would have no time to train; give more minutes")
            runs[name] = distill(args.temperature, args.minutes - pass_s / 60, name)
        elif name != "alone":
            cached.wait()
        if (out / name / "results.json").is_file():
            return  # finished earlier
        log = out / name / "train.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"== {name}: {' '.join(runs[name][2:])} (output: {log})", flush=True)
        with open(log, "a") as f:
            subprocess.run(runs[name], check=True, stdout=f, stderr=subprocess.STDOUT)

    with ThreadPoolExecutor(args.jobs) as pool:
        for future in [pool.submit(train, name) for name in list(runs)]:
            future.result()
    torch.set_num_threads(1)  # batch 1: one thread is the fair (and usually fastest) setting
    rows = {"teacher": Path(args.teacher)} | {name: out / name for name in runs}
    table = {}
    print(f"{'model':16s} {'parameters':>11s} {'tok/s':>7s} {'valid ppl':>10s} {'test ppl':>9s} {'ms/token':>9s}")
    for name, run in rows.items():
        res = json.loads((run / "results.json").read_text())
        ms, rate = ms_per_token(run), tokens_per_s(run)
        table[name] = {"parameters": res["parameters"], "valid_ppl": res["valid_ppl"], "test_ppl": res["test_ppl"],
                       "tokens_per_s": rate, "ms_per_token": ms, "minutes": res.get("elapsed_min")}
        print(f"{name:16s} {res['parameters']:>11,} {rate:>7,.0f} {res['valid_ppl']:>10.2f} {res['test_ppl']:>9.2f} "
              f"{ms:>9.2f}")
    (out / "summary.json").write_text(json.dumps(table, indent=1))
    plot({name: out / name for name in runs}, out / "curves.png", args.teacher)


def plot(runs: dict, path: Path, teacher: str) -> None:
    """Validation perplexity against the minutes since the run's clock started, one curve per
    student run (an epoch a point); "distilled+pass" starts where its one-time pass ended."""
    import math

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, run in runs.items():
        recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        recs = [r for r in recs if r["event"] == "epoch"]
        shift = 0.0
        if name == "distilled+pass" and (run.parent / "pass.json").is_file():
            shift = json.loads((run.parent / "pass.json").read_text())["seconds"] / 60
        ax.plot([shift + r["elapsed_s"] / 60 for r in recs], [math.exp(r["val_loss"]) for r in recs], "o-", label=name)
    teacher_ppl = json.loads((Path(teacher) / "results.json").read_text())["valid_ppl"]
    ax.axhline(teacher_ppl, color="gray", ls=":", label=f"teacher ({teacher_ppl:.1f})")
    ax.set(xlabel="minutes (the one-time pass included for distilled+pass)", ylabel="validation perplexity",
           yscale="log", title="PTB: the student alone and distilled, equal wall time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
