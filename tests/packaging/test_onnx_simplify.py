"""simplify: fewer nodes, the same outputs, the same inputs and outputs of the graph."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from lightgbm import LGBMClassifier
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from xgboost import XGBClassifier

from tabpipe.modeling.ensemble import WeightedEnsembleClassifier
from tabpipe.packaging.onnx import parity, to_onnx
from tabpipe.packaging.onnx_simplify import simplify
from tabpipe.packaging.signature import ColumnSpec, Signature


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feeds)]


def _const(name: str, values: list[int] | list[float], dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("unused", TensorProto.FLOAT, [None, 1]),
        ],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, None]),
            helper.make_tensor_value_info("copy", TensorProto.FLOAT, [None, None]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_no_op_nodes_duplicates_and_dead_ends_go_and_the_outputs_stay() -> None:
    nodes = [
        helper.make_node("Identity", ["a"], ["a1"]),
        helper.make_node("Concat", ["a1"], ["a2"], axis=1),  # one input: a copy
        helper.make_node("Cast", ["a2"], ["a3"], to=TensorProto.FLOAT),  # already float
        helper.make_node("Reshape", ["a3", "shape"], ["a4"]),  # already (n, 1)
        helper.make_node("Slice", ["a4", "zero", "one", "one"], ["a5"]),  # the whole width
        helper.make_node("Concat", ["a5", "b"], ["ab"], axis=1),
        helper.make_node("Slice", ["ab", "one", "two", "one"], ["b1"]),  # exactly input b
        helper.make_node("Gather", ["ab", "zero2"], ["a6"], axis=1),  # exactly input a
        helper.make_node("Mul", ["a6", "w1"], ["m1"]),
        helper.make_node("Mul", ["a6", "w2"], ["m2"]),  # same as m1: w2 holds w1's value
        helper.make_node("Add", ["m1", "b1"], ["s1"]),
        helper.make_node("Add", ["m2", "b1"], ["s2"]),  # same as s1 once m2 is m1
        helper.make_node("Concat", ["s1", "s2"], ["inner"], axis=1),
        helper.make_node("Concat", ["inner", "a"], ["joined"], axis=1),  # inlines ``inner``
        helper.make_node("Identity", ["joined"], ["out"]),  # the Concat takes the name
        helper.make_node("Identity", ["out"], ["copy"]),  # a copy of a graph output: kept
        helper.make_node("Neg", ["unused"], ["dead"]),  # feeds nothing
    ]
    inits = [
        _const("shape", [-1, 1]),
        _const("zero", [0]),
        _const("zero2", [0]),
        _const("one", [1]),
        _const("two", [2]),
        _const("w1", [0.5], np.float32),
        _const("w2", [0.5], np.float32),
    ]
    model = _model(nodes, inits)
    rng = np.random.default_rng(0)
    feeds = {k: rng.normal(size=(5, 1)).astype(np.float32) for k in ("a", "b", "unused")}
    small = simplify(model)
    onnx.checker.check_model(small)
    assert [(n.op_type, list(n.output)) for n in small.graph.node] == [
        ("Mul", ["m1"]),
        ("Add", ["s1"]),
        ("Concat", ["out"]),
        ("Identity", ["copy"]),
    ]
    assert [i.name for i in small.graph.input] == ["a", "b", "unused"]
    assert [o.name for o in small.graph.output] == ["out", "copy"]
    assert len(small.graph.initializer) == 1
    for got, want in zip(_run(small, feeds), _run(model, feeds), strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(model.graph.node) == len(nodes)  # the argument is left as it was


def test_a_graph_with_subgraphs_is_left_as_it_is() -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["y"])],
        "branch",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    nodes = [
        helper.make_node("Identity", ["a"], ["a1"]),
        helper.make_node("ReduceSum", ["a1"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], ["out"], then_branch=branch, else_branch=branch),
        helper.make_node("Identity", ["out"], ["copy"]),
    ]
    model = _model(nodes, [_const("zero", [0.0], np.float32)])
    assert simplify(model) == model


def test_ensemble_members_with_the_same_preprocessing_share_it() -> None:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "c": rng.choice(["a", "b", "c", "d"], n),
            "d": rng.choice(["u", "v"], n),
        }
    )
    y = ((frame["x"] > 0) ^ (frame["c"] == "b")).astype(int).to_numpy()

    def member(model: object) -> Pipeline:
        encode = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32
        )
        columns = ColumnTransformer([("x", "passthrough", ["x"]), ("cat", encode, ["c", "d"])])
        return Pipeline([("features", columns), ("model", model)]).fit(frame, y)

    members = [
        ("lightgbm", member(LGBMClassifier(n_estimators=20, verbose=-1))),
        ("xgboost", member(XGBClassifier(n_estimators=20))),
    ]
    ensemble = WeightedEnsembleClassifier.from_fitted(members, [0.4, 0.6], y)
    signature = Signature(
        columns=[
            ColumnSpec(name="x", kind="numeric"),
            ColumnSpec(name="c", kind="categorical"),
            ColumnSpec(name="d", kind="categorical"),
        ]
    )
    graph = onnx.load_from_string(to_onnx(ensemble, signature, classifier=True))
    kinds = Counter(n.op_type for n in graph.graph.node)
    assert kinds["LabelEncoder"] == 2  # one per categorical column, not one per member
    assert kinds["TreeEnsembleClassifier"] == 2
    feeds = signature.to_feeds({c: frame[c].tolist() for c in signature.names})
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (converted,) = session.run(["probabilities"], feeds)
    native = ensemble.predict_proba(pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()}))
    assert parity(native, np.asarray(converted)) <= 1e-4


def test_chained_label_encoders_become_one() -> None:
    def encoder(source: str, target: str, **attrs: object) -> onnx.NodeProto:
        return helper.make_node("LabelEncoder", [source], [target], domain="ai.onnx.ml", **attrs)

    nodes = [
        # no default: ONNX's implied "_Unused" must reach the second map as such
        encoder("s", "grouped", keys_strings=["a", "b", "c"], values_strings=["a", "r", "r"]),
        encoder(
            "grouped",
            "out",
            keys_strings=["a", "r", "_Unused"],
            values_floats=[1.0, 2.0, 3.0],
            default_float=-5.0,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    feeds = {"s": np.array([["a"], ["b"], ["c"], ["zzz"], [""]], dtype=object)}
    small = simplify(model)
    assert [n.op_type for n in small.graph.node] == ["LabelEncoder"]
    (got,) = _run(small, feeds)
    (want,) = _run(model, feeds)
    np.testing.assert_array_equal(got, want)
    assert got.reshape(-1).tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]
