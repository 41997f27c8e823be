"""The cells of the zoneout paper's other networks and the normalized LSTMs, against
hand-written references in float64 (outputs and gradients), at training and at evaluation."""

import pytest
import torch
from torch import nn

from awdlstm.config import build_config
from awdlstm.model import build_model
from awdlstm.model.batchnorm_lstm import BatchNormLSTMLayer
from awdlstm.model.gru import GRULayer, gru_steps
from awdlstm.model.layernorm_lstm import LayerNormLSTMLayer
from awdlstm.model.rnn import RNNLayer, rnn_steps

T, B, I, H = 6, 4, 5, 3
D = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def mask(p, seed):
    return (torch.rand(T, B, H, generator=torch.Generator().manual_seed(seed), dtype=D) < p).to(D)


def zoneout(new, old, z):
    return z * old + (1 - z) * new  # keep the old value where z = 1 (a constant z: the expectation)


def grads(fn, *tensors):
    tensors = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*tensors)
    (out * torch.linspace(-1, 1, out.numel(), dtype=D).view_as(out)).sum().backward()
    return out.detach(), [t.grad for t in tensors]


def assert_same(a, b):
    (oa, ga), (ob, gb) = a, b
    torch.testing.assert_close(oa, ob, rtol=1e-10, atol=1e-12)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


# ---- GRU ------------------------------------------------------------------------------
def gru_reference(x, w_ih, w_hh, b_ih, b_hh, h, zone, keep):
    """Cho et al.'s GRU in PyTorch's convention, each gate from its own matrices."""
    W_ir, W_iz, W_in = w_ih.split(H)
    W_hr, W_hz, W_hn = w_hh.split(H)
    b_ir, b_iz, b_in = b_ih.split(H)
    b_hr, b_hz, b_hn = b_hh.split(H)
    outs = []
    for t in range(x.size(0)):
        r = torch.sigmoid(x[t] @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x[t] @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = torch.tanh(x[t] @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
        n = n * (keep[t] if keep is not None else 1)
        h = zoneout((1 - z) * n + z * h, h, zone[t] if torch.is_tensor(zone) else zone)
        outs.append(h)
    return torch.stack(outs)


def gru_layer_run(x, w_ih, w_hh, b_ih, b_hh, h, zone, keep):
    xproj = x @ w_ih.T + b_ih
    dense = torch.ones(T, B, H, dtype=D)
    return gru_steps(xproj, w_hh, b_hh, h, zone if torch.is_tensor(zone) else dense * zone,
                     dense if keep is None else keep)[0]


@pytest.mark.parametrize("zone, keep", [(0.0, None), ("mask", None), (0.3, None), ("mask", "keep")])
def test_gru_steps_equal_the_hand_reference(zone, keep):
    zone = mask(0.3, 1) if zone == "mask" else zone
    keep = (1 - mask(0.4, 2)) / 0.6 if keep else None
    args = [rand(T, B, I, seed=3), rand(3 * H, I, seed=4), rand(3 * H, H, seed=5), rand(3 * H, seed=6),
            rand(3 * H, seed=7), rand(B, H, seed=8)]
    assert_same(grads(lambda *a: gru_layer_run(*a, zone, keep), *args),
                grads(lambda *a: gru_reference(*a, zone, keep), *args))


def test_gru_without_regularizers_is_torchs_gru_and_its_per_step_path_agrees():
    layer = GRULayer(I, H).double()
    x, h0 = rand(T, B, I), rand(1, B, H, seed=1)
    out, (h,) = layer(x, (h0,))
    ref, _ = nn.GRU(I, H).double().requires_grad_(False).__class__.forward(layer.gru, x, h0)
    torch.testing.assert_close(out, ref)
    g = layer.gru
    per_step = gru_layer_run(x, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, h0[0], 0.0, None)
    torch.testing.assert_close(per_step, out, rtol=1e-10, atol=1e-12)


def test_gru_zoneout_uses_its_expectation_at_evaluation_and_masks_in_training():
    layer = GRULayer(I, H, zoneout_h=1.0).double()
    x, h0 = rand(T, B, I), rand(1, B, H, seed=1)
    out, _ = layer.train()(x, (h0,))
    torch.testing.assert_close(out, h0.expand(T, B, H))  # every unit zoned out: h never changes
    layer = GRULayer(I, H, zoneout_h=0.25, recurrent_dropout=0.5).double().eval()
    g = layer.gru
    out, _ = layer(x, (h0,))
    ref = gru_reference(x, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, h0[0], 0.25, None)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)  # no dropout, z at its mean


# ---- RNN ------------------------------------------------------------------------------
def rnn_reference(x, w_ih, w_hh, b_ih, b_hh, h, zone):
    outs = []
    for t in range(x.size(0)):
        h = zoneout(torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh), h, zone[t] if torch.is_tensor(zone) else zone)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("zone", [0.0, "mask", 0.4])
def test_rnn_steps_equal_the_hand_reference(zone):
    zone = mask(0.3, 1) if zone == "mask" else zone

    def run(x, w_ih, w_hh, b_ih, b_hh, h):
        return rnn_steps(x @ w_ih.T + b_ih, w_hh, b_hh, h, zone if torch.is_tensor(zone) else
                         torch.full((T, B, H), zone, dtype=D))[0]
    args = [rand(T, B, I, seed=3), rand(H, I, seed=4), rand(H, H, seed=5), rand(H, seed=6), rand(H, seed=7),
            rand(B, H, seed=8)]
    assert_same(grads(run, *args), grads(lambda *a: rnn_reference(*a, zone), *args))


def test_rnn_layer_is_torchs_rnn_without_zoneout_and_the_expectation_with_it():
    x, h0 = rand(T, B, I), rand(1, B, H, seed=1)
    layer = RNNLayer(I, H).double()
    torch.testing.assert_close(layer(x, (h0,))[0], layer.rnn(x, h0)[0])
    layer = RNNLayer(I, H, zoneout_h=0.3).double().eval()
    r = layer.rnn
    ref = rnn_reference(x, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0, h0[0], 0.3)
    torch.testing.assert_close(layer(x, (h0,))[0], ref, rtol=1e-10, atol=1e-12)


# ---- layer-normalized LSTM ------------------------------------------------------------
def ln(a, gain, bias, eps=1e-5):
    mean = a.mean(-1, keepdim=True)
    var = ((a - mean) ** 2).mean(-1, keepdim=True)
    return gain * (a - mean) / torch.sqrt(var + eps) + bias


def lstm_gates(gates):
    i, f, g, o = gates.split(H, -1)
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


def test_layernorm_lstm_equals_ba_et_al_in_training_and_evaluation():
    layer = LayerNormLSTMLayer(I, H, zoneout_c=0.3, zoneout_h=0.2).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x, h0, c0 = rand(T, B, I), rand(1, B, H, seed=1), rand(1, B, H, seed=2)

    def reference(zc, zh):
        h, c, outs = h0[0], c0[0], []
        for t in range(T):
            gates = ln(h @ layer.weight_hh.T, layer.ln_h.weight, layer.ln_h.bias) + \
                ln(x[t] @ layer.weight_ih.T, layer.ln_x.weight, layer.ln_x.bias) + layer.bias
            i, f, g, o = lstm_gates(gates)
            cn = f * c + i * g
            hn = o * torch.tanh(ln(cn, layer.ln_c.weight, layer.ln_c.bias))
            c, h = zoneout(cn, c, zc if not torch.is_tensor(zc) else zc[t]), zoneout(hn, h, zh if not torch.is_tensor(zh) else zh[t])
            outs.append(h)
        return torch.stack(outs)
    out, _ = layer.eval()(x, (h0, c0))
    ref = reference(0.3, 0.2)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    # Training: the layer's masks are the generator's next draws, c's then h's.
    torch.manual_seed(5)
    out = layer.train()(x, (h0, c0))[0]
    torch.manual_seed(5)
    zc, zh = (torch.rand(T, B, H) < 0.3).double(), (torch.rand(T, B, H) < 0.2).double()
    torch.testing.assert_close(out, reference(zc, zh), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    ref_layer_grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    layer.zero_grad()
    reference(zc, zh).sum().backward()
    for n, p in layer.named_parameters():
        torch.testing.assert_close(ref_layer_grads[n], p.grad, rtol=1e-9, atol=1e-11, msg=n)


# ---- batch-normalized LSTM ------------------------------------------------------------
def bn(a, gamma, beta, mean, var, eps=1e-5):
    return gamma * (a - mean) / torch.sqrt(var + eps) + beta


def batch_stats(a):
    return a.mean(0), ((a - a.mean(0)) ** 2).mean(0)


def test_batchnorm_lstm_follows_cooijmans_et_al():
    layer = BatchNormLSTMLayer(I, H, max_steps=4)
    assert all((g == torch.tensor(0.1)).all() for g in (layer.gamma_x, layer.gamma_h, layer.gamma_c))
    assert (layer.bias[H:2 * H] == 1).all() and (layer.bias[:H] == 0).all()  # the forget gate's bias starts at 1
    layer = layer.double()
    with torch.no_grad():
        for p in (layer.gamma_x, layer.gamma_h, layer.gamma_c, layer.beta_c, layer.bias):
            p.add_(torch.randn_like(p) * 0.3)
    x, h0, c0 = rand(T, B, I), rand(1, B, H, seed=1), rand(1, B, H, seed=2)
    n0 = torch.zeros(1, B, H, dtype=D)

    def reference(stats):
        """``stats(t, name, a)`` -> (mean, var) used at step t for term ``name``."""
        h, c, outs, seen = h0[0], c0[0], [], []
        for t in range(T):
            wx, wh = x[t] @ layer.weight_ih.T, h @ layer.weight_hh.T
            mx, vx = stats(t, "x", wx)
            mh, vh = stats(t, "h", wh)
            gates = bn(wh, layer.gamma_h, 0, mh, vh) + bn(wx, layer.gamma_x, 0, mx, vx) + layer.bias
            i, f, g, o = lstm_gates(gates)
            c = f * c + i * g
            mc, vc = stats(t, "c", c)
            h = o * torch.tanh(bn(c, layer.gamma_c, layer.beta_c, mc, vc))
            outs.append(h)
            seen.append({"x": batch_stats(wx), "h": batch_stats(wh), "c": batch_stats(c)})
        return torch.stack(outs), seen

    # Training: each step's own batch statistics; the population averages follow them.
    out, (_, _, n) = layer.train()(x, (h0, c0, n0))
    assert (n == T).all()  # the steps read so far travel with the state
    ref, seen = reference(lambda t, name, a: batch_stats(a))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    for name in ("x", "h", "c"):
        mean, var = torch.zeros_like(getattr(layer, f"mean_{name}")), torch.ones_like(getattr(layer, f"var_{name}"))
        for t in range(T):  # steps 4 and 5 reuse (and update) the last slot
            s = min(t, 3)
            m, v = seen[t][name]
            mean[s] = 0.9 * mean[s] + 0.1 * m
            var[s] = 0.9 * var[s] + 0.1 * v * B / (B - 1)  # unbiased, as nn.BatchNorm1d keeps it
        torch.testing.assert_close(getattr(layer, f"mean_{name}"), mean, msg=name)
        torch.testing.assert_close(getattr(layer, f"var_{name}"), var, msg=name)
    # Evaluation: the population statistics of each step, the last slot beyond max_steps.
    out, _ = layer.eval()(x, (h0, c0, n0))
    ref, _ = reference(lambda t, name, a: (getattr(layer, f"mean_{name}")[min(t, 3)],
                                           getattr(layer, f"var_{name}")[min(t, 3)]))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    # Read step by step, carrying the state, the text gets the same numbers (step t uses slot t).
    state, pieces = (h0, c0, n0), []
    for t in range(T):
        piece, state = layer(x[t:t + 1], state)
        pieces.append(piece)
    torch.testing.assert_close(torch.cat(pieces), out, rtol=1e-10, atol=1e-12)


def test_batchnorm_lstm_gradients_in_training_equal_the_references():
    layer = BatchNormLSTMLayer(I, H, zoneout_h=0.5, max_steps=3).double().train()
    x, h0, c0 = rand(T, B, I), rand(1, B, H, seed=1), rand(1, B, H, seed=2)
    torch.manual_seed(1)
    out = layer(x, (h0, c0, torch.zeros_like(h0)))[0]
    out.pow(2).sum().backward()
    got = {n: p.grad.clone() for n, p in layer.named_parameters()}
    torch.manual_seed(1)
    zh = (torch.rand(T, B, H) < 0.5).double()
    layer.zero_grad()
    h, c, outs = h0[0], c0[0], []
    for t in range(T):
        wx, wh = x[t] @ layer.weight_ih.T, h @ layer.weight_hh.T
        gates = bn(wh, layer.gamma_h, 0, *batch_stats(wh)) + bn(wx, layer.gamma_x, 0, *batch_stats(wx)) + layer.bias
        i, f, g, o = lstm_gates(gates)
        c = f * c + i * g
        h = zoneout(o * torch.tanh(bn(c, layer.gamma_c, layer.beta_c, *batch_stats(c))), h, zh[t])
        outs.append(h)
    torch.stack(outs).pow(2).sum().backward()
    for n, p in layer.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-9, atol=1e-11, msg=n)


# ---- in the language model ------------------------------------------------------------
@pytest.mark.parametrize("cell, sets", [("gru", ["model.zoneout_h=0.1", "model.recurrent_dropout=0.1"]),
                                        ("rnn", ["model.zoneout_h=0.1"]), ("layernorm-lstm", ["model.zoneout_c=0.1"]),
                                        ("batchnorm-lstm", ["model.zoneout_h=0.1", "model.batchnorm_steps=20"])])
def test_each_cell_learns_in_the_language_model_and_weight_drop_reaches_w_hh(cell, sets):
    torch.manual_seed(0)
    cfg = build_config("tiny", [f"model.cell={cell}", "model.weight_drop=0.3"] + sets)
    model = build_model(cfg.model, 20)
    x = torch.randint(20, (12, 4))
    y = (x + 1) % 20  # the next id: learnable
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = model(x, model.init_hidden(4), targets=y)
        loss = -out.target_logp.mean()
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        w_hh = [p for n, p in model.layers[0].named_parameters() if "weight_hh" in n][0]
        assert w_hh.grad is not None and w_hh.grad.abs().sum() > 0
        opt.step()
    assert losses[-1] < 0.75 * losses[0]
    model.eval()
    with torch.no_grad():
        a = model(x, model.init_hidden(4)).logits
        b = model(x, model.init_hidden(4)).logits
    torch.testing.assert_close(a, b)  # evaluation is deterministic
