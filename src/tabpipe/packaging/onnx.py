"""Conversion of a fitted pipeline (or weighted ensemble of pipelines) to one ONNX graph.

Converters: scikit-learn's own through skl2onnx, LightGBM and XGBoost through onnxmltools,
CatBoost through its own ONNX export (embedded as a node of the skl2onnx graph), and
tabpipe's transformers (:mod:`tabpipe.features.converters`). A
:class:`~tabpipe.modeling.ensemble.WeightedEnsembleClassifier` (or regressor) becomes one
graph: every member's graph, renamed apart, shares the inputs, and a weighted ``Sum``
gives ``probabilities`` (or ``variable``); ``label`` is their ``ArgMax``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

from tabpipe.errors import PackagingError
from tabpipe.packaging.signature import Signature

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _patch_hist_gradient_boosting() -> None:
    """skl2onnx 1.20 passes numpy uint32 node ids from scikit-learn 1.9 trees to ONNX
    attribute lists, which ONNX refuses; cast them to ``int`` (idempotent)."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node
    if getattr(original, "_tabpipe_patched", False):
        return

    def add_node(*args: Any, **kwargs: Any) -> Any:
        fixed = [int(a) if isinstance(a, np.integer | np.bool_ | bool) else a for a in args]
        named = {
            k: int(v) if isinstance(v, np.integer | np.bool_ | bool) else v
            for k, v in kwargs.items()
        }
        return original(*fixed, **named)

    add_node._tabpipe_patched = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def _register_converters() -> None:
    _patch_hist_gradient_boosting()
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    from tabpipe.features import converters

    converters.register()
    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options=classifier_options,
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:  # pragma: no cover - xgboost is a dependency, but stay usable
        pass
    else:
        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    try:
        from catboost import CatBoostClassifier, CatBoostRegressor
    except ImportError:  # pragma: no cover
        return
    update_registered_converter(
        CatBoostClassifier,
        "TabpipeCatBoostClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_catboost,
        parser=_parse_catboost_classifier,
        options=classifier_options,
    )
    update_registered_converter(
        CatBoostRegressor,
        "TabpipeCatBoostRegressor",
        calculate_linear_regressor_output_shapes,
        _convert_catboost,
    )


def _parse_catboost_classifier(
    scope: Any, model: Any, inputs: Any, custom_parsers: Any = None
) -> Any:
    """Declare ``label`` and ``probabilities`` (CatBoost is not a ``ClassifierMixin``)."""
    from skl2onnx.common.data_types import Int64TensorType

    operator = scope.declare_local_operator("TabpipeCatBoostClassifier", model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    operator.outputs.append(scope.declare_local_variable("probabilities", FloatTensorType()))
    return operator.outputs


def _convert_catboost(scope: Any, operator: Any, container: Any) -> None:
    """Embed CatBoost's own ONNX export (one tree-ensemble node) into the graph."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        operator.raw_operator.save_model(str(path), format="onnx")
        exported = onnx.load(str(path))
    (node,) = [n for n in exported.graph.node if n.op_type.startswith("TreeEnsemble")]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    outputs = [o.full_name for o in operator.outputs]
    if node.op_type == "TreeEnsembleClassifier":
        outputs = outputs[:2]
    container.add_node(
        node.op_type,
        operator.inputs[0].full_name,
        outputs,
        op_domain="ai.onnx.ml",
        op_version=1,
        name=scope.get_unique_operator_name(node.op_type),
        **attrs,
    )


def _input_types(signature: Signature) -> list[tuple[str, Any]]:
    """float32 numbers, float64 datetimes (epoch seconds), strings for categories and text."""
    types = {"numeric": FloatTensorType, "datetime": DoubleTensorType}
    return [(c.name, types.get(c.kind, StringTensorType)([None, 1])) for c in signature.columns]


def _convert_pipeline(pipeline: Any, signature: Signature, classifier: bool) -> onnx.ModelProto:
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    model: onnx.ModelProto = convert_sklearn(
        pipeline,
        initial_types=_input_types(signature),
        options=options,
        target_opset=TARGET_OPSET,
    )
    _restore_input_names(model, signature.names)
    return model


def _restore_input_names(model: onnx.ModelProto, names: list[str]) -> None:
    """skl2onnx renames inputs that are not identifiers (``1stFlrSF``); give the names back."""
    renames = {
        inp.name: name
        for inp, name in zip(model.graph.input, names, strict=True)
        if inp.name != name
    }
    if not renames:
        return
    for inp in model.graph.input:
        inp.name = renames.get(inp.name, inp.name)
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]


def to_onnx(
    pipeline: Any,
    signature: Signature,
    *,
    classifier: bool,
    cache: dict[int, onnx.ModelProto] | None = None,
) -> bytes:
    """Convert a fitted ``Pipeline(features, model)`` or a weighted ensemble of them.

    The graph has one input per column (float for numeric, string for categorical) and the
    outputs ``label`` and ``probabilities`` (classifier) or ``variable`` (regressor).
    ``cache`` (keyed by ``id`` of a fitted pipeline) lets a caller that converts several
    candidates convert each ensemble member once.
    """
    cache = {} if cache is None else cache

    def convert(one: Any) -> onnx.ModelProto:
        if id(one) not in cache:
            cache[id(one)] = _convert_pipeline(one, signature, classifier)
        return cache[id(one)]

    from tabpipe.modeling.ensemble import WeightedEnsembleClassifier, WeightedEnsembleRegressor

    _register_converters()
    try:
        if isinstance(pipeline, WeightedEnsembleClassifier | WeightedEnsembleRegressor):
            if id(pipeline) not in cache:
                members = [convert(m) for m in pipeline.estimators_]
                cache[id(pipeline)] = _weighted_sum(
                    members, list(pipeline.weights_), signature, classifier
                )
            model = cache[id(pipeline)]
        else:
            model = convert(pipeline)
    except Exception as exc:  # converters raise many unrelated types
        raise PackagingError(
            f"cannot convert the pipeline to ONNX: {type(exc).__name__}: {exc}"
        ) from exc
    data: bytes = model.SerializeToString()
    return data


def _renamed(graph: onnx.GraphProto, prefix: str, keep: set[str]) -> onnx.GraphProto:
    """A copy of ``graph`` with every name outside ``keep`` prefixed."""
    out = onnx.GraphProto()
    out.CopyFrom(graph)

    def rename(name: str) -> str:
        return name if (not name or name in keep) else f"{prefix}{name}"

    for k, node in enumerate(out.node):
        node.name = rename(node.name) or f"{prefix}node{k}"
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for init in out.initializer:
        init.name = rename(init.name)
    for info in (*out.value_info, *out.output):
        info.name = rename(info.name)
    return out


def _weighted_sum(
    members: list[onnx.ModelProto], weights: list[float], signature: Signature, classifier: bool
) -> onnx.ModelProto:
    keep = set(signature.names)
    output = "probabilities" if classifier else "variable"
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    scaled: list[str] = []
    for i, (member, weight) in enumerate(zip(members, weights, strict=True)):
        graph = _renamed(member.graph, f"m{i}_", keep)
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        w_name = f"m{i}_ensemble_weight"
        inits.append(numpy_helper.from_array(np.asarray([weight], dtype=np.float32), w_name))
        scaled.append(f"m{i}_weighted")
        nodes.append(helper.make_node("Mul", [f"m{i}_{output}", w_name], [scaled[-1]]))
    nodes.append(helper.make_node("Sum", scaled, [output]))
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, None])]
    if classifier:
        nodes.append(helper.make_node("ArgMax", [output], ["label"], axis=1, keepdims=0))
        outputs.insert(0, helper.make_tensor_value_info("label", TensorProto.INT64, [None]))
    graph = helper.make_graph(
        nodes, "tabpipe_ensemble", list(members[0].graph.input), outputs, initializer=inits
    )
    opsets: dict[str, int] = {}
    for member in members:
        for imp in member.opset_import:
            opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    model.ir_version = max(m.ir_version for m in members)
    onnx.checker.check_model(model)
    return model


def parity(native: np.ndarray, onnx_out: np.ndarray) -> float:
    """Largest difference relative to magnitude (absolute for probabilities)."""
    native = np.asarray(native, dtype=np.float64)
    onnx_out = np.asarray(onnx_out, dtype=np.float64).reshape(native.shape)
    return (
        float(np.max(np.abs(native - onnx_out) / np.maximum(1.0, np.abs(native))))
        if native.size
        else 0.0
    )
