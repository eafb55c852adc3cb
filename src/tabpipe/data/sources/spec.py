"""Source specs: where data comes from, as validated objects.

A pipeline spec's ``source`` is one of these, chosen by its ``kind``:

- ``file``: CSV/TSV, Parquet, JSON/JSONL, Excel; a path, a glob or an fsspec URL
- ``sql``: a table or a query through SQLAlchemy, optionally incremental
- ``http``: a paginated JSON API
- ``mqtt``: JSON messages from topics, buffered into time windows
- ``snapshot``: an existing snapshot, by id or as ``name@latest``

A plain string is a file path, or a snapshot reference when it looks like one
(``customers@latest``, ``customers@3``, or a 32-hex-digit snapshot id).
Secrets never live in these objects: they name environment variables or a
credentials file, and :meth:`describe` returns what may be stored and shown.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SNAPSHOT_ID = re.compile(r"^[0-9a-f]{32}$")
SNAPSHOT_REF = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)@(?P<which>latest|\d+)$")
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@]+:)(?P<secret>[^@]*)(?P<tail>@)")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def safe_name(text: str) -> str:
    """A snapshot or model name made of letters, digits, '-' and '_'."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_")
    return cleaned or "data"


def redact_url(url: str) -> str:
    """Hide a password written into a URL (``scheme://user:secret@host``)."""
    return _URL_PASSWORD.sub(r"\g<head>***\g<tail>", url)


BadRows = Literal["fail", "quarantine"]


class _SourceBase(_Spec):
    name: str | None = Field(
        None, description="Snapshot name; defaults to one derived from the source."
    )
    bad_rows: BadRows = Field(
        "fail",
        description="What to do with a row that cannot be read: fail the ingest, or quarantine "
        "it into quarantine.jsonl beside the snapshot and count it in the report.",
    )
    max_bad_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="With bad_rows: quarantine, the share of bad rows past which the ingest fails.",
    )

    @property
    def stem(self) -> str:
        return safe_name(self.name or self._default_name())

    def _default_name(self) -> str:
        return "data"

    def describe(self) -> dict[str, Any]:
        """What may be stored and shown: no secrets."""
        return self.model_dump(mode="json", exclude_none=True)


class CsvOptions(_Spec):
    """How to read delimited text. ``None`` means: detect it."""

    delimiter: str | None = Field(None, description="Field separator, e.g. ',', ';', '\\t', ', '.")
    header: bool | None = Field(None, description="Whether the first line holds column names.")
    columns: tuple[str, ...] | None = Field(
        None, description="Column names (for files without a header)."
    )
    encoding: str | None = Field(
        None, description="utf-8, utf-16 or latin-1 (detected when unset)."
    )
    na_values: tuple[str, ...] | None = Field(
        None,
        description="Whole-field missing-value markers; default: '', NA, N/A, NaN, null, NULL, ?.",
    )
    quote: str | None = None
    escape: str | None = None
    skip_rows: int = Field(0, ge=0)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        norm = value.lower().replace("_", "-")
        aliases = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1", "utf16": "utf-16"}
        norm = aliases.get(norm, norm)
        if norm not in {"utf-8", "utf-16", "latin-1"}:
            raise ValueError(f"unsupported encoding {value!r}; valid: utf-8, utf-16, latin-1")
        return norm


FileFormat = Literal["auto", "csv", "tsv", "parquet", "json", "jsonl", "xlsx"]


class FileSource(_SourceBase):
    """A file, a glob of files (``data/*.csv``) or an fsspec URL (``memory://x.csv``)."""

    kind: Literal["file"] = "file"
    path: str = Field(description="A path, a glob or an fsspec URL.")
    format: FileFormat = "auto"
    csv: CsvOptions = CsvOptions()
    sheet: str | int | None = Field(None, description="Excel sheet name or index (default first).")
    on_type_change: Literal["fail", "widen"] = Field(
        "fail",
        description="When files of a glob disagree on a column's type: fail, or widen the type "
        "(e.g. to text) and say so in the report.",
    )

    def _default_name(self) -> str:
        base = PurePosixPath(self.path.split("://", 1)[-1]).name
        return base.split(".")[0].replace("*", "")


#: The simple form a skeleton spec used; kept as the name of the file source.
SourceSpec = FileSource


class SqlSource(_SourceBase):
    """A table or a query of any SQLAlchemy database."""

    kind: Literal["sql"]
    url: str = Field(
        description="SQLAlchemy URL without a password; '${VAR}' parts are read from the "
        "environment, e.g. postgresql+psycopg://app@db/sales."
    )
    table: str | None = None
    query: str | None = None
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    credentials_file: str | None = Field(
        None,
        description="A YAML/JSON file with 'password' (and optionally 'username' or 'url'); "
        "kept outside the workspace.",
    )
    watermark: str | None = Field(
        None,
        description="Column for incremental loads: only rows above the parent snapshot's "
        "high-water mark are read, and appended to the parent's rows.",
    )
    chunk_rows: int = Field(100_000, ge=1, description="Rows fetched and written per chunk.")

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        match = _URL_PASSWORD.search(value)
        if match and match.group("secret") and not match.group("secret").startswith("${"):
            raise ValueError(
                "the URL holds a password; remove it and set password_env (an environment "
                "variable) or credentials_file instead"
            )
        return value

    @field_validator("query")
    @classmethod
    def _strip_query(cls, value: str | None) -> str | None:
        return value.strip().rstrip(";").strip() if value is not None else None

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    def _default_name(self) -> str:
        return (self.table or "query").split(".")[-1]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["url"] = redact_url(self.url)
        return out


class Pagination(_Spec):
    """How to get the next page of a JSON API."""

    style: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_param: str = "page"
    start_page: int = 1
    offset_param: str = "offset"
    size_param: str | None = Field("limit", description="Query parameter for the page size.")
    page_size: int = Field(100, ge=1)
    cursor_path: str = Field(
        "next_cursor", description="Dotted path of the next cursor in a response."
    )
    cursor_param: str = "cursor"
    max_pages: int = Field(10_000, ge=1)


class HttpSource(_SourceBase):
    """A JSON API: records at ``records_path`` of each response, across pages."""

    kind: Literal["http"]
    url: str
    params: dict[str, str] = {}
    headers: dict[str, str] = Field({}, description="Extra headers (not secret ones).")
    records_path: str | None = Field(None, description="Dotted path to the list of records.")
    pagination: Pagination = Pagination()
    auth_header: str = "Authorization"
    auth_env: str | None = Field(
        None, description="Environment variable whose value is sent in auth_header."
    )
    max_retries: int = Field(5, ge=0)
    backoff: float = Field(
        0.5, ge=0.0, description="First retry delay in seconds; doubles each time."
    )
    rate_limit: float | None = Field(
        None, gt=0, description="At most this many requests per second."
    )
    timeout: float = Field(30.0, gt=0)

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.lower() in {"authorization", "x-api-key", "cookie", "proxy-authorization"}:
                raise ValueError(
                    f"header {key!r} is secret; name it in auth_header and set auth_env"
                )
        return value

    def _default_name(self) -> str:
        path = self.url.split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1]


class MqttSource(_SourceBase):
    """JSON messages from MQTT topics, one snapshot per time window."""

    kind: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = 1883
    topics: tuple[str, ...] = Field(min_length=1)
    qos: Literal[0, 1, 2] = 1
    client_id: str | None = Field(
        None,
        description="Persistent session id (default: tabpipe-<name>), so a reconnect gets "
        "what was published meanwhile.",
    )
    window_seconds: float = Field(60.0, gt=0)
    username_env: str | None = None
    password_env: str | None = None
    topic_column: str | None = Field("topic", description="Column holding each message's topic.")
    time_column: str | None = Field("received_at", description="Column holding each arrival time.")

    def _default_name(self) -> str:
        return self.topics[0].replace("/", "_").replace("#", "").replace("+", "")


class SnapshotRef(_SourceBase):
    """An existing snapshot: ``name@latest``, ``name@N`` (N-th, from 1) or an id."""

    kind: Literal["snapshot"]
    ref: str

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        if not (SNAPSHOT_ID.match(value) or SNAPSHOT_REF.match(value)):
            raise ValueError(
                f"snapshot reference {value!r} is neither an id (32 hex digits) nor "
                "'name@latest' / 'name@N'"
            )
        return value

    def _default_name(self) -> str:
        return self.ref.split("@", 1)[0]


Source = Annotated[
    FileSource | SqlSource | HttpSource | MqttSource | SnapshotRef, Field(discriminator="kind")
]
SOURCE_KINDS = ("file", "sql", "http", "mqtt", "snapshot")


def normalize_source(raw: Any) -> Any:
    """Accept the short forms: a string, or a mapping without ``kind``."""
    if isinstance(raw, str | Path):
        text = str(raw)
        if SNAPSHOT_ID.match(text) or SNAPSHOT_REF.match(text):
            return {"kind": "snapshot", "ref": text}
        return {"kind": "file", "path": text}
    if isinstance(raw, dict) and "kind" not in raw:
        if "ref" in raw:
            return {"kind": "snapshot", **raw}
        return {"kind": "file", **raw}
    return raw


def resolve_relative(raw: Any, base: Path) -> Any:
    """Make a file source's path and a credentials file relative to ``base`` (a spec's folder)."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    for key in ("path", "credentials_file"):
        value = out.get(key)
        if key == "path" and out.get("kind") != "file":
            continue
        if (
            isinstance(value, str)
            and value
            and "://" not in value
            and not Path(value).is_absolute()
        ):
            out[key] = str((base / value).resolve())
    return out


__all__ = [
    "SOURCE_KINDS",
    "CsvOptions",
    "FileSource",
    "HttpSource",
    "MqttSource",
    "Pagination",
    "SnapshotRef",
    "Source",
    "SourceSpec",
    "SqlSource",
    "normalize_source",
    "redact_url",
    "resolve_relative",
    "safe_name",
]
