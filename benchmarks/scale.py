"""Scale with Ray: tuning throughput on 1 vs 2 Ray workers, Ray Data batch scoring vs
local scoring, ingestion of many files per file on Ray vs locally, and the peak memory
of a large training run on one machine.

Each part runs on synthetic classification data (30 numeric columns, seeded). Ray nodes
are started by this script on loopback (token authentication on) and ended by their
process ids. Every figure is printed with the 1-minute load average at that moment.

    python benchmarks/scale.py tuning  --rows 20000 --trials 12
    python benchmarks/scale.py scoring --rows 10000000
    python benchmarks/scale.py ingest  --rows 2000000 --files 20
    python benchmarks/scale.py memory  --rows 10000000 --sample 50000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

from tabpipe.config import build_spec
from tabpipe.data.cleaning import clean
from tabpipe.features.builder import plan_features

RAY = Path(sys.executable).with_name("ray")
COLUMNS = 30


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    """30 float32 features, a binary target from a few of them plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, COLUMNS), dtype=np.float32)
    logit = x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * np.sin(3 * x[:, 4])
    y = (logit + rng.standard_normal(rows, dtype=np.float32) > 0).astype(np.int8)
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(COLUMNS)])
    frame["target"] = y
    return frame


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _node(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    ports = [
        "--node-manager-port", "--object-manager-port", "--metrics-export-port",
        "--runtime-env-agent-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_agent_register_timeout_ms="120000", RAY_raylet_start_wait_time_s="120")
    cmd = [
        str(RAY), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
        "--disable-usage-stats", "--object-store-memory=1000000000",
        *(f"{p}={_port()}" for p in ports), *args,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while b"Ray runtime started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"a Ray node did not start: see {log}")
        time.sleep(0.25)
    return proc


@contextlib.contextmanager
def cluster(workers: int) -> Iterator[str]:
    """A head node plus ``workers - 1`` worker nodes, one CPU each; yields the address."""
    temp = Path(tempfile.mkdtemp(prefix="tpbench", dir="/tmp"))
    port = _port()
    address = f"127.0.0.1:{port}"
    nodes = [
        _node(
            ["--head", f"--port={port}", f"--ray-client-server-port={_port()}",
             "--include-dashboard=false", f"--temp-dir={temp}"],
            temp / "head.log",
        )
    ]  # fmt: skip
    try:
        for i in range(workers - 1):
            nodes.append(_node([f"--address={address}"], temp / f"worker{i}.log"))
        yield address
    finally:
        for node in reversed(nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)


def prepared(frame: pd.DataFrame, **spec: Any) -> tuple[Any, Any, Any]:
    """Cleaning report and feature plan from the first 100,000 rows (same schema)."""
    _, _, report = clean(frame.head(100_000), "target", "binary")
    raw = {"source": {"path": "synthetic.parquet"}, "target": "target", "task": "binary", **spec}
    return report, plan_features(report), build_spec(raw)


class TimedEngine:
    """Wraps an engine; remembers when each trial's batch came back (for time-to-best)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.concurrency = engine, engine.concurrency
        self.started = time.perf_counter()
        self.done: list[float] = []

    def share(self, value: Any) -> Any:
        return self.engine.share(value)

    def map(self, fn: Any, shared: Any, items: Any) -> Any:
        out = self.engine.map(fn, shared, items)
        self.done += [time.perf_counter() - self.started] * len(items)
        return out

    def close(self) -> None:
        self.engine.close()


def tuning(args: argparse.Namespace) -> None:
    from tabpipe.engine import EngineSpec, open_engine
    from tabpipe.features.frame import to_model_frame
    from tabpipe.modeling import metrics
    from tabpipe.modeling.fit import FitContext
    from tabpipe.modeling.search import Budget, search
    from tabpipe.modeling.train import encode_target, make_folds

    frame = synthetic(args.rows)
    report, plan, spec = prepared(frame, models=["lightgbm"], max_trials=args.trials)
    y = encode_target(frame["target"], report)
    folds, _ = make_folds("binary", y, frame, spec)
    ctx = FitContext(to_model_frame(frame, plan), y, "binary", plan, folds, "roc_auc", 0, 1, 2)
    print(f"tuning: {args.rows} rows x {COLUMNS} columns, LightGBM, {args.trials} trials, "
          f"5-fold CV ({load()})")  # fmt: skip
    for workers in (1, 2):
        with cluster(workers) as address:
            engine_spec = EngineSpec(kind="ray", address=address, parallel_trials=workers)
            with open_engine(engine_spec) as engine:
                timed = TimedEngine(engine)
                log = search(ctx, ("lightgbm",), Budget(3600), args.trials, engine=timed,
                             parallel_trials=workers)  # fmt: skip
                took = timed.done[-1]
            greater = metrics.REGISTRY["roc_auc"].greater_is_better
            best = max(log.results, key=lambda r: r.score if greater else -r.score)
            at = timed.done[best.trial_id]  # trial ids are given in asking order
            n = len(log.results) + log.pruned
            print(f"  {workers} worker(s): {n} trials in {took:.1f} s = {n / took * 60:.1f} "
                  f"trials/min; best ROC AUC {best.score:.5f} at {at:.1f} s ({load()})")  # fmt: skip


def write_synthetic(path: Path, rows: int, seed: int, chunk: int = 1_000_000) -> None:
    """The synthetic features (no target) as one Parquet file, written a chunk at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for i, start in enumerate(range(0, rows, chunk)):
        part = synthetic(min(chunk, rows - start), seed=seed + i).drop(columns=["target"])
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    if writer is not None:
        writer.close()


def same_rows(a: Path, b: Path) -> bool:
    """Whether two scored Parquet files hold the same rows (floats to 1e-6), batch by batch."""
    import pyarrow.parquet as pq

    left, right = pq.ParquetFile(a), pq.ParquetFile(b)
    if left.metadata.num_rows != right.metadata.num_rows or left.schema_arrow.names != (
        right.schema_arrow.names
    ):
        return False
    pairs = zip(left.iter_batches(500_000), right.iter_batches(500_000), strict=True)
    for x, y in pairs:
        for name in x.schema.names:
            u, v = (
                x.column(name).to_numpy(zero_copy_only=False),
                y.column(name).to_numpy(zero_copy_only=False),
            )
            same = (
                np.allclose(u, v, rtol=1e-6, atol=0, equal_nan=True)
                if u.dtype.kind == "f"
                else np.array_equal(u, v)
            )
            if not same:
                return False
    return True


def scoring(args: argparse.Namespace) -> None:
    from tabpipe import api
    from tabpipe.engine import EngineSpec
    from tabpipe.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="tpscore") as tmp:
        root = Path(tmp)
        synthetic(5_000).to_parquet(root / "train.parquet")
        with Workspace(root / "ws") as ws:
            raw = {"source": {"path": str(root / "train.parquet")}, "target": "target",
                   "name": "scale", "models": ["lightgbm"], "max_trials": 2, "time_budget": 120,
                   "selection": {"ensemble": False}}  # fmt: skip
            api.run(build_spec(raw), ws, show_progress=False)
        big = root / "big.parquet"
        write_synthetic(big, args.rows, seed=1)
        print(f"scoring: {args.rows} rows x {COLUMNS} columns, LightGBM ONNX ({load()})")
        with Workspace(root / "ws") as ws:
            if "local" in args.engines:
                t0 = time.perf_counter()
                api.score_file(ws, "scale", big, root / "local.parquet")
                local = time.perf_counter() - t0
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
                print(f"  local engine: {local:.1f} s = {args.rows / local:,.0f} rows/s; "
                      f"peak RSS of the process {peak:.2f} GiB ({load()})")  # fmt: skip
            if "ray" not in args.engines:
                return
            with cluster(2) as address:
                t0 = time.perf_counter()
                api.predict_file_on_ray(ws, "scale", [str(big)], root / "ray.parquet",
                                        EngineSpec(kind="ray", address=address))  # fmt: skip
                on_ray = time.perf_counter() - t0
        same = "local" in args.engines and same_rows(root / "local.parquet", root / "ray.parquet")
        print(f"  Ray Data, 2 one-CPU nodes: {on_ray:.1f} s = {args.rows / on_ray:,.0f} rows/s; "
              f"same values as local: {same} ({load()})")  # fmt: skip


def ingest(args: argparse.Namespace) -> None:
    from tabpipe.data.ingest import ingest as run_ingest
    from tabpipe.data.sources.spec import FileSource
    from tabpipe.engine import EngineSpec, LocalEngine, open_engine
    from tabpipe.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="tpingest") as tmp:
        root = Path(tmp)
        per_file = -(-args.rows // args.files)
        for i in range(args.files):
            rows = min(per_file, args.rows - i * per_file)
            synthetic(rows, seed=i).to_csv(root / f"part-{i:03d}.csv", index=False)
        size = sum(p.stat().st_size for p in root.glob("*.csv")) / 1024**2
        print(f"ingest: {args.files} CSV files, {args.rows} rows x {COLUMNS + 1} columns, "
              f"{size:.0f} MiB ({load()})")  # fmt: skip
        source = FileSource(path=str(root / "*.csv"))
        ids = []
        for label, engine in (("DuckDB, all files in one read (no engine)", None),
                              ("local engine, one task per file", "local"),
                              ("Ray, 2 one-CPU nodes, one task per file", "ray")):  # fmt: skip
            with contextlib.ExitStack() as stack, Workspace(root / f"ws-{engine}") as ws:
                tasks = None
                if engine == "local":
                    tasks = LocalEngine()
                elif engine == "ray":
                    address = stack.enter_context(cluster(2))
                    tasks = stack.enter_context(open_engine(EngineSpec(kind="ray",
                                                                       address=address)))  # fmt: skip
                t0 = time.perf_counter()
                record, _ = run_ingest(source, ws.snapshots, engine=tasks)
                took = time.perf_counter() - t0
                ids.append(record.id)
                print(f"  {label}: {took:.1f} s = {args.rows / took:,.0f} rows/s; snapshot "
                      f"{record.id} ({load()})")  # fmt: skip
        print(f"  same snapshot on every engine: {len(set(ids)) == 1}")


def memory(args: argparse.Namespace) -> None:
    from tabpipe.modeling.train import train_candidates

    t0 = time.perf_counter()
    frame = synthetic(args.rows)
    report, plan, spec = prepared(
        frame, models=["lightgbm", "linear"], max_trials=args.trials, time_budget=3600,
        tuning_sample_rows=args.sample, n_jobs=2, selection={"ensemble": False},
    )  # fmt: skip
    print(f"memory: {args.rows} rows x {COLUMNS} columns, tuning on {args.sample} rows, "
          f"{args.trials} trials, final fit on all rows ({load()})")  # fmt: skip
    models, training, _ = train_candidates(frame, plan, report, spec)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"  {training.validation}; refit {sorted(models)}; {time.perf_counter() - t0:.0f} s; "
          f"peak RSS {peak:.2f} GiB ({load()})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["tuning", "scoring", "ingest", "memory"])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--engines", default="local,ray", help="scoring: local, ray or both")
    args = parser.parse_args()
    parts = {"tuning": tuning, "scoring": scoring, "ingest": ingest, "memory": memory}
    parts[args.part](args)


if __name__ == "__main__":
    main()
