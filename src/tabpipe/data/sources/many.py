"""Many files (a glob or a folder) read in parallel, one engine task per file.

Each task reads, parses and type-checks one file with the same reader as a single
file (:func:`~tabpipe.data.sources.files.ingest_files`) and returns its rows as
Parquet bytes with its bad-row bookkeeping. The driver then checks that every file has
the first file's columns and types (an error names the file that disagrees), and
stages the parts in path order, so the snapshot is the same whichever engine ran the
tasks (the local engine runs them one after another, the Ray engine across the
cluster). Any failure raises before anything is registered.

Files that disagree on types under ``on_type_change: widen`` are read again by the
single reader, which widens the types over all files at once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from tabpipe.data.snapshots import MAX_SAMPLES, BadRow, Staging, merge_parts
from tabpipe.data.sources.files import Files, check_budget, ingest_files
from tabpipe.data.sources.spec import FileSource
from tabpipe.engine.base import Engine, TaskLost
from tabpipe.errors import SourceError, TabpipeError


@dataclass(frozen=True)
class FilePart:
    """One file read by a task: its rows as Parquet, its schema, what was set aside."""

    path: str
    parquet: bytes
    rows: int
    schema: dict[str, str]
    bad_rows: int = 0
    samples: list[BadRow] = field(default_factory=list)
    quarantine: bytes = b""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be read, and why (the reader's message names the file)."""

    path: str
    error: str


def read_file(spec: FileSource, path: str) -> FilePart | FileFailure:
    """The engine task: read one file of ``spec`` (its own options) into a :class:`FilePart`."""
    one = spec.model_copy(update={"path": path})
    with tempfile.TemporaryDirectory(prefix="tabpipe-part-") as tmp:
        staging = Staging(Path(tmp))
        try:
            ingest_files(one, staging)
            if staging.has_parts:
                merge_parts(staging)
        except TabpipeError as exc:
            return FileFailure(path, str(exc))
        table = pq.read_table(staging.data)
        quarantine = staging.quarantine.read_bytes() if staging.quarantine.exists() else b""
        return FilePart(
            path=path,
            parquet=staging.data.read_bytes(),
            rows=table.num_rows,
            schema={f.name: str(f.type) for f in table.schema},
            bad_rows=staging.bad_rows,
            samples=list(staging.samples),
            quarantine=quarantine,
            warnings=list(staging.warnings),
        )


def ingest_many(spec: FileSource, staging: Staging, engine: Engine) -> None:
    """Stage the rows of every file of ``spec`` (in path order), one engine task per file."""
    files = Files(spec)
    if len(files.paths) == 1:
        ingest_files(spec, staging)
        return
    _ = files.format  # an unknown format fails here, before any task runs
    results = engine.map(read_file, engine.share(spec), files.paths)
    parts: list[FilePart] = []
    for path, result in zip(files.paths, results, strict=True):
        if isinstance(result, TaskLost):
            raise SourceError(
                f"{path}: the engine could not read this file ({result.reason}); nothing "
                "registered. Check the cluster and ingest again."
            )
        if isinstance(result, FileFailure):
            raise SourceError(f"{spec.path}: file {result.error}; nothing registered")
        parts.append(result)
    if _disagree(spec, parts):
        ingest_files(spec, staging)  # widen: the single reader types all files at once
        return
    for part in parts:
        staging.next_part().write_bytes(part.parquet)
        staging.bad_rows += part.bad_rows
        staging.samples.extend(part.samples[: max(0, MAX_SAMPLES - len(staging.samples))])
        staging.warnings.extend(part.warnings)
        if part.quarantine:
            with staging.quarantine.open("ab") as out:
                out.write(part.quarantine)
    merge_parts(staging)
    check_budget(
        spec.path, spec.bad_rows, spec.max_bad_fraction, staging, sum(p.rows for p in parts)
    )


def _disagree(spec: FileSource, parts: list[FilePart]) -> bool:
    """Whether a file's columns or types differ from the first's (an error unless widening)."""
    first = parts[0]
    for part in parts[1:]:
        if list(part.schema) != list(first.schema):
            problem = (
                f"{part.path} has columns {', '.join(part.schema)} but {first.path} has "
                f"{', '.join(first.schema)}"
            )
        else:
            changed = [c for c in first.schema if part.schema[c] != first.schema[c]]
            if not changed:
                continue
            c = changed[0]
            problem = (
                f"column {c!r} is {first.schema[c]} in {first.path} but {part.schema[c]} "
                f"in {part.path}"
            )
        if spec.on_type_change == "fail":
            raise SourceError(
                f"{spec.path}: the files disagree: {problem}. Fix the file, or set "
                "on_type_change: widen to read the wider type; nothing registered."
            )
        return True
    return False
