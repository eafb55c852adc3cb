"""Ingestion benchmark: tabpipe against the plain tools, side by side in one run.

1. CSV -> registered snapshot (tabpipe) vs DuckDB's own
   ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``:
   throughput (MB/s of CSV) and peak memory (max RSS of the process).
2. PostgreSQL table -> snapshot (tabpipe) vs a plain ``COPY ... TO STDOUT``
   dump through psycopg: rows/s and peak memory.

Each measurement runs in its own process (peak RSS from ``wait4``); the
systems are interleaved and repeated. Data is generated under /tmp.

    python benchmarks/ingest.py --rows 10000000 --pg-rows 5000000 --write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TABPIPE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

CSV_PEER = """
import duckdb, sys
con = duckdb.connect()
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet)")
"""

CSV_TABPIPE = """
import sys
from tabpipe.config import FileSource
from tabpipe.workspace import Workspace
with Workspace(sys.argv[2]) as ws:
    record, report = ws.ingest_report(FileSource(path=sys.argv[1]))
print(record.id, record.rows)
"""

PG_PEER = """
import sys, psycopg
url = sys.argv[1].replace("postgresql+psycopg", "postgresql")
n = 0
with psycopg.connect(url) as conn, conn.cursor() as cur:
    with cur.copy(f"COPY {sys.argv[2]} TO STDOUT") as copy:
        for block in copy:
            n += len(block)
print(n)
"""

PG_TABPIPE = """
import sys
from tabpipe.config import SqlSource
from tabpipe.workspace import Workspace
with Workspace(sys.argv[3]) as ws:
    record, _ = ws.ingest_report(SqlSource(kind="sql", url=sys.argv[1], table=sys.argv[2]))
print(record.id, record.rows)
"""


def measure(code: str, *args: str) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB, and stdout of ``code`` run in a fresh Python process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark step failed: {err}")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def make_csv(path: Path, rows: int) -> None:
    """20 columns: 8 integers, 6 floats, 4 categories, a date and a timestamp."""
    import duckdb

    if path.exists():
        return
    cols = [f"(i * {k + 7}) % 100003 AS int_{k}" for k in range(8)]
    cols += [f"round(((i * {k + 3}) % 9973) / 7.0, 4) AS num_{k}" for k in range(6)]
    cols += [f"'cat_' || ((i * {k + 11}) % {10 ** (k + 1)}) AS cat_{k}" for k in range(4)]
    cols += [
        "DATE '2020-01-01' + (i % 1500)::INTEGER AS day",
        "TIMESTAMP '2020-01-01' + to_seconds(i % 86400000) AS ts",
    ]
    tmp = path.with_suffix(".tmp")
    duckdb.connect().execute(
        f"COPY (SELECT {', '.join(cols)} FROM range({rows}) t(i)) TO '{tmp}' (FORMAT csv, HEADER)"
    )
    tmp.rename(path)


def make_table(rows: int, table: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        exists = conn.execute(sa.text(f"SELECT to_regclass('{table}') IS NOT NULL")).scalar()
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() if exists else 0
        if count == rows:
            return
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} AS SELECT i AS id, i % 1000 AS store, "
                "round((random() * 1000)::numeric, 2)::double precision AS amount, "
                "'sku-' || (i % 5000) AS sku, "
                "TIMESTAMP '2024-01-01' + i * INTERVAL '1 second' AS sold_at, "
                "(i % 7 = 0) AS returned "
                f"FROM generate_series(1, {rows}) AS i"
            )
        )
    engine.dispose()


def bench_csv(rows: int, repeat: int, work: Path) -> dict[str, object]:
    csv = work / f"bench_{rows}.csv"
    make_csv(csv, rows)
    size_mb = csv.stat().st_size / 1e6
    results: dict[str, list[tuple[float, float]]] = {"duckdb": [], "tabpipe": []}
    for i in range(repeat):
        out = work / f"peer-{i}.parquet"
        results["duckdb"].append(measure(CSV_PEER, str(csv), str(out))[:2])
        out.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as ws:
            seconds, rss, _ = measure(CSV_TABPIPE, str(csv), ws)
            results["tabpipe"].append((seconds, rss))
    return {"rows": rows, "size_mb": size_mb, "runs": results}


def bench_pg(rows: int, repeat: int, work: Path) -> dict[str, object]:
    table = f"tp_bench_{rows}"
    make_table(rows, table)
    results: dict[str, list[tuple[float, float]]] = {"copy": [], "tabpipe": []}
    for _ in range(repeat):
        results["copy"].append(measure(PG_PEER, PG_URL, table)[:2])
        with tempfile.TemporaryDirectory(dir=work) as ws:
            results["tabpipe"].append(measure(PG_TABPIPE, PG_URL, table, ws)[:2])
    return {"rows": rows, "runs": results}


def summary(result: dict[str, object], unit: str) -> list[str]:
    runs: dict[str, list[tuple[float, float]]] = result["runs"]  # type: ignore[assignment]
    lines = [f"| system | median s | {unit} | peak RSS MiB | runs (s) |", "|---|---|---|---|---|"]
    for name, values in runs.items():
        secs = statistics.median(v[0] for v in values)
        rate = (
            f"{result['size_mb'] / secs:.0f} MB/s"  # type: ignore[operator]
            if unit == "throughput"
            else f"{result['rows'] / secs:,.0f} rows/s"  # type: ignore[operator]
        )
        peak = max(v[1] for v in values)
        lines.append(
            f"| {name} | {secs:.1f} | {rate} | {peak:.0f} | {', '.join(f'{v[0]:.1f}' for v in values)} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pg-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tabpipe-bench-ingest"))
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument(
        "--write", action="store_true", help="Write the results into BENCHMARKS.md."
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/ingest.py {' '.join(sys.argv[1:])}"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if not args.skip_csv:
        res = bench_csv(args.rows, args.repeat, args.work)
        print(json.dumps(res, indent=1))
        lines = [
            f"### CSV -> registered snapshot vs DuckDB read_csv -> Parquet ({args.rows:,} rows)",
            "",
            f"`{command}` ({stamp}); a generated CSV of {args.rows:,} rows x 20 columns "
            f"(8 integer, 6 float, 4 text, a date, a timestamp), {res['size_mb']:.0f} MB.",
            "",
            *summary(res, "throughput"),
        ]
        print("\n".join(lines))
        if args.write:
            write_part("### CSV", "\n".join(lines))
    if not args.skip_pg:
        res = bench_pg(args.pg_rows, args.repeat, args.work)
        print(json.dumps(res, indent=1))
        lines = [
            f"### PostgreSQL table -> snapshot vs COPY TO STDOUT ({args.pg_rows:,} rows)",
            "",
            f"`{command}` ({stamp}); a table of {args.pg_rows:,} rows x 6 columns "
            "(bigint, int, double, text, timestamp, boolean); the peer reads psycopg's "
            "`COPY ... TO STDOUT` blocks and discards them.",
            "",
            *summary(res, "rows/s"),
        ]
        print("\n".join(lines))
        if args.write:
            write_part("### PostgreSQL", "\n".join(lines))


HEAD = "## Ingestion (benchmarks/ingest.py)"
INTRO = (
    "Each system runs in its own process, interleaved, on the same 2-core machine "
    "(shared with other work: compare the ratios, not the absolute figures); peak RSS "
    "is the process's maximum resident memory."
)


def write_part(key: str, text: str) -> None:
    """Replace this benchmark's subsection starting with ``key`` in BENCHMARKS.md."""
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if HEAD not in old:
        old = old.rstrip("\n") + f"\n\n{HEAD}\n\n{INTRO}\n"
    before, rest = old.split(HEAD, 1)
    section, sep, after = rest.partition("\n## ")
    parts = [p for p in section.split("\n### ") if p.strip()]
    intro, subs = parts[0], {"### " + p.split()[0]: "### " + p for p in parts[1:]}
    subs[key] = text.rstrip("\n") + "\n"
    body = (
        intro.rstrip("\n") + "\n\n" + "\n".join(subs[k].rstrip("\n") + "\n" for k in sorted(subs))
    )
    path.write_text(
        before + HEAD + body + ("\n" + sep.lstrip("\n") + after if sep else ""), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
