"""Progress reporting that suits where the output goes.

On a terminal: a tqdm bar. Elsewhere (a log file, Slurm's ``slurm-*.out``, CI): tqdm would write
thousands of ``\\r`` updates into the file, so a plain line goes through ``logging`` instead, at most
every ``every_s`` seconds or each time another ``every_pct`` % is done, plus one at the end::

    epoch 3/60: 120/480 batches (25%), 41.3 batches/s, elapsed 0:03, left 0:09, loss=0.0123

``progress(...)`` takes the tqdm arguments the project uses (an iterable and/or ``total``, ``desc``,
``unit``, ``disable``) and returns an object with tqdm's ``update``, ``set_postfix`` and ``close``,
usable in a ``for`` loop and as a context manager.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

log = logging.getLogger("progress")

EVERY_S = 30.0    # a plain line at least this often (seconds) ...
EVERY_PCT = 10.0  # ... or each time this much more of the total is done


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal (a bar can redraw itself there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable | None = None, desc: str = "", total: float | None = None, unit: str = "it",
             disable: bool = False, stream: TextIO | None = None, every_s: float = EVERY_S,
             every_pct: float = EVERY_PCT, logger: logging.Logger | None = None):
    """A tqdm bar when ``stream`` (default: stderr) is a terminal, else :class:`PlainProgress`."""
    stream = sys.stderr if stream is None else stream
    if disable:
        return tqdm(iterable, total=total, disable=True)
    if is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, file=stream, dynamic_ncols=True)
    return PlainProgress(iterable, desc, total, unit, every_s, every_pct, logger or log)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class PlainProgress:
    """tqdm's interface, reporting through ``logging`` in periodic one-line messages."""

    def __init__(self, iterable: Iterable | None, desc: str, total: float | None, unit: str, every_s: float,
                 every_pct: float, logger: logging.Logger, clock=time.monotonic):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.every_s, self.every_pct, self.log, self.clock = every_s, every_pct, logger, clock
        self.n, self.postfix, self.closed, self.lines = 0, "", False, 0
        self.t0 = self.last_t = clock()
        self.last_pct = 0.0

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("progress(...) without an iterable cannot be iterated: call update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        pct = 100.0 * self.n / self.total if self.total else None
        due_time = now - self.last_t >= self.every_s
        due_pct = pct is not None and self.every_pct > 0 and \
            math.floor(pct / self.every_pct) > math.floor(self.last_pct / self.every_pct)
        if (due_time or due_pct) and not (self.total and self.n >= self.total):
            self._emit(now)  # the final line comes from close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._emit(self.clock(), done=True)

    def line(self, now: float, done: bool = False) -> str:
        elapsed = now - self.t0
        n = f"{self.n:g}"
        parts = [f"{n}/{self.total:g} {self.unit}" if self.total else f"{n} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.n / self.total:.0f}%)"
        if elapsed > 0:
            parts.append(f"{self.n / elapsed:.3g} {self.unit}/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if self.total and 0 < self.n < self.total and not done:
            parts.append(f"left {_clock(elapsed * (self.total - self.n) / self.n)}")
        if self.postfix:
            parts.append(self.postfix)
        head = f"{self.desc}: " if self.desc else ""
        return head + ", ".join(parts) + (" (done)" if done else "")

    def _emit(self, now: float, done: bool = False) -> None:
        self.log.info("%s", self.line(now, done))
        self.lines += 1
        self.last_t = now
        if self.total:
            self.last_pct = 100.0 * self.n / self.total
