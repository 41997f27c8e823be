"""What each CLI subcommand does, as plain functions over library pieces."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from .checkpoints import BEST, LAST, model_from_checkpoint
from .checkpoints.run_folder import check_vocab, corpus_for
from .config import DEFAULT_PRESET, build_config
from .errors import AwdlstmError
from .runtime.machine import resolve_device
from .train import Trainer, start_finetune


def _progress() -> bool:
    return sys.stderr.isatty()


def _load(path: str, device: str | None):
    """A checkpoint's model on ``device`` (default auto): (model, vocabulary, config, checkpoint)."""
    return model_from_checkpoint(Path(path), resolve_device(device))


def _model_and_corpus(path: str, device: str | None):
    """The checkpoint's model, its config, and the corpus it was trained on (vocabulary checked)."""
    model, vocab, cfg, _ = _load(path, device)
    data = corpus_for(cfg, _progress())
    check_vocab(data.vocab, vocab.itos, Path(path), cfg.data.corpus)
    return model, cfg, data


def _folder(value: str | None, option: str) -> Path | None:
    """An optional path option: None when absent; an empty string is an error, not the default."""
    if value is None:
        return None
    if not value.strip():
        raise AwdlstmError(f"{option} '': give a path, or leave the option out for the default")
    return Path(value)


def _run(trainer: Trainer) -> dict:
    try:
        return trainer.run()
    finally:
        trainer.machine.close()


def train(preset: str | None, corpus: str | None, sets: list[str], out: str | None, resume: str | None,
          log=print, device: str | None = None, minutes: float | None = None, command: str | None = None) -> dict:
    """Train a new run (or resume one). ``command``, the command line, is kept in the run
    folder (command.txt) for the model card of an export."""
    if resume:
        if preset or corpus or sets or minutes is not None:
            raise AwdlstmError("--resume takes the config from the run's checkpoint; drop --preset, --corpus, "
                               "--set and --minutes (--device may change)")
        trainer = Trainer.resume(Path(resume), _progress(), log, device)
        s = trainer.state
        done = s.batches_done if s.iterator is not None else 0  # a saved epoch end starts the next at batch 0
        trainer.log(f"resuming {resume}: {s.phase} epoch {s.epoch}, "
                    f"batch {done}, on {trainer.machine.world} process(es), "
                    f"{trainer.machine.device}")
        return _run(trainer)
    preset = DEFAULT_PRESET if preset is None else preset
    extra = ([f"train.device={device}"] if device is not None else []) + \
        ([f"train.max_minutes={minutes}"] if minutes is not None else [])
    cfg = build_config(preset, sets + extra, corpus)
    run_dir = _folder(out, "--out") or Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (run_dir / LAST).exists() or (run_dir / BEST).exists():
        raise AwdlstmError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
    data = corpus_for(cfg, _progress())
    trainer = Trainer(cfg, run_dir, data, _progress(), log)
    if command and trainer.machine.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "command.txt").write_text(command + "\n", encoding="utf-8")
    m = trainer.machine
    trainer.log(f"{preset}: {cfg.data.corpus} ({len(data.vocab):,} words), model "
                f"{trainer.model.num_parameters():,} parameters, {m.device} {m.precision}"
                f"{f', {m.world} processes' if m.distributed else ''}, run folder {run_dir}")
    return _run(trainer)


def distill(teacher: str | None, preset: str | None, sets: list[str], out: str | None, resume: str | None,
            corpus: str | None = None, log=print, device: str | None = None, minutes: float | None = None,
            temperature: float | None = None, soft_weight: float | None = None, hard_weight: float | None = None,
            square_temperature: bool | None = None, command: str | None = None) -> dict:
    """Train a student (``preset`` with ``sets``) on the teacher's corpus with the
    distillation loss of train/distill.py; ``resume`` continues an interrupted one."""
    if resume:
        if teacher:
            raise AwdlstmError("--resume takes the teacher from the run's checkpoint; drop TEACHER")
        return train(None, None, [], None, resume, log, device)
    if not teacher:
        raise AwdlstmError("distill needs TEACHER (a run folder, checkpoint or model folder) or --resume RUN_DIR")
    path = Path(teacher)
    if not path.exists():
        raise AwdlstmError(f"{teacher}: no such run folder, checkpoint or model folder (the teacher)")
    from .checkpoints.run_folder import open_checkpoint
    data = open_checkpoint(path).config().data
    knobs = {"temperature": temperature, "soft_weight": soft_weight, "hard_weight": hard_weight,
             "square_temperature": square_temperature}
    # The student reads the teacher's corpus, unless --corpus names another (whose
    # vocabulary must then be the same).
    inherited = [f"data.{k}={v}" for k, v in (("corpus", data.corpus), ("data_dir", data.data_dir),
                                               ("level", data.level), ("tokenizer", data.tokenizer))
                 if not (k == "corpus" and corpus is not None)]
    own = [f"distill.teacher={path.resolve()}"] + [f"distill.{k}={v}" for k, v in knobs.items() if v is not None]
    preset = DEFAULT_PRESET if preset is None else preset
    out = out or str(Path("runs") / f"distill-{preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    return train(preset, corpus, inherited + sets + own, out, None, log, device, minutes, command)


def finetune(run_dir: str, log=print, device: str | None = None, corpus: str | None = None,
             out: str | None = None, sets: list[str] = (), minutes: float | None = None) -> dict:
    """NT-ASGD fine-tuning of a run; with ``corpus``, language-model fine-tuning on another
    corpus and vocabulary into the run folder ``out`` (train/transfer.py)."""
    path = Path(run_dir)
    if corpus is None:
        if out is not None or sets or minutes is not None:
            raise AwdlstmError("--out, --set and --minutes go with --corpus (fine-tuning on a new corpus); "
                               "plain `finetune RUN` continues the run with averaged SGD in its own folder")
        if not path.is_dir():
            raise AwdlstmError(f"{path}: no such run folder")
        return _run(start_finetune(path, _progress(), log, device))
    from .train.transfer import start_transfer
    if not path.exists():
        raise AwdlstmError(f"{path}: no such run folder, checkpoint or model folder")
    target = _folder(out, "--out") or Path("runs") / f"{path.name}-to-{Path(corpus).name}"
    if (target / LAST).exists() or (target / BEST).exists():
        raise AwdlstmError(f"{target} already holds a run; continue it with `awdlstm train --resume {target}` "
                           f"or choose another --out")
    return _run(start_transfer(path, corpus, target, list(sets), minutes, _progress(), log, device))


# Cache settings of the spec (Grave et al. / AWD-LSTM): (window, theta, lambda).
CACHE_DEFAULTS = {"wikitext-2": (3785, 0.662, 0.1279)}
CACHE_FALLBACK = (500, 1.0, 0.1)


def evaluate_cmd(path: str, split: str, batch_size: int | None, log=print, cache: bool = False,
                 window: int | None = None, theta: float | None = None, lam: float | None = None,
                 dynamic: bool = False, lr: float = 2e-5, decay: float = 0.02, rule: str = "rms",
                 dyn_bptt: int = 5, device: str | None = None) -> dict:
    from .runtime.evaluate import evaluate, metric
    model, cfg, data = _model_and_corpus(path, device)
    if cache or dynamic:
        return _evaluate_beyond_static(model, data, cfg, split, batch_size, log, cache, window, theta, lam,
                                       dynamic, lr, decay, rule, dyn_bptt)
    if batch_size is None:
        batch_size = cfg.train.test_batch_size if split == "test" else cfg.train.eval_batch_size
    if batch_size < 1:
        raise AwdlstmError(f"--batch-size {batch_size}: must be a positive integer")
    loss = evaluate(model, data.split(split), batch_size, cfg.train.bptt, _progress(), split)
    name, value = metric(loss, data.level)
    log(f"{split}: loss {loss:.4f} | {name} {value:.3f} | batch size {batch_size} | {len(data.split(split)):,} tokens")
    return {"split": split, "loss": loss, name: value}


def _evaluate_beyond_static(model, data, cfg, split, batch_size, log, cache, window, theta, lam,
                            dynamic, lr, decay, rule, dyn_bptt) -> dict:
    from .evaluation import cache_loss, cache_target_probs, score_dynamic, score_static
    from .runtime.evaluate import metric
    if batch_size not in (None, 1):
        raise AwdlstmError(f"--batch-size {batch_size}: the cache and dynamic evaluation read the split at batch 1")
    dw, dt, dl = CACHE_DEFAULTS.get(cfg.data.corpus, CACHE_FALLBACK)
    window = dw if window is None else window
    theta = dt if theta is None else theta
    lam = dl if lam is None else lam
    if window < 1 or theta < 0 or not 0 <= lam <= 1:
        raise AwdlstmError(f"cache settings window={window} theta={theta} lambda={lam}: need window >= 1, "
                           f"theta >= 0, 0 <= lambda <= 1")
    ids = data.split(split)
    if dynamic:
        scored = score_dynamic(model, ids, lr, decay, rule, dyn_bptt, train_ids=data.train, progress=_progress())
        kind = f"dynamic ({rule}, lr {lr:g}, decay {decay:g}, segments of {dyn_bptt})"
    else:
        scored = score_static(model, ids, cfg.train.bptt, progress=_progress())
        kind = "static"
    name, value = metric(scored.loss(), data.level)
    log(f"{split} {kind}: loss {scored.loss():.4f} | {name} {value:.3f}")
    result = {"split": split, "loss": scored.loss(), name: value}
    if cache:
        pc = cache_target_probs(scored.hidden, scored.targets, theta, window)
        loss = cache_loss(scored.logp, pc, lam)
        name, value = metric(loss, data.level)
        log(f"{split} {kind} + cache (window {window}, theta {theta:g}, lambda {lam:g}): "
            f"loss {loss:.4f} | {name} {value:.3f}")
        result.update({"cache_loss": loss, f"cache_{name}": value})
    return result


def tune_cache(path: str, windows: list[int], log=print, device: str | None = None) -> tuple:
    from .evaluation import score_static, tune
    from .evaluation.cache import default_grid
    from .runtime.evaluate import metric
    model, cfg, data = _model_and_corpus(path, device)
    if any(w < 1 for w in windows):
        raise AwdlstmError(f"--windows {windows}: every window must be >= 1")
    scored = score_static(model, data.valid, cfg.train.bptt, progress=_progress())
    thetas, lambdas = default_grid()
    results = tune(scored.hidden, scored.targets, scored.logp, thetas, lambdas, windows)
    name, base = metric(scored.loss(), data.level)
    log(f"validation without cache: {name} {base:.3f}")
    for loss, w, t, l in results[:5]:
        log(f"  window {w:5d} theta {t:5.2f} lambda {l:6.3f}: {name} {metric(loss, data.level)[1]:.3f}")
    loss, w, t, l = results[0]
    log(f"best: --window {w} --theta {t:g} --lambda {l:g}")
    return results[0]


def generate_cmd(path: str, tokens: int, prompt: str, temperature: float, top_k: int, top_p: float,
                 seed: int | None, out=None, device: str | None = None) -> None:
    from .inference.generate import check_sampling, generate
    from .inference.text import detokenize, encode, to_tokens
    out = out or sys.stdout
    if tokens < 1:
        raise AwdlstmError(f"--tokens {tokens}: must be a positive integer")
    check_sampling(temperature, top_k, top_p)
    model, vocab, _, ckpt = _load(path, device)
    level, tokenizer = ckpt.text_format()
    ids = encode(to_tokens(prompt, tokenizer, level), vocab, "--prompt") if prompt else []
    if prompt:
        out.write(prompt + ("" if tokenizer == "chars" else " "))
    for token in generate(model, vocab, tokens, ids, temperature, top_k, top_p, seed):
        out.write(detokenize(vocab.itos[token], tokenizer, level))
        out.flush()
    out.write("\n")


def _text_lines(file: str) -> tuple[list[str], str]:
    """The lines of ``file``, or of standard input when it is ``-``: (lines, name for errors)."""
    from .data.corpus import read_lines
    if file == "-":
        lines = [line.rstrip("\r") for line in sys.stdin.read().split("\n")]
        if lines and not lines[-1].strip():
            lines.pop()
        return lines, "<stdin>"
    return read_lines(Path(file)), file


def score_cmd(path: str, file: str, as_json: bool, log=print, device: str | None = None,
              per_token: bool = False, batch_size: int = 64, out=None) -> dict:
    """Each line's log-probability (the line then <eos>, read after <eos>); with
    ``per_token`` one row per token (TSV, or JSON lines with ``as_json``) to ``out``."""
    from .inference.predictor import Predictor
    if batch_size < 1:
        raise AwdlstmError(f"--batch-size {batch_size}: must be a positive integer")
    lines, where = _text_lines(file)
    if not lines:
        raise AwdlstmError(f"{where}: no lines to score (empty input)")
    lm = Predictor.load(path, device)
    scored = lm.score(lines, batch_size, where=f"{where} line")
    if per_token:
        out = out or sys.stdout
        if not as_json:
            out.write("sentence_id\ttoken_index\ttoken\tscored_as\tsurprisal_bits\n")
        for i, s in enumerate(scored, start=1):
            for j, (tok, as_, bits) in enumerate(zip(s.tokens, s.scored_as, s.surprisal_bits)):
                if as_json:
                    out.write(json.dumps({"sentence_id": i, "token_index": j, "token": tok, "scored_as": as_,
                                          "surprisal_bits": bits}, ensure_ascii=False) + "\n")
                else:
                    out.write(f"{i}\t{j}\t{tok}\t{as_}\t{bits:.6f}\n")
        out.flush()
    rows = [{"line": i, "text": line, "tokens": len(s.logp), "logprob": s.total, "ppl": math.exp(-s.total / len(s.logp))}
            for i, (line, s) in enumerate(zip(lines, scored), start=1)]
    logprob, tokens = sum(r["logprob"] for r in rows), sum(r["tokens"] for r in rows)
    total = {"logprob": logprob, "tokens": tokens, "ppl": math.exp(-logprob / tokens)}
    if per_token:
        return total
    if as_json:
        log(json.dumps({"lines": rows, "total": total}, indent=1))
    else:
        for r in rows:
            log(f"{r['line']:5d}  logprob {r['logprob']:10.3f}  tokens {r['tokens']:4d}  ppl {r['ppl']:9.2f}  {r['text'][:60]}")
        log(f"total  logprob {total['logprob']:10.3f}  tokens {total['tokens']:4d}  ppl {total['ppl']:9.2f}")
    return total


def rescore_cmd(path: str, nbest: str, lm_scale: float, word_bonus: float, out: str | None, log=print,
                device: str | None = None, batch_size: int = 64) -> dict:
    """Re-rank n-best lists (format in inference/rescore.py); writes them to ``out`` or prints them."""
    from .inference.predictor import Predictor
    from .inference.rescore import format_ranked, parse_nbest, rescore
    if not math.isfinite(lm_scale) or not math.isfinite(word_bonus):
        raise AwdlstmError(f"--lm-scale {lm_scale} --word-bonus {word_bonus}: must be finite numbers")
    lines, where = _text_lines(nbest)
    hyps = parse_nbest(lines, where)
    lm = Predictor.load(path, device)
    scored = lm.score([h.text for h in hyps], batch_size, where=f"{where} hypothesis")
    ranked = rescore(hyps, [s.total for s in scored], [len(h.text.split()) for h in hyps], lm_scale, word_bonus)
    text = "\n".join(format_ranked(ranked)) + "\n"
    if out:
        target = _folder(out, "--out")
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise AwdlstmError(f"--out {target}: cannot write ({e.strerror})") from None
        log(f"{len(ranked)} utterances, {len(hyps)} hypotheses re-ranked: {target}")
    else:
        log(text.rstrip("\n"))
    return ranked


def export_cmd(path: str, fmt: str, out: str, int8: bool = False, log=print) -> list[Path]:
    """Write a run's model as a model folder or an ONNX file (with an int8 copy)."""
    from .checkpoints.model_folder import model_card, write_model_folder
    from .checkpoints.run_folder import model_from_checkpoint
    target = _folder(out, "--out")
    if target is None:
        raise AwdlstmError("--out is required: the folder (--format folder) or .onnx file (--format onnx) to write")
    if int8 and fmt != "onnx":
        raise AwdlstmError("--int8 applies to --format onnx only")
    model, vocab, _, ckpt = model_from_checkpoint(Path(path), "cpu")
    if fmt == "folder":
        source = Path(path) if Path(path).is_dir() else Path(path).parent
        results = json.loads((source / "results.json").read_text()) if (source / "results.json").is_file() else None
        command = (source / "command.txt").read_text().strip() if (source / "command.txt").is_file() else None
        files = write_model_folder(ckpt, target, model_card(ckpt, model.num_parameters(), results, command, source))
    elif fmt == "onnx":
        from .export.onnx_model import export_onnx
        files = export_onnx(model, vocab.itos, *ckpt.text_format(), target, int8)
    else:
        raise AwdlstmError(f"--format {fmt}: valid formats are folder and onnx")
    for f in files:
        log(f"wrote {f} ({f.stat().st_size / 1e6:.1f} MB)")
    return files


def serve_cmd(path: str, host: str, port: int, max_batch: int, max_wait_ms: float, device: str | None = None,
              log=print) -> None:
    from .inference.predictor import Predictor
    if not 0 <= port <= 65535:
        raise AwdlstmError(f"--port {port}: must be in 0..65535")
    if max_batch < 1 or max_wait_ms < 0:
        raise AwdlstmError(f"--max-batch {max_batch} --max-wait-ms {max_wait_ms}: need max-batch >= 1 and "
                           f"max-wait-ms >= 0")
    try:
        from .serve.app import serve
    except ImportError as e:
        raise AwdlstmError(f"awdlstm serve needs FastAPI and uvicorn ({e.name} is missing): "
                           f"pip install 'awdlstm[serve]'") from None
    import socket
    try:  # a taken port is a one-line error here rather than uvicorn's log and exit code
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise AwdlstmError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); "
                           f"choose another port") from None
    serve(Predictor.load(path, device), host, port, max_batch, max_wait_ms / 1000, log)


def gradflow_cmd(run: str | None, steps: int, hidden: int, clip: float, out: str, log=print,
                 device: str | None = None) -> dict:
    from .diagnostics.gradflow import (
        format_table,
        gradflow,
        lstm_cell_from_model,
        plot_gradflow,
    )
    if steps < 2 or hidden < 1 or clip <= 0:
        raise AwdlstmError(f"--steps {steps} --hidden {hidden} --clip {clip}: need steps >= 2, hidden >= 1, clip > 0")
    lstm = None
    if run:
        model, _, _, _ = _load(run, "cpu")
        lstm = lstm_cell_from_model(model)
    curves = gradflow(steps=steps, hidden=hidden, clip=clip, lstm=lstm,
                      device=resolve_device(device))
    log(format_table(curves))
    plot_gradflow(curves, out)
    log(f"plot: {out}")
    return curves


def ablate_cmd(preset: str, budget: float | None, out: str | None, sets: list[str], jobs: int | None, log=print) -> str:
    from .diagnostics.ablate import run_ablation
    if budget is not None and budget <= 0:
        raise AwdlstmError(f"--budget {budget}: minutes per variant must be positive")
    out_dir = _folder(out, "--out") or Path("runs") / f"ablate-{preset}"
    table = run_ablation(preset, out_dir, budget, sets, jobs, log)
    log(table)
    log(f"table: {out_dir / 'ablation.md'}, plot: {out_dir / 'ablation.png'}")
    return table


def embeddings_cmd(run: str, words: list[str], analogies: list[str], k: int, plot_n: int, out: str | None,
                   log=print, device: str | None = None) -> None:
    from .diagnostics.embeddings import analogy, neighbours, plot_projection, projection
    model, vocab, _, _ = _load(run, device)
    emb = model.embedding.weight.detach()  # similarities on the device; the plot reads a CPU copy
    for w in words:
        log(f"{w}: " + ", ".join(f"{n} ({s:.2f})" for n, s in neighbours(emb, vocab, w, k)))
    for item in analogies:
        parts = item.split(":")
        if len(parts) != 3:
            raise AwdlstmError(f"--analogy {item!r}: write it as a:b:c (a is to b as c is to ?)")
        a, b, c = parts
        log(f"{a} : {b} :: {c} : " + ", ".join(f"{n} ({s:.2f})" for n, s in analogy(emb, vocab, a, b, c, k)))
    if plot_n:
        n = min(plot_n, len(vocab))
        path = _folder(out, "--out") or (Path(run) if Path(run).is_dir() else Path(run).parent) / "embeddings.png"
        plot_projection(projection(emb, n).cpu(), vocab.itos[:n], path, f"2-D PCA of the {n} most frequent words")
        log(f"plot: {path}")


def report_cmd(run: str, out: str | None, log=print) -> Path:
    from .diagnostics.report import write_report
    path = write_report(Path(run), _folder(out, "--out"))
    log(f"report: {path}")
    return path


def kernels_cmd(log=print) -> None:
    from .model import native
    module = native.native()
    if module is None:
        raise AwdlstmError("the compiled CPU kernels are not available here (see the warning above); "
                           "training uses the PyTorch implementation")
    log(f"CPU kernels ready: {module.__file__}")
