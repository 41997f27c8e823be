"""Distillation at equal time: a student trained alone and the same student distilled
from a teacher, for the same minutes each, then every model's parameters, validation
perplexity and batch-1 speed.

    python benchmarks/distill_compare.py TEACHER_RUN --minutes 5 --out runs/bench-distill \\
        [--preset cpu-ptb] [--set model.hidden_size=256 ...] [--temperature 1]

Each run is a real `awdlstm train` / `awdlstm distill` process; a finished run is reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teacher")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--out", default="runs/bench-distill")
    p.add_argument("--preset", default="cpu-ptb")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--soft-weight", type=float, default=0.5)
    p.add_argument("--hard-weight", type=float, default=0.5)
    args = p.parse_args()
    out = Path(args.out)
    sets = [x for s in STUDENT + args.set for x in ("--set", s)]
    cli = [sys.executable, "-m", "awdlstm.cli"]
    runs = {
        "alone": cli + ["train", "--preset", args.preset, *sets, "--minutes", str(args.minutes),
                        "--out", str(out / "alone")],
        "distilled": cli + ["distill", args.teacher, "--preset", args.preset, *sets, "--minutes", str(args.minutes),
                            "--temperature", str(args.temperature), "--soft-weight", str(args.soft_weight),
                            "--hard-weight", str(args.hard_weight), "--out", str(out / "distilled")],
    }
    for name, command in runs.items():
        if not (out / name / "results.json").is_file():
            print("==", " ".join(command[2:]), flush=True)
            subprocess.run(command, check=True)
    torch.set_num_threads(1)  # batch 1: one thread is the fair (and usually fastest) setting
    rows = {"teacher": Path(args.teacher)} | {name: out / name for name in runs}
    table = {}
    print(f"{'model':10s} {'parameters':>11s} {'valid ppl':>10s} {'test ppl':>9s} {'ms/token':>9s}")
    for name, run in rows.items():
        res = json.loads((run / "results.json").read_text())
        ms = ms_per_token(run)
        table[name] = {"parameters": res["parameters"], "valid_ppl": res["valid_ppl"], "test_ppl": res["test_ppl"],
                       "ms_per_token": ms}
        print(f"{name:10s} {res['parameters']:>11,} {res['valid_ppl']:>10.2f} {res['test_ppl']:>9.2f} {ms:>9.2f}")
    (out / "summary.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
