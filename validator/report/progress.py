"""A one-line progress display on stderr, drawn only when stderr is a terminal.

It is a reporter like the others (start/record/finish) and counts the records it is fed; when
it also watches the source (`watch`), it counts the bytes read as they stream, so the line moves
while a region's files are being hashed, not only when its records arrive. A background thread
redraws at most five times a second with a carriage return; `finish` erases the line. Nothing is
ever written to stdout, and nothing at all when stderr is not a terminal (a pipe, a file, CI).

Other writers on the same terminal go through `guard(stream)`: a write through it first erases
the progress line, so problem lines and the summary never land in the middle of it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any, Callable, Iterator

from ..results import DigestRecord, LogRecord, Record, Summary

INTERVAL = 0.2  # seconds between redraws: at most five a second


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    def __init__(self, stream: IO[str], *, enabled: bool = True, clock: Callable[[], float] = time.monotonic,
                 interval: float = INTERVAL, ticker: bool = True, width: int | None = None):
        self.stream = stream
        self.enabled = enabled and _is_terminal(stream)
        self.clock, self.interval, self.ticker = clock, interval, ticker
        self.width = width
        self.digests = self.logs = 0
        self.bytes_read = 0
        self.counting_bytes = False
        self._started: float | None = None
        self._last_draw: float | None = None
        self._shown = 0  # characters of the progress line now on the terminal
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the reporter protocol ---------------------------------------------------------------------

    def start(self, header: dict | None = None) -> None:
        if not self.enabled:
            return
        self._started = self.clock()
        if self.width is None:
            try:
                self.width = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, ValueError, OSError):
                self.width = 80
        self.tick(force=True)
        if self.ticker:
            self._thread = threading.Thread(target=self._run, name="ctv-progress", daemon=True)
            self._thread.start()

    def record(self, r: Record) -> None:
        if isinstance(r, DigestRecord):
            self.digests += 1
        elif isinstance(r, LogRecord):
            self.logs += 1
        if self.enabled and not self.ticker:
            self.tick()

    def finish(self, summary: Summary | None = None) -> None:
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        with self._lock:
            self._clear()
            self.stream.flush()

    # --- drawing ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self, force: bool = False) -> None:
        """Redraw the line if the last redraw is at least `interval` old."""
        if not self.enabled or self._started is None or self._stop.is_set() and not force:
            return
        now = self.clock()
        if not force and self._last_draw is not None and now - self._last_draw < self.interval:
            return
        with self._lock:
            self._last_draw = now
            line = self.line(now)[: max(10, (self.width or 80) - 1)]  # never wrap: \r only rewinds one row
            self.stream.write("\r" + line + " " * max(0, self._shown - len(line)))
            self.stream.flush()
            self._shown = len(line)

    def line(self, now: float | None = None) -> str:
        elapsed = max(0.0, (self.clock() if now is None else now) - (self._started or 0.0))
        done = self.digests + self.logs
        parts = [f"ctvalidate: {self.digests:,} digests, {self.logs:,} log files checked"]
        if self.counting_bytes:
            parts.append(f"{_size(self.bytes_read)} read")
        if elapsed >= 0.5:
            rate = f"{done / elapsed:,.0f} files/s"
            if self.counting_bytes:
                rate += f", {_size(self.bytes_read / elapsed)}/s"
            parts.append(rate)
        parts.append(_clock(elapsed))
        return " \u00b7 ".join(parts)

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0

    # --- other writers and the bytes read ------------------------------------------------------------

    def guard(self, stream: IO[str]) -> IO[str]:
        """`stream`, or when it shares the terminal, a wrapper that erases the progress line before each write."""
        if not self.enabled or not _is_terminal(stream):
            return stream
        return _Guarded(stream, self)  # type: ignore[return-value]

    def watch(self, source: Any) -> Any:
        """`source`, or when the display is on, a proxy that counts the bytes its objects stream."""
        if not self.enabled:
            return source
        self.counting_bytes = True
        return _CountingSource(source, self)


class _Guarded:
    def __init__(self, stream: IO[str], progress: Progress):
        self._stream, self._progress = stream, progress

    def write(self, text: str) -> int:
        with self._progress._lock:
            self._progress._clear()
            return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _CountingSource:
    """Everything as the wrapped source does it; `open` streams count their bytes (for the display only)."""

    def __init__(self, source: Any, progress: Progress):
        self._source, self._progress = source, progress

    def open(self, ref: Any) -> Any:
        return _CountingStream(self._source.open(ref), self._progress)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


class _CountingStream:
    def __init__(self, stream: Any, progress: Progress):
        self._stream, self._progress = stream, progress

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._stream.chunks():
            self._progress.bytes_read += len(chunk)  # a lost update between threads only blurs the display
            yield chunk

    def __enter__(self) -> "_CountingStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
