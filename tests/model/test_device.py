"""The model, its masks and its dtype follow the tensors it is given: meta and CPU
devices, float64, and CPU autocast."""

import pytest
import torch

from awdlstm import build_model
from awdlstm.model import native
from awdlstm.model.masks import Columns
from tests.model.test_masks import CELLS, awd_config


@pytest.mark.parametrize("cell", [c for c in CELLS if c != "lstm"])
def test_training_forward_on_the_meta_device(cell, monkeypatch):
    """Every mask is drawn on the model's device: on `meta` a CPU mask would fail to mix."""
    model = build_model(awd_config(cell), 30).to("meta").train()
    draws = []
    real_rand = torch.rand

    def spy(*args, **kwargs):
        t = real_rand(*args, **kwargs)
        draws.append(t.device.type)
        return t

    monkeypatch.setattr(torch, "rand", spy)
    tokens = torch.zeros(5, 4, dtype=torch.long, device="meta")
    out = model(tokens, model.init_hidden(4), Columns(2, 6))
    assert out.logits.device.type == "meta" and out.logits.shape == (5, 4, 30)
    assert draws and set(draws) == {"meta"}


@pytest.mark.parametrize("cell", list(CELLS))
def test_float64_training_step(cell):
    torch.manual_seed(0)
    model = build_model(awd_config(cell), 30).double().train()
    layer = model.layers[0]
    if hasattr(layer, "draw_masks"):
        masks = layer.draw_masks(5, 4, torch.device("cpu"), torch.float64)
        assert all(m.dtype == torch.float64 for m in vars(masks).values() if torch.is_tensor(m))
    out = model(torch.randint(0, 30, (5, 4)), model.init_hidden(4))
    assert out.logits.dtype == torch.float64
    out.logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("cell", ["lstm", "zoneout"])
def test_cpu_bf16_autocast_keeps_the_recurrence_in_fp32(cell, monkeypatch):
    torch.manual_seed(0)
    model = build_model(awd_config(cell), 30).train()
    seen = []
    if cell == "zoneout":
        from awdlstm.model import step_lstm
        real = step_lstm.step_lstm
        monkeypatch.setattr(step_lstm, "step_lstm", lambda xp, w, *a: (seen.append(xp.dtype), real(xp, w, *a))[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randint(0, 30, (6, 4)), model.init_hidden(4))
    assert out.logits.dtype == torch.bfloat16  # the decoder ran in bf16
    assert out.raw_output.dtype == torch.float32  # the last LSTM layer ran in fp32
    assert seen in ([], [torch.float32, torch.float32])
    out.logits.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_native_kernels_are_not_used_off_the_cpu_or_in_float64():
    assert not native.usable(torch.zeros(1, device="meta"))
    assert not native.usable(torch.zeros(1, dtype=torch.float64))
