"""SentencePiece against Hugging Face ``tokenizers``: training time, encoding speed and peak
memory of bpe and unigram models on one text (the measurement behind the choice in
src/awdlstm/data/tokenizers/subword.py).

    python benchmarks/tokenizers.py [--text FILE] [--vocab-size 8000]

Default text: ``$AWDLSTM_DATA/wikitext-2/train.txt``. Each pair runs in a fresh process
(peak memory is its ``ru_maxrss``), with every core the machine has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import io, json, os, resource, sys, time
lib, kind, path, V = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = [l for l in open(path, encoding="utf-8").read().split("\n") if l.strip()]
threads = os.cpu_count() or 1
t0 = time.perf_counter()
if lib == "tokenizers":
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tr = trainers.BpeTrainer(vocab_size=V, special_tokens=["<eos>", "<unk>"], show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        tr = trainers.UnigramTrainer(vocab_size=V, special_tokens=["<eos>", "<unk>"], unk_token="<unk>",
                                     show_progress=False)
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.train_from_iterator(iter(lines), tr, length=len(lines))
    t1 = time.perf_counter()
    n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
else:
    import sentencepiece as spm
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, vocab_size=V, model_type=kind,
                                   unk_id=0, eos_id=1, bos_id=-1, pad_id=-1, eos_piece="<eos>", num_threads=threads,
                                   minloglevel=2, max_sentence_length=1 << 16, input_sentence_size=0)
    sp = spm.SentencePieceProcessor(model_proto=out.getvalue())
    t1 = time.perf_counter()
    n = sum(map(len, sp.encode(lines, num_threads=threads)))
t2 = time.perf_counter()
mb = sum(len(l.encode()) for l in lines) / 1e6
print(json.dumps({"library": lib, "kind": kind, "train_s": round(t1 - t0, 2), "encode_MB/s": round(mb / (t2 - t1), 1),
                  "tokens": n, "peak_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default=os.path.join(os.environ.get("AWDLSTM_DATA", ""), "wikitext-2", "train.txt"))
    ap.add_argument("--vocab-size", type=int, default=8000)
    args = ap.parse_args()
    if not os.path.isfile(args.text):
        raise SystemExit(f"--text {args.text}: no such file (set $AWDLSTM_DATA or give --text)")
    rows = []
    for kind in ("bpe", "unigram"):
        for lib in ("sentencepiece", "tokenizers"):
            proc = subprocess.run([sys.executable, "-c", CHILD, lib, kind, args.text, str(args.vocab_size)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{lib} {kind} failed:\n{proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print()
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
