"""The canonical model input: numeric columns as float32, categories and text as strings,
datetimes as float64 epoch seconds.

Training, the native runtime and the ONNX runtime all feed the model through
this one conversion, so they see identical values (float32 also keeps tree
thresholds identical between scikit-learn and ONNX; datetimes stay float64 because
float32 would round present-day epoch seconds to minutes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.data.dates import epoch_seconds
from tabpipe.packaging.signature import category_text


class FeaturePlan(BaseModel):
    """Which columns enter the model, and as what."""

    numeric: list[str]
    categorical: list[str]
    #: Distinct training values per categorical column (drives the encoding choice).
    cardinality: dict[str, int] = {}
    #: Numeric and datetime columns with missing values in training (missing indicators).
    with_missing: list[str] = []
    #: Numeric columns imputed by nearest neighbours inside the pipeline (cleaning's ``knn``).
    knn_impute: list[str] = []
    #: Datetime columns (expanded into calendar parts, cycles and elapsed days).
    datetime: list[str] = []
    #: Free-text columns (TF-IDF, at most ``text_max_features`` terms each).
    text: list[str] = []
    text_max_features: int = 200
    #: Yeo-Johnson on skewed numeric columns for the linear and kNN styles.
    power_transform: bool = True
    #: Numeric columns whose pairwise products are added (empty: no interactions).
    interactions: list[str] = []

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.datetime, *self.text]


def to_model_frame(frame: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """Cast a cleaned frame to the canonical model input (one column per feature)."""
    out: dict[str, np.ndarray] = {}
    for name in plan.numeric:
        out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float32, na_value=np.nan
        )
    for name in plan.categorical:
        out[name] = categories_to_str(frame[name])
    for name in plan.datetime:
        out[name] = epoch_seconds(frame[name])
    for name in plan.text:  # lower-cased here and at the edge, as the signature does
        out[name] = np.asarray([t.lower() for t in categories_to_str(frame[name])], dtype=object)
    return pd.DataFrame(out, index=frame.index)


def categories_to_str(column: pd.Series) -> np.ndarray:
    """Categories as text by the same rule the serving signature applies."""
    values = column.astype(object).where(column.notna(), None)
    return np.asarray([category_text(v) for v in values], dtype=object)
