"""Mixture of Softmaxes: a proper distribution, K = 1 is one softmax over the tanh latent,
the target path equals the full distribution, gradients reach every expert, and the config
rules name their key."""

import pytest
import torch
import torch.nn.functional as F

from awdlstm import ModelConfig, build_model
from awdlstm.errors import AwdlstmError
from awdlstm.model.mos import MixtureOfSoftmaxes

V = 40
MOS = dict(emb_size=8, hidden_size=12, num_layers=2, head="mos", mos_experts=3, mos_last_size=10,
           dropout_latent=0.3, dropout_emb=0.1, dropout_input=0.2, dropout_hidden=0.2, dropout_output=0.2,
           weight_drop=0.3)


def test_the_mixture_is_a_distribution_and_matches_its_formula():
    torch.manual_seed(0)
    head = MixtureOfSoftmaxes(10, 8, V, 4, 0.0).eval()
    x = torch.randn(5, 3, 10)
    logp = head.log_probs(x)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(5, 3), atol=1e-5)
    # By hand, in probability space.
    latent = torch.tanh(head.latent(x)).view(5, 3, 4, 8)
    probs = F.softmax(latent @ head.weight.t() + head.bias, -1)  # (5, 3, 4, V)
    prior = F.softmax(head.prior(x), -1)  # (5, 3, 4)
    assert torch.allclose(logp, (prior.unsqueeze(-1) * probs).sum(2).log(), atol=1e-5)
    y = torch.randint(0, V, (5, 3))
    assert torch.allclose(head.target_log_prob(x, y), logp.gather(-1, y.unsqueeze(-1)).squeeze(-1), atol=1e-5)


def test_one_expert_is_a_plain_softmax_over_the_latent():
    torch.manual_seed(1)
    head = MixtureOfSoftmaxes(10, 8, V, 1, 0.0).eval()
    x = torch.randn(4, 2, 10)
    plain = F.log_softmax(F.linear(torch.tanh(head.latent(x)), head.weight, head.bias), -1)
    assert torch.allclose(head.log_probs(x), plain, atol=1e-6)


def test_in_the_model_tied_with_every_regularizer_gradients_reach_every_expert():
    torch.manual_seed(2)
    model = build_model(ModelConfig(**MOS), V).train()
    assert model.decoder.weight is model.embedding.weight
    assert model.layers[-1].lstm.hidden_size == 10  # mos_last_size
    x, y = torch.randint(0, V, (6, 4)), torch.randint(0, V, (6, 4))
    out = model(x, model.init_hidden(4), targets=y)
    assert out.logits is None
    (-out.target_logp.mean()).backward()
    d = model.decoder
    assert d.prior.weight.grad.abs().sum(1).gt(0).all()  # every expert's prior row
    assert d.latent.weight.grad.view(3, 8, -1).abs().sum((1, 2)).gt(0).all()  # every expert's latent block
    assert model.embedding.weight.grad.abs().sum() > 0 and d.bias.grad.abs().sum() > 0
    model.eval()
    full = model(x, model.init_hidden(4))
    assert torch.allclose(full.logits.exp().sum(-1), torch.ones(6, 4), atol=1e-5)
    assert torch.allclose(model(x, model.init_hidden(4), targets=y).target_logp,
                          full.logits.gather(-1, y.unsqueeze(-1)).squeeze(-1), atol=1e-5)


def test_latent_dropout_is_locked_over_time():
    torch.manual_seed(3)
    head = MixtureOfSoftmaxes(10, 8, V, 2, 0.5).train()
    seen = {}
    head.latent_dropout.register_forward_hook(lambda m, i, o: seen.update(out=o, inp=i[0]))
    head.log_probs(torch.randn(7, 3, 10))
    zero = seen["out"] == 0
    assert torch.equal(zero, zero[:1].expand_as(zero))  # the same units dropped at every step
    kept = ~zero
    assert torch.allclose(seen["out"][kept], seen["inp"][kept] * 2)


def test_config_rules():
    with pytest.raises(AwdlstmError, match="mos_experts >= 1"):
        ModelConfig(head="mos")
    for knob, value in (("mos_experts", 3), ("mos_last_size", 10), ("dropout_latent", 0.2)):
        with pytest.raises(AwdlstmError, match=f"model.{knob}={value} only acts with model.head='mos'"):
            ModelConfig(**{knob: value})


def test_the_fused_target_path_equals_autograd_through_the_logits():
    """ExpertTargetLogProb (one (rows, V) buffer, a hand-written backward) against the
    log-softmax path, in outputs and in every gradient, the tied weight included."""
    from awdlstm.model.mos import MixtureOfSoftmaxes
    torch.manual_seed(0)
    head = MixtureOfSoftmaxes(12, 8, 30, 3, dropout_latent=0.0).double()
    x = torch.randn(5, 4, 12, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 30, (5, 4))
    ref = head.log_probs(x).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    grads_ref = torch.autograd.grad(ref.sum(), [x, *head.parameters()])
    head.float()
    xf = x.detach().float().requires_grad_(True)
    got = head.target_log_prob(xf, y)  # the fused path: float32, no autocast
    torch.testing.assert_close(got.double(), ref.double(), atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(got.sum(), [xf, *head.parameters()])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a.double(), b.double(), atol=1e-5, rtol=1e-4)
