"""Shared helpers of the benchmark runners (each runs in its own system's Python)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("train", "test", "target", "task", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--metric", required=True)
    return parser.parse_args()


def latency_ms(call: Callable[[], Any], repeats: int = 100) -> float:
    """Median wall time of ``call`` in milliseconds, after two warm-up calls."""
    call()
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def write(out: str, predictions: Any, fit_seconds: float, latency: float, **extra: Any) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(folder / "pred.csv", index=False)
    payload = {"fit_seconds": fit_seconds, "latency_ms": latency, **extra}
    (folder / "result.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
