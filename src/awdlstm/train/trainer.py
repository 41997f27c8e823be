"""The training loop (SPEC §3): SGD with clipping and weight decay, variable BPTT with the
per-step learning-rate scale, NT-ASGD (running average of all parameters, used for
evaluation and the saved best model), the book schedule, ``when`` drops, Adam, and
fine-tuning; with checkpoints that let a killed run resume exactly.

Run folder: ``last.safetensors`` (every few minutes and at each epoch end), ``best.safetensors``
(lowest validation loss; averaged weights once averaging is on), ``metrics.jsonl``,
``curve.png``, ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ..config import RunConfig
from ..data.batching import BPTTIterator, batchify
from ..data.corpus import Corpus, load_corpus
from ..data.vocab import Vocabulary
from ..errors import AwdlstmError
from ..model import ar_penalty, build_model, detach_hidden, tar_penalty
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate, metric
from .plot import plot_curve
from .schedule import book_lr, nonmono_triggered

LAST, BEST = "last.safetensors", "best.safetensors"


class Interrupted(Exception):
    """Ctrl-C during training: the state was saved to ``last``."""


@dataclasses.dataclass
class TrainState:
    """Everything besides tensors that a resume needs (JSON in the checkpoint)."""

    phase: str = "train"  # "train" or "finetune"
    epoch: int = 1  # the epoch in progress, or the next one to run
    iterator: dict | None = None  # BPTTIterator state while an epoch is in progress
    batches_done: int = 0
    loss_sum: float = 0.0  # sum over the epoch's batches of raw loss x tokens
    tokens: int = 0
    lr: float = 0.0  # the base learning rate (schedules change it)
    averaging: bool = False
    history: list = dataclasses.field(default_factory=list)  # validation losses of this phase
    best_val: float = math.inf
    elapsed: float = 0.0  # seconds of training, over all sessions
    done: bool = False
    stop_reason: str = ""


def read_records(run_dir: Path) -> list[dict]:
    """The run's metrics.jsonl records. A run killed between logging an epoch and saving
    `last` logs that epoch again after the resume: the latest record of each (phase, epoch)
    is kept."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return list({(r.get("phase"), r.get("epoch")): r for r in rows}.values())


def corpus_for(cfg: RunConfig, progress: bool = True) -> Corpus:
    d = cfg.data
    return load_corpus(d.corpus, data_dir=d.data_dir or None, level=d.level or None,
                       tokenizer=d.tokenizer or None, progress=progress)


def check_vocab(vocab: Vocabulary, itos: list[str], where: Path, corpus: str) -> None:
    if vocab.itos != itos:
        raise AwdlstmError(f"{where}: checkpoint vocabulary ({len(itos)} tokens) does not match corpus "
                           f"'{corpus}' ({len(vocab)} tokens); use the corpus the model was trained on")


def load_run(path: Path) -> tuple[RunConfig, list[str], dict, dict]:
    """Open a run folder (its best checkpoint) or a checkpoint file: (config, vocab, tensors, meta)."""
    path = Path(path)
    file = path / BEST if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        file = path / LAST
    tensors, meta = load_checkpoint(file)
    try:
        cfg = RunConfig.from_dict(meta["config"], where=str(file))
        itos = meta["vocab"]
    except KeyError as e:
        raise AwdlstmError(f"{file}: checkpoint lacks its {e.args[0]}") from None
    return cfg, itos, tensors, meta


def model_from_checkpoint(path: Path):
    """Rebuild the model from the file alone: (model in eval mode, vocabulary, config, meta)."""
    cfg, itos, tensors, meta = load_run(path)
    model = build_model(cfg.model, len(itos))
    weights = tensors["model."]
    if "avg." in tensors:  # a `last` checkpoint taken while averaging: evaluate the average
        weights = {k[len("module."):]: v for k, v in tensors["avg."].items() if k.startswith("module.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise AwdlstmError(f"{path}: weights do not fit the stored config ({str(e).splitlines()[0]})") from None
    return model.eval(), Vocabulary(itos), cfg, meta


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, corpus: Corpus, progress: bool = True, log=print):
        self.cfg, self.run_dir, self.corpus, self.log = cfg, Path(run_dir), corpus, log
        self.progress = progress
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed)
        self.model = build_model(cfg.model, len(corpus.vocab))
        self.state = TrainState(lr=t.lr)
        self.optimizer = self._make_optimizer()
        self.average: AveragedModel | None = None
        self.train_source = batchify(corpus.train, t.batch_size)
        self.hidden = None
        self._stop = threading.Event()
        self._tb = None

    # ---- construction -------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        params = list(self.model.parameters())
        if t.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.state.lr, weight_decay=t.weight_decay)
        return torch.optim.SGD(params, lr=self.state.lr, weight_decay=t.weight_decay)

    def _start_averaging(self) -> None:
        # An equal-weight running average of every parameter (the tied matrix once),
        # updated after each optimizer step: ASGD with lambda = 0 and t0 = now.
        self.average = AveragedModel(self.model)
        self.state.averaging = True

    @classmethod
    def resume(cls, run_dir: Path, progress: bool = True, log=print) -> Trainer:
        run_dir = Path(run_dir)
        if not (run_dir / LAST).is_file():
            raise AwdlstmError(f"{run_dir}: no {LAST} to resume from; start a run with `awdlstm train --out {run_dir}`")
        tensors, meta = load_checkpoint(run_dir / LAST)
        cfg = RunConfig.from_dict(meta["config"], where=str(run_dir / LAST))
        corpus = corpus_for(cfg, progress)
        check_vocab(corpus.vocab, meta["vocab"], run_dir / LAST, cfg.data.corpus)
        trainer = cls(cfg, run_dir, corpus, progress, log)
        trainer._restore(tensors, meta)
        return trainer

    def _restore(self, tensors: dict, meta: dict) -> None:
        self.state = TrainState(**meta["state"])
        self.model.load_state_dict(tensors["model."])
        if self.state.averaging:
            self._start_averaging()
            self.average.load_state_dict(tensors["avg."])
        self.optimizer = self._make_optimizer()
        opt_state = {"state": {}, "param_groups": meta["optim_groups"]}
        for name, t in tensors.get("optim.", {}).items():
            idx, key = name.split(".", 1)
            opt_state["state"].setdefault(int(idx), {})[key] = t
        self.optimizer.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng."]["torch"])
        if "hidden." in tensors:
            h = tensors["hidden."]
            self.hidden = [(h[f"{i}.h"], h[f"{i}.c"]) for i in range(len(self.model.layers))]

    # ---- checkpoints --------------------------------------------------------------
    def _meta(self, **extra) -> dict:
        opt = self.optimizer.state_dict()
        return {"config": self.cfg.to_dict(), "vocab": self.corpus.vocab.itos,
                "level": self.corpus.level, "tokenizer": self.corpus.tokenizer,
                "state": dataclasses.asdict(self.state), "optim_groups": opt["param_groups"], **extra}

    def save_last(self) -> None:
        opt = self.optimizer.state_dict()
        groups = {"model.": self.model.state_dict(), "rng.": {"torch": torch.get_rng_state()},
                  "optim.": {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()
                             if torch.is_tensor(v)}}
        if self.average is not None:
            groups["avg."] = self.average.state_dict()
        if self.hidden is not None and self.state.iterator is not None:
            groups["hidden."] = {f"{i}.{n}": t for i, (h, c) in enumerate(self.hidden) for n, t in (("h", h), ("c", c))}
        save_checkpoint(self.run_dir / LAST, groups, self._meta())

    def save_best(self) -> None:
        model = self.eval_model()
        save_checkpoint(self.run_dir / BEST, {"model.": model.state_dict()},
                        self._meta(from_average=self.state.averaging))

    def eval_model(self):
        """The averaged weights once averaging is on, else the model itself."""
        return self.average.module if self.average is not None else self.model

    # ---- logging ------------------------------------------------------------------
    def _record(self, rec: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self._tb = False
        if self._tb and rec.get("event") == "epoch":
            step = len(self.records())
            for k in ("train_loss", "val_loss", "lr"):
                self._tb.add_scalar(k, rec[k], step)

    def records(self) -> list[dict]:
        return read_records(self.run_dir)

    # ---- the loop -----------------------------------------------------------------
    def _budget_left(self, started: float) -> bool:
        limit = self.cfg.train.max_minutes * 60
        return not limit or self.state.elapsed + (time.monotonic() - started) < limit

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()
            self.log("\ninterrupt: saving at the end of this batch (press Ctrl-C again to abort without saving)")

        return signal.signal(signal.SIGINT, handler)

    def run(self) -> dict:
        """Train until the epochs, the wall-clock budget or the fine-tuning trigger end it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        old = self._install_sigint()
        try:
            max_epochs = self.cfg.train.epochs if self.state.phase == "train" else self.cfg.train.finetune_epochs
            while not self.state.done:
                if self.state.epoch > max_epochs:
                    self.state.done, self.state.stop_reason = True, f"reached {max_epochs} epochs"
                    break
                started = time.monotonic()
                budget_hit = self._run_epoch(started)
                self.state.elapsed += time.monotonic() - started
                self._end_epoch()
                if budget_hit:
                    self.state.done = True
                    self.state.stop_reason = f"wall-clock budget of {self.cfg.train.max_minutes:g} minutes"
                self.save_last()
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        self.log(f"training stopped: {self.state.stop_reason}")
        return self.final_results()

    def _run_epoch(self, started: float) -> bool:
        """One epoch (or its remainder after a resume). True when the budget ran out."""
        t, s = self.cfg.train, self.state
        V = len(self.corpus.vocab)
        it = BPTTIterator(self.train_source, t.bptt, t.variable_bptt, seed=t.seed * 1000 + s.epoch)
        if s.iterator is not None:
            it.load_state_dict(s.iterator)
        else:
            s.batches_done, s.loss_sum, s.tokens = 0, 0.0, 0
            self.hidden = self.model.init_hidden(t.batch_size)
        if self.hidden is None:
            self.hidden = self.model.init_hidden(t.batch_size)
        self.model.train()
        last_save = time.monotonic()
        t0, tok0 = time.monotonic(), s.tokens
        bar = tqdm(total=len(it), initial=s.batches_done, desc=f"{s.phase} epoch {s.epoch}", unit="batch",
                   leave=False, dynamic_ncols=True, disable=None if self.progress else True)
        budget_hit = False
        with bar:
            for batch in it:
                hidden = detach_hidden(self.hidden)
                lr = s.lr * batch.lr_scale if t.variable_bptt else s.lr
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                out = self.model(batch.x, hidden)
                raw_loss = F.cross_entropy(out.logits.view(-1, V), batch.y.reshape(-1))
                loss = raw_loss
                if t.alpha:
                    loss = loss + ar_penalty(out.dropped_output, t.alpha)
                if t.beta:
                    loss = loss + tar_penalty(out.raw_output, t.beta)
                if not torch.isfinite(loss):
                    raise AwdlstmError(
                        f"loss became {loss.item()} in {s.phase} epoch {s.epoch}, batch {s.batches_done + 1}; "
                        f"stopped, the last good checkpoint {self.run_dir / LAST} is kept; try a lower "
                        f"train.lr (now {s.lr:g}) or train.clip")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t.clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip)
                self.optimizer.step()
                if self.average is not None:
                    self.average.update_parameters(self.model)
                self.hidden = out.hidden
                n = batch.y.numel()
                s.loss_sum += raw_loss.item() * n
                s.tokens += n
                s.batches_done += 1
                s.iterator = it.state_dict()
                bar.update()
                if s.batches_done % 5 == 0 or s.batches_done == 1:
                    mean = s.loss_sum / s.tokens
                    name, value = metric(mean, self.corpus.level)
                    rate = (s.tokens - tok0) / max(time.monotonic() - t0, 1e-9)
                    bar.set_postfix_str(f"loss {mean:.3f} {name} {value:.2f} lr {s.lr:.3g} {rate:,.0f} tok/s")
                if self._stop.is_set():
                    s.elapsed += time.monotonic() - started
                    self.save_last()
                    raise Interrupted(f"interrupted; state saved to {self.run_dir / LAST}; "
                                      f"continue with `awdlstm train --resume {self.run_dir}`")
                now = time.monotonic()
                if (t.checkpoint_batches and s.batches_done % t.checkpoint_batches == 0) or \
                        now - last_save > t.checkpoint_minutes * 60:
                    s.elapsed += now - started
                    self.save_last()
                    s.elapsed -= now - started  # counted again when the epoch's time is added
                    last_save = now
                if not self._budget_left(started):
                    budget_hit = True
                    break
        self._rate = (s.tokens - tok0) / max(time.monotonic() - t0, 1e-9)
        return budget_hit

    def _end_epoch(self) -> None:
        t, s = self.cfg.train, self.state
        val = evaluate(self.eval_model(), self.corpus.valid, t.eval_batch_size, t.bptt, self.progress, "validate")
        train_loss = s.loss_sum / max(s.tokens, 1)
        rec = {"event": "epoch", "phase": s.phase, "epoch": s.epoch, "train_loss": train_loss,
               "val_loss": val, "lr": s.lr, "averaging": s.averaging, "tokens_per_s": round(self._rate, 1),
               "elapsed_s": round(s.elapsed, 1), "batches": s.batches_done}
        improved = val < s.best_val
        if improved:
            s.best_val = val
            self.save_best()
        if s.phase == "finetune":
            if nonmono_triggered(s.history, val, t.nonmono):
                s.done, s.stop_reason = True, "fine-tuning: the non-monotone trigger fired"
        elif t.schedule == "ntasgd" and t.optimizer == "sgd" and not s.averaging \
                and nonmono_triggered(s.history, val, t.nonmono):
            self._start_averaging()
            s.lr = t.lr
            rec["switched"] = True
            self.log(f"epoch {s.epoch}: validation did not improve on the best before the last "
                     f"{t.nonmono} epochs; switching to averaged SGD (NT-ASGD)")
        elif t.schedule == "book" and not improved:
            s.lr = book_lr(s.lr, val, s.best_val, t.lr_decay)
            self.log(f"epoch {s.epoch}: validation did not improve; lr -> {s.lr:g}")
        if s.epoch in t.when:
            s.lr /= 10
            self.log(f"epoch {s.epoch}: lr divided by 10 -> {s.lr:g}")
        s.history.append(val)
        name, tr = metric(train_loss, self.corpus.level)
        _, va = metric(val, self.corpus.level)
        self.log(f"{s.phase} epoch {s.epoch:3d} | train {name} {tr:8.2f} | valid {name} {va:8.2f}"
                 f"{' *' if improved else ''} | lr {rec['lr']:.3g} | {self._rate:,.0f} tok/s | "
                 f"{s.elapsed / 60:.1f} min")
        self._record(rec)
        s.epoch += 1
        s.iterator, self.hidden = None, None
        plot_curve(self.records(), self.run_dir / "curve.png", f"{self.cfg.data.corpus}: {self.run_dir.name}",
                   self.corpus.level)

    def final_results(self) -> dict:
        """Evaluate the best checkpoint: validation (batch eval_batch_size) and test (test_batch_size)."""
        t = self.cfg.train
        model, _, _, _ = model_from_checkpoint(self.run_dir / BEST)
        val = evaluate(model, self.corpus.valid, t.eval_batch_size, t.bptt, self.progress, "best: valid")
        test = evaluate(model, self.corpus.test, t.test_batch_size, t.bptt, self.progress, "best: test")
        name, v = metric(val, self.corpus.level)
        _, te = metric(test, self.corpus.level)
        results = {"valid_loss": val, "test_loss": test, f"valid_{name}": v, f"test_{name}": te,
                   "epochs": self.state.epoch - 1, "elapsed_min": round(self.state.elapsed / 60, 2),
                   "parameters": self.model.num_parameters(), "stop_reason": self.state.stop_reason}
        (self.run_dir / "results.json").write_text(json.dumps(results, indent=1))
        self.log(f"best model: valid {name} {v:.2f} | test {name} {te:.2f}  ({self.run_dir})")
        return results


def start_finetune(run_dir: Path, progress: bool = True, log=print) -> Trainer:
    """Restart from the best (averaged) weights with averaging on from the first step."""
    run_dir = Path(run_dir)
    if (run_dir / LAST).is_file():
        _, meta = load_checkpoint(run_dir / LAST)
        if meta["state"]["phase"] == "finetune" and not meta["state"]["done"]:
            return Trainer.resume(run_dir, progress, log)  # an interrupted fine-tuning continues
    model, vocab, cfg, meta = model_from_checkpoint(run_dir / BEST)
    corpus = corpus_for(cfg, progress)
    check_vocab(corpus.vocab, vocab.itos, run_dir / BEST, cfg.data.corpus)
    trainer = Trainer(cfg, run_dir, corpus, progress, log)
    trainer.model.load_state_dict(model.state_dict())
    best_val = meta["state"]["best_val"]
    trainer.state = TrainState(phase="finetune", lr=cfg.train.lr, best_val=best_val)
    trainer.optimizer = trainer._make_optimizer()
    trainer._start_averaging()
    log(f"fine-tuning from {run_dir / BEST} (valid loss {best_val:.4f}) with averaged SGD")
    return trainer
