"""Ablation (the AWD-LSTM paper's Table 4): rerun a preset with one regularizer
removed at a time, as separate processes, and tabulate the differences from the full model.

Each variant is a run folder under the output folder. A variant with ``results.json`` is
done and is skipped when the command runs again; one with only ``last.safetensors`` is
resumed, so an interrupted ablation continues where it stopped. The full model is
fine-tuned afterwards; "− fine-tuning" is the full model before that step.
"""

from __future__ import annotations

import json
import os
import shutil
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


LABELS = {"no-weight-drop": "- weight drop", "no-embedding-dropout": "- embedding dropout",
          "no-variable-bptt": "- variable BPTT", "no-ar-tar": "- AR/TAR", "no-weight-decay": "- weight decay",
          "no-nt-asgd": "- NT-ASGD", "no-budget-schedule": "- budget schedule",
          "no-reduced-embedding": "- reduced embedding"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "awdlstm.cli", *args]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AwdlstmError(f"ablation: {what} failed: {last}")


def _train(run_dir: Path, preset: str, sets: list[str]) -> None:
    """Train to the end: a new run, or the resume of an interrupted one."""
    if (run_dir / "results.json").is_file():
        return
    if (run_dir / "last.safetensors").is_file():
        _run(_cli("train", "--resume", str(run_dir)), f"resuming {run_dir.name}")
    else:
        _run(_cli("train", "--preset", preset, "--out", str(run_dir), *sum((["--set", s] for s in sets), [])),
             f"training {run_dir.name}")


def _run_variant(name: str, preset: str, sets: list[str], out: Path, log) -> None:
    run_dir = out / name
    if (run_dir / ("results-finetune.json" if name == "full" else "results.json")).is_file():
        return
    log(f"ablate: {name}")
    if name != "full" or not (run_dir / "results-train.json").is_file():
        _train(run_dir, preset, sets)
    if name != "full":
        return
    if not (run_dir / "results-train.json").is_file():
        shutil.copy(run_dir / "results.json", run_dir / "results-train.json")
    log("ablate: fine-tuning the full model")
    _run(_cli("finetune", str(run_dir)), "fine-tuning the full model")
    shutil.copy(run_dir / "results.json", run_dir / "results-finetune.json")


def run_ablation(preset: str, out: Path, budget: float | None, sets: list[str], jobs: int | None, log=print) -> str:
    sets = list(sets) + ["train.threads=1"] + ([f"train.max_minutes={budget}"] if budget else [])
    todo = variants(preset, sets)
    jobs = jobs or max(1, os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps({"preset": preset, "sets": sets}, indent=1))
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(_run_variant, name, preset, sets + extra, out, log) for name, extra in todo.items()]
        for f in futures:
            f.result()
    table = ablation_table(out)
    (out / "ablation.md").write_text(table + "\n")
    plot_ablation(out)
    return table


def _results(out: Path) -> dict[str, dict]:
    rows = {}
    full = out / "full"
    if (full / "results-finetune.json").is_file():
        rows["full"] = json.loads((full / "results-finetune.json").read_text())
    if (full / "results-train.json").is_file():
        rows["- fine-tuning"] = json.loads((full / "results-train.json").read_text())
    for name, label in LABELS.items():
        if (out / name / "results.json").is_file():
            rows[label] = json.loads((out / name / "results.json").read_text())
    return rows


def ablation_table(out: Path) -> str:
    rows = _results(out)
    if "full" not in rows:
        raise AwdlstmError(f"{out}: the full model has no results yet; run the ablation to the end")
    fv, ft = rows["full"]["valid_ppl"], rows["full"]["test_ppl"]
    lines = ["| model | valid ppl | test ppl | Δ valid | Δ test | paper Δ valid | paper Δ test |",
             "|---|---|---|---|---|---|---|",
             f"| full | {fv:.2f} | {ft:.2f} | | | | |"]
    extra = [label for label in rows if label not in PAPER_DELTAS and label != "full"]  # no paper row
    for label in list(PAPER_DELTAS) + extra:
        if label in rows:
            v, t = rows[label]["valid_ppl"], rows[label]["test_ppl"]
            paper = f"{PAPER_DELTAS[label][0]:+.1f} | {PAPER_DELTAS[label][1]:+.1f}" if label in PAPER_DELTAS else " | "
            lines.append(f"| {label} | {v:.2f} | {t:.2f} | {v - fv:+.2f} | {t - ft:+.2f} | {paper} |")
    return "\n".join(lines)


def plot_ablation(out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = _results(out)
    labels = [label for label in PAPER_DELTAS if label in rows]
    ours = [rows[label]["valid_ppl"] - rows["full"]["valid_ppl"] for label in labels]
    paper = [PAPER_DELTAS[label][0] for label in labels]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], ours, width=0.4, label="this run")
    ax.bar([i + 0.2 for i in x], paper, width=0.4, label="paper (PTB)")
    ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("validation perplexity increase")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=110)
    plt.close(fig)
