"""The HTTP service: JSON endpoints over a trained model, and a page to try it.

    GET  /          a page: type a prefix, see next-word suggestions, generate text
    GET  /health    {"status": "ok", "vocab_size", "level", "batches", "jobs"}
    POST /next      {"context": str, "k": int = 10}
                    -> {"context": [tokens], "next": [{"token", "prob"}]}
    POST /score     {"texts": [str]} -> {"results": [{"logprob", "bits", "tokens":
                    [{"token", "scored_as", "logprob", "surprisal_bits"}]}]}
    POST /generate  {"prompt": str, "tokens": int = 50, "temperature", "top_k", "top_p", "seed"}
                    -> a stream of JSON lines {"token", "text"} as they are sampled, then {"done": true}

Every request's work is bounded before it is done. The body is counted on the bytes
actually read (a Content-Length or a chunked upload over MAX_BODY is a 413 as soon as it
passes the limit; a body that trickles in slower than BODY_SECONDS is a 408); requests are
validated by their schema (unknown fields, wrong types, out-of-range values, texts over
MAX_TEXT characters, top_k and seed outside their ranges: a 4xx JSON error {"error": "..."});
the queue of waiting work is bounded and each request has a deadline (503 with
Retry-After); one failing request never fails the others batched with it; tokenizing,
sampling and the top-k run on worker threads, never on the event loop. Every error,
FastAPI's and Starlette's own included, has the same {"error": ...} form. Concurrent
requests share forward passes (batcher.py).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AwdlstmError
from ..inference.generate import sample, sampling_generator
from ..inference.predictor import Predictor
from .batcher import Batcher, Overloaded

MAX_TEXT = 5000  # characters per text, in every endpoint
MAX_TEXTS = 64  # texts per /score request
MAX_BODY = 1 << 20  # bytes per request body, counted as they are read
BODY_SECONDS = 10.0  # the longest a request may take to send its body
MAX_TOKENS = 500  # tokens per /generate request
MAX_TOP_K = 1 << 20  # above any vocabulary: top_k >= V keeps every token
MAX_SEED = (1 << 63) - 1  # torch.Generator takes 64-bit seeds
MAX_QUEUE = 256  # jobs waiting for a forward pass
DEADLINE = 30.0  # seconds a job may wait for its forward pass
RETRY_AFTER = "1"  # seconds, with every 503
MAX_CONNECTIONS = 512  # open connections before uvicorn itself answers 503


def _encodable(text: str) -> str:
    text.encode("utf-8")  # a lone surrogate cannot be answered in JSON: a 422, not a 500
    return text


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_encodable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NextRequest(Strict):
    context: Text = Field("", description="the text so far")
    k: int = Field(10, ge=1, le=1000, description="how many next tokens")


class ScoreRequest(Strict):
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS, description="texts to score")


class GenerateRequest(Strict):
    prompt: Text = ""
    tokens: int = Field(50, ge=1, le=MAX_TOKENS)
    temperature: float = Field(1.0, ge=0, le=10)
    top_k: int = Field(0, ge=0, le=MAX_TOP_K)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _BodyError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class BodyLimit:
    """ASGI middleware: read the whole body first, counting the bytes as they arrive (so a
    chunked upload is cut off at the limit, not read to its end), within BODY_SECONDS, then
    hand it to the app. A bad or oversized Content-Length is refused before any read."""

    def __init__(self, app, max_bytes: int = MAX_BODY, seconds: float = BODY_SECONDS):
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(scope, receive), self.seconds)
        except _BodyError as e:
            return await _error(e.status, e.message)(scope, receive, send)
        except asyncio.TimeoutError:
            return await _error(408, f"the request body took more than {self.seconds:g} s")(scope, receive, send)
        if body is None:  # the client went away
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        await self.app(scope, replay, send)

    async def _read(self, scope, receive) -> bytes | None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            raise _BodyError(413, f"request body over {self.max_bytes} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _BodyError(413, f"request body over {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def create_app(predictor: Predictor, max_batch: int = 32, max_wait: float = 0.005, max_queue: int = MAX_QUEUE,
               deadline: float = DEADLINE) -> FastAPI:
    batcher = Batcher(predictor, max_batch, max_wait, max_queue, deadline)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="awdlstm", lifespan=lifespan)
    app.state.batcher = batcher
    vocab = predictor.vocab

    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "the request body is not valid JSON")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(AwdlstmError)
    async def rejected(request: Request, exc: AwdlstmError):
        return _error(400, str(exc))

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded):
        return _error(503, f"busy: {exc}; retry", {"Retry-After": RETRY_AFTER})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI's own (a body it cannot parse, e.g. JSON nested too deep), 404, 405: one form.
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    page_html = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return page_html

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "vocab_size": len(vocab), "level": predictor.level,
                "batches": batcher.batches, "jobs": batcher.jobs}

    # Tokenizing, the top-k, building the score rows and sampling run on worker threads.
    off_loop = asyncio.to_thread

    @app.post("/next")
    async def next_words(req: NextRequest) -> dict:
        tokens, ids = await off_loop(predictor.spelled, req.context, "context")
        log_probs = await batcher.submit("next", ids)
        top = await off_loop(predictor.top, log_probs, req.k)
        return {"context": tokens, "next": [{"token": t, "prob": p} for t, p in top]}

    def _encode_texts(texts: list[str]):
        spelled = [predictor.spelled(t, f"texts[{i}]") for i, t in enumerate(texts)]
        return [s[0] for s in spelled], [s[1] for s in spelled]

    def _score_rows(tokens, encoded, logps) -> list[dict]:
        results = []
        for tok, e, lp in zip(tokens, encoded, logps):
            s = predictor.token_scores(tok, e, lp)
            results.append({"logprob": s.total, "bits": sum(s.surprisal_bits), "unk": s.unknown,
                            "tokens": [{"token": t, "scored_as": a, "logprob": v, "surprisal_bits": b}
                                       for t, a, v, b in zip(s.tokens, s.scored_as, s.logp, s.surprisal_bits)]})
        return results

    @app.post("/score")
    async def score(req: ScoreRequest) -> dict:
        tokens, encoded = await off_loop(_encode_texts, req.texts)
        logps = await asyncio.gather(*(batcher.submit("score", e) for e in encoded))
        return {"results": await off_loop(_score_rows, tokens, encoded, logps)}

    @app.post("/generate")
    async def generate(req: GenerateRequest):
        context = await off_loop(predictor.ids, req.prompt, "prompt")
        gen = sampling_generator(req.seed)
        # The first forward runs before the response starts, so that a busy server answers 503.
        first = await batcher.submit("prime", context)

        def draw(log_probs) -> tuple[int, str]:
            token = sample(log_probs, req.temperature, req.top_k, req.top_p, gen)
            return token, predictor.tokenizer.token_text(vocab.itos[token])

        async def stream():
            log_probs, state = first
            try:
                for _ in range(req.tokens):
                    token, text = await off_loop(draw, log_probs)
                    yield json.dumps({"token": vocab.itos[token], "text": text}) + "\n"
                    log_probs, state = await batcher.submit("step", (state, token))
            except Overloaded as e:  # the status line is sent already: say so in the stream
                yield json.dumps({"error": f"busy: {e}; the text stops here"}) + "\n"
                return
            except Exception as e:  # noqa: BLE001 - end the stream with a line rather than a cut-off response
                yield json.dumps({"error": f"generation failed ({type(e).__name__}); the text stops here"}) + "\n"
                return
            yield json.dumps({"done": True}) + "\n"

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    return app


def serve(predictor: Predictor, host: str, port: int, max_batch: int, max_wait: float, log=print) -> None:
    """Run until SIGINT or SIGTERM: uvicorn stops accepting, finishes open requests, exits."""
    import signal

    import uvicorn
    app = create_app(predictor, max_batch, max_wait)
    log(f"serving on http://{host}:{port}/ (batches of up to {max_batch}, waiting {max_wait * 1000:g} ms); "
        f"Ctrl-C or SIGTERM stops it", flush=True)
    # uvicorn handles the signal, then raises it again once it has shut down: with these
    # handlers in place that second delivery is a no-op, so a requested stop exits with 0.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5,
                    limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    log("server stopped")
