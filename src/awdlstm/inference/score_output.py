"""What `awdlstm score` writes: a row per line (log-probability, tokens, perplexity) and a
total, as a table or JSON; with per-token output, a row per token as TSV or JSON lines."""

from __future__ import annotations

import json

from ..data.metrics import per_unit, perplexity
from ..data.tokenizers.base import count_units

PER_TOKEN_COLUMNS = ("sentence_id", "token_index", "token", "scored_as", "surprisal_bits")


def write_per_token(scored, out, as_json: bool) -> None:
    """One row per token of each scored text (``TokenScores``), numbered from 1 and 0."""
    if not as_json:
        out.write("\t".join(PER_TOKEN_COLUMNS) + "\n")
    for i, s in enumerate(scored, start=1):
        for j, (tok, as_, bits) in enumerate(zip(s.tokens, s.scored_as, s.surprisal_bits)):
            if as_json:
                out.write(json.dumps(dict(zip(PER_TOKEN_COLUMNS, (i, j, tok, as_, bits))), ensure_ascii=False) + "\n")
            else:
                out.write(f"{i}\t{j}\t{tok}\t{as_}\t{bits:.6f}\n")
    out.flush()


def line_rows(lines: list[str], scored) -> tuple[list[dict], dict]:
    """(a row per line, the total): log-probability in nats, tokens (<eos> included), perplexity,
    and the words the vocabulary lacks, scored as <unk>; the total also per word and per
    character (data/metrics.py: the same log-probability over the words or the characters)."""
    rows = [{"line": i, "text": line, "tokens": len(s.logp), "logprob": s.total,
             "ppl": perplexity(-s.total / len(s.logp)),
             "unk": s.unknown}
            for i, (line, s) in enumerate(zip(lines, scored), start=1)]
    logprob, tokens = sum(r["logprob"] for r in rows), sum(r["tokens"] for r in rows)
    words, chars = map(sum, zip(*(count_units(line) for line in lines)))
    return rows, {"logprob": logprob, "tokens": tokens, "ppl": perplexity(-logprob / tokens), "words": words,
                  "chars": chars, **per_unit(-logprob / tokens, tokens, words, chars)}


def format_rows(rows: list[dict], total: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps({"lines": rows, "total": total}, indent=1)
    out = [f"{r['line']:5d}  logprob {r['logprob']:10.3f}  tokens {r['tokens']:4d}  ppl {r['ppl']:9.2f}  "
           f"{r['text'][:60]}" + (f"  (as <unk>: {' '.join(r['unk'])})" if r["unk"] else "") for r in rows]
    out.append(f"total  logprob {total['logprob']:10.3f}  tokens {total['tokens']:4d}  ppl {total['ppl']:9.2f}  "
               f"| words {total['words']}  per word ppl {total['word_ppl']:.2f} | chars {total['chars']}  "
               f"bpc {total['bpc']:.4f}")
    return "\n".join(out)
