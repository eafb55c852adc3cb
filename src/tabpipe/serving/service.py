"""What the routes share: the model holder, metrics, body reading and the predict path."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from tabpipe.errors import NotFoundError, PayloadTooLargeError, TabpipeError
from tabpipe.objectstore import FolderMirror, is_url
from tabpipe.packaging.signature import Checked
from tabpipe.serving import logs
from tabpipe.serving.errors import NotReadyError
from tabpipe.serving.holder import Loaded, ModelHolder
from tabpipe.serving.metrics import Metrics
from tabpipe.serving.predlog import open_log
from tabpipe.serving.runtime import Prediction
from tabpipe.serving.settings import ServeSettings

log = logging.getLogger("tabpipe.serving")
#: Requests with more rows than this run off the event loop.
THREAD_ROWS = 2000
WARNINGS_HEADER = "x-tabpipe-warnings"
Result = tuple[Checked, Prediction, list[dict[str, float]] | None]


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the body has more than {limit} bytes; the limit is {limit}"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class Service:
    """One served model: loading, hot swap, validation, prediction and its metrics."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.holder = ModelHolder(settings)
        self.metrics = Metrics(settings.model)
        # the prediction log (monitoring): never blocks nor fails a request
        log_settings = settings.prediction_log
        if settings.workspace is None:
            log_settings = log_settings.model_copy(update={"enabled": False})
        root = settings.local_workspace if settings.workspace is not None else Path()
        on_part = None
        if settings.workspace is not None and is_url(settings.workspace):
            on_part = FolderMirror.from_url(str(settings.workspace), root).push
        self.log = open_log(root, settings.model, log_settings, on_part)

    # lifecycle ---------------------------------------------------------------
    def _loaded(self, loaded: Loaded) -> None:
        self.metrics.version.labels(self.settings.model).set(loaded.version)

    def _swapped(self, loaded: Loaded) -> None:
        self._loaded(loaded)
        self.metrics.swaps.inc()

    async def _load(self) -> bool:
        try:
            loaded = await asyncio.to_thread(self.holder.load_current)
        except Exception as exc:
            self.holder.error = f"{type(exc).__name__}: {exc}"
            log.error(
                "cannot load the model", extra={"event": "load_failed", "error": self.holder.error}
            )
            return False
        self._loaded(loaded)
        log.info(
            "model loaded and warmed; ready",
            extra={"event": "ready", "model": self.settings.model, "version": loaded.version},
        )
        return True

    def _freeze(self) -> None:
        """Startup's objects out of the collector's full passes (see ``freeze_gc``)."""
        if self.settings.freeze_gc:
            gc.collect()
            gc.freeze()

    async def _follow(self, load_first: bool) -> None:
        if load_first:
            if not await self._load():
                return
            self._freeze()
        if self.holder.follows_alias:
            await self.holder.follow(self._swapped)

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """Load (at startup or in the background) and follow the alias; stop on shutdown."""
        background = self.settings.load == "background"
        if not background:
            if not await self._load():
                raise NotReadyError(f"cannot serve {self.settings.model!r}: {self.holder.error}")
            self._freeze()
        task = asyncio.create_task(self._follow(load_first=background))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.holder.close()
            self.log.close()
            self.metrics.close()
            if self.settings.freeze_gc:
                gc.unfreeze()  # what this app held can be collected again
            log.info("server stopped", extra={"event": "stopped"})
            logs.flush()  # uvicorn ends the process by re-raising the signal: no atexit

    # requests ----------------------------------------------------------------
    def model(self, name: str) -> Loaded:
        if name != self.settings.model:
            raise NotFoundError(
                f"model {name!r} is not served here; this server serves {self.settings.model!r}"
            )
        return self.holder.get()

    def _run(
        self,
        loaded: Loaded,
        columns: dict[str, Any],
        max_rows: int,
        explain: bool,
        request_id: str = "",
    ) -> Result:
        started = time.perf_counter()
        try:
            checked = loaded.manifest.signature.check(columns, max_rows=max_rows)
            if loaded.validator is not None:
                key = self.log.settings.key_column
                sent = (c for c in columns if c != key)
                found = loaded.validator.check(checked.feeds, checked.rows, sent)
                if found is not None:
                    checked.contract = found.warnings()
                    checked.contract_flags = found.row_flags
        except TabpipeError as exc:
            self.log.record_error(request_id, loaded.version, str(exc), started)
            raise
        self.metrics.observe_checked(checked)
        prediction = loaded.predictor.predict(checked.feeds)
        self.log.record(
            request_id,
            loaded.version,
            loaded.manifest,
            checked.feeds,
            prediction,
            started,
            columns,
            flags=checked.contract_flags,
        )
        self.metrics.observe_prediction(prediction, loaded.version)
        contributions = loaded.predictor.contributions(checked.feeds) if explain else None
        return checked, prediction, contributions

    async def predict(
        self,
        loaded: Loaded,
        columns: dict[str, Any],
        *,
        max_rows: int,
        explain: bool = False,
        request_id: str = "",
    ) -> Result:
        """Validate, predict, count, log; large requests and explanations run off the loop."""
        rows = len(next(iter(columns.values()), ()))
        if rows > THREAD_ROWS or explain:
            return await asyncio.to_thread(
                self._run, loaded, columns, max_rows, explain, request_id
            )
        return self._run(loaded, columns, max_rows, explain, request_id)

    @staticmethod
    def headers(checked: Checked, loaded: Loaded) -> dict[str, str]:
        """The model version, and the counted warnings when there are any."""
        headers = {"x-model-version": str(loaded.version)}
        if checked.out_of_range or checked.unseen or checked.contract:
            headers[WARNINGS_HEADER] = _warnings_header(checked)
        return headers

    @staticmethod
    def raw_headers(checked: Checked, loaded: Loaded) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as ASGI header pairs (the scoring routes)."""
        headers = [(b"x-model-version", str(loaded.version).encode())]
        if checked.out_of_range or checked.unseen or checked.contract:
            # latin-1, as HTTP headers: a column name outside it is replaced, not a 500
            text = _warnings_header(checked).encode("latin-1", "replace")
            headers.append((WARNINGS_HEADER.encode(), text))
        return headers


def _warnings_header(checked: Checked) -> str:
    parts = [f"out_of_range:{c}={n}" for c, n in checked.out_of_range.items()]
    parts += [f"unseen:{c}={n}" for c, n in checked.unseen.items()]
    parts += [f"contract:{n}" for n in _contract_counts(checked)]
    return ";".join(parts)


def _contract_counts(checked: Checked) -> list[str]:
    """``<rule>:<column>=<rows>`` per contract warning, from the per-row flags."""
    counts: dict[str, int] = {}
    for row in checked.contract_flags or []:
        for flag in row:
            key = flag.removeprefix("contract:")
            counts[key] = counts.get(key, 0) + 1
    return [f"{k}={n}" for k, n in counts.items()]
