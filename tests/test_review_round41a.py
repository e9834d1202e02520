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


# --- the refusal of a Compress by a condition the importer does not know names why it does not know it -------------

def _compress_model(inputs=(), inits=()):
    g = helper.make_graph([helper.make_node("Compress", ["x", "c"], ["y"], axis=0, name="cmp")], "g",
                          [V("x", T.FLOAT, [4, 3]), *inputs], [helper.ValueInfoProto(name="y")], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def test_a_compress_by_an_unread_external_condition_says_it_was_not_read(tmp_path):
    """The condition's external data not read (a ModelProto loaded without it, so its folder is unknown): the
    refusal said the condition "is computed at run time from what the graph inputs hold", which none of it is,
    and dropped the general message's way out (pass the model's path)."""
    path = tmp_path / "m.onnx"
    onnx.save_model(_compress_model(inits=[nh.from_array(_MASK, "c")]), str(path), save_as_external_data=True,
                    location="w.bin", size_threshold=0)
    assert import_onnx(str(path)).tensor("y").size == 36
    with pytest.raises(GraphError, match=r"node 'cmp' \(Compress\): value 'y' has no size: .* its condition 'c', and "
                                         r"the condition is held in external data that was not read: .*initializer "
                                         r"'c', not read \(the model was passed as a ModelProto") as err:
        import_onnx(onnx.load(str(path), load_external_data=False))
    assert "run time" not in str(err.value)


def test_a_compress_by_an_overridable_condition_names_the_graph_input():
    """A condition that is an initializer also listed as a graph input (IR 4+: a default the caller may override):
    the refusal gives the general message's note and its way out (constant_initializers=True)."""
    model = _compress_model(inputs=[V("c", T.BOOL, [4])], inits=[nh.from_array(_MASK, "c")])
    with pytest.raises(GraphError, match=r"its condition 'c', and the condition is computed at run time .*note: it "
                                         r"follows graph input 'c', whose initializer is only a default"):
        import_onnx(model)
    assert import_onnx(model, constant_initializers=True).tensor("y").size == 36


# --- sparse tensors: indices of a type onnxruntime refuses --------------------------------------------------------

def _sparse_model(index_dtype, as_constant: bool):
    sp = helper.make_sparse_tensor(nh.from_array(np.array([5], np.int64), "shape"),
                                   nh.from_array(np.array([1], index_dtype), "shape_idx"), [2])
    head = [helper.make_node("Constant", [], ["shape"], sparse_value=sp, name="k")] if as_constant else []
    g = helper.make_graph(head + [helper.make_node("ConstantOfShape", ["shape"], ["y"])], "g", [],
                          [helper.ValueInfoProto(name="y")])
    if not as_constant:
        g.sparse_initializer.extend([sp])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


@pytest.mark.parametrize("as_constant", [False, True], ids=["initializer", "constant"])
@pytest.mark.parametrize("index_dtype", [np.uint64, np.uint32, np.uint8])
def test_sparse_indices_of_an_unsigned_type_are_refused(index_dtype, as_constant):
    """onnxruntime refuses the model ("Should be one of the following types: int8, int16, int32 or int64"); memplan
    planned it, and this round read such a tensor as a shape (a ConstantOfShape of [0, 5])."""
    model = _sparse_model(index_dtype, as_constant)
    assert ort_sizes(model, {}) is None
    where = r"node 'k' \(Constant\)'s sparse_value" if as_constant else r"sparse initializer 'shape'"
    with pytest.raises(GraphError, match=rf"{where}: its indices 'shape_idx' are of dtype uint\d+; onnxruntime takes "
                                         r"int8, int16, int32 or int64"):
        import_onnx(model)


@pytest.mark.parametrize("index_dtype", [np.int8, np.int16, np.int32, np.int64])
def test_sparse_indices_of_a_signed_type_are_read(index_dtype):
    model = _sparse_model(index_dtype, False)
    assert ort_sizes(model, {}, strict=True)["y"] == import_onnx(model).tensor("y").size == 0
