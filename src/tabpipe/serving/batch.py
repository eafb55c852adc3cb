"""Local batch scoring of a file of any size: read, check, score and write batch by batch.

A Parquet file streams in record batches (:meth:`pyarrow.parquet.ParquetFile.iter_batches`);
any other source (CSV, JSON, a glob, a URL) is first staged to Parquet by the ingestion
reader (DuckDB, streaming), so its columns get the types ingestion gives them, then
streams the same way. Each batch is checked column by column (numpy arrays, see
:meth:`~tabpipe.packaging.signature.Signature.check`), scored, handed to ``on_batch``
and appended to the output under a temporary name, renamed once complete: memory is
bounded by the batch size, not the file size.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tabpipe.data.snapshots import Staging, merge_parts, plain_dtypes
from tabpipe.data.sources.files import ingest_files
from tabpipe.data.sources.spec import FileSource
from tabpipe.errors import RequestError, SourceError
from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.signature import Checked
from tabpipe.serving.runtime import Prediction, Predictor

#: Rows read, checked and scored at a time.
BATCH_ROWS = 65_536
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_ROW = re.compile(r"^(column '.*?', row )(\d+):")


@dataclass(frozen=True)
class ScoredBatch:
    """One scored batch: the output rows, the checked feeds, the prediction, the time taken."""

    frame: pd.DataFrame
    checked: Checked
    prediction: Prediction
    elapsed_ms: float


def feature_columns(frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """The signature's columns of ``frame`` as numpy arrays (the vectorised check path)."""
    return {c: frame[c].to_numpy() for c in names if c in frame.columns}


def with_predictions(
    frame: pd.DataFrame, prediction: Prediction, manifest: Manifest
) -> pd.DataFrame:
    """Input columns, then ``prediction``, then ``proba_<class>`` per class for classifiers."""
    scored = frame.copy()
    scored["prediction"] = prediction.values
    if prediction.proba is not None:
        for i, cls in enumerate(manifest.classes or []):
            scored[f"proba_{cls}"] = prediction.proba[:, i]
    return scored


def score_frame(predictor: Predictor, frame: pd.DataFrame) -> ScoredBatch:
    """Check and score one batch of rows."""
    started = time.perf_counter()
    signature = predictor.manifest.signature
    checked = signature.check(feature_columns(frame, signature.names))
    prediction = predictor.predict(checked.feeds)
    elapsed = (time.perf_counter() - started) * 1000
    return ScoredBatch(
        with_predictions(frame, prediction, predictor.manifest), checked, prediction, elapsed
    )


@contextmanager
def parquet_of(source: Path) -> Iterator[Path]:
    """``source`` itself when it is one Parquet file, else its rows staged as Parquet."""
    if source.suffix.lower() in PARQUET_SUFFIXES and source.is_file():
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="tabpipe-score-") as tmp:
        staging = Staging(Path(tmp))
        ingest_files(FileSource(path=str(source)), staging)
        if staging.has_parts:
            merge_parts(staging)
        yield staging.data


def read_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The rows of a Parquet file as pandas batches, in file order."""
    # pre_buffer would keep every row group's bytes read so far until the end of the file
    reader = pq.ParquetFile(path, pre_buffer=False)
    if reader.metadata.num_rows == 0:
        raise SourceError(f"{path}: holds no data rows")
    for batch in reader.iter_batches(batch_size=batch_rows):
        yield plain_dtypes(batch.to_pandas())


class OutputWriter:
    """Appends scored batches to a Parquet or CSV file under a temporary name."""

    def __init__(self, output: Path, input_schema: pa.Schema) -> None:
        self.output = output
        self.tmp = output.with_name(f".{output.name}.tmp")
        self.parquet = output.suffix.lower() in PARQUET_SUFFIXES
        self._input = input_schema
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._csv: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if not self.parquet:
            if self._csv is None:
                self._csv = self.tmp.open("w", encoding="utf-8", newline="")
                frame.to_csv(self._csv, index=False)
            else:
                frame.to_csv(self._csv, index=False, header=False)
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._schema is None:
            self._schema = self._typed(table.schema)
            self._writer = pq.ParquetWriter(self.tmp, self._schema)
        self._writer.write_table(table.cast(self._schema))

    def _typed(self, schema: pa.Schema) -> pa.Schema:
        """A column that is all missing in the first batch takes the input file's type."""
        fields = [
            f.with_type(self._input.field(f.name).type)
            if pa.types.is_null(f.type) and f.name in self._input.names
            else f
            for f in schema
        ]
        return pa.schema(fields, metadata=schema.metadata)

    def finish(self) -> None:
        self.close()
        self.tmp.replace(self.output)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None


def score_file(
    predictor: Predictor,
    source: Path,
    output: Path,
    *,
    on_batch: Callable[[ScoredBatch], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Score every row of ``source`` into ``output`` (Parquet or CSV); return the row count.

    A bad value raises :class:`~tabpipe.errors.RequestError` naming the column and its
    row in the file; the output is then left unwritten (its temporary file removed).
    """
    rows = 0
    with parquet_of(source) as path:
        writer = OutputWriter(output, pq.read_schema(path))
        try:
            for frame in read_batches(path, batch_rows):
                try:
                    scored = score_frame(predictor, frame)
                except Exception as exc:
                    raise _in_file(exc, rows) from exc
                writer.write(scored.frame)
                if on_batch is not None:
                    on_batch(scored)
                rows += len(frame)
            writer.finish()
        finally:
            writer.close()
            writer.tmp.unlink(missing_ok=True)
    return rows


def _in_file(exc: Exception, offset: int) -> Exception:
    """A batch's error with its row number counted from the start of the file."""
    if not isinstance(exc, RequestError) or offset == 0:
        return exc
    message = _ROW.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + offset}:", str(exc), count=1)
    return RequestError(message, field=exc.field)
