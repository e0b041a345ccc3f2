"""A progress bar for long commands (bulk imports): count, percent, rate and ETA, on stderr.

On a terminal the bar is redrawn in place (``\\r``), at most every ``redraw_s`` seconds; when
stderr is a file or a pipe (CI logs, ``2> log``) it degrades to one plain line every
``line_every_s`` seconds, so logs stay readable. Stdlib only.

Usage (the API a command uses)::

    from infra.cli.progress import Progress

    with Progress(len(paths), "importing", unit="files") as progress:
        for path in paths:
            import_one(path)
            progress.advance()            # or advance(n) after a batch of n
            if skipped:
                progress.note(f"skipped {path}")   # a line above the bar

``total=None`` shows a count and a rate, without percent or ETA. Leaving the ``with`` block
prints the final line (``done``, or ``interrupted``/``failed`` when an exception escapes).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["Progress", "format_duration"]

#: Characters of the bar on a terminal.
_FULL, _EMPTY = "#", "-"


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour) for a duration in seconds; ``?`` when unknown."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, infinite
        return "?"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """A progress display for ``total`` units of work.

    Args:
        total: Units to do (``None`` when unknown: no percent, no ETA).
        label: What is being done (``"importing"``), shown first.
        unit: Name of a unit, for the rate (``"files"`` gives ``12.5 files/s``).
        stream: Where to draw (stderr by default). A stream whose ``isatty()`` is true gets
            the redrawn bar; any other gets periodic lines.
        redraw_s: Least time between two redraws of the bar on a terminal, in seconds.
        line_every_s: Time between two lines when not on a terminal, in seconds.
        columns: Width of the terminal in characters (asked of the terminal by default);
            the bar line never exceeds it, so it never wraps.
        clock: Monotonic clock in seconds (for tests).

    Raises:
        ValueError: ``total`` is negative.
    """

    def __init__(
        self,
        total: int | None,
        label: str = "",
        *,
        unit: str = "items",
        stream: TextIO | None = None,
        redraw_s: float = 0.1,
        line_every_s: float = 10.0,
        columns: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total must be at least 0, got {total}")
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream)
        self.redraw_s = redraw_s
        self.line_every_s = line_every_s
        self.columns = columns or shutil.get_terminal_size().columns
        self._clock = clock
        self._started = clock()
        self._last_draw = float("-inf")
        self._drawn = 0  # width of the bar now on screen (terminal mode), to blank it out
        self._closed = False
        if self.tty:
            self._draw(self._started)

    # -- the API -------------------------------------------------------------------------

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done and redraw when it is time.

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"advance takes a count of at least 0, got {n}")
        self.done += n
        now = self._clock()
        every = self.redraw_s if self.tty else self.line_every_s
        if now - self._last_draw >= every:
            self._draw(now)

    def note(self, message: str) -> None:
        """Print a line of its own (a warning, a skipped file) without breaking the bar."""
        if self.tty:
            self._blank()
        self.stream.write(message + "\n")
        if self.tty and not self._closed:
            self._draw(self._clock())
        self.stream.flush()

    def close(self, status: str = "done") -> None:
        """Print the final line (once), ending with ``status``."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        line = f"{self._line(now, final=True)}  {status}"
        if self.tty:
            self._blank()
            line = line[: self.columns - 1]
        self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close("interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed")

    # -- numbers -------------------------------------------------------------------------

    def rate(self, now: float | None = None) -> float:
        """Units per second since the start (0 before any time has passed)."""
        elapsed = (self._clock() if now is None else now) - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the average rate so far; ``None`` when unknown (no total, no rate yet)."""
        if self.total is None:
            return None
        left = max(self.total - self.done, 0)
        if left == 0:
            return 0.0
        rate = self.rate(now)
        return left / rate if rate > 0 else None

    # -- drawing -------------------------------------------------------------------------

    def _line(self, now: float, *, final: bool = False) -> str:
        """The text without the bar: ``label  12/40  30%  2.5 files/s  ETA 0:11``."""
        parts = [self.label] if self.label else []
        parts.append(f"{self.done}/{self.total}" if self.total is not None else f"{self.done} {self.unit}")
        if self.total:
            parts.append(f"{min(self.done / self.total, 1.0):.0%}")
        parts.append(f"{self.rate(now):.1f} {self.unit}/s")
        if final:
            parts.append(f"in {format_duration(now - self._started)}")
        else:
            eta = self.eta_s(now)
            if self.total is not None:
                parts.append(f"ETA {format_duration(eta) if eta is not None else '?'}")
            else:
                parts.append(f"{format_duration(now - self._started)} elapsed")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        text = self._line(now)
        if not self.tty:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        line = f"{self._bar()}  {text}" if self.total else text
        line = line[: self.columns - 1]  # a line that wraps cannot be redrawn with \r
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def _bar(self, width: int = 24) -> str:
        filled = int(width * min(self.done / self.total, 1.0)) if self.total else 0
        return "[" + _FULL * filled + _EMPTY * (width - filled) + "]"

    def _blank(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
