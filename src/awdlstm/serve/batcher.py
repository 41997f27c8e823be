"""Batching concurrent requests into shared forward passes.

Requests put jobs on a queue and await their futures. One worker takes the first waiting
job, gathers whatever else arrives within ``max_wait`` seconds (up to ``max_batch`` jobs),
and runs each kind of job as one batch on a worker thread, so the event loop keeps
accepting requests while the model runs. With ``max_batch = 1`` every job runs alone
(the one-at-a-time baseline of benchmarks/serve_load.py).

Kinds: ``next`` (context ids -> next-token log-probs), ``score`` (ids -> per-token log-probs),
``prime`` (context ids -> log-probs and state), ``step`` ((state, token) -> log-probs and state).

The work is bounded: at most ``max_queue`` jobs wait (a full queue is ``Overloaded``: the
service answers 503 with Retry-After), each job has a deadline (``deadline`` seconds from
its submission, then ``Overloaded`` too, and a job whose request gave up is never run), and
a batch that fails is rerun job by job, so one bad request never fails the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..inference.predictor import Predictor


class Overloaded(Exception):
    """The queue is full, or a job waited past its deadline: try again later."""


@dataclass
class Job:
    kind: str
    payload: object
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(self, predictor: Predictor, max_batch: int = 32, max_wait: float = 0.005, max_queue: int = 256,
                 deadline: float = 30.0):
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue, self.deadline = max_queue, deadline
        self.queue: asyncio.Queue[Job] | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0  # forward batches run, for /health
        self.jobs = 0

    def start(self) -> None:
        self.queue = asyncio.Queue(self.max_queue)
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
        try:
            self.queue.put_nowait(Job(kind, payload, future))
        except asyncio.QueueFull:
            raise Overloaded(f"{self.max_queue} requests are waiting already") from None
        try:
            return await asyncio.wait_for(future, self.deadline)
        except asyncio.TimeoutError:
            raise Overloaded(f"the request waited more than {self.deadline:g} s") from None

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
                if not job.future.done():  # a request that gave up (deadline, client gone) is not run
                    by_kind.setdefault(job.kind, []).append(job)
            for kind, group in by_kind.items():
                await self._run_group(kind, group)

    async def _run_group(self, kind: str, group: list[Job]) -> None:
        """Run ``group`` as one batch; if it fails, each job alone, so that only the jobs that
        fail by themselves get the error."""
        try:
            results = await asyncio.to_thread(self._run, kind, [j.payload for j in group])
        except Exception as e:  # noqa: BLE001 - the error goes back to the requests that cause it
            if len(group) > 1:
                for job in group:
                    await self._run_group(kind, [job])
                return
            if not group[0].future.done():
                group[0].future.set_exception(e)
            return
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
