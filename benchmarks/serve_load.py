"""Load on `awdlstm serve`: N concurrent clients on 127.0.0.1, a bounded count of requests.

    python benchmarks/serve_load.py RUN [--clients 64] [--requests 400] [--endpoint next]

For each batching setting (``--max-batch 32`` and, as the baseline, ``--max-batch 1``, one
request per forward) the script starts a server on a free loopback port, waits for it,
sends ``--requests`` requests from ``--clients`` threads (each request a different
context taken from the model's validation split), stops the server with SIGTERM, and
prints throughput, p50/p99 latency and the error count (any non-200 answer or failure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from awdlstm.checkpoints.run_folder import corpus_for, model_from_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "awdlstm.cli", "serve", run, "--port", str(port),
                             "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"the server exited with code {proc.returncode}")
            time.sleep(0.1)
    proc.kill()
    sys.exit("the server did not start within 60 s")


def request(url: str, path: str, body: dict) -> tuple[float, bool]:
    data = json.dumps(body).encode()
    start = time.perf_counter()
    try:
        req = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            ok = r.status == 200
    except (urllib.error.URLError, OSError):
        ok = False
    return time.perf_counter() - start, ok


def load(url: str, bodies: list[tuple[str, dict]], clients: int) -> dict:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda b: request(url, *b), bodies))
    wall = time.perf_counter() - start
    lat = sorted(t * 1000 for t, _ in results)
    return {"requests/s": len(bodies) / wall, "p50 ms": statistics.median(lat),
            "p99 ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))], "errors": sum(not ok for _, ok in results)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--endpoint", choices=("next", "score"), default="next")
    p.add_argument("--words", type=int, default=20, help="words per context or text")
    args = p.parse_args()
    _, _, cfg, _ = model_from_checkpoint(Path(args.run))
    data = corpus_for(cfg, progress=False)
    words = data.vocab.decode(data.valid[: args.requests * args.words].tolist())
    texts = [" ".join(w for w in words[i * args.words:(i + 1) * args.words] if w != "<eos>")
             for i in range(args.requests)]
    bodies = [("/next", {"context": t, "k": 10}) if args.endpoint == "next" else ("/score", {"texts": [t]})
              for t in texts]
    print(f"{args.run}: /{args.endpoint}, {args.requests} requests of {args.words} words, {args.clients} clients, "
          f"{os.cpu_count()} cores\n")
    print("| server | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    for max_batch in (32, 1):
        proc, url = start(args.run, max_batch)
        try:
            load(url, bodies[: min(20, len(bodies))], args.clients)  # warm-up
            r = load(url, bodies, args.clients)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        name = "batched (--max-batch 32)" if max_batch > 1 else "one at a time (--max-batch 1)"
        print(f"| {name} | {r['requests/s']:.1f} | {r['p50 ms']:.1f} | {r['p99 ms']:.1f} | {r['errors']} |")


if __name__ == "__main__":
    main()
