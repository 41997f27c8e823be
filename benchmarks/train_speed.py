"""Training throughput (tokens/s) of awdlstm models vs a plain nn.LSTM LM of the same sizes.

    python benchmarks/train_speed.py [--shapes awd-ptb small] [--variants awd] [--reps 7]

Variants (see VARIANTS): ``awd`` = every AWD regularizer on (embedding, locked and weight
drop, AR/TAR) on the fused kernel; ``zoneout`` = the per-step zoneout layer (z_c 0.5, z_h
0.05) and nothing else; ``awd-zoneout`` = zoneout with every AWD regularizer; ``mos`` and
``mogrifier`` = the mixture-of-softmaxes head (15 experts) and the Mogrifier cell (5 rounds),
each with every AWD regularizer; ``mogrifier-plain`` and ``mogrifier-rank32`` the Mogrifier
alone, full-rank and factored at rank 32. The zoneout paper's other cells, each alone and against
PyTorch's fused cell of its kind (``plain-gru``, ``plain-rnn``; else ``plain``, nn.LSTM):
``gru`` (fused), ``gru-zoneout`` (z_h 0.1), ``gru-dropout`` (recurrent dropout 0.25),
``rnn-zoneout`` (z_h 0.1), ``layernorm-lstm``, ``batchnorm-lstm`` and ``batchnorm-zoneout``
(z_c 0.5, z_h 0.05).
Targets: awd >= 0.95x plain on both shapes; zoneout >= 0.85x (small) and >= 0.75x (awd-ptb);
mogrifier-rank32 >= 0.9x (small).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import SHAPES, PlainLM, interleaved, ratio, train_step_fn  # noqa: E402

from awdlstm import ModelConfig, build_model  # noqa: E402
from awdlstm.model import ar_penalty, tar_penalty  # noqa: E402

V, B, BPTT = 10_000, 20, 70


NO_REG = dict(dropout_emb=0, dropout_input=0, dropout_hidden=0, dropout_output=0, weight_drop=0)
ZONEOUT = dict(cell="zoneout", zoneout_c=0.5, zoneout_h=0.05)
VARIANTS = {
    "awd": {},
    "zoneout": {**NO_REG, **ZONEOUT, "ar_tar": False},
    "awd-zoneout": ZONEOUT,
    # The successors with every AWD regularizer: a 15-expert mixture of softmaxes head, and
    # the Mogrifier cell with 5 rounds.
    "mos": {"head": "mos", "mos_experts": 15, "dropout_latent": 0.29},
    "mogrifier": {"cell": "mogrifier", "mogrifier_rounds": 5},
    # The Mogrifier alone (no other regularizer, as the plain LSTM), full-rank and with Q, R
    # factored at rank 32 (each round two thin products).
    "mogrifier-plain": {**NO_REG, "cell": "mogrifier", "mogrifier_rounds": 5, "ar_tar": False},
    "mogrifier-rank32": {**NO_REG, "cell": "mogrifier", "mogrifier_rounds": 5, "mogrifier_rank": 32,
                         "ar_tar": False},
    "gru": {**NO_REG, "cell": "gru", "ar_tar": False},
    "gru-zoneout": {**NO_REG, "cell": "gru", "zoneout_h": 0.1, "ar_tar": False},
    "gru-dropout": {**NO_REG, "cell": "gru", "recurrent_dropout": 0.25, "ar_tar": False},
    "rnn-zoneout": {**NO_REG, "cell": "rnn", "zoneout_h": 0.1, "ar_tar": False},
    "layernorm-lstm": {**NO_REG, "cell": "layernorm-lstm", "ar_tar": False},
    "batchnorm-lstm": {**NO_REG, "cell": "batchnorm-lstm", "ar_tar": False},
    "batchnorm-zoneout": {**NO_REG, "cell": "batchnorm-lstm", "zoneout_c": 0.5, "zoneout_h": 0.05, "ar_tar": False},
}
BASE = {v: ("plain-gru" if v.startswith("gru") else "plain-rnn" if v.startswith("rnn") else "plain") for v in VARIANTS}


def awd_step(emb, hidden, layers, ar_tar=True, **overrides):
    cfg = ModelConfig(emb_size=emb, hidden_size=hidden, num_layers=layers, **overrides)
    model = build_model(cfg, V).train()

    def forward(x, y):
        out = model(x, model.init_hidden(B), targets=y)  # every head gives log p(target)
        loss = -out.target_logp.mean()
        if not ar_tar:
            return loss
        return loss + ar_penalty(out.dropped_output, 2.0) + tar_penalty(out.raw_output, 1.0)

    return train_step_fn(model, forward, V, B, BPTT)


def plain_step(emb, hidden, layers, kind="lstm"):
    model = PlainLM(V, emb, hidden, layers, kind).train()
    return train_step_fn(model, lambda x, y: F.cross_entropy(model(x).view(-1, V), y.view(-1)), V, B, BPTT)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shapes", nargs="+", default=list(SHAPES))
    p.add_argument("--variants", nargs="+", default=["awd"], choices=sorted(VARIANTS))
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, V={V} B={B} bptt={BPTT}")
    for shape in args.shapes:
        emb, hidden, layers = SHAPES[shape]
        steps = {"plain": plain_step(emb, hidden, layers)}
        for kind in ("gru", "rnn"):
            if any(BASE[v] == f"plain-{kind}" for v in args.variants):
                steps[f"plain-{kind}"] = plain_step(emb, hidden, layers, kind)
        for v in args.variants:
            steps[v] = awd_step(emb, hidden, layers, **VARIANTS[v])
        times = interleaved(steps, reps=args.reps)
        for name, ts in times.items():
            tps = B * BPTT / statistics.median(ts)
            base = BASE.get(name)
            rel = f"  {ratio(times, name, base):.3f}x {base}" if base else ""
            print(f"{shape:8s} {name:18s} {tps:9.0f} tokens/s{rel}")


if __name__ == "__main__":
    main()
