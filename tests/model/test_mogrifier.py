"""Mogrifier LSTM: zero rounds is the LSTM with the same weights, the alternating updates
match a hand-written reference (outputs and gradients), weight drop acts on its W_hh."""

import pytest
import torch

from awdlstm import ModelConfig, build_model
from awdlstm.model.mogrifier import MogrifierLayer

IN, H, T, B = 5, 7, 6, 3


def reference(layer, x, h, c):
    """The paper's equations step by step, on the layer's own parameters."""
    lstm = layer.lstm
    mats = layer.matrices()
    outs = []
    for t in range(x.size(0)):
        xs, hs = {-1: x[t]}, {0: h}
        for i in range(1, layer.rounds + 1):
            if i % 2:
                xs[i] = 2 * torch.sigmoid(hs[i - 1] @ mats[i - 1].t()) * xs[i - 2]
                hs[i] = hs[i - 1]
            else:
                hs[i] = 2 * torch.sigmoid(xs[i - 1] @ mats[i - 1].t()) * hs[i - 2]
                xs[i] = xs[i - 1]
        xt, ht = xs[max(xs)], hs[max(hs)]
        gates = xt @ lstm.weight_ih_l0.t() + lstm.bias_ih_l0 + ht @ lstm.weight_hh_l0.t() + lstm.bias_hh_l0
        i_, f_, g_, o_ = gates.chunk(4, 1)
        c = torch.sigmoid(f_) * c + torch.sigmoid(i_) * torch.tanh(g_)
        h = torch.sigmoid(o_) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def test_zero_rounds_is_the_lstm():
    torch.manual_seed(0)
    layer = MogrifierLayer(IN, H, rounds=0).eval()
    x, h0, c0 = torch.randn(T, B, IN), torch.randn(1, B, H), torch.randn(1, B, H)
    out, (h, c) = layer(x, (h0, c0))
    ref, (hr, cr) = layer.lstm(x, (h0, c0))
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(h, hr, atol=1e-6) and torch.allclose(c, cr, atol=1e-6)


@pytest.mark.parametrize("rounds, rank", [(1, 0), (4, 0), (5, 0), (5, 2)])
def test_matches_the_reference_with_gradients(rounds, rank):
    torch.manual_seed(rounds + rank)
    layer = MogrifierLayer(IN, H, rounds=rounds, rank=rank).double().eval()
    x = torch.randn(T, B, IN, dtype=torch.double, requires_grad=True)
    h0, c0 = torch.randn(B, H, dtype=torch.double), torch.randn(B, H, dtype=torch.double)
    out, (h, c) = layer(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
    ref, hr, cr = reference(layer, x, h0, c0)
    assert torch.allclose(out, ref, atol=1e-10) and torch.allclose(c[0], cr, atol=1e-10)
    w = torch.randn_like(out)
    params = [x] + list(layer.parameters())
    got = torch.autograd.grad((out * w).sum() + c.sum(), params)
    want = torch.autograd.grad((ref * w).sum() + cr.sum(), params)
    for g, r in zip(got, want):
        assert torch.allclose(g, r, atol=1e-5)
    assert len(layer.matrices()) == rounds


def test_weight_drop_masks_w_hh_once_per_forward_and_reaches_the_raw_weight(monkeypatch):
    torch.manual_seed(4)
    layer = MogrifierLayer(IN, H, weight_drop=0.5, rounds=3).train()
    used = []
    import awdlstm.model.recurrent as mog  # where every layer applies weight drop
    real = mog.drop_weight
    monkeypatch.setattr(mog, "drop_weight", lambda w, p: used.append(real(w, p)) or used[-1])
    out, _ = layer(torch.randn(T, B, IN), layer.init_state(B))
    assert len(used) == 1  # one mask for every step and sequence of the forward
    dropped = used[0].detach()
    raw = layer.lstm.weight_hh_l0.detach()
    zero = dropped == 0
    assert 0.3 < zero.float().mean() < 0.7
    assert torch.allclose(dropped[~zero], raw[~zero] * 2)  # kept entries scaled by 1 / (1 - p)
    out.sum().backward()
    assert layer.lstm.weight_hh_l0.grad.abs().sum() > 0
    assert (layer.lstm.weight_hh_l0.grad[zero] == 0).all()  # dropped entries get no gradient
    layer.eval()  # evaluation: the raw weight, deterministic
    x = torch.randn(T, B, IN)
    assert torch.equal(layer(x, layer.init_state(B))[0], layer(x, layer.init_state(B))[0])


def test_in_the_model_with_the_awd_regularizers():
    torch.manual_seed(5)
    cfg = ModelConfig(emb_size=8, hidden_size=12, num_layers=2, cell="mogrifier", mogrifier_rounds=4,
                      dropout_emb=0.1, dropout_input=0.2, dropout_hidden=0.2, dropout_output=0.2, weight_drop=0.3)
    model = build_model(cfg, 30).train()
    x, y = torch.randint(0, 30, (7, 4)), torch.randint(0, 30, (7, 4))
    out = model(x, model.init_hidden(4), targets=y)
    (-out.target_logp.mean()).backward()
    for layer in model.layers:  # every Q and R, and the raw weight-dropped W_hh
        assert all(p.grad.abs().sum() > 0 for p in layer.mats)
        assert layer.lstm.weight_hh_l0.grad.abs().sum() > 0


def test_the_factorized_form_equals_the_full_rank_one_with_the_same_products():
    """Q^i = A^i B^i: a rank-k layer and a full-rank layer holding the products agree, in
    outputs and in the gradients of the LSTM weights (the factors' gradients follow by the
    chain rule: dA = dQ B^T, dB = A^T dQ)."""
    torch.manual_seed(3)
    low = MogrifierLayer(IN, H, rounds=5, rank=2).double()
    full = MogrifierLayer(IN, H, rounds=5, rank=0).double()
    full.lstm.load_state_dict(low.lstm.state_dict())
    with torch.no_grad():
        for mat, a, b in zip(full.mats, low.left, low.right):
            mat.copy_(a @ b)
    x, h0, c0 = torch.randn(T, B, IN).double(), torch.randn(1, B, H).double(), torch.randn(1, B, H).double()
    out_low, _ = low(x, (h0, c0))
    out_full, _ = full(x, (h0, c0))
    torch.testing.assert_close(out_low, out_full)
    out_low.square().sum().backward()
    out_full.square().sum().backward()
    torch.testing.assert_close(low.lstm.weight_hh_l0.grad, full.lstm.weight_hh_l0.grad)
    for mat, a, b in zip(full.mats, low.left, low.right):
        torch.testing.assert_close(a.grad, mat.grad @ b.detach().t())
        torch.testing.assert_close(b.grad, a.detach().t() @ mat.grad)
