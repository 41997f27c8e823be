"""ONNX export: ONNX Runtime reproduces PyTorch's log-probabilities for every cell kind,
with the state carried in and out, at shapes other than the ones exported with."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from awdlstm.checkpoints.run_folder import model_from_checkpoint  # noqa: E402
from awdlstm.cli import main  # noqa: E402
from awdlstm.export.onnx_model import OnnxLM, onnx_loss  # noqa: E402
from awdlstm.runtime.evaluate import evaluate  # noqa: E402
from tests.conftest import make_model_folder  # noqa: E402
from tests.test_cli_data import assert_one_line_error  # noqa: E402

CELLS = {
    "lstm": [],
    "zoneout": ["model.cell=zoneout", "model.zoneout_c=0.5", "model.zoneout_h=0.05"],
    "output-zoneout": ["model.cell=output-zoneout", "model.output_zoneout=0.3"],
    "recurrent-dropout": ["model.cell=recurrent-dropout", "model.recurrent_dropout=0.25"],
    "variational": ["model.cell=variational", "model.variational_h=0.25"],
    "mos": ["model.head=mos", "model.mos_experts=3", "model.mos_last_size=24"],
    "adaptive-untied": ["model.head=adaptive", "model.adaptive_cutoffs=[4,8]", "model.tie_weights=false"],
}


def torch_log_probs(model, tokens, hidden):
    with torch.no_grad():
        out = model(tokens, hidden)
    return torch.log_softmax(out.logits.float(), -1), out.hidden


def export(folder, out, capsys, *extra):
    assert main(["export", str(folder), "--format", "onnx", "--out", str(out), *extra]) == 0, capsys.readouterr().err
    return OnnxLM(out)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_onnx_runtime_matches_pytorch(cell, tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m", CELLS[cell])
    lm = export(folder, tmp_path / "m.onnx", capsys)
    model, vocab, _, _ = model_from_checkpoint(folder)
    assert lm.vocab == vocab.itos and lm.eos_id == vocab.eos_id
    torch.manual_seed(1)
    state = lm.init_state(4)
    hidden = model.init_hidden(4)
    for T in (9, 1, 23):  # the state carries across calls of any length
        tokens = torch.randint(0, len(vocab), (T, 4))
        ref, hidden = torch_log_probs(model, tokens, hidden)
        got, state = lm.step(tokens.numpy(), state)
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)
        for g, r in zip(state, [t for hc in hidden for t in hc]):
            np.testing.assert_allclose(g, r.numpy(), atol=1e-4, rtol=0)


def test_a_trained_model_and_its_int8_copy(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    lm = export(run_dir, tmp_path / "tiny.onnx", capsys, "--int8")
    q = OnnxLM(tmp_path / "tiny.int8.onnx")
    assert (tmp_path / "tiny.int8.onnx").stat().st_size < (tmp_path / "tiny.onnx").stat().st_size
    model, vocab, cfg, _ = model_from_checkpoint(run_dir)
    from awdlstm.checkpoints.run_folder import corpus_for
    ids = corpus_for(cfg, False).valid[:3000]
    ref = evaluate(model, ids, 10, 35)
    assert abs(onnx_loss(lm, ids, 10, 35) - ref) < 1e-4
    assert abs(onnx_loss(q, ids, 10, 35) - ref) < 0.05  # int8 weights: close, not equal


def test_bad_export_options(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    code = main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m.bin")])
    assert_one_line_error(code, capsys.readouterr().err, ".onnx")
    code = main(["export", str(run_dir), "--format", "folder", "--int8", "--out", str(tmp_path / "f")])
    assert_one_line_error(code, capsys.readouterr().err, "--int8")
    folder = make_model_folder(tmp_path / "mog", ["model.cell=mogrifier", "model.mogrifier_rounds=3"])
    code = main(["export", str(folder), "--format", "onnx", "--out", str(tmp_path / "mog.onnx")])
    assert_one_line_error(code, capsys.readouterr().err, "Mogrifier")
