"""Long work is never silent in a log: where standard error is not a terminal, a progress
line at a fixed interval (count, the caller's figures, time spent and left)."""

import os
import subprocess
import sys

from awdlstm.progress import LogLines, progress_bar


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_line_per_interval_with_the_time_left(capsys):
    clock = Clock()
    bar = LogLines(total=100, desc="train epoch 1", unit="batch", interval=10.0, clock=clock)
    for i in range(100):
        clock.now += 1.0
        bar.set_postfix_str(f"loss {5 - i / 100:.3f}")
        bar.update()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 10  # at 10 s, 20 s, ..., 100 s
    assert lines[0] == "train epoch 1: 10/100 batch (10%) | loss 4.910 | elapsed 0:10 | left 1:30"
    assert lines[-1].startswith("train epoch 1: 100/100 batch (100%)") and lines[-1].endswith("left 0:00")


def test_a_resumed_count_estimates_from_its_own_rate(capsys):
    clock = Clock()
    bar = LogLines(total=10, desc="x", unit="batch", initial=5, interval=1.0, clock=clock)
    clock.now = 2.0
    bar.update()  # one batch in 2 s, four left
    assert capsys.readouterr().err.strip() == "x: 6/10 batch (60%) | elapsed 0:02 | left 0:08"


def test_off_the_terminal_progress_is_log_lines_and_disabled_is_silent(capsys):
    assert isinstance(progress_bar(total=3, desc="d"), LogLines)  # pytest's stderr is no terminal
    quiet = progress_bar(range(3), desc="d", enabled=False)
    assert list(quiet) == [0, 1, 2] and capsys.readouterr().err == ""


def test_training_with_stderr_in_a_file_prints_progress_lines(tmp_path):
    env = {**os.environ, "AWDLSTM_CACHE": str(tmp_path / "cache"), "AWDLSTM_LOG_SECONDS": "0"}
    with open(tmp_path / "err.log", "w") as err:
        proc = subprocess.run([sys.executable, "-m", "awdlstm", "train", "--preset", "tiny", "--set", "train.epochs=1",
                               "--out", str(tmp_path / "run")], env=env, stdout=subprocess.DEVNULL, stderr=err,
                              timeout=300)
    assert proc.returncode == 0
    lines = (tmp_path / "err.log").read_text().splitlines()
    train = [line for line in lines if line.startswith("train epoch 1: ")]
    assert train and "tok/s" in train[-1] and "ppl" in train[-1] and "elapsed" in train[-1] and "left" in train[-1]
    assert any(line.startswith("validate: ") for line in lines)


def test_past_an_estimated_total_nothing_is_left():
    from awdlstm.progress import LogLines
    bar = LogLines(None, 10, "train epoch 1", "batch", 0)
    bar.n = 12  # variable BPTT drew more windows than the estimate
    assert bar.line(bar.start + 60).endswith("left 0:00") and "(120%)" in bar.line(bar.start + 60)
