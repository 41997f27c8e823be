"""Kill a real training process with SIGKILL at an arbitrary moment, resume, and compare
the final weights with an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

ARGS = [sys.executable, "-m", "awdlstm.cli", "train", "--preset", "tiny", "--set", "train.epochs=3",
        "--set", "train.checkpoint_batches=7"]


def run(args, env, **kw):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)


def start_training(args, run_dir, env, captured: bool = False, seconds: float = 120) -> subprocess.Popen:
    """`args --out run_dir` in the background, returned once it has written its first
    ``last`` checkpoint (or ``seconds`` passed); ``captured``: its output piped as text."""
    out = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) if captured else \
        dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(args + ["--out", str(run_dir)], env=env, **out)
    deadline = time.time() + seconds
    while not (run_dir / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.01)
    return proc


def assert_same_model_weights(a_file, b_file) -> None:
    a, b = load_file(str(a_file)), load_file(str(b_file))
    names = [k for k in a if k.startswith("model.")]
    assert names and sorted(names) == sorted(k for k in b if k.startswith("model."))
    for k in names:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0)


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache")}
    full = run(ARGS + ["--out", str(tmp_path / "full")], env)
    assert full.returncode == 0, full.stderr
    killed = tmp_path / "killed"
    proc = start_training(ARGS, killed, env)
    time.sleep(random.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run([sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(killed)], env)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(tmp_path / "full" / "last.safetensors"))
    b = load_file(str(killed / "last.safetensors"))
    names = [k for k in a if k.startswith("model.")]
    assert names and sorted(names) == sorted(k for k in b if k.startswith("model."))
    for k in names:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache")}
    run_dir = tmp_path / "run"
    proc = start_training(ARGS, run_dir, env, captured=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it finished before the signal landed; nothing to check
        return
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    resumed = run([sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(run_dir)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "best model" in resumed.stdout


def test_sigterm_saves_exits_143_and_resumes_to_the_uninterrupted_weights(tmp_path):
    """What a batch scheduler or container platform does before it kills a job."""
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache")}
    full = run(ARGS + ["--out", str(tmp_path / "full")], env)
    assert full.returncode == 0, full.stderr
    run_dir = tmp_path / "run"
    proc = start_training(ARGS, run_dir, env, captured=True)
    time.sleep(random.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it finished before the signal landed; nothing to check
        return
    assert proc.returncode == 143, err
    assert "SIGTERM: saving at the end of this batch" in out and "Traceback" not in err and "--resume" in err
    resumed = run([sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(run_dir)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_model_weights(tmp_path / "full" / "last.safetensors", run_dir / "last.safetensors")


def test_resume_auto_starts_an_empty_folder_and_continues_a_run_in_it(tmp_path):
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache")}
    auto = ARGS + ["--out", str(tmp_path / "run"), "--resume", "auto"]
    first = run(auto, env)
    assert first.returncode == 0, first.stderr
    assert "run folder" in first.stdout and "best model" in first.stdout
    again = run(auto, env)  # a requeued job after the run ended: it continues (and ends) in place
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and "best model" in again.stdout
    other = run(auto + ["--set", "train.seed=7"], env)
    assert other.returncode == 2 and "train.seed is 1" in other.stderr and "gives 7" in other.stderr
    nowhere = run(ARGS + ["--resume", "auto"], env)
    assert nowhere.returncode == 2 and "--resume auto needs --out" in nowhere.stderr


def test_a_run_resumes_on_a_machine_without_the_compiled_kernels_to_the_same_weights(tmp_path):
    """Weight drop draws the same masks with the kernels and without them
    (AWDLSTM_NATIVE=0 takes the PyTorch path, as a machine without a compiler does)."""
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache")}
    sets = ARGS + ["--set", "model.weight_drop=0.5"]
    full = run(sets + ["--out", str(tmp_path / "full")], env)
    assert full.returncode == 0, full.stderr
    run_dir = tmp_path / "moved"
    proc = start_training(sets, run_dir, env)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run([sys.executable, "-m", "awdlstm.cli", "train", "--resume", str(run_dir)],
                  {**env, "AWDLSTM_NATIVE": "0"})
    assert resumed.returncode == 0, resumed.stderr
    assert_same_model_weights(tmp_path / "full" / "last.safetensors", run_dir / "last.safetensors")
