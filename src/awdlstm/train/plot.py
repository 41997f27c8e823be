"""The learning-curve plot of a run: train and validation perplexity per epoch."""

from __future__ import annotations

from pathlib import Path

from ..data.metrics import metric


def plot_curve(records: list[dict], path: Path, title: str, level: str = "word") -> None:
    """Write ``path`` (PNG): train and validation ppl (or bpc) per epoch; the NT-ASGD switch
    and any fine-tuning start are marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r for r in records if r.get("event") == "epoch"]
    if not epochs:
        return
    conv = lambda l: metric(l, level)[1]  # noqa: E731
    unit = "bits per character" if level == "char" else "perplexity"
    x = list(range(1, len(epochs) + 1))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, [conv(r["train_loss"]) for r in epochs], label="train", marker=".")
    ax.plot(x, [conv(r["val_loss"]) for r in epochs], label="validation", marker=".")
    for i, r in enumerate(epochs, start=1):
        if r.get("switched"):
            ax.axvline(i, color="gray", ls="--", lw=1)
            ax.text(i, ax.get_ylim()[1], " ASGD", va="top", fontsize=8, color="gray")
        if r.get("phase") == "finetune" and (i == 1 or epochs[i - 2].get("phase") != "finetune"):
            ax.axvline(i - 0.5, color="purple", ls=":", lw=1)
            ax.text(i - 0.5, ax.get_ylim()[1], " finetune", va="top", fontsize=8, color="purple")
    if level != "char":
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
