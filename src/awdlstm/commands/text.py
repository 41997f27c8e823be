"""awdlstm generate, score and rescore: text in, text or scores out."""

from __future__ import annotations

import math
import sys
from typing import Annotated

from ..commandline import Arg, command
from ..data.lines import input_lines
from ..errors import AwdlstmError
from ..inference.generate import check_sampling, generate
from ..inference.predictor import SCORE_BATCH, Predictor
from ..inference.rescore import format_ranked, parse_nbest, rescore
from ..inference.score_output import format_rows, line_rows, write_per_token
from ..inference.text import encode
from .common import Device, Run, folder, load, progress

BatchSize = Annotated[int, Arg("lines read at once")]


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise AwdlstmError(f"{option} {value}: must be a positive integer")


@command("generate", help="sample text from a checkpoint")
def generate_cmd(run: Run,
                 tokens: Annotated[int, Arg("tokens to sample")] = 100,
                 prompt: Annotated[str, Arg("text to continue")] = "",
                 temperature: Annotated[float, Arg("0 is greedy")] = 1.0,
                 top_k: Annotated[int, Arg("keep the k most likely tokens (0: all)")] = 0,
                 top_p: Annotated[float, Arg("keep the smallest set whose probability reaches p")] = 1.0,
                 seed: Annotated[int | None, Arg("seed of the sampling")] = None,
                 out=None, device: Device = None) -> None:
    out = out or sys.stdout
    _positive(tokens, "--tokens")
    check_sampling(temperature, top_k, top_p)
    model, vocab, _, ckpt = load(run, device)
    tokenizer = ckpt.tokenizer()
    ids = encode(tokenizer.tokens(prompt), vocab, "--prompt") if prompt else []
    if prompt:
        out.write(prompt + (" " if tokenizer.kind == "split" else ""))
    for token in generate(model, vocab, tokens, ids, temperature, top_k, top_p, seed):
        out.write(tokenizer.token_text(vocab.itos[token]))
        out.flush()
    out.write("\n")


@command("score", help="log-probability and perplexity of each line of a file")
def score_cmd(run: Run,
              file: Annotated[str, Arg("one text per line; - reads standard input", positional=True)],
              as_json: Annotated[bool, Arg("JSON (with --per-token: JSON lines)", flag="--json")] = False,
              log=print, device: Device = None,
              per_token: Annotated[bool, Arg("one row per token: sentence_id, token_index, token, scored_as, "
                                             "surprisal_bits (TSV)")] = False,
              batch_size: BatchSize = SCORE_BATCH, out=None) -> dict:
    """Each line's log-probability (the line then <eos>, read after <eos>); with
    ``per_token`` one row per token (TSV, or JSON lines with ``as_json``) to ``out``."""
    _positive(batch_size, "--batch-size")
    lines, where = input_lines(file)
    if not lines:
        raise AwdlstmError(f"{where}: no lines to score (empty input)")
    scored = Predictor.load(run, device).score(lines, batch_size, where=f"{where} line", progress=progress())
    rows, total = line_rows(lines, scored)
    if per_token:
        write_per_token(scored, out or sys.stdout, as_json)
    else:
        log(format_rows(rows, total, as_json))
    return total


@command("rescore", help="re-rank n-best lists: first-pass score + lm_scale x LM log-probability",
         description="N-best file: one hypothesis per line, utterance_id<TAB>first_pass_score<TAB>text (higher "
                     "scores are better). Writes each utterance's hypotheses best first.")
def rescore_cmd(run: Run,
                nbest: Annotated[str, Arg("the n-best file; - reads standard input", positional=True)],
                lm_scale: Annotated[float, Arg("weight of the LM log-probability (nats)")] = 1.0,
                word_bonus: Annotated[float, Arg("added per word of a hypothesis")] = 0.0,
                out: Annotated[str | None, Arg("write the re-ranked lists here (default: standard "
                                               "output)")] = None,
                log=print, device: Device = None, batch_size: BatchSize = SCORE_BATCH) -> dict:
    """Re-rank n-best lists (format in inference/rescore.py); writes them to ``out`` or prints them."""
    if not math.isfinite(lm_scale) or not math.isfinite(word_bonus):
        raise AwdlstmError(f"--lm-scale {lm_scale} --word-bonus {word_bonus}: must be finite numbers")
    lines, where = input_lines(nbest)
    hyps = parse_nbest(lines, where)
    scored = Predictor.load(run, device).score([h.text for h in hyps], batch_size, where=f"{where} hypothesis",
                                               progress=progress())
    ranked = rescore(hyps, [s.total for s in scored], [len(h.text.split()) for h in hyps], lm_scale, word_bonus,
                     [s.unknown for s in scored])
    text = "\n".join(format_ranked(ranked)) + "\n"
    if out:
        target = folder(out, "--out")
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise AwdlstmError(f"--out {target}: cannot write ({e.strerror})") from None
        log(f"{len(ranked)} utterances, {len(hyps)} hypotheses re-ranked: {target}")
    else:
        log(text.rstrip("\n"))
    return ranked
