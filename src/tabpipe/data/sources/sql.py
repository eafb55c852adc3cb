"""SQL sources through SQLAlchemy: a table or a query, streamed in chunks to Parquet.

Rows come through a server-side cursor (``stream_results``) in chunks of
``chunk_rows``, each written as a Parquet part, so a table larger than
memory streams. Credentials come from environment variables or a
credentials file and are never stored or printed.

Incremental loads: with ``watermark`` set, only rows whose watermark column
is above the parent snapshot's high-water mark are read; the new snapshot
holds the parent's rows followed by the new ones, and records the parent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL, make_url

from tabpipe.data.snapshots import IngestReport, SnapshotRecord, Staging
from tabpipe.data.sources.spec import SqlSource
from tabpipe.errors import SourceError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_url(spec: SqlSource) -> tuple[URL, list[str]]:
    """The connection URL with its secrets filled in, and the secrets (to scrub from messages)."""
    secrets: list[str] = []

    def env(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise SourceError(
                f"sql source: environment variable {match.group(1)} (in url) is not set"
            )
        secrets.append(value)
        return value

    try:
        url = make_url(_ENV_REF.sub(env, spec.url))
    except sa.exc.ArgumentError as exc:
        raise SourceError(
            f"sql source: {spec.describe()['url']!r} is not a database URL: {exc}"
        ) from exc
    if spec.credentials_file:
        url = _from_credentials_file(url, Path(spec.credentials_file), secrets)
    if spec.password_env:
        password = os.environ.get(spec.password_env)
        if password is None:
            raise SourceError(
                f"sql source {url.render_as_string(hide_password=True)}: environment variable "
                f"{spec.password_env} (password_env) is not set"
            )
        secrets.append(password)
        url = url.set(password=password)
    return url, [s for s in secrets if s]


def _from_credentials_file(url: URL, path: Path, secrets: list[str]) -> URL:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"credentials file {path}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise SourceError(f"credentials file {path}: expected keys such as password, username, url")
    if "url" in data:
        url = make_url(str(data["url"]))
        if url.password:
            secrets.append(str(url.password))
    if "username" in data:
        url = url.set(username=str(data["username"]))
    if "password" in data:
        secrets.append(str(data["password"]))
        url = url.set(password=str(data["password"]))
    return url


class _Scrub:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def __call__(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _statement(spec: SqlSource, high_water: Any) -> sa.Select[Any]:
    if spec.table:
        schema, _, name = spec.table.rpartition(".")
        base: Any = sa.table(name, schema=schema or None)
    else:
        base = sa.text(f"({spec.query}) AS tabpipe_src")
    stmt = sa.select(sa.text("*")).select_from(base)
    if spec.watermark:
        column: sa.ColumnClause[Any] = sa.column(spec.watermark)
        if high_water is not None:
            stmt = stmt.where(column > sa.bindparam("tabpipe_hwm", high_water))
        stmt = stmt.order_by(column)
    return stmt


def _to_json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, dt.datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool | int):
        return {"type": "int", "value": int(value)}
    if isinstance(value, float | Decimal):
        return {"type": "decimal", "value": str(value)}
    return {"type": "str", "value": str(value)}


def _from_json_value(data: dict[str, Any]) -> Any:
    kind, value = data["type"], data["value"]
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "int":
        return int(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def _parent_high_water(spec: SqlSource, parent: SnapshotRecord | None) -> tuple[Any, str | None]:
    """The parent's high-water mark when it came from the same query with the same watermark."""
    if parent is None or not spec.watermark:
        return None, None
    src = parent.source
    same = (
        src.get("kind") == "sql"
        and src.get("watermark") == spec.watermark
        and src.get("table") == spec.table
        and src.get("query") == spec.query
        and "high_water_mark" in src
    )
    if not same:
        return None, None
    return _from_json_value(src["high_water_mark"]), parent.id


def _column(values: list[Any], name: str, staging: Staging) -> pa.Array:
    if any(isinstance(v, Decimal) for v in values):
        if not any(w.startswith(f"column {name!r}: exact decimals") for w in staging.warnings):
            staging.warnings.append(f"column {name!r}: exact decimals read as floating point")
        values = [float(v) if isinstance(v, Decimal) else v for v in values]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        if not any(w.startswith(f"column {name!r}: read as text") for w in staging.warnings):
            staging.warnings.append(
                f"column {name!r}: read as text (values of a type Parquet lacks)"
            )
        return pa.array([None if v is None else _text(v) for v in values], type=pa.string())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def ingest_sql(
    spec: SqlSource, staging: Staging, report: IngestReport, parent: SnapshotRecord | None
) -> str | None:
    """Stage the rows of a table or query; return the parent id, or "unchanged"."""
    url, secrets = resolve_url(spec)
    scrub = _Scrub(secrets)
    where = f"sql {url.render_as_string(hide_password=True)} " + (
        f"table {spec.table}" if spec.table else "query"
    )
    high_water, parent_id = _parent_high_water(spec, parent)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SourceError(f"{where}: cannot use this URL: {scrub(exc)}") from exc
    rows, new_high = 0, high_water
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SourceError(
                f"{where}: cannot connect: {scrub(exc)}. Check that the server runs and that "
                "host, port, database and credentials are right."
            ) from exc
        with conn:
            if parent_id is not None and parent is not None:
                shutil.copyfile(parent.data, staging.next_part())
            if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
                rows, new_high = _read_pg_copy(conn, spec, staging, high_water, where, scrub)
            else:
                rows, new_high = _read_chunks(conn, spec, staging, high_water, where, scrub)
    finally:
        engine.dispose()
    if rows == 0:
        if parent_id is not None:
            return "unchanged"
        raise SourceError(f"{where}: the query returned no rows; nothing registered")
    if spec.watermark and new_high is not None:
        report.source = {**report.source, "high_water_mark": _to_json_value(new_high)}
    if parent_id is not None:
        report.warnings.append(f"incremental: {rows} new rows above the parent's high-water mark")
    return parent_id


def _read_chunks(
    conn: sa.Connection,
    spec: SqlSource,
    staging: Staging,
    high_water: Any,
    where: str,
    scrub: _Scrub,
) -> tuple[int, Any]:
    """Any database: a server-side cursor, ``chunk_rows`` rows per Parquet part."""
    rows, new_high = 0, high_water
    try:
        result = conn.execution_options(stream_results=True, yield_per=spec.chunk_rows).execute(
            _statement(spec, high_water)
        )
        names = list(result.keys())
    except sa.exc.DBAPIError as exc:
        raise SourceError(
            f"{where}: the query failed: {scrub(exc)}; nothing was registered"
        ) from exc
    chunk_no = 0
    try:
        for chunk in result.partitions():
            chunk_no += 1
            columns: list[Any] = list(zip(*chunk, strict=True)) if chunk else [() for _ in names]
            table = pa.table(
                {n: _column(list(col), n, staging) for n, col in zip(names, columns, strict=True)}
            )
            pq.write_table(table, staging.next_part())
            rows += len(chunk)
            if spec.watermark:
                new_high = _max_watermark(chunk, names.index(spec.watermark), new_high)
    except sa.exc.DBAPIError as exc:
        raise SourceError(
            f"{where}: reading failed after {rows} rows (chunk {chunk_no + 1}): {scrub(exc)}; "
            "nothing was registered"
        ) from exc
    return rows, new_high


def _read_pg_copy(
    conn: sa.Connection,
    spec: SqlSource,
    staging: Staging,
    high_water: Any,
    where: str,
    scrub: _Scrub,
) -> tuple[int, Any]:
    """PostgreSQL through psycopg: COPY TO STDOUT, parsed by Arrow (see pgcopy)."""
    from psycopg import sql as psql

    from tabpipe.data.sources.pgcopy import copy_to_parquet

    dbapi: Any = conn.connection.dbapi_connection
    if spec.table:
        base: Any = psql.Identifier(*spec.table.split("."))
    else:
        base = psql.SQL(f"({spec.query}) AS tabpipe_src")  # type: ignore[arg-type]
    query = psql.SQL("SELECT * FROM {}").format(base)
    if spec.watermark:
        column = psql.Identifier(spec.watermark)
        if high_water is not None:
            query = psql.SQL("{} WHERE {} > {}").format(query, column, psql.Literal(high_water))
        query = psql.SQL("{} ORDER BY {}").format(query, column)
    text = query.as_string(dbapi)
    try:
        return copy_to_parquet(
            dbapi,
            text,
            (),
            staging,
            watermark=spec.watermark,
            on_column_warning=staging.warnings.append,
        )
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.Error | pa.ArrowInvalid):
            raise SourceError(
                f"{where}: the query failed: {scrub(exc)}; nothing was registered"
            ) from exc
        raise


def _max_watermark(chunk: Any, index: int, current: Any) -> Any:
    values = [row[index] for row in chunk if row[index] is not None]
    if not values:
        return current
    top = max(values)
    return top if current is None or top > current else current


__all__ = ["ingest_sql", "resolve_url"]
