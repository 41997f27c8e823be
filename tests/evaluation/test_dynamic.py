import copy

import torch

from awdlstm import ModelConfig, build_model
from awdlstm.evaluation import score_dynamic, score_static


def small_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(emb_size=8, hidden_size=16, num_layers=2), 30).eval()


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
    import torch.nn.functional as F
    model = small_model()
    ids = torch.randint(0, 30, (16,)).numpy()
    lr, decay, seg = 0.3, 0.2, 5
    dyn = score_dynamic(model, ids, lr=lr, decay=decay, rule="sgd", bptt=seg)

    ref = copy.deepcopy(model)
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
            for p, g, p0 in zip(params, grads, theta0):
                p.copy_(p - lr * g + decay * (p0 - p))
    torch.testing.assert_close(dyn.logp, torch.cat(logps), atol=1e-5, rtol=1e-5)
