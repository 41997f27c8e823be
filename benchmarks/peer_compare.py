"""awdlstm's main job against the simplest peer, on the same machine and budget.

    python benchmarks/peer_compare.py --minutes 20 [--data-dir DIR] [--out runs/bench-peer]

Two runs, one after the other, each with the same minutes of training (validation is
not charged to either clock):

- ``awdlstm``: ``awdlstm train --minutes M`` with every other setting at its default;
- ``peer``: a plain-PyTorch re-implementation of PyTorch's word_language_model example
  run as its README's tied command: embedding 200 → dropout 0.2 → 2-layer ``nn.LSTM``
  of 200 (dropout 0.2 between layers) → dropout 0.2 → decoder tied to the embedding;
  SGD at lr 20 applied by hand, gradient norm clipped to 0.25, lr / 4 whenever an
  epoch's validation loss does not improve; batch 20, bptt 35, evaluation batch 10.

Both read PTB (``<eos>`` at every line end). The script prints the two validation
perplexity curves over minutes of training and writes ``<out>/peer_compare.png`` and
``<out>/peer_compare.json``. A run already finished in ``<out>`` is reused.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn


def read_ptb(folder: Path) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """The example's corpus: words in order of first appearance, ``<eos>`` per line."""
    vocab: dict[str, int] = {}
    splits = {}
    for split in ("train", "valid", "test"):
        ids = []
        for line in (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            for w in line.split() + ["<eos>"]:
                ids.append(vocab.setdefault(w, len(vocab)))
        splits[split] = torch.tensor(ids, dtype=torch.long)
    return vocab, splits


def batchify(ids: torch.Tensor, bsz: int) -> torch.Tensor:
    n = ids.size(0) // bsz
    return ids[: n * bsz].view(bsz, n).t().contiguous()  # (n, bsz)


class PeerLM(nn.Module):
    def __init__(self, ntoken: int, size: int = 200, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout)
        self.decoder = nn.Linear(size, ntoken)
        self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def evaluate(model, data: torch.Tensor, bptt: int = 35) -> float:
    model.eval()
    total, hidden = 0.0, None
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            n = min(bptt, data.size(0) - 1 - i)
            out, hidden = model(data[i:i + n], hidden)
            total += nn.functional.cross_entropy(out.view(-1, out.size(-1)), data[i + 1:i + 1 + n].reshape(-1),
                                                 reduction="sum").item()
    return total / (data.size(0) - 1) / data.size(1)


def train_peer(folder: Path, minutes: float, out: Path, seed: int = 1111) -> dict:
    """The peer recipe for ``minutes`` of training; the curve and final figures as a dict."""
    torch.manual_seed(seed)
    vocab, splits = read_ptb(folder)
    train, valid, test = batchify(splits["train"], 20), batchify(splits["valid"], 10), batchify(splits["test"], 10)
    model = PeerLM(len(vocab))
    lr, bptt, clip, best, best_state = 20.0, 35, 0.25, math.inf, None
    elapsed, epoch, curve, budget = 0.0, 0, [], minutes * 60
    while elapsed < budget:
        epoch += 1
        model.train()
        hidden, start, tokens = None, time.monotonic(), 0
        for i in range(0, train.size(0) - 1, bptt):
            n = min(bptt, train.size(0) - 1 - i)
            x, y = train[i:i + n], train[i + 1:i + 1 + n]
            hidden = None if hidden is None else tuple(h.detach() for h in hidden)
            model.zero_grad()
            logits, hidden = model(x, hidden)
            nn.functional.cross_entropy(logits.view(-1, len(vocab)), y.reshape(-1)).backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            tokens += y.numel()
            if elapsed + time.monotonic() - start >= budget:
                break
        elapsed += time.monotonic() - start
        val = evaluate(model, valid)
        curve.append({"epoch": epoch, "minutes": elapsed / 60, "valid_ppl": math.exp(val), "lr": lr,
                      "tokens_per_s": tokens / (time.monotonic() - start)})
        print(f"peer epoch {epoch} | {elapsed / 60:5.1f} min | valid ppl {math.exp(val):7.2f} | lr {lr:g}", flush=True)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        else:
            lr /= 4.0
    model.load_state_dict(best_state)
    result = {"curve": curve, "valid_ppl": math.exp(best), "test_ppl": math.exp(evaluate(model, test)),
              "parameters": sum(p.numel() for p in model.parameters()), "minutes": elapsed / 60}
    (out / "peer.json").write_text(json.dumps(result, indent=1))
    return result


def train_awdlstm(minutes: float, out: Path, data_dir: str) -> dict:
    run_dir = out / "awdlstm"
    if not (run_dir / "results.json").is_file():
        cmd = [sys.executable, "-m", "awdlstm.cli", "train"]
        if (run_dir / "last.safetensors").is_file():  # interrupted earlier: finish that run
            cmd += ["--resume", str(run_dir)]
        else:
            cmd += ["--minutes", str(minutes), "--out", str(run_dir)]
        subprocess.run(cmd, check=True, env={**os.environ, "AWDLSTM_DATA": data_dir})
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    res = json.loads((run_dir / "results.json").read_text())
    curve = [{"epoch": r["epoch"], "minutes": r["elapsed_s"] / 60, "valid_ppl": math.exp(r["val_loss"]),
              "lr": r["lr"], "tokens_per_s": r["tokens_per_s"]} for r in recs if r["event"] == "epoch"]
    return {"curve": curve, "valid_ppl": res["valid_ppl"], "test_ppl": res["test_ppl"],
            "parameters": res["parameters"], "minutes": res["elapsed_min"]}


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, r in results.items():
        ax.plot([p["minutes"] for p in r["curve"]], [p["valid_ppl"] for p in r["curve"]], marker=".",
                label=f"{name} (best {r['valid_ppl']:.1f})")
    ax.set_xlabel("minutes of training")
    ax.set_ylabel("PTB validation perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--out", type=Path, default=Path("runs") / "bench-peer")
    p.add_argument("--data-dir", help="folder holding ptb/ (default: $AWDLSTM_DATA)")
    args = p.parse_args()
    data_dir = args.data_dir or os.environ.get("AWDLSTM_DATA")
    if not data_dir or not (Path(data_dir) / "ptb" / "train.txt").is_file():
        sys.exit("peer_compare: name a folder holding ptb/train.txt with --data-dir or $AWDLSTM_DATA")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"awdlstm": train_awdlstm(args.minutes, args.out, data_dir)}
    peer_file = args.out / "peer.json"
    results["peer"] = (json.loads(peer_file.read_text()) if peer_file.is_file()
                       else train_peer(Path(data_dir) / "ptb", args.minutes, args.out))
    (args.out / "peer_compare.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "peer_compare.png")
    for name, r in results.items():
        points = ", ".join(f"{p['minutes']:.1f} min {p['valid_ppl']:.1f}" for p in r["curve"])
        print(f"{name}: {r['parameters']:,} parameters | best valid ppl {r['valid_ppl']:.2f} | test ppl "
              f"{r['test_ppl']:.2f} | curve: {points}")
    print(f"plot: {args.out / 'peer_compare.png'}")


if __name__ == "__main__":
    main()
