# ruff: noqa: N803 - scikit-learn names the feature matrix X
"""Model-based imputation: a nearest-neighbours imputer at the head of the numeric features.

Cleaning marks the columns whose missing values are learned from the other columns
(``impute: knn``); :class:`NeighbourImputer` fills a missing value with the mean of
that column over the :data:`~tabpipe.data.cleaning.columns.KNN_NEIGHBORS` nearest
training rows that have it, by scikit-learn's NaN-aware Euclidean distance over every
numeric feature (``KNNImputer`` semantics), and outputs only the marked columns (the
others keep their family's own handling). It is fitted inside each training fold and
travels with the model: in the skops pipeline and as ONNX nodes (:func:`register`).

Why not ``KNNImputer`` and skl2onnx's converter: duplicate rows (common in real data)
tie on distance, and which tied donor wins then differs between scikit-learn
(``argpartition``) and ONNX (``TopK``), as do near-ties from different float
arithmetic, so imputed values and every tree split on them disagreed. Here both sides
compute the same float32 operations in the same order (sums as sequential adds) and
break ties by training-row order, as ``TopK`` does. Donors are capped at
:data:`MAX_DONORS` evenly spaced training rows, which bounds the memory and the
serving cost of a request (distances to every donor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from tabpipe.data.cleaning.columns import KNN_NEIGHBORS

MAX_DONORS = 5000
_CHUNK = 128


class NeighbourImputer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Impute the input columns ``columns`` (indices; None: all) from nearest rows."""

    def __init__(
        self,
        columns: list[int] | None = None,
        n_neighbors: int = KNN_NEIGHBORS,
        max_donors: int = MAX_DONORS,
    ) -> None:
        self.columns = columns
        self.n_neighbors = n_neighbors
        self.max_donors = max_donors

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # computes in float32 (the model input's type, and the ONNX graph's)
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: Any, y: Any = None) -> NeighbourImputer:
        x = validate_data(self, X, dtype=np.float32, ensure_all_finite="allow-nan")
        self.columns_ = (
            list(range(x.shape[1])) if self.columns is None else [int(c) for c in self.columns]
        )
        present = ~np.isnan(x)
        self.donors_: list[np.ndarray] = []
        self.presence_: list[np.ndarray] = []
        self.values_: list[np.ndarray] = []
        self.means_: list[float] = []
        for j in self.columns_:
            rows = np.flatnonzero(present[:, j])
            if len(rows) > self.max_donors:
                rows = rows[np.linspace(0, len(rows) - 1, self.max_donors).astype(np.int64)]
            self.donors_.append(np.where(present[rows], x[rows], 0).astype(np.float32))
            self.presence_.append(present[rows].astype(np.float32))
            self.values_.append(x[rows, j].astype(np.float32))
            self.means_.append(float(np.mean(x[rows, j])) if len(rows) else 0.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "columns_")
        x = validate_data(self, X, dtype=np.float32, ensure_all_finite="allow-nan", reset=False)
        out: np.ndarray = np.array(x[:, self.columns_], dtype=np.float32)
        for i, j in enumerate(self.columns_):
            receivers = np.flatnonzero(np.isnan(x[:, j]))
            for start in range(0, len(receivers), _CHUNK):
                rows = receivers[start : start + _CHUNK]
                out[rows, i] = self._impute(x[rows], i)
        return out

    def _impute(self, x: np.ndarray, i: int) -> np.ndarray:
        """The same float32 operations, in the same order, as the ONNX nodes."""
        donors, presence, values = self.donors_[i], self.presence_[i], self.values_[i]
        if not len(values):
            return np.full(len(x), self.means_[i], dtype=np.float32)
        missing = np.isnan(x)
        px = (~missing).astype(np.float32)[:, None, :]
        x0 = np.where(missing, np.float32(0), x)[:, None, :]
        diff = x0 - donors[None]
        both = px * presence[None]
        squares = (diff * diff) * both
        total = squares[..., 0]
        for f in range(1, squares.shape[2]):
            total = total + squares[..., f]
        count = both.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = (total * np.float32(x.shape[1])) / count
        ranked = np.where(np.isnan(dist), np.float32(np.inf), dist)
        k = min(self.n_neighbors, len(values))
        idx = np.argsort(ranked, axis=1, kind="stable")[:, :k]
        near = np.take_along_axis(ranked, idx, axis=1)
        finite = np.isfinite(near).astype(np.float32)
        picked = values[idx] * finite
        num, den = picked[:, 0], finite[:, 0]
        for n in range(1, k):
            num, den = num + picked[:, n], den + finite[:, n]
        mean = num / np.maximum(den, np.float32(1))
        return np.where(den > 0, mean, np.float32(self.means_[i])).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        if input_features is None:
            input_features = getattr(
                self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)]
            )
        names = np.asarray(list(input_features), dtype=object)
        return names[self.columns_]


def knn_imputer(numeric: list[str], marked: list[str], scale: bool) -> Any:
    """Impute ``marked`` (a subset of ``numeric``) from neighbours on all of ``numeric``."""
    imputer = NeighbourImputer(columns=[numeric.index(c) for c in marked])
    if not scale:
        return imputer
    return Pipeline([("impute", imputer), ("scale", StandardScaler())])


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(operator.raw_operator.columns_)])


class _Graph:
    """Node helpers for one converter call (unique names from the skl2onnx scope)."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def name(self, base: str) -> str:
        return str(self.scope.get_unique_variable_name(base))

    def const(self, base: str, value: Any, integer: bool = False) -> str:
        from onnx import TensorProto

        array = np.asarray(value, dtype=np.int64 if integer else np.float32)
        var = self.name(base)
        kind = TensorProto.INT64 if integer else TensorProto.FLOAT
        self.container.add_initializer(var, kind, list(array.shape), array.reshape(-1).tolist())
        return var

    def nodes(self, op: str, inputs: list[str], bases: list[str], **attrs: Any) -> list[str]:
        outs = [self.name(b) for b in bases]
        op_name = self.scope.get_unique_operator_name(op)
        self.container.add_node(op, inputs, outs, name=op_name, **attrs)
        return outs

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        return self.nodes(op, inputs, [base], **attrs)[0]

    def chain_sum(self, parts: list[str], base: str) -> str:
        """Sequential adds: the summation order of :meth:`NeighbourImputer._impute`."""
        total = parts[0]
        for part in parts[1:]:
            total = self.node("Add", [total, part], base)
        return total


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """One block of nodes per imputed column, mirroring :meth:`NeighbourImputer._impute`."""
    from onnx import TensorProto

    model: NeighbourImputer = operator.raw_operator
    g = _Graph(scope, container)
    x = operator.inputs[0].full_name
    missing = g.node("IsNaN", [x], "knn_missing")
    present = g.node("Not", [missing], "knn_present")
    px = g.node("Cast", [present], "knn_px", to=TensorProto.FLOAT)
    x0 = g.node("Where", [missing, g.const("knn_zero", 0.0), x], "knn_x0")
    axis1 = g.const("knn_axis1", [1], integer=True)
    rows = (g.node("Unsqueeze", [x0, axis1], "knn_x3"), g.node("Unsqueeze", [px, axis1], "knn_px3"))
    outputs = []
    for i, j in enumerate(model.columns_):
        bounds = [g.const("knn_s", [j], integer=True), g.const("knn_e", [j + 1], integer=True)]
        col = g.node("Slice", [x, *bounds, axis1], "knn_col")
        value = _column_value(g, model, i, rows) if len(model.values_[i]) else None
        if value is None:
            value = g.const("knn_colmean", model.means_[i])
        colnan = g.node("IsNaN", [col], "knn_colnan")
        outputs.append(g.node("Where", [colnan, value, col], "knn_out"))
    out = operator.outputs[0].full_name
    if len(outputs) == 1:
        container.add_node("Identity", outputs, out, name=scope.get_unique_operator_name("Id"))
    else:
        op_name = scope.get_unique_operator_name("Concat")
        container.add_node("Concat", outputs, out, axis=1, name=op_name)


def _column_value(g: _Graph, model: NeighbourImputer, i: int, rows: tuple[str, str]) -> str:
    """The imputed value of column ``i`` for every row: mean over the nearest donors."""
    from onnx import TensorProto

    x3, px3 = rows
    width = int(model.n_features_in_)
    values = model.values_[i]
    diff = g.node("Sub", [x3, g.const("knn_donors", model.donors_[i][None])], "knn_diff")
    both = g.node("Mul", [px3, g.const("knn_presence", model.presence_[i][None])], "knn_both")
    squares = g.node("Mul", [g.node("Mul", [diff, diff], "knn_sq"), both], "knn_squares")
    parts = g.nodes("Split", [squares], [f"knn_part{f}" for f in range(width)], axis=2)
    axis2 = g.const("knn_axis2", [2], integer=True)
    total = g.node("Squeeze", [g.chain_sum(parts, "knn_total"), axis2], "knn_total_sq")
    count = g.node("ReduceSum", [both, axis2], "knn_count", keepdims=0)
    scaled = g.node("Mul", [total, g.const("knn_width", float(width))], "knn_scaled")
    dist = g.node("Div", [scaled, count], "knn_dist")
    distnan = g.node("IsNaN", [dist], "knn_distnan")
    ranked = g.node("Where", [distnan, g.const("knn_inf", np.inf), dist], "knn_ranked")
    k = min(model.n_neighbors, len(values))
    near, idx = g.nodes(
        "TopK",
        [ranked, g.const("knn_k", [k], integer=True)],
        ["knn_near", "knn_idx"],
        axis=1,
        largest=0,
        sorted=1,
    )
    isinf = g.node("IsInf", [near], "knn_isinf")
    finite = g.node("Cast", [g.node("Not", [isinf], "knn_fin")], "knn_finite", to=TensorProto.FLOAT)
    gathered = g.node("Gather", [g.const("knn_values", values), idx], "knn_gathered", axis=0)
    picked = g.node("Mul", [gathered, finite], "knn_picked")
    num = g.chain_sum(
        g.nodes("Split", [picked], [f"knn_p{n}" for n in range(k)], axis=1), "knn_num"
    )
    den = g.chain_sum(
        g.nodes("Split", [finite], [f"knn_w{n}" for n in range(k)], axis=1), "knn_den"
    )
    mean = g.node(
        "Div", [num, g.node("Max", [den, g.const("knn_one", 1.0)], "knn_den1")], "knn_mean"
    )
    has = g.node("Greater", [den, g.const("knn_zero", 0.0)], "knn_has")
    return g.node("Where", [has, mean, g.const("knn_colmean", model.means_[i])], "knn_value")


def register() -> None:
    """Make skl2onnx know :class:`NeighbourImputer` (idempotent)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(NeighbourImputer, "TabpipeNeighbourImputer", _shape, _convert)
