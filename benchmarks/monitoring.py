"""Monitoring benchmarks, side by side with Evidently in the same run.

1. Drift: N reference rows vs N current rows x F mixed features (half numeric,
   half categorical; a known subset shifted). tabpipe's drift tests (KS +
   Wasserstein + PSI, chi-squared + Jensen-Shannon + PSI, missing shares,
   Benjamini-Hochberg, effect thresholds) vs Evidently's ``DataDriftPreset``.
   Each runs in its own process on the same Parquet files; we report the
   drift computation's wall time (file reading excluded, shown apart), the
   process's peak memory, and which columns each flagged.
2. Serving: p50 latency of one-row requests through the real app (uvicorn on
   loopback), with the prediction log on and off, interleaved.

    python benchmarks/monitoring.py                  # 1M x 30, both parts
    python benchmarks/monitoring.py --rows 200000    # smaller
    python benchmarks/monitoring.py --skip-serving
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EVIDENTLY = Path.home() / ".cache" / "tabpipe-peers" / "evidently" / "bin" / "python"
ROOT = Path(__file__).resolve().parents[1]

EVIDENTLY_WORKER = r"""
import json, resource, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
folder = sys.argv[1]
t0 = time.perf_counter()
ref = pd.read_parquet(folder + "/reference.parquet")
cur = pd.read_parquet(folder + "/current.parquet")
read = time.perf_counter() - t0
t0 = time.perf_counter()
c0 = time.process_time()
snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
result = snap.dict()
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
drifted = []
for m in result["metrics"]:
    cfg = m["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        value, thr = m["value"], cfg.get("threshold")
        method = cfg.get("method", "")
        p_value_method = "p_value" in method or "test" in method.lower()
        if (p_value_method and value < thr) or (not p_value_method and value >= thr):
            drifted.append(cfg["column"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "cpu": cpu, "read": read, "peak_mib": peak,
                  "drifted": sorted(drifted)}))
"""


def make_data(folder: Path, rows: int, features: int, seed: int = 0) -> list[str]:
    """Half numeric, half categorical; every fifth column of each kind drifts."""
    rng = np.random.default_rng(seed)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    shifted = []
    cats = np.array([f"level_{i}" for i in range(12)])
    for i in range(features):
        drift = i % 5 == 0
        if i % 2 == 0:
            name = f"num_{i}"
            scale = rng.uniform(0.5, 5)
            ref[name] = rng.lognormal(0, 0.5, rows) * scale
            cur[name] = rng.lognormal(0.25 if drift else 0, 0.5, rows) * scale
            miss = rng.random(rows) < 0.02
            cur[name][miss] = np.nan
            ref[name][rng.random(rows) < 0.02] = np.nan
        else:
            name = f"cat_{i}"
            p = rng.dirichlet(np.ones(len(cats)))
            q = rng.dirichlet(np.ones(len(cats))) if drift else p
            ref[name] = cats[rng.choice(len(cats), rows, p=p)]
            cur[name] = cats[rng.choice(len(cats), rows, p=q)]
        if drift:
            shifted.append(name)
    pd.DataFrame(ref).to_parquet(folder / "reference.parquet", index=False)
    pd.DataFrame(cur).to_parquet(folder / "current.parquet", index=False)
    return shifted


def tabpipe_worker(folder: str) -> None:
    import resource

    from tabpipe.monitoring.drift import Reference, drift_tests
    from tabpipe.monitoring.spec import EffectSpec

    t0 = time.perf_counter()
    ref = pd.read_parquet(Path(folder) / "reference.parquet")
    cur = pd.read_parquet(Path(folder) / "current.parquet")
    read = time.perf_counter() - t0
    kinds: dict[str, Any] = {
        c: "numeric" if pd.api.types.is_numeric_dtype(ref[c]) else "categorical"
        for c in ref.columns
    }
    t0 = time.perf_counter()
    c0 = time.process_time()
    reference = Reference.build(ref, kinds)
    tests = drift_tests(reference, cur, EffectSpec(), 0.05)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    drifted = sorted({t.feature for t in tests if t.alarm})
    raw = sorted({t.feature for t in tests if t.p_value < 0.05})
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "read": read,
                "peak_mib": peak,
                "drifted": drifted,
                "raw_p": raw,
            }
        )
    )


def run_worker(cmd: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - started
    return out


def drift_benchmark(rows: int, features: int, skip_evidently: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        shifted = make_data(folder, rows, features)
        print(f"data: {rows:,} x {features} twice in {time.perf_counter() - t0:.1f} s", flush=True)
        tab = run_worker([sys.executable, __file__, "--worker", str(folder)])
        print(
            f"tabpipe:   {tab['wall']:.2f} s wall, {tab['cpu']:.2f} s CPU, "
            f"peak {tab['peak_mib']:.0f} MiB",
            flush=True,
        )
        print(f"  shifted {shifted}\n  tabpipe flagged {tab['drifted']}", flush=True)
        evi = None
        if not skip_evidently and EVIDENTLY.exists():
            evi = run_worker([str(EVIDENTLY), "-c", EVIDENTLY_WORKER, str(folder)])
            print(
                f"Evidently: {evi['wall']:.2f} s wall, {evi['cpu']:.2f} s CPU, "
                f"peak {evi['peak_mib']:.0f} MiB",
                flush=True,
            )
            print(f"  Evidently flagged {evi['drifted']}", flush=True)
    return {
        "rows": rows,
        "features": features,
        "shifted": shifted,
        "tabpipe": tab,
        "evidently": evi,
    }


# serving -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving_benchmark(requests: int) -> dict[str, Any]:
    import httpx
    import uvicorn

    from tabpipe import api
    from tabpipe.config import build_spec
    from tabpipe.serving.app import ServeSettings, create_app
    from tabpipe.serving.predlog import LogSettings
    from tabpipe.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = pd.read_csv(ROOT / "tests" / "data" / "bike_day.csv")
        frame = frame[frame["yr"] == 0]  # 2011, as in the tests
        frame = frame.drop(columns=["instant", "casual", "registered", "dteday", "yr"])
        frame.to_csv(root / "bike.csv", index=False)
        spec = build_spec(
            {
                "name": "bike",
                "source": {"path": str(root / "bike.csv")},
                "target": "cnt",
                "time_budget": 5,
                "models": ["lightgbm"],
                "split": {"folds": 3},
            }
        )
        with Workspace(root / "ws") as ws:
            api.run(spec, ws, show_progress=False)
        servers = {}
        for name, enabled in (("with log", True), ("without log", False)):
            settings = ServeSettings(
                workspace=root / "ws", model="bike", prediction_log=LogSettings(enabled=enabled)
            )
            port = _free_port()
            server = uvicorn.Server(
                uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            servers[name] = (server, thread, f"http://127.0.0.1:{port}/invocations")
        for server, _, _ in servers.values():
            while not server.started:
                time.sleep(0.05)
        body = {"dataframe_records": frame.drop(columns=["cnt"]).iloc[:1].to_dict("records")}
        times: dict[str, list[float]] = {name: [] for name in servers}
        with httpx.Client() as client:
            for _ in range(50):  # warm-up
                for _, _, url in servers.values():
                    client.post(url, json=body)
            for _ in range(requests):
                for name, (_, _, url) in servers.items():
                    t0 = time.perf_counter()
                    r = client.post(url, json=body)
                    times[name].append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
        for server, thread, _ in servers.values():
            server.should_exit = True
            thread.join(10)
        logged = sum(
            len(pd.read_parquet(p)) for p in (root / "ws" / "predictions" / "bike").glob("part-*")
        )
    p50 = {name: statistics.median(v) for name, v in times.items()}
    p99 = {name: float(np.percentile(v, 99)) for name, v in times.items()}
    return {"requests": requests, "p50_ms": p50, "p99_ms": p99, "logged_rows": logged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--skip-drift", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tabpipe_worker(args.worker)
        return
    out: dict[str, Any] = {"cpus": os.cpu_count()}
    if not args.skip_drift:
        out["drift"] = drift_benchmark(args.rows, args.features, args.skip_evidently)
    if not args.skip_serving:
        out["serving"] = serving_benchmark(args.requests)
        s = out["serving"]
        print(f"serving p50: {s['p50_ms']}, logged {s['logged_rows']} rows", flush=True)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
