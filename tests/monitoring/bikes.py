"""A small real model to monitor: bike sharing (daily), trained on 2011, served in-process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.serving.app import ServeSettings, create_app
from tabpipe.serving.predlog import LogSettings
from tabpipe.workspace import Workspace

DATA = Path(__file__).parents[1] / "data" / "bike_day.csv"
WEATHER = {1: "clear", 2: "mist", 3: "light rain", 4: "heavy rain"}
FIRST_DAY = {
    "season": 1,
    "mnth": 1,
    "holiday": 0,
    "weekday": 6,
    "workingday": 0,
    "weathersit": "mist",
    "temp": 0.34,
    "atemp": 0.36,
    "hum": 0.8,
    "windspeed": 0.16,
}
"""The features of 2011-01-01, to ask a server which version answers."""


def bike_frame() -> pd.DataFrame:
    """day.csv without the leaking columns; weather as text so one feature is categorical."""
    frame = pd.read_csv(DATA).drop(columns=["instant", "casual", "registered"])
    frame["weathersit"] = frame["weathersit"].map(WEATHER)
    return frame


@dataclass
class Served:
    root: Path
    name: str
    frame: pd.DataFrame

    def client(self, poll_seconds: float = 5.0, **log: object) -> TestClient:
        settings = ServeSettings(
            workspace=self.root,
            model=self.name,
            poll_seconds=poll_seconds,
            prediction_log=LogSettings(key_column="dteday", flush_seconds=0.05, **log),  # type: ignore[arg-type]
        )
        return TestClient(create_app(settings))


def train_bike(root: Path, name: str, until: str = "2012-01-01", **extra: object) -> Served:
    frame = bike_frame()
    train = frame[frame["dteday"] < until].drop(columns=["dteday"])
    source = root / f"{name}-train.csv"
    train.to_csv(source, index=False)
    spec = build_spec(
        {
            "name": name,
            "source": {"path": str(source)},
            "target": "cnt",
            "time_budget": 6,
            "models": ["lightgbm"],
            "split": {"folds": 3},
            "monitoring": {"window": {"rows": 100}, "min_rows": 50, "min_labels": 30},
            **extra,
        }
    )
    with Workspace(root) as ws:
        api.run(spec, ws, show_progress=False)
    return Served(root, name, frame)


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return frame.drop(columns=["cnt"]).to_dict("records")
