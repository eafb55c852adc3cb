"""Simplification of a converted ONNX graph: fewer nodes, the same values.

The converters emit one small node per step and column, and a weighted ensemble
repeats the preprocessing of every member. For one row, onnxruntime spends more
time dispatching these nodes than computing them, so :func:`simplify` rewrites
the graph without changing any value it computes:

- initializers holding the same tensor become one;
- an ``Identity`` that only names a graph output hands the name to its source;
- nodes that pass their input through (``Identity``, a ``Concat`` of one input,
  a ``Cast`` to the type it already has, a ``Reshape`` to the shape it already
  has, a ``Slice`` or ``Gather`` taking a whole axis or exactly one input of a
  ``Concat``) are bypassed;
- a ``Concat`` that feeds only another ``Concat`` on the same axis is merged
  into it, and a string-to-string ``LabelEncoder`` that feeds only another
  ``LabelEncoder`` is composed with it into one;
- nodes with the same operator, attributes and inputs are computed once
  (common subexpressions, such as the identical preprocessing of ensemble
  members);
- nodes whose outputs nothing uses are dropped.

Graph inputs and outputs keep their names, order and types. A graph with
subgraphs (``If``, ``Loop``, ``Scan``) is returned unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

#: Operators whose output is not a function of their inputs: never merged.
_NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
)


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` computing the same outputs with fewer nodes."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if any(_has_subgraph(node) for node in graph.node):
        return out
    _merge_initializers(graph)
    while True:
        changed = _bypass_no_ops(out)
        changed |= _name_outputs_at_source(graph)
        changed |= _compose_label_encoders(graph)
        changed |= _merge_concats(graph)
        changed |= _merge_duplicates(graph)
        changed |= _drop_unused(graph)
        if not changed:
            break
    return out


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _rename_uses(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    """Make every node read ``renames[name]`` where it read ``name``."""
    if not renames:
        return
    for node in graph.node:
        if any(name in renames for name in node.input):
            node.input[:] = [renames.get(name, name) for name in node.input]


def _merge_initializers(graph: onnx.GraphProto) -> None:
    """One initializer per distinct tensor (same type, shape and values)."""
    first: dict[tuple[int, tuple[int, ...], bytes], str] = {}
    renames: dict[str, str] = {}
    inputs = {i.name for i in graph.input}
    for init in graph.initializer:
        if init.name in inputs:  # an initializer that is also an input can be overridden
            continue
        array = numpy_helper.to_array(init)
        data = (
            repr(array.tolist()).encode() if array.dtype == object else array.tobytes()
        )  # strings
        key = (init.data_type, tuple(init.dims), data)
        if key in first:
            renames[init.name] = first[key]
        else:
            first[key] = init.name
    _rename_uses(graph, renames)
    kept = [init for init in graph.initializer if init.name not in renames]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, list[int | None]]]:
    """Element type and shape (``None`` for an unknown dimension) of each known tensor."""
    inferred = onnx.shape_inference.infer_shapes(model)
    found: dict[str, tuple[int, list[int | None]]] = {}
    g = inferred.graph
    for info in (*g.input, *g.value_info, *g.output):
        tensor = info.type.tensor_type
        if not info.type.HasField("tensor_type") or not tensor.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        found[info.name] = (tensor.elem_type, dims)
    for init in g.initializer:
        found[init.name] = (init.data_type, list(init.dims))
    return found


def _bypass_no_ops(model: onnx.ModelProto) -> bool:
    """Bypass nodes whose output equals one of their inputs; True when any was."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    shapes = _shapes(model)
    consts = _constants(graph)
    producers = {name: node for node in graph.node for name in node.output}
    renames: dict[str, str] = {}
    for node in graph.node:
        if len(node.output) != 1 or node.output[0] in outputs or node.domain not in ("", "ai.onnx"):
            continue
        source = _passed_through(node, shapes, consts, producers)
        if source is not None:
            renames[node.output[0]] = source
    if not renames:
        return False
    # a chain of bypassed nodes resolves to its first input
    for name in list(renames):
        target = renames[name]
        while target in renames:
            target = renames[target]
        renames[name] = target
    _rename_uses(graph, renames)
    return True


def _passed_through(
    node: onnx.NodeProto,
    shapes: dict[str, tuple[int, list[int | None]]],
    consts: dict[str, np.ndarray],
    producers: dict[str, onnx.NodeProto],
) -> str | None:
    """The input that ``node`` returns unchanged, or None."""
    op = node.op_type
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    source = node.input[0] if node.input else ""
    known = shapes.get(source)
    if op == "Identity" or (op == "Concat" and len(node.input) == 1):
        return source
    if op == "Cast":
        return source if known is not None and known[0] == attrs.get("to") else None
    if op == "Reshape":
        target = consts.get(node.input[1])
        if known is None or target is None or attrs.get("allowzero", 0):
            return None
        dims = known[1]
        wanted = target.tolist()
        if len(wanted) != len(dims) or wanted.count(-1) > 1:
            return None
        same = all(
            (w == -1 and all(d is not None for j, d in enumerate(dims) if j != i))
            or (d is not None and w == d)
            for i, (w, d) in enumerate(zip(wanted, dims, strict=True))
        )
        return source if same else None
    if op == "Slice":
        return _whole_slice(node, known, consts, producers, shapes)
    if op == "Gather":
        index = consts.get(node.input[1])
        if index is None or index.shape != (1,):
            return None
        j = int(index[0])
        return _one_concat_input(source, int(attrs.get("axis", 0)), j, j + 1, producers, shapes)
    return None


def _whole_slice(
    node: onnx.NodeProto,
    known: tuple[int, list[int | None]] | None,
    consts: dict[str, np.ndarray],
    producers: dict[str, onnx.NodeProto],
    shapes: dict[str, tuple[int, list[int | None]]],
) -> str | None:
    """A Slice taking all of a width-``n`` axis, or exactly one input of a Concat."""

    def const(k: int) -> np.ndarray | None:
        return consts.get(node.input[k]) if len(node.input) > k and node.input[k] else None

    starts, ends, axes, steps = const(1), const(2), const(3), const(4)
    if starts is None or ends is None or len(starts) != 1:
        return None
    if any(len(node.input) > k and node.input[k] and const(k) is None for k in (3, 4)):
        return None
    axes = np.zeros(1, dtype=np.int64) if axes is None else axes
    if steps is not None and int(steps[0]) != 1:
        return None
    start, end, axis = int(starts[0]), int(ends[0]), int(axes[0])
    if start < 0 or end < 0:
        return None
    if known is not None and axis >= 0 and axis < len(known[1]):
        width = known[1][axis]
        if width is not None and start == 0 and end >= width:
            return str(node.input[0])
    return _one_concat_input(node.input[0], axis, start, end, producers, shapes)


def _one_concat_input(
    source: str,
    axis: int,
    start: int,
    end: int,
    producers: dict[str, onnx.NodeProto],
    shapes: dict[str, tuple[int, list[int | None]]],
) -> str | None:
    """The input of the Concat producing ``source`` that spans ``[start, end)`` on ``axis``."""
    concat = producers.get(source)
    if concat is None or concat.op_type != "Concat" or concat.domain not in ("", "ai.onnx"):
        return None
    (concat_axis,) = [
        onnx.helper.get_attribute_value(a) for a in concat.attribute if a.name == "axis"
    ]
    at = 0
    for name in concat.input:
        known = shapes.get(name)
        if known is None or axis >= len(known[1]) or axis < 0:
            return None
        rank = len(known[1])
        if concat_axis % rank != axis:
            return None
        width = known[1][axis]
        if width is None:
            return None
        if at == start and at + width == end:
            return str(name)
        at += width
    return None


def _name_outputs_at_source(graph: onnx.GraphProto) -> bool:
    """Drop an ``Identity`` that names a graph output: its source node takes the name."""
    outputs = {o.name for o in graph.output}
    uses = Counter(name for node in graph.node for name in node.input)
    producers = {name: node for node in graph.node for name in node.output}
    drop: set[int] = set()
    for k, node in enumerate(graph.node):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx"):
            continue
        source, target = node.input[0], node.output[0]
        producer = producers.get(source)
        if target not in outputs or producer is None or source in outputs or uses[source] != 1:
            continue
        producer.output[:] = [target if name == source else name for name in producer.output]
        drop.add(k)
    if not drop:
        return False
    _keep_nodes(graph, (n for k, n in enumerate(graph.node) if k not in drop))
    return True


_VALUES = ("values_strings", "values_int64s", "values_floats")
_DEFAULTS = {"values_strings": "default_string", "values_int64s": "default_int64"}
_DEFAULTS["values_floats"] = "default_float"
#: what ONNX assumes when a LabelEncoder leaves its default out
_IMPLIED = {"default_string": b"_Unused", "default_int64": -1, "default_float": -0.0}


def _label_map(node: onnx.NodeProto) -> tuple[str, dict[str, object]] | None:
    """(values attribute, all attributes) of a ``LabelEncoder`` from strings, else None."""
    if node.op_type != "LabelEncoder" or node.domain != "ai.onnx.ml":
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    values = [name for name in _VALUES if name in attrs]
    if (
        "keys_strings" not in attrs
        or len(values) != 1
        or set(attrs)
        - {
            "keys_strings",
            values[0],
            _DEFAULTS[values[0]],
        }
    ):
        return None
    return values[0], attrs


def _compose_label_encoders(graph: onnx.GraphProto) -> bool:
    """Fold a string-to-string LabelEncoder into the LabelEncoder it alone feeds."""
    uses = Counter(name for node in graph.node for name in node.input)
    outputs = {o.name for o in graph.output}
    producers = {node.output[0]: node for node in graph.node if node.op_type == "LabelEncoder"}
    drop: set[str] = set()
    for node in graph.node:
        second = _label_map(node)
        first_node = producers.get(node.input[0]) if second is not None else None
        first = _label_map(first_node) if first_node is not None else None
        if (
            second is None
            or first is None
            or first_node is None
            or first[0] != "values_strings"
            or uses[node.input[0]] != 1
            or node.input[0] in outputs
        ):
            continue
        kind, attrs = second
        default_name = _DEFAULTS[kind]
        default = attrs.get(default_name, _IMPLIED[default_name])
        table = dict(zip(attrs["keys_strings"], attrs[kind], strict=True))  # type: ignore[call-overload]
        inner = first[1]
        inner_default = inner.get("default_string", _IMPLIED["default_string"])
        composed = {
            default_name: table.get(inner_default, default),  # type: ignore[call-overload]
            "keys_strings": inner["keys_strings"],
            kind: [table.get(v, default) for v in inner["values_strings"]],  # type: ignore[attr-defined]
        }
        del node.attribute[:]
        node.attribute.extend(onnx.helper.make_attribute(k, v) for k, v in composed.items())
        node.input[0] = first_node.input[0]
        drop.add(first_node.output[0])
    if not drop:
        return False
    _keep_nodes(
        graph, (n for n in graph.node if n.output[0] not in drop or n.op_type != "LabelEncoder")
    )
    return True


def _merge_concats(graph: onnx.GraphProto) -> bool:
    """Inline a Concat whose only use is another Concat on the same axis."""
    uses = Counter(name for node in graph.node for name in node.input)
    outputs = {o.name for o in graph.output}
    producers = {node.output[0]: node for node in graph.node if node.op_type == "Concat"}
    changed = False
    for node in graph.node:
        if node.op_type != "Concat" or node.domain not in ("", "ai.onnx"):
            continue
        axis = _axis(node)
        merged: list[str] = []
        for name in node.input:
            inner = producers.get(name)
            if (
                inner is not None
                and inner is not node
                and uses[name] == 1
                and name not in outputs
                and _axis(inner) == axis
                and axis >= 0
            ):
                merged.extend(inner.input)
                changed = True
            else:
                merged.append(name)
        if len(merged) != len(node.input):
            node.input[:] = merged
    return changed


def _axis(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "axis":
            return int(a.i)
    return -1


def _merge_duplicates(graph: onnx.GraphProto) -> bool:
    """Compute nodes with the same operator, attributes and inputs once."""
    outputs = {o.name for o in graph.output}
    seen: dict[tuple[object, ...], onnx.NodeProto] = {}
    renames: dict[str, str] = {}
    drop: set[int] = set()
    for k, node in enumerate(graph.node):
        if renames:
            node.input[:] = [renames.get(name, name) for name in node.input]
        if node.op_type in _NONDETERMINISTIC or any(name in outputs for name in node.output):
            continue
        key = (
            node.domain,
            node.op_type,
            tuple(node.input),
            len(node.output),
            tuple(sorted(a.SerializeToString() for a in node.attribute)),
        )
        first = seen.get(key)
        if first is None:
            seen[key] = node
            continue
        for mine, theirs in zip(node.output, first.output, strict=True):
            if mine and theirs:
                renames[mine] = theirs
            elif mine:  # an optional output the first node does not produce
                break
        else:
            drop.add(k)
            continue
        for mine in node.output:
            renames.pop(mine, None)
    if not drop:
        return False
    _keep_nodes(graph, (n for k, n in enumerate(graph.node) if k not in drop))
    return True


def _drop_unused(graph: onnx.GraphProto) -> bool:
    """Drop nodes no output depends on, then initializers no node reads."""
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    changed = len(kept) != len(graph.node)
    if changed:
        _keep_nodes(graph, reversed(kept))
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    inits = [init for init in graph.initializer if init.name in read]
    if len(inits) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(inits)
    made = {name for node in graph.node for name in node.output}
    infos = [info for info in graph.value_info if info.name in made]
    if len(infos) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(infos)
    return changed


def _keep_nodes(graph: onnx.GraphProto, nodes: Iterable[onnx.NodeProto]) -> None:
    kept: list[onnx.NodeProto] = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        kept.append(copy)
    del graph.node[:]
    graph.node.extend(kept)
