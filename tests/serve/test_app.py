"""The service: each endpoint, each kind of bad request (4xx, and it keeps serving),
a burst of concurrent clients batched together, and a clean stop on SIGTERM."""

import json
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import awdlstm  # noqa: E402
from awdlstm.serve.app import MAX_BODY, create_app  # noqa: E402
from tests.conftest import make_model_folder  # noqa: E402
from tests.serve.conftest import start_server  # noqa: E402


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return awdlstm.load(make_model_folder(tmp_path_factory.mktemp("m") / "m"))


@pytest.fixture(scope="module")
def client(lm):
    with TestClient(create_app(lm, max_batch=8, max_wait=0.002)) as c:
        yield c


def test_next(client, lm):
    r = client.post("/next", json={"context": "the company", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["context"] == ["the", "company"] and len(body["next"]) == 3
    assert [n["token"] for n in body["next"]] == [w for w, _ in lm.top_k("the company", 3)]


def test_score(client, lm):
    r = client.post("/score", json={"texts": ["the company said", "the zebra"]})
    assert r.status_code == 200
    first, second = r.json()["results"]
    assert [t["token"] for t in first["tokens"]] == ["the", "company", "said", "<eos>"]
    assert first["logprob"] == pytest.approx(lm.score(["the company said"])[0].total, abs=1e-4)
    assert sum(t["surprisal_bits"] for t in first["tokens"]) == pytest.approx(first["bits"], abs=1e-6)
    assert second["tokens"][1]["scored_as"] == "<unk>"


def test_generate_streams_lines(client, lm):
    with client.stream("POST", "/generate", json={"prompt": "the", "tokens": 6, "seed": 4}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) == 7 and lines[-1] == {"done": True}
    assert all(line["token"] in lm.vocab.stoi for line in lines[:-1])
    again = client.post("/generate", json={"prompt": "the", "tokens": 6, "seed": 4}).text
    assert [json.loads(line) for line in again.splitlines()] == lines  # a seed repeats the text


def test_page_and_health(client):
    assert "<textarea id=\"prefix\"" in client.get("/").text
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["vocab_size"] == 12


@pytest.mark.parametrize("path, body, status, fragment", [
    ("/next", b"{not json", 400, "not valid JSON"),
    ("/next", {"context": "the", "k": -1}, 422, "k:"),
    ("/next", {"context": "the", "colour": "red"}, 422, "colour"),
    ("/next", {"context": 5}, 422, "context"),
    ("/next", {"context": "the " * 3000}, 422, "context"),
    ("/score", {"texts": []}, 422, "texts"),
    ("/score", {"texts": ["a"] * 65}, 422, "texts"),
    ("/generate", {"tokens": 0}, 422, "tokens"),
    ("/generate", {"top_p": 0}, 422, "top_p"),
    ("/next", b"x" * (MAX_BODY + 1), 413, "bytes"),
])
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(client, path, body, status, fragment):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    assert client.post("/next", json={"context": "the"}).status_code == 200


def test_a_word_the_model_cannot_read_is_a_400(tmp_path):
    lm = awdlstm.load(make_model_folder(tmp_path / "m", vocab=["<eos>", "the", "bank"]))
    with TestClient(create_app(lm)) as c:
        r = c.post("/next", json={"context": "the zebra"})
        assert r.status_code == 400 and "zebra" in r.json()["error"]


def post(url, path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_burst_of_clients_is_batched_and_sigterm_stops_cleanly(tmp_path):
    proc, url = start_server(make_model_folder(tmp_path / "m"), "--max-wait-ms", "20")
    try:
        jobs = [("/next", {"context": "the company " * (i % 5), "k": 5}) for i in range(48)]
        jobs += [("/score", {"texts": ["the bank said", "a"]}) for _ in range(16)]
        jobs += [("/generate", {"prompt": "the", "tokens": 5, "seed": i}) for i in range(8)]
        jobs += [("/next", {"k": -3}) for _ in range(8)]  # bad requests inside the burst
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda j: post(url, *j), jobs))
        assert [s for s, _ in results[:-8]] == [200] * 72
        assert [s for s, _ in results[-8:]] == [422] * 8
        health = json.loads(urllib.request.urlopen(url + "/health").read())
        assert health["batches"] < health["jobs"]  # concurrent requests shared forward passes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "server stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_taken_port_is_a_one_line_error(tmp_path, capsys):
    import socket

    from awdlstm.cli import main
    from tests.test_cli_data import assert_one_line_error
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
        code = main(["serve", str(make_model_folder(tmp_path / "m")), "--port", str(port)])
    assert_one_line_error(code, capsys.readouterr().err, f"--port {port}")
