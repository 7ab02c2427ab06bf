"""Progress for long jobs: a tqdm bar on a terminal, plain periodic lines in logs.

A carriage-return bar written to a file or a CI log is one unreadable line of updates; when the
stream is not a terminal we print `desc: n/total (p%) rate, eta` at most every `interval` seconds
(and at the end) instead.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager

LOG_INTERVAL_S = 30.0


def progress_bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool = True,
                 file=None, initial: int = 0, interval: float = LOG_INTERVAL_S, **tqdm_kw):
    """tqdm on a terminal, `LogProgress` otherwise; `enabled=False` shows nothing."""
    file = file or sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and getattr(file, "isatty", lambda: False)():
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=file, initial=initial, **tqdm_kw)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, file=file, initial=initial,
                       interval=interval, enabled=enabled)


class LogProgress:
    """The part of tqdm's interface this package uses, printing whole lines."""

    def __init__(self, iterable=None, total=None, desc="", unit="it", file=None, initial=0,
                 interval=LOG_INTERVAL_S, enabled=True):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.file, self.n, self.interval, self.enabled = file or sys.stderr, initial, interval, enabled
        self.start_n, self.t0 = initial, time.monotonic()
        self.last, self.postfix, self.closed = self.t0, "", False
        self.printed_n = None  # n on the last line printed: close() does not print it twice
        self.per_second = None  # "N unit/s" or "N s/unit", chosen once so that a run keeps one unit

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1):
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._print()

    def set_postfix(self, refresh: bool = False, **kw):
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def line(self) -> str:
        done = self.n - self.start_n
        dt = max(1e-9, time.monotonic() - self.t0)
        head = f"{self.desc}: {self.n}"
        if self.total:
            head += f"/{self.total} ({100 * self.n / self.total:.0f}%)"
        parts = [head]
        rate = done / dt
        if done:
            if self.per_second is None:
                self.per_second = rate >= 1
            parts.append(f"{rate:.2f} {self.unit}/s" if self.per_second else f"{1 / rate:.2f} s/{self.unit}")
            if self.total:
                parts.append(f"eta {max(0.0, (self.total - self.n) / rate):.0f} s")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _print(self):
        if self.enabled:
            print(self.line(), file=self.file, flush=True)
            self.printed_n = self.n

    def close(self):
        if not self.closed:
            self.closed = True
            if self.n > self.start_n and self.n != self.printed_n:
                self._print()


@contextmanager
def layer_progress(model, passes: int, desc: str, enabled: bool = True, **kw):
    """Progress through one long model call: a step per convolution layer run, over `passes`
    forward passes (tiles x mirrored copies). A single large image is one item of a file bar and
    would otherwise show nothing for minutes."""
    import torch
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    kw.setdefault("interval", 10.0)  # in logs: a line every 10 s, not 30, for a job of one item
    bar = progress_bar(total=len(convs) * passes, desc=desc, unit="layer", enabled=enabled, **kw)
    hooks = [m.register_forward_hook(lambda *_: bar.update(1)) for m in convs] if enabled else []
    try:
        yield bar
    finally:
        for h in hooks:
            h.remove()
        bar.close()
