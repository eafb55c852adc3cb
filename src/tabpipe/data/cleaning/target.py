"""The target: which task it implies, and its values ready for training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabpipe.config import Task
from tabpipe.errors import SchemaError


def detect_task(y: pd.Series) -> Task:
    """binary for two values, multiclass for labels or few integer codes, else regression."""
    distinct = y.nunique(dropna=True)
    if distinct <= 1:
        raise SchemaError(
            f"target column {y.name!r} holds a single value ({y.dropna().iloc[0]!r}); "
            "a model needs at least two classes or varying numbers"
        )
    if distinct == 2:
        return "binary"
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "multiclass"
    values = y.to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and distinct <= 10 and len(y) >= 20 * distinct:
        return "multiclass"
    return "regression"


def prepare_target(
    y: pd.Series, task: Task, name: str
) -> tuple[pd.Series, list[str | int | float | bool] | None]:
    """Numbers (float) for regression; classes as int codes or text, sorted, for classification."""
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = _from_categories(y)
    if y.dtype == object:
        labels = pd.Series(pd.unique(y), dtype=object)
        as_numbers = pd.to_numeric(labels, errors="coerce")
        if as_numbers.notna().all():  # labels like '0' / '1' are numbers
            y = y.map(dict(zip(labels, as_numbers, strict=True)))
    if task == "regression":
        numeric = pd.to_numeric(y, errors="coerce")
        bad = int(numeric.isna().sum())
        if bad:
            example = y[numeric.isna()].iloc[0]
            raise SchemaError(
                f"target column {name!r} is not numeric for regression: {bad} values such as "
                f"{example!r}; set task to binary or multiclass, or fix the values"
            )
        return numeric.astype("float64"), None
    used = _used_categories(y)
    if (int(used.sum()) if used is not None else y.nunique()) < 2:
        raise SchemaError(
            f"target column {name!r} holds a single class ({y.iloc[0]!r}); a classifier needs "
            "at least two"
        )
    if pd.api.types.is_float_dtype(y) and np.all(np.mod(y.to_numpy(), 1) == 0):
        y = y.astype("int64")
    if isinstance(y.dtype, pd.CategoricalDtype):
        if used is None or not used.all():
            y = y.cat.remove_unused_categories()
        return y, sorted(str(c) for c in y.cat.categories)
    if not pd.api.types.is_numeric_dtype(y):
        y = y.astype(str)
    classes = sorted(y.unique().tolist())
    return y, [c.item() if isinstance(c, np.generic) else c for c in classes]


def _used_categories(y: pd.Series) -> np.ndarray | None:
    """For a categorical column, which of its categories occur (one counting pass instead
    of pandas' sort of the codes); None for any other column."""
    if not isinstance(y.dtype, pd.CategoricalDtype):
        return None
    codes = y.cat.codes.to_numpy()
    present = codes >= 0
    counts = np.bincount(
        codes if present.all() else codes[present], minlength=len(y.cat.categories)
    )
    used: np.ndarray = counts > 0
    return used


def _from_categories(y: pd.Series) -> pd.Series:
    """A categorical target: numbers when every label is one (e.g. '0' / '1'), else text labels."""
    labels = pd.Series(list(y.cat.categories), dtype=object)
    numbers = pd.to_numeric(labels, errors="coerce")
    if len(labels) and numbers.notna().all():
        codes = y.cat.codes.to_numpy()
        values = np.where(codes >= 0, numbers.to_numpy(dtype=np.float64)[codes], np.nan)
        return pd.Series(values, index=y.index, name=y.name)
    return y.cat.rename_categories([str(c) for c in labels])
