"""The compiled kernels (awdlstm/csrc/kernels.cpp) against their PyTorch counterparts, and
a build that is interrupted or contended."""

import fcntl
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from awdlstm.model import native
from awdlstm.model.step_lstm import StepLSTMFunction, StepMasks, step_lstm
from awdlstm.model.weight_drop import drop_weight


@pytest.fixture
def kernels():
    k = native.native()
    if k is None:
        pytest.skip("the compiled kernels cannot be built on this machine")
    return k


def test_philox_matches_the_random123_known_answer(kernels):
    # Random123's kat_vectors: philox4x32_10, counter 0 and key 0.
    assert [v & 0xFFFFFFFF for v in kernels.philox_block(0, 0)] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


@pytest.mark.parametrize("p", [0.5, 0.3, 0.65])
def test_dropconnect_rate_scale_and_backward_mask(kernels, p):
    torch.manual_seed(0)
    w = torch.rand(700, 300).add_(0.5).requires_grad_()  # no zeros, so a zero means dropped
    d = drop_weight(w, p)
    levels = round(p * 65536)
    kept = d != 0
    assert abs(1 - kept.float().mean().item() - levels / 65536) < 0.005
    torch.testing.assert_close(d[kept], w.detach()[kept] * 65536 / (65536 - levels))
    g = torch.randn_like(d)
    d.backward(g)  # the backward regenerates the same mask from the seed
    torch.testing.assert_close(w.grad, g * kept * (65536 / (65536 - levels)))


def test_dropconnect_mask_depends_on_the_seed_only(kernels):
    w = torch.randn(1000, 1037)  # not a multiple of the kernel's chunk size
    threads = torch.get_num_threads()
    try:
        torch.manual_seed(5)
        a = drop_weight(w, 0.5)
        torch.set_num_threads(1)
        torch.manual_seed(5)
        b = drop_weight(w, 0.5)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a, b)  # same seed: same mask, however the work is split
    assert not torch.equal(a, drop_weight(w, 0.5))  # the next forward: a new mask


def _random_masks(T, B, H, gen, train=True):
    bern = lambda shape, p: (torch.rand(shape, generator=gen) < p).float()
    if not train:  # evaluation: constants (the expectations)
        return StepMasks(z_c=0.5, z_h=0.05, z_o=0.3, u=0.3)
    d = bern((T, B, H), 0.3)
    return StepMasks(z_c=bern((T, B, H), 0.5), z_h=bern((T, B, H), 0.1), z_o=d,
                     u=d * (1 - bern((T, B, H), 0.2)) / 0.8, cell=(1 - bern((T, B, H), 0.1)) / 0.9,
                     gal=(1 - bern((B, H), 0.2)) / 0.8)


# The compiled σ and tanh call exp, which under -ffast-math gives NaN where it overflows:
# "saturated" drives the gates to ±hundreds and the cell state to ±60 (exp(-2c) overflows
# from |c| ≈ 44, which a trained zoneout or Mogrifier cell reaches).
SATURATED = {"plain": (1.0, 1.0), "saturated": (100.0, 60.0)}


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 7), (4, 13, 1200)])  # the second runs the rows on several threads
@pytest.mark.parametrize("scale", SATURATED)
def test_step_kernels_equal_the_pytorch_loops(kernels, monkeypatch, train, shape, scale):
    T, B, H = shape
    gen = torch.Generator().manual_seed(3)
    gates, cell = SATURATED[scale]
    xproj = torch.randn(T, B, 4 * H, generator=gen) * gates
    w_hh = torch.randn(4 * H, H, generator=gen) / H ** 0.5
    h0, c0 = torch.randn(B, H, generator=gen), torch.randn(B, H, generator=gen) * cell
    masks = _random_masks(T, B, H, gen, train)
    weights = torch.randn(T, B, H, generator=gen)

    def run():
        leaves = [v.clone().requires_grad_() for v in (xproj, w_hh, h0, c0)]
        out, h, c, _ = step_lstm(*leaves, masks)
        ((out * weights).sum() + h.pow(2).sum() + c.sum()).backward()
        return [out, h, c] + [v.grad for v in leaves]

    compiled = run()
    monkeypatch.setattr(native, "usable", lambda *tensors: False)
    reference = run()
    for a, r in zip(compiled, reference):
        torch.testing.assert_close(a, r, atol=1e-5 * max(1.0, r.abs().max().item()), rtol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_step_kernels_with_a_carried_output_gate_equal_the_pytorch_loops(kernels, monkeypatch, train):
    """Output-gate zoneout with the previous chunk's gate o_{-1} given: step 0 reads it."""
    T, B, H = 5, 3, 7
    gen = torch.Generator().manual_seed(5)
    xproj, w_hh = torch.randn(T, B, 4 * H, generator=gen), torch.randn(4 * H, H, generator=gen) / H ** 0.5
    h0, c0, o0 = torch.randn(B, H, generator=gen), torch.randn(B, H, generator=gen), torch.rand(B, H, generator=gen)
    masks = _random_masks(T, B, H, gen, train)
    weights = torch.randn(T, B, H, generator=gen)

    def run():
        leaves = [v.clone().requires_grad_() for v in (xproj, w_hh, h0, c0)]
        out, h, c, o = step_lstm(*leaves, masks, o0)
        ((out * weights).sum() + h.pow(2).sum() + c.sum()).backward()
        return [out, h, c, o] + [v.grad for v in leaves]

    compiled = run()
    monkeypatch.setattr(native, "usable", lambda *tensors: False)
    reference = run()
    for a, r in zip(compiled, reference):
        torch.testing.assert_close(a, r, atol=1e-5 * max(1.0, r.abs().max().item()), rtol=1e-5)
    without = step_lstm(xproj, w_hh, h0, c0, masks)[0]
    assert not torch.allclose(without[0], compiled[0][0])  # o_{-1} matters at step 0


def test_the_step_function_uses_the_kernels_for_float32_only(kernels, monkeypatch):
    calls = []
    monkeypatch.setattr(native, "usable", lambda *t: calls.append(t[0].dtype) or t[0].dtype == torch.float32)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 2, 8, dtype=dtype)
        StepLSTMFunction.apply(x, torch.randn(8, 2, dtype=dtype), torch.zeros(2, 2, dtype=dtype),
                               torch.zeros(2, 2, dtype=dtype), None, None, None, None, None, None, None)
    assert calls == [torch.float32, torch.float64]


def test_without_a_compiler_the_kernels_are_skipped_with_a_warning(monkeypatch, tmp_path):
    import torch.utils.cpp_extension as cpp

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # nothing built there yet

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'awdlstm_kernels'\ng++: not found")

    monkeypatch.setattr(cpp, "load", no_compiler)
    native.native.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="g\\+\\+: not found.*PyTorch implementation"):
            assert native.native() is None
        assert native.usable(torch.zeros(1)) is False
        monkeypatch.setenv("AWDLSTM_NATIVE", "0")
        native.native.cache_clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert native.native() is None  # switched off on purpose: no warning
    finally:
        native.native.cache_clear()


def _kernels(env, **kw):
    return subprocess.run([sys.executable, "-m", "awdlstm", "kernels"], env=env, capture_output=True, text=True,
                          timeout=600, **kw)


def test_a_killed_build_never_blocks_the_next_command(tmp_path):
    """Kill a build mid-compile (with its compiler), leave torch's lock file behind as a
    killed build does: the next command rebuilds and works, the one after imports."""
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "awdlstm", "kernels"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    lines = []
    while not any("compiling the CPU kernels" in line for line in lines) and len(lines) < 50:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
    assert any("compiling the CPU kernels" in line for line in lines), lines
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    [folder] = tmp_path.glob("awdlstm-*")
    assert not (folder / "READY").exists()
    (folder / "lock").write_text("")  # torch's FileBaton: a killed build leaves it behind
    first = _kernels(env)
    assert first.returncode == 0 and "CPU kernels ready" in first.stdout, first.stderr
    assert "compiling" in first.stderr
    second = _kernels(env)
    assert second.returncode == 0 and "compiling" not in second.stderr and "waiting" not in second.stderr


def test_a_build_in_progress_elsewhere_is_announced_and_waited_for_with_a_limit(tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "AWDLSTM_BUILD_TIMEOUT": "1"}
    folder = subprocess.run([sys.executable, "-c", "from awdlstm.model import native; print(native.build_dir())"],
                            env=env, capture_output=True, text=True, check=True).stdout.strip()
    os.makedirs(folder)
    with open(os.path.join(folder, "awdlstm-build.lock"), "w") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # another process is building
        f.write("4242")
        f.flush()
        started = time.monotonic()
        proc = _kernels(env)
    assert time.monotonic() - started < 60
    assert "waiting for another process to finish compiling the CPU kernels" in proc.stderr
    assert "pid 4242" in proc.stderr and "gave up after 1 s" in proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("rounds, rank", [(0, 0), (1, 0), (4, 0), (5, 0), (5, 3), (4, 2)])
# The wide shape's gate product (1600 x 700) goes through oneDNN. It runs unsaturated only:
# saturated inputs through 700-term sums make both float32 paths stray from float64 by about
# as much as they differ from each other, so no tolerance would separate a bug.
@pytest.mark.parametrize("m, n, scale", [(9, 11, "plain"), (9, 11, "saturated"), (300, 400, "plain")])
def test_mogrifier_kernels_match_the_pytorch_loops(kernels, monkeypatch, rounds, rank, scale, m, n):
    """Full-rank rounds and factored ones (two thin products per round); small products
    through sgemm, the large gate product through oneDNN's packed weight."""
    from awdlstm.model.mogrifier import MogrifierLayer

    torch.manual_seed(rounds)
    gates, cell = SATURATED[scale]
    layer = MogrifierLayer(m, n, rounds=rounds, rank=rank)
    # Two threads split the batch into two blocks of rows (of 2 and 3 rows; of 2).
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    T, B = (6, 5) if m < 100 else (3, 4)
    x = (torch.randn(T, B, m) * gates).requires_grad_()
    state = (torch.randn(1, B, n), torch.randn(1, B, n) * cell)
    w = torch.randn(T, B, n)

    def run():
        out, (h, c) = layer(x, state)
        grads = torch.autograd.grad((out * w).sum() + 0.5 * h.sum() + c.sum(), [x] + list(layer.parameters()))
        return [out, h, c, *grads]

    try:
        compiled = run()
    finally:
        torch.set_num_threads(previous)
    monkeypatch.setattr(native, "usable", lambda *tensors: False)
    for got, want in zip(compiled, run()):
        # Saturated inputs make weight gradients of thousands: float32 rounding scales with them.
        torch.testing.assert_close(got, want, atol=2e-5 * max(1.0, want.abs().max().item()), rtol=1e-4)
