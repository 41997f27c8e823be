"""Batching concurrent requests into shared forward passes.

Requests put jobs on a queue and await their futures. One worker takes the first waiting
job, gathers whatever else arrives within ``max_wait`` seconds (up to ``max_batch`` jobs),
and runs each kind of job as one batch on a worker thread, so the event loop keeps
accepting requests while the model runs. With ``max_batch = 1`` every job runs alone
(the one-at-a-time baseline of benchmarks/serve_load.py).

Kinds: ``next`` (context ids -> next-token log-probs), ``score`` (ids -> per-token log-probs),
``prime`` (context ids -> log-probs and state), ``step`` ((state, token) -> log-probs and state).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..inference.predictor import Predictor


@dataclass
class Job:
    kind: str
    payload: object
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(self, predictor: Predictor, max_batch: int = 32, max_wait: float = 0.005):
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.queue: asyncio.Queue[Job] | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0  # forward batches run, for /health
        self.jobs = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    async def submit(self, kind: str, payload) -> object:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(Job(kind, payload, future))
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(jobs) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    jobs.append(await asyncio.wait_for(self.queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            by_kind: dict[str, list[Job]] = {}
            for job in jobs:
                by_kind.setdefault(job.kind, []).append(job)
            for kind, group in by_kind.items():
                try:
                    results = await asyncio.to_thread(self._run, kind, [j.payload for j in group])
                except Exception as e:  # noqa: BLE001 - the error goes back to each waiting request
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                self.batches += 1
                self.jobs += len(group)
                for j, r in zip(group, results):
                    if not j.future.done():  # a client that went away cancelled its future
                        j.future.set_result(r)

    def _run(self, kind: str, payloads: list) -> list:
        p = self.predictor
        if kind == "next":
            return list(p.next_log_probs(payloads))
        if kind == "score":
            return p.token_log_probs(payloads)
        if kind == "prime":
            log_probs, states = p.prime(payloads)
            return list(zip(log_probs, states))
        if kind == "step":
            log_probs, states = p.advance([s for s, _ in payloads], [t for _, t in payloads])
            return list(zip(log_probs, states))
        raise ValueError(f"unknown job kind {kind!r}")
