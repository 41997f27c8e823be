"""The zoneout paper's pixel-classification comparison at CPU scale: LSTM, zoneout LSTM,
batch-normalized LSTM and batch norm + zoneout, each trained for the same minutes on the
same pixels, and their validation / test accuracy.

    python benchmarks/pixels_compare.py [--data digits] [--minutes 1] [--permute] [--set KEY=VALUE ...]

Default: scikit-learn's 8x8 digits (64 steps) with the `digits` preset; ``--data mnist`` with
``--set hidden_size=100`` etc. for the real thing (784 steps: hours per model on a CPU).
Zoneout is the paper's 0.15 on cells and states. Writes a table to stdout.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from awdlstm.data.pixels import load_pixels
from awdlstm.pixels.config import pixel_config
from awdlstm.pixels.trainer import PixelTrainer

VARIANTS = {
    "lstm": ["cell=lstm"],
    "zoneout": ["cell=zoneout", "zoneout_c=0.15", "zoneout_h=0.15"],
    "batchnorm-lstm": ["cell=batchnorm-lstm"],
    "batchnorm + zoneout": ["cell=batchnorm-lstm", "zoneout_c=0.15", "zoneout_h=0.15"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits")
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--permute", action="store_true")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    common = [f"data={args.data}", f"max_minutes={args.minutes}", "epochs=100000", f"permute={args.permute}"]
    data = load_pixels(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sets in VARIANTS.items():
            cfg = pixel_config("digits", common + sets + args.sets)
            r = PixelTrainer(cfg, Path(tmp) / name.replace(" ", ""), data, progress=False, log=lambda *a: None).run()
            rows.append((name, r["epochs"], r["valid_acc"], r["test_acc"], r["parameters"]))
            print(f"{name:22s} epochs {r['epochs']:4d}  valid {r['valid_acc']:.2%}  test {r['test_acc']:.2%}", flush=True)
    print(f"\n{args.data}, {args.minutes:g} min each{' (permuted)' if args.permute else ''}")
    print("| cell | epochs | valid acc | test acc | parameters |\n|---|---|---|---|---|")
    for name, epochs, v, t, p in rows:
        print(f"| {name} | {epochs} | {v:.2%} | {t:.2%} | {p:,} |")


if __name__ == "__main__":
    main()
