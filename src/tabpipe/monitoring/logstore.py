"""Reading the prediction log and the labels attached to it, with DuckDB.

Parts are checked one by one (their Parquet footer) before the query, so a
corrupt or truncated part is skipped and reported while every other part is
still read. Labels live beside the log as their own Parquet parts
(``<workspace>/feedback/<model>/``) and are joined at read time: by
``(request_id, row)`` or by user ``key``, the latest label winning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from tabpipe.serving.predlog import PART_GLOB, log_folder

log = logging.getLogger("tabpipe.monitoring")


def feedback_folder(workspace: Path, model: str) -> Path:
    return Path(workspace) / "feedback" / model


@dataclass(frozen=True)
class SkippedPart:
    path: str
    reason: str


@dataclass
class LogRead:
    """Rows read from the log, plus the parts that could not be read and why."""

    frame: pd.DataFrame
    skipped: list[SkippedPart] = field(default_factory=list)
    parts: int = 0


def good_parts(folder: Path) -> tuple[list[Path], list[SkippedPart]]:
    """Parts whose Parquet footer reads; the others are reported, not fatal."""
    good, skipped = [], []
    for part in sorted(folder.glob(PART_GLOB)):
        try:
            meta = pq.read_metadata(part)
            if meta.num_rows == 0:
                continue
            good.append(part)
        except Exception as exc:
            skipped.append(SkippedPart(str(part), f"{type(exc).__name__}: {exc}"))
            log.warning("skipping corrupt prediction log part %s: %s", part, exc)
    return good, skipped


def _parts_sql(parts: list[Path]) -> str:
    names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
    return f"read_parquet([{names}], union_by_name = true)"


def read_log(
    workspace: Path,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    with_labels: bool = True,
) -> LogRead:
    """The logged rows of ``model`` ordered by time, with a ``label`` column when asked."""
    parts, skipped = good_parts(log_folder(workspace, model))
    if not parts:
        return LogRead(pd.DataFrame(), skipped, 0)
    where = []
    params: list[Any] = []
    if since is not None:
        where.append("p.ts >= ?")
        params.append(since)
    if until is not None:
        where.append("p.ts < ?")
        params.append(until)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        select = f"SELECT p.* FROM {_parts_sql(parts)} p {clause}"
        fb_parts, fb_skipped = good_parts(feedback_folder(workspace, model))
        skipped.extend(fb_skipped)
        if with_labels and fb_parts:
            select = _with_labels_sql(con, parts, fb_parts, clause)
        frame = con.execute(f'{select} ORDER BY ts, request_id, "row"', params).df()
    except duckdb.Error:
        # a part whose footer reads but whose data does not: read part by part
        frame, bad = _read_one_by_one(parts)
        skipped.extend(bad)
        if with_labels:
            frame = _attach_labels_pandas(frame, workspace, model)
        if since is not None:
            frame = frame[frame["ts"] >= pd.Timestamp(since)]
        if until is not None:
            frame = frame[frame["ts"] < pd.Timestamp(until)]
    finally:
        con.close()
    if with_labels and "label" not in frame:
        frame["label"] = pd.Series([None] * len(frame), dtype=object)
    return LogRead(frame.reset_index(drop=True), skipped, len(parts))


def _with_labels_sql(
    con: duckdb.DuckDBPyConnection, parts: list[Path], fb_parts: list[Path], clause: str
) -> str:
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_parts_sql(parts)}").fetchall()}
    by_key = ""
    label = "i.label"
    if "key" in cols:
        by_key = (
            "LEFT JOIN (SELECT key, arg_max(label, received_at) AS label FROM fb "
            "WHERE key IS NOT NULL GROUP BY key) k ON p.key = k.key"
        )
        label = "coalesce(i.label, k.label)"
    return (
        f"WITH fb AS (SELECT * FROM {_parts_sql(fb_parts)}) "
        f"SELECT p.*, {label} AS label FROM {_parts_sql(parts)} p "
        'LEFT JOIN (SELECT request_id, "row", arg_max(label, received_at) AS label FROM fb '
        'WHERE request_id IS NOT NULL GROUP BY request_id, "row") i '
        'ON p.request_id = i.request_id AND p."row" = i."row" '
        f"{by_key} {clause}"
    )


def _read_one_by_one(parts: list[Path]) -> tuple[pd.DataFrame, list[SkippedPart]]:
    frames, skipped = [], []
    for part in parts:
        try:
            frames.append(pq.read_table(part).to_pandas())
        except Exception as exc:
            skipped.append(SkippedPart(str(part), f"{type(exc).__name__}: {exc}"))
            log.warning("skipping unreadable prediction log part %s: %s", part, exc)
    if not frames:
        return pd.DataFrame(), skipped
    frame = pd.concat(frames, ignore_index=True).sort_values(["ts", "request_id", "row"])
    return frame, skipped


def _attach_labels_pandas(frame: pd.DataFrame, workspace: Path, model: str) -> pd.DataFrame:
    fb_parts, _ = good_parts(feedback_folder(workspace, model))
    if frame.empty or not fb_parts:
        return frame
    fb = pd.concat([pq.read_table(p).to_pandas() for p in fb_parts], ignore_index=True)
    fb = fb.sort_values("received_at")
    by_id = fb.dropna(subset=["request_id"]).drop_duplicates(["request_id", "row"], keep="last")
    out = frame.merge(by_id[["request_id", "row", "label"]], on=["request_id", "row"], how="left")
    if "key" in out:
        by_key = fb.dropna(subset=["key"]).drop_duplicates("key", keep="last")
        keyed = out["key"].map(dict(zip(by_key["key"], by_key["label"], strict=True)))
        out["label"] = out["label"].fillna(keyed)
    return out


def known_ids(
    workspace: Path, model: str, request_ids: list[str], keys: list[str]
) -> tuple[set[tuple[str, int]], set[str], set[str]]:
    """Which ``(request_id, row)`` pairs, request ids and keys the log holds."""
    parts, _ = good_parts(log_folder(workspace, model))
    if not parts or (not request_ids and not keys):
        return set(), set(), set()
    con = duckdb.connect()
    try:
        src = _parts_sql(parts)
        pairs: set[tuple[str, int]] = set()
        if request_ids:
            con.register("wanted", pd.DataFrame({"rid": sorted(set(request_ids))}))
            rows = con.execute(
                f'SELECT request_id, "row" FROM {src} WHERE request_id IN (SELECT rid FROM wanted)'
            ).fetchall()
            pairs = {(str(r[0]), int(r[1])) for r in rows}
        found_keys: set[str] = set()
        if keys:
            cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
            if "key" in cols:
                con.register("wanted_keys", pd.DataFrame({"k": sorted(set(keys))}))
                found_keys = {
                    str(r[0])
                    for r in con.execute(
                        f"SELECT DISTINCT key FROM {src} WHERE key IN (SELECT k FROM wanted_keys)"
                    ).fetchall()
                }
    finally:
        con.close()
    return pairs, {p[0] for p in pairs}, found_keys


__all__ = ["LogRead", "SkippedPart", "feedback_folder", "good_parts", "known_ids", "read_log"]
