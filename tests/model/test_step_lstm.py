"""Zoneout and the recurrent-dropout family against the spec's formulas (SPEC §4)."""

import pytest
import torch

from awdlstm import ModelConfig, build_model
from awdlstm.model.step_lstm import StepLSTMLayer, StepMasks, step_lstm

T, B, IN, H = 6, 3, 4, 5


def spec_reference(variant, x, h, c, w_ih, w_hh, b, d):
    """The SPEC §4 formulas written out literally, one variant at a time, with autograd."""
    outs, o_prev = [], None
    for t in range(x.size(0)):
        xt, hin = x[t], h
        if variant == "variational":
            xt, hin = x[t] * d["x"], h * d["h"]
        gates = xt @ w_ih.t() + b + hin @ w_hh.t()
        i, f, g, o = gates.chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        if variant == "zoneout":
            dc, dh = d["c"][t], d["h"][t]
            new_c = f * c + i * g
            c, h = dc * c + (1 - dc) * new_c, dh * h + (1 - dh) * (o * torch.tanh(new_c))
        elif variant == "recurrent-dropout":
            c = f * c + d["m"][t] * i * g
            h = o * torch.tanh(c)
        elif variant == "output-zoneout":
            dt = d["m"][t]
            c = f * c + dt * i * g
            o_mix = o if o_prev is None else (1 - dt) * o + dt * o_prev
            h = o_mix * torch.tanh(c)
        elif variant == "cell-dropout":
            c = d["m"][t] * (f * c + i * g)
            h = o * torch.tanh(c)
        else:  # plain LSTM or variational
            c = f * c + i * g
            h = o * torch.tanh(c)
        o_prev = o
        outs.append(h)
    return torch.stack(outs), h, c


def masks_for(variant, gen):
    bern = lambda shape, p: (torch.rand(shape, generator=gen, dtype=torch.float64) < p).double()
    if variant == "zoneout":
        d = {"c": bern((T, B, H), 0.5), "h": bern((T, B, H), 0.3)}
        return d, StepMasks(z_c=d["c"], z_h=d["h"])
    if variant == "recurrent-dropout":
        d = {"m": (1 - bern((T, B, H), 0.4)) / 0.6}
        return d, StepMasks(u=d["m"])
    if variant == "output-zoneout":
        d = {"m": bern((T, B, H), 0.4)}
        return d, StepMasks(u=d["m"], z_o=d["m"])
    if variant == "cell-dropout":
        d = {"m": (1 - bern((T, B, H), 0.3)) / 0.7}
        return d, StepMasks(cell=d["m"])
    if variant == "variational":
        d = {"x": (1 - bern((B, IN), 0.3)) / 0.7, "h": (1 - bern((B, H), 0.3)) / 0.7}
        return d, StepMasks(gal=d["h"])
    return {}, StepMasks()


@pytest.mark.parametrize("variant", ["plain", "zoneout", "recurrent-dropout", "output-zoneout", "cell-dropout",
                                     "variational"])
def test_fixed_masks_match_the_spec_formulas(variant, impl):
    """The reference runs in float64; the compiled kernel (float32 only) is compared to it
    from float32 copies of the same values, to the same 1e-5."""
    gen = torch.Generator().manual_seed(7)
    leaf = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).requires_grad_()
    x, h0, c0 = leaf(T, B, IN), leaf(B, H), leaf(B, H)
    w_ih, w_hh, b = leaf(4 * H, IN), leaf(4 * H, H), leaf(4 * H)
    d, masks = masks_for(variant, gen)
    ref_out, ref_h, ref_c = spec_reference(variant, x, h0, c0, w_ih, w_hh, b, d)
    dtype = torch.float32 if impl == "native" else torch.float64
    leaves = tuple(v.detach().to(dtype).requires_grad_() for v in (x, h0, c0, w_ih, w_hh, b))
    x_, h0_, c0_, w_ih_, w_hh_, b_ = leaves
    masks = StepMasks(**{k: v.to(dtype) if torch.is_tensor(v) else v for k, v in vars(masks).items()})
    x_in = x_ * d["x"].to(dtype) if variant == "variational" else x_
    out, h, c, _ = step_lstm(x_in @ w_ih_.t() + b_, w_hh_, h0_, c0_, masks)
    for a, r in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(a.double(), r, atol=1e-5, rtol=1e-5)
    weights = torch.randn(T, B, H, generator=gen, dtype=torch.float64)
    g_ref = torch.autograd.grad((ref_out * weights).sum() + ref_h.sum() + 2 * ref_c.sum(),
                                (x, h0, c0, w_ih, w_hh, b))
    g = torch.autograd.grad((out * weights.to(dtype)).sum() + h.sum() + 2 * c.sum(), leaves)
    for a, r in zip(g, g_ref):
        torch.testing.assert_close(a.double(), r, atol=1e-5, rtol=1e-5)


def test_all_probabilities_zero_equals_nn_lstm(impl):
    torch.manual_seed(0)
    layer = StepLSTMLayer(IN, H).train()
    ref = torch.nn.LSTM(IN, H)
    ref.load_state_dict(layer.lstm.state_dict())
    x = torch.randn(T, B, IN, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    state = (torch.randn(1, B, H), torch.randn(1, B, H))
    out, (h, c) = layer(x, state)
    ref_out, (rh, rc) = ref(x2, state)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, rc, atol=1e-5, rtol=1e-5)
    (out.pow(2).sum() + h.sum()).backward()
    (ref_out.pow(2).sum() + rh.sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-5, rtol=1e-5)
    for (name, p), rp in zip(layer.lstm.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, rp.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_zoneout_evaluation_is_the_deterministic_expectation(impl):
    torch.manual_seed(1)
    layer = StepLSTMLayer(IN, H, zoneout_c=0.5, zoneout_h=0.05).eval()
    x, state = torch.randn(T, B, IN), layer.init_state(B)
    out, _ = layer(x, state)
    assert torch.equal(out, layer(x, state)[0])
    l = layer.lstm
    c, h = state[1][0], state[0][0]
    for t in range(T):  # c_t = p_c c_{t-1} + (1 - p_c) c~_t, likewise h
        i, f, g, o = (x[t] @ l.weight_ih_l0.t() + l.bias_ih_l0 + h @ l.weight_hh_l0.t() + l.bias_hh_l0).chunk(4, 1)
        new_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = 0.05 * h + 0.95 * torch.sigmoid(o) * torch.tanh(new_c)
        c = 0.5 * c + 0.5 * new_c
        torch.testing.assert_close(out[t], h, atol=1e-5, rtol=1e-5)


def test_training_masks_are_per_step_and_unit_or_per_sequence():
    torch.manual_seed(2)
    layer = StepLSTMLayer(IN, 64, zoneout_c=0.5, zoneout_h=0.05, variational_h=0.3).train()
    m = layer.draw_masks(50, 8)
    assert m.z_c.shape == m.z_h.shape == (50, 8, 64)
    assert not torch.equal(m.z_c[0], m.z_c[1])  # a fresh mask at every step
    assert abs(m.z_c.mean().item() - 0.5) < 0.02 and abs(m.z_h.mean().item() - 0.05) < 0.01
    assert m.gal.shape == (8, 64)  # Gal: one mask per sequence, shared by every step
    rd = StepLSTMLayer(IN, 64, recurrent_dropout=0.25).train().draw_masks(40, 8).u
    values = torch.unique(rd).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.75)


def test_zoneout_combines_with_every_awd_regularizer_in_the_model():
    torch.manual_seed(3)
    cfg = ModelConfig(emb_size=8, hidden_size=12, num_layers=3, layer_cells=["zoneout", "variational", "lstm"],
                      zoneout_c=0.5, zoneout_h=0.05, variational_x=0.2, variational_h=0.2, weight_drop=0.5)
    model = build_model(cfg, 30).train()
    out = model(torch.randint(0, 30, (7, 4)), model.init_hidden(4))
    out.logits.sum().backward()
    for layer in model.layers:  # gradients reach the raw, weight-dropped W_hh of every layer
        assert layer.lstm.weight_hh_l0.grad.abs().sum() > 0
    model.eval()
    tokens = torch.randint(0, 30, (7, 4))
    assert torch.equal(model(tokens, model.init_hidden(4)).logits, model(tokens, model.init_hidden(4)).logits)


def test_output_gate_zoneout_reads_the_carried_gate_at_the_first_step(impl):
    """One step by hand: o' = o + z (o_{-1} - o), c = f c_0 + z i g (evaluation: z = p), and
    the state returned carries o for the next call."""
    torch.manual_seed(2)
    layer = StepLSTMLayer(IN, H, output_zoneout=0.4).eval()
    x = torch.randn(1, B, IN)
    h0, c0, o0 = torch.randn(1, B, H), torch.randn(1, B, H), torch.rand(1, B, H)
    out, (h, c, o) = layer(x, (h0, c0, o0))
    l = layer.lstm
    gates = x[0] @ l.weight_ih_l0.t() + l.bias_ih_l0 + h0[0] @ l.weight_hh_l0.t() + l.bias_hh_l0
    i, f, g, og = gates.chunk(4, 1)
    i, f, g, og = i.sigmoid(), f.sigmoid(), g.tanh(), og.sigmoid()
    cn = f * c0[0] + 0.4 * i * g
    want = (og + 0.4 * (o0[0] - og)) * cn.tanh()
    torch.testing.assert_close(out[0], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c[0], cn, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(o[0], og, atol=1e-6, rtol=1e-6)
    assert len(layer.init_state(B)) == 3
