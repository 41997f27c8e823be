"""Ablation (the AWD-LSTM paper's Table 4): rerun a preset with one regularizer
removed at a time, as separate processes, and tabulate the differences from the full model.

Each variant of each seed is a run folder, ``<out>/seed-<seed>/<variant>``. A variant with
``results.json`` is done and is skipped when the command runs again; one with only
``last.safetensors`` is resumed, so an interrupted ablation continues where it stopped. The
full model is fine-tuned afterwards; "− fine-tuning" is the full model before that step.
A row's figures are the median over the seeds of its perplexity and of its difference from
the same seed's reference run (``_reference``; the differences are what the seeds share).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import build_config
from ..errors import AwdlstmError

# Differences (validation, test) from the full model's 60.0 / 57.3 on PTB, Table 4 of the paper.
PAPER_DELTAS = {
    "- fine-tuning": (0.7, 1.5),
    "- NT-ASGD": (6.3, 6.4),
    "- variable BPTT": (1.3, 1.6),
    "- embedding dropout": (5.1, 5.4),
    "- weight decay": (3.7, 3.7),
    "- AR/TAR": (2.7, 3.0),
    "- reduced embedding": (8.0, 8.3),
    "- weight drop": (11.1, 11.6),
}


def variants(preset: str, sets: list[str]) -> dict[str, list[str]]:
    """Folder name -> the --set overrides of that variant."""
    cfg = build_config(preset, sets)
    # The schedule variant removes the preset's own schedule: NT-ASGD, or the budget
    # schedule's warm-up, decay and averaging (both leave a constant lr).
    schedule = {"ntasgd": {"no-nt-asgd": ["train.schedule=none"]},
                "budget": {"no-budget-schedule": ["train.schedule=none"]}}.get(cfg.train.schedule, {})
    return {
        "full": [],
        "no-weight-drop": ["model.weight_drop=0"],
        "no-embedding-dropout": ["model.dropout_emb=0"],
        "no-variable-bptt": ["train.variable_bptt=false"],
        "no-ar-tar": ["train.alpha=0", "train.beta=0"],
        "no-weight-decay": ["train.weight_decay=0"],
        **schedule,
        "no-reduced-embedding": [f"model.emb_size={cfg.model.hidden_size}"],
    }


# The schedule row: the paper removes NT-ASGD; under the budget schedule (the CPU-scale
# presets' stand-in for it: a decay and averaging planned over the budget) it removes that.
LABELS = {"no-weight-drop": "- weight drop", "no-embedding-dropout": "- embedding dropout",
          "no-variable-bptt": "- variable BPTT", "no-ar-tar": "- AR/TAR", "no-weight-decay": "- weight decay",
          "no-nt-asgd": "- NT-ASGD", "no-budget-schedule": "- NT-ASGD",
          "no-reduced-embedding": "- reduced embedding"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "awdlstm.cli", *args]


def _run(cmd: list[str], what: str, run_dir: Path) -> None:
    """One training process; its progress (a line a minute) goes to <run_dir>/train.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "a") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        last = ((run_dir / "train.log").read_text().strip().splitlines() or ["no output"])[-1]
        raise AwdlstmError(f"ablation: {what} failed: {last} (log: {run_dir / 'train.log'})")


def _train(run_dir: Path, preset: str, sets: list[str]) -> None:
    """Train to the end: a new run, or the resume of an interrupted one."""
    if (run_dir / "results.json").is_file():
        return
    if (run_dir / "last.safetensors").is_file():
        _run(_cli("train", "--resume", str(run_dir)), f"resuming {run_dir}", run_dir)
    else:
        _run(_cli("train", "--preset", preset, "--out", str(run_dir), *sum((["--set", s] for s in sets), [])),
             f"training {run_dir}", run_dir)


def _run_variant(run_dir: Path, preset: str, sets: list[str], log) -> None:
    full = run_dir.name == "full"
    if (run_dir / ("results-finetune.json" if full else "results.json")).is_file():
        return
    log(f"ablate: {run_dir.parent.name}/{run_dir.name} (progress: {run_dir / 'train.log'})")
    if not full or not (run_dir / "results-train.json").is_file():
        _train(run_dir, preset, sets)
    if not full:
        return
    if not (run_dir / "results-train.json").is_file():
        shutil.copy(run_dir / "results.json", run_dir / "results-train.json")
    log(f"ablate: {run_dir.parent.name}: fine-tuning the full model")
    _run(_cli("finetune", str(run_dir)), "fine-tuning the full model", run_dir)
    shutil.copy(run_dir / "results.json", run_dir / "results-finetune.json")


def run_ablation(preset: str, out: Path, budget: float | None, sets: list[str], jobs: int | None,
                 seeds: list[int] = (), log=print) -> str:
    """Every variant of every seed (default: the preset's own seed), ``jobs`` at a time, each
    on one thread; then the table (ablation.md) and the plot (ablation.png)."""
    sets = list(sets) + ["train.threads=1"] + ([f"train.max_minutes={budget}"] if budget else [])
    seeds = list(seeds) or [build_config(preset, sets).train.seed]
    todo = variants(preset, sets)
    jobs = jobs or max(1, os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps({"preset": preset, "sets": sets, "seeds": seeds}, indent=1))
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(_run_variant, out / f"seed-{seed}" / name, preset,
                               sets + extra + [f"train.seed={seed}"], log)
                   for seed in seeds for name, extra in todo.items()]
        for f in futures:
            f.result()
    table = ablation_table(out)
    (out / "ablation.md").write_text(table + "\n")
    plot_ablation(out)
    return table


def _seed_results(folder: Path) -> dict[str, dict]:
    """One seed's rows: label -> results.json of the run."""
    rows = {}
    full = folder / "full"
    if (full / "results-finetune.json").is_file():
        rows["full"] = json.loads((full / "results-finetune.json").read_text())
    if (full / "results-train.json").is_file():
        rows["- fine-tuning"] = json.loads((full / "results-train.json").read_text())
    for name, label in LABELS.items():
        if (folder / name / "results.json").is_file():
            rows[label] = json.loads((folder / name / "results.json").read_text())
    return rows


def _reference(label: str) -> str:
    """The run a row is compared with: the fine-tuning row with the fine-tuned full model,
    every other row (trained as the full model was, never fine-tuned) with the full model
    before fine-tuning. Fine-tuning is more training; comparing a variant that did not get
    it with a full model that did would count that training as the variant's loss."""
    return "full" if label == "- fine-tuning" else "- fine-tuning"


def _results(out: Path) -> dict[str, dict[str, list[float]]]:
    """label -> {"valid", "test", "d_valid", "d_test"}: one value per seed whose full model
    is done; the differences are from the row's reference (``_reference``) of that seed."""
    rows: dict[str, dict[str, list[float]]] = {}
    for folder in sorted(out.glob("seed-*")):
        runs = _seed_results(folder)
        if "full" not in runs:
            continue
        for label, res in runs.items():
            ref = runs[_reference(label)] if label != "full" else res
            row = rows.setdefault(label, {"valid": [], "test": [], "d_valid": [], "d_test": []})
            row["valid"].append(res["valid_ppl"])
            row["test"].append(res["test_ppl"])
            row["d_valid"].append(res["valid_ppl"] - ref["valid_ppl"])
            row["d_test"].append(res["test_ppl"] - ref["test_ppl"])
    return rows


def ablation_table(out: Path) -> str:
    rows = _results(out)
    if "full" not in rows:
        raise AwdlstmError(f"{out}: the full model has no results yet; run the ablation to the end")
    med = statistics.median
    seeds = len(rows["full"]["valid"])
    lines = ["| model | valid ppl | test ppl | Δ valid | Δ test | Δ valid per seed | paper Δ valid | paper Δ test |",
             "|---|---|---|---|---|---|---|---|",
             f"| full | {med(rows['full']['valid']):.2f} | {med(rows['full']['test']):.2f} | | | | | |"]
    for label in PAPER_DELTAS:
        if label in rows:
            r = rows[label]
            each = " / ".join(f"{d:+.1f}" for d in r["d_valid"])
            lines.append(f"| {label} | {med(r['valid']):.2f} | {med(r['test']):.2f} | {med(r['d_valid']):+.2f} | "
                         f"{med(r['d_test']):+.2f} | {each} | {PAPER_DELTAS[label][0]:+.1f} | "
                         f"{PAPER_DELTAS[label][1]:+.1f} |")
    lines.append(f"\nMedians over {seeds} seed(s). Δ: the row minus the same seed's full model before "
                 "fine-tuning (the \"- fine-tuning\" run: every variant is trained as it was and not fine-tuned); "
                 "for \"- fine-tuning\", minus the fine-tuned full model. Positive: removing the strategy hurts, "
                 "as in the paper.")
    return "\n".join(lines)


def plot_ablation(out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = _results(out)
    labels = [label for label in PAPER_DELTAS if label in rows]
    ours = [statistics.median(rows[label]["d_valid"]) for label in labels]
    paper = [PAPER_DELTAS[label][0] for label in labels]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], ours, width=0.4, label="this run (median of seeds)")
    for i, label in enumerate(labels):  # each seed's own difference
        ax.plot([i - 0.2] * len(rows[label]["d_valid"]), rows[label]["d_valid"], "k.", ms=4)
    ax.bar([i + 0.2 for i in x], paper, width=0.4, label="paper (PTB, 3 x 1150, 750 epochs)")
    ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("validation perplexity increase (symlog)")
    ax.set_yscale("symlog", linthresh=10)  # linear within ±10, logarithmic beyond: an outlier seed stays readable
    ax.axhline(0, color="black", lw=0.5)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=110)
    plt.close(fig)
