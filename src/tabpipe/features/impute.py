# ruff: noqa: N803 - scikit-learn names the feature matrix X
"""Model-based imputation: a nearest-neighbours imputer at the head of the numeric features.

Cleaning marks the columns whose missing values are learned from the other columns
(``impute: knn``); :class:`NeighbourImputer` imputes them from the
:data:`~tabpipe.data.cleaning.columns.KNN_NEIGHBORS` nearest training rows, measured
on every numeric feature (NaN-aware Euclidean distance), and outputs only the marked
columns (the others keep their family's own handling). It is fitted inside each
training fold and travels with the model: in the skops pipeline, and in the ONNX graph
through skl2onnx's ``KNNImputer`` converter followed by a column ``Gather``
(:func:`register`; that converter needs ONNX opset 18).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.impute import KNNImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from tabpipe.data.cleaning.columns import KNN_NEIGHBORS

#: The ONNX opset a graph with a :class:`NeighbourImputer` needs.
KNN_OPSET = 18


class NeighbourImputer(KNNImputer):  # type: ignore[misc]
    """``KNNImputer`` over all its input columns that outputs only ``columns`` (indices)."""

    def __init__(
        self,
        columns: list[int] | None = None,
        n_neighbors: int = KNN_NEIGHBORS,
        keep_empty_features: bool = True,
    ) -> None:
        super().__init__(n_neighbors=n_neighbors, keep_empty_features=keep_empty_features)
        self.columns = columns

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        full = np.asarray(super().transform(X))
        return full[:, self._picked()]

    def _picked(self) -> list[int]:
        return list(range(self.n_features_in_)) if self.columns is None else list(self.columns)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = np.asarray(super().get_feature_names_out(input_features), dtype=object)
        return names[self._picked()]


def knn_imputer(numeric: list[str], marked: list[str], scale: bool) -> Any:
    """Impute ``marked`` (a subset of ``numeric``) from neighbours on all of ``numeric``."""
    imputer = NeighbourImputer(columns=[numeric.index(c) for c in marked])
    if not scale:
        return imputer
    return Pipeline([("impute", imputer), ("scale", StandardScaler())])


def uses_neighbours(estimator: Any) -> bool:
    """Whether a fitted pipeline (or ensemble of them) holds a :class:`NeighbourImputer`."""
    if isinstance(estimator, NeighbourImputer):
        return True
    children: list[Any] = []
    for attr in ("steps", "transformers_", "estimators_"):
        for item in getattr(estimator, attr, None) or []:
            children.append(item[1] if isinstance(item, tuple) else item)
    return any(uses_neighbours(c) for c in children)


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(operator.raw_operator._picked())])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    inner = scope.declare_local_operator("SklearnKNNImputer", model)
    inner.inputs = operator.inputs
    full = scope.declare_local_variable("knn_full", FloatTensorType([n, model.n_features_in_]))
    inner.outputs.append(full)
    index = scope.get_unique_variable_name("knn_columns")
    container.add_initializer(index, TensorProto.INT64, [len(model._picked())], model._picked())
    container.add_node(
        "Gather",
        [full.full_name, index],
        operator.outputs[0].full_name,
        axis=1,
        name=scope.get_unique_operator_name("KnnPick"),
    )


def register() -> None:
    """Make skl2onnx know :class:`NeighbourImputer` (idempotent)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(NeighbourImputer, "TabpipeNeighbourImputer", _shape, _convert)
