"""One self-contained HTML page for a run: config, learning curves, timings, final metrics
and, when present, the ablation table. Images are embedded as data URIs, so the page needs
no other file and no network."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..checkpoints.run_folder import checkpoint_file, open_checkpoint
from ..data.metrics import metric
from ..errors import AwdlstmError
from ..train.logbook import read_records

STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}h2{border-bottom:1px solid #ddd}
.metric{font-size:1.4em;margin-right:2em}"""


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _markdown_table(text: str) -> str:
    lines = [l.strip().strip("|") for l in text.strip().splitlines() if l.strip().startswith("|")]
    cells = [[c.strip() for c in l.split("|")] for l in lines]
    cells = [row for row in cells if not all(set(c) <= set("-: ") for c in row)]
    return _table(cells[0], cells[1:]) if cells else ""


def _image(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p>({html.escape(alt)}: not available)</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def render_report(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    if not checkpoint_file(run_dir).is_file():
        raise AwdlstmError(f"{run_dir}: no checkpoint (best.safetensors or last.safetensors); is this a run folder?")
    ckpt = open_checkpoint(run_dir)
    cfg = ckpt.config().to_dict()
    level = ckpt.tokenizer().level
    vocab_size = len(ckpt.vocab())
    unit = "bpc" if level == "char" else "ppl"
    conv = lambda l: metric(l, level)[1]  # noqa: E731
    epochs = [r for r in read_records(run_dir) if r.get("event") == "epoch"]
    results = json.loads((run_dir / "results.json").read_text()) if (run_dir / "results.json").is_file() else {}

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>awdlstm run {html.escape(run_dir.name)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>Run {html.escape(run_dir.name)}</h1>",
             f"<p>corpus <b>{html.escape(cfg['data']['corpus'])}</b> ({level} level), "
             f"vocabulary {vocab_size:,} tokens</p>", "<h2>Final metrics</h2>"]
    if results:
        for key in (f"valid_{unit}", f"test_{unit}"):
            if key in results:
                parts.append(f"<span class='metric'>{key.replace('_', ' ')}: <b>{results[key]:.3f}</b></span>")
        parts.append(f"<p>{results.get('epochs', '?')} epochs, {results.get('elapsed_min', '?')} minutes of training, "
                     f"{results.get('parameters', 0):,} parameters; stopped: {html.escape(str(results.get('stop_reason', '')))}</p>")
    else:
        parts.append("<p>The run has not finished: no results.json yet.</p>")
    parts += ["<h2>Learning curves</h2>", _image(run_dir / "curve.png", "learning curve")]
    parts.append("<h2>Timings</h2>")
    parts.append(_table(["phase", "epoch", f"train {unit}", f"valid {unit}", "lr", "averaging", "tokens/s", "minutes"],
                        [[r["phase"], r["epoch"], f"{conv(r['train_loss']):.3f}", f"{conv(r['val_loss']):.3f}",
                          f"{r['lr']:.4g}", "yes" if r.get("averaging") else "no", f"{r['tokens_per_s']:,.0f}",
                          f"{r['elapsed_s'] / 60:.1f}"] for r in epochs]))
    for candidate in (run_dir / "ablation.md", run_dir.parent / "ablation.md"):
        if candidate.is_file():
            parts += ["<h2>Ablation</h2>", _markdown_table(candidate.read_text()),
                      _image(candidate.with_suffix(".png"), "ablation plot")]
            break
    parts.append("<h2>Configuration</h2>")
    for section, values in cfg.items():
        parts.append(f"<h3>[{html.escape(section)}]</h3>")
        parts.append(_table(["key", "value"], [[k, json.dumps(v)] for k, v in values.items()]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    out = Path(out) if out else Path(run_dir) / "report.html"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(render_report(Path(run_dir)), encoding="utf-8")
    tmp.replace(out)
    return out
