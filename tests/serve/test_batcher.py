"""The batcher bounds the work: a full queue and a passed deadline are Overloaded (503 with
Retry-After in the service), a job whose request gave up is not run, and one failing job
never fails the others batched with it."""

import asyncio
import time

import pytest
import torch

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

import awdlstm  # noqa: E402
from awdlstm.serve.app import create_app  # noqa: E402
from awdlstm.serve.batcher import Batcher, Overloaded  # noqa: E402
from tests.conftest import make_model_folder  # noqa: E402


class Stub:
    """A predictor whose ``next_log_probs`` takes ``delay`` seconds and fails on "bad"."""

    def __init__(self, delay=0.0):
        self.delay, self.calls = delay, []

    def next_log_probs(self, payloads):
        self.calls.append(list(payloads))
        time.sleep(self.delay)
        if "bad" in payloads:
            raise ValueError("bad payload")
        return [f"ok {p}" for p in payloads]


def run(coro):
    return asyncio.run(coro)


def test_one_failing_job_never_fails_the_others_in_its_batch():
    async def go():
        b = Batcher(Stub(), max_batch=8, max_wait=0.05)
        b.start()
        results = await asyncio.gather(*(b.submit("next", p) for p in ("a", "bad", "c")), return_exceptions=True)
        await b.stop()
        return b, results

    b, results = run(go())
    assert results[0] == "ok a" and results[2] == "ok c" and isinstance(results[1], ValueError)
    assert b.predictor.calls[0] == ["a", "bad", "c"]  # tried together first, then one by one


def test_a_full_queue_and_a_passed_deadline_are_overloaded():
    async def go():
        b = Batcher(Stub(delay=0.5), max_batch=1, max_wait=0.0, max_queue=1, deadline=5.0)
        b.start()
        first = asyncio.ensure_future(b.submit("next", "a"))  # taken by the worker at once
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(b.submit("next", "b"))  # waits in the queue (its one place)
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="waiting already"):
            await b.submit("next", "c")
        assert await first == "ok a" and await second == "ok b"
        b.deadline = 0.2
        with pytest.raises(Overloaded, match="waited more than"):
            await b.submit("next", "slow")
        await asyncio.sleep(0.6)
        await b.stop()

    run(go())


def test_a_job_whose_request_gave_up_is_not_run():
    async def go():
        stub = Stub(delay=0.3)
        b = Batcher(stub, max_batch=1, max_wait=0.0, deadline=0.1)
        b.start()
        for p in ("a", "b"):
            with pytest.raises(Overloaded):
                await b.submit("next", p)
        await asyncio.sleep(0.5)
        await b.stop()
        return stub.calls

    assert run(go()) == [["a"]]  # "b" timed out in the queue and was dropped


def test_the_service_answers_503_with_retry_after_when_busy(tmp_path):
    lm = awdlstm.load(make_model_folder(tmp_path / "m"))
    with TestClient(create_app(lm, deadline=1e-9)) as client:
        r = client.post("/next", json={"context": "the"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]


def test_next_reads_the_distribution_at_the_last_position_only(tmp_path):
    lm = awdlstm.load(make_model_folder(tmp_path / "m"))
    contexts = [lm.ids("the company"), lm.ids("said it would buy shares of a")]
    got = lm.next_log_probs(contexts)
    for j, ctx in enumerate(contexts):
        x = torch.tensor([[lm.vocab.eos_id] + ctx]).t()
        with torch.no_grad():
            out = lm.model(x, lm.model.init_hidden(1))
        torch.testing.assert_close(got[j], torch.log_softmax(out.logits[-1, 0].float(), -1), atol=1e-5, rtol=1e-5)
