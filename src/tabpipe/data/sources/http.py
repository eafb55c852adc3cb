"""HTTP JSON APIs through httpx: pagination, auth from the environment, retries, rate limit.

Pagination styles: ``page`` (page number), ``offset`` (row offset), ``cursor``
(a next-cursor field in each response) and ``link`` (the ``Link: <...>;
rel="next"`` header). 429 and 5xx responses and dropped connections are
retried with exponential backoff (honouring ``Retry-After``); other 4xx
responses fail at once. Records go to Parquet parts as pages arrive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tabpipe.data.snapshots import Staging
from tabpipe.data.sources.files import check_budget
from tabpipe.data.sources.records import RecordWriter
from tabpipe.data.sources.spec import HttpSource
from tabpipe.errors import SourceError

MAX_RETRY_AFTER = 60.0


def dig(doc: Any, path: str | None) -> Any:
    """The value at a dotted path (``data.items``) of a JSON document; None when absent."""
    if not path:
        return doc
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


class _Fetcher:
    """GETs with retries, backoff and a rate limit."""

    def __init__(self, spec: HttpSource, client: httpx.Client) -> None:
        self.spec = spec
        self.client = client
        self.min_interval = 1.0 / spec.rate_limit if spec.rate_limit else 0.0
        self._last = 0.0
        self.requests = 0
        self.retries = 0

    def _wait_rate(self) -> None:
        if self.min_interval:
            pause = self._last + self.min_interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last = time.monotonic()

    def get(self, url: str, params: dict[str, Any], page: int) -> httpx.Response:
        last = ""
        attempts = self.spec.max_retries + 1
        for attempt in range(attempts):
            self._wait_rate()
            self.requests += 1
            delay = self.spec.backoff * (2**attempt)
            try:
                response = self.client.get(url, params=params or None)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    last = f"HTTP {response.status_code}"
                    delay = max(delay, _retry_after(response))
                elif response.status_code >= 400:
                    raise SourceError(
                        f"http {url} (page {page}): HTTP {response.status_code}: "
                        f"{response.text[:200]!r}; check the URL, parameters and auth_env"
                    )
                else:
                    return response
            if attempt + 1 < attempts:
                self.retries += 1
                time.sleep(delay)
        raise SourceError(
            f"http {url} (page {page}): gave up after {attempts} attempts; last: {last}. "
            "Nothing was registered; try later or raise max_retries/backoff."
        )


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        return 0.0


def _pages(spec: HttpSource, fetch: _Fetcher) -> Iterator[tuple[int, list[Any]]]:
    pag = spec.pagination
    params: dict[str, Any] = dict(spec.params)
    if pag.style in {"page", "offset"} and pag.size_param:
        params[pag.size_param] = pag.page_size
    url: str | None = spec.url
    offset, number = 0, pag.start_page
    for page in range(1, pag.max_pages + 1):
        if pag.style == "page":
            params[pag.page_param] = number
        elif pag.style == "offset":
            params[pag.offset_param] = offset
        assert url is not None
        response = fetch.get(url, params, page)
        try:
            doc = response.json()
        except ValueError as exc:
            raise SourceError(
                f"http {url} (page {page}): the response is not JSON: {response.text[:200]!r}"
            ) from exc
        records = dig(doc, spec.records_path)
        if records is None and page > 1 and pag.style != "none":
            return
        if not isinstance(records, list):
            raise SourceError(
                f"http {url} (page {page}): records_path {spec.records_path!r} does not lead to "
                f"a list (found {type(records).__name__}); top-level keys: "
                f"{', '.join(doc) if isinstance(doc, dict) else type(doc).__name__}"
            )
        yield page, records
        if pag.style == "none" or not records:
            return
        if pag.style == "page":
            number += 1
            if len(records) < pag.page_size:
                return
        elif pag.style == "offset":
            offset += len(records)
            if len(records) < pag.page_size:
                return
        elif pag.style == "cursor":
            cursor = dig(doc, pag.cursor_path)
            if not cursor:
                return
            params[pag.cursor_param] = cursor
        else:  # link
            nxt = response.links.get("next", {}).get("url")
            if not nxt:
                return
            url, params = str(response.url.join(nxt)), {}
    raise SourceError(
        f"http {spec.url}: more than max_pages={pag.max_pages} pages; raise it or narrow the query"
    )


def ingest_http(spec: HttpSource, staging: Staging) -> None:
    """Stage every record of every page."""
    headers = dict(spec.headers)
    if spec.auth_env:
        token = os.environ.get(spec.auth_env)
        if token is None:
            raise SourceError(
                f"http {spec.url}: environment variable {spec.auth_env} (auth_env) is not set"
            )
        headers[spec.auth_header] = token
    writer = RecordWriter(staging, keep_bad=spec.bad_rows == "quarantine")
    with httpx.Client(timeout=spec.timeout, headers=headers, follow_redirects=True) as client:
        fetch = _Fetcher(spec, client)
        for page, records in _pages(spec, fetch):
            for i, record in enumerate(records):
                writer.add(record, f"page {page}, record {i}")
    writer.close()
    if fetch.retries:
        staging.warnings.append(f"{fetch.retries} request(s) retried ({fetch.requests} sent)")
    if writer.rows == 0 and staging.bad_rows == 0:
        raise SourceError(f"http {spec.url}: the API returned no records; nothing registered")
    check_budget(f"http {spec.url}", spec.bad_rows, spec.max_bad_fraction, staging, writer.rows)


__all__ = ["dig", "ingest_http"]
