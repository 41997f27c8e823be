import pytest
import torch

from awdlstm.diagnostics.gradflow import compare_regularizers, gradflow, hidden_grad_norms, repeated_products


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


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_zoneout_keeps_the_gradient_from_vanishing(family):
    """The zoneout paper's observation: on the same sequences, from the same weights, the
    gradient reaching early steps is larger with zoneout than without. (A layer-normalized
    LSTM's does not vanish here in the first place.)"""
    import math
    curves = compare_regularizers(family, ["none", "zoneout"], steps=120, hidden=32)
    for k in curves["none"]:
        early = slice(0, 60)
        none = sum(math.log(max(v, 1e-45)) for v in curves["none"][k][early]) / 60  # it may underflow to 0
        zoned = sum(math.log(max(v, 1e-45)) for v in curves["zoneout"][k][early]) / 60
        assert zoned > none + 2, (family, k, zoned, none)  # e^2: clearly above, not noise
    assert set(curves["none"]) == ({"h"} if family in ("gru", "rnn") else {"c", "h"})


def test_the_last_step_receives_the_loss_directly_and_gal_masks_are_shared():
    curves = compare_regularizers("lstm", ["none", "variational", "batchnorm"], steps=20, hidden=8, batch=3)
    for c in curves.values():
        assert c["h"][-1] == pytest.approx((3 * 8) ** 0.5) and c["c"][-1] == 0.0


def test_a_runs_own_layer_is_read_as_it_is(tmp_path, capsys):
    from awdlstm.cli import main
    from tests.conftest import make_model_folder
    folder = make_model_folder(tmp_path / "m", ["model.cell=batchnorm-lstm", "model.zoneout_h=0.1"])
    assert main(["gradflow", "--run", str(folder), "--steps", "30", "--out", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "BatchNormLSTMLayer c" in out and (tmp_path / "g.png").is_file()  # its own cell, not a copy
    assert main(["gradflow", "--cell", "rnn", "--compare", "batchnorm"]) == 2
    assert "the rnn cell takes none, zoneout" in capsys.readouterr().err


def test_the_textbook_products_match_numpy_and_its_rule_holds():
    import numpy as np

    from awdlstm.diagnostics.textbook import gaussian_products, tanh_and_derivative
    runs = gaussian_products(draws=12, steps=20, scale=1.0, seed=0)
    for r in runs:
        w = torch.randn(3, 3, generator=torch.Generator().manual_seed(r["draw"]), dtype=torch.float64).numpy()
        dh, norms = np.ones((2, 3)), []
        for _ in range(20):
            dh = dh @ w.T
            norms.append(np.sqrt((dh ** 2).sum()) / 2)
        np.testing.assert_allclose(r["norms"], norms, rtol=1e-12)
        assert r["top_singular"] == pytest.approx(np.linalg.svd(w, compute_uv=False)[0])
        if r["top_singular"] < 1:  # sufficient for vanishing
            assert r["norms"][-1] < r["norms"][0]
    # Necessary, not sufficient: some draw has a top singular value above 1 and still vanishes
    # (its spectral radius is below 1), over enough draws and both scales.
    half = gaussian_products(draws=12, steps=20, scale=0.5, seed=0)
    assert any(r["top_singular"] > 1 and r["norms"][-1] < r["norms"][0] for r in runs + half)
    x, y, dy = tanh_and_derivative()
    assert max(dy) == pytest.approx(1.0) and dy[0] < 1e-4


def test_the_textbook_command_plots(tmp_path, capsys):
    from awdlstm.cli import main
    assert main(["gradflow", "--textbook", "--draws", "4", "--out", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr().out
    assert "top singular" in out and (tmp_path / "t.png").is_file()
