"""awdlstm export and serve: a trained model put to work outside the toolkit."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from ..checkpoints.model_folder import run_card, write_model_folder
from ..checkpoints.run_folder import model_from_checkpoint
from ..commandline import Arg, command
from ..errors import AwdlstmError
from ..inference.predictor import Predictor
from .common import Device, Run, folder


@command("export", help="write a model folder (config.json, model.safetensors, vocab.json, README.md) or an ONNX file")
def export_cmd(run: Run,
               fmt: Annotated[str, Arg("what to write", flag="--format", choices=("folder", "onnx"))] = "folder",
               out: Annotated[str | None, Arg("the folder, or the .onnx file, to write", required=True)] = None,
               int8: Annotated[bool, Arg("with --format onnx: also write FILE.int8.onnx (ONNX Runtime dynamic "
                                         "quantization)")] = False,
               log=print) -> list[Path]:
    """Write a run's model as a model folder or an ONNX file (with an int8 copy)."""
    target = folder(out, "--out")
    if target is None:
        raise AwdlstmError("--out is required: the folder (--format folder) or .onnx file (--format onnx) to write")
    if int8 and fmt != "onnx":
        raise AwdlstmError("--int8 applies to --format onnx only")
    model, vocab, _, ckpt = model_from_checkpoint(Path(run), "cpu")
    if fmt == "folder":
        source = Path(run) if Path(run).is_dir() else Path(run).parent
        files = write_model_folder(ckpt, target, run_card(ckpt, model.num_parameters(), source))
    elif fmt == "onnx":
        from ..export.onnx_model import export_onnx
        files = export_onnx(model, vocab.itos, ckpt.tokenizer(), target, int8)
    else:
        raise AwdlstmError(f"--format {fmt}: valid formats are folder and onnx")
    for f in files:
        log(f"wrote {f} ({f.stat().st_size / 1e6:.1f} MB)")
    return files


@command("serve", help="JSON over HTTP: next-word top-k, per-token scores, streamed generation, and a page to try them")
def serve_cmd(run: Run,
              host: Annotated[str, Arg("address to listen on")] = "127.0.0.1",
              port: Annotated[int, Arg("port to listen on")] = 8000,
              max_batch: Annotated[int, Arg("requests batched into one forward (1: one at a time)")] = 32,
              max_wait_ms: Annotated[float, Arg("how long a batch waits for more requests")] = 5.0,
              device: Device = None, log=print) -> None:
    if not 0 <= port <= 65535:
        raise AwdlstmError(f"--port {port}: must be in 0..65535")
    if max_batch < 1 or max_wait_ms < 0:
        raise AwdlstmError(f"--max-batch {max_batch} --max-wait-ms {max_wait_ms}: need max-batch >= 1 and "
                           f"max-wait-ms >= 0")
    try:
        from ..serve.app import serve
    except ImportError as e:
        raise AwdlstmError(f"awdlstm serve needs FastAPI and uvicorn ({e.name} is missing): "
                           f"pip install 'awdlstm[serve]'") from None
    try:  # a taken port is a one-line error here rather than uvicorn's log and exit code
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise AwdlstmError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); "
                           f"choose another port") from None
    serve(Predictor.load(run, device), host, port, max_batch, max_wait_ms / 1000, log)
