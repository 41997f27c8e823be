"""Text chunking never changes a score: for every cell, the log-probabilities of a text are
the same scored in one call, in chunks of 1, 3 or 7 tokens with the state carried, token by
token through ``Predictor.step`` and the service's prime-then-step path, and through the
ONNX model at T = 1 (the carried state holds everything the recurrence needs, the
output-gate zoneout cell's previous gate included)."""

import numpy as np
import pytest
import torch

import awdlstm
from awdlstm.model.layers import LAYERS
from tests.conftest import make_model_folder

CELL_SETS = {"zoneout": ["model.zoneout_c=0.5", "model.zoneout_h=0.1"],
             "recurrent-dropout": ["model.recurrent_dropout=0.3"], "output-zoneout": ["model.output_zoneout=0.4"],
             "cell-dropout": ["model.cell_dropout=0.3"], "variational": ["model.variational_h=0.3",
                                                                           "model.variational_x=0.2"],
             "mogrifier": ["model.mogrifier_rounds=3"],
             "gru": ["model.zoneout_h=0.2", "model.recurrent_dropout=0.2"], "rnn": ["model.zoneout_h=0.3"],
             "layernorm-lstm": ["model.zoneout_c=0.3", "model.zoneout_h=0.1"],
             "batchnorm-lstm": ["model.zoneout_h=0.1", "model.batchnorm_steps=5"]}  # steps 5.. share statistics
TEXT = "the company said it would buy shares of a bank the company said it would buy the bank"


@pytest.fixture(scope="module", params=sorted(LAYERS))
def lm(request, tmp_path_factory):
    cell = request.param
    folder = make_model_folder(tmp_path_factory.mktemp(cell) / "m", [f"model.cell={cell}"] + CELL_SETS.get(cell, []))
    return cell, folder, awdlstm.load(folder)


def reference(lm):
    """log p of every token of TEXT and of the <eos> after it, read after <eos>, in one call."""
    return lm.token_log_probs([lm.ids(TEXT)])[0]


def chunked(lm, size: int) -> torch.Tensor:
    seq = [lm.vocab.eos_id] + lm.ids(TEXT) + [lm.vocab.eos_id]
    hidden, out = lm.model.init_hidden(1), []
    with torch.no_grad():
        for start in range(0, len(seq) - 1, size):
            x = torch.tensor(seq[start:start + size]).view(-1, 1)
            y = torch.tensor(seq[start + 1:start + size + 1]).view(-1, 1)
            x = x[: y.size(0)]
            o = lm.model(x, hidden, targets=y)
            hidden = o.hidden
            out.append(o.target_logp[:, 0])
    return torch.cat(out)


@pytest.mark.parametrize("size", [1, 3, 7, 10_000])
def test_chunks_of_any_length_score_the_same(lm, size):
    _, _, p = lm
    torch.testing.assert_close(chunked(p, size), reference(p), atol=1e-5, rtol=1e-5)


def test_step_by_step_and_prime_then_step_score_the_same(lm):
    _, _, p = lm
    seq = p.ids(TEXT) + [p.vocab.eos_id]
    want = reference(p)
    state = p.initial_state()
    log_probs, state = p.step(state, p.vocab.eos_id)
    stepped = []
    for token in seq:
        stepped.append(log_probs[token])
        log_probs, state = p.step(state, token)
    torch.testing.assert_close(torch.stack(stepped), want, atol=1e-5, rtol=1e-5)
    # The service's /generate: the prompt primed in one call, then one step per token.
    k = 5
    log_probs, states = p.prime([seq[:k]])  # <eos> and seq[:k] read; the next token is seq[k]
    got, state = [log_probs[0][seq[k]]], states[0]
    for j in range(k, len(seq) - 1):
        log_probs, (state,) = p.advance([state], [seq[j]])
        got.append(log_probs[0][seq[j + 1]])
    torch.testing.assert_close(torch.stack(got), want[k:], atol=1e-5, rtol=1e-5)


def test_the_onnx_model_at_t1_scores_the_same(lm, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from awdlstm.cli import main
    from awdlstm.export.onnx_model import OnnxLM
    cell, folder, p = lm
    if not all(layer.exportable for layer in p.model.layers):
        pytest.skip(f"{cell} has no ONNX export yet")
    assert main(["export", str(folder), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    onnx = OnnxLM(tmp_path / "m.onnx")
    seq = [p.vocab.eos_id] + p.ids(TEXT) + [p.vocab.eos_id]
    state, got = onnx.init_state(1), []
    for x, y in zip(seq[:-1], seq[1:]):
        log_probs, state = onnx.step(np.array([[x]]), state)
        got.append(float(log_probs[0, 0, y]))
    np.testing.assert_allclose(got, reference(p).numpy(), atol=1e-4, rtol=1e-4)
