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

In the loop the two halves are two loss terms: the hard one is CrossEntropy weighted by
w_hard (cross_entropy.py), the soft one is the ``Distillation`` term here, which owns the
teacher and its carried state (saved as ``teacher_hidden.*`` for a mid-epoch resume).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...checkpoints.run_folder import model_from_checkpoint
from ...config import DistillConfig
from ...errors import AwdlstmError
from ...model import Hidden
from ..hooks import LossTerm, Step


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


class Teacher:
    """The teacher model (evaluation mode, no gradients) and the hidden state it carries."""

    def __init__(self, path: str, itos: list[str], device: torch.device):
        if not Path(path).exists():
            raise AwdlstmError(f"distill.teacher={path!r}: no such run folder, checkpoint or model folder")
        self.model, vocab, _, _ = model_from_checkpoint(Path(path), device)
        if vocab.itos != itos:
            raise AwdlstmError(f"{path}: the teacher's vocabulary ({len(vocab)} tokens) differs from the student's "
                               f"corpus ({len(itos)} tokens); distillation needs the corpus the teacher was "
                               f"trained on")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.hidden: Hidden | None = None

    def reset(self, batch_size: int) -> None:
        self.hidden = self.model.init_hidden(batch_size)

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, B) -> the teacher's log-probabilities (T, B, V), fp32; the state moves on."""
        if self.hidden is None:
            self.reset(x.size(1))
        out = self.model(x, self.hidden)
        self.hidden = out.hidden
        return F.log_softmax(out.logits.float(), dim=-1)


class Distillation(LossTerm):
    """w_soft · T² · KL(teacher_T ‖ student_T) on every position of the batch."""

    name = "distillation"
    needs_distribution = True

    def __init__(self, cfg: DistillConfig, itos: list[str], device: torch.device):
        self.cfg = cfg
        self.teacher = Teacher(cfg.teacher, itos, device)

    @classmethod
    def from_config(cls, cfg, context) -> Distillation | None:
        if not cfg.distill.teacher or cfg.distill.soft_weight == 0:
            return None
        return cls(cfg.distill, context.itos, context.device)

    def __call__(self, step: Step) -> torch.Tensor:
        return self.cfg.soft_weight * soft_loss(step.logp, self.teacher.log_probs(step.x), self.cfg)

    def start_epoch(self, batch_size: int) -> None:
        self.teacher.reset(batch_size)

    def end_epoch(self) -> None:
        self.teacher.hidden = None

    def state_dict(self, gather) -> dict:
        if self.teacher.hidden is None:
            return {}
        return {"teacher_hidden.": gather(self.teacher.hidden)}

    def load_state_dict(self, state: dict, block) -> None:
        if "teacher_hidden." in state:
            self.teacher.hidden = block(state["teacher_hidden."], self.teacher.model.layers)
