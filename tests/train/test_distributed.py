"""Data-parallel training with torchrun (gloo on CPU): two processes compute what one
process computes, only rank 0 writes, and a run resumes with another process count."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from awdlstm.data import SyntheticSpec, write_synthetic

# Every batch-level regularizer on, SGD with variable BPTT; fine-tuning adds the average.
SETS = ["train.optimizer=sgd", "train.schedule=ntasgd", "train.lr=2", "train.epochs=2", "train.batch_size=8",
        "train.bptt=10", "train.finetune_epochs=1", "model.dropout_emb=0.1", "model.dropout_input=0.2",
        "model.dropout_hidden=0.1", "model.dropout_output=0.2", "model.weight_drop=0.3", "train.alpha=1",
        "train.beta=1", "train.checkpoint_batches=3"]
ONE = [sys.executable, "-m", "awdlstm"]
TWO = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "awdlstm"]


def train_args(corpus, out):
    args = ["train", "--preset", "tiny", "--corpus", str(corpus), "--out", str(out)]
    for s in SETS:
        args += ["--set", s]
    return args


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training, then fine-tuning, with one process and with two. The weights at
    the end of training are kept as <name>-trained.safetensors."""
    root = tmp_path_factory.mktemp("ddp")
    corpus = root / "syn"
    write_synthetic(SyntheticSpec(train_lines=400, eval_lines=40), corpus)
    env = {**os.environ, "AWDLSTM_CACHE": str(root / "cache")}
    out = {"root": root, "corpus": corpus, "env": env}
    for name, launcher in (("one", ONE), ("two", TWO)):
        out[name] = run(launcher + train_args(corpus, root / name), env)
        shutil.copy(root / name / "last.safetensors", root / f"{name}-trained.safetensors")
        out[f"{name}-ft"] = run(launcher + ["finetune", str(root / name)], env)
    return out


def assert_same_tensors(a_file, b_file, prefixes, atol=1e-5):
    a, b = load_file(str(a_file)), load_file(str(b_file))
    names = sorted(k for k in a if k.split(".")[0] in prefixes)
    assert names and names == sorted(k for k in b if k.split(".")[0] in prefixes)
    for k in names:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)
    return names


def test_two_processes_train_what_one_process_trains(runs):
    root = runs["root"]
    assert_same_tensors(root / "one-trained.safetensors", root / "two-trained.safetensors", {"model"})
    names = assert_same_tensors(root / "one" / "last.safetensors", root / "two" / "last.safetensors", {"model", "avg"})
    assert any(n.startswith("avg.") for n in names)  # fine-tuning averaged from its first step
    assert_same_tensors(root / "one" / "best.safetensors", root / "two" / "best.safetensors", {"model"})


def test_only_rank_zero_writes_and_logs(runs):
    root = runs["root"]
    two = root / "two"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in (root / "one").iterdir())
    records = [line for line in (two / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(records) == 3  # two training epochs and one fine-tuning epoch, each once
    assert '"processes": 2' in records[0]
    assert runs["two"].stdout.count("best model:") == 1
    assert runs["two"].stdout.count("train epoch   1 |") == 1


def test_a_two_process_run_resumes_with_one_process(runs):
    """SIGKILL the two-process run at an arbitrary moment, resume with one process: the
    weights end as in the uninterrupted one-process run."""
    root, env = runs["root"], runs["env"]
    killed = root / "killed"
    proc = subprocess.Popen(TWO + train_args(runs["corpus"], killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "last.safetensors").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 1.0))
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
    proc.wait()
    resumed = run(ONE + ["train", "--resume", str(killed)], env)
    assert "resuming" in resumed.stdout or "reached 2 epochs" in resumed.stdout
    assert_same_tensors(root / "one-trained.safetensors", killed / "last.safetensors", {"model"})


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_an_elastic_run_survives_a_killed_worker(runs):
    """torchrun --max-restarts 1 reruns the same command line after one of the two workers is
    SIGKILLed mid-epoch; with --resume auto the job finishes by itself, with the weights of
    the uninterrupted one-process run."""
    root, env = runs["root"], runs["env"]
    elastic = root / "elastic"
    cmd = TWO[:3] + ["--max-restarts", "1"] + TWO[3:] + train_args(runs["corpus"], elastic) + ["--resume", "auto"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (elastic / "last.safetensors").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.5))
    workers = _children(proc.pid)
    if proc.poll() is None and workers:
        os.kill(workers[-1], signal.SIGKILL)
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert_same_tensors(root / "one-trained.safetensors", elastic / "last.safetensors", {"model"})


def test_sigterm_to_torchrun_saves_on_every_rank_and_resumes_to_the_same_weights(runs):
    """torchrun forwards SIGTERM to its workers: they finish the batch and save one checkpoint
    (the carried state gathered from both; each worker exits with 143, as the one-process
    test checks); the run then resumes to the uninterrupted run's weights."""
    root, env = runs["root"], runs["env"]
    run_dir = root / "sigterm"
    proc = subprocess.Popen(TWO + train_args(runs["corpus"], run_dir), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not (run_dir / "last.safetensors").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGTERM)  # to torchrun alone, as a scheduler does
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if "training stopped" in out and "SIGTERM" not in out:  # it finished before the signal landed
        return
    assert "SIGTERM: saving at the end of this batch" in out and "interrupted; state saved" in out, out
    resumed = run(ONE + ["train", "--resume", str(run_dir)], env)
    assert "resuming" in resumed.stdout
    assert_same_tensors(root / "one-trained.safetensors", run_dir / "last.safetensors", {"model"})
