"""Running the app under uvicorn: one or several worker processes, tuned for small requests.

``run(settings, host=..., port=..., workers=...)`` is what ``tabpipe serve`` and
the Docker image (``python -m tabpipe.serving.server``) call:

- uvicorn on uvloop and httptools, with one change to its HTTP protocol:
  a response's status line and headers go out in the same ``write`` as its
  body (uvicorn writes them separately, two system calls and two TCP
  segments per answer on loopback);
- no ``server`` header, no proxy-header rewriting (tabpipe logs no client
  address), its own JSON access log instead of uvicorn's;
- with ``workers > 1``, uvicorn starts that many processes sharing the socket;
  each loads the model, follows the alias and writes its own prediction-log
  parts, and the Prometheus metrics are shared through a folder
  (``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary one unless set), so
  ``/metrics`` answers the sum over the workers whichever worker answers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tabpipe.serving.settings import SETTINGS_ENV, ServeSettings

WORKERS_ENV = "TABPIPE_WORKERS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Connections waiting to be accepted (uvicorn's default is 2048 too; stated here on purpose).
BACKLOG = 2048


class _HeldHeaders:
    """A transport that holds the status line and headers until the body's first write.

    uvicorn's HTTP protocol writes a response's head and its body with two calls;
    joined they leave in one system call and one TCP segment. Anything that is not
    a response head (``100 Continue``, an error page written whole, the body) is
    written at once, and ``close`` writes what is held first.
    """

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n") and data[9:12] != b"100":
            self._held = data
        else:
            self._transport.write(data)

    def release(self) -> None:
        """Write the held head now (a response without a body write, such as HEAD's)."""
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None

    def close(self) -> None:
        self.release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedWritesProtocol(HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol; each response's head leaves with its body."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or isinstance(cycle.transport, _HeldHeaders):
            return
        held = _HeldHeaders(cycle.transport)
        cycle.transport = held  # type: ignore[assignment]
        completed = cycle.on_response

        def on_response() -> None:  # the response is complete: nothing stays held
            held.release()
            completed()

        cycle.on_response = on_response


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """The uvicorn settings tabpipe serves with (see the module docstring)."""
    return {
        "host": host,
        "port": port,
        "http": JoinedWritesProtocol,
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "log_level": "warning",
        "access_log": False,  # tabpipe writes its own (JSON, with the request id)
        "server_header": False,
        "proxy_headers": False,
        "backlog": BACKLOG,
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 30,
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(
    settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> None:
    """Serve ``settings`` until stopped (SIGTERM/SIGINT: graceful shutdown).

    The app is built in the serving process by ``app_from_env`` (after uvicorn has
    set up its own logging, which would close the handlers configured before).
    """
    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    options = uvicorn_options(host, port)
    own_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="tabpipe-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    try:
        uvicorn.run("tabpipe.serving.app:app_from_env", factory=True, workers=workers, **options)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m tabpipe.serving.server``: serve the settings in ``TABPIPE_SERVE_SETTINGS``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get(WORKERS_ENV) or 1),
        help=f"server processes (default: ${WORKERS_ENV} or 1)",
    )
    args = parser.parse_args(argv)
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        parser.error(f"{SETTINGS_ENV} is not set (the settings as JSON)")
    run(
        ServeSettings.model_validate_json(raw), host=args.host, port=args.port, workers=args.workers
    )


__all__ = [
    "BACKLOG",
    "SETTINGS_ENV",
    "WORKERS_ENV",
    "JoinedWritesProtocol",
    "main",
    "run",
    "uvicorn_options",
]

if __name__ == "__main__":
    main()
