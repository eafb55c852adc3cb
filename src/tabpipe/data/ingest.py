"""Reading a file source into a table, and the content id of a table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from tabpipe.config import SourceSpec
from tabpipe.errors import SourceError


def read_source(source: SourceSpec) -> pd.DataFrame:
    """Read a CSV or Parquet file with DuckDB into a DataFrame.

    Raises :class:`SourceError` naming the file and the cause when it cannot
    be read, is empty, or holds no rows.
    """
    path = Path(source.path)
    if not path.exists():
        raise SourceError(f"{path}: no such file; give the path of a CSV or Parquet file")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give the path of a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; a header line and data rows are needed")
    fmt = source.format
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"
    reader = (
        "read_parquet(?)"
        if fmt == "parquet"
        # No BOOLEAN candidate: 'Yes'/'No' must stay the user's words, not become True/False.
        else (
            "read_csv(?, header=true, auto_type_candidates=['BIGINT', 'DOUBLE', 'DATE', "
            "'TIMESTAMP', 'VARCHAR'])"
        )
    )
    try:
        with duckdb.connect(":memory:") as con:
            frame = con.execute(f"SELECT * FROM {reader}", [str(path)]).df()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise SourceError(f"{path}: cannot be read as {fmt.upper()}: {first}") from exc
    if frame.empty:
        raise SourceError(f"{path}: holds a header but no data rows")
    return frame


def content_id(frame: pd.DataFrame) -> str:
    """A hash of a table's column names, dtypes and values, row order included."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}\x00{column.dtype}\x00".encode())
        hashed = pd.util.hash_pandas_object(column, index=False).to_numpy(dtype=np.uint64)
        digest.update(hashed.tobytes())
    return digest.hexdigest()[:32]
