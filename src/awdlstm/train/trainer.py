"""The training loop: SGD with clipping and weight decay, variable BPTT with the per-step
learning-rate scale, NT-ASGD (a running average of all parameters, used for evaluation
and the saved best model), the book schedule, ``when`` drops, Adam, fine-tuning, and the
budget schedule (warm-up and decay planned over ``max_minutes``, averaging at the end).

The loop runs on the device, precision and processes of its ``Machine``. With several
processes every rank walks the same BPTT windows over its block of the global batch's
columns, and the model draws each batch-wide mask for the whole batch (see
model/masks.py), so N processes compute what one process computes. Per batch the ranks
agree, in one small all-reduce, on the loss sum and on whether to stop or checkpoint.

Run folder: ``last.safetensors`` (every few minutes and at each epoch end),
``best.safetensors`` (lowest validation loss; averaged weights once averaging is on),
``metrics.jsonl``, ``curve.png``, ``results.json``.
"""

from __future__ import annotations

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

from ..config import RunConfig, with_device
from ..data.batching import BPTTIterator, batchify
from ..data.corpus import Corpus
from ..errors import AwdlstmError
from ..model import ar_penalty, build_model, detach_hidden, native, tar_penalty
from .checkpoint import remove_stale_temporaries
from .distill import Teacher, distillation_loss
from .evaluate import evaluate, evaluate_sums, metric
from .logbook import Logbook
from .machine import Machine
from .run_folder import BEST, LAST, corpus_for, check_vocab, model_from_checkpoint, open_checkpoint
from .param_groups import layer_groups, lm_layers
from .schedule import book_lr, budget_lr, nonmono_triggered, stlr
from .snapshot import restore, save_best, save_last
from .state import TrainState


class Interrupted(Exception):
    """Ctrl-C during training: the state was saved to ``last``."""


def _quiet(*args, **kwargs) -> None:
    """The log of every process but rank 0."""


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, corpus: Corpus, progress: bool = True, log=print,
                 machine: Machine | None = None):
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
        # Distillation: the teacher's soft targets join the loss (distill.py).
        self.teacher = Teacher(cfg.distill.teacher, corpus.vocab.itos, m.device) if cfg.distill.teacher else None
        self.net = m.wrap(self.model)  # DistributedDataParallel with several processes
        self.state = TrainState(lr=t.lr)
        self.optimizer = self.make_optimizer()
        self.scaler = m.grad_scaler()
        self.average: AveragedModel | None = None
        start, end = m.block(t.batch_size)
        # (rows, B) global batch, this rank's columns: (rows, end - start).
        self.train_source = batchify(corpus.train, t.batch_size)[:, start:end]
        self.columns = m.columns(t.batch_size)
        # This rank's loss is a mean over its share of the tokens; scaled so that DDP's
        # average over ranks is the mean over the whole batch.
        self.loss_share = (end - start) * m.world / t.batch_size
        self.hidden = None
        self.logbook = Logbook(self.run_dir, m.is_main)
        self._stop = threading.Event()
        self._rate = 0.0
        self.clock = time.monotonic  # the training clock (tests put a simulated one here)

    # ---- construction -------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        # One group, or one per layer with discriminative learning rates; each group's lr
        # is the schedule's lr times its lr_scale.
        params = [{"params": list(self.model.parameters()), "lr_scale": 1.0}] if t.lr_layer_decay == 1 else \
            layer_groups(lm_layers(self.model), t.lr_layer_decay)
        if t.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.state.lr, weight_decay=t.weight_decay)
        return torch.optim.SGD(params, lr=self.state.lr, weight_decay=t.weight_decay)

    def start_averaging(self) -> None:
        # An equal-weight running average of every parameter (the tied matrix once),
        # updated after each optimizer step: ASGD with lambda = 0 and t0 = now. It is kept
        # in the parameters' dtype (fp32) whatever the autocast precision.
        self.average = AveragedModel(self.model)
        self.state.averaging = True

    @classmethod
    def resume(cls, run_dir: Path, progress: bool = True, log=print, device: str | None = None) -> Trainer:
        """Continue from ``run_dir/last``; ``device`` overrides the stored train.device."""
        run_dir = Path(run_dir)
        if not (run_dir / LAST).is_file():
            raise AwdlstmError(f"{run_dir}: no {LAST} to resume from; start a run with `awdlstm train --out {run_dir}`")
        ckpt = open_checkpoint(run_dir / LAST)
        ckpt.require_resumable()  # before the corpus is loaded
        cfg = with_device(ckpt.config(), device)
        corpus = corpus_for(cfg, progress)
        check_vocab(corpus.vocab, ckpt.vocab(), run_dir / LAST, cfg.data.corpus)
        trainer = cls(cfg, run_dir, corpus, progress, log)
        restore(trainer, ckpt)
        return trainer

    def eval_model(self):
        """The averaged weights once averaging is on, else the model itself."""
        return self.average.module if self.average is not None else self.model

    def save_last(self) -> None:
        save_last(self)

    def records(self) -> list[dict]:
        return self.logbook.records()

    # ---- the loop -----------------------------------------------------------------
    def _install_signals(self):
        """Ctrl-C (and, under torchrun, SIGTERM) asks for a save at the end of the batch."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()
            self.log("\ninterrupt: saving at the end of this batch (press Ctrl-C again to abort without saving)")

        signals = [signal.SIGINT] + ([signal.SIGTERM] if self.machine.distributed else [])
        return {s: signal.signal(s, handler) for s in signals}

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
                budget_hit = self._run_epoch(started)
                self.state.elapsed += self.clock() - started
                self._end_epoch()
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
        with AR/TAR, scaled by this rank's share of the batch)."""
        t = self.cfg.train
        x, y = batch.x.to(self.machine.device, non_blocking=True), batch.y.to(self.machine.device, non_blocking=True)
        if self.teacher is None:
            with self.machine.autocast():
                out = self.net(x, hidden, self.columns, targets=y)
            # The loss (log p(target) is fp32 from the model), AR and TAR in fp32 whatever the autocast dtype.
            raw_loss = -out.target_logp.mean()
            loss = raw_loss
        else:  # the whole distribution (T, B, V) of both models
            with self.machine.autocast():
                out = self.net(x, hidden, self.columns)
                teacher_logp = self.teacher.log_probs(x)
            loss, raw_loss = distillation_loss(F.log_softmax(out.logits.float(), -1), teacher_logp, y,
                                               self.cfg.distill)
        if t.alpha:
            loss = loss + ar_penalty(out.dropped_output.float(), t.alpha)
        if t.beta:
            loss = loss + tar_penalty(out.raw_output.float(), t.beta)
        return out, raw_loss, loss * self.loss_share

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

    def _run_epoch(self, started: float) -> bool:
        """One epoch (or its remainder after a resume). True when the budget ran out."""
        t, s, m = self.cfg.train, self.state, self.machine
        it = BPTTIterator(self.train_source, t.bptt, t.variable_bptt, seed=t.seed * 1000 + s.epoch)
        if s.iterator is not None:
            it.load_state_dict(s.iterator)
        else:
            s.batches_done, s.loss_sum, s.tokens = 0, 0.0, 0
            self.hidden = None
        if self.hidden is None:
            self.hidden = self.model.init_hidden(self.train_source.size(1))
            if self.teacher is not None:
                self.teacher.reset(self.train_source.size(1))
        self.model.train()
        last_save = self.clock()
        t0, tok0 = self.clock(), s.tokens
        bar = tqdm(total=len(it), initial=s.batches_done, desc=f"{s.phase} epoch {s.epoch}", unit="batch",
                   leave=False, dynamic_ncols=True, disable=None if self.progress else True)
        budget_hit = False
        with bar:
            for batch in it:
                out, raw_loss, loss = self.forward_loss(batch, detach_hidden(self.hidden))
                n_local = batch.y.numel()
                now = self.clock()
                save_due = (t.checkpoint_batches and (s.batches_done + 1) % t.checkpoint_batches == 0) or \
                    now - last_save > t.checkpoint_minutes * 60
                # One all-reduce: the loss sum, a non-finite loss anywhere, Ctrl-C anywhere, and
                # rank 0's checkpoint decision and training clock (the budget and its schedule).
                main = float(m.is_main)
                loss_sum, bad, stop, save, clock = m.sum([
                    raw_loss.item() * n_local, float(not torch.isfinite(loss).item()), float(self._stop.is_set()),
                    main * bool(save_due), main * (s.elapsed + now - started)])
                spent = t.max_minutes and clock >= t.max_minutes * 60
                if t.schedule == "budget":
                    self._plan_budget(clock / (t.max_minutes * 60))
                elif t.schedule == "stlr":  # over every batch of every epoch
                    s.lr = stlr(t.lr, (s.epoch - 1 + s.batches_done / len(it)) / t.epochs, t.stlr_cut, t.stlr_ratio)
                lr = s.lr * batch.lr_scale if t.variable_bptt else s.lr
                for g in self.optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                if bad:
                    kept = (f"the last good checkpoint {self.run_dir / LAST} is kept" if (self.run_dir / LAST).is_file()
                            else "no checkpoint had been written yet")
                    raise AwdlstmError(
                        f"loss became {'nan' if math.isnan(loss.item()) else loss.item()} in {s.phase} epoch "
                        f"{s.epoch}, batch {s.batches_done + 1}; stopped, {kept}; try a lower "
                        f"train.lr (now {s.lr:g}) or train.clip")
                self.update(loss)
                self.hidden = out.hidden
                s.loss_sum += loss_sum
                s.tokens += batch.y.size(0) * t.batch_size
                s.batches_done += 1
                s.iterator = it.state_dict()
                bar.update()
                if s.batches_done % 5 == 0 or s.batches_done == 1:
                    mean = s.loss_sum / s.tokens
                    name, value = metric(mean, self.corpus.level)
                    rate = (s.tokens - tok0) / max(self.clock() - t0, 1e-9)
                    bar.set_postfix_str(f"loss {mean:.3f} {name} {value:.2f} lr {s.lr:.3g} {rate:,.0f} tok/s")
                if stop:
                    s.elapsed += self.clock() - started
                    self.save_last()
                    raise Interrupted(f"interrupted; state saved to {self.run_dir / LAST}; "
                                      f"continue with `awdlstm train --resume {self.run_dir}`")
                if save:
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

    def _plan_budget(self, progress: float) -> None:
        """The budget schedule at ``progress`` (rank 0's training clock over the budget, the
        same on every rank): set the base lr, and start averaging at ``average_from``. The
        clock is part of the saved state, so a resumed run continues on the same curve."""
        t, s = self.cfg.train, self.state
        s.lr = budget_lr(t.lr, progress, t.warmup, t.lr_floor, t.decay, t.decay_start)
        if not s.averaging and t.average_from < 1.0 and progress >= t.average_from:
            self.start_averaging()
            self.log(f"\n{progress:.0%} of the budget: evaluating the running average of the weights from now on")

    def validate(self) -> float:
        """Mean validation loss of the evaluated model; each rank reads its block of the
        validation batch's columns and the sums are shared, so every rank gets the same value."""
        t, m = self.cfg.train, self.machine
        total, count = evaluate_sums(self.eval_model(), self.corpus.valid, t.eval_batch_size, t.bptt,
                                     self.progress, "validate", m.block(t.eval_batch_size))
        total, count = m.sum([total, count])
        # The switch, the lr schedule and early stopping hang on this value: take rank 0's
        # copy (one broadcast per epoch), so no reduction detail can make ranks disagree.
        return m.from_main([total / count])[0]

    def _end_epoch(self) -> None:
        t, s = self.cfg.train, self.state
        val = self.validate()
        train_loss = s.loss_sum / max(s.tokens, 1)
        rec = {"event": "epoch", "phase": s.phase, "epoch": s.epoch, "train_loss": train_loss,
               "val_loss": val, "lr": s.lr, "averaging": s.averaging, "tokens_per_s": round(self._rate, 1),
               "elapsed_s": round(s.elapsed, 1), "batches": s.batches_done, "processes": self.machine.world}
        improved = val < s.best_val
        if improved:
            s.best_val = val
            save_best(self)
        if s.phase == "finetune":
            if nonmono_triggered(s.history, val, t.nonmono):
                s.done, s.stop_reason = True, "fine-tuning: the non-monotone trigger fired"
        elif t.schedule == "ntasgd" and t.optimizer == "sgd" and not s.averaging \
                and nonmono_triggered(s.history, val, t.nonmono):
            self.start_averaging()
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
        self.logbook.record(rec)
        s.epoch += 1
        s.iterator, self.hidden = None, None
        if self.teacher is not None:
            self.teacher.hidden = None
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
        (self.run_dir / "results.json").write_text(json.dumps(results, indent=1))
        self.log(f"best model: valid {name} {v:.2f} | test {name} {te:.2f}  ({self.run_dir})")
        return results
