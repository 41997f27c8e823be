import pytest
import torch

from awdlstm.diagnostics.gradflow import gradflow, hidden_grad_norms, repeated_products


def test_products_follow_the_singular_value_exactly():
    for s in (1.1, 0.9):
        norms = repeated_products(32, 20, s)
        for k in range(1, 20):
            assert norms[k] / norms[k - 1] == pytest.approx(s, rel=1e-4)


def test_lstm_carries_gradient_further_than_a_tanh_rnn_and_clipping_bounds_explosion():
    curves = gradflow(steps=40, hidden=64, clip=1.0)
    rnn, lstm = curves["tanh RNN"], curves["LSTM"]
    assert len(rnn) == len(lstm) == 40
    # Both vanish backwards from the loss, the RNN much faster.
    assert rnn[0] < rnn[-1] and lstm[0] < lstm[-1]
    assert lstm[0] / lstm[-1] > 100 * (rnn[0] / rnn[-1])
    exploding = curves["tanh RNN, W_h x4"]
    assert exploding[0] > 10 * exploding[-1]
    assert max(curves["tanh RNN, W_h x4, clipped at 1"]) <= 1.0 + 1e-5


def test_norm_at_the_last_step_is_the_direct_gradient():
    cell = torch.nn.RNNCell(3, 5)
    norms = hidden_grad_norms(cell, torch.randn(6, 2, 3))
    assert norms[-1] == pytest.approx((2 * 5) ** 0.5)  # d(sum h_T)/dh_T is all ones, shape (2, 5)
