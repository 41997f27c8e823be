import pytest
import torch

import awdlstm
from awdlstm import ModelConfig, build_model
from awdlstm.errors import AwdlstmError

SMALL = dict(emb_size=8, hidden_size=12, num_layers=3)


def test_output_shapes_and_hidden_state_round_trip():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**SMALL), 30)
    hidden = model.init_hidden(4)
    assert [h.shape for h, _ in hidden] == [(1, 4, 12), (1, 4, 12), (1, 4, 8)]
    out = model(torch.randint(0, 30, (6, 4)), hidden)
    assert out.logits.shape == (6, 4, 30)
    assert out.raw_output.shape == out.dropped_output.shape == (6, 4, 8)
    assert [h.shape for h, _ in out.hidden] == [h.shape for h, _ in hidden]
    # The batch size can change between calls: 80 for training, 10 validation, 1 test.
    for b in (80, 10, 1):
        assert model(torch.randint(0, 30, (3, b)), model.init_hidden(b)).logits.shape == (3, b, 30)


def test_hidden_state_is_carried_not_stored():
    torch.manual_seed(1)
    model = build_model(ModelConfig(**SMALL), 30).eval()
    tokens = torch.randint(0, 30, (10, 2))
    whole = model(tokens, model.init_hidden(2)).logits
    first = model(tokens[:4], model.init_hidden(2))
    second = model(tokens[4:], awdlstm.detach_hidden(first.hidden)).logits
    torch.testing.assert_close(torch.cat([first.logits, second]), whole, atol=1e-6, rtol=1e-5)


def test_tying_shares_one_parameter():
    model = build_model(ModelConfig(**SMALL), 30)
    assert model.decoder.weight is model.embedding.weight
    assert sum(p is model.embedding.weight for p in model.parameters()) == 1
    untied = build_model(ModelConfig(**SMALL, tie_weights=False), 30)
    assert untied.decoder.weight is not untied.embedding.weight
    assert untied.decoder.in_features == 12


def test_train_and_eval_switch_every_regularizer():
    torch.manual_seed(2)
    model = build_model(ModelConfig(**SMALL), 30)
    tokens = torch.randint(0, 30, (5, 3))
    model.eval()
    a = model(tokens, model.init_hidden(3)).logits
    b = model(tokens, model.init_hidden(3)).logits
    assert torch.equal(a, b)
    model.train()
    c = model(tokens, model.init_hidden(3)).logits
    assert not torch.equal(a, c)
    assert all(m.training for m in model.modules())


def test_no_regularizer_config_is_deterministic_in_training():
    plain = ModelConfig(**SMALL, dropout_emb=0, dropout_input=0, dropout_hidden=0, dropout_output=0,
                        weight_drop=0, tie_weights=False)
    model = build_model(plain, 30).train()
    tokens = torch.randint(0, 30, (5, 3))
    assert torch.equal(model(tokens, model.init_hidden(3)).logits, model(tokens, model.init_hidden(3)).logits)


def test_gradients_reach_raw_recurrent_weights_through_the_whole_model():
    model = build_model(ModelConfig(**SMALL), 30).train()
    out = model(torch.randint(0, 30, (5, 3)), model.init_hidden(3))
    out.logits.sum().backward()
    for layer in model.layers:
        assert layer.lstm.weight_hh_l0.grad is not None and layer.lstm.weight_hh_l0.grad.abs().sum() > 0


def test_paper_parameter_counts():
    # AWD-LSTM PTB: 24M. WT2 is the same network over 33,278 words; the exact count of the
    # reference architecture (nn.LSTM's two bias vectors included) is 33.56M, which the
    # paper reports as "33M".
    ptb = build_model(ModelConfig(), 10_000).num_parameters()
    wt2 = build_model(ModelConfig(), 33_278).num_parameters()
    assert abs(ptb - 24e6) < 0.5e6
    lstm = sum(4 * h * (i + h) + 8 * h for i, h in ((400, 1150), (1150, 1150), (1150, 400)))
    assert wt2 == 33_278 * 400 + 33_278 + lstm
    assert abs(wt2 - 33e6) < 0.6e6


@pytest.mark.parametrize("bad", [dict(dropout_emb=1.0), dict(weight_drop=-0.1), dict(emb_size=0),
                                 dict(num_layers=-1), dict(cell="transformer")])
def test_bad_config_values_are_clear_errors(bad):
    with pytest.raises(AwdlstmError) as e:
        ModelConfig(**bad)
    assert f"model.{next(iter(bad))}" in str(e.value)
