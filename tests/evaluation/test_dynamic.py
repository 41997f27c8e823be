import copy

import torch

from awdlstm import ModelConfig, build_model
from awdlstm.evaluation import score_dynamic, score_static


def small_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(emb_size=8, hidden_size=16, num_layers=2), 30).eval()


def hand_dynamic(ref, ids, seg: int, rule) -> torch.Tensor:
    """Dynamic evaluation written out: read ``ids`` at batch 1 in segments of ``seg``, the
    state carried and detached; after each segment every parameter p becomes
    rule(p, g, p0, index). Returns the log-probabilities of every target, in order."""
    import torch.nn.functional as F
    params = list(ref.parameters())
    theta0 = [p.detach().clone() for p in params]
    x = torch.as_tensor(ids).view(-1, 1)
    hidden, logps = ref.init_hidden(1), []
    for start in range(0, len(ids) - 1, seg):
        n = min(seg, len(ids) - 1 - start)
        hidden = [tuple(t.detach() for t in s) for s in hidden]
        out = ref(x[start:start + n], hidden)
        logp = -F.cross_entropy(out.logits[:, 0], x[start + 1:start + 1 + n, 0], reduction="none")
        logps.append(logp.detach())
        hidden = out.hidden
        grads = torch.autograd.grad(-logp.mean(), params)
        with torch.no_grad():
            for i, (p, g, p0) in enumerate(zip(params, grads, theta0)):
                p.copy_(rule(p, g, p0, i))
    return torch.cat(logps)


def test_lr_zero_equals_static_evaluation():
    model = small_model()
    ids = torch.randint(0, 30, (200,)).numpy()
    static = score_static(model, ids, bptt=7)
    dyn = score_dynamic(model, ids, lr=0.0, decay=0.0, rule="sgd", bptt=5)
    torch.testing.assert_close(dyn.logp, static.logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dyn.hidden, static.hidden, atol=1e-5, rtol=1e-5)


def test_adapts_without_touching_the_callers_weights():
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    ids = torch.arange(10).repeat(30).numpy() % 30  # repetitive: adaptation must help
    static = score_static(model, ids)
    sgd = score_dynamic(model, ids, lr=0.5, rule="sgd", bptt=5)
    rms = score_dynamic(model, ids, lr=1e-3, decay=0.01, rule="rms", bptt=5, train_ids=ids, stat_batches=5)
    assert sgd.loss() < static.loss() and rms.loss() < static.loss()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_sgd_rule_matches_its_formula_with_decay():
    """Two segments by hand: θ1 = θ0 − lr·g0 (θ = θ0, no pull yet); θ2 = θ1 − lr·g1 + decay·(θ0 − θ1).
    The third segment's score then tells θ2 apart from the wrong θ1 − lr·g1 + decay·(θ0 − θ1 + lr·g1)."""
    model = small_model()
    ids = torch.randint(0, 30, (16,)).numpy()
    lr, decay, seg = 0.3, 0.2, 5
    dyn = score_dynamic(model, ids, lr=lr, decay=decay, rule="sgd", bptt=seg)

    ref = copy.deepcopy(model)
    logps = hand_dynamic(ref, ids, seg, lambda p, g, p0, i: p - lr * g + decay * (p0 - p))
    torch.testing.assert_close(dyn.logp, logps, atol=1e-5, rtol=1e-5)


def test_rms_rule_matches_the_authors_formulas():
    """By hand, as in Krause et al.'s code: MS over every training segment at batch 100,
    r = MS / mean over tensors of mean(MS), clipped at 1 / decay; then per segment
    θ ← θ − lr·g / (MS + ε) + decay·r·(θ0 − θ)."""
    import torch.nn.functional as F

    from awdlstm.data.batching import batchify
    from awdlstm.evaluation.dynamic import EPSILON, STAT_BATCH
    model = small_model()
    gen = torch.Generator().manual_seed(1)
    train = torch.randint(0, 30, (STAT_BATCH * 13,), generator=gen).numpy()
    ids = torch.randint(0, 30, (16,), generator=gen).numpy()
    lr, decay, seg = 0.01, 0.5, 5
    dyn = score_dynamic(model, ids, lr=lr, decay=decay, rule="rms", bptt=seg, train_ids=train)

    ref = copy.deepcopy(model)
    params = list(ref.parameters())
    source = batchify(train, STAT_BATCH)  # (13, 100): segments of 5, 5 and 2 targets
    ms, n, hidden = [torch.zeros_like(p) for p in params], 0, ref.init_hidden(STAT_BATCH)
    for start in range(0, source.size(0) - 1, seg):
        x, y = source[start:start + seg], source[start + 1:start + 1 + seg]
        x = x[: y.size(0)]
        hidden = [tuple(t.detach() for t in s) for s in hidden]
        out = ref(x, hidden)
        hidden = out.hidden
        loss = F.cross_entropy(out.logits.reshape(-1, 30), y.reshape(-1))
        for m, g in zip(ms, torch.autograd.grad(loss, params)):
            m += g * g
        n += 1
    assert n == 3
    ms = [(m / n).sqrt() for m in ms]
    gsum = sum(m.mean() for m in ms) / len(ms)
    rates = [(m / gsum).clamp(max=1 / decay) for m in ms]
    assert any((r == 1 / decay).any() for r in rates)  # the clip acts in this example
    logps = hand_dynamic(ref, ids, seg, lambda p, g, p0, i: p - lr * g / (ms[i] + EPSILON) + decay * rates[i] * (p0 - p))
    torch.testing.assert_close(dyn.logp, logps, atol=1e-5, rtol=1e-4)


def test_parameters_a_segment_does_not_reach_count_a_zero_gradient():
    """Adaptive softmax with every target in the head: the tail cluster's rows get no
    gradient; statistics and updates go on, and those rows stay at θ0."""
    from awdlstm.evaluation.dynamic import gradient_ms
    torch.manual_seed(0)
    model = build_model(ModelConfig(emb_size=8, hidden_size=16, num_layers=1, head="adaptive",
                                    adaptive_cutoffs=[10], tie_weights=False), 30).eval()
    ids = (torch.arange(800) % 10).numpy()  # only the 10 head words
    ms = gradient_ms(model, ids, 5)
    names = [n for n, p in model.named_parameters()]
    bias = ms[names.index("decoder.bias")]
    assert (bias[10:] == 0).all() and (bias[:10] > 0).any()
    model.register_parameter("unused", torch.nn.Parameter(torch.ones(3)))  # no loss reaches it at all
    dyn = score_dynamic(model, ids[:60], lr=1e-3, decay=0.01, rule="rms", bptt=5, train_ids=ids)
    assert torch.isfinite(dyn.logp).all()
    names = [n for n, p in model.named_parameters()]
    assert gradient_ms(model, ids, 5)[names.index("unused")].eq(0).all()


def test_the_published_defaults():
    from awdlstm.cli import build_parser
    from awdlstm.evaluation import dynamic
    assert (dynamic.DEFAULT_LR, dynamic.DEFAULT_DECAY, dynamic.EPSILON, dynamic.DEFAULT_BPTT,
            dynamic.STAT_BATCH) == (5e-5, 0.002, 2e-5, 5, 100)
    args = build_parser().parse_args(["eval", "run", "--dynamic"])
    assert (args.lr, args.decay, args.dyn_bptt, args.rule) == (5e-5, 0.002, 5, "rms")
