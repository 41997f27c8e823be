"""Hostile traffic for a running `awdlstm serve` on the loopback: bad JSON, malformed HTTP,
oversized and chunked bodies, slow clients and bursts. Every loop is bounded in count and
time. ``run_all(url)`` returns each case's outcome: an HTTP status, or "closed" when the
server dropped a malformed connection without answering (never a 5xx but 503)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

TIMEOUT = 20.0


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    host, port = _address(url)
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def post_json(url: str, path: str, body: bytes, content_type: str = "application/json") -> int:
    return request(url, "POST", path, body, {"Content-Type": content_type})


def raw(url: str, data: bytes, wait: float = 5.0) -> int | str:
    """Send raw bytes; the status of the answer, or "closed"."""
    with socket.create_connection(_address(url), timeout=wait) as s:
        try:
            s.sendall(data)
            reply = s.recv(4096)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            return "closed"
    if not reply.startswith(b"HTTP/"):
        return "closed"
    return int(reply.split(b" ", 2)[1])


def json_cases() -> list[tuple[str, str, bytes, bool]]:
    """(name, path, body, valid): hostile bodies and a few valid ones among them."""
    deep = b"[" * 20000 + b"]" * 20000
    big = 10 ** 30
    cases = [
        ("empty", "/next", b"", False),
        ("not json", "/next", b"not json", False),
        ("truncated", "/next", b'{"context": "the', False),
        ("array", "/next", b"[]", False),
        ("null", "/next", b"null", False),
        ("number", "/score", b"42", False),
        ("string", "/generate", b'"the"', False),
        ("deeply nested array", "/next", deep, False),
        ("deeply nested field", "/score", b'{"texts": ' + deep + b"}", False),
        ("deeply nested object", "/next", b'{"a":' * 20000 + b"1" + b"}" * 20000, False),
        ("unknown field", "/next", b'{"context": "the", "evil": 1}', False),
        ("context a number", "/next", b'{"context": 5}', False),
        ("k a string", "/next", b'{"k": "x"}', False),
        ("k a float", "/next", b'{"k": 1.5}', False),
        ("k a list", "/next", b'{"k": [1]}', False),
        ("k zero", "/next", b'{"k": 0}', False),
        ("k huge", "/next", json.dumps({"k": big}).encode(), False),
        ("k over 1000", "/next", b'{"k": 1001}', False),
        ("context over the limit", "/next", json.dumps({"context": "the " * 1300}).encode(), False),
        ("lone surrogate", "/next", b'{"context": "the \\ud800"}', False),
        ("invalid utf-8", "/next", b'{"context": "\xff\xfe"}', False),
        ("utf-8 bom (accepted, as JSON allows)", "/next", b'\xef\xbb\xbf{"context": "the"}', True),
        ("no texts", "/score", b'{"texts": []}', False),
        ("texts not strings", "/score", b'{"texts": [5, null]}', False),
        ("too many texts", "/score", json.dumps({"texts": ["the"] * 65}).encode(), False),
        ("a text over the limit", "/score", json.dumps({"texts": ["the " * 1300]}).encode(), False),
        ("texts a string", "/score", b'{"texts": "the"}', False),
        ("temperature NaN", "/generate", b'{"temperature": NaN}', False),
        ("temperature Infinity", "/generate", b'{"temperature": Infinity}', False),
        ("temperature negative", "/generate", b'{"temperature": -1}', False),
        ("top_p NaN", "/generate", b'{"top_p": NaN}', False),
        ("top_p zero", "/generate", b'{"top_p": 0}', False),
        ("top_k negative", "/generate", b'{"top_k": -1}', False),
        ("top_k huge", "/generate", json.dumps({"top_k": 2 ** 40}).encode(), False),
        ("seed 2^80", "/generate", json.dumps({"seed": 2 ** 80}).encode(), False),
        ("seed negative", "/generate", b'{"seed": -1}', False),
        ("tokens zero", "/generate", b'{"tokens": 0}', False),
        ("tokens over the limit", "/generate", b'{"tokens": 501}', False),
        ("prompt over the limit", "/generate", json.dumps({"prompt": "a" * 5001}).encode(), False),
        # Valid, at the edges: these must be answered (200).
        ("valid next", "/next", b'{"context": "the company", "k": 3}', True),
        ("duplicate keys (the last wins)", "/next", b'{"k": 1000, "k": 2}', True),
        ("valid score", "/score", b'{"texts": ["the company said", ""]}', True),
        ("largest seed", "/generate", json.dumps({"seed": 2 ** 63 - 1, "tokens": 2}).encode(), True),
        ("tiny temperature", "/generate", b'{"temperature": 1e-300, "tokens": 3, "seed": 1}', True),
        ("subnormal temperature", "/generate", b'{"temperature": 5e-324, "tokens": 3, "seed": 1}', True),
        ("tiny top_p", "/generate", b'{"top_p": 1e-300, "tokens": 3}', True),
        ("top_k above the vocabulary", "/generate", b'{"top_k": 1048576, "tokens": 3}', True),
        ("greedy", "/generate", b'{"temperature": 0, "tokens": 3}', True),
    ]
    return cases


def http_cases(url: str) -> list[tuple[str, bytes]]:
    host = b"Host: x\r\n"
    return [
        ("garbage", b"\x00\x01\x02garbage\r\n\r\n"),
        ("no version", b"GET /health\r\n\r\n"),
        ("unknown method", b"BREW /health HTTP/1.1\r\n" + host + b"\r\n"),
        ("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\n" + host + b"\r\n"),
        ("unknown path", b"GET /nothing HTTP/1.1\r\n" + host + b"\r\n"),
        ("GET on a POST route", b"GET /next HTTP/1.1\r\n" + host + b"\r\n"),
        ("huge header", b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
        ("many headers", b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-%d: 1\r\n" % i for i in range(2000)) + b"\r\n"),
        ("content-length not a number", b"POST /next HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n{}"),
        ("content-length negative", b"POST /next HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n{}"),
        ("two content-lengths", b"POST /next HTTP/1.1\r\n" + host + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
        ("content-length over the limit", b"POST /next HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
         b"Content-Length: 2000000\r\n\r\n{"),
        ("bad chunk size", b"POST /next HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        ("chunked and content-length", b"POST /next HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n"
         b"Content-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("http/1.0", b"GET /health HTTP/1.0\r\n\r\n"),
        ("body shorter than its length", b"POST /next HTTP/1.1\r\n" + host + b"Content-Length: 10\r\n\r\n{}"),
    ]


def chunked_upload(url: str, total: int = 8 << 20, chunk: int = 64 << 10) -> tuple[int | str, int]:
    """A chunked body of ``total`` bytes: (the answer, the bytes sent before it came)."""
    sent = 0
    with socket.create_connection(_address(url), timeout=TIMEOUT) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % chunk + b" " * chunk + b"\r\n"
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            if select.select([s], [], [], 0)[0]:
                break  # the server answered before the end of the body
            try:
                s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        try:
            reply = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return "closed", sent
    return (int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else "closed"), sent


def slow_clients(url: str, clients: int = 8, seconds: float = 3.0) -> list[int]:
    """``clients`` connections send a request a byte at a time over ``seconds`` while other
    requests go on: the statuses of those other requests."""
    data = b"POST /next HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    socks = [socket.create_connection(_address(url), timeout=TIMEOUT) for _ in range(clients)]
    statuses = []
    try:
        step = seconds / len(data)
        for i in range(len(data)):
            for s in socks:
                try:
                    s.send(data[i:i + 1])
                except OSError:
                    pass
            if i % 10 == 0:
                statuses.append(post_json(url, "/next", b'{"context": "the", "k": 2}'))
            time.sleep(step)
    finally:
        for s in socks:
            s.close()
    return statuses


def burst(url: str, clients: int = 64, requests: int = 256) -> list[int]:
    bodies = [("/next", b'{"context": "the company", "k": 5}'), ("/score", b'{"texts": ["the company said it"]}'),
              ("/generate", b'{"prompt": "the", "tokens": 4, "seed": 3}')]

    def one(i):
        path, body = bodies[i % len(bodies)]
        try:
            return post_json(url, path, body)
        except (OSError, http.client.HTTPException):
            return "closed"

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(requests)))


def run_all(url: str) -> dict[str, list]:
    """Every case: {group: [(name, outcome, expected_ok)]}."""
    out = {"json": [], "http": [], "oversized": [], "slow": [], "burst": []}
    for name, path, body, valid in json_cases():
        out["json"].append((name, post_json(url, path, body), valid))
    out["json"].append(("json as text/plain", post_json(url, "/next", b'{"context": "the"}', "text/plain"), False))
    for name, data in http_cases(url):
        out["http"].append((name, raw(url, data), False))
    status, sent = chunked_upload(url)
    out["oversized"].append((f"chunked 8 MiB upload (answered after {sent >> 10} KiB)", status, False))
    out["oversized"].append(("2 MB body", post_json(url, "/next", b"{" + b" " * 2_000_000 + b"}"), False))
    out["slow"] = [("a request beside slow clients", s, True) for s in slow_clients(url)]
    out["burst"] = [("burst", s, True) for s in burst(url)]
    return out


def tally(results: dict[str, list]) -> Counter:
    """Counts of cases, 2xx, 4xx, 503, other 5xx and dropped connections."""
    c = Counter()
    for rows in results.values():
        for _, status, _ in rows:
            c["cases"] += 1
            if status == "closed":
                c["closed"] += 1
            elif status == 503:
                c["503"] += 1
            elif status >= 500:
                c["5xx"] += 1
            else:
                c[f"{status // 100}xx"] += 1
    return c


if __name__ == "__main__":  # python tests/serve/fuzz.py http://127.0.0.1:8000
    import sys
    results = run_all(sys.argv[1])
    for group, rows in results.items():
        for name, status, _ in rows:
            if group not in ("burst", "slow"):
                print(f"{group:10s} {status!s:7s} {name}")
    print(dict(tally(results)))
