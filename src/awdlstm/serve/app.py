"""The HTTP service: JSON endpoints over a trained model, and a page to try it.

    GET  /          a page: type a prefix, see next-word suggestions, generate text
    GET  /health    {"status": "ok", "vocab_size", "level", "batches", "jobs"}
    POST /next      {"context": str, "k": int = 10}
                    -> {"context": [tokens], "next": [{"token", "prob"}]}
    POST /score     {"texts": [str]} -> {"results": [{"logprob", "bits", "tokens":
                    [{"token", "scored_as", "logprob", "surprisal_bits"}]}]}
    POST /generate  {"prompt": str, "tokens": int = 50, "temperature", "top_k", "top_p", "seed"}
                    -> a stream of JSON lines {"token", "text"} as they are sampled, then {"done": true}

Requests are validated by their schema: unknown fields, wrong types, out-of-range values
and oversized input are a 4xx JSON error {"error": "..."}; the server keeps serving.
Concurrent requests share forward passes (batcher.py).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import AwdlstmError
from ..inference.generate import sample, sampling_generator
from ..inference.predictor import Predictor
from ..inference.text import detokenize, encode
from .batcher import Batcher

MAX_TEXT = 5000  # characters per text
MAX_TEXTS = 64  # texts per /score request
MAX_BODY = 1 << 20  # bytes per request body
MAX_TOKENS = 500  # tokens per /generate request


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NextRequest(Strict):
    context: str = Field("", max_length=MAX_TEXT, description="the text so far")
    k: int = Field(10, ge=1, le=1000, description="how many next tokens")


class ScoreRequest(Strict):
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS, description="texts to score")


class GenerateRequest(Strict):
    prompt: str = Field("", max_length=MAX_TEXT)
    tokens: int = Field(50, ge=1, le=MAX_TOKENS)
    temperature: float = Field(1.0, ge=0, le=10)
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(predictor: Predictor, max_batch: int = 32, max_wait: float = 0.005) -> FastAPI:
    batcher = Batcher(predictor, max_batch, max_wait)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="awdlstm", lifespan=lifespan)
    app.state.batcher = batcher
    vocab = predictor.vocab

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return _error(413, f"request body over {MAX_BODY} bytes")
        return await call_next(request)

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

    page_html = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return page_html

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "vocab_size": len(vocab), "level": predictor.level,
                "batches": batcher.batches, "jobs": batcher.jobs}

    @app.post("/next")
    async def next_words(req: NextRequest) -> dict:
        log_probs = await batcher.submit("next", predictor.ids(req.context, "context"))
        return {"context": predictor.tokens(req.context),
                "next": [{"token": t, "prob": p} for t, p in predictor.top(log_probs, req.k)]}

    @app.post("/score")
    async def score(req: ScoreRequest) -> dict:
        tokens = [predictor.tokens(t) for t in req.texts]
        encoded = [encode(tok, vocab, f"texts[{i}]") for i, tok in enumerate(tokens)]
        logps = await asyncio.gather(*(batcher.submit("score", e) for e in encoded))
        results = []
        for tok, e, lp in zip(tokens, encoded, logps):
            s = predictor.token_scores(tok, e, lp)
            results.append({"logprob": s.total, "bits": sum(s.surprisal_bits),
                            "tokens": [{"token": t, "scored_as": a, "logprob": v, "surprisal_bits": b}
                                       for t, a, v, b in zip(s.tokens, s.scored_as, s.logp, s.surprisal_bits)]})
        return {"results": results}

    @app.post("/generate")
    async def generate(req: GenerateRequest):
        context = predictor.ids(req.prompt, "prompt")
        gen = sampling_generator(req.seed)

        async def stream():
            log_probs, state = await batcher.submit("prime", context)
            for _ in range(req.tokens):
                token = sample(log_probs, req.temperature, req.top_k, req.top_p, gen)
                text = detokenize(vocab.itos[token], predictor.tokenizer, predictor.level)
                yield json.dumps({"token": vocab.itos[token], "text": text}) + "\n"
                log_probs, state = await batcher.submit("step", (state, token))
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
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    log("server stopped")
