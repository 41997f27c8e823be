"""The teacher's cached top k: the stored distribution is the teacher's on the kept tokens,
the approximate loss is its formula (and the exact one when the tail is even), a cache of
another teacher or corpus is never read, and a student trains from it without the teacher."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from awdlstm import commands
from awdlstm.config import DistillConfig
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.data.batching import batchify
from awdlstm.errors import AwdlstmError
from awdlstm.model.adaptive_softmax import AdaptiveSoftmax, Factors, factor_log_probs
from awdlstm.train.losses.distillation import Teacher, cached_soft_loss, factored_soft_loss, soft_loss
from awdlstm.train.losses.teacher_targets import Targets, factored_targets, teacher_targets, top_k

QUIET = lambda *a, **k: None  # noqa: E731


@pytest.mark.parametrize("k", [3, 40, 64])
def test_top_k_selects_what_torch_topk_selects_in_its_order(k):
    # 40 and 64 take NumPy's selection (64·k > 2,000), 3 torch.topk; ties broken alike is not
    # promised, so the values are distinct.
    x = torch.randn(50, 2000, dtype=torch.float64).float()
    x[:, 7] = x.max() + 1  # one column leads every row
    values, cols = top_k(x[:, :-1], k)  # a strided view, as the head's shortlist is
    want = x[:, :-1].topk(k, -1)
    assert values.shape == cols.shape == (50, k) and cols.dtype == torch.int64
    assert torch.equal(values, want.values) and torch.equal(cols, want.indices)
    assert (cols[:, 0] == 7).all()


def test_cached_targets_are_the_teachers_distribution_on_the_kept_tokens(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    teacher = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"))
    B, k = 4, 5
    cache = teacher_targets(teacher, corpus.train, B, k, QUIET, False, root=tmp_path)
    # The teacher read by windows of another length (30, not the writer's), state carried.
    source = batchify(corpus.train, B)
    teacher.reset(B)
    for start in (0, 30, 60):
        lp = teacher.log_probs(source[start:start + 30]).reshape(-1, len(corpus.vocab))  # (30·B, V)
        t = cache.window(start, 30, (0, B), "cpu")
        assert t.mass is None  # no cutoffs: the whole vocabulary's top k
        torch.testing.assert_close(t.logp, lp.gather(-1, t.ids), atol=2e-3, rtol=1e-3)  # fp16
        top = lp.topk(k, -1)
        torch.testing.assert_close(t.logp, top.values, atol=2e-3, rtol=1e-3)
        torch.testing.assert_close(t.rest, 1 - top.values.exp().sum(-1), atol=1e-5, rtol=0)
    # A process's columns are those columns of the whole batch.
    part = cache.window(10, 7, (1, 3), "cpu")
    full = cache.window(10, 7, (0, B), "cpu")
    assert torch.equal(part.ids, full.ids.view(7, B, k)[:, 1:3].reshape(-1, k))
    assert torch.equal(part.rest, full.rest.view(7, B)[:, 1:3].reshape(-1))


def hand_example():
    """V = 4, k = 2: one position; the student's and the teacher's log-probabilities."""
    q = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).log()
    p = torch.tensor([[0.5, 0.05, 0.3, 0.15]]).log()
    ids = torch.tensor([[0, 2]])  # the teacher's two most probable
    return q, p, ids, p.gather(1, ids), torch.tensor([0.2])


@pytest.mark.parametrize("T", [1.0, 2.0, 20.0])
def test_the_approximate_loss_is_its_formula_on_a_hand_example(T):
    q, _, ids, lp, rest = hand_example()
    cfg = DistillConfig(teacher="t", temperature=T)
    # p̂ = (0.5, r q_1 / Q, 0.3, r q_3 / Q) with r = 0.2 and the student's tail q_1 = 0.2,
    # q_3 = 0.4, Q = 0.6: the kept two as they are, the tail's 0.2 in the student's shape.
    p_hat = torch.tensor([0.5, 0.2 * 0.2 / 0.6, 0.3, 0.2 * 0.4 / 0.6], dtype=torch.float64)
    qd = q[0].double().exp()
    pt = p_hat ** (1 / T) / (p_hat ** (1 / T)).sum()
    qt = qd ** (1 / T) / (qd ** (1 / T)).sum()
    expected = T * T * float((pt * (pt.log() - qt.log())).sum())
    got = cached_soft_loss(q, ids, lp, rest, cfg)
    # float32 arithmetic: T² = 400 times a small KL keeps about four digits
    assert got.item() == pytest.approx(expected, rel=3e-4)
    # The same as the exact loss with that completed distribution as the teacher's.
    assert got.item() == pytest.approx(soft_loss(q, p_hat.float().log().unsqueeze(0), cfg).item(), rel=3e-4)
    # The target is a constant: the gradient with respect to the student's logits (q is a
    # softmax's log-probabilities; q itself serves as logits) is the exact loss's with p̂ as a
    # fixed teacher.
    za, zb = q.clone().requires_grad_(True), q.clone().requires_grad_(True)
    cached_soft_loss(torch.log_softmax(za, -1), ids, lp, rest, cfg).backward()
    soft_loss(torch.log_softmax(zb, -1), p_hat.float().log().unsqueeze(0), cfg).backward()
    torch.testing.assert_close(za.grad, zb.grad, atol=1e-5, rtol=1e-3)


def test_at_t1_the_tail_costs_only_its_mass():
    """At T = 1: the KL of the (k + 1)-way partition, kept tokens + "any other"."""
    q, p, ids, lp, rest = hand_example()
    cfg = DistillConfig(teacher="t", temperature=1.0)
    qk, pk = q[0, [0, 2]].exp(), p[0, [0, 2]].exp()
    partition = float((pk * (pk / qk).log()).sum() + 0.2 * math.log(0.2 / (1 - qk.sum())))
    assert cached_soft_loss(q, ids, lp, rest, cfg).item() == pytest.approx(partition, rel=1e-5)
    # No tail left (rest 0): the KL over the kept tokens alone, finite.
    two = torch.tensor([[0.6, 0.0, 0.4, 0.0]])
    loss = cached_soft_loss(q, ids, two.gather(1, ids).log(), torch.tensor([0.0]), cfg)
    assert loss.item() == pytest.approx(float((two[0, [0, 2]] * (two[0, [0, 2]] / qk).log()).sum()), rel=1e-4)


def test_the_loss_approaches_the_exact_one_as_k_grows():
    g = torch.Generator().manual_seed(0)
    q = F.log_softmax(torch.randn(50, 200, generator=g) * 2, -1)
    p = F.log_softmax(torch.randn(50, 200, generator=g) * 3, -1)
    cfg = DistillConfig(teacher="t", temperature=2.0)
    exact = soft_loss(q, p, cfg).item()
    errors = []
    for k in (5, 50, 150, 199):
        top = p.topk(k, -1)
        rest = 1 - top.values.exp().sum(-1)
        errors.append(abs(cached_soft_loss(q, top.indices, top.values, rest, cfg).item() - exact))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4 * exact


def test_another_teacher_or_corpus_never_uses_the_cache(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    teacher = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"))
    first = teacher_targets(teacher, corpus.train, 4, 3, QUIET, False, root=tmp_path)
    logs = []
    again = teacher_targets(teacher, corpus.train, 4, 3, logs.append, False, root=tmp_path)
    assert again.path == first.path and "cached" in logs[0]
    # Another corpus (the same vocabulary, other text), another batch size, another k.
    other = np.array(corpus.train[::-1])
    paths = {first.path,
             teacher_targets(teacher, other, 4, 3, QUIET, False, root=tmp_path).path,
             teacher_targets(teacher, corpus.train, 5, 3, QUIET, False, root=tmp_path).path,
             teacher_targets(teacher, corpus.train, 4, 2, QUIET, False, root=tmp_path).path,
             teacher_targets(teacher, corpus.train, 4, 3, QUIET, False, root=tmp_path, cutoffs=(10, 20)).path}
    # Another teacher at the same path: its weights changed (retrained in place).
    weight = next(teacher.model.parameters())
    original = weight.detach().clone()
    with torch.no_grad():
        weight.add_(0.01)
    changed = teacher_targets(teacher, corpus.train, 4, 3, QUIET, False, root=tmp_path)
    paths.add(changed.path)
    assert len(paths) == 6
    assert not np.array_equal(np.asarray(changed.logp), np.asarray(first.logp))
    # A damaged folder (a file cut short) is written anew.
    with torch.no_grad():
        weight.copy_(original)  # the first teacher again
    stored, path = np.array(first.logp), first.path
    del first, again  # their mappings of the file about to be cut
    (path / "logp.npy").write_bytes(b"")
    logs = []
    rewritten = teacher_targets(teacher, corpus.train, 4, 3, logs.append, False, root=tmp_path)
    assert rewritten.path == path and "one pass" in logs[0]
    np.testing.assert_array_equal(np.asarray(rewritten.logp), stored)


def test_a_bf16_teacher_has_its_own_cache_close_to_the_fp32_one(tiny_run, tmp_path):
    """distill.teacher_precision=bf16: the fused LSTMs' weights in bfloat16 (the rest fp32),
    another cache than fp32's, and targets that differ from fp32's only by bf16's rounding."""
    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    fp32 = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"))
    bf16 = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"), precision="bf16")
    dtypes = {name: p.dtype for name, p in bf16.model.named_parameters()}
    assert {d for name, d in dtypes.items() if ".lstm." in name} == {torch.bfloat16}
    assert {d for name, d in dtypes.items() if ".lstm." not in name} == {torch.float32}
    a = teacher_targets(fp32, corpus.train, 4, 5, QUIET, False, root=tmp_path)
    b = teacher_targets(bf16, corpus.train, 4, 5, QUIET, False, root=tmp_path)
    assert a.path != b.path and '"precision": "bf16"' in (b.path / "meta.json").read_text()
    assert teacher_targets(bf16, corpus.train, 4, 5, QUIET, False, root=tmp_path).path == b.path
    # The same distribution up to bf16's 8-bit mantissa: the fp32 teacher's kept tokens
    # have close log-probabilities under the bf16 one (near-ties may swap which are kept),
    # and the mass left outside the kept tokens is close.
    source = batchify(corpus.train, 4)
    bf16.reset(4)
    lp = bf16.log_probs(source[:60]).reshape(-1, len(corpus.vocab))
    assert lp.dtype == torch.float32
    ta = a.window(0, 60, (0, 4), "cpu")
    tb = b.window(0, 60, (0, 4), "cpu")
    torch.testing.assert_close(tb.rest, ta.rest, atol=0.01, rtol=0)
    torch.testing.assert_close(lp.gather(1, ta.ids), ta.logp, atol=0.05, rtol=0.02)
    assert (ta.logp - tb.logp).abs().max() > 0  # computed in another arithmetic, not read from fp32's


def test_a_student_trains_from_the_cached_targets(tiny_run, tmp_path, monkeypatch):
    teacher, _ = tiny_run
    sets = ["train.epochs=2", "model.hidden_size=32", "train.variable_bptt=true", "distill.top_k=8"]
    logs = []
    a = commands.distill(str(teacher), "tiny", sets, str(tmp_path / "a"), None, log=logs.append,
                         temperature=2.0, soft_weight=0.5, hard_weight=0.5)
    assert any("one pass of the teacher" in str(m) for m in logs)
    assert math.isfinite(a["valid_loss"])
    # The second student finds the cache and never runs the teacher's forward.
    monkeypatch.setattr(Teacher, "log_probs", lambda *a: (_ for _ in ()).throw(AssertionError("teacher ran")))
    logs.clear()
    b = commands.distill(str(teacher), "tiny", sets[:-1], str(tmp_path / "b"), None, log=logs.append,
                         temperature=2.0, soft_weight=0.5, hard_weight=0.5, top_k=8)  # --top-k 8
    assert any("(cached, top 8)" in str(m) for m in logs)
    assert b["valid_loss"] == pytest.approx(a["valid_loss"], abs=1e-6)  # the same targets, the same run


def test_top_k_must_leave_a_tail(tiny_run, tmp_path):
    teacher, _ = tiny_run
    V = len(load_corpus("synthetic").vocab)
    with pytest.raises(AwdlstmError, match=f"distill.top_k={V}"):
        commands.distill(str(teacher), "tiny", [f"distill.top_k={V}"], str(tmp_path / "x"), None, log=QUIET)


def test_the_synthetic_spec_is_the_teachers(tmp_path):
    # The tests above read "synthetic", the tiny preset's corpus: the tiny_run teacher's own.
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(), folder)
    assert load_corpus(str(folder)).vocab.itos == load_corpus("synthetic").vocab.itos


def test_the_closed_form_at_t1_equals_the_general_form_and_its_gradient():
    """At T = 1 the cached loss comes from the k kept tokens alone (one gather); its value and
    its gradient with respect to the student's logits equal the general form's, which builds
    the whole completed distribution."""
    import math

    import torch.nn.functional as F

    from awdlstm.config import DistillConfig
    from awdlstm.train.losses import distillation as d

    torch.manual_seed(3)
    N, V, k = 12, 50, 6
    teacher = F.log_softmax(torch.randn(N, V) * 2, -1)
    top = teacher.topk(k, -1)
    rest = teacher.scatter(-1, top.indices, -math.inf).logsumexp(-1).exp()
    lp = top.values.half().float()  # as stored
    cfg = DistillConfig(teacher="t", top_k=k, temperature=1.0)
    logits = torch.randn(N, V, requires_grad=True)
    fast = d.cached_soft_loss(F.log_softmax(logits, -1), top.indices, lp, rest, cfg)
    g_fast, = torch.autograd.grad(fast, logits)
    slow = d._completed_kl(F.log_softmax(logits, -1), top.indices, lp, rest.unsqueeze(1), cfg)
    g_slow, = torch.autograd.grad(slow, logits)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("own", [False, True])
def test_cached_targets_cut_at_the_students_cutoffs(tiny_run, tmp_path, own):
    """With cutoffs the cache holds the teacher's head partition everywhere (its top k
    shortlist words, the shortlist's other mass, each cluster's mass) and, where the next
    token lies in a cluster, its top k within that cluster: for a teacher with the same
    adaptive head from its own pieces, for any other from its whole distribution."""
    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    teacher = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"))
    V, cuts, B, k = len(corpus.vocab), (10, 20), 4, 5
    if own:  # the same teacher behind an adaptive head cut at the student's cutoffs
        model = teacher.model
        model.decoder = AdaptiveSoftmax(model.decoder.weight.size(1), V, list(cuts)).eval()
        torch.nn.init.normal_(model.decoder.weight, 0, 0.5)
        torch.nn.init.normal_(model.decoder.cluster_weight, 0, 0.5)
    assert teacher.own_pieces(cuts) == own
    cache = teacher_targets(teacher, corpus.train, B, k, QUIET, False, root=tmp_path, cutoffs=cuts)
    source = batchify(corpus.train, B)
    teacher.reset(B)
    x, y = source[:30], source[1:31]
    lp = teacher.log_probs(x).reshape(-1, V)  # (N, V)
    y = y.reshape(-1)
    t = cache.window(0, 30, (0, B), "cpu")
    p = lp.exp()
    top = p[:, :10].topk(k, -1)
    assert torch.equal(t.ids, top.indices)
    torch.testing.assert_close(t.logp, top.values.log(), atol=2e-3, rtol=1e-3)  # fp16
    torch.testing.assert_close(t.rest, p[:, :10].sum(1) - top.values.sum(1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(t.mass, torch.stack([p[:, 10:20].sum(1), p[:, 20:].sum(1)], 1), atol=1e-6, rtol=1e-5)
    outside = y >= 10
    assert torch.equal(t.slot >= 0, outside) and t.cids.size(0) == int(outside.sum())
    for pos in outside.nonzero().squeeze(1).tolist():
        a, b = (10, 20) if y[pos] < 20 else (20, V)
        within = p[pos, a:b] / p[pos, a:b].sum()  # the next token's cluster
        j = t.slot[pos]
        wtop = within.topk(k)
        assert torch.equal(t.cids[j], wtop.indices)
        torch.testing.assert_close(t.clogp[j], wtop.values.log(), atol=2e-3, rtol=1e-3)
        torch.testing.assert_close(t.crest[j], 1 - wtop.values.sum(), atol=1e-5, rtol=1e-4)
    # Another process's columns hold the same numbers.
    part, full = cache.window(3, 9, (1, 3), "cpu"), cache.window(3, 9, (0, B), "cpu")
    cols = torch.zeros(9, B, dtype=torch.bool)
    cols[:, 1:3] = True
    picked = cols.reshape(-1)
    assert torch.equal(part.ids, full.ids[picked]) and torch.equal(part.mass, full.mass[picked])
    inside = full.slot[picked]
    assert torch.equal(part.slot >= 0, inside >= 0)
    assert torch.equal(part.cids[part.slot[part.slot >= 0]], full.cids[inside[inside >= 0]])


def test_the_factored_loss_on_a_hand_example():
    """V = 6 cut at (2, 4): shortlist {0, 1}, cluster 0 {2, 3}, cluster 1 {4, 5}; the teacher
    keeps k = 1 word of the shortlist and of the target's cluster; the target is 3, in cluster 0."""
    head = torch.tensor([[0.3, 0.2, 0.3, 0.2]]).log()  # the student's w0, w1, cluster 0, cluster 1
    within0 = torch.tensor([[0.6, 0.4]]).log()  # its words 2, 3 within cluster 0
    f = Factors(head, [(torch.tensor([0]), within0), (torch.zeros(0, dtype=torch.long), torch.zeros(0, 2))],
                torch.tensor([[0.3 * 0.4]]).log())
    # The teacher: 0.4, 0.1 | 0.25, 0.15 | 0.06, 0.04. It keeps w0 (0.4, the rest 0.1), both
    # clusters' masses (0.4, 0.1), and within cluster 0 word 2 (0.625, the rest 0.375).
    t = Targets(torch.tensor([[0]]), torch.tensor([[0.4]]).log(), torch.tensor([0.1]), torch.tensor([[0.4, 0.1]]),
                torch.tensor([0]), torch.tensor([[0]]), torch.tensor([[0.625]]).log(), torch.tensor([0.375]))
    for T in (1.0, 2.0):
        cfg = DistillConfig(teacher="t", temperature=T)
        # The head's classes: w0, cluster 0, cluster 1, and the rest (w1). Within cluster 0:
        # word 2 and the rest (word 3). Each tempered as a whole.
        expected = kl_t([0.4, 0.4, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2], T) + kl_t([0.625, 0.375], [0.6, 0.4], T)
        got = factored_soft_loss(f, t, cfg)
        assert got.item() == pytest.approx(T * T * expected, rel=1e-5)


def kl_t(p, q, T):
    """KL(p_T ‖ q_T) in float64, p_T ∝ p^(1/T)."""
    p, q = torch.tensor(p, dtype=torch.float64) ** (1 / T), torch.tensor(q, dtype=torch.float64) ** (1 / T)
    p, q = p / p.sum(), q / q.sum()
    return float((p * (p / q).log()).sum())


def student_head(V=12, cutoffs=(4, 8), E=6):
    torch.manual_seed(5)
    head = AdaptiveSoftmax(E, V, list(cutoffs))
    with torch.no_grad():
        for w in head.parameters():
            w.normal_(0, 0.7)
    return head


def test_the_factored_loss_is_the_chain_rule_of_the_exact_kl():
    """With every token kept (nothing approximated), a row's loss is the head's KL, plus
    cluster i's own KL when the target lies in cluster i; weighting those by the teacher's
    P_i, as the sampled indicator does in expectation, gives the exact KL."""
    V, cuts = 12, (4, 8)
    head, x = student_head(V, cuts), torch.randn(1, 6)
    p = F.log_softmax(torch.randn(1, V) * 2, -1)
    cfg = DistillConfig(teacher="t")

    def loss(y):  # the teacher's targets keep every word (k = 4, each part's size)
        y = torch.tensor([y])
        t = factored_targets(factor_log_probs(p, y, cuts), 4)
        return factored_soft_loss(head.factor(x, y), t, cfg).item()

    loss = {y: loss(y) for y in (1, 5, 10)}  # a target in the shortlist, cluster 0, 1
    P = [p[0, 4:8].exp().sum().item(), p[0, 8:].exp().sum().item()]
    chain = loss[1] + P[0] * (loss[5] - loss[1]) + P[1] * (loss[10] - loss[1])
    with torch.no_grad():
        exact = soft_loss(head.log_probs(x), p, cfg).item()
    assert chain == pytest.approx(exact, rel=1e-5)


def test_the_factored_loss_and_its_gradient_match_the_whole_distributions():
    """The same loss from the whole (N, V) distributions (every token kept): value and
    gradients on the head's weights and on its input."""
    V, cuts, N = 12, (4, 8), 9
    head = student_head(V, cuts)
    x = torch.randn(N, 6, requires_grad=True)
    y = torch.tensor([0, 5, 9, 3, 11, 4, 8, 2, 7])
    p = F.log_softmax(torch.randn(N, V) * 2, -1)
    cfg = DistillConfig(teacher="t")
    fast = factored_soft_loss(head.factor(x, y), factored_targets(factor_log_probs(p, y, cuts), 4), cfg)
    g_fast = torch.autograd.grad(fast, [x, *head.parameters()])
    # The reference: the head's coarse distributions and each cluster's own, from (N, V).
    q, pd = head.log_probs(x).exp(), p.exp()

    def kl(a, b):
        return (a * (a / b).log()).sum(1)

    def coarse(d):
        return torch.cat([d[:, :4], d[:, 4:8].sum(1, keepdim=True), d[:, 8:].sum(1, keepdim=True)], 1)

    rows = kl(coarse(pd), coarse(q))
    for a, b in ((4, 8), (8, 12)):
        inside = (y >= a) & (y < b)
        rows = rows + inside * kl(pd[:, a:b] / pd[:, a:b].sum(1, keepdim=True), q[:, a:b] / q[:, a:b].sum(1, keepdim=True))
    slow = rows.mean()
    g_slow = torch.autograd.grad(slow, [x, *head.parameters()])
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_an_adaptive_student_distills_without_its_whole_distribution(tiny_run, tmp_path, monkeypatch):
    teacher, _ = tiny_run
    whole = []
    real = AdaptiveSoftmax.log_probs

    def spy(self, x, columns=None):
        whole.append(self.training)
        return real(self, x, columns)

    monkeypatch.setattr(AdaptiveSoftmax, "log_probs", spy)
    logs = []
    sets = ["train.epochs=1", "model.hidden_size=32", "model.head=adaptive", "model.adaptive_cutoffs=[10,20]",
            "distill.top_k=8"]
    res = commands.distill(str(teacher), "tiny", sets, str(tmp_path / "a"), None, log=logs.append)
    assert math.isfinite(res["valid_loss"])
    assert any("one pass of the teacher" in str(m) for m in logs)
    assert not any(whole)  # the training steps never built (N, V)


def test_an_adaptive_students_top_k_must_fit_its_smallest_part(tiny_run, tmp_path):
    teacher, _ = tiny_run
    sets = ["model.head=adaptive", "model.adaptive_cutoffs=[10,20]", "distill.top_k=11"]
    with pytest.raises(AwdlstmError, match="distill.top_k=11.*choose at most 10"):
        commands.distill(str(teacher), "tiny", sets, str(tmp_path / "x"), None, log=QUIET)


@pytest.mark.parametrize("cutoffs", [(), (10, 20)])
def test_a_partial_pass_holds_the_first_rows_of_the_whole_one(tiny_run, tmp_path, cutoffs):
    """distill.coverage = 0.5: the first half of the rows, the whole pass's numbers there,
    under another key; a window past them holds only its covered positions."""
    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    teacher = Teacher(str(run_dir), corpus.vocab.itos, torch.device("cpu"))
    B, k = 4, 5
    whole = teacher_targets(teacher, corpus.train, B, k, QUIET, False, root=tmp_path, cutoffs=cutoffs)
    half = teacher_targets(teacher, corpus.train, B, k, QUIET, False, root=tmp_path, cutoffs=cutoffs, coverage=0.5)
    R = len(corpus.train) // B
    assert half.path != whole.path and whole.rows == R and half.rows == round(R / 2)
    for start, length in ((0, 30), (half.rows - 30, 30)):
        a, b = whole.window(start, length, (0, B), "cpu"), half.window(start, length, (0, B), "cpu")
        for name in a._fields:
            if getattr(a, name) is not None:
                assert torch.equal(getattr(a, name), getattr(b, name)), name
    straddle = half.window(half.rows - 10, 30, (1, 3), "cpu")  # 10 covered rows of 30, 2 columns
    assert straddle.rest.numel() == 10 * 2
    if cutoffs:
        assert straddle.cids.size(0) == int((straddle.slot >= 0).sum())
    assert half.window(half.rows + 5, 30, (0, B), "cpu").rest.numel() == 0


def test_past_the_covered_rows_the_soft_term_is_the_hard_loss(tiny_run, tmp_path):
    """A window of which the first n of N positions are covered: soft = (n · KL_covered + Σ_others CE) / N."""
    from awdlstm.model.lm import LMOutput
    from awdlstm.train.hooks import Step
    from awdlstm.train.losses import LossContext
    from awdlstm.train.losses.distillation import Distillation

    run_dir, _ = tiny_run
    corpus = load_corpus("synthetic")
    V, B, L = len(corpus.vocab), 4, 12
    cfg = DistillConfig(teacher=str(run_dir), top_k=5, coverage=0.5, temperature=2.0)

    def targets(teacher, k, cutoffs, coverage):
        return teacher_targets(teacher, corpus.train, B, k, QUIET, False, root=tmp_path, cutoffs=cutoffs,
                               coverage=coverage)

    term = Distillation(cfg, LossContext(corpus.vocab.itos, torch.device("cpu"), (0, B), targets))
    source = batchify(corpus.train, B)
    logits = torch.randn(L, B, V)
    logp = F.log_softmax(logits, -1)

    out = LMOutput(logits, [], logits, logits)  # a forward without targets: the whole distribution

    def step_at(start):
        return Step(source[start:start + L], source[start + 1:start + L + 1], out, start)

    R = term.targets.rows
    n = 5  # covered rows of the window
    step = step_at(R - n)
    t = term.targets.window(R - n, L, (0, B), "cpu")
    kl = cached_soft_loss(logp[:n], t.ids, t.logp, t.rest, cfg)
    ce = -logp.reshape(L * B, V).gather(1, step.y.reshape(-1, 1))[n * B:].sum() / (L * B)
    torch.testing.assert_close(term.soft(step), kl * n / L + ce)
    # Wholly covered: the cached KL alone; wholly past: the hard loss.
    whole = term.targets.window(0, L, (0, B), "cpu")
    torch.testing.assert_close(term.soft(step_at(0)), cached_soft_loss(logp, whole.ids, whole.logp, whole.rest, cfg))
    far = step_at(R + 3)
    torch.testing.assert_close(term.soft(far), F.nll_loss(logp.reshape(-1, V), far.y.reshape(-1)))


def test_coverage_needs_a_cache():
    with pytest.raises(AwdlstmError, match="distill.coverage=0.5.*distill.top_k"):
        DistillConfig(teacher="t", coverage=0.5)
    with pytest.raises(AwdlstmError, match="coverage"):
        DistillConfig(teacher="t", top_k=5, coverage=0.0)


def test_a_student_distills_from_a_partial_pass(tiny_run, tmp_path):
    teacher, _ = tiny_run
    logs = []
    sets = ["train.epochs=1", "model.hidden_size=32", "model.head=adaptive", "model.adaptive_cutoffs=[10,20]",
            "distill.top_k=8", "distill.coverage=0.3", "distill.teacher_precision=bf16"]
    res = commands.distill(str(teacher), "tiny", sets, str(tmp_path / "a"), None, log=logs.append)
    assert math.isfinite(res["valid_loss"])
    assert any("one pass of the teacher (bf16) over the first" in str(m) for m in logs)
