"""Progress of long work: a bar on a terminal; where standard error is not one (a job
scheduler's log file, a pipe), a plain line every ``$AWDLSTM_LOG_SECONDS`` seconds (default
60) with the count, the rate, the caller's figures (loss, perplexity, ...), and the time
spent and left, so a log never stays silent for a whole epoch."""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

LOG_SECONDS_ENV = "AWDLSTM_LOG_SECONDS"
DEFAULT_LOG_SECONDS = 60.0


def log_seconds() -> float:
    try:
        return max(float(os.environ.get(LOG_SECONDS_ENV, DEFAULT_LOG_SECONDS)), 0.0)
    except ValueError:
        return DEFAULT_LOG_SECONDS


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class LogLines:
    """The part of tqdm's interface the package uses (``update``, ``set_postfix_str``, a
    context manager, iteration), writing one line per interval instead of a bar."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float | None = None, file=None, clock=time.monotonic):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n = self.initial = initial
        self.postfix = ""
        self.interval = log_seconds() if interval is None else interval
        self.file, self.clock = file, clock
        self.start = self.last = clock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.write(now)

    def close(self) -> None:
        pass

    def line(self, now: float) -> str:
        elapsed = now - self.start
        done = self.n - self.initial
        parts = [f"{self.desc}: {self.n:,}" + (f"/{self.total:,}" if self.total else "") + f" {self.unit}"]
        if self.total:
            parts[0] += f" ({self.n / self.total:.0%})"
        if self.postfix:
            parts.append(self.postfix)
        parts.append(f"elapsed {_duration(elapsed)}")
        if self.total and done > 0:
            # The total can be an estimate (variable BPTT draws the epoch's windows as it goes):
            # past it, nothing is reported as left rather than a negative time.
            parts.append(f"left {_duration(elapsed / done * max(self.total - self.n, 0))}")
        return " | ".join(parts)

    def write(self, now: float) -> None:
        print(self.line(now), file=self.file or sys.stderr, flush=True)


class _Quiet(LogLines):
    def write(self, now: float) -> None:
        pass


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 enabled: bool = True, **tqdm_kwargs):
    """A tqdm bar on a terminal, ``LogLines`` elsewhere, nothing when not ``enabled``."""
    if not enabled:
        return _Quiet(iterable, total, desc, unit, initial, interval=float("inf"))
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=False, **tqdm_kwargs)
    return LogLines(iterable, total, desc, unit, initial)
