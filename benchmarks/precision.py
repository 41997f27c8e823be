"""Training precision: tokens/s and validation loss after a fixed number of steps for each
autocast precision against fp32, on the AWD-LSTM PTB shape (awd-ptb preset: V 10,000,
emb 400, LSTMs 1150/1150/400, B 20, bptt 70, every regularizer on), in one process.

    python benchmarks/precision.py [--data-dir ../shared/data] [--device auto] [--steps 20]
    python benchmarks/precision.py --preset cpu-ptb      # the default's shape instead

The precisions train side by side from the same initial weights, one step each in turn,
and each keeps its own generator state, so every one sees the same batches and the same
dropout masks as it would alone. Precisions: fp32 and bf16 everywhere, fp16 on CUDA.
Without --data-dir (or $AWDLSTM_DATA) PTB is downloaded into the cache.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from awdlstm.checkpoints.run_folder import corpus_for
from awdlstm.config import build_config
from awdlstm.data.batching import BPTTIterator
from awdlstm.model import detach_hidden
from awdlstm.runtime.evaluate import evaluate_sums
from awdlstm.runtime.machine import resolve_device
from awdlstm.train import Trainer


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder holding ptb/ (default $AWDLSTM_DATA, then the cache)")
    p.add_argument("--device", default="auto")
    p.add_argument("--preset", default="awd-ptb", help="the recipe whose shape and settings are timed")
    p.add_argument("--steps", type=int, default=20, help="training steps per precision (after 2 warm-up steps)")
    p.add_argument("--val-tokens", type=int, default=20_000, help="validation tokens read (0: the whole split)")
    args = p.parse_args()
    device = resolve_device(args.device)
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    sets = [f"train.device={device}"] + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    corpus = corpus_for(build_config(args.preset, sets), progress=True)
    valid = corpus.valid[: args.val_tokens] if args.val_tokens else corpus.valid
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"{args.preset} shape, {args.steps} steps, validation on {len(valid):,} tokens")
    out = tempfile.mkdtemp(prefix="awdlstm-precision-")
    trainers, iters, rng, times = {}, {}, {}, {}
    for prec in precisions:
        cfg = build_config(args.preset, sets + [f"train.precision={prec}"])
        tr = Trainer(cfg, f"{out}/{prec}", corpus, progress=False, log=lambda *a: None)
        tr.model.train()
        tr.hidden = tr.model.init_hidden(cfg.train.batch_size)
        trainers[prec], times[prec] = tr, []
        iters[prec] = BPTTIterator(tr.train_source, cfg.train.bptt, cfg.train.variable_bptt, seed=1)
        rng[prec] = tr.machine.rng_state()
    for step in range(args.steps + 2):
        for prec, tr in trainers.items():
            tr.machine.set_rng_state(rng[prec])
            batch = next(iters[prec])
            for g in tr.optimizer.param_groups:
                g["lr"] = tr.state.lr * batch.lr_scale
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out_, _, loss = tr.forward_loss(batch, detach_hidden(tr.hidden))
            tr.update(loss)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times[prec].append(time.perf_counter() - t0)
            tr.hidden = out_.hidden
            rng[prec] = tr.machine.rng_state()
    B, bptt = trainers["fp32"].cfg.train.batch_size, trainers["fp32"].cfg.train.bptt
    rows = {}
    for prec, tr in trainers.items():
        total, count = evaluate_sums(tr.model, valid, 10, bptt)
        rows[prec] = (B * bptt / statistics.median(times[prec]), total / count)
    base_tps, base_loss = rows["fp32"]
    print(f"{'precision':9s} {'tokens/s':>9s} {'vs fp32':>8s} {'val loss':>9s} {'Δ loss':>8s}")
    for prec, (tps, loss) in rows.items():
        print(f"{prec:9s} {tps:9.0f} {tps / base_tps:7.2f}x {loss:9.4f} {loss - base_loss:+8.4f}")


if __name__ == "__main__":
    main()
