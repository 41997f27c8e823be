"""Every layer kind is a RecurrentLayer and every head follows the head protocol; the config
checks names and knobs against the registries."""

import pytest
import torch

from awdlstm.config import build_config
from awdlstm.errors import AwdlstmError
from awdlstm.model import build_model
from awdlstm.model.heads import HEADS
from awdlstm.model.layers import KNOBS, LAYERS
from awdlstm.model.recurrent import RecurrentLayer

HEAD_SETS = {"softmax": [], "adaptive": ["model.head=adaptive", "model.adaptive_cutoffs=[4]"],
             "mos": ["model.head=mos", "model.mos_experts=2"]}
CELL_SETS = {"zoneout": ["model.zoneout_c=0.5"], "recurrent-dropout": ["model.recurrent_dropout=0.2"],
             "output-zoneout": ["model.output_zoneout=0.2"], "cell-dropout": ["model.cell_dropout=0.2"],
             "variational": ["model.variational_h=0.2"], "mogrifier": ["model.mogrifier_rounds=2"],
             "gru": ["model.zoneout_h=0.2"], "rnn": ["model.zoneout_h=0.2"], "layernorm-lstm": ["model.zoneout_c=0.2"],
             "batchnorm-lstm": ["model.zoneout_h=0.1"]}
STATE_SIZES = {"output-zoneout": 3, "gru": 1, "rnn": 1, "batchnorm-lstm": 3}


@pytest.mark.parametrize("cell", list(LAYERS))
def test_each_layer_kind_is_a_recurrent_layer(cell):
    cfg = build_config("tiny", [f"model.cell={cell}"] + CELL_SETS.get(cell, []))
    model = build_model(cfg.model, 12)
    for layer in model.layers:
        assert isinstance(layer, RecurrentLayer)
        state = layer.init_state(3)
        assert len(state) == layer.state_size == STATE_SIZES.get(cell, 2)
        assert all(t.shape == (1, 3, layer.hidden_size) and not t.any() for t in state)
    model.eval()
    x = torch.randn(5, 3, model.layers[0].input_size)
    if model.layers[0].exportable:  # the export path is the evaluation forward
        a, _ = model.layers[0](x, model.layers[0].init_state(3))
        b, _ = model.layers[0].export_forward(x, model.layers[0].init_state(3))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert set(KNOBS) <= set(LAYERS)


@pytest.mark.parametrize("head", list(HEADS))
def test_each_head_follows_the_protocol(head):
    torch.manual_seed(0)
    cfg = build_config("tiny", HEAD_SETS[head])
    model = build_model(cfg.model, 12).eval()
    x = torch.randint(12, (6, 2))
    y = torch.randint(12, (6, 2))
    with torch.no_grad():
        out = model(x, model.init_hidden(2), targets=y)
        whole = model(x, model.init_hidden(2))
        logp = model.decoder.log_probs(whole.dropped_output)
    torch.testing.assert_close(torch.log_softmax(whole.logits.float(), -1), logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.target_logp, logp.gather(-1, y.unsqueeze(-1)).squeeze(-1), atol=1e-5, rtol=1e-5)
    params = dict(model.decoder.named_parameters(remove_duplicate=False))
    for name in model.decoder.word_rows:
        assert params[name].size(0) == 12
    assert model.decoder.weight is model.embedding.weight  # tied


def test_the_config_checks_heads_against_the_registry():
    with pytest.raises(AwdlstmError, match="model.head='sampled' is not valid; choose one of: softmax, adaptive, mos"):
        build_config("tiny", ["model.head=sampled"])
    with pytest.raises(AwdlstmError, match="model.mos_experts=3 only acts with model.head='mos'"):
        build_config("tiny", ["model.mos_experts=3"])
