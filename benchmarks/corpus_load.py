"""Loading corpora of about 50 MB and 500 MB: tokenize + numericalize time (MB/s) and peak
memory of the first load, the time and memory of a second (cached) load, and the resident
memory of a training process after its first batches.

    python benchmarks/corpus_load.py [--sizes 50 500] [--source DIR] [--old-src PATH] [--work DIR]
                                     [--tokenizer bpe|unigram --vocab-size N]

Each corpus is WikiText-2's training text repeated to the size (``--source``: a folder with
train/valid/test.txt, default ``$AWDLSTM_DATA/wikitext-2``), with WikiText-2's own valid and
test files. Every figure comes from a fresh process (peak memory is its ``ru_maxrss``), so
nothing one measurement loaded helps the next. ``--old-src`` names the ``src`` folder of
another checkout of awdlstm (e.g. ``git worktree add /tmp/old 587694b``: the loader before
the token cache) to measure the same way on the first corpus, in the same run.
``--tokenizer`` measures subword units instead of words (the first load then includes
training the SentencePiece model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
mode, corpus, kind, size = sys.argv[1], sys.argv[2], sys.argv[4], int(sys.argv[5])
text = {"tokenizer": kind, "vocab_size": size} if kind else {}
from awdlstm.data import load_corpus  # (imports torch: not part of the load's time)
t0 = time.perf_counter()
c = load_corpus(corpus, progress=False, **text)
out = {"seconds": time.perf_counter() - t0, "tokens": int(len(c.train) + len(c.valid) + len(c.test))}
if mode == "train":
    import torch
    from awdlstm.config import build_config
    from awdlstm.train import Trainer
    sets = [f"data.tokenizer={kind}", f"data.vocab_size={size}"] if kind else []
    cfg = build_config("tiny", ["train.batch_size=32", "train.bptt=35", "train.threads=1"] + sets, corpus)
    tr = Trainer(cfg, sys.argv[3], c, progress=False, log=lambda *a: None)
    from awdlstm.data.batching import BPTTIterator
    model, opt = tr.model, tr.optimizer
    hidden = model.init_hidden(tr.train_source.size(1))
    for i, batch in zip(range(20), BPTTIterator(tr.train_source, 35)):
        hidden = [tuple(t.detach() for t in s) for s in hidden]
        res = model(batch.x, hidden, targets=batch.y)
        hidden = res.hidden
        opt.zero_grad()
        (-res.target_logp.mean()).backward()
        opt.step()
    status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(("VmRSS", "RssAnon"))}
    out["rss_mb"], out["anon_mb"] = status["VmRSS"] / 1024, status["RssAnon"] / 1024
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def build(source: Path, folder: Path, mb: int) -> float:
    """WikiText-2's training text repeated to about ``mb`` MB; returns the size in MB."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (source / "train.txt").read_bytes()
    reps = max(1, round(mb * 1e6 / len(text)))
    if not (folder / "train.txt").is_file() or (folder / "train.txt").stat().st_size != reps * len(text):
        with open(folder / "train.txt", "wb") as f:
            for _ in range(reps):
                f.write(text)
    for split in ("valid", "test"):
        (folder / f"{split}.txt").write_bytes((source / f"{split}.txt").read_bytes())
    return sum((folder / f"{s}.txt").stat().st_size for s in ("train", "valid", "test")) / 1e6


TEXT: tuple[str, int] = ("", 0)  # (tokenizer, vocab_size) from the command line


def child(mode: str, corpus: Path, cache: Path, src: str | None, run_dir: Path) -> dict:
    env = {**os.environ, "AWDLSTM_CACHE": str(cache)}
    if src:
        env["PYTHONPATH"] = src
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(corpus), str(run_dir), *map(str, TEXT)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} load of {corpus} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name: str, corpus: Path, size_mb: float, work: Path, src: str | None, train: bool = True) -> dict:
    cache = work / f"cache-{name}"
    if cache.exists():
        import shutil
        shutil.rmtree(cache)
    first = child("load", corpus, cache, src, work / "run")
    again = child("load", corpus, cache, src, work / "run")
    row = {"corpus": name, "MB": round(size_mb, 1), "tokens": first["tokens"], "first_s": round(first["seconds"], 2),
           "MB/s": round(size_mb / first["seconds"], 1), "first_peak_MB": round(first["peak_mb"]),
           "cached_s": round(again["seconds"], 2), "cached_peak_MB": round(again["peak_mb"])}
    if train:
        t = child("train", corpus, cache, src, work / "run")
        row["train_rss_MB"] = round(t["rss_mb"])
        row["train_anon_MB"] = round(t["anon_mb"])  # RSS less the pages of mapped files
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="corpus sizes in MB")
    ap.add_argument("--source", default=os.path.join(os.environ.get("AWDLSTM_DATA", ""), "wikitext-2"))
    ap.add_argument("--old-src", default=None, help="another checkout's src folder, measured on the first size")
    ap.add_argument("--work", default=None, help="where the corpora and caches go (default: a temp folder)")
    ap.add_argument("--tokenizer", default="", choices=("", "bpe", "unigram"), help="subword units instead of words")
    ap.add_argument("--vocab-size", type=int, default=8000, help="with --tokenizer: the pieces")
    args = ap.parse_args()
    global TEXT
    if args.tokenizer:
        TEXT = (args.tokenizer, args.vocab_size)
        args.old_src = None  # the loader before the token cache had no subword units
    source = Path(args.source)
    if not (source / "train.txt").is_file():
        raise SystemExit(f"--source {source}: no train.txt (set $AWDLSTM_DATA or give --source)")
    work = Path(args.work or tempfile.mkdtemp(prefix="awdlstm-corpus-bench-"))
    rows = []
    for mb in args.sizes:
        folder = work / f"wt2x{mb}mb"
        size = build(source, folder, mb)
        if args.old_src and mb == args.sizes[0]:
            rows.append({"loader": "before", **measure(f"{mb}mb", folder, size, work, args.old_src)})
        rows.append({"loader": "token cache", **measure(f"{mb}mb", folder, size, work, None)})
        print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[-1])
    print()
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))


if __name__ == "__main__":
    main()
