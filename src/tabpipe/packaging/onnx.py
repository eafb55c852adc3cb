"""Conversion of a fitted pipeline (or weighted ensemble of pipelines) to one ONNX graph.

Converters: scikit-learn's own through skl2onnx (random forests and extra trees through
the vectorized :mod:`tabpipe.packaging.onnx_forest`), LightGBM and XGBoost through onnxmltools,
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
from tabpipe.packaging.onnx_simplify import simplify
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


def float32_down(value: float) -> float:
    """The largest float32 not above ``value``: for a float32 ``x``, ``x <= value`` holds
    exactly when ``x <= float32_down(value)``."""
    down = np.float32(value)
    if float(down) > value:
        down = np.nextafter(down, np.float32(-np.inf), dtype=np.float32)
    return float(down)


def float32_safe_booster(booster: Any) -> Any:
    """A copy of a LightGBM booster whose numeric split thresholds are float32 values.

    LightGBM splits at double midpoints between feature values; ONNX stores
    thresholds as float32, rounded to nearest, which can move a threshold onto a
    float32 input and send it the other way. Rounding each threshold down instead
    keeps every float32 input (tabpipe feeds float32) on the same side.
    Categorical splits (``decision_type`` bit 0) keep their set index.
    """
    from lightgbm import Booster

    lines = booster.model_to_string().split("\n")
    threshold = -1  # index of the current tree's threshold line
    for i, line in enumerate(lines):
        if line.startswith("Tree="):
            threshold = -1
        elif line.startswith("threshold="):
            threshold = i
        elif line.startswith("decision_type=") and threshold >= 0:
            kinds = [int(v) for v in line.removeprefix("decision_type=").split()]
            values = lines[threshold].removeprefix("threshold=").split()
            safe = [
                v if kind & 1 else repr(float32_down(float(v)))
                for v, kind in zip(values, kinds, strict=True)
            ]
            lines[threshold] = "threshold=" + " ".join(safe)
    # the header's byte sizes of the trees no longer hold: without them LightGBM reads in order
    text = "\n".join(line for line in lines if not line.startswith("tree_sizes="))
    return Booster(model_str=text)


def _convert_lightgbm(scope: Any, operator: Any, container: Any) -> None:
    """onnxmltools' LightGBM converter, fed a float32-safe copy of the booster."""
    import copy

    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    model = operator.raw_operator
    safe = copy.copy(model)
    safe._Booster = float32_safe_booster(model.booster_)
    operator.raw_operator = safe
    try:
        convert_lightgbm(scope, operator, container)
    finally:
        operator.raw_operator = model


def _register_converters() -> None:
    _patch_hist_gradient_boosting()
    from lightgbm import LGBMClassifier, LGBMRegressor

    convert_lightgbm = _convert_lightgbm

    from tabpipe.features import converters, impute
    from tabpipe.packaging import onnx_forest

    converters.register()
    impute.register()
    onnx_forest.register()
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
    from tabpipe.packaging.onnx_forest import deferred

    model = deferred(
        lambda: convert_sklearn(
            pipeline,
            initial_types=_input_types(signature),
            options=options,
            target_opset=TARGET_OPSET,
        )
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

    from tabpipe.modeling.decision import CalibratedModel
    from tabpipe.modeling.ensemble import WeightedEnsembleClassifier, WeightedEnsembleRegressor

    decided = pipeline if isinstance(pipeline, CalibratedModel) else None
    if decided is not None:
        pipeline = decided.estimator_
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
        if decided is not None:
            model = with_decision(model, decided)
        model = simplify(model)
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
    functions: dict[tuple[str, str], onnx.FunctionProto] = {}
    for member in members:
        for fn in member.functions:
            functions.setdefault((fn.domain, fn.name), fn)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        functions=list(functions.values()),
    )
    model.ir_version = max(m.ir_version for m in members)
    onnx.checker.check_model(model)
    return model


def with_decision(model: onnx.ModelProto, decided: Any) -> onnx.ModelProto:
    """A copy of a classifier graph whose ``probabilities`` are calibrated and whose
    ``label`` follows the decision threshold (see :mod:`tabpipe.modeling.decision`)."""
    raw = {"probabilities": "raw_probabilities", "label": "raw_label"}
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    for existing in graph.node:
        existing.input[:] = [raw.get(n, n) for n in existing.input]
        existing.output[:] = [raw.get(n, n) for n in existing.output]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        if not any(i.name == f"decision_{name}" for i in inits):
            array = np.asarray(value, dtype=dtype)
            inits.append(numpy_helper.from_array(array, f"decision_{name}"))
        return f"decision_{name}"

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [f"decision_{output}"], **attrs))
        return f"decision_{output}"

    proba = "raw_probabilities"
    if decided.method == "temperature":
        powered = node("Pow", [proba, const("a", [decided.params[0][0]])], "powered")
        total = node("ReduceSum", [powered, const("axis", [1], np.int64)], "total", keepdims=1)
        total = node("Max", [total, const("eps", [1e-12])], "total_eps")
        proba = node("Div", [powered, total], "calibrated")
    elif decided.method is not None:
        columns = list(decided.columns)
        mapped = []
        for i, k in enumerate(columns):
            col = node(
                "Slice",
                [
                    proba,
                    const(f"s{k}", [k], np.int64),
                    const(f"e{k}", [k + 1], np.int64),
                    const("axis", [1], np.int64),
                ],
                f"p{k}",
            )
            mapped.append(_map_nodes(node, const, col, decided.method, decided.params[i], k))
        if len(columns) == 1:
            rest = node("Sub", [const("one", [1.0]), mapped[0]], "c0")
            proba = node("Concat", [rest, mapped[0]], "calibrated", axis=1)
        else:
            joined = node("Concat", mapped, "joined", axis=1)
            total = node("ReduceSum", [joined, const("axis", [1], np.int64)], "total", keepdims=1)
            total = node("Max", [total, const("eps", [1e-12])], "total_eps")
            proba = node("Div", [joined, total], "calibrated")
    nodes.append(helper.make_node("Identity", [proba], ["probabilities"]))
    if decided.threshold is not None:
        p1 = node(
            "Slice",
            [
                proba,
                const("s_t", [1], np.int64),
                const("e_t", [2], np.int64),
                const("axis", [1], np.int64),
            ],
            "p_positive",
        )
        hit = node("GreaterOrEqual", [p1, const("threshold", [decided.threshold])], "hit")
        flat = node("Reshape", [hit, const("flat", [-1], np.int64)], "hit_flat")
        nodes.append(helper.make_node("Cast", [flat], ["label"], to=TensorProto.INT64))
    else:
        nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None]),
        ]
    )
    out = helper.make_model(
        graph, opset_imports=list(model.opset_import), functions=list(model.functions)
    )
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out


def _map_nodes(node: Any, const: Any, col: str, method: str, params: list[float], k: int) -> str:
    """Nodes of one column's calibration map (sigmoid, or linear interpolation of knots)."""
    if method == "sigmoid":  # 1 / (1 + exp(a p + b)) = Sigmoid((-a) p + (-b)), exactly
        z = node("Mul", [col, const(f"a{k}", [-params[0]])], f"az{k}")
        z = node("Add", [z, const(f"b{k}", [-params[1]])], f"z{k}")
        return str(node("Sigmoid", [z], f"c{k}"))
    half = len(params) // 2
    xs = np.asarray(params[:half], dtype=np.float32)
    ys = np.asarray(params[half:], dtype=np.float32)
    x = node("Clip", [col, const(f"lo{k}", xs[0]), const(f"hi{k}", xs[-1])], f"x{k}")
    above = node("GreaterOrEqual", [x, const(f"inner{k}", xs[1:-1])], f"ge{k}")
    count = node("Cast", [above], f"gef{k}", to=TensorProto.FLOAT)
    index = node("ReduceSum", [count, const("axis", [1], np.int64)], f"idxf{k}", keepdims=1)
    i0 = node("Cast", [index], f"i0{k}", to=TensorProto.INT64)
    i1 = node("Add", [i0, const("one_i", [1], np.int64)], f"i1{k}")
    kx, ky = const(f"kx{k}", xs), const(f"ky{k}", ys)
    x0 = node("Gather", [kx, i0], f"x0{k}")
    x1 = node("Gather", [kx, i1], f"x1{k}")
    y0 = node("Gather", [ky, i0], f"y0{k}")
    y1 = node("Gather", [ky, i1], f"y1{k}")
    t = node("Div", [node("Sub", [x, x0], f"dx{k}"), node("Sub", [x1, x0], f"w{k}")], f"t{k}")
    step = node("Mul", [t, node("Sub", [y1, y0], f"dy{k}")], f"step{k}")
    return str(node("Add", [y0, step], f"c{k}"))


def parity(native: np.ndarray, onnx_out: np.ndarray) -> float:
    """Largest difference relative to magnitude (absolute for probabilities)."""
    native = np.asarray(native, dtype=np.float64)
    onnx_out = np.asarray(onnx_out, dtype=np.float64).reshape(native.shape)
    return (
        float(np.max(np.abs(native - onnx_out) / np.maximum(1.0, np.abs(native))))
        if native.size
        else 0.0
    )
