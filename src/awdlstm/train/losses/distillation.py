"""Knowledge distillation (Hinton et al. 2015): a student language model learns from a
teacher's distribution over the next token as well as from the corpus.

With the student's and the teacher's log-probabilities over the vocabulary, log q and
log p (each (T, B, V)), a temperature T and the next tokens y:

    loss = w_soft · T² · KL(p_T ‖ q_T) + w_hard · CE(q, y),    p_T = softmax(log p / T)

softmax(log p / T) equals softmax(logits / T) for a single softmax (log p differs from
the logits by a constant per position), and it is defined for every head, the adaptive
softmax and the mixture of softmaxes included. T² keeps the soft term's gradients at the
same scale as T changes; it can be turned off. The teacher runs in evaluation mode on
the same windows as the student, its own hidden state carried from window to window;
its probabilities exist only for the batch at hand.

With distill.top_k = k > 0 the teacher does not run during training: its k most probable
tokens at every position are computed once and memory-mapped (teacher_targets.py), and the
soft loss is the KL from the teacher's distribution completed over the whole vocabulary:

    p̂_j = p_j for the k kept tokens,   p̂_j = r · q_j / Q for the others

with r the teacher's mass outside its top k (stored exactly) and q_j / Q the student's own
distribution over those tokens (a constant: no gradient flows through it). The tail's mass
is the teacher's and its shape the student's, so at T = 1 the loss is the exact KL of the
(k + 1)-way partition, kept tokens + "any other" (the tail's shape costs nothing and is
not pulled anywhere), and its gradient on the kept tokens is exact. Spreading r evenly
instead would pull the student's tail toward uniform, onto rare words. At T > 1 the
tempered tail keeps the student's shape too; the true tail's spread would differ by its
shape's KL, which p^(1/T) shrinks as T grows. benchmarks/distill_compare.py
--approximation measures it against the exact loss.

A student with an adaptive softmax never builds its (T, B, V) distribution for the hard
loss: the head's softmax over shortlist words + clusters, and a cluster's own softmax only
on the rows whose target lies in it (adaptive_softmax.py). Its cached soft loss uses those
same pieces (``Factors``), by the chain rule of the KL over the head's partition:

    KL(p ‖ q) = KL(p_head ‖ q_head) + Σ_i P_i · KL(p_{·|i} ‖ q_{·|i})

with p_head the teacher's distribution over the shortlist words and the clusters (cluster
i's whole mass P_i stored exactly), p_{·|i} its distribution within cluster i. The head
term is the partition KL above with the teacher's k most probable shortlist words and the
n clusters as classes and the shortlist's other words as the rest; the cluster term is one
on the teacher's k most probable words within cluster i, the cluster's other words as its
rest. The weight P_i is sampled, not computed: a cluster term is added on the rows whose
target lies in cluster i (1[y ∈ i] in place of P_i, which it equals in expectation under
a calibrated teacher), the only rows where the student's cluster softmax exists, and the
only rows where the cache keeps the teacher's distribution within a cluster. At T ≠ 1
each partition is tempered as a whole (the rest as one class). The step costs the hard
loss plus (N, k) gathers, where the whole distribution costs a (N, V) projection and its
softmax; the teacher's pass likewise (teacher_targets.py).

With distill.coverage = f < 1 the cache covers the first f of every column's rows
(teacher_targets.py); on a window's positions past them the soft term is the hard loss,
so those train on w_hard + w_soft times the cross-entropy (the weight annealing moves):

    soft = (Σ_covered T² KL + Σ_others CE) / N

With distill.anneal (teacher annealing, Clark et al. 2019, "BAM! Born-Again Multi-Task
Networks") the soft term's weight moves onto the hard loss as the run spends its budget
(progress p from 0 to 1, the budget schedule's own clock):

    loss = w_soft · (1 − p) · T² · KL + (w_hard + w_soft · p) · CE

The teacher leads while the student is far from it and the corpus has the last word, so a
student that could fit the data better than the teacher's smoothed targets is not held at
them while its learning rate decays.

In the loop the two halves are two loss terms: the hard one is CrossEntropy weighted by
w_hard (cross_entropy.py), the soft one is the ``Distillation`` term here, which owns the
teacher and its carried state (saved as ``teacher_hidden.*`` for a mid-epoch resume), or
the cached targets (nothing to save: a position's targets do not depend on the state).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ...checkpoints.run_folder import model_from_checkpoint
from ...config import DistillConfig
from ...errors import AwdlstmError
from ...model import Hidden
from ...model.adaptive_softmax import AdaptiveSoftmax, Factors, factor_log_probs
from ...model.fused_lstm import FusedLSTMLayer
from ...runtime.machine import cpu_has_bf16
from ..hooks import LossTerm, Step, budget_progress


def distillation_loss(student_logp: torch.Tensor, teacher_logp: torch.Tensor, targets: torch.Tensor,
                      cfg: DistillConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """student_logp and teacher_logp (..., V) log-probabilities, targets (...) -> (the
    loss above, the student's plain cross-entropy), both means over the positions."""
    V = student_logp.size(-1)
    q = student_logp.reshape(-1, V).float()
    hard = F.nll_loss(q, targets.reshape(-1))
    if cfg.soft_weight == 0:
        return cfg.hard_weight * hard, hard
    return cfg.soft_weight * soft_loss(q, teacher_logp, cfg) + cfg.hard_weight * hard, hard


def soft_loss(student_logp: torch.Tensor, teacher_logp: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """T² · KL(p_T ‖ q_T) (T² when square_temperature), the KL summed over the vocabulary
    and averaged over positions ("batchmean"); both (..., V) log-probabilities."""
    V = student_logp.size(-1)
    q, p = student_logp.reshape(-1, V).float(), teacher_logp.reshape(-1, V).float()
    T = cfg.temperature
    soft = F.kl_div(F.log_softmax(q / T, -1), F.log_softmax(p / T, -1), reduction="batchmean", log_target=True)
    if cfg.square_temperature:
        soft = soft * T * T
    return soft


def cached_soft_loss(student_logp: torch.Tensor, ids: torch.Tensor, teacher_logp: torch.Tensor,
                     rest: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """T² · KL(p̂_T ‖ q_T), p̂ the teacher's top k with the tail shaped as the student's (the
    module's rule). student_logp (..., V) log-probabilities; ids and teacher_logp (..., k)
    the kept tokens and their log-probabilities at T = 1; rest (...) the mass of the others."""
    V, k = student_logp.size(-1), ids.size(-1)
    q = student_logp.reshape(-1, V).float()
    ids, lp, rest = ids.reshape(-1, k), teacher_logp.reshape(-1, k).float(), rest.reshape(-1, 1).float()
    if cfg.temperature == 1:
        # Closed form at T = 1: on the tail p̂_j / q_j = ρ / Q (ρ, Q the tail's masses), so the
        # KL is the (k + 1)-way partition's, from one (N, k) gather of the student.
        return partition_kl(q.gather(1, ids), lp, rest).mean()
    return _completed_kl(q, ids, lp, rest, cfg)


def factored_soft_loss(factors, t, cfg: DistillConfig) -> torch.Tensor:
    """T² · (the head's KL + the sampled cluster KLs), the module's chain rule. ``factors``
    the student's adaptive-head pieces over N positions; ``t`` the teacher's cached targets
    there (teacher_targets.Targets with cutoffs: ids, logp (N, k) the kept shortlist words,
    rest (N,) the shortlist's other mass, mass (N, n) the clusters', and per position whose
    target lies in a cluster its row ``slot`` of cids, clogp (M, k) and crest (M,))."""
    tiny = torch.finfo(torch.float32).tiny
    n, T = len(factors.clusters), cfg.temperature
    head = factors.head  # (N, c_1 + n)
    # The kept words and the n cluster columns in one gather: its backward is one (N, c_1 + n)
    # scatter, where a gather and a slice each zero-fill and add a gradient of the head's size.
    clusters = torch.arange(head.size(1) - n, head.size(1), device=head.device).expand(head.size(0), n)
    q_head = head.gather(1, torch.cat([t.ids, clusters], 1))  # (N, k + n)
    lp_head = torch.cat([t.logp.float(), t.mass.float().clamp_min(tiny).log()], 1)
    total = partition_kl(q_head, lp_head, t.rest.float().unsqueeze(1), T).sum()
    for rows, within in factors.clusters:  # within (n_i, c_{i+1} − c_i), rows (n_i,) of N
        if rows.numel() == 0:
            continue
        j = t.slot[rows]  # (n_i,) their rows of the cluster arrays
        total = total + partition_kl(within.gather(1, t.cids[j]), t.clogp[j].float(), t.crest[j].float().unsqueeze(1),
                                     T).sum()
    soft = total / head.size(0)
    return soft * T * T if cfg.square_temperature else soft


def partition_kl(q: torch.Tensor, lp: torch.Tensor, rest: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p̂_T ‖ q_T) per row (N,) over m classes plus "the rest": q (N, m) the student's
    log-probabilities of the classes (its rest: Q = 1 − Σ q), lp (N, m) the teacher's,
    rest (N, 1) the teacher's mass outside them. The teacher's side is normalized over its
    classes and rest (Z = Σ p + r), as log_softmax normalizes the whole distribution, and
    both sides are tempered as softmax(log · / T):

        KL = Σ_classes p̂ (log p̂ − log q̂) + ρ̂ (log ρ̂ − log Q̂)

    One gather of (N, m) where the whole distribution takes a dozen passes over (N, V)."""
    tiny = torch.finfo(torch.float32).tiny
    # log r floored at float32's smallest normal (a tail that underflowed in the teacher's
    # softmax); log Q likewise where the classes hold all of fp32's mass.
    log_r = rest.clamp_min(tiny).log()
    log_q_rest = torch.log1p(-q.exp().sum(1, keepdim=True).clamp(max=1 - 1e-7)).clamp_min(math.log(tiny))
    target, student = torch.cat([lp, log_r], 1), torch.cat([q, log_q_rest], 1)  # (N, m + 1)
    if temperature != 1:
        target, student = target / temperature, student / temperature
    target = target - target.logsumexp(1, keepdim=True)
    student = student - student.logsumexp(1, keepdim=True)  # log 1 = 0 at T = 1, up to the floors
    p = target.exp()
    return torch.where(p > 0, p * (target - student), 0).sum(1)


def _completed_kl(q: torch.Tensor, ids: torch.Tensor, lp: torch.Tensor, rest: torch.Tensor,
                  cfg: DistillConfig) -> torch.Tensor:
    """The loss above at any T, from the whole completed distribution p̂ (N, V). q (N, V)
    log-probabilities, ids and lp (N, k), rest (N, 1)."""
    # log p̂ (N, V), a constant target: log r + log q_j − log Q_tail on the tail (Q_tail: the
    # student's own tail mass), the teacher's log p on the kept tokens. r is floored at
    # float32's smallest normal: a tail that underflowed in the teacher's softmax.
    with torch.no_grad():
        tail_q = q.scatter(1, ids, -math.inf).logsumexp(1, keepdim=True)  # log Q_tail (N, 1)
        target = (rest.clamp_min(torch.finfo(torch.float32).tiny).log() - tail_q + q).scatter(1, ids, lp)
    T = cfg.temperature
    soft = F.kl_div(F.log_softmax(q / T, -1), F.log_softmax(target / T, -1), reduction="batchmean",
                    log_target=True)
    return soft * T * T if cfg.square_temperature else soft


class Teacher:
    """The teacher model (evaluation mode, no gradients), the hidden state it carries, and
    the arithmetic it runs in: ``precision`` fp32, or bf16 under autocast (its matrix
    products in bfloat16, its softmax in fp32; on CPU its fused LSTMs' weights are cast to
    bf16, for oneDNN's bf16 recurrence: the layer keeps fp32 recurrences under autocast)."""

    def __init__(self, path: str, itos: list[str], device: torch.device, precision: str = "fp32"):
        if not Path(path).exists():
            raise AwdlstmError(f"distill.teacher={path!r}: no such run folder, checkpoint or model folder")
        self.model, vocab, _, _ = model_from_checkpoint(Path(path), device)
        if vocab.itos != itos:
            raise AwdlstmError(f"{path}: the teacher's vocabulary ({len(vocab)} tokens) differs from the student's "
                               f"corpus ({len(itos)} tokens); distillation needs the corpus the teacher was "
                               f"trained on")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.precision = precision
        if precision == "bf16" and device.type == "cpu":  # on CUDA autocast alone puts cuDNN's in bf16
            if not cpu_has_bf16():
                warnings.warn("distill.teacher_precision='bf16': this CPU has no native bfloat16 instructions, "
                              "so the teacher runs slower than in fp32")
            for m in self.model.modules():  # the other cells keep their fp32 recurrences
                if isinstance(m, FusedLSTMLayer):
                    m.lstm.to(torch.bfloat16)
        self.vocab_size = len(itos)
        self.hidden: Hidden | None = None

    def reset(self, batch_size: int) -> None:
        self.hidden = self.model.init_hidden(batch_size)

    def autocast(self):
        return torch.autocast(next(self.model.parameters()).device.type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, B) -> the teacher's log-probabilities (T, B, V), fp32; the state moves on."""
        if self.hidden is None:
            self.reset(x.size(1))
        with self.autocast():
            out = self.model(x, self.hidden)
            self.hidden = out.hidden
            return self.model.log_probs(out.logits)

    def own_pieces(self, cutoffs: tuple[int, ...]) -> bool:
        """Whether the teacher's head is an adaptive softmax cut at ``cutoffs`` itself."""
        d = self.model.decoder
        return isinstance(d, AdaptiveSoftmax) and tuple(d.cutoffs[:-1]) == tuple(cutoffs)

    def head_width(self, cutoffs: tuple[int, ...]) -> int:
        """The widest row ``factors`` builds: the head (c_1 + n) or the whole vocabulary."""
        return cutoffs[0] + len(cutoffs) if self.own_pieces(cutoffs) else self.vocab_size

    @torch.no_grad()
    def factors(self, x: torch.Tensor, y: torch.Tensor, cutoffs: tuple[int, ...]) -> Factors:
        """x, y (T, B) -> the teacher's distribution over the next tokens cut at ``cutoffs``
        (``Factors`` over T·B positions, each cluster only on the rows whose next token lies
        in it); the state moves on. A teacher with that adaptive head computes its own
        pieces; any other is cut from its whole distribution (the same numbers)."""
        if self.hidden is None:
            self.reset(x.size(1))
        if self.own_pieces(cutoffs):
            with self.autocast():
                out = self.model(x, self.hidden, targets=y, factors=True)
            self.hidden = out.hidden
            return out.factors
        lp = self.log_probs(x)
        return factor_log_probs(lp.reshape(-1, lp.size(-1)), y.reshape(-1), cutoffs)


def cache_cutoffs(top_k: int, head: str, cutoffs) -> tuple[int, ...]:
    """Where the cache cuts the teacher's distribution: at an adaptive student's cutoffs (its
    chain rule reads the teacher's head partition and its distribution within the target's
    cluster), nowhere otherwise (the whole vocabulary's top k)."""
    return tuple(int(c) for c in cutoffs) if top_k and head == "adaptive" else ()


class Distillation(LossTerm):
    """w_soft · T² · KL(teacher_T ‖ student_T) on every position of the batch: from the
    teacher run alongside (top_k = 0) or from its cached top k, over the whole distribution
    or (an adaptive student) by the chain rule over its head's pieces."""

    name = "distillation"

    def __init__(self, cfg: DistillConfig, context, head: str = "softmax", cutoffs: tuple[int, ...] = ()):
        self.cfg = cfg
        self.teacher = Teacher(cfg.teacher, context.itos, context.device, cfg.teacher_precision)
        self.targets = None
        self.cutoffs = cache_cutoffs(cfg.top_k, head, cutoffs)
        self.needs_factors = bool(self.cutoffs)
        self.needs_distribution = not self.needs_factors
        if cfg.top_k:
            if cfg.top_k >= self.teacher.vocab_size:
                raise AwdlstmError(f"distill.top_k={cfg.top_k} keeps the whole vocabulary of "
                                   f"{self.teacher.vocab_size}; choose fewer (or 0: the exact loss)")
            if self.cutoffs:
                self.check_pieces(cfg.top_k, self.cutoffs + (self.teacher.vocab_size,))
            self.targets = context.teacher_targets(self.teacher, cfg.top_k, self.cutoffs, cfg.coverage)
        self.columns = context.columns
        self.progress = 0.0  # of the run's budget, for distill.anneal

    @staticmethod
    def check_pieces(k: int, bounds: tuple[int, ...]) -> None:
        """The cache keeps k shortlist words and k words within a cluster: each must hold k."""
        smallest = min(b - a for a, b in zip((0, *bounds), bounds))
        if k > smallest:
            raise AwdlstmError(f"distill.top_k={k}: an adaptive student keeps the teacher's top k within its "
                               f"shortlist and within each cluster (cutoffs {list(bounds[:-1])}, the smallest part "
                               f"{smallest} words); choose at most {smallest}")

    @classmethod
    def from_config(cls, cfg, context) -> Distillation | None:
        if not cfg.distill.teacher or cfg.distill.soft_weight == 0:
            return None
        return cls(cfg.distill, context, cfg.model.head, tuple(cfg.model.adaptive_cutoffs))

    def __call__(self, step: Step) -> torch.Tensor:
        w = self.cfg.soft_weight
        if not self.cfg.anneal:
            return w * self.soft(step)
        # Teacher annealing (module docstring): the weight moved off the KL goes to the CE.
        p = self.progress
        return w * (1 - p) * self.soft(step) + w * p * step.ce

    def soft(self, step: Step) -> torch.Tensor:
        """T² · KL(teacher_T ‖ student_T) over the batch, in the form the settings choose;
        past a partial pass's rows (distill.coverage) the hard loss in its place."""
        if self.targets is None:
            return soft_loss(step.logp, self.teacher.log_probs(step.x), self.cfg)
        t = self.targets.window(step.start, step.x.size(0), self.columns, step.x.device)
        N, n = step.y.numel(), t.rest.numel()  # the window's positions, the first n of them covered
        if n == 0:
            return step.ce
        if not self.cutoffs:  # the whole vocabulary's top k
            soft = cached_soft_loss(step.logp.reshape(N, -1)[:n], t.ids, t.logp, t.rest, self.cfg)
        else:
            factors = step.out.factors
            if factors is None:  # another term asked for the whole distribution, so the forward built it
                factors = factor_log_probs(step.logp.reshape(-1, self.teacher.vocab_size), step.y.reshape(-1),
                                           self.cutoffs)
            soft = factored_soft_loss(factors if n == N else factors.first(n), t, self.cfg)
        if n == N:
            return soft
        # Both parts as sums over their positions / N: the covered ones' KL, the others' CE.
        target_logp = step.out.target_logp
        if target_logp is None:  # a forward without targets
            target_logp = step.logp.reshape(N, -1).gather(1, step.y.reshape(-1, 1))
        return soft * (n / N) - target_logp.reshape(-1)[n:].sum() / N

    def on_batch(self, loop, clock: float, epoch_fraction: float) -> None:
        # The next batch's weights: the progress after this one (one batch behind the clock,
        # as the forward runs before the clock is read).
        self.progress = budget_progress(loop.cfg.train, loop.state, clock, epoch_fraction)

    def start_epoch(self, batch_size: int) -> None:
        if self.targets is None:
            self.teacher.reset(batch_size)

    def end_epoch(self) -> None:
        self.teacher.hidden = None

    def state_dict(self, gather) -> dict:
        state = {"distill_progress": self.progress} if self.cfg.anneal else {}
        if self.teacher.hidden is not None:
            state["teacher_hidden."] = gather(self.teacher.hidden)
        return state

    def load_state_dict(self, state: dict, block) -> None:
        self.progress = state.get("distill_progress", 0.0)
        if "teacher_hidden." in state:
            self.teacher.hidden = block(state["teacher_hidden."], self.teacher.model.layers)
