"""Profiling + cleaning of a large mixed table: tabpipe vs ydata-profiling (minimal mode).

    python benchmarks/profile.py --rows 1000000

Both run on the same Parquet file in the same invocation, each in its own
process (so peak memory is its own): tabpipe reads the file, cleans it (ledger,
contract), profiles it and writes report.html + profile.json; ydata-profiling
reads the file and writes its minimal report. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

YDATA_PYTHON = Path.home() / ".cache/tabpipe-peers/ydata/bin/python"

TABPIPE_RUN = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
import pandas as pd
from tabpipe.eda.explore import explore, write_exploration
frame = pd.read_parquet(sys.argv[1])
result = explore(frame, "target", title="benchmark")
write_exploration(result, Path(sys.argv[2]))
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak,
                  "ledger": len(result.report.actions), "features": len(result.report.features())}))
"""

YDATA_RUN = """
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
from ydata_profiling import ProfileReport
frame = pd.read_parquet(sys.argv[1])
ProfileReport(frame, minimal=True, progress_bar=False).to_file(sys.argv[2] + "/ydata.html")
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak}))
"""


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """30 mixed columns: numbers (some with gaps and -999), integers, categories with case and
    whitespace variants and '?' markers, yes/no words, amounts as text with separators, a target."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(10):
        values = rng.lognormal(3, 1, rows) if i % 2 else rng.normal(50, 10, rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i}"] = values
    sentinel = rng.normal(100, 15, rows)
    sentinel[rng.random(rows) < 0.01] = -999.0
    data["num_sentinel"] = sentinel
    data["num_outliers"] = np.where(rng.random(rows) < 0.001, 1e6, rng.normal(0, 1, rows))
    for i in range(6):
        data[f"int_{i}"] = rng.integers(0, 10 ** (i + 1), rows)
    for i, k in enumerate((3, 5, 8, 12, 20, 50)):
        levels = np.array([f"level_{j}" for j in range(k)], dtype=object)
        data[f"cat_{i}"] = levels[rng.integers(0, k, rows)]
    variants = np.array(["Yes", "yes ", "YES", "No", "no", " NO", "?"], dtype=object)
    data["answer_variants"] = variants[
        rng.choice(7, rows, p=[0.4, 0.05, 0.05, 0.4, 0.05, 0.03, 0.02])
    ]
    data["city_markers"] = np.array(["Paris", "Lyon", "Nice", "?", "N/A"], dtype=object)[
        rng.choice(5, rows, p=[0.5, 0.3, 0.15, 0.03, 0.02])
    ]
    data["flag_words"] = np.array(["yes", "no"], dtype=object)[rng.integers(0, 2, rows)]
    data["flag_words_2"] = np.array(["true", "false"], dtype=object)[rng.integers(0, 2, rows)]
    amounts = rng.integers(0, 50_000, rows)
    data["amount_text"] = pd.Series(amounts).map("${:,}".format).to_numpy(dtype=object)
    score = data["num_0"] + rng.normal(0, 10, rows)  # type: ignore[operator]
    data["target"] = np.where(np.nan_to_num(score) > 55, "churn", "stay").astype(object)
    return pd.DataFrame(data)


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"{cmd[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-ydata", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "table.parquet"
        make_table(args.rows).to_parquet(data, index=False)
        out = Path(tmp) / "out"
        out.mkdir()
        results = {"tabpipe": run([sys.executable, "-c", TABPIPE_RUN, str(data), str(out)])}
        if not args.skip_ydata:
            if not YDATA_PYTHON.exists():
                sys.exit(f"ydata-profiling is not installed at {YDATA_PYTHON} (see PEERS.md)")
            env = {**os.environ, "YDATA_PROFILING_NO_ANALYTICS": "1"}
            results["ydata-profiling minimal"] = run(
                [str(YDATA_PYTHON), "-c", YDATA_RUN, str(data), str(out)], env
            )
    print(f"\n{args.rows:,} rows x 30 columns, {os.cpu_count()} cores\n")
    print("| system | wall s (in process) | wall s (incl. start-up) | peak memory MiB |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.1f} | {r['process_seconds']:.1f} | {r['peak_mb']:.0f} |")
    if "ydata-profiling minimal" in results:
        ratio = results["ydata-profiling minimal"]["seconds"] / results["tabpipe"]["seconds"]
        print(f"\ntabpipe is {ratio:.1f}x faster than ydata-profiling (minimal mode)")


if __name__ == "__main__":
    main()
