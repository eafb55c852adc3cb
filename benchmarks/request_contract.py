"""Cost of checking every prediction request against the data contract.

Trains a small titanic model (LightGBM, with declared column constraints so the
contract has checks to run), then times in-process, single-threaded, on one row
and on 100 rows per request:

- ``signature``: ``Signature.check`` alone (cleaning rules, casts, counts);
- ``contract``: the compiled :class:`~tabpipe.data.request_check.RequestValidator`;
- ``serve path``: ``Service._run`` (validation, onnxruntime, metrics, prediction
  log) with the contract check and without it.

Each figure is the median of 7 repeats of N calls, per call.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/request_contract.py
"""

from __future__ import annotations

import statistics
import tempfile
import timeit
from dataclasses import replace
from pathlib import Path

import pandas as pd

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.registry import Registry
from tabpipe.serving.holder import Loaded
from tabpipe.serving.service import Service
from tabpipe.serving.settings import ServeSettings
from tabpipe.workspace import Workspace

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "titanic.csv"


def per_call(fn: object, number: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=7)  # type: ignore[arg-type]
    return statistics.median(times) / number * 1e6


def _figures(
    svc: Service, loaded: Loaded, bare: Loaded, frame: pd.DataFrame, rows: int, number: int
) -> dict[str, float]:
    sig = loaded.manifest.signature
    validator = loaded.validator
    assert validator is not None
    part = frame[sig.names].iloc[:rows].astype(object)
    columns = {c: part[c].where(part[c].notna(), None).tolist() for c in sig.names}
    checked = sig.check(columns)
    return {
        "signature": per_call(lambda: sig.check(columns), number),
        "contract": per_call(lambda: validator.check(checked.feeds, rows, columns), number),
        "serve path without contract": per_call(
            lambda: svc._run(bare, columns, 10_000, False), number
        ),
        "serve path with contract": per_call(
            lambda: svc._run(loaded, columns, 10_000, False), number
        ),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = build_spec(
            {
                "source": {"path": str(DATA)},
                "target": "Survived",
                "name": "titanic",
                "models": ["lightgbm"],
                "max_trials": 4,
                "split": {"folds": 2},
                "selection": {"ensemble": False},
                "columns": {"Age": {"maximum": 100}, "Embarked": {"categories": ["S", "C", "Q"]}},
            }
        )
        with Workspace(root) as ws:
            api.run(spec, ws, show_progress=False)
            folder = Registry(ws).resolve("titanic").path
        svc = Service(ServeSettings(model="titanic", bundle=folder))
        loaded = svc.holder.load_current()
        assert loaded.validator is not None
        bare = replace(loaded, validator=None)
        frame = pd.read_csv(DATA)
        print("| rows per request | step | µs per request |")
        print("|---:|---|---:|")
        for rows, number in ((1, 2000), (100, 200)):
            for step, value in _figures(svc, loaded, bare, frame, rows, number).items():
                print(f"| {rows} | {step} | {value:.1f} |")
        svc.log.close()


if __name__ == "__main__":
    main()
