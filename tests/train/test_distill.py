"""Distillation: the loss is its formula, the teacher helps a student at equal steps, a
run resumes exactly with the teacher's state, and a vocabulary mismatch is an error."""

import math

import pytest
import torch

from awdlstm import commands
from awdlstm.checkpoints.checkpoint import load_checkpoint
from awdlstm.cli import main
from awdlstm.config import DistillConfig, build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.train.hooks import Hook
from awdlstm.train.losses.distillation import distillation_loss
from awdlstm.train.trainer import Interrupted, Trainer


def test_loss_equals_its_formula_on_a_hand_made_example():
    student = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    teacher = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]]))
    y = torch.tensor([0, 2])
    T, ws, wh = 2.0, 0.7, 0.4

    def soften(row):  # softmax(log p / T), by hand
        z = [math.exp(math.log(v) / T) for v in row]
        return [v / sum(z) for v in z]

    kl = 0.0
    for s_row, t_row in zip(student.exp().tolist(), teacher.exp().tolist()):
        p, q = soften(t_row), soften(s_row)
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    kl /= 2
    ce = -(math.log(0.5) + math.log(0.8)) / 2
    for square in (True, False):
        cfg = DistillConfig(teacher="t", temperature=T, soft_weight=ws, hard_weight=wh, square_temperature=square)
        loss, hard = distillation_loss(student, teacher, y, cfg)
        want = ws * (T * T if square else 1) * kl + wh * ce
        assert loss.item() == pytest.approx(want, rel=1e-5)
        assert hard.item() == pytest.approx(ce, rel=1e-6)


def test_without_the_soft_term_it_is_plain_cross_entropy():
    torch.manual_seed(0)
    student = torch.log_softmax(torch.randn(4, 3, 11), -1)
    teacher = torch.log_softmax(torch.randn(4, 3, 11), -1)
    y = torch.randint(0, 11, (4, 3))
    loss, _ = distillation_loss(student, teacher, y, DistillConfig(teacher="t", soft_weight=0.0, hard_weight=1.0))
    want = torch.nn.functional.cross_entropy(student.view(-1, 11), y.view(-1))
    torch.testing.assert_close(loss, want)


def test_the_same_distributions_cost_nothing_beyond_cross_entropy():
    logp = torch.log_softmax(torch.randn(5, 7), -1)
    y = torch.randint(0, 7, (5,))
    loss, hard = distillation_loss(logp, logp, y, DistillConfig(teacher="t", soft_weight=1.0, hard_weight=1.0))
    assert loss.item() == pytest.approx(hard.item(), abs=1e-6)


@pytest.mark.parametrize("sets, needle", [
    (["distill.temperature=3"], "only acts with a teacher"),
    (["distill.teacher=x", "distill.soft_weight=0", "distill.hard_weight=0"], "both 0"),
    (["distill.anneal=true"], "only acts with a teacher"),
    (["distill.teacher=x", "distill.anneal=true", "distill.soft_weight=0"], "distill.anneal=true moves"),
])
def test_config_errors(sets, needle):
    with pytest.raises(AwdlstmError, match=needle):
        build_config("tiny", sets)


STUDENT = ["model.emb_size=16", "model.hidden_size=24", "model.num_layers=1", "train.epochs=2"]


def test_a_teacher_lowers_the_students_loss_at_equal_steps(tiny_run, tmp_path):
    teacher, _ = tiny_run
    quiet = lambda *a: None  # noqa: E731
    alone = commands.train("tiny", None, STUDENT, str(tmp_path / "alone"), None, log=quiet)
    taught = commands.distill(str(teacher), "tiny", STUDENT, str(tmp_path / "taught"), None, log=quiet,
                              temperature=1.0, soft_weight=1.0, hard_weight=0.0)
    assert taught["valid_loss"] < alone["valid_loss"] - 0.01, (taught, alone)
    cfg = load_checkpoint(tmp_path / "taught" / "best.safetensors")[1]["config"]
    assert cfg["distill"]["teacher"] == str(teacher.resolve()) and cfg["data"]["corpus"] == "synthetic"


@pytest.mark.parametrize("extra", [[], ["distill.anneal=true"]])
def test_an_interrupted_distillation_resumes_exactly(tiny_run, tmp_path, extra):
    teacher, _ = tiny_run
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(), folder)
    corpus = load_corpus(str(folder))
    # The teacher was trained on the default synthetic corpus: the same vocabulary.
    cfg = build_config("tiny", STUDENT + [f"distill.teacher={teacher}", "train.checkpoint_batches=3"] + extra,
                       corpus=str(folder))
    full = Trainer(cfg, tmp_path / "full", corpus, progress=False, log=lambda *a: None)
    full.run()

    class StopAfterFive(Hook):
        calls = 0

        def after_update(self, loop):
            self.calls += 1
            if self.calls == 5:  # mid-epoch 1: Ctrl-C as the trainer sees it
                loop.request_stop()

    cut = Trainer(cfg, tmp_path / "cut", corpus, progress=False, log=lambda *a: None, hooks=[StopAfterFive()])
    with pytest.raises(Interrupted):
        cut.run()
    tensors, _ = load_checkpoint(tmp_path / "cut" / "last.safetensors")
    assert "teacher_hidden." in tensors and "hidden." in tensors
    if extra:  # the annealing's progress, saved for the next batch's weights
        assert 0 < load_checkpoint(tmp_path / "cut" / "last.safetensors")[1]["distill_progress"] < 0.5
    resumed = Trainer.resume(tmp_path / "cut", progress=False, log=lambda *a: None)
    resumed.run()
    a = load_checkpoint(tmp_path / "full" / "last.safetensors")[0]["model."]
    b = load_checkpoint(tmp_path / "cut" / "last.safetensors")[0]["model."]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_teacher_annealing_moves_the_soft_weight_onto_the_hard_loss(tiny_run):
    """At progress p the term is w_soft (1 - p) KL + w_soft p CE (the CE term keeps w_hard),
    p the budget's: here epochs, the one in progress counted by its batches."""
    from types import SimpleNamespace

    from awdlstm.train.hooks import Step
    from awdlstm.train.losses import LossContext
    from awdlstm.train.losses.distillation import Distillation, soft_loss

    run_dir, _ = tiny_run
    itos = load_corpus("synthetic").vocab.itos
    cfg = DistillConfig(teacher=str(run_dir), soft_weight=0.4, temperature=2.0, anneal=True)
    term = Distillation(cfg, LossContext(itos, torch.device("cpu"), (0, 3)))
    loop = SimpleNamespace(cfg=build_config("tiny", ["train.epochs=4"]), state=SimpleNamespace(epoch=2))
    term.on_batch(loop, 0.0, 0.5)
    assert term.progress == pytest.approx(1.5 / 4)
    torch.manual_seed(0)
    x, y = torch.randint(0, len(itos), (5, 3)), torch.randint(0, len(itos), (5, 3))
    step = Step(x, y, SimpleNamespace(logits=torch.randn(5, 3, len(itos)), target_logp=None, factors=None))
    term.teacher.reset(3)
    got = term(step)
    term.teacher.reset(3)
    kl = soft_loss(step.logp, term.teacher.log_probs(x), cfg)
    assert got.item() == pytest.approx((0.4 * (1 - 0.375) * kl + 0.4 * 0.375 * step.ce).item(), rel=1e-6)
    term.end_epoch()  # at an epoch's end the progress is all it carries
    assert term.state_dict(None) == {"distill_progress": 0.375}


def test_a_teacher_of_another_vocabulary_is_a_one_line_error(tiny_run, tmp_path, capsys):
    teacher, _ = tiny_run
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "valid", "test"):
        (other / f"{split}.txt").write_text("the cat sat on the mat\n" * 20)
    code = main(["distill", str(teacher), "--preset", "tiny", "--corpus", str(other), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "vocabulary" in err and str(teacher) in err
    assert main(["distill", str(tmp_path / "nope"), "--preset", "tiny"]) == 2
    assert "no such" in capsys.readouterr().err
