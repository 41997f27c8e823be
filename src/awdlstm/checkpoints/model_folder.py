"""Model folders: a trained model in the layout users know from model hubs.

    DIR/config.json        {"format", "level", "tokenizer", ["tokenizer_model",] "vocab_size", "tied",
                            "config": {...}}; ``tokenizer_model`` holds a subword model itself
                            (data/tokenizers/subword.py), so the folder needs no side file
    DIR/model.safetensors  the weights to use (the tied output matrix stored once)
    DIR/vocab.json         the tokens, a JSON list in id order
    DIR/README.md          a model card: corpus, size, perplexities, training time, command

Reading opens the same ``Checkpoint`` as a run's file, so every command that takes a run
or checkpoint takes a folder too; nothing is unpickled (JSON and safetensors only).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import AwdlstmError
from .checkpoint import Checkpoint, dedupe_tied

FORMAT = "awdlstm-model-1"
CONFIG, WEIGHTS, VOCAB, CARD = "config.json", "model.safetensors", "vocab.json", "README.md"


def is_model_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def write_model_folder(ckpt: Checkpoint, out: Path, card: str) -> list[Path]:
    """Write ``ckpt``'s weights, config and vocabulary (and ``card``) into ``out``; returns the files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AwdlstmError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise AwdlstmError(f"--out {out}: folder is not empty; choose a new or empty folder")
    weights, tied = {}, {}
    dedupe_tied("", ckpt.weights(), weights, tied)  # the tied decoder is stored once, as the embedding
    tokenizer = ckpt.tokenizer()
    itos = ckpt.vocab()
    config = {"format": FORMAT, "level": tokenizer.level, **tokenizer.meta(), "vocab_size": len(itos),
              "tied": tied, "config": ckpt.config().to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / WEIGHTS), metadata={"format": "pt"})
    (out / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (out / VOCAB).write_text(json.dumps(itos, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / CARD).write_text(card, encoding="utf-8")
    return [out / n for n in (CONFIG, WEIGHTS, VOCAB, CARD)]


def _json(path: Path, kind: type, what: str):
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AwdlstmError(f"{path}: missing; a model folder holds {CONFIG}, {WEIGHTS} and {VOCAB}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise AwdlstmError(f"{path}: not valid JSON ({str(e)[:100]})") from None
    if not isinstance(value, kind):
        raise AwdlstmError(f"{path}: the {what} must be a JSON {'object' if kind is dict else 'list'}")
    return value


def read_model_folder(folder: Path) -> Checkpoint:
    """Open a model folder as a finished-model ``Checkpoint`` (kind "exported")."""
    folder = Path(folder)
    config = _json(folder / CONFIG, dict, "config")
    if config.get("format") != FORMAT:
        raise AwdlstmError(f"{folder / CONFIG}: not an awdlstm model folder (format {config.get('format')!r}, "
                           f"expected {FORMAT})")
    itos = _json(folder / VOCAB, list, "vocabulary")
    path = folder / WEIGHTS
    if not path.is_file():
        raise AwdlstmError(f"{path}: missing; a model folder holds {CONFIG}, {WEIGHTS} and {VOCAB}")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise AwdlstmError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    tied = config.get("tied", {})
    if not isinstance(tied, dict) or any(t not in weights for t in tied.values()):
        raise AwdlstmError(f"{folder / CONFIG}: 'tied' must map weight names to stored weights")
    for alias, target in tied.items():
        weights[alias] = weights[target]
    if len(itos) != config.get("vocab_size"):
        raise AwdlstmError(f"{folder / VOCAB}: {len(itos)} tokens, but {CONFIG} says vocab_size "
                           f"{config.get('vocab_size')}")
    meta = {"kind": "exported", "config": config.get("config"), "vocab": itos,
            **{k: config[k] for k in ("level", "tokenizer", "tokenizer_model") if k in config}}
    return Checkpoint(folder, {"model.": weights}, meta)


def run_card(ckpt: Checkpoint, num_parameters: int, source: Path) -> str:
    """The model card of a run folder's model: with its results.json and command.txt when
    the folder has them."""
    source = Path(source)
    results = json.loads((source / "results.json").read_text()) if (source / "results.json").is_file() else None
    command = (source / "command.txt").read_text().strip() if (source / "command.txt").is_file() else None
    return model_card(ckpt, num_parameters, results, command, source)


def model_card(ckpt: Checkpoint, num_parameters: int, results: dict | None, command: str | None,
               source: Path) -> str:
    """The README.md of a model folder: what the model is and how well it does."""
    cfg = ckpt.config()
    tokenizer = ckpt.tokenizer()
    level = tokenizer.level
    m, t = cfg.model, cfg.train
    cells = m.layer_cells or [m.cell] * m.num_layers
    lines = [f"# awdlstm language model: {cfg.data.corpus}", "",
             f"A {m.num_layers}-layer recurrent language model ({', '.join(sorted(set(cells)))} cells) trained "
             f"with awdlstm on `{cfg.data.corpus}` ({level} level, "
             f"{len(ckpt.vocab()):,} tokens in the vocabulary).", "",
             "| | |", "|---|---|",
             f"| parameters | {num_parameters:,} |",
             f"| embedding / hidden | {m.emb_size} / {m.hidden_size} |",
             f"| output head | {m.head}{' (tied to the embedding)' if m.tie_weights else ''} |",
             f"| optimizer, schedule | {t.optimizer}, {t.schedule} |"]
    if results:
        unit = "bpc" if level == "char" else "ppl"
        for split in ("valid", "test"):
            if f"{split}_{unit}" in results:
                lines.append(f"| {split} {unit} | {results[f'{split}_{unit}']:.3f} |")
        if "elapsed_min" in results:
            lines.append(f"| training time | {results['elapsed_min']:.1f} min, {results.get('epochs', '?')} "
                         f"epochs on {results.get('processes', 1)} process(es), {results.get('device', '?')} |")
    lines += ["", "## How it was made", "", "```", command or "(the training command was not recorded)", "```", "",
              f"Exported from `{source}`. The full training config is in `config.json`.", "",
              "## Use", "", "```", "awdlstm score DIR sentences.txt --per-token",
              "awdlstm generate DIR --prompt \"the company\"", "awdlstm serve DIR", "```", "",
              "```python", "import awdlstm", "lm = awdlstm.load(\"DIR\")",
              "print(lm.top_k(\"the company said\", 5))", "```", "",
              "Files: `config.json` (format, text level, tokenizer, model and training config), "
              "`model.safetensors` (weights), `vocab.json` (tokens in id order)."
              f"{' Unknown words are read as `<unk>`.' if '<unk>' in ckpt.vocab() else ''}", ""]
    if tokenizer.kind == "split" and level == "char":
        lines.insert(-1, "Text is split into characters with `_` at word boundaries, as in PTB-char.")
    if tokenizer.vocabulary() is not None:
        lines.insert(-1, f"Text is read in subword units ({tokenizer!r}); the model is stored in `config.json` "
                         f"(`tokenizer_model`), so nothing else is needed to read text as the model was trained.")
    return "\n".join(lines)

