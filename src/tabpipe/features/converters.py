"""ONNX converters (skl2onnx) for tabpipe's own transformers.

Each input column is sliced out, mapped with ``ai.onnx.ml.LabelEncoder`` (string to
float or string to string), ``IsNaN``, or float64 arithmetic that repeats the numpy
code of :mod:`tabpipe.features.datetimes` operation for operation, and the columns are
concatenated again (and cast to float32). The Yeo-Johnson transform of
:mod:`tabpipe.features.numeric` runs on the whole matrix at once, with a row of
per-column constants, so its node count does not grow with the columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

from tabpipe.data.dates import SECONDS_PER_DAY
from tabpipe.features.datetimes import CYCLE_GRID, TAU, DatetimeFeatures
from tabpipe.features.encoders import RARE, FrequencyEncoder, MissingIndicator, RareCategoryGrouper
from tabpipe.features.numeric import EPS, SkewPowerTransformer


def _width(operator: Any) -> int:
    return int(operator.raw_operator.n_features_in_)


def _float_shape(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, _width(operator)])


def _float_parser(alias: str) -> Any:
    """Declare a float output at parse time, whatever the input type (float64 datetimes),
    so the next step of a pipeline is parsed with float input."""

    def parse(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
        operator = scope.declare_local_operator(alias, model)
        operator.inputs = inputs
        operator.outputs.append(scope.declare_local_variable("variable", FloatTensorType()))
        return operator.outputs

    return parse


def _string_shape(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = StringTensorType([n, _width(operator)])


def _column(scope: Any, container: Any, source: str, j: int) -> str:
    """Slice column ``j`` out of a 2-D tensor (shape (n, 1))."""
    names = []
    for tag, value in (("starts", j), ("ends", j + 1), ("axes", 1)):
        name = scope.get_unique_variable_name(f"slice_{tag}")
        container.add_initializer(name, TensorProto.INT64, [1], [value])
        names.append(name)
    out: str = scope.get_unique_variable_name(f"col{j}")
    container.add_node("Slice", [source, *names], out, name=scope.get_unique_operator_name("Slice"))
    return out


def _concat(scope: Any, container: Any, parts: list[str], output: str) -> None:
    container.add_node(
        "Concat", parts, output, axis=1, name=scope.get_unique_operator_name("Concat")
    )


def _label_encoder(scope: Any, container: Any, source: str, output: str, **attrs: Any) -> None:
    container.add_node(
        "LabelEncoder",
        source,
        output,
        op_domain="ai.onnx.ml",
        op_version=2,
        name=scope.get_unique_operator_name("LabelEncoder"),
        **attrs,
    )


def _convert_frequency(scope: Any, operator: Any, container: Any) -> None:
    op: FrequencyEncoder = operator.raw_operator
    source = operator.inputs[0].full_name
    parts = []
    for j, table in enumerate(op.frequencies_):
        col = _column(scope, container, source, j)
        out = scope.get_unique_variable_name(f"freq{j}")
        keys = list(table) or ["\x00"]
        _label_encoder(
            scope,
            container,
            col,
            out,
            keys_strings=keys,
            values_floats=[table.get(k, 0.0) for k in keys],
            default_float=0.0,
        )
        parts.append(out)
    _concat(scope, container, parts, operator.outputs[0].full_name)


def _convert_rare(scope: Any, operator: Any, container: Any) -> None:
    op: RareCategoryGrouper = operator.raw_operator
    if op.unseen == "error":
        raise NotImplementedError(
            "RareCategoryGrouper(unseen='error') cannot be expressed in ONNX; "
            "use unseen='rare' or 'missing'"
        )
    source = operator.inputs[0].full_name
    fallback = RARE if op.unseen == "rare" else ""
    parts = []
    for j in range(len(op.kept_)):
        col = _column(scope, container, source, j)
        out = scope.get_unique_variable_name(f"grouped{j}")
        mapping = op.mapping(j) or {"\x00": fallback}
        _label_encoder(
            scope,
            container,
            col,
            out,
            keys_strings=list(mapping),
            values_strings=list(mapping.values()),
            default_string=fallback,
        )
        parts.append(out)
    _concat(scope, container, parts, operator.outputs[0].full_name)


def _convert_missing(scope: Any, operator: Any, container: Any) -> None:
    flags = scope.get_unique_variable_name("isnan")
    container.add_node(
        "IsNaN",
        operator.inputs[0].full_name,
        flags,
        name=scope.get_unique_operator_name("IsNaN"),
    )
    container.add_node(
        "Cast",
        flags,
        operator.outputs[0].full_name,
        to=TensorProto.FLOAT,
        name=scope.get_unique_operator_name("Cast"),
    )


class _Ops:
    """Add float64 nodes to a graph; each call returns the name of its output."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def const(self, value: float) -> str:
        name: str = self.scope.get_unique_variable_name("c")
        self.container.add_initializer(name, TensorProto.DOUBLE, [], [float(value)])
        return name

    def row(self, values: np.ndarray) -> str:
        """A (1, n) constant: one value per column, broadcast over the rows."""
        name: str = self.scope.get_unique_variable_name("row")
        array = np.asarray(values).reshape(1, -1)
        kind = TensorProto.BOOL if array.dtype == bool else TensorProto.DOUBLE
        values_list = [bool(v) for v in array[0]] if kind == TensorProto.BOOL else array[0].tolist()
        self.container.add_initializer(name, kind, list(array.shape), values_list)
        return name

    def node(self, op: str, *inputs: str, **attrs: Any) -> str:
        out: str = self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op, list(inputs), out, name=self.scope.get_unique_operator_name(op), **attrs
        )
        return out

    def arith(self, op: str, a: str, b: float | str) -> str:
        return self.node(op, a, self.const(b) if isinstance(b, float | int) else b)

    def floor_div(self, a: str, b: float) -> str:
        return self.node("Floor", self.arith("Div", a, b))

    def flag(self, op: str, a: str, b: float) -> str:
        """A comparison as 0.0 / 1.0."""
        return self.node("Cast", self.arith(op, a, b), to=TensorProto.DOUBLE)

    def float_columns(self, parts: list[str], output: str) -> None:
        """Concatenate float64 columns into ``output`` as float32."""
        joined = self.node("Concat", *parts, axis=1)
        self.container.add_node(
            "Cast",
            joined,
            output,
            to=TensorProto.FLOAT,
            name=self.scope.get_unique_operator_name("Cast"),
        )


def _calendar(ops: _Ops, seconds: str) -> dict[str, str]:
    """The ONNX form of :func:`tabpipe.features.datetimes.calendar`."""
    days = ops.floor_div(seconds, SECONDS_PER_DAY)
    second_of_day = ops.arith("Sub", seconds, ops.arith("Mul", days, SECONDS_PER_DAY))
    z = ops.arith("Add", days, 719468.0)
    era = ops.floor_div(z, 146097.0)
    doe = ops.arith("Sub", z, ops.arith("Mul", era, 146097.0))
    inner = ops.arith("Sub", doe, ops.floor_div(doe, 1460.0))
    inner = ops.arith("Add", inner, ops.floor_div(doe, 36524.0))
    inner = ops.arith("Sub", inner, ops.floor_div(doe, 146096.0))
    yoe = ops.floor_div(inner, 365.0)
    start = ops.arith("Add", ops.arith("Mul", yoe, 365.0), ops.floor_div(yoe, 4.0))
    doy = ops.arith("Sub", doe, ops.arith("Sub", start, ops.floor_div(yoe, 100.0)))
    mp = ops.floor_div(ops.arith("Add", ops.arith("Mul", doy, 5.0), 2.0), 153.0)
    month_start = ops.floor_div(ops.arith("Add", ops.arith("Mul", mp, 153.0), 2.0), 5.0)
    day = ops.arith("Add", ops.arith("Sub", doy, month_start), 1.0)
    wrap = ops.arith("Mul", ops.flag("GreaterOrEqual", mp, 10.0), 12.0)
    month = ops.arith("Sub", ops.arith("Add", mp, 3.0), wrap)
    year = ops.arith("Add", yoe, ops.arith("Mul", era, 400.0))
    year = ops.arith("Add", year, ops.flag("LessOrEqual", month, 2.0))
    shifted = ops.arith("Add", days, 3.0)
    dow = ops.arith("Sub", shifted, ops.arith("Mul", ops.floor_div(shifted, 7.0), 7.0))
    hours = ops.arith("Div", second_of_day, 3600.0)
    return {
        "year": year,
        "month": month,
        "day": day,
        "dayofweek": dow,
        "hour": ops.node("Floor", hours),
        "hour_fraction": hours,
    }


def _datetime_shape(operator: Any) -> None:
    op: DatetimeFeatures = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    width = sum(len(op.outputs(j)) for j in range(op.n_features_in_))
    operator.outputs[0].type = FloatTensorType([n, width])


def _convert_datetime(scope: Any, operator: Any, container: Any) -> None:
    op: DatetimeFeatures = operator.raw_operator
    ops = _Ops(scope, container)
    source = ops.node("Cast", operator.inputs[0].full_name, to=TensorProto.DOUBLE)
    parts = []
    for j in range(op.n_features_in_):
        seconds = _column(scope, container, source, j)
        cal = _calendar(ops, seconds)
        cycles = {
            "month": ops.arith("Div", ops.arith("Sub", cal["month"], 1.0), 12.0),
            "dayofweek": ops.arith("Div", cal["dayofweek"], 7.0),
            "hour": ops.arith("Div", cal["hour_fraction"], 24.0),
        }
        for name in op.outputs(j):
            if name in cal:
                parts.append(cal[name])
            elif name == "elapsed_days":
                since = ops.arith("Sub", seconds, float(op.reference_[j]))
                parts.append(ops.arith("Div", since, SECONDS_PER_DAY))
            else:
                base, fn = name.rsplit("_", 1)
                angle = ops.arith("Mul", cycles[base], TAU)
                wave = ops.node("Sin" if fn == "sin" else "Cos", angle)
                grid = ops.node("Round", ops.arith("Mul", wave, CYCLE_GRID))
                parts.append(ops.arith("Div", grid, CYCLE_GRID))
    ops.float_columns(parts, operator.outputs[0].full_name)


def _convert_power(scope: Any, operator: Any, container: Any) -> None:
    """The ONNX form of :func:`tabpipe.features.numeric.yeo_johnson`, all columns at once.

    Each operation of the numpy code runs on the whole float64 matrix with a row of
    per-column constants (the exponents; 1.0 where a column does not use that branch),
    so the node count does not grow with the number of columns; ``Where`` picks each
    column's branch and keeps the columns without a lambda as they are.
    """
    op: SkewPowerTransformer = operator.raw_operator
    ops = _Ops(scope, container)
    x = ops.node("Cast", operator.inputs[0].full_name, to=TensorProto.DOUBLE)
    lams = np.asarray(op.lambdas_, dtype=np.float64)
    active = ~np.isnan(lams)
    if not active.any():
        container.add_node(
            "Cast",
            x,
            operator.outputs[0].full_name,
            to=TensorProto.FLOAT,
            name=scope.get_unique_operator_name("Cast"),
        )
        return
    lam = np.where(active, lams, 1.0)
    pos_log = active & (np.abs(lam) < EPS)
    neg_log = active & (np.abs(lam - 2.0) <= EPS)
    pos_lam = np.where(pos_log, 1.0, lam)
    neg_lam = np.where(neg_log, 1.0, 2.0 - lam)
    plus = ops.arith("Add", x, 1.0)
    pos = ops.arith(
        "Div", ops.arith("Sub", ops.arith("Pow", plus, ops.row(pos_lam)), 1.0), ops.row(pos_lam)
    )
    if pos_log.any():
        pos = ops.node("Where", ops.row(pos_log), ops.node("Log", plus), pos)
    flipped = ops.arith("Sub", ops.const(1.0), x)
    powered = ops.arith("Pow", flipped, ops.row(neg_lam))
    neg = ops.node("Neg", ops.arith("Div", ops.arith("Sub", powered, 1.0), ops.row(neg_lam)))
    if neg_log.any():
        neg = ops.node("Where", ops.row(neg_log), ops.node("Neg", ops.node("Log", flipped)), neg)
    out = ops.node("Where", ops.arith("GreaterOrEqual", x, 0.0), pos, neg)
    if not active.all():
        out = ops.node("Where", ops.row(active), out, x)
    container.add_node(
        "Cast",
        out,
        operator.outputs[0].full_name,
        to=TensorProto.FLOAT,
        name=scope.get_unique_operator_name("Cast"),
    )


def _strings_only(op: Any) -> bool:
    """A OneHotEncoder that :func:`_convert_one_hot` can express: string categories,
    unknown values ignored, nothing dropped, no infrequent grouping, float output."""
    return (
        getattr(op, "drop_idx_", None) is None
        and op.handle_unknown == "ignore"
        and not getattr(op, "_infrequent_enabled", False)
        and not np.issubdtype(op.dtype, np.integer)
        and all(all(isinstance(c, str) for c in cats) for cats in op.categories_)
    )


def _convert_one_hot(scope: Any, operator: Any, container: Any) -> None:
    """A OneHotEncoder of string columns as one ``OneHot`` over all of them.

    Each column's ``LabelEncoder`` gives the position of its category in the whole
    output (an unknown value gets the spare position ``width``); ``OneHot`` of the
    positions, summed over the columns, and cut at ``width`` is the encoding. The
    node count grows by one per column instead of two, and the ``LabelEncoder`` of
    a :class:`RareCategoryGrouper` before it merges into the column's encoder
    (:mod:`tabpipe.packaging.onnx_simplify`). Anything else goes to skl2onnx.
    """
    op = operator.raw_operator
    if len(operator.inputs) != 1 or not _strings_only(op):
        from skl2onnx.operator_converters.one_hot_encoder import (
            convert_sklearn_one_hot_encoder,
        )

        convert_sklearn_one_hot_encoder(scope, operator, container)
        return
    ops = _Ops(scope, container)
    source = operator.inputs[0].full_name
    width = sum(len(cats) for cats in op.categories_)
    positions, offset = [], 0
    for j, cats in enumerate(op.categories_):
        out = scope.get_unique_variable_name(f"position{j}")
        _label_encoder(
            scope,
            container,
            _column(scope, container, source, j),
            out,
            keys_strings=[str(c) for c in cats] or ["\x00"],
            values_int64s=list(range(offset, offset + len(cats))) or [width],
            default_int64=width,
        )
        positions.append(out)
        offset += len(cats)
    joined = ops.node("Concat", *positions, axis=1)
    depth = scope.get_unique_variable_name("depth")
    container.add_initializer(depth, TensorProto.INT64, [1], [width + 1])
    values = scope.get_unique_variable_name("off_on")
    container.add_initializer(values, TensorProto.FLOAT, [2], [0.0, 1.0])
    hot = ops.node("OneHot", joined, depth, values, axis=-1)
    axes = scope.get_unique_variable_name("axes")
    container.add_initializer(axes, TensorProto.INT64, [1], [1])
    summed = ops.node("ReduceSum", hot, axes, keepdims=0)
    starts = scope.get_unique_variable_name("starts")
    container.add_initializer(starts, TensorProto.INT64, [1], [0])
    ends = scope.get_unique_variable_name("ends")
    container.add_initializer(ends, TensorProto.INT64, [1], [width])
    container.add_node(
        "Slice",
        [summed, starts, ends, axes],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Slice"),
    )


def register() -> None:
    """Make skl2onnx know tabpipe's transformers (idempotent)."""
    update_registered_converter(
        FrequencyEncoder, "TabpipeFrequencyEncoder", _float_shape, _convert_frequency
    )
    update_registered_converter(
        RareCategoryGrouper, "TabpipeRareCategoryGrouper", _string_shape, _convert_rare
    )
    update_registered_converter(
        MissingIndicator,
        "TabpipeMissingIndicator",
        _float_shape,
        _convert_missing,
        parser=_float_parser("TabpipeMissingIndicator"),
    )
    update_registered_converter(
        DatetimeFeatures,
        "TabpipeDatetimeFeatures",
        _datetime_shape,
        _convert_datetime,
        parser=_float_parser("TabpipeDatetimeFeatures"),
    )
    update_registered_converter(
        SkewPowerTransformer, "TabpipeSkewPowerTransformer", _float_shape, _convert_power
    )
    from skl2onnx.shape_calculators.one_hot_encoder import (
        calculate_sklearn_one_hot_encoder_output_shapes,
    )
    from sklearn.preprocessing import OneHotEncoder

    update_registered_converter(
        OneHotEncoder,
        "SklearnOneHotEncoder",
        calculate_sklearn_one_hot_encoder_output_shapes,
        _convert_one_hot,
    )
