"""Review of round 41's merged changes (ONNX importer, verify, Plan keys): the cases the authors' tests left out.

- A Compress by a constant condition whose output the model declares (a traced export's value_info) was planned
  at the declared size, unchecked: ``[1, 3]`` declared for a Compress keeping 3 rows of a ``[4, 3]`` was planned
  12 bytes where onnxruntime writes 36 (before round 41 every Compress was data-dependent, so its declaration was
  never planned). The declaration is now checked against the count of true entries, and one whose condition the
  importer cannot read (an initializer past 4,096 entries) is refused naming the condition, as before.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_sizes  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = {"x": np.random.default_rng(0).random((4, 3)).astype(np.float32)}
_MASK = np.array([True, False, True, True])


def _declared_compress(mask, declared, axis=0, via_value_info=False):
    """x [4, 3] -> Compress(x, c) -> y, the model declaring y (or an inner value) ``declared``."""
    kw = {} if axis is None else {"axis": axis}
    if via_value_info:
        nodes = [helper.make_node("Compress", ["x", "c"], ["y0"], name="cmp", **kw), helper.make_node("Relu", ["y0"], ["y"])]
        outs, vi = [helper.ValueInfoProto(name="y")], [V("y0", T.FLOAT, declared)]
    else:
        nodes = [helper.make_node("Compress", ["x", "c"], ["y"], name="cmp", **kw)]
        outs, vi = [V("y", T.FLOAT, declared)], []
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [4, 3])], outs, [nh.from_array(mask, "c")], value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


@pytest.mark.parametrize("declared, axis, via_value_info, real", [
    ([1, 3], 0, False, 36), ([1, 3], 0, True, 36), ([2], None, False, 12), ([4, 1], -1, False, 32)],
    ids=["output", "value_info", "flattened", "negative-axis"])
def test_a_declared_size_of_a_constant_compress_is_checked(declared, axis, via_value_info, real):
    """onnx's inference leaves Compress's length to the declaration, which was planned unchecked (12 B of 36)."""
    mask = _MASK[:3] if axis == -1 else _MASK
    model = _declared_compress(mask, declared, axis, via_value_info)
    out = "y0" if via_value_info else "y"
    assert ort_sizes(model, X, strict=True)[out] == real
    with pytest.raises(GraphError, match=rf"node 'cmp' \(Compress\): value '{out}' is declared {re.escape(str(declared))} .*but "
                                         r"Compress makes it"):
        import_onnx(model)


def test_a_declared_size_of_a_compress_by_an_unread_condition_is_refused():
    """A mask of 5,000 entries (past the 4,096 whose data the importer keeps): the declared [1, 3] is not checked,
    so it is never planned (onnxruntime writes [3, 3])."""
    model = _declared_compress(np.resize(_MASK, 5000), [1, 3])
    assert ort_sizes(model, X, strict=True)["y"] == 36
    with pytest.raises(GraphError, match=r"node 'cmp' \(Compress\): value 'y' has no size: Compress keeps one slice "
                                         r"of 'x' per true entry of its condition 'c', and the condition is not a "
                                         r"value the importer knows"):
        import_onnx(model)


def test_a_right_declaration_of_a_constant_compress_is_planned():
    model = _declared_compress(_MASK, [3, 3])
    assert import_onnx(model).tensor("y").size == 36
