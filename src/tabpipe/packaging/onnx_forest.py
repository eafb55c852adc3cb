"""Vectorized ONNX converters for scikit-learn random forests and extra trees.

skl2onnx's forest converter visits every node of every tree in Python; an
unbounded 200-tree extra-trees regressor on 35k rows has ~5 million nodes and
takes about 90 s to convert. These converters emit the same single
``TreeEnsembleRegressor`` / ``TreeEnsembleClassifier`` node, attribute for
attribute (same thresholds, leaf weights, order and opset), but build each
attribute array with numpy from the trees' ``tree_`` arrays at once.

Whatever they do not cover (multi-output forests, inputs other than float32,
``raw_scores``, ``decision_path`` or ``decision_leaf``) goes to skl2onnx's own
converter unchanged.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, NodeProto
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.utils_classifier import get_label_classes
from skl2onnx.operator_converters.random_forest import (
    convert_sklearn_random_forest_classifier,
    convert_sklearn_random_forest_regressor_converter,
)

#: ai.onnx.ml version of the tree-ensemble node, as skl2onnx emits it for forests.
OP_VERSION = 1

#: Options skl2onnx registers for its forest converters (kept, so specs stay valid).
CLASSIFIER_OPTIONS: dict[str, Any] = {
    "zipmap": [True, False, "columns"],
    "raw_scores": [True, False],
    "nocl": [True, False],
    "output_class_labels": [False, True],
    "decision_path": [True, False],
    "decision_leaf": [True, False],
}
REGRESSOR_OPTIONS: dict[str, Any] = {
    "decision_path": [True, False],
    "decision_leaf": [True, False],
}


def float32_thresholds(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each double threshold.

    scikit-learn compares a float32 input with a double threshold; ONNX holds a
    float32 threshold, and rounding to nearest could move it above the double
    and send an input equal to the rounded value the other way. Rounding down
    keeps ``x <= t`` unchanged for every float32 ``x`` (skl2onnx's
    ``sklearn_threshold`` for float32 does the same, one node at a time).
    """
    near = threshold.astype(np.float32)
    return np.where(
        near.astype(np.float64) > threshold, np.nextafter(near, np.float32(-np.inf)), near
    )


def _nodes(trees: list[Any]) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """The ``nodes_*`` attributes of all trees, in tree then node order, plus, for the
    leaves (``children_left == -1``), their tree ids, node ids and ``tree_.value`` rows."""
    counts = np.array([t.node_count for t in trees], dtype=np.int64)
    tree_ids = np.repeat(np.arange(len(trees), dtype=np.int64), counts)
    node_ids = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
    left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
    right = np.concatenate([t.children_right for t in trees]).astype(np.int64)
    feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
    threshold = np.concatenate([t.threshold for t in trees])
    leaf = left == -1
    modes = np.array([b"BRANCH_LEQ", b"LEAF"], dtype=object)[leaf.astype(np.int64)]
    attrs = {
        "nodes_treeids": tree_ids,
        "nodes_nodeids": node_ids,
        "nodes_featureids": np.where(leaf, 0, feature),
        "nodes_modes": modes,
        "nodes_values": np.where(leaf, np.float32(0), float32_thresholds(threshold)),
        "nodes_truenodeids": np.where(leaf, 0, left),
        "nodes_falsenodeids": np.where(leaf, 0, right),
        "nodes_missing_value_tracks_true": np.zeros(len(leaf), dtype=np.int64),
        "nodes_hitrates": np.ones(len(leaf), dtype=np.float32),
    }
    values = np.concatenate([t.value[:, 0, :] for t in trees])
    return attrs, tree_ids[leaf], node_ids[leaf], values[leaf]


def _class_weights(values: np.ndarray, tree_weight: float) -> np.ndarray:
    """Each leaf's class fractions times the tree weight, normalised as skl2onnx does
    (divided by their left-to-right sum, 1 when it is 0); binary keeps the positive
    class only, which ``TreeEnsembleClassifier`` completes to ``1 - p``."""
    total = values[:, 0].copy()
    for k in range(1, values.shape[1]):
        total = total + values[:, k]
    factor = tree_weight / np.where(total != 0.0, total, 1.0)
    weights = values * factor[:, None]
    return weights[:, 1:] if weights.shape[1] == 2 else weights


def _leaf_attributes(
    prefix: str, tree_ids: np.ndarray, node_ids: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """``class_*`` or ``target_*`` attributes: one entry per leaf and output column."""
    n_leaves, width = weights.shape
    return {
        f"{prefix}_treeids": np.repeat(tree_ids, width),
        f"{prefix}_nodeids": np.repeat(node_ids, width),
        f"{prefix}_ids": np.tile(np.arange(width, dtype=np.int64), n_leaves),
        f"{prefix}_weights": weights.astype(np.float32).ravel(),
    }


def _fill(attr: AttributeProto, name: str, values: np.ndarray) -> None:
    """Fill a list attribute in place from an array: ``helper.make_attribute`` inspects
    the type of every element in Python, and adding a built attribute to a node copies
    it, each seconds on millions of nodes."""
    attr.name = name
    if values.dtype == object:
        attr.type = AttributeProto.STRINGS
        attr.strings.extend(values.tolist())
    elif values.dtype.kind == "f":
        attr.type = AttributeProto.FLOATS
        attr.floats.extend(values.tolist())
    else:
        attr.type = AttributeProto.INTS
        attr.ints.extend(values.tolist())


def attach(node: NodeProto, arrays: dict[str, np.ndarray]) -> None:
    """Add the list attributes to ``node``, all attributes in name order (the order
    ``helper.make_node`` gives, so the node equals the one skl2onnx builds)."""
    small = {a.name: a for a in node.attribute}
    kept = {name: AttributeProto() for name in small}
    for name, attr in kept.items():
        attr.CopyFrom(small[name])
    del node.attribute[:]
    for name in sorted([*kept, *arrays]):
        if name in kept:
            node.attribute.add().CopyFrom(kept[name])
        else:
            _fill(node.attribute.add(), name, arrays[name])


#: Node name -> held-back list attributes, while :func:`deferred` is active.
_PENDING: ContextVar[dict[str, dict[str, np.ndarray]] | None] = ContextVar(
    "tabpipe_forest_pending", default=None
)


def deferred(convert: Callable[[], onnx.ModelProto]) -> onnx.ModelProto:
    """Run ``convert`` (a skl2onnx conversion) with the forests' list attributes held
    back, then attach them to the finished model.

    skl2onnx copies every node several times after the converters run (building the
    graph and the model, renaming inputs when it removes identities); with millions of
    tree nodes each copy takes seconds, with the attributes held back it takes none.
    """
    token = _PENDING.set({})
    try:
        model = convert()
        pending = _PENDING.get() or {}
    finally:
        _PENDING.reset(token)
    nodes = {n.name: n for n in model.graph.node if n.name in pending}
    missing = set(pending) - set(nodes)
    if missing:
        raise RuntimeError(f"tree-ensemble nodes lost during conversion: {sorted(missing)}")
    for name, arrays in pending.items():
        attach(nodes[name], arrays)
    return model


def _add_ensemble(
    scope: Any,
    container: Any,
    op_type: str,
    inputs: str,
    outputs: list[str],
    scalars: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:
    """Add the tree-ensemble node through the container (so opsets are tracked) with
    its small attributes; the list attributes are attached now, or after the
    conversion when :func:`deferred` runs it."""
    name = scope.get_unique_operator_name(op_type)
    container.add_node(
        op_type,
        inputs,
        outputs,
        op_domain="ai.onnx.ml",
        op_version=OP_VERSION,
        name=name,
        **scalars,
    )
    pending = _PENDING.get()
    if pending is None:
        attach(container.nodes[-1], arrays)
    else:
        pending[name] = arrays


def _covered(operator: Any, container: Any, defaults: dict[str, bool]) -> bool:
    """Whether the vectorized path applies: a single-output forest on float32 inputs
    and none of the options that change the graph beyond the one ensemble node."""
    model = operator.raw_operator
    if getattr(model, "n_outputs_", None) != 1 or not hasattr(model, "estimators_"):
        return False
    if not isinstance(operator.inputs[0].type, FloatTensorType):
        return False
    options = container.get_options(model, defaults)
    return not any(options[k] for k in defaults)


def _class_labels(scope: Any, model: Any) -> dict[str, list[Any]]:
    """``classlabels_int64s`` or ``classlabels_strings``, as skl2onnx picks them
    (``nocl`` replaces the labels with their indices)."""
    classes = get_label_classes(scope, model)
    if all(isinstance(c, numbers.Real | bool | np.bool_) for c in classes):
        return {"classlabels_int64s": [int(c) for c in classes]}
    if all(isinstance(c, str) for c in classes):
        return {"classlabels_strings": [str(c) for c in classes]}
    raise ValueError("Only string and integer class labels are allowed.")


def convert_forest_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``RandomForestClassifier`` / ``ExtraTreesClassifier`` to one
    ``TreeEnsembleClassifier``: ``probabilities`` is the mean of the trees' leaf
    class fractions, ``label`` its arg-max class."""
    defaults = {"raw_scores": False, "decision_path": False, "decision_leaf": False}
    if not _covered(operator, container, defaults):
        convert_sklearn_random_forest_classifier(scope, operator, container)
        return
    model = operator.raw_operator
    trees = [e.tree_ for e in model.estimators_]
    arrays, tree_ids, node_ids, values = _nodes(trees)
    weights = _class_weights(values, 1.0 / len(trees))
    arrays.update(_leaf_attributes("class", tree_ids, node_ids, weights))
    scalars = {"post_transform": "NONE", **_class_labels(scope, model)}
    outputs = [operator.outputs[0].full_name, operator.outputs[1].full_name]
    _add_ensemble(
        scope,
        container,
        "TreeEnsembleClassifier",
        operator.inputs[0].full_name,
        outputs,
        scalars,
        arrays,
    )


def convert_forest_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``RandomForestRegressor`` / ``ExtraTreesRegressor`` to one
    ``TreeEnsembleRegressor`` summing each leaf value divided by the number of trees."""
    defaults = {"decision_path": False, "decision_leaf": False}
    if not _covered(operator, container, defaults):
        convert_sklearn_random_forest_regressor_converter(scope, operator, container)
        return
    trees = [e.tree_ for e in operator.raw_operator.estimators_]
    arrays, tree_ids, node_ids, values = _nodes(trees)
    weights = values * (1.0 / len(trees))
    arrays.update(_leaf_attributes("target", tree_ids, node_ids, weights))
    _add_ensemble(
        scope,
        container,
        "TreeEnsembleRegressor",
        operator.inputs[0].full_name,
        [operator.outputs[0].full_name],
        {"post_transform": "NONE", "n_targets": 1},
        arrays,
    )


def register() -> None:
    """Put the vectorized converters in place of skl2onnx's for the four forests."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.ensemble_shapes import (
        calculate_tree_classifier_output_shapes,
        calculate_tree_regressor_output_shapes,
    )
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    for model, alias in (
        (RandomForestClassifier, "SklearnRandomForestClassifier"),
        (ExtraTreesClassifier, "SklearnExtraTreesClassifier"),
    ):
        update_registered_converter(
            model,
            alias,
            calculate_tree_classifier_output_shapes,
            convert_forest_classifier,
            options=CLASSIFIER_OPTIONS,
        )
    for model, alias in (
        (RandomForestRegressor, "SklearnRandomForestRegressor"),
        (ExtraTreesRegressor, "SklearnExtraTreesRegressor"),
    ):
        update_registered_converter(
            model,
            alias,
            calculate_tree_regressor_output_shapes,
            convert_forest_regressor,
            options=REGRESSOR_OPTIONS,
        )
