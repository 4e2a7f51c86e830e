"""A small progress reporter for long operator commands, on stderr.

On a terminal it redraws one line (bar, count/total, rate) at most every ``redraw``
seconds and leaves the final state when closed. Anywhere else (a pipe, a log file, CI) it
prints a plain line at most every ``every`` seconds, and a last line on close only if it
printed any, so short runs stay silent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

BAR_WIDTH = 24


def _rate(n: float, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    r = n / seconds
    return f"{r:.0f}/s" if r >= 100 else f"{r:.1f}/s"


class Progress:
    """Counts work done out of ``total`` (None: unknown) and shows it."""

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO | None = None,
        *,
        every: float = 10.0,
        redraw: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.note = ""
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._every = every
        self._redraw = redraw
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._printed = False
        self._closed = False

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.update(self.done + n, note=note)

    def update(self, done: int, total: int | None = None, note: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        now = self._clock()
        if now - self._last >= (self._redraw if self._tty else self._every):
            self._last = now
            self._show(now)

    def line(self, now: float | None = None) -> str:
        """What the reporter shows now."""
        elapsed = (self._clock() if now is None else now) - self._start
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        parts = [self.label]
        if self._tty and self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
        parts += [count, _rate(self.done, elapsed)]
        if self.note:
            parts.append(self.note)
        return " ".join(parts)

    def _show(self, now: float) -> None:
        if self._tty:
            self._stream.write("\r\x1b[K" + self.line(now))
        else:
            self._stream.write(self.line(now) + "\n")
        self._stream.flush()
        self._printed = True

    def close(self) -> None:
        """Show the final state (on a terminal, or if anything was printed)."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        if self._tty or self._printed:
            elapsed = now - self._start
            end = f" in {elapsed:.1f}s"
            if self._tty:
                self._stream.write("\r\x1b[K" + self.line(now) + end + "\n")
            else:
                self._stream.write(self.line(now) + end + "\n")
            self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
