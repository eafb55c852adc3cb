"""MLflow ``python_function`` loader for a tabpipe bundle exported with ``tabpipe export``.

This file is copied verbatim into the exported model's ``code/`` folder and
named by ``loader_module`` in its ``MLmodel``. It runs ``model.onnx`` with
onnxruntime; it needs numpy, pandas and onnxruntime, never tabpipe, and it
unpickles nothing. The category rule is the one tabpipe applies everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "-", "--"})


def _category(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        return "" if text.lower() in MISSING_MARKERS else text
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def _epoch_seconds(values: Any) -> np.ndarray:
    """Dates (text, datetimes, or numbers already in epoch seconds) as float64 seconds."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        numbers: np.ndarray = pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers
    texts = values.map(lambda v: None if _category(v) == "" else v)
    stamps = pd.to_datetime(texts, errors="raise", format="mixed", utc=True)
    micros = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    out: np.ndarray = (micros - np.datetime64(0, "us")).astype(np.int64).astype(np.float64) / 1e6
    out[np.isnat(micros)] = np.nan
    return out


class TabpipeOnnxModel:
    """``predict(DataFrame) -> DataFrame`` with ``prediction`` and ``proba_<class>``."""

    def __init__(self, data_path: str) -> None:
        import onnxruntime as ort

        folder = Path(data_path)
        spec = json.loads((folder / "tabpipe.json").read_text(encoding="utf-8"))
        self.columns: list[dict[str, Any]] = spec["columns"]
        self.task: str = spec["task"]
        self.classes: list[Any] = spec.get("classes") or []
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.output = "variable" if self.task == "regression" else "probabilities"
        # ONNX may rename inputs (a leading digit gets '_'); inputs keep the column order
        self.inputs = [
            (i.name, c["name"])
            for i, c in zip(self.session.get_inputs(), self.columns, strict=True)
        ]

    def _feeds(self, frame: Any) -> dict[str, np.ndarray]:
        import pandas as pd

        feeds: dict[str, np.ndarray] = {}
        rows = len(frame)
        for col in self.columns:
            name = col["name"]
            values = frame[name] if name in frame else pd.Series([None] * rows)
            if col["kind"] == "numeric":
                array = pd.to_numeric(values, errors="raise").to_numpy(
                    dtype=np.float32, na_value=np.nan
                )
            elif col["kind"] == "datetime":
                array = _epoch_seconds(values)
            else:
                array = np.asarray([_category(v) for v in values.tolist()], dtype=object)
            feeds[name] = array.reshape(-1, 1)
        return feeds

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        feeds = self._feeds(frame)
        inputs = {onnx_name: feeds[name] for onnx_name, name in self.inputs}
        if self.task == "regression":
            (output,) = self.session.run([self.output], inputs)
            return pd.DataFrame({"prediction": np.asarray(output).reshape(-1).astype(np.float64)})
        # the graph's label applies the model's decision threshold (binary) or argmax
        label, output = self.session.run(["label", self.output], inputs)
        proba = np.asarray(output).astype(np.float64)
        index = np.asarray(label).reshape(-1).astype(np.int64)
        result: dict[str, Any] = {"prediction": [self.classes[i] for i in index]}
        for i, cls in enumerate(self.classes):
            result[f"proba_{cls}"] = proba[:, i]
        return pd.DataFrame(result)


def _load_pyfunc(data_path: str) -> TabpipeOnnxModel:
    """The entry point MLflow calls with the model's ``data`` folder."""
    return TabpipeOnnxModel(data_path)
