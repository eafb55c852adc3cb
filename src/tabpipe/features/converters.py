"""ONNX converters (skl2onnx) for tabpipe's own transformers.

Each input column is sliced out, mapped with ``ai.onnx.ml.LabelEncoder`` (string to
float or string to string) or ``IsNaN``, and the columns are concatenated again.
"""

from __future__ import annotations

from typing import Any

from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

from tabpipe.features.encoders import RARE, FrequencyEncoder, MissingIndicator, RareCategoryGrouper


def _width(operator: Any) -> int:
    return int(operator.raw_operator.n_features_in_)


def _float_shape(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, _width(operator)])


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


def register() -> None:
    """Make skl2onnx know tabpipe's transformers (idempotent)."""
    update_registered_converter(
        FrequencyEncoder, "TabpipeFrequencyEncoder", _float_shape, _convert_frequency
    )
    update_registered_converter(
        RareCategoryGrouper, "TabpipeRareCategoryGrouper", _string_shape, _convert_rare
    )
    update_registered_converter(
        MissingIndicator, "TabpipeMissingIndicator", _float_shape, _convert_missing
    )
