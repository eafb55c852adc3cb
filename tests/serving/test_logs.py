"""The buffered JSON log handler: batches written off the request path, whole lines, in order."""

from __future__ import annotations

import json
import logging
import os
import select
import threading

from tabpipe.serving import logs
from tabpipe.serving.logs import FLUSH_LINES, PIPE_BUF, BufferedJsonHandler, _chunks


def _read_lines(fd: int, count: int, timeout: float = 30.0) -> list[str]:
    """Lines from a pipe until ``count`` arrived (or nothing more comes within ``timeout``)."""
    data = b""
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        data += os.read(fd, 1 << 16)
    return data.decode().splitlines()


def test_chunks_are_whole_lines_within_pipe_buf_and_keep_the_text() -> None:
    lines = [json.dumps({"i": i, "pad": "x" * (i % 97)}) for i in range(400)]
    lines.insert(7, "y" * (PIPE_BUF + 10))  # a line longer than PIPE_BUF goes alone, whole
    lines.insert(9, "caf\u00e9 \udcff")  # a lone surrogate is escaped, not an error
    chunks = _chunks(lines)
    assert b"".join(chunks) == ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
    assert all(c.endswith(b"\n") for c in chunks)
    assert [c for c in chunks if len(c) > PIPE_BUF] == [("y" * (PIPE_BUF + 10) + "\n").encode()]
    assert len(chunks) > len(b"".join(chunks)) // PIPE_BUF
    assert _chunks(lines, whole=True) == [b"".join(chunks)]


def test_a_full_batch_is_written_by_the_timer_thread_and_urgent_lines_keep_their_order() -> None:
    read, write = os.pipe()
    try:
        with os.fdopen(write, "w", closefd=False) as stream:
            handler = BufferedJsonHandler(stream, flush_seconds=3600)  # only a wake-up writes
            for i in range(FLUSH_LINES):
                handler.add_line(json.dumps({"n": i}))
            got = _read_lines(read, FLUSH_LINES)
            assert [json.loads(x)["n"] for x in got] == list(range(FLUSH_LINES))
            handler.add_line('{"n": "held"}')
            handler.add_line('{"n": "urgent"}', urgent=True)  # written at once, after the held
            assert _read_lines(read, 2) == ['{"n": "held"}', '{"n": "urgent"}']
            handler.close()
    finally:
        os.close(read)


def test_lines_from_many_threads_arrive_once_each_in_each_threads_order() -> None:
    read, write = os.pipe()
    threads, per_thread = 4, 3 * FLUSH_LINES
    received: list[str] = []
    reader = threading.Thread(
        target=lambda: received.extend(_read_lines(read, threads * per_thread + 1))
    )
    reader.start()
    try:
        with os.fdopen(write, "w", closefd=False) as stream:
            handler = BufferedJsonHandler(stream, flush_seconds=0.01)
            record = logging.makeLogRecord({"msg": "a warning", "levelno": logging.WARNING})

            def produce(t: int) -> None:
                for i in range(per_thread):
                    handler.add_line(json.dumps({"t": t, "i": i}))
                    if t == 0 and i == per_thread // 2:
                        handler.handle(record)  # urgent, through logging's own lock

            workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(60)
            assert not any(w.is_alive() for w in workers)  # no deadlock
            handler.close()
        reader.join(60)
    finally:
        os.close(read)
    entries = [json.loads(x) for x in received]
    assert sum(e.get("message") == "a warning" for e in entries) == 1
    for t in range(threads):
        assert [e["i"] for e in entries if e.get("t") == t] == list(range(per_thread))


def test_configure_sends_the_access_log_through_the_buffered_handler() -> None:
    logs.configure()
    try:
        assert logs.AccessLog()._sink() is not None
    finally:
        handler = logging.getLogger("tabpipe.serving").handlers[0]
        handler.close()
        logging.getLogger("tabpipe.serving").handlers = []
        logging.getLogger("tabpipe.serving").propagate = True
