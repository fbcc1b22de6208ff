"""Progress for logs: one plain line now and then instead of a redrawn bar.

A tqdm bar redraws itself with carriage returns and cursor movements; written to a file (stderr
redirected, a batch job's log) nested bars leave those escape codes in it. When stderr is not a
terminal, :func:`als4gan.runtime.progress` returns a :class:`PlainProgress` instead: same calls
(``update``, ``set_postfix``, ``set_description``, ``close``, iteration, ``with``), but it writes
one ordinary line every tenth of the total (or every ``ALS4GAN_PROGRESS_SECONDS`` seconds,
default 60, when that comes first) and one when it ends. Lines are at least 5 s apart, so the
many short bars of a selection's rounds do not flood the log; a bar shorter than that writes
nothing (its caller logs a summary line anyway).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any, TextIO

#: Environment variable: at most this many seconds between two progress lines (default 60).
SECONDS_ENV = "ALS4GAN_PROGRESS_SECONDS"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class PlainProgress:
    """A progress counter that logs plain lines (no escape codes) to ``stream``.

    Args:
        iterable: Items to iterate over (optional; otherwise call :meth:`update`).
        total: Number of steps (default: ``len(iterable)`` when it has one).
        desc: Label at the start of each line.
        unit: Name of one step.
        initial: Steps already done (a resumed run).
        leave: ``False`` for a transient inner bar: it writes nothing.
        stream: Where to write (default: ``sys.stderr`` at the time of writing).
        every: Steps between lines (default: a tenth of ``total``, or 100 without a total).
        seconds: At most this many seconds between lines while steps advance (default:
            ``$ALS4GAN_PROGRESS_SECONDS`` or 60).
        min_seconds: At least this many seconds between lines (default 5).
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        leave: bool = True,
        stream: TextIO | None = None,
        every: int | None = None,
        seconds: float | None = None,
        min_seconds: float = 5.0,
    ) -> None:
        self.iterable = iterable
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.leave = leave
        self._stream = stream
        if every is None:
            every = max(1, math.ceil(total / 10)) if total else 100
        self.every = every
        if seconds is None:
            seconds = float(os.environ.get(SECONDS_ENV, "60") or 60)
        self.seconds = seconds
        self.min_seconds = min_seconds
        self._written = False
        self._initial = initial
        self._start = time.monotonic()
        self._last_time = self._start
        self._last_n = initial
        self._postfix = ""
        self._closed = False

    # ---------------------------------------------------------------- tqdm-like API
    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps; writes a line when a tenth (or the time interval) has passed."""
        self.n += n
        now = time.monotonic()
        since = now - self._last_time
        if since < self.min_seconds:
            return
        if self.n - self._last_n >= self.every or (self.n > self._last_n and since >= self.seconds):
            self._write(now)

    def set_postfix(
        self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """Values appended to the next line (e.g. the current losses)."""
        values = {**(ordered_dict or {}), **kwargs}
        self._postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Change the label of the following lines."""
        self.desc = desc or ""

    def close(self) -> None:
        """Write the final line (unless nothing changed since the last one, or it was short)."""
        if self._closed:
            return
        self._closed = True
        now = time.monotonic()
        if self.n != self._last_n and (self._written or now - self._start >= self.min_seconds):
            self._write(now)

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("PlainProgress without an iterable cannot be iterated")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- output
    def line(self, now: float | None = None) -> str:
        """The current progress as one line of plain text."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._start
        done = self.n - self._initial
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total:
            parts.append(f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)")
        else:
            parts.append(f"{self.n} {self.unit}")
        parts.append(f", {_duration(elapsed)}")
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            parts.append(f", {rate:.3g} {self.unit}/s")
            if self.total and self.n < self.total:
                parts.append(f", ~{_duration((self.total - self.n) / rate)} left")
        if self._postfix:
            parts.append(f", {self._postfix}")
        return "".join(parts)

    def _write(self, now: float) -> None:
        self._last_time = now
        self._last_n = self.n
        self._written = True
        if not self.leave:
            return
        stream = self._stream if self._stream is not None else sys.stderr
        print(self.line(now), file=stream, flush=True)


def stream_is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


__all__ = ["SECONDS_ENV", "PlainProgress", "stream_is_terminal"]
