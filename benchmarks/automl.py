"""AutoML side by side: tabpipe vs FLAML vs AutoGluon (medium_quality) vs LightGBM defaults.

Every system gets the same rows: a fixed 80/20 split (seed 0, stratified for
classification), the same time budget and the same number of cores, and runs in its own
Python (peers in their own virtual environments, see PEERS.md) through a small runner
script in ``benchmarks/peers/``. The harness scores every system's test predictions
itself: ROC AUC (binary), log loss and accuracy (multiclass), RMSE (regression); it
also reports fit wall time and the median single-row predict latency through each
system's own predict API (tabpipe: its serving path, request validation + onnxruntime).

    python benchmarks/automl.py --datasets titanic telco_churn --budgets 60
    python benchmarks/automl.py --datasets all --budgets 60 300      # the full protocol
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TABPIPE_DATASETS", HERE.parent.parent / "shared" / "datasets"))
PEERS = Path(os.environ.get("TABPIPE_PEERS", Path.home() / ".cache" / "tabpipe-peers"))
SYSTEMS = ("tabpipe", "flaml", "autogluon", "lightgbm")
PRIMARY = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    task: str
    load: Callable[[], pd.DataFrame]


def _csv(path: str, **kw: object) -> Callable[[], pd.DataFrame]:
    return lambda: pd.read_csv(DATA / path, **kw)  # type: ignore[arg-type]


def _drop(loader: Callable[[], pd.DataFrame], *cols: str) -> Callable[[], pd.DataFrame]:
    return lambda: loader().drop(columns=list(cols))


ADULT = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
AUTO = [
    "symboling",
    "normalized_losses",
    "make",
    "fuel_type",
    "aspiration",
    "num_of_doors",
    "body_style",
    "drive_wheels",
    "engine_location",
    "wheel_base",
    "length",
    "width",
    "height",
    "curb_weight",
    "engine_type",
    "num_of_cylinders",
    "engine_size",
    "fuel_system",
    "bore",
    "stroke",
    "compression_ratio",
    "horsepower",
    "peak_rpm",
    "city_mpg",
    "highway_mpg",
    "price",
]
HORSE = [
    "surgery",
    "age",
    "hospital_number",
    "rectal_temp",
    "pulse",
    "respiratory_rate",
    "temp_of_extremities",
    "peripheral_pulse",
    "mucous_membrane",
    "capillary_refill_time",
    "pain",
    "peristalsis",
    "abdominal_distention",
    "nasogastric_tube",
    "nasogastric_reflux",
    "nasogastric_reflux_ph",
    "rectal_exam_feces",
    "abdomen",
    "packed_cell_volume",
    "total_protein",
    "abdomo_appearance",
    "abdomo_protein",
    "outcome",
    "surgical_lesion",
    "lesion_1",
    "lesion_2",
    "lesion_3",
    "cp_data",
]

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("titanic", "Survived", "binary", _csv("titanic/train.csv")),
        Dataset(
            "telco_churn",
            "Churn",
            "binary",
            _csv("telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"),
        ),
        Dataset("german_credit", "default", "binary", _csv("german_credit/credit.csv")),
        Dataset("mushrooms", "type", "binary", _csv("mushrooms/mushrooms.csv")),
        Dataset(
            "adult_census",
            "income",
            "binary",
            _csv("adult_census/adult-train.csv", header=None, names=ADULT, skipinitialspace=True),
        ),
        Dataset(
            "bank_marketing",
            "y",
            "binary",
            _drop(_csv("bank_marketing/bank-additional-full.csv", sep=";"), "duration"),
        ),
        Dataset("palmer_penguins", "species", "multiclass", _csv("palmer_penguins/penguins.csv")),
        Dataset(
            "horse_colic",
            "outcome",
            "multiclass",
            _csv("horse_colic/horse-colic.csv", header=None, names=HORSE, na_values="?"),
        ),
        Dataset(
            "diabetes_130",
            "readmitted",
            "multiclass",
            _drop(
                _csv("diabetes_130_hospitals/diabetic_data.csv.gz"), "encounter_id", "patient_nbr"
            ),
        ),
        Dataset(
            "wine_red", "quality", "regression", _csv("wine_quality/winequality-red.csv", sep=";")
        ),
        Dataset(
            "wine_white",
            "quality",
            "regression",
            _csv("wine_quality/winequality-white.csv", sep=";"),
        ),
        Dataset(
            "ames", "SalePrice", "regression", _drop(_csv("ames_house_prices/train.csv"), "Id")
        ),
        Dataset(
            "bike_day",
            "cnt",
            "regression",
            _drop(_csv("bike_sharing/day.csv"), "instant", "casual", "registered"),
        ),
        Dataset(
            "automobile",
            "price",
            "regression",
            _csv("automobile/auto_imports.csv", header=None, names=AUTO, na_values="?"),
        ),
        Dataset(
            "beijing_pm25", "pm2.5", "regression", _drop(_csv("beijing_pm25/pollution.csv"), "No")
        ),
        Dataset("nyc_taxis_tip", "tip", "regression", _drop(_csv("nyc_taxis/taxis.csv"), "total")),
    )
}


def prepare(ds: Dataset, folder: Path) -> tuple[Path, Path, pd.DataFrame]:
    """Write the fixed 80/20 split (seed 0) as CSV; classification labels as strings."""
    frame = ds.load()
    frame = frame[frame[ds.target].notna()].reset_index(drop=True)
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    if ds.task == "regression":
        frame[ds.target] = frame[ds.target].astype(float)
    else:
        frame[ds.target] = frame[ds.target].map(_label)
    stratify = frame[ds.target] if ds.task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=stratify)
    train_path, test_path = folder / "train.csv", folder / "test.csv"
    train.to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    # score against the labels exactly as every system reads them back
    return train_path, test_path, pd.read_csv(test_path)


def _label(value: object) -> str:
    """A class label as text, written the way every system reads it back: whole numbers
    without '.0' (a float column of classes 1.0, 2.0 is read back as 1, 2 by some systems
    and as 1.0, 2.0 by others; as '1', '2' by all), and without a trailing period."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().rstrip(".")


def python_of(system: str) -> str:
    if system in ("tabpipe", "lightgbm"):
        return sys.executable
    return str(PEERS / system / "bin" / "python")


def run_system(
    system: str, ds: Dataset, train: Path, test: Path, budget: float, cores: int, out: Path
) -> dict[str, object]:
    cmd = [
        python_of(system),
        str(HERE / "peers" / f"{system}_runner.py"),
        *("--train", str(train), "--test", str(test), "--target", ds.target),
        *("--task", ds.task, "--budget", str(budget), "--out", str(out)),
        *("--cores", str(cores), "--metric", PRIMARY[ds.task]),
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(cores),
        "OPENBLAS_NUM_THREADS": str(cores),
        "MKL_NUM_THREADS": str(cores),
        "PYTHONWARNINGS": "ignore",
    }
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=budget * 3 + 180, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr else "failed"}
    result: dict[str, object] = json.loads((out / "result.json").read_text())
    result["wall_seconds"] = wall
    result["pred"] = pd.read_csv(out / "pred.csv")
    return result


def score(ds: Dataset, test: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
    y = test[ds.target].astype(str) if ds.task != "regression" else test[ds.target]
    pred.columns = [str(c) for c in pred.columns]
    if ds.task == "regression":
        return {"rmse": math.sqrt(mean_squared_error(y, pred["prediction"]))}
    labels = sorted(y.unique().tolist() + [c for c in pred.columns if c not in set(y)])
    labels = sorted(set(labels))
    proba = np.column_stack([pred[c] if c in pred else np.zeros(len(pred)) for c in labels])
    proba = np.clip(proba, 1e-15, 1)
    proba = proba / proba.sum(axis=1, keepdims=True)
    if ds.task == "binary":
        return {"roc_auc": float(roc_auc_score(y == labels[1], proba[:, 1]))}
    predicted = np.asarray(labels)[proba.argmax(axis=1)]
    return {
        "log_loss": float(log_loss(y, proba, labels=labels)),
        "accuracy": float(accuracy_score(y, predicted)),
    }


def rank(rows: list[dict[str, object]], task: str) -> None:
    """Rank by the primary metric, 1 = best; tied systems share the mean of their ranks
    (mushrooms: every system scores ROC AUC 1.0, each ranks 2.5); a failed system ranks
    last."""
    metric = PRIMARY[task]
    sign = -1.0 if metric == "roc_auc" else 1.0
    keys = {id(r): sign * float(r[metric]) for r in rows if metric in r}  # type: ignore[arg-type]
    for r in rows:
        if id(r) in keys:
            key = keys[id(r)]
            better = sum(k < key for k in keys.values())
            tied = sum(k == key for k in keys.values())
            r["rank"] = better + (tied + 1) / 2
        else:
            r["rank"] = len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["titanic"], help="names, or 'all'")
    parser.add_argument("--budgets", nargs="+", type=float, default=[60.0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--table", type=Path, default=None, help="only print the table of a --json file"
    )
    args = parser.parse_args()
    if args.table:
        saved: list[dict[str, object]] = json.loads(args.table.read_text())
        for budget, name in dict.fromkeys((r["budget"], r["dataset"]) for r in saved):
            rows = [r for r in saved if (r["budget"], r["dataset"]) == (budget, name)]
            rank(rows, DATASETS[str(name)].task)
        print(table(saved))
        return
    names = list(DATASETS) if args.datasets == ["all"] else args.datasets
    results: list[dict[str, object]] = []
    for budget in args.budgets:
        for name in names:
            ds = DATASETS[name]
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                train, test_path, test = prepare(ds, folder)
                rows = []
                for system in args.systems:
                    res = run_system(
                        system, ds, train, test_path, budget, args.cores, folder / system
                    )
                    row: dict[str, object] = {"dataset": name, "budget": budget, "system": system}
                    if "error" in res:
                        row["error"] = res["error"]
                    else:
                        row.update(score(ds, test, res.pop("pred")))  # type: ignore[arg-type]
                        row.update({k: v for k, v in res.items()})
                    rows.append(row)
                    print(json.dumps(row, default=str), file=sys.stderr, flush=True)
                rank(rows, ds.task)
                results.extend(rows)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| budget | dataset | system | test metric | fit s | 1-row predict ms | rank | model |",
        "|---:|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        if "error" in r:
            metric = f"failed: {r['error']}"
            fit = lat = "-"
        else:
            metric = ", ".join(
                f"{k} {float(r[k]):.4f}"  # type: ignore[arg-type]
                for k in ("roc_auc", "log_loss", "accuracy", "rmse")
                if k in r
            )
            fit = f"{float(r['fit_seconds']):.1f}"  # type: ignore[arg-type]
            lat = f"{float(r['latency_ms']):.2f}"  # type: ignore[arg-type]
        lines.append(
            f"| {float(r['budget']):g} | {r['dataset']} | {r['system']} | {metric} | {fit} "
            f"| {lat} | {float(r['rank']):g} | {r.get('model', '')} |"
        )
    lines += ["", "| budget | system | mean rank | datasets |", "|---:|---|---:|---:|"]
    frame = pd.DataFrame(results)
    for (budget, system), group in frame.groupby(["budget", "system"], sort=False):
        lines.append(f"| {budget:g} | {system} | {group['rank'].mean():.2f} | {len(group)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
