"""Batch-1 speed of an exported model, and what int8 costs in perplexity.

    python benchmarks/onnx_speed.py RUN [--tokens 400] [--threads 2] [--eval-tokens 0]

RUN is a run folder, checkpoint or model folder (e.g. a 20-minute cpu-ptb run). The script
exports it to ONNX (fp32 and the int8 copy) in a temporary folder, then feeds the same
tokens one at a time, carrying the state, to PyTorch (the batch-1 path of `awdlstm
generate`), ONNX Runtime fp32 and ONNX Runtime int8, alternating the three per repeat,
and prints ms/token (median of 5 repeats). It then evaluates the validation split of the
model's corpus at batch 10 with each runtime (``--eval-tokens N``: the first N tokens
only; 0: the whole split) and prints perplexity (or bpc) and the int8 change.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from awdlstm.checkpoints.run_folder import corpus_for, model_from_checkpoint
from awdlstm.data.metrics import metric
from awdlstm.export.onnx_model import OnnxLM, export_onnx, onnx_loss
from awdlstm.runtime.evaluate import evaluate, lstm_kernel


def torch_ms(model, tokens: list[int]) -> float:
    state = model.init_hidden(1)
    start = time.perf_counter()
    with torch.no_grad(), lstm_kernel(1):
        for t in tokens:
            out = model(torch.tensor([[t]]), state)
            state = out.hidden
            torch.log_softmax(out.logits[0, 0].float(), -1)
    return (time.perf_counter() - start) * 1000 / len(tokens)


def onnx_ms(lm: OnnxLM, tokens: list[int]) -> float:
    state = lm.init_state(1)
    start = time.perf_counter()
    for t in tokens:
        _, state = lm.step(np.array([[t]], dtype=np.int64), state)
    return (time.perf_counter() - start) * 1000 / len(tokens)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--tokens", type=int, default=400)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--eval-tokens", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, vocab, cfg, ckpt = model_from_checkpoint(Path(args.run))
    tmp = Path(tempfile.mkdtemp(prefix="awdlstm-onnx-"))
    fp32, int8 = export_onnx(model, vocab.itos, ckpt.tokenizer(), tmp / "model.onnx", int8=True)
    runtimes = {"onnxruntime fp32": OnnxLM(fp32, args.threads), "onnxruntime int8": OnnxLM(int8, args.threads)}
    data = corpus_for(cfg, progress=False)
    tokens = data.valid[: args.tokens].tolist()
    times = {"pytorch": [], **{k: [] for k in runtimes}}
    torch_ms(model, tokens[:20])
    for lm in runtimes.values():
        onnx_ms(lm, tokens[:20])
    for _ in range(5):
        times["pytorch"].append(torch_ms(model, tokens))
        for k, lm in runtimes.items():
            times[k].append(onnx_ms(lm, tokens))
    size = {"pytorch": None, "onnxruntime fp32": fp32.stat().st_size, "onnxruntime int8": int8.stat().st_size}
    print(f"{args.run}: {model.num_parameters():,} parameters, batch 1, {len(tokens)} tokens, "
          f"{args.threads} thread(s)\n")
    print("| runtime | ms/token (median of 5) | file |\n|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.3f} | {f'{size[k] / 1e6:.1f} MB' if size[k] else '-'} |")
    ids = data.valid if args.eval_tokens <= 0 else data.valid[: args.eval_tokens]
    base = evaluate(model, ids, 10, 70)
    losses = {"pytorch": base, **{k: onnx_loss(lm, ids, 10, 70) for k, lm in runtimes.items()}}
    print(f"\nvalidation ({len(ids):,} tokens, batch 10):")
    for k, loss in losses.items():
        name, value = metric(loss, data.level)
        print(f"  {k:18s} {name} {value:.3f}")
    name, q = metric(losses["onnxruntime int8"], data.level)
    _, f = metric(losses["onnxruntime fp32"], data.level)
    print(f"int8 changes validation {name} by {q - f:+.3f} ({(q - f) / f:+.2%})")


if __name__ == "__main__":
    main()
