"""Small prepared datasets for the modeling tests (real data under tests/data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tabpipe.config import build_spec
from tabpipe.data.cleaning import clean
from tabpipe.features.builder import plan_features

DATA = Path(__file__).parents[1] / "data"


def prepared(name: str, target: str, rows: slice | None = None, **spec: Any) -> dict[str, Any]:
    frame = pd.read_csv(DATA / name)
    if rows is not None:
        frame = frame.iloc[rows].reset_index(drop=True)
    cleaned, _, report = clean(frame, target, "auto")
    return {
        "frame": cleaned,
        "report": report,
        "plan": plan_features(report),
        "spec": build_spec({"source": {"path": str(DATA / name)}, "target": target, **spec}),
    }
