"""Device, precision and process plumbing of the training machinery (CPU; CUDA tests skip
without a GPU)."""

import contextlib
import math

import pytest
import torch

from awdlstm.checkpoints.checkpoint import read_checkpoint, save_checkpoint
from awdlstm.cli import main
from awdlstm.config import build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.runtime.machine import Machine, resolve_device
from awdlstm.train import Trainer
from tests.test_cli_data import assert_one_line_error

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("total", [7, 8, 20])
def test_blocks_cover_the_batch_contiguously(world, total):
    if total < world:
        return
    blocks = [Machine(torch.device("cpu"), rank=r, world=world).block(total) for r in range(world)]
    assert blocks[0][0] == 0 and blocks[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    sizes = [e - s for s, e in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


@no_cuda
def test_cuda_requested_without_a_gpu_is_a_clear_error(capsys, tmp_path):
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(AwdlstmError, match="no CUDA device"):
            resolve_device(name)
    with pytest.raises(AwdlstmError, match="fp16.*CUDA"):
        Machine.start("auto", "fp16")
    code = main(["train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert_one_line_error(code, capsys.readouterr().err, "'cuda'", "--device cpu")
    code = main(["train", "--preset", "tiny", "--device", "gpu", "--out", str(tmp_path / "r")])
    assert_one_line_error(code, capsys.readouterr().err, "train.device='gpu'", "cuda:N")
    assert not (tmp_path / "r").exists()


def small_corpus(tmp_path):
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(train_lines=400, eval_lines=40), folder)
    return str(folder)


def test_bf16_autocast_on_cpu_trains_like_fp32(tmp_path):
    """The tiny preset in bf16 ends within 10% of its fp32 validation loss."""
    corpus = small_corpus(tmp_path)
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = build_config("tiny", ["train.epochs=4", f"train.precision={precision}", "train.device=cpu"], corpus)
        with pytest.warns(RuntimeWarning) if precision == "bf16" and not _native_bf16() else contextlib.nullcontext():
            t = Trainer(cfg, tmp_path / precision, load_corpus(corpus), progress=False, log=lambda *a: None)
        t.run()
        losses[precision] = t.state.best_val
        assert t.model.embedding.weight.dtype == torch.float32  # weights stay fp32
    assert math.isfinite(losses["bf16"])
    assert abs(losses["bf16"] - losses["fp32"]) <= 0.1 * losses["fp32"], losses


def _native_bf16():
    from awdlstm.runtime.machine import cpu_has_bf16
    return cpu_has_bf16()


def _fake_gpu_checkpoint(tiny_run, tmp_path):
    """A copy of the tiny run whose `last` looks written on a GPU: config device 'cuda' and
    a CUDA generator state beside the CPU one (the tensors themselves are always saved from
    the CPU, as save_checkpoint does for CUDA tensors)."""
    import shutil
    run_dir, _ = tiny_run
    copy = tmp_path / "gpu-run"
    shutil.copytree(run_dir, copy)
    for name in ("last.safetensors", "best.safetensors"):
        ckpt = read_checkpoint(copy / name)
        meta = {k: v for k, v in ckpt.meta.items() if k not in ("format", "aliases")}
        meta["config"]["train"]["device"] = "cuda"
        tensors = dict(ckpt.tensors)
        if "rng." in tensors:
            tensors["rng."] = {**tensors["rng."], "cuda": torch.zeros(16, dtype=torch.uint8)}
        save_checkpoint(copy / name, tensors, meta)
    return copy


@no_cuda
def test_a_gpu_checkpoint_loads_and_resumes_on_cpu(tiny_run, tmp_path, capsys):
    run_dir = _fake_gpu_checkpoint(tiny_run, tmp_path)
    code = main(["eval", str(run_dir), "--split", "valid", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0 and "valid: loss" in out, err
    code = main(["generate", str(run_dir), "--tokens", "5", "--seed", "1"])  # auto: the CPU here
    assert code == 0
    capsys.readouterr()
    code = main(["train", "--resume", str(run_dir)])
    assert_one_line_error(code, capsys.readouterr().err, "'cuda'", "--device cpu")
    code = main(["train", "--resume", str(run_dir), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0 and "best model" in out, err


@needs_cuda
def test_cuda_training_then_cpu_evaluation(tmp_path, capsys):
    corpus = small_corpus(tmp_path)
    for precision in ("fp32", "bf16", "fp16"):
        out = tmp_path / precision
        code = main(["train", "--preset", "tiny", "--corpus", corpus, "--set", "train.epochs=2", "--set",
                     f"train.precision={precision}", "--device", "cuda", "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        gpu = main(["eval", str(out), "--split", "valid", "--device", "cuda"])
        gpu_out = capsys.readouterr().out
        cpu = main(["eval", str(out), "--split", "valid", "--device", "cpu"])
        cpu_out = capsys.readouterr().out
        assert gpu == cpu == 0
        ppl = [float(o.split("ppl ")[1].split()[0]) for o in (gpu_out, cpu_out)]
        assert ppl[0] == pytest.approx(ppl[1], rel=1e-3)
        code = main(["train", "--resume", str(out), "--device", "cpu"])
        assert code == 0


@needs_cuda
def test_cuda_masks_and_zoneout_training():
    from awdlstm import build_model
    from tests.model.test_masks import awd_config
    for cell in ("lstm", "zoneout", "variational"):
        model = build_model(awd_config(cell), 30).cuda().train()
        out = model(torch.randint(0, 30, (5, 4), device="cuda"), model.init_hidden(4))
        out.logits.sum().backward()
        assert all(p.grad.is_cuda for p in model.parameters())
