"""Validation perplexity over wall time on PTB, 2 CPU cores, runs given equal time.

    python benchmarks/cpu_ptb.py compare --minutes 20   # cpu-ptb vs book-ptb vs plain LSTM
    python benchmarks/cpu_ptb.py select --minutes 4     # the candidates cpu-ptb was chosen from
    python benchmarks/cpu_ptb.py study --minutes 3      # recurrent regularizers at cpu-ptb sizes

Each run is a real ``awdlstm train`` process with ``train.max_minutes`` set; afterwards
the script reads every run's metrics.jsonl and results.json, prints a table and writes
``<out>/curves.png`` (validation perplexity against minutes of training).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

# "plain": a 2-layer LSTM LM with cpu-ptb's sizes and dropout only (fresh mask per step),
# plain SGD with lr / 4 on a plateau; none of the AWD additions.
PLAIN = ["model.dropout_emb=0", "model.weight_drop=0", "model.locked_dropout=false",
         "model.dropout_input=0.3", "model.dropout_hidden=0.3", "model.dropout_output=0.3",
         "train.alpha=0", "train.beta=0", "train.variable_bptt=false", "train.schedule=book", "train.lr=20"]

# The study compares validation perplexity; its test pass runs at batch 10 to save time.
STUDY = ["train.test_batch_size=10"]

RUNS = {
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
    "select": {
        "256x512x2": ("cpu-ptb", []),
        "200x400x2": ("cpu-ptb", ["model.emb_size=200", "model.hidden_size=400"]),
        "400x800x2": ("cpu-ptb", ["model.emb_size=400", "model.hidden_size=800"]),
        "256x512x2-b64": ("cpu-ptb", ["train.batch_size=64"]),
    },
}


def run(name: str, preset: str, sets: list[str], minutes: float, out: Path, data_dir: str | None) -> None:
    run_dir = out / name
    if (run_dir / "results.json").is_file():
        return  # finished earlier: the script resumes where it stopped
    args = [sys.executable, "-m", "awdlstm.cli", "train", "--preset", preset, "--out", str(run_dir)]
    if (run_dir / "last.safetensors").is_file():
        args = [sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(run_dir)]
    else:
        for s in sets + [f"train.max_minutes={minutes}"] + ([f"data.data_dir={data_dir}"] if data_dir else []):
            args += ["--set", s]
    print(f"== {name}: {' '.join(args[3:])}", flush=True)
    subprocess.run(args, check=True)


def report(names: list[str], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["| run | epochs | minutes | best valid ppl | test ppl | parameters |", "|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in names:
        recs = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        recs = [r for r in recs if r["event"] == "epoch"]
        ax.plot([r["elapsed_s"] / 60 for r in recs], [math.exp(r["val_loss"]) for r in recs], marker=".", label=name)
        res = json.loads((out / name / "results.json").read_text())
        rows.append(f"| {name} | {res['epochs']} | {res['elapsed_min']:.1f} | {res['valid_ppl']:.2f} | "
                    f"{res['test_ppl']:.2f} | {res['parameters']:,} |")
    ax.set_xlabel("minutes of training (2 CPU cores)")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=sorted(RUNS))
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--out", type=Path)
    p.add_argument("--data-dir", help="folder holding ptb/ (default: $AWDLSTM_DATA or the cache)")
    args = p.parse_args()
    out = args.out or Path("runs") / f"bench-{args.which}"
    for name, (preset, sets) in RUNS[args.which].items():
        run(name, preset, sets, args.minutes, out, args.data_dir)
    table = report(list(RUNS[args.which]), out)
    print(table)
    (out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
