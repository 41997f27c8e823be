"""Generation speed at batch 1 (ms/token), native vs oneDNN LSTM kernel.

    python benchmarks/generate_speed.py [--tokens 200] [--run RUN_DIR]

Without --run, random weights of the AWD PTB shape and of the small shape are used. The
native kernel is what `awdlstm generate` picks at batch 1 (awdlstm.runtime.evaluate.lstm_kernel).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from awdlstm import ModelConfig, build_model
from awdlstm.inference.generate import generate


class _Vocab:
    def __init__(self, n):
        self.eos_id, self.n = 0, n


def ms_per_token(model, vocab, tokens: int, native: bool) -> float:
    times = []
    for rep in range(3):
        previous = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = not native
        try:
            # generate() itself switches to the native kernel at batch 1; to time oneDNN we
            # step the model directly the same way.
            t = time.perf_counter()
            if native:
                for _ in generate(model, vocab, tokens, [], seed=rep):
                    pass
            else:
                with torch.no_grad():
                    out = model(torch.zeros(1, 1, dtype=torch.long), model.init_hidden(1))
                    for _ in range(tokens):
                        tok = torch.multinomial(torch.softmax(out.logits[-1, 0], -1), 1).view(1, 1)
                        out = model(tok, out.hidden)
            times.append((time.perf_counter() - t) / tokens * 1000)
        finally:
            torch.backends.mkldnn.enabled = previous
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--run", help="a run folder or checkpoint instead of random weights")
    args = p.parse_args()
    if args.run:
        from awdlstm.checkpoints import model_from_checkpoint
        model, vocab, _, _ = model_from_checkpoint(args.run)
        models = {args.run: (model, vocab)}
    else:
        models = {}
        for name, (e, h, l) in {"awd-ptb": (400, 1150, 3), "small": (200, 200, 2)}.items():
            models[name] = (build_model(ModelConfig(emb_size=e, hidden_size=h, num_layers=l), 10_000).eval(), _Vocab(10_000))
    for name, (model, vocab) in models.items():
        native = ms_per_token(model, vocab, args.tokens, native=True)
        onednn = ms_per_token(model, vocab, args.tokens, native=False)
        print(f"{name:10s} native {native:6.2f} ms/token | oneDNN {onednn:6.2f} ms/token | {onednn / native:.2f}x")


if __name__ == "__main__":
    main()
