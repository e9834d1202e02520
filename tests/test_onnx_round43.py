"""ONNX importer, round 43: a negative dimension reaching a Slice after another Slice, and the node named for it.

- a negative dimension made from a Slice's output (a Pad by negative pads of it) and sliced again aborted the
  process inside onnx's Slice inference (an assertion); it is refused naming the node that makes it;
- where another node, not read by the Slice, also made a negative dimension, the refusal named that node.
"""
from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _i64(name: str, values) -> object:
    return nh.from_array(np.array(values, np.int64), name)


def _model(nodes, inputs, inits=(), outs=("y",)):
    g = helper.make_graph(nodes, "g", inputs, [V(o, T.FLOAT, None) for o in outs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


_SLICE_INITS = [_i64("st", [0]), _i64("en", [1]), _i64("ax", [-1]), _i64("sp", [-1]), _i64("p", [0, -2, 0, -2])]


def _last_slice(data: str) -> object:
    return helper.make_node("Slice", [data, "st", "en", "ax", "sp"], ["y"])


@pytest.mark.parametrize("depth", [1, 2])
def test_a_negative_dimension_made_after_a_slice_and_sliced_is_refused_not_aborted(depth):
    """x [2, 3] sliced (to [2, 2]) ``depth`` times, padded by -2 on each side of axis 1 ([2, -2]), sliced: onnx's
    Slice inference asserted and killed the process (SIGABRT, no Python exception at all)."""
    nodes, last = [], "x"
    for k in range(depth):
        nodes.append(helper.make_node("Slice", [last, "s0", "e0", "a0"], [f"u{k}"]))
        last = f"u{k}"
    nodes += [helper.make_node("Pad", [last, "p"], ["v"]), _last_slice("v")]
    inits = [*_SLICE_INITS, _i64("s0", [0]), _i64("e0", [2]), _i64("a0", [0])]
    with pytest.raises(GraphError, match=rf"node 'Pad_{depth}' \(Pad\): value 'v' dimension 1 is negative \(-1\)"):
        import_onnx(_model(nodes, [V("x", T.FLOAT, [2, 3])], inits))


def test_the_refusal_names_the_node_the_slice_reads_not_another_negative_one():
    """An earlier Pad makes 'w' [2, -1] read only by a Relu; the Slice reads 'v' from Pad_2: the error named Pad_0."""
    nodes = [helper.make_node("Pad", ["z", "p"], ["w"]), helper.make_node("Relu", ["w"], ["r"]),
             helper.make_node("Pad", ["x", "p"], ["v"]), _last_slice("v")]
    model = _model(nodes, [V("x", T.FLOAT, [2, 3]), V("z", T.FLOAT, [2, 3])], _SLICE_INITS, outs=("y", "r"))
    with pytest.raises(GraphError, match=r"node 'Pad_2' \(Pad\): value 'v' dimension 1 is negative \(-1\)"):
        import_onnx(model)


def test_slices_of_valid_values_are_still_planned():
    """Chained Slices with no negative dimension: planned as before (the rounds put every Slice back)."""
    nodes = [helper.make_node("Slice", ["x", "s0", "e0", "a0"], ["u"]),
             helper.make_node("Slice", ["u", "s0", "e0", "a0"], ["y"])]
    inits = [_i64("s0", [0]), _i64("e0", [2]), _i64("a0", [1])]
    sizes = {t.id: t.size for t in import_onnx(_model(nodes, [V("x", T.FLOAT, [4, 3])], inits)).tensors}
    assert sizes["y"] == 4 * 2 * 4
