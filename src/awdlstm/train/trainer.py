"""The training loop: forward, the loss terms, backward, clipping, the optimizer step and
the running average; the schedules, loss terms and hooks that extend it are objects
(hooks.py), chosen from registries (schedules/, losses/), never flags in here.

SGD (averaged under NT-ASGD) or Adam, with clipping and weight decay; variable BPTT with
the per-step learning-rate scale (lr · seq_len / bptt); the schedule of train.schedule
(NT-ASGD, the book's, the budget's, STLR, none) plus train.when's drops; the fine-tuning
phase; the loss as cross-entropy, AR, TAR and, with a teacher, distillation.

The loop runs on the device, precision and processes of its ``Machine``. With several
processes every rank walks the same BPTT windows over its block of the global batch's
columns, and the model draws each batch-wide mask for the whole batch (see
model/masks.py), so N processes compute what one process computes. Per batch the ranks
agree, in one small all-reduce, on the loss sum and on whether to stop or checkpoint.

The trainer's state is the sum of its parts' states (``state_dict``, snapshot.py): a
resume, a fine-tuning start and a transfer all enter through ``load_state_dict``.

Run folder: ``last.safetensors`` (every few minutes and at each epoch end),
``best.safetensors`` (lowest validation loss; averaged weights once averaging is on),
``metrics.jsonl``, ``curve.png``, ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch.optim.swa_utils import AveragedModel

from ..checkpoints.checkpoint import remove_stale_temporaries
from ..checkpoints.run_folder import BEST, LAST, check_vocab, corpus_for, model_from_checkpoint, open_checkpoint
from ..config import RunConfig, with_device
from ..data.batching import BPTTIterator, batchify
from ..data.corpus import Corpus
from ..data.metrics import metric, split_units
from ..errors import AwdlstmError
from ..model import build_model, detach_hidden, native
from ..model.lm import STATE_NAMES
from ..progress import progress_bar
from ..runtime.evaluate import evaluate, evaluate_sums
from ..runtime.machine import Machine
from . import snapshot
from .hooks import Hook, Step
from .logbook import Logbook
from .losses import LossContext, build_losses
from .losses.teacher_targets import teacher_targets
from .optimizers import build_optimizer
from .param_groups import layer_groups, lm_layers
from .schedules import build_schedules
from .state import TrainState


class Interrupted(Exception):
    """A stop asked for during training (Ctrl-C, SIGTERM, ``request_stop``): the state was
    saved to ``last``. ``status`` is the exit status the CLI ends with: 128 + the signal's
    number, as a shell reports a process the signal ended (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, status: int = 130):
        super().__init__(message)
        self.status = status


def _quiet(*args, **kwargs) -> None:
    """The log of every process but rank 0."""


class Agreed(NamedTuple):
    """What every rank learns from one batch's all-reduce."""

    loss_sum: float  # raw loss x tokens over all ranks
    bad: bool  # a non-finite loss on some rank
    stop: bool  # a stop requested on some rank (Ctrl-C)
    save: bool  # rank 0's checkpoint decision
    clock: float  # rank 0's training clock, seconds


class Trainer:
    """``start``: a state dict (snapshot.py) to begin from, e.g. a checkpoint's for a
    resume, or weights and a TrainState for fine-tuning. ``hooks`` watch every update;
    ``clock`` is the training clock (tests pass a simulated one); ``validation`` replaces
    the validation loss (tests script it)."""

    def __init__(self, cfg: RunConfig, run_dir: Path, corpus: Corpus, progress: bool = True, log=print,
                 machine: Machine | None = None, *, start: dict | None = None, hooks: Sequence[Hook] = (),
                 clock: Callable[[], float] = time.monotonic, validation: Callable[[], float] | None = None):
        t = cfg.train
        self.machine = m = machine or Machine.start(t.device, t.precision)
        self.cfg, self.run_dir, self.corpus = cfg, Path(run_dir), corpus
        self.log = log if m.is_main else _quiet
        self.progress = progress and m.is_main
        if t.batch_size < m.world:
            raise AwdlstmError(f"train.batch_size={t.batch_size} is smaller than the {m.world} processes; "
                               f"each process needs at least one column")
        if t.threads:
            torch.set_num_threads(t.threads)
        if m.device.type == "cpu":
            native.native()  # build or load the CPU kernels now, before the training clock starts
        torch.manual_seed(t.seed)  # the weights are drawn on the CPU, so every device starts alike
        self.model = build_model(cfg.model, len(corpus.vocab)).to(m.device)
        start_col, end_col = m.block(t.batch_size)
        self.losses = build_losses(cfg, LossContext(corpus.vocab.itos, m.device, (start_col, end_col),
                                                    self._teacher_targets))
        # A term that reads the whole (T, B, V) distribution needs a forward without targets;
        # one that reads the adaptive head's pieces (Factors) a forward that keeps them.
        self.whole_distribution = any(term.needs_distribution for term in self.losses)
        self.factored = not self.whole_distribution and any(term.needs_factors for term in self.losses)
        self.net = m.wrap(self.model)  # DistributedDataParallel with several processes
        self.state = TrainState(lr=t.lr)
        self.schedules = build_schedules(t, self.state.phase)
        self.optimizer = self.make_optimizer()
        self.scaler = m.grad_scaler()
        self.average: AveragedModel | None = None
        # (rows, B) global batch, this rank's columns: (rows, end - start).
        self.train_source = batchify(corpus.train, t.batch_size).columns(start_col, end_col)
        self.columns = m.columns(t.batch_size)
        # This rank's loss is a mean over its share of the tokens; scaled so that DDP's
        # average over ranks is the mean over the whole batch.
        self.loss_share = (end_col - start_col) * m.world / t.batch_size
        self.hidden = None
        self.logbook = Logbook(self.run_dir, m.is_main)
        self.hooks = list(hooks)
        self.clock = clock
        self._validation = validation
        self._stop = threading.Event()
        self._stop_signal = signal.SIGINT  # the signal that asked for the stop (exit status 128 + it)
        self._rate = 0.0
        if start is not None:
            self.load_state_dict(start)

    # ---- construction -------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        # One group, or one per layer with discriminative learning rates; each group's lr
        # is the schedule's lr times its lr_scale.
        params = [{"params": list(self.model.parameters()), "lr_scale": 1.0}] if t.lr_layer_decay == 1 else \
            layer_groups(lm_layers(self.model), t.lr_layer_decay)
        return build_optimizer(params, self.state.lr, t)

    def _teacher_targets(self, teacher, k: int, cutoffs: tuple[int, ...] = (), coverage: float = 1.0):
        """The teacher's cached top k over the training text at this batch size (its tail
        split at ``cutoffs``, the first ``coverage`` of the rows): written by the first
        process (the others wait at the barrier), then memory-mapped by all."""
        train, B = self.corpus.train, self.cfg.train.batch_size
        if self.machine.is_main:
            teacher_targets(teacher, train, B, k, self.log, self.progress, cutoffs=cutoffs, coverage=coverage)
        self.machine.barrier()
        return teacher_targets(teacher, train, B, k, _quiet, False, cutoffs=cutoffs, coverage=coverage)

    def start_averaging(self) -> None:
        # An equal-weight running average of every parameter (the tied matrix once),
        # updated after each optimizer step: ASGD with lambda = 0 and t0 = now. It is kept
        # in the parameters' dtype (fp32) whatever the autocast precision.
        self.average = AveragedModel(self.model)
        self.state.averaging = True

    @classmethod
    def resume(cls, run_dir: Path, progress: bool = True, log=print, device: str | None = None,
               **kwargs) -> Trainer:
        """Continue from ``run_dir/last``; ``device`` overrides the stored train.device."""
        run_dir = Path(run_dir)
        if not (run_dir / LAST).is_file():
            raise AwdlstmError(f"{run_dir}: no {LAST} to resume from; start a run with `awdlstm train --out {run_dir}`")
        ckpt = open_checkpoint(run_dir / LAST)
        ckpt.require_resumable()  # before the corpus is loaded
        cfg = with_device(ckpt.config(), device)
        corpus = corpus_for(cfg, progress, ckpt.tokenizer())  # read as the run was trained
        check_vocab(corpus.vocab, ckpt.vocab(), run_dir / LAST, cfg.data.corpus)
        trainer = cls(cfg, run_dir, corpus, progress, log, **kwargs)
        trainer.load_state_dict(ckpt.state_dict(), str(ckpt.path))
        return trainer

    # ---- the state: the sum of the parts' states ------------------------------------
    def _gather(self, hidden) -> dict:
        """A carried state [(h, c[, o])] of this rank's columns -> the whole batch's, by name
        ("<layer>.h", "<layer>.c", "<layer>.o")."""
        B = self.cfg.train.batch_size
        return {f"{i}.{n}": self.machine.gather_columns(t, 1, B)
                for i, state in enumerate(hidden) for n, t in zip(STATE_NAMES, state)}

    def _block(self, named: dict, layers):
        """The inverse of ``_gather`` for ``layers``: this rank's block of a saved whole-batch
        state. A carried output gate that a file from before it was carried lacks starts at 0."""
        start, end = self.machine.block(self.cfg.train.batch_size)
        device = self.machine.device
        out = []
        for i, layer in enumerate(layers):
            h = named[f"{i}.h"][:, start:end].to(device)
            out.append(tuple(named[f"{i}.{n}"][:, start:end].to(device) if f"{i}.{n}" in named else torch.zeros_like(h)
                             for n in STATE_NAMES[:layer.state_size]))
        return out

    def state_dict(self) -> dict:
        """Everything an exact resume needs. Collective with several processes (the carried
        states are gathered for the whole batch, so a run resumes with any process count)."""
        mid_epoch = self.state.iterator is not None
        d = {"state": dataclasses.asdict(self.state), "model.": self.model.state_dict(),
             "rng.": self.machine.rng_state(), **snapshot.optimizer_state(self.optimizer)}
        if self.average is not None:
            d["avg."] = self.average.state_dict()
        if self.scaler is not None:
            d["grad_scaler"] = self.scaler.state_dict()
        if mid_epoch and self.hidden is not None:
            d["hidden."] = self._gather(self.hidden)
        for term in self.losses:  # a term's carried state exists only mid-epoch; its progress always
            d.update(term.state_dict(self._gather))
        schedules = {s.name: sd for s in self.schedules if (sd := s.state_dict())}
        if schedules:
            d["schedules"] = schedules
        return d

    def load_state_dict(self, d: dict, where: str = "the start state") -> None:
        """Take each part's state from ``d``; a part ``d`` does not name keeps its own."""
        if "state" in d:
            self.state = TrainState.from_dict(d["state"], where)
        if "model." in d:
            self.model.load_state_dict(d["model."])
        if self.state.averaging:
            self.start_averaging()  # from the weights now loaded (fine-tuning), or ...
            if "avg." in d:
                self.average.load_state_dict(d["avg."])  # ... the saved average (a resume)
        if "optim_groups" in d:
            snapshot.load_optimizer_state(self.optimizer, d)
        if self.scaler is not None and "grad_scaler" in d:
            self.scaler.load_state_dict(d["grad_scaler"])
        if "rng." in d:
            self.machine.set_rng_state(d["rng."])
        if "hidden." in d:
            self.hidden = self._block(d["hidden."], self.model.layers)
        for term in self.losses:
            term.load_state_dict(d, self._block)
        self.schedules = build_schedules(self.cfg.train, self.state.phase)
        for s in self.schedules:
            s.load_state_dict(d.get("schedules", {}).get(s.name, {}))

    def _header(self, kind: str, **extra) -> dict:
        return {"kind": kind, "config": self.cfg.to_dict(), "vocab": self.corpus.vocab.itos,
                "level": self.corpus.level, **self.corpus.tokenizer.meta(), **extra}

    def save_last(self) -> None:
        """Collective when several processes train; rank 0 writes."""
        d = self.state_dict()
        if self.machine.is_main:
            snapshot.write(self.run_dir / LAST, d, self._header("last"))

    def save_best(self) -> None:
        if self.machine.is_main:
            snapshot.write(self.run_dir / BEST, {"model.": self.eval_model().state_dict()},
                           self._header("best", state=dataclasses.asdict(self.state),
                                        from_average=self.state.averaging))

    def eval_model(self):
        """The averaged weights once averaging is on, else the model itself."""
        return self.average.module if self.average is not None else self.model

    def records(self) -> list[dict]:
        return self.logbook.records()

    def request_stop(self) -> None:
        """Save at the end of the current batch and raise Interrupted (what Ctrl-C does)."""
        self._stop.set()

    # ---- the loop -----------------------------------------------------------------
    def _install_signals(self):
        """Ctrl-C and SIGTERM (what batch schedulers and container platforms send before they
        kill a job, and what torchrun forwards to its workers) ask for a save at the end of the
        batch; a second one aborts without saving."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop_signal = signum
            self._stop.set()
            name = "interrupt" if signum == signal.SIGINT else signal.Signals(signum).name
            self.log(f"\n{name}: saving at the end of this batch (a second signal aborts without saving)")

        return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(self) -> dict:
        """Train until the epochs, the wall-clock budget or the fine-tuning trigger end it."""
        if self.machine.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
        old = self._install_signals()
        try:
            max_epochs = self.cfg.train.epochs if self.state.phase == "train" else self.cfg.train.finetune_epochs
            while not self.state.done:
                if self.state.epoch > max_epochs:
                    self.state.done, self.state.stop_reason = True, f"reached {max_epochs} epochs"
                    break
                started = self.clock()
                budget_hit = self.run_epoch(started)
                self.state.elapsed += self.clock() - started
                self.end_epoch()
                if budget_hit:
                    self.state.done = True
                    self.state.stop_reason = f"wall-clock budget of {self.cfg.train.max_minutes:g} minutes"
                self.save_last()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        self.log(f"training stopped: {self.state.stop_reason}")
        return self.final_results()

    def forward_loss(self, batch, hidden):
        """Forward on this rank's block: (output, raw cross-entropy, the loss to backpropagate:
        the loss terms' sum, scaled by this rank's share of the batch)."""
        x, y = batch.x.to(self.machine.device, non_blocking=True), batch.y.to(self.machine.device, non_blocking=True)
        with self.machine.autocast():
            out = self.net(x, hidden, self.columns, targets=None if self.whole_distribution else y,
                           factors=self.factored)
            # Every term computes in fp32 whatever the autocast dtype (log p(target) is fp32 from the model).
            step = Step(x, y, out, batch.start)
            loss = self.losses[0](step)
            for term in self.losses[1:]:
                loss = loss + term(step)
        return out, step.ce, loss * self.loss_share

    def update(self, loss) -> None:
        """Backward (DDP averages the gradients), clip, step, and update the average."""
        t = self.cfg.train
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()  # DDP all-reduces the gradients here: every rank holds the global gradient
            if t.clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip)  # the global norm
            self.optimizer.step()
            stepped = True
        else:
            scale = self.scaler.get_scale()
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if t.clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            stepped = self.scaler.get_scale() >= scale  # a shrinking scale means inf/NaN: no step
        if self.average is not None and stepped:
            self.average.update_parameters(self.model)

    def _agree(self, raw_loss, loss, n_local: int, save_due: bool, clock: float) -> Agreed:
        """One all-reduce: the loss sum, a non-finite loss anywhere, a stop anywhere, and rank
        0's checkpoint decision and training clock (the budget and its schedule)."""
        main = float(self.machine.is_main)
        values = self.machine.sum([raw_loss.item() * n_local, float(not torch.isfinite(loss).item()),
                                   float(self._stop.is_set()), main * bool(save_due), main * clock])
        return Agreed(values[0], bool(values[1]), bool(values[2]), bool(values[3]), values[4])

    def _non_finite(self, loss) -> AwdlstmError:
        """The NaN policy: stop with a message; the last good checkpoint stays as it was."""
        s = self.state
        kept = (f"the last good checkpoint {self.run_dir / LAST} is kept" if (self.run_dir / LAST).is_file()
                else "no checkpoint had been written yet")
        return AwdlstmError(f"loss became {'nan' if math.isnan(loss.item()) else loss.item()} in {s.phase} epoch "
                            f"{s.epoch}, batch {s.batches_done + 1}; stopped, {kept}; try a lower "
                            f"train.lr (now {s.lr:g}) or train.clip")

    def _save_due(self, now: float, last_save: float) -> bool:
        t = self.cfg.train
        return bool(t.checkpoint_batches and (self.state.batches_done + 1) % t.checkpoint_batches == 0) or \
            now - last_save > t.checkpoint_minutes * 60

    def run_epoch(self, started: float) -> bool:
        """One epoch (or its remainder after a resume). True when the budget ran out."""
        t, s = self.cfg.train, self.state
        it = BPTTIterator(self.train_source, t.bptt, t.variable_bptt, seed=t.seed * 1000 + s.epoch)
        if s.iterator is not None:
            it.load_state_dict(s.iterator)
        else:
            s.batches_done, s.loss_sum, s.tokens = 0, 0.0, 0
            self.hidden = None
        if self.hidden is None:
            self.hidden = self.model.init_hidden(self.train_source.size(1))
            for term in self.losses:
                term.start_epoch(self.train_source.size(1))
        self.model.train()
        last_save = self.clock()
        t0, tok0 = self.clock(), s.tokens
        bar = progress_bar(total=len(it), initial=s.batches_done, desc=f"{s.phase} epoch {s.epoch}", unit="batch",
                           enabled=self.progress, dynamic_ncols=True)
        budget_hit = False
        with bar:
            for batch in it:
                out, raw_loss, loss = self.forward_loss(batch, detach_hidden(self.hidden))
                now = self.clock()
                agreed = self._agree(raw_loss, loss, batch.y.numel(), self._save_due(now, last_save),
                                     s.elapsed + now - started)
                spent = t.max_minutes and agreed.clock >= t.max_minutes * 60
                for schedule in self.schedules:
                    schedule.on_batch(self, agreed.clock, s.batches_done / len(it))
                for term in self.losses:
                    term.on_batch(self, agreed.clock, s.batches_done / len(it))
                lr = s.lr * batch.lr_scale if t.variable_bptt else s.lr
                for g in self.optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                if agreed.bad:
                    raise self._non_finite(loss)
                for hook in self.hooks:
                    hook.before_update(self)
                self.update(loss)
                for hook in self.hooks:
                    hook.after_update(self)
                self.hidden = out.hidden
                s.loss_sum += agreed.loss_sum
                s.tokens += batch.y.size(0) * t.batch_size
                s.batches_done += 1
                s.iterator = it.state_dict()
                if s.batches_done % 5 == 0 or s.batches_done == 1:
                    mean = s.loss_sum / s.tokens
                    name, value = metric(mean, self.corpus.level)
                    rate = (s.tokens - tok0) / max(self.clock() - t0, 1e-9)
                    bar.set_postfix_str(f"loss {mean:.3f} {name} {value:.2f} lr {s.lr:.3g} {rate:,.0f} tok/s")
                bar.update()
                if agreed.stop:
                    s.elapsed += self.clock() - started
                    self.save_last()
                    raise Interrupted(f"interrupted; state saved to {self.run_dir / LAST}; "
                                      f"continue with `awdlstm train --resume {self.run_dir}`",
                                      128 + int(self._stop_signal))
                if agreed.save:
                    now = self.clock()
                    s.elapsed += now - started
                    self.save_last()
                    s.elapsed -= now - started  # counted again when the epoch's time is added
                    last_save = now
                if spent:
                    budget_hit = True
                    break
        self._rate = (s.tokens - tok0) / max(self.clock() - t0, 1e-9)
        return budget_hit

    def validate(self) -> float:
        """Mean validation loss of the evaluated model; each rank reads its block of the
        validation batch's columns and the sums are shared, so every rank gets the same value."""
        if self._validation is not None:
            return self._validation()
        t, m = self.cfg.train, self.machine
        total, count = evaluate_sums(self.eval_model(), self.corpus.valid, t.eval_batch_size, t.bptt,
                                     self.progress, "validate", m.block(t.eval_batch_size))
        total, count = m.sum([total, count])
        # The switch, the lr schedule and early stopping hang on this value: take rank 0's
        # copy (one broadcast per epoch), so no reduction detail can make ranks disagree.
        return m.from_main([total / count])[0]

    def end_epoch(self) -> None:
        s = self.state
        val = self.validate()
        train_loss = s.loss_sum / max(s.tokens, 1)
        rec = {"event": "epoch", "phase": s.phase, "epoch": s.epoch, "train_loss": train_loss,
               "val_loss": val, "lr": s.lr, "averaging": s.averaging, "tokens_per_s": round(self._rate, 1),
               "elapsed_s": round(s.elapsed, 1), "batches": s.batches_done, "processes": self.machine.world}
        improved = val < s.best_val
        if improved:
            s.best_val = val
            self.save_best()
        for schedule in self.schedules:
            schedule.on_epoch_end(self, val, improved, rec)
        s.history.append(val)
        name, tr = metric(train_loss, self.corpus.level)
        _, va = metric(val, self.corpus.level)
        self.log(f"{s.phase} epoch {s.epoch:3d} | train {name} {tr:8.2f} | valid {name} {va:8.2f}"
                 f"{' *' if improved else ''} | lr {rec['lr']:.3g} | {self._rate:,.0f} tok/s | "
                 f"{s.elapsed / 60:.1f} min")
        self.logbook.record(rec)
        s.epoch += 1
        s.iterator, self.hidden = None, None
        for term in self.losses:
            term.end_epoch()
        self.logbook.plot(f"{self.cfg.data.corpus}: {self.run_dir.name}", self.corpus.level)

    def final_results(self) -> dict:
        """Evaluate the best checkpoint (rank 0): validation (batch eval_batch_size) and
        test (test_batch_size). Other ranks return an empty dict."""
        if not self.machine.is_main:
            return {}
        t = self.cfg.train
        model, _, _, _ = model_from_checkpoint(self.run_dir / BEST, self.machine.device)
        val = evaluate(model, self.corpus.valid, t.eval_batch_size, t.bptt, self.progress, "best: valid")
        test = evaluate(model, self.corpus.test, t.test_batch_size, t.bptt, self.progress, "best: test")
        name, v = metric(val, self.corpus.level)
        _, te = metric(test, self.corpus.level)
        results = {"valid_loss": val, "test_loss": test, f"valid_{name}": v, f"test_{name}": te,
                   "epochs": self.state.epoch - 1, "elapsed_min": round(self.state.elapsed / 60, 2),
                   "parameters": self.model.num_parameters(), "stop_reason": self.state.stop_reason,
                   "processes": self.machine.world, "device": str(self.machine.device),
                   "precision": self.machine.precision}
        for split, loss in (("valid", val), ("test", test)):
            results.update({f"{split}_{k}": u for k, u in split_units(self.corpus, split, loss).items()})
        (self.run_dir / "results.json").write_text(json.dumps(results, indent=1))
        extra = f" | per word: valid ppl {results['valid_word_ppl']:.2f}, test ppl {results['test_word_ppl']:.2f}" \
            if "valid_word_ppl" in results else ""
        self.log(f"best model: valid {name} {v:.2f} | test {name} {te:.2f}{extra}  ({self.run_dir})")
        return results
