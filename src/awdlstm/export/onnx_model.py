"""ONNX export of a trained model, and running it in ONNX Runtime.

The exported graph is the model at evaluation (every dropout off, the zoneout family at its
expectation) with the recurrent state made explicit:

    inputs   tokens (T, B) int64, then h_0, c_0, h_1, c_1, …  each (1, B, H_l) float32
             (o_l after c_l for a layer that carries its output gate: output-gate zoneout)
    outputs  log_probs (T, B, V) float32, then h_0_out, c_0_out, …  the state after step T

T and B are dynamic. Feed the returned state back in to continue a text; zeros start one
(the model is primed with <eos>, as in training). The file's metadata holds the vocabulary
(``vocab``, JSON list), ``level``, ``tokenizer`` and ``eos_id``, and for subword units
``tokenizer_model`` (JSON: the model itself, data/tokenizers/subword.py), so it is usable alone.

Export uses PyTorch's TorchScript-based exporter: its ``nn.LSTM`` export is ONNX's LSTM
operator with dynamic axes, and the zoneout recurrence (model/expected_lstm.py, scripted)
becomes an ONNX Loop over the dynamic T. ``--int8`` adds a copy whose weights ONNX
Runtime's dynamic quantization stores in int8 (activations quantized per batch at run time).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.tokenizers import Tokenizer
from ..errors import AwdlstmError
from ..model.lm import STATE_NAMES

OPSET = 17


def _require(module: str, extra: str = "export"):
    try:
        return __import__(module)
    except ImportError:
        raise AwdlstmError(f"this needs the '{module}' package: pip install 'awdlstm[{extra}]'") from None


class ExportableLM(nn.Module):
    """A LanguageModel at evaluation with the state as flat tensors: forward(tokens, h_0,
    c_0, h_1, c_1, …) -> (log_probs, h_0, c_0, …)."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor):
        m = self.model
        x = m.embedding(tokens)  # (T, B, E); embedding and locked dropout are off at evaluation
        new_state, k = [], 0
        for layer in m.layers:  # each layer's own exportable forward (export_onnx checks)
            x, layer_state = layer.export_forward(x, tuple(state[k:k + layer.state_size]))
            new_state += list(layer_state)
            k += layer.state_size
        return (m.decoder.log_probs(x), *new_state)


def state_names(layers, suffix: str = "") -> list[str]:
    """h_0, c_0 (, o_0), h_1, …: the state inputs (or, with ``suffix``, outputs) of ``layers``."""
    return [f"{n}_{i}{suffix}" for i, layer in enumerate(layers) for n in STATE_NAMES[:layer.state_size]]


def export_onnx(model, vocab: list[str], tokenizer: Tokenizer, out: Path, int8: bool = False) -> list[Path]:
    """Write ``out`` (and ``out`` with ``.int8.onnx`` when ``int8``); returns the files."""
    onnx = _require("onnx")
    out = Path(out)
    if out.suffix != ".onnx":
        raise AwdlstmError(f"--out {out}: an ONNX file name ends in .onnx")
    unsupported = {type(layer).__name__ for layer in model.layers if not layer.exportable}
    if unsupported:  # the Mogrifier: its rounds do not export as a loop yet
        raise AwdlstmError(f"ONNX export of {', '.join(sorted(unsupported))} is not supported yet; "
                           f"export a model folder instead")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().float().eval()
    wrapper = ExportableLM(model)
    tokens = torch.zeros(3, 2, dtype=torch.long)
    state = [t for layer_state in model.init_hidden(2) for t in layer_state]
    inputs, outputs = ["tokens"] + state_names(model.layers), ["log_probs"] + state_names(model.layers, "_out")
    axes = {"tokens": {0: "T", 1: "B"}, "log_probs": {0: "T", 1: "B"}}
    axes.update({n: {1: "B"} for n in inputs[1:] + outputs[1:]})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (tokens, *state), str(out), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(out))
    text = tokenizer.meta()
    meta = {"vocab": json.dumps(vocab, ensure_ascii=False), "level": tokenizer.level, "tokenizer": text["tokenizer"],
            "eos_id": str(vocab.index("<eos>")), "producer": "awdlstm"}
    if "tokenizer_model" in text:
        meta["tokenizer_model"] = json.dumps(text["tokenizer_model"])
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(out))
    files = [out]
    if int8:
        _require("onnxruntime")
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = out.with_suffix(".int8.onnx")
        quantize_dynamic(str(out), str(q), weight_type=QuantType.QInt8)
        files.append(q)
    return files


class OnnxLM:
    """An exported model in ONNX Runtime: ``init_state(B)`` and
    ``step(tokens (T, B) int64, state) -> (log_probs (T, B, V), state)`` on NumPy arrays."""

    def __init__(self, path: Path, threads: int | None = None):
        ort = _require("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise AwdlstmError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:120]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.vocab = json.loads(meta["vocab"]) if "vocab" in meta else None
        self.eos_id = int(meta.get("eos_id", 0))
        self.state_inputs = [i for i in self.session.get_inputs() if i.name != "tokens"]

    def init_state(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((1, batch_size, i.shape[2]), dtype=np.float32) for i in self.state_inputs]

    def step(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = {"tokens": np.ascontiguousarray(tokens, dtype=np.int64)}
        feed.update({i.name: s for i, s in zip(self.state_inputs, state)})
        log_probs, *new_state = self.session.run(None, feed)
        return log_probs, new_state


def onnx_loss(lm: OnnxLM, ids: torch.Tensor, batch_size: int, bptt: int) -> float:
    """Mean negative log-likelihood (nats per token) of ``ids`` under an ONNX model, read as
    ``batch_size`` columns with the state carried through (as ``train.evaluate``)."""
    from ..data.batching import BPTTIterator, batchify
    state = lm.init_state(batch_size)
    total, count = 0.0, 0
    for batch in BPTTIterator(batchify(ids, batch_size), bptt):
        log_probs, state = lm.step(batch.x.numpy(), state)
        y = batch.y.numpy()
        total -= np.take_along_axis(log_probs, y[..., None], axis=-1).astype(np.float64).sum()
        count += y.size
    return total / count
