"""Structured JSON logs: one object per line, never request or response payloads.

``configure()`` (called by ``tabpipe serve`` and in every worker) sends the
``tabpipe.serving`` loggers to stderr through a :class:`BufferedJsonHandler`:
lines are gathered and written together by a timer thread every
``FLUSH_SECONDS`` (or as soon as ``FLUSH_LINES`` wait; at once for a warning or
an error, and at exit), so the access log costs no system call per request
and the request path never encodes nor writes a batch itself. The access log line
(:class:`AccessLog`) is formatted directly, without a ``LogRecord``, when it
goes to that handler; elsewhere (an app embedded in another process) it goes
through ``logging`` like any record.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
import time
from typing import Any, TextIO

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_ENCODER = json.JSONEncoder(default=str)
_quote = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses
ACCESS_LOGGER = "tabpipe.serving.access"
#: Buffered lines are written at least this often...
FLUSH_SECONDS = 0.5
#: ...or as soon as this many wait (the timer thread is woken).
FLUSH_LINES = 512
#: Lines held at most: past this (the timer thread starved) the caller writes them itself.
HELD_LINES = 16 * FLUSH_LINES
#: Writes up to this size to a pipe are never interleaved with another process's (POSIX).
PIPE_BUF = 4096


class _Clock:
    """``2026-11-30T22:52:35.413Z`` text of a time; the seconds part is made once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._stamp = ""

    def text(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # a benign race between threads: both write the same text
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message``, then the extras."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._clock.text(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class BufferedJsonHandler(logging.Handler):
    """JSON lines to a stream, written in batches by a small timer thread.

    A record at WARNING or above is written at once, after the lines before it.
    ``lock`` guards the held lines only; the write itself is ordered by a second
    lock, taken before the first is released, so batches leave in order and a
    request adding a line never waits for a write in progress.
    """

    def __init__(self, stream: TextIO, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(JsonFormatter())
        self._lines: list[str] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._writing = threading.Lock()
        self._seconds = flush_seconds
        self._timer: threading.Thread | None = None
        self._pid = -1
        self._closed = False

    def _start_timer(self) -> None:
        """One timer per process (a forked child starts its own)."""
        self._pid = os.getpid()
        self._timer = threading.Thread(target=self._tick, name="tabpipe-log-flush", daemon=True)
        self._timer.start()

    def _tick(self) -> None:
        while True:
            self._wake.wait(self._seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add_line(line, urgent=record.levelno >= logging.WARNING)

    def add_line(self, line: str, urgent: bool = False) -> None:
        """Queue one formatted line (the access log calls this directly)."""
        with self.lock:  # type: ignore[union-attr]
            if self._pid != os.getpid() and not self._closed:
                self._start_timer()
            self._lines.append(line)
            held = len(self._lines)
            if urgent or self._closed or held >= HELD_LINES:
                self._write()
            elif held == FLUSH_LINES:
                self._wake.set()

    def _write(self) -> None:
        """Write the held lines; called with ``lock`` held, which it releases meanwhile."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self._writing.acquire()  # taken before ``lock`` is let go: batches keep their order
        self.lock.release()  # type: ignore[union-attr]
        try:
            self._write_lines(lines)
        finally:
            self._writing.release()  # before taking ``lock`` again: no deadlock
            self.lock.acquire()  # type: ignore[union-attr]

    def _write_lines(self, lines: list[str]) -> None:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
            fd = None
        try:
            if fd is None:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
                return
            self.stream.flush()  # what others wrote through the stream goes first
            for chunk in _chunks(lines, whole=stat.S_ISREG(os.fstat(fd).st_mode)):
                _write_all(fd, chunk)
        except (OSError, ValueError):  # a closed or broken stream: logging must not fail
            pass

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        """Flush and stop the timer; a line that still comes is written at once."""
        with self.lock:  # type: ignore[union-attr]
            self._closed = True
            self._write()
        self._stop.set()
        self._wake.set()
        super().close()


def _chunks(lines: list[str], whole: bool = False) -> list[bytes]:
    """The lines as bytes: whole lines in writes of at most ``PIPE_BUF`` bytes where possible.

    Several worker processes share one stderr; on a pipe (a container's log) a
    write up to ``PIPE_BUF`` is never interleaved with another process's. A
    regular file (``whole``) takes one write (Linux does not interleave writes to
    a regular file). The
    text is encoded and cut by C routines (one join, ``rfind`` per chunk), not a
    Python loop per line: the timer thread holds the GIL as briefly as it can.
    """
    data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
    if whole or len(data) <= PIPE_BUF:
        return [data]
    chunks: list[bytes] = []
    start, size = 0, len(data)
    while size - start > PIPE_BUF:
        cut = data.rfind(b"\n", start, start + PIPE_BUF)  # the last line that fits
        if cut < 0:  # a line longer than PIPE_BUF: written whole, alone
            cut = data.find(b"\n", start + PIPE_BUF)
        chunks.append(data[start : cut + 1])
        start = cut + 1
    if start < size:
        chunks.append(data[start:])
    return chunks


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class AccessLog:
    """One line per request: ``ts``, ``level``, ``logger``, ``message``, ``event``, ``pid``
    (the worker process), ``request_id``, ``method``, ``path``, ``status``, ``ms``."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._clock = _Clock()
        self._pid = os.getpid()
        self._prefix = f'","level":"info","logger":"{ACCESS_LOGGER}","message":"request"'
        self._prefix += f',"event":"request","pid":{self._pid},"request_id":'

    def _sink(self) -> BufferedJsonHandler | None:
        """The buffered handler when it is where the access log goes (``configure()``)."""
        logger: logging.Logger | None = self.logger
        while logger is not None:
            if logger.handlers:
                found = logger.handlers
                if len(found) == 1 and isinstance(found[0], BufferedJsonHandler):
                    return found[0]
                return None
            logger = logger.parent if logger.propagate else None
        return None

    def write(self, request_id: str, method: str, path: str, status: int, seconds: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        sink = self._sink()
        if sink is None:  # plain logging, so whatever the embedding process set up applies
            extra = {
                "event": "request",
                "pid": self._pid,
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
            }
            # ``logger.info`` would also walk the stack to find its caller, once per request
            self.logger.handle(
                self.logger.makeRecord(
                    self.logger.name, logging.INFO, "", 0, "request", (), None, extra=extra
                )
            )
            return
        sink.add_line(
            f'{{"ts":"{self._clock.text(time.time())}{self._prefix}{_quote(request_id)}'
            f',"method":{_quote(method)},"path":{_quote(path)},"status":{status}'
            f',"ms":{seconds * 1000:.3f}}}'
        )


def configure(level: int = logging.INFO) -> None:
    """Send tabpipe's serving logs to stderr as buffered JSON lines."""
    logger = logging.getLogger("tabpipe.serving")
    for old in logger.handlers:
        old.close()
    logger.handlers = [BufferedJsonHandler(sys.stderr)]
    logger.setLevel(level)
    logger.propagate = False


def flush() -> None:
    """Write what the serving loggers' handlers hold (at shutdown)."""
    for name in ("tabpipe.serving", ACCESS_LOGGER):
        for handler in logging.getLogger(name).handlers:
            handler.flush()
