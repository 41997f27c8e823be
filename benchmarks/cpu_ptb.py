"""Validation perplexity over wall time on PTB, 2 CPU cores, runs given equal time.

    python benchmarks/cpu_ptb.py compare --minutes 20   # cpu-ptb vs book-ptb vs plain LSTM
    python benchmarks/cpu_ptb.py select --minutes 4     # the candidates cpu-ptb was chosen from
    python benchmarks/cpu_ptb.py study --minutes 3      # recurrent regularizers at cpu-ptb sizes
    python benchmarks/cpu_ptb.py search --minutes 4     # the budget-schedule candidates for cpu-ptb
    python benchmarks/cpu_ptb.py char --minutes 3       # the candidates for cpu-ptb-char
    python benchmarks/cpu_ptb.py successors             # AWD-LSTM, MoS and Mogrifier, the same minutes
    python benchmarks/cpu_ptb.py optimizers --minutes 4 # SGD (budget / NT-ASGD) vs momentum, Adam, Adagrad, RMSProp

The experiments at study-ptb's scale (emb 128, 2 x 384; two runs at a time, one thread each):

    python benchmarks/cpu_ptb.py batch --minutes 3 --jobs 2        # batch 10, 20, 40, 80 at equal time
    python benchmarks/cpu_ptb.py depth --minutes 3 --jobs 2        # 1 to 4 layers at equal time
    python benchmarks/cpu_ptb.py regularizers --epochs 3 --jobs 2  # every recurrent regularizer and cell, word PTB
    python benchmarks/cpu_ptb.py regularizers-long --epochs 8 --jobs 2  # none vs weight drop, to overfitting
    python benchmarks/cpu_ptb.py regularizers-char --epochs 1 --jobs 2  # the same on character PTB
    python benchmarks/cpu_ptb.py book --epochs 5 --jobs 2          # the book baseline with and without dropout

Each run is a real ``awdlstm train`` process with ``train.max_minutes`` set (or, with
``--epochs``, ``train.epochs`` and no clock: runs sharing the machine then follow the
same curve); afterwards the script reads every run's metrics.jsonl and results.json,
prints a table and writes ``<out>/curves.png`` (validation perplexity against minutes of
training; for ``--epochs``, against epochs, with the training curve dashed). A run with
results is skipped and an interrupted one resumed, so the script continues where it stopped.
``--runs NAME ...`` trains only those runs of a group; ``--threads 1`` lets two scripts share
the machine; ``--merge FILE`` adds the group's runs recorded in an earlier curves JSON (one
of benchmarks/results/, from another machine or session) to the table and the plot.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# "plain": a 2-layer LSTM LM with cpu-ptb's sizes and dropout only (fresh mask per step),
# plain SGD with lr / 4 on a plateau; none of the AWD additions.
PLAIN = ["model.dropout_emb=0", "model.weight_drop=0", "model.locked_dropout=false",
         "model.dropout_input=0.3", "model.dropout_hidden=0.3", "model.dropout_output=0.3",
         "train.alpha=0", "train.beta=0", "train.variable_bptt=false", "train.schedule=book", "train.lr=20"]

# The study compares validation perplexity; its test pass runs at batch 10 to save time.
STUDY = ["train.test_batch_size=10"]

# The 2026-11-22 regularization (the search's base) and the lighter one cpu-ptb now has.
MODERATE = ["model.dropout_emb=0.05", "model.dropout_input=0.25", "model.dropout_hidden=0.2",
            "model.dropout_output=0.3", "model.weight_drop=0.2"]
LIGHT = ["model.dropout_emb=0", "model.dropout_input=0.1", "model.dropout_hidden=0.1", "model.dropout_output=0.15",
         "model.weight_drop=0.1"]

# Candidates for the default, on top of the cpu-ptb preset of 2026-11-22 (emb 256,
# 2 x 512, batch 32, bptt 35, SGD lr 30, the AWD regularizers at moderate strength, full
# softmax, NT-ASGD with nonmono 2): OLD puts back what the preset has changed since.
OLD = ["model.head=softmax", "model.adaptive_cutoffs=[]", "train.nonmono=2", "train.decay_start=0"] + MODERATE
BUDGET = OLD + ["train.schedule=budget", "train.warmup=0.02", "train.lr_floor=0", "train.decay=cosine"]
ADAPTIVE = ["model.head=adaptive", "model.adaptive_cutoffs=[2000,5000]"]
NO_AVERAGE = ["train.average_from=1"]
# The character candidates' common ground: cpu-ptb-char's sizes and optimizer, stated here.
CHAR = ["model.emb_size=128", "model.hidden_size=512", "model.num_layers=2", "train.optimizer=adam", "train.lr=3e-3"]
SEARCH = {
    # Round 1: averaging over the last quarter of the budget.
    "256x512-full-b32": ["train.average_from=0.75"],
    "256x512-adaptive-b32": ADAPTIVE + ["train.average_from=0.75"],
    # Round 2: without averaging.
    "256x512-adaptive-b32-noavg": ADAPTIVE + NO_AVERAGE,
    "256x512-adaptive-b32-ntasgd": ADAPTIVE + ["train.schedule=ntasgd"],
    "256x512-adaptive-b64-noavg": ADAPTIVE + NO_AVERAGE + ["train.batch_size=64"],
    "400x650-adaptive-b32-noavg": ADAPTIVE + NO_AVERAGE + ["model.emb_size=400", "model.hidden_size=650"],
    # Round 3: constant lr (the ntasgd run, which never switched) beat the cosine at 4 minutes:
    # hold the peak, then decay over the last 40% (warm-up, stable, decay).
    "256x512-adaptive-b32-wsd": ADAPTIVE + ["train.decay_start=0.6", "train.decay=linear", "train.average_from=0.8"],
}
# The experiments' base without any regularizer: study-ptb (emb 128, 2 x 384, adaptive
# softmax) with every dropout, weight drop, AR/TAR and weight decay off, Adam at a constant
# 2e-3 (the char and WT103 recipes' optimizer), so that the unregularized model overfits
# within the epochs a CPU affords and each regularizer's effect shows against it.
NOREG = ["model.dropout_emb=0", "model.dropout_input=0", "model.dropout_hidden=0", "model.dropout_output=0",
         "model.weight_drop=0", "train.alpha=0", "train.beta=0", "train.weight_decay=0", "train.optimizer=adam",
         "train.lr=2e-3", "train.schedule=none", "train.average_from=1", "train.warmup=0", "train.decay_start=0",
         "train.decay=cosine"]
# One recurrent regularizer (or cell) at a time, at the settings of its paper: zoneout's
# word/char PTB 0.5 / 0.05, Semeniuta's 0.25, Gal's 0.25, the AWD-LSTM's weight drop.
REGULARIZERS = {
    "none": [],
    "weight-drop": ["model.weight_drop=0.3"],
    "zoneout": ["model.cell=zoneout", "model.zoneout_c=0.5", "model.zoneout_h=0.05"],
    "recurrent-dropout": ["model.cell=recurrent-dropout", "model.recurrent_dropout=0.25"],
    "output-zoneout": ["model.cell=output-zoneout", "model.output_zoneout=0.5"],
    "cell-dropout": ["model.cell=cell-dropout", "model.cell_dropout=0.1"],
    "variational": ["model.cell=variational", "model.variational_h=0.25"],
    "gru-zoneout": ["model.cell=gru", "model.zoneout_h=0.1"],
    "rnn-zoneout": ["model.cell=rnn", "model.zoneout_h=0.1"],
    "layernorm-lstm": ["model.cell=layernorm-lstm"],
    "batchnorm-lstm": ["model.cell=batchnorm-lstm"],
}
# Character level: study-ptb's sizes on PTB's characters (emb 64, bptt 100), every
# regularizer and cell of the word-level study.
CHAR_STUDY = ["data.corpus=ptb-char", "model.emb_size=64", "model.head=softmax", "model.adaptive_cutoffs=[]",
              "train.bptt=100"]
# The book baseline (BetterRnnlm: dropout 0.5 at each layer's input and output, a fresh mask
# per step, SGD lr 20, lr / 4 on a plateau) at study-ptb's width instead of 650.
BOOK = ["model.emb_size=256", "model.hidden_size=256"]
RUNS = {
    # The AWD-LSTM paper's batch-size finding (40-80 beat smaller ones) at equal wall time.
    "batch": {f"batch-{b}": ("study-ptb", [f"train.batch_size={b}", "train.epochs=1000"]) for b in (10, 20, 40, 80)},
    # The textbook's depth claim (2-4 layers help) at equal wall time.
    "depth": {f"layers-{n}": ("study-ptb", [f"model.num_layers={n}", "train.epochs=1000"]) for n in (1, 2, 3, 4)},
    "regularizers": {name: ("study-ptb", NOREG + sets) for name, sets in REGULARIZERS.items()},
    # The unregularized model and the least costly regularizer of the 3-epoch study, long
    # enough (--epochs 8) for the unregularized model's validation perplexity to turn up.
    "regularizers-long": {name: ("study-ptb", NOREG + REGULARIZERS[name]) for name in ("none", "weight-drop")},
    "regularizers-char": {f"char-{name}": ("study-ptb", NOREG + CHAR_STUDY + REGULARIZERS[name])
                          for name in REGULARIZERS},
    "book": {"book-dropout": ("book-ptb", BOOK + STUDY),
             "book-no-dropout": ("book-ptb", BOOK + STUDY + ["model.dropout_input=0", "model.dropout_hidden=0",
                                                             "model.dropout_output=0"])},
    "compare": {
        "cpu-ptb": ("cpu-ptb", []),
        "book-ptb": ("book-ptb", []),
        "plain-lstm": ("cpu-ptb", PLAIN),
    },
    # Recurrent regularization at cpu-ptb sizes; every other regularizer as in cpu-ptb.
    "study": {
        "none": ("cpu-ptb", ["model.weight_drop=0"] + STUDY),
        "weight-drop": ("cpu-ptb", ["model.weight_drop=0.2"] + STUDY),
        "zoneout": ("cpu-ptb", ["model.weight_drop=0", "model.cell=zoneout", "model.zoneout_c=0.5",
                                "model.zoneout_h=0.05"] + STUDY),
        "recurrent-dropout": ("cpu-ptb", ["model.weight_drop=0", "model.cell=recurrent-dropout",
                                          "model.recurrent_dropout=0.25"] + STUDY),
        "variational": ("cpu-ptb", ["model.weight_drop=0", "model.cell=variational",
                                    "model.variational_h=0.25"] + STUDY),
    },
    # The search that chose cpu-ptb with the budget schedule: first short proxies (--minutes 4),
    # then the best few at the full budget (search-full, --minutes 20).
    "search": {name: ("cpu-ptb", BUDGET + sets + STUDY) for name, sets in SEARCH.items()},
    # Character level, around the cpu-ptb-char preset (--minutes 3, then 20). Round 1 (batch
    # 128 x bptt 150, 19,200 characters a step) made about 60 Adam steps in 3 minutes and
    # learned nothing beyond unigram counts (valid 4.34 bpc): every candidate now takes far
    # smaller steps.
    "char": {
        "char-2x512-b32-t100": ("cpu-ptb-char", CHAR + ["train.batch_size=32", "train.bptt=100"] + STUDY),
        "char-2x512-b64-t100": ("cpu-ptb-char", CHAR + ["train.batch_size=64", "train.bptt=100"] + STUDY),
        "char-2x384-b32-t100": ("cpu-ptb-char", CHAR + ["train.batch_size=32", "train.bptt=100",
                                                       "model.hidden_size=384"] + STUDY),
        "char-2x512-b32-t100-nodrop": ("cpu-ptb-char", CHAR + ["train.batch_size=32", "train.bptt=100",
                                                              "model.dropout_input=0", "model.dropout_hidden=0",
                                                              "model.dropout_output=0", "model.weight_drop=0"]
                                       + STUDY),
    },
    # The full budget: the chosen default, and the same with lighter regularization (at 20
    # minutes the default's training perplexity, dropout on, was no higher than validation's).
    "search-full": {
        "cpu-ptb-moderate": ("cpu-ptb", MODERATE),
        "cpu-ptb-light": ("cpu-ptb", LIGHT),
    },
    # The successors at cpu-ptb's scale and budget (--minutes 20): AWD-LSTM (the default),
    # a mixture of softmaxes head instead of the adaptive softmax (5 experts: each expert is a
    # full 10k softmax, so the paper's 15 would see a third of the tokens), and the Mogrifier cell.
    # The MoS head takes SGD at lr 10: at cpu-ptb's 30 its training loss rose above the uniform
    # distribution's within 150 batches (the paper used 20 at batch 12; 20 rose again by batch 100).
    "successors": {
        "awd-lstm": ("cpu-ptb", STUDY),
        "mos": ("cpu-ptb", ["model.head=mos", "model.adaptive_cutoffs=[]", "model.mos_experts=5",
                            "model.dropout_latent=0.1", "train.lr=10"] + STUDY),
        # Q and R factored at rank 32 as in the paper (its PTB model: rank 84 at 912 units).
        "mogrifier": ("cpu-ptb", ["model.cell=mogrifier", "model.mogrifier_rounds=5", "model.mogrifier_rank=32"]
                      + STUDY),
    },
    # The AWD-LSTM paper's optimizer finding at cpu-ptb's scale: every optimizer under the
    # budget schedule (its warm-up and decay set each one's lr), and SGD under NT-ASGD at
    # a constant lr. Each lr is the usual one for the method (momentum: 30 x (1 - 0.9)).
    "optimizers": {
        "sgd-budget": ("cpu-ptb", STUDY),
        "sgd-ntasgd": ("cpu-ptb", ["train.schedule=ntasgd"] + STUDY),
        "momentum": ("cpu-ptb", ["train.optimizer=momentum", "train.momentum=0.9", "train.lr=3"] + STUDY),
        "adam": ("cpu-ptb", ["train.optimizer=adam", "train.lr=2e-3"] + STUDY),
        "adagrad": ("cpu-ptb", ["train.optimizer=adagrad", "train.lr=0.1"] + STUDY),
        "rmsprop": ("cpu-ptb", ["train.optimizer=rmsprop", "train.lr=1e-3"] + STUDY),
    },
    "select": {
        "256x512x2": ("cpu-ptb", []),
        "200x400x2": ("cpu-ptb", ["model.emb_size=200", "model.hidden_size=400"]),
        "400x800x2": ("cpu-ptb", ["model.emb_size=400", "model.hidden_size=800"]),
        "256x512x2-b64": ("cpu-ptb", ["train.batch_size=64"]),
    },
}

def run(name: str, preset: str, sets: list[str], budget: list[str], out: Path, data_dir: str | None,
        quiet: bool = False) -> None:
    """Train one run to the end (or resume it); ``quiet``: its output goes to <run>/train.log
    (runs side by side would interleave their progress bars)."""
    run_dir = out / name
    if (run_dir / "results.json").is_file():
        return  # finished earlier: the script resumes where it stopped
    args = [sys.executable, "-m", "awdlstm.cli", "train", "--preset", preset, "--out", str(run_dir)]
    if (run_dir / "last.safetensors").is_file():
        args = [sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(run_dir)]
    else:
        for s in sets + budget + ([f"data.data_dir={data_dir}"] if data_dir else []):
            args += ["--set", s]
    print(f"== {name}: {' '.join(args[3:])}" + (f" (output: {run_dir / 'train.log'})" if quiet else ""), flush=True)
    if quiet:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train.log", "a") as log:
            subprocess.run(args, check=True, stdout=log, stderr=subprocess.STDOUT)
        print(f"== {name}: done", flush=True)
    else:
        subprocess.run(args, check=True)


def threads_label(threads: int) -> str:
    """How many threads each run had, for a plot's axis (0: PyTorch's default, all cores)."""
    return "all threads a run" if not threads else "one thread a run" if threads == 1 else f"{threads} threads a run"


def report(group: dict, out: Path, by_epoch: bool = False, earlier: dict | None = None, threads: int = 0) -> str:
    """The table of every run of ``group`` (name -> (preset, settings)) in ``out``, and
    curves.png: validation (and, by epoch, training) against minutes or epochs. Names repeat
    across groups (each group's "none"), so the settings recorded are the group's own.
    ``earlier``: curves recorded before (a curves.json, e.g. from another machine) of runs of
    the group that are not in ``out``; they join the table and the plot as they were."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in group if (out / n / "metrics.jsonl").is_file()]  # runs that finished an epoch
    if not names:
        return f"no run in {out} has finished an epoch yet"
    char = "data.corpus=ptb-char" in (out / names[0] / "command.txt").read_text()
    unit = "bpc" if char else "ppl"
    rows = [f"| run | epochs | minutes | tok/s | best valid {unit} | test {unit} | final train {unit} | "
            f"final valid {unit} | parameters |", "|---|---|---|---|---|---|---|---|---|"]
    curves = {}
    measure = (lambda loss: loss / math.log(2)) if char else math.exp
    for name in names:
        recs = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        recs = [r for r in recs if r["event"] == "epoch" and r.get("phase", "train") == "train"]
        y = [measure(r["val_loss"]) for r in recs]
        train = [measure(r["train_loss"]) for r in recs]
        curves[name] = {"settings": list(group[name]), "minutes": [r["elapsed_s"] / 60 for r in recs],
                        f"valid_{unit}": y, f"train_{unit}": train, "tokens_per_s": [r["tokens_per_s"] for r in recs]}
        rate = max(r["tokens_per_s"] for r in recs)
        if (out / name / "results.json").is_file():
            res = json.loads((out / name / "results.json").read_text())
            rows.append(f"| {name} | {res['epochs']} | {res['elapsed_min']:.1f} | {rate:,.0f} | "
                        f"{res[f'valid_{unit}']:.3f} | {res[f'test_{unit}']:.3f} | {train[-1]:.3f} | {y[-1]:.3f} | "
                        f"{res['parameters']:,} |")
        else:  # stopped before its end (--report): the epochs it finished, no test pass
            rows.append(f"| {name} (stopped) | {len(recs)} | {recs[-1]['elapsed_s'] / 60:.1f} | {rate:,.0f} | "
                        f"{min(y):.3f} | | {train[-1]:.3f} | {y[-1]:.3f} | |")
    for name, c in (earlier or {}).items():
        if name in group and name not in curves:
            curves[name] = c
            y, train = c[f"valid_{unit}"], c[f"train_{unit}"]
            rows.append(f"| {name} (recorded earlier) | {len(y)} | {c['minutes'][-1]:.1f} | "
                        f"{max(c['tokens_per_s']):,.0f} | {min(y):.3f} | | {train[-1]:.3f} | {y[-1]:.3f} | |")
    curves = {n: curves[n] for n in group if n in curves}  # the group's order
    measure_name = "bits per character" if char else "perplexity"
    if all(len(c[f"valid_{unit}"]) == 1 for c in curves.values()):  # one epoch each: bars, not dots
        fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(curves)))
        bars = {n: c[f"valid_{unit}"][0] for n, c in reversed(curves.items())}  # the group's order, top down
        ax.barh(list(bars), list(bars.values()), color="C0")
        for row, value in enumerate(bars.values()):
            ax.text(value, row, f" {value:.3f}", va="center", fontsize=8)
        ax.set_xlabel(f"validation {measure_name} after one epoch")
        ax.grid(alpha=0.3, axis="x")
    else:
        fig, ax = plt.subplots(figsize=(7.5 if by_epoch else 7, 4.2))
        for i, (name, c) in enumerate(curves.items()):
            y = c[f"valid_{unit}"]
            x = list(range(1, len(y) + 1)) if by_epoch else c["minutes"]
            line, = ax.plot(x, y, marker=".", label=name, color=f"C{i % 10}", ls="-" if i < 10 else "-.")
            if by_epoch:
                ax.plot(x, c[f"train_{unit}"], ls="--", lw=0.8, color=line.get_color())
        ax.set_xlabel("epoch (solid: validation, dashed: training with dropout on)" if by_epoch
                      else f"minutes of training ({threads_label(threads)})")
        ax.set_ylabel(measure_name)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    (out / "curves.json").write_text(json.dumps(curves, indent=1))
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=sorted(RUNS))
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of each run")
    p.add_argument("--epochs", type=int, help="an epoch budget instead of --minutes (no clock)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each (default 1: all threads)")
    p.add_argument("--runs", nargs="+", metavar="NAME", help="train only these runs of the group (default: all)")
    p.add_argument("--threads", type=int, help="torch threads of each run (default: 1 with --jobs > 1, else "
                   "PyTorch's); two scripts side by side take 1 each")
    p.add_argument("--out", type=Path)
    p.add_argument("--data-dir", help="folder holding ptb/ (default: $AWDLSTM_DATA or the cache)")
    p.add_argument("--report", action="store_true", help="train nothing: the table and plot of the runs there")
    p.add_argument("--merge", type=Path, metavar="CURVES_JSON", help="add the group's runs recorded in this file "
                   "(an earlier curves.json, e.g. benchmarks/results/*.json) that are not in --out")
    args = p.parse_args()
    if args.epochs is not None and args.epochs < 1 or args.minutes <= 0 or args.jobs < 1:
        p.error(f"--epochs {args.epochs} / --minutes {args.minutes} / --jobs {args.jobs}: each must be positive")
    unknown = sorted(set(args.runs or ()) - set(RUNS[args.which]))
    if unknown:
        p.error(f"--runs {' '.join(unknown)}: not in group {args.which!r}; its runs: {', '.join(RUNS[args.which])}")
    threads = args.threads if args.threads is not None else (1 if args.jobs > 1 else 0)
    out = args.out or Path("runs") / f"bench-{args.which}"
    budget = ([f"train.epochs={args.epochs}", "train.max_minutes=0"] if args.epochs
              else [f"train.max_minutes={args.minutes}"]) + ([f"train.threads={threads}"] if threads else [])
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run, name, preset, sets, budget, out, args.data_dir, args.jobs > 1)
                   for name, (preset, sets) in RUNS[args.which].items()
                   if not args.report and (not args.runs or name in args.runs)]
        for f in futures:
            f.result()
    earlier = json.loads(args.merge.read_text()) if args.merge else None
    table = report(RUNS[args.which], out, by_epoch=args.epochs is not None, earlier=earlier, threads=threads)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
