"""File sources: CSV/TSV, Parquet, JSON/JSONL and Excel; globs, gzip/zstd, fsspec URLs.

Delimited text and Parquet stream through DuckDB straight into the staging
Parquet file (``COPY ... TO``), so memory stays bounded whatever the file
size. Rows DuckDB cannot parse are collected from its rejects table: counted,
sampled, quarantined or turned into an error, never dropped silently.
"""

from __future__ import annotations

import glob
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tabpipe.data.snapshots import Staging, _sql_str, duck
from tabpipe.data.sources.records import RecordWriter
from tabpipe.data.sources.spec import FileSource
from tabpipe.errors import SourceError

DEFAULT_NA = ("", "NA", "N/A", "NaN", "null", "NULL", "?")
#: No BOOLEAN candidate: 'Yes'/'No' stay the user's words, not True/False.
TYPE_CANDIDATES = "['BIGINT', 'DOUBLE', 'DATE', 'TIMESTAMP', 'VARCHAR']"
_COMPRESSED = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
}


class Files:
    """The concrete files behind a path, glob or URL, and how DuckDB reaches them."""

    def __init__(self, spec: FileSource) -> None:
        self.spec = spec
        self.fs: Any = None
        path = spec.path.removeprefix("file://")
        if "://" in path:
            import fsspec

            self.fs, _ = fsspec.core.url_to_fs(path)
            protocol = path.split("://", 1)[0]
            found = sorted(self.fs.glob(path)) if glob.has_magic(path) else [path]
            self.paths = [p if "://" in p else f"{protocol}://{p.lstrip('/')}" for p in found]
            if protocol == "memory":
                self.paths = [f"memory://{p.split('://', 1)[1].lstrip('/')}" for p in self.paths]
        elif Path(path).expanduser().is_dir():
            folder = Path(path).expanduser()
            self.paths = sorted(str(p) for p in folder.iterdir() if _known(p.name))
            if not self.paths:
                raise SourceError(
                    f"{path}: the folder holds no data file ({', '.join(sorted(_FORMATS))}); "
                    "give a folder of data files or a glob"
                )
        else:
            expanded = str(Path(path).expanduser())
            self.paths = (
                sorted(glob.glob(expanded))  # noqa: PTH207 (absolute patterns)
                if glob.has_magic(expanded)
                else [expanded]
            )
        self._check()

    def _check(self) -> None:
        where = self.spec.path
        if not self.paths:
            raise SourceError(f"{where}: no file matches this pattern; check the path")
        for path in self.paths:
            if self.fs is None:
                p = Path(path)
                if not p.exists():
                    raise SourceError(f"{path}: no such file; give the path of a data file")
                if p.is_dir():
                    raise SourceError(
                        f"{path}: is a folder; give a file or a glob such as dir/*.csv"
                    )
                if p.stat().st_size == 0:
                    raise SourceError(
                        f"{path}: the file is empty; a header and data rows are needed"
                    )
            elif not self.fs.exists(path):
                raise SourceError(f"{path}: no such file")

    @property
    def format(self) -> str:
        if self.spec.format != "auto":
            return self.spec.format
        name = self.paths[0].lower()
        for suffix in _COMPRESSED:
            name = name.removesuffix(suffix)
        fmt = _FORMATS.get(Path(name).suffix)
        if fmt is None:
            raise SourceError(
                f"{self.paths[0]}: cannot tell the format from the name; set format to one of "
                f"{', '.join(sorted(set(_FORMATS.values())))}"
            )
        return fmt

    def connect(self, staging: Staging) -> duckdb.DuckDBPyConnection:
        con = duck(staging.folder)
        if self.fs is not None:
            con.register_filesystem(self.fs)
        return con

    def open_bytes(self, path: str) -> Any:
        """A binary stream of the decompressed file."""
        codec = next((c for s, c in _COMPRESSED.items() if path.lower().endswith(s)), None)
        raw: Any = self.fs.open(path, "rb") if self.fs is not None else pa.OSFile(path, "rb")
        if codec is None:
            return raw
        return pa.CompressedInputStream(raw if self.fs is None else pa.PythonFile(raw), codec)

    def head_bytes(self, path: str, size: int = 1 << 16) -> bytes:
        with self.open_bytes(path) as stream:
            data: bytes = stream.read(size)
        return data


def _known(name: str) -> bool:
    """Whether a file name (maybe compressed) has a data format's suffix; hidden files not."""
    lower = name.lower()
    for suffix in _COMPRESSED:
        lower = lower.removesuffix(suffix)
    return not name.startswith(".") and Path(lower).suffix in _FORMATS


def ingest_files(spec: FileSource, staging: Staging) -> None:
    """Write the rows of ``spec`` into ``staging``; bad rows per ``spec.bad_rows``."""
    files = Files(spec)
    fmt = files.format
    if fmt in {"csv", "tsv"}:
        _delimited(files, fmt, staging)
    elif fmt == "parquet":
        _parquet(files, staging)
    elif fmt in {"json", "jsonl"}:
        _json(files, fmt, staging)
    else:
        _excel(files, staging)


# delimited text ---------------------------------------------------------------
def _csv_options(files: Files, fmt: str, staging: Staging) -> str:
    opts = files.spec.csv
    encoding = opts.encoding or _detect_encoding(files, staging)
    delimiter = opts.delimiter or ("\t" if fmt == "tsv" else _detect_spaced_comma(files))
    parts = [
        f"encoding='{encoding}'",
        f"auto_type_candidates={TYPE_CANDIDATES}",
        "store_rejects=true",
        "rejects_table='tp_rejects'",
        "rejects_scan='tp_scans'",
    ]
    nulls = opts.na_values if opts.na_values is not None else DEFAULT_NA
    parts.append("nullstr=[" + ", ".join(f"'{_sql_str(v)}'" for v in nulls) + "]")
    if delimiter:
        parts.append(f"delim='{_sql_str(delimiter)}'")
    if opts.columns:
        parts.append("names=[" + ", ".join(f"'{_sql_str(c)}'" for c in opts.columns) + "]")
        if opts.header is None:
            parts.append("header=false")
    if opts.header is not None:
        parts.append(f"header={str(opts.header).lower()}")
    if opts.quote is not None:
        parts.append(f"quote='{_sql_str(opts.quote)}'")
    if opts.escape is not None:
        parts.append(f"escape='{_sql_str(opts.escape)}'")
    if opts.skip_rows:
        parts.append(f"skip={opts.skip_rows}")
    return ", ".join(parts)


def _detect_encoding(files: Files, staging: Staging) -> str:
    head = files.head_bytes(files.paths[0])
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sample's end
            staging.warnings.append(
                f"{files.paths[0]}: not UTF-8 (byte {exc.start}); read as latin-1. "
                "Declare csv.encoding to choose another."
            )
            return "latin-1"
    return "utf-8"


def _detect_spaced_comma(files: Files) -> str | None:
    """Detect a ', ' separator (every comma followed by a space), as in the UCI adult data."""
    text = files.head_bytes(files.paths[0]).decode("utf-8", errors="replace")
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()][:-1] or text.splitlines()[:1]
    spaced = all(ln.count(",") > 0 and ln.count(",") == ln.count(", ") for ln in lines)
    return ", " if lines and spaced and '"' not in text else None


def _schema_per_file(
    con: duckdb.DuckDBPyConnection, reader: str, paths: list[str]
) -> list[dict[str, str]]:
    schemas = []
    for path in paths:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM {reader.format(files=repr_list([path]))}"
        ).fetchall()
        schemas.append({str(r[0]): str(r[1]) for r in rows})
    return schemas


def repr_list(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{_sql_str(p)}'" for p in paths) + "]"


def _check_types(files: Files, schemas: list[dict[str, str]], staging: Staging) -> bool:
    """Compare each file's column types with the first's; True when they differ (then widen)."""
    first = schemas[0]
    problems = []
    for path, schema in zip(files.paths[1:], schemas[1:], strict=True):
        for column, kind in schema.items():
            if column in first and first[column] != kind:
                problems.append(
                    f"column {column!r} is {first[column]} in {files.paths[0]} but {kind} in {path}"
                )
            elif column not in first:
                problems.append(f"column {column!r} is in {path} but not in {files.paths[0]}")
    if not problems:
        return False
    if files.spec.on_type_change == "fail":
        raise SourceError(
            f"{files.spec.path}: the files disagree: {'; '.join(problems[:5])}. "
            "Fix the files, or set on_type_change: widen to read the wider type."
        )
    staging.warnings.extend(f"widened: {p}" for p in problems)
    return True


_NUMERIC = {"BIGINT", "DOUBLE"}


def _widened_csv(schemas: list[dict[str, str]]) -> str:
    """Read options giving each column a type that fits every file.

    Same columns: explicit types (numbers mixed with numbers stay DOUBLE, else
    VARCHAR), keeping the bad-row bookkeeping. Different column sets need
    DuckDB's union_by_name, which has no rejects table: any bad row then fails.
    """
    if any(list(s) != list(schemas[0]) for s in schemas[1:]):
        return ", union_by_name=true"
    types = {}
    for column in schemas[0]:
        kinds = {s[column] for s in schemas}
        if len(kinds) > 1:
            types[column] = "DOUBLE" if kinds <= _NUMERIC else "VARCHAR"
    pairs = ", ".join(f"'{_sql_str(c)}': '{t}'" for c, t in types.items())
    return f", types={{{pairs}}}"


def _delimited(files: Files, fmt: str, staging: Staging) -> None:
    con = files.connect(staging)
    try:
        options = _csv_options(files, fmt, staging)
        reader = "read_csv({files}, " + options + "{extra})"
        widen = False
        if len(files.paths) > 1:
            schemas = _schema_per_file(con, reader.replace("{extra}", ""), files.paths)
            widen = _check_types(files, schemas, staging)
        extra = _widened_csv(schemas) if widen else ""
        query = reader.format(files=repr_list(files.paths), extra=extra)
        strict = "union_by_name" in extra
        if strict:
            for option in (
                "store_rejects=true, ",
                "rejects_table='tp_rejects', ",
                "rejects_scan='tp_scans', ",
            ):
                query = query.replace(option, "")
        try:
            con.execute(
                f"COPY (SELECT * FROM {query}) TO '{_sql_str(str(staging.data))}' (FORMAT parquet)"
            )
        except duckdb.Error as exc:
            raise SourceError(
                f"{files.spec.path}: cannot be read as {fmt.upper()}: {_first(exc)}"
            ) from exc
        rows = int(pq.read_metadata(staging.data).num_rows)
        if not strict:
            _collect_rejects(con, files.spec, staging, rows)
        if rows == 0:
            raise SourceError(
                f"{files.spec.path}: holds a header but no data rows; nothing registered"
            )
    finally:
        con.close()


def _collect_rejects(
    con: duckdb.DuckDBPyConnection, spec: FileSource, staging: Staging, rows: int
) -> None:
    result = con.execute(
        "SELECT s.file_path, e.line, e.column_name, e.error_type, e.csv_line, e.error_message "
        "FROM tp_rejects e JOIN tp_scans s USING (scan_id, file_id) "
        "ORDER BY s.file_path, e.line"
    )
    seen: set[tuple[str, int]] = set()
    keep = spec.bad_rows == "quarantine"
    while batch := result.fetchmany(10_000):
        for path, line, column, kind, raw, message in batch:
            if (path, line) in seen:
                continue
            seen.add((path, line))
            where = f"{path}: line {line}" + (f", column {column!r}" if column else "")
            staging.bad(where, f"{kind}: {message}", raw or "", keep=keep)
    check_budget(spec.path, spec.bad_rows, spec.max_bad_fraction, staging, rows)


def check_budget(where: str, mode: str, budget: float, staging: Staging, good_rows: int) -> None:
    """Fail when bad rows are not allowed, or when there are more than the error budget."""
    if staging.bad_rows == 0:
        return
    first = staging.samples[0]
    total = staging.bad_rows + good_rows
    if mode == "fail":
        raise SourceError(
            f"{where}: {staging.bad_rows} bad row(s) of {total}; first at {first.position}: "
            f"{first.cause} (row: {first.raw[:200]!r}). Fix the data, declare the format "
            "(delimiter, encoding, columns), or set bad_rows: quarantine to set them aside."
        )
    if staging.bad_rows > budget * total:
        raise SourceError(
            f"{where}: {staging.bad_rows} bad rows of {total} exceed the error budget "
            f"(max_bad_fraction {budget}); first at {first.position}: {first.cause}. "
            "Nothing was registered."
        )


def _first(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# Parquet -----------------------------------------------------------------------
def _parquet(files: Files, staging: Staging) -> None:
    con = files.connect(staging)
    try:
        widen = False
        if len(files.paths) > 1:
            schemas = _schema_per_file(con, "read_parquet({files})", files.paths)
            widen = _check_types(files, schemas, staging)
        query = f"read_parquet({repr_list(files.paths)}{', union_by_name=true' if widen else ''})"
        try:
            con.execute(
                f"COPY (SELECT * FROM {query}) TO '{_sql_str(str(staging.data))}' (FORMAT parquet)"
            )
        except duckdb.Error as exc:
            raise SourceError(
                f"{files.spec.path}: cannot be read as Parquet: {_first(exc)}"
            ) from exc
    finally:
        con.close()


# JSON --------------------------------------------------------------------------
def _json(files: Files, fmt: str, staging: Staging) -> None:
    writer = RecordWriter(staging, keep_bad=_keep(files))
    for path in files.paths:
        if fmt == "jsonl":
            for number, line in _lines(files, path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    staging.bad(
                        f"{path}: line {number}", f"not JSON: {exc.msg}", line, keep=_keep(files)
                    )
                    continue
                writer.add(record, f"{path}: line {number}")
        else:
            with files.open_bytes(path) as stream:
                try:
                    doc = json.loads(stream.read())
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise SourceError(f"{path}: not a JSON document: {exc}") from exc
            records = doc if isinstance(doc, list) else [doc]
            for i, record in enumerate(records):
                writer.add(record, f"{path}: record {i}")
    writer.close()
    check_budget(
        files.spec.path, files.spec.bad_rows, files.spec.max_bad_fraction, staging, writer.rows
    )


def _keep(files: Files) -> bool:
    return files.spec.bad_rows == "quarantine"


def _lines(files: Files, path: str) -> Iterator[tuple[int, str]]:
    with files.open_bytes(path) as stream:
        buffer = b""
        number = 0
        while chunk := stream.read(1 << 20):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                number += 1
                yield number, raw.decode("utf-8", errors="replace")
        if buffer:
            yield number + 1, buffer.decode("utf-8", errors="replace")


# Excel -------------------------------------------------------------------------
def _excel(files: Files, staging: Staging) -> None:
    import pandas as pd

    sheet = files.spec.sheet if files.spec.sheet is not None else 0
    na = list(files.spec.csv.na_values if files.spec.csv.na_values is not None else DEFAULT_NA)
    for path in files.paths:
        try:
            with files.open_bytes(path) as stream:
                frame = pd.read_excel(
                    io.BytesIO(stream.read()),
                    sheet_name=sheet,
                    engine="openpyxl",
                    na_values=na,
                    keep_default_na=False,
                )
        except ImportError as exc:
            raise SourceError("reading .xlsx needs openpyxl: pip install openpyxl") from exc
        except (ValueError, KeyError, OSError) as exc:
            raise SourceError(f"{path}: cannot be read as Excel (sheet {sheet!r}): {exc}") from exc
        frame.columns = [str(c) for c in frame.columns]
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), staging.next_part())


__all__ = ["DEFAULT_NA", "Files", "check_budget", "ingest_files"]
