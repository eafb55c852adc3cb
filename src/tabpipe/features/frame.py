"""The canonical model input: numeric columns as float32, categories as strings.

Training, the native runtime and the ONNX runtime all feed the model through
this one conversion, so they see identical values (float32 also keeps tree
thresholds identical between scikit-learn and ONNX).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.packaging.signature import category_text


class FeaturePlan(BaseModel):
    """Which columns enter the model, and as what."""

    numeric: list[str]
    categorical: list[str]
    #: Distinct training values per categorical column (drives the encoding choice).
    cardinality: dict[str, int] = {}
    #: Numeric columns with missing values in training (they get missing indicators).
    with_missing: list[str] = []
    #: Numeric columns imputed by nearest neighbours inside the pipeline (cleaning's ``knn``).
    knn_impute: list[str] = []

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def to_model_frame(frame: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """Cast a cleaned frame to the canonical model input (one column per feature)."""
    out: dict[str, np.ndarray] = {}
    for name in plan.numeric:
        out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float32, na_value=np.nan
        )
    for name in plan.categorical:
        out[name] = categories_to_str(frame[name])
    return pd.DataFrame(out, index=frame.index)


def categories_to_str(column: pd.Series) -> np.ndarray:
    """Categories as text by the same rule the serving signature applies."""
    values = column.astype(object).where(column.notna(), None)
    return np.asarray([category_text(v) for v in values], dtype=object)
