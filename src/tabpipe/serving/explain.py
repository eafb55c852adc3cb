"""Per-feature contributions (SHAP values from the tree booster) for one request.

Supported models: LightGBM (``pred_contrib``) and XGBoost (``pred_contribs``)
at the end of a scikit-learn ``Pipeline`` whose first step is a
``ColumnTransformer``. Contributions of the encoded columns (one per one-hot
category) are summed back to the request's input columns, in the model's raw
score units (log-odds for binary, the value for regression); ``_bias`` is the
expected raw score. For multiclass models they are those of the predicted class.

Other models (linear, random forest, ensembles) do not support it: a request
for contributions then gets a 400 saying so. This module loads the native
pipeline, so it imports scikit-learn; the server does so only on the first
request that asks for contributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tabpipe.errors import RequestError

BIAS = "_bias"


def _booster_kind(model: Any) -> str | None:
    module = type(model).__module__
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("xgboost"):
        return "xgboost"
    return None


def base_model(model: Any) -> Any:
    """The fitted pipeline inside a calibration wrapper (contributions stay in raw units)."""
    while not hasattr(model, "steps") and hasattr(model, "estimator_"):
        model = model.estimator_
    return model


def supports_contributions(pipeline: Any) -> bool:
    steps = getattr(base_model(pipeline), "steps", None)
    return bool(steps) and _booster_kind(steps[-1][1]) is not None  # type: ignore[index]


def _groups(preprocessor: Any, names: list[str]) -> list[str]:
    """For each encoded feature, the input column it came from."""
    owners: list[str] = []
    for _, transformer, selected in preprocessor.transformers_:
        if transformer == "drop" or not len(selected):
            continue
        columns = [str(c) for c in selected]
        if transformer == "passthrough":
            owners.extend(columns)
            continue
        owners.extend(_owners(transformer, columns))
    del names
    return owners


def _owners(transformer: Any, columns: list[str]) -> list[str]:
    """Map one transformer's outputs to its inputs: 1:1, one-hot blocks, or by name prefix."""
    out = [str(n) for n in transformer.get_feature_names_out(columns)]
    if len(out) == len(columns):
        return columns
    if len(columns) == 1:
        return columns * len(out)
    categories = getattr(transformer, "categories_", None)
    if categories is not None and sum(len(c) for c in categories) == len(out):
        return [col for col, cats in zip(columns, categories, strict=True) for _ in cats]
    by_length = sorted(columns, key=len, reverse=True)
    owners = []
    for name in out:
        owner = next((c for c in by_length if name == c or name.startswith(f"{c}_")), None)
        if owner is None:
            raise RequestError("contributions are not available for this preprocessing")
        owners.append(owner)
    return owners


class Explainer:
    """Contributions of a native pipeline, summed back to input columns."""

    def __init__(self, pipeline: Any, columns: list[str], task: str) -> None:
        pipeline = base_model(pipeline)
        if not supports_contributions(pipeline):
            model = type(pipeline.steps[-1][1]).__name__ if hasattr(pipeline, "steps") else "?"
            raise RequestError(
                f"per-feature contributions are not available for {model}; they are supported "
                "for LightGBM and XGBoost models"
            )
        self.pipeline = pipeline
        self.columns = columns
        self.task = task
        self.preprocessor = pipeline.steps[0][1]
        self.model = pipeline.steps[-1][1]
        self.kind = _booster_kind(self.model)
        self.owners = _groups_safe(self.preprocessor, columns)

    def contributions(self, feeds: dict[str, np.ndarray]) -> list[dict[str, float]]:
        import pandas as pd

        frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
        encoded = self.preprocessor.transform(frame)
        raw = self._raw(np.asarray(encoded, dtype=np.float64))
        width = len(self.owners) + 1
        if raw.shape[1] % width:
            raise RequestError("contributions are not available for this preprocessing")
        if raw.shape[1] > width:  # multiclass: one block per class; keep the predicted one
            blocks = raw.reshape(raw.shape[0], -1, width)
            chosen = blocks.sum(axis=2).argmax(axis=1)
            raw = blocks[np.arange(raw.shape[0]), chosen]
        out: list[dict[str, float]] = []
        for row in raw:
            summed = dict.fromkeys(self.columns, 0.0)
            for owner, value in zip(self.owners, row[:-1], strict=True):
                summed[owner] += float(value)
            summed[BIAS] = float(row[-1])
            out.append(summed)
        return out

    def _raw(self, encoded: np.ndarray) -> np.ndarray:
        if self.kind == "lightgbm":
            return np.asarray(self.model.predict(encoded, pred_contrib=True), dtype=np.float64)
        import xgboost as xgb

        booster = self.model.get_booster()
        values = booster.predict(xgb.DMatrix(encoded), pred_contribs=True)
        values = np.asarray(values, dtype=np.float64)
        return values.reshape(values.shape[0], -1)


def _groups_safe(preprocessor: Any, columns: list[str]) -> list[str]:
    try:
        return _groups(preprocessor, columns)
    except (AttributeError, ValueError, TypeError) as exc:
        raise RequestError(
            f"contributions are not available for this preprocessing: {exc}"
        ) from exc
