"""ONNX importer, round 41: sparse shape constants, constant Compress, SequenceAt, ml opsets and training ops.

Each case is compared with what onnxruntime really writes (``onnx_oracle``), or shown refused by it:
- a sparse initializer (or a Constant's ``sparse_value``) used as a Reshape's shape was refused as a dimension
  "ONNX's shape inference could not derive" (onnx's inference reads no sparse data); it is read as the dense
  tensor it stands for;
- a Compress by a constant condition was refused as depending on run-time values; it is planned at the count of
  true entries, and one of a run-time condition is refused naming the condition;
- a SequenceAt at a constant position outside its sequence was planned (onnxruntime refuses it), one of a
  position of shape ``[1]`` raised a TypeError out of the import, and one of unlike tensors at a run-time
  position got the general note; each now names the node, the position and the sequence;
- an ``ai.onnx.ml`` opset newer than the installed onnx defines and a training op were planned.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = {"x": np.random.default_rng(0).random((4, 3)).astype(np.float32)}


def _model(nodes, inputs=(V("x", T.FLOAT, [4, 3]),), inits=(), outs=("y",), domains=(), sparse=()):
    g = helper.make_graph(nodes, "g", list(inputs), [helper.ValueInfoProto(name=o) for o in outs], list(inits))
    g.sparse_initializer.extend(sparse)
    opsets = [helper.make_opsetid("", 18)] + [helper.make_opsetid(d, v) for d, v in domains]
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


def _same_as_ort(model, feeds=X) -> int:
    real = ort_sizes(model, feeds, strict=True)
    compared, bad = size_mismatches(import_onnx(model), real)
    assert not bad, bad
    return compared


def _sparse_shape(values, indices, dims=(2,)):
    return helper.make_sparse_tensor(nh.from_array(np.array(values, np.int64), "shape"),
                                     nh.from_array(np.array(indices, np.int64), "shape_idx"), list(dims))


# --- 1. sparse shape constants ------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, indices", [([-1], [1]), ([6, 2], [0, 1]), ([-1], [[1]])],
                         ids=["implied-zero", "dense", "coordinates"])
def test_a_sparse_initializer_as_a_reshape_shape_is_read(values, indices):
    """``[0, -1]`` stored as the one value -1 at index 1: onnxruntime reshapes [4, 3] to [4, 3] (0 copies)."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="rs"), helper.make_node("Relu", ["r"], ["y"])]
    model = _model(nodes, sparse=[_sparse_shape(values, indices)])
    assert _same_as_ort(model) == 2


def test_a_constant_sparse_value_as_a_reshape_shape_is_read():
    sp = _sparse_shape([2, -1], [0, 1])
    nodes = [helper.make_node("Constant", [], ["shape"], sparse_value=sp),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")]
    model = _model(nodes)
    graph = import_onnx(model)
    assert {t.id: t.attrs["shape"] for t in graph.tensors}["y"] == [2, 6]
    assert ort_sizes(model, X, strict=True)["y"] == 48


# --- 2. Compress and SequenceAt ------------------------------------------------------------------------------------

_MASK = np.array([True, False, True, True])


@pytest.mark.parametrize("axis", [0, -1, None])
def test_a_compress_by_a_constant_condition_is_planned(axis):
    kw = {} if axis is None else {"axis": axis}
    model = _model([helper.make_node("Compress", ["x", "c"], ["y"], name="cmp", **kw)],
                   inits=[nh.from_array(_MASK[:3] if axis == -1 else _MASK, "c")])
    assert _same_as_ort(model) == 1


def test_a_compress_by_a_constant_node_and_a_long_mask_initializer():
    """A Constant's mask, and an initializer mask of 100 entries (past the 64 kept before): onnxruntime reads as
    many entries as the axis has."""
    const = helper.make_node("Constant", [], ["c"], value=nh.from_array(_MASK, "cv"))
    assert _same_as_ort(_model([const, helper.make_node("Compress", ["x", "c"], ["y"], axis=0)])) == 2
    long = nh.from_array(np.resize([True, False, True], 100), "c")
    assert _same_as_ort(_model([helper.make_node("Compress", ["x", "c"], ["y"], axis=0)], inits=[long])) == 1


def test_a_compress_by_a_run_time_condition_names_the_condition():
    model = _model([helper.make_node("Compress", ["x", "c"], ["y"], axis=0, name="cmp")],
                   inputs=[V("x", T.FLOAT, [4, 3]), V("c", T.BOOL, [4])])
    with pytest.raises(GraphError, match=r"node 'cmp' \(Compress\): value 'y' has no size: Compress keeps one slice "
                                         r"of 'x' per true entry of its condition 'c', and the condition is computed "
                                         r"at run time"):
        import_onnx(model)


def _split(sizes=None):
    if sizes is None:
        return [helper.make_node("SplitToSequence", ["x"], ["s"], axis=0, keepdims=1)], []
    return ([helper.make_node("SplitToSequence", ["x", "sp"], ["s"], axis=0)],
            [nh.from_array(np.array(sizes, np.int64), "sp")])


@pytest.mark.parametrize("sizes, at", [(None, 7), ([1, 3], 5), ([1, 3], -3)])
def test_a_sequence_at_outside_its_sequence_is_refused(sizes, at):
    """Of like tensors it was planned; of unlike ones refused as a dimension onnx "could not derive"."""
    split, inits = _split(sizes)
    model = _model(split + [helper.make_node("SequenceAt", ["s", "i"], ["y"], name="at")],
                   inits=inits + [nh.from_array(np.array(at, np.int64), "i")])
    assert ort_sizes(model, X) is None
    count = 4 if sizes is None else 2
    with pytest.raises(GraphError, match=rf"node 'at' \(SequenceAt\): its position 'i' is {at}, outside sequence 's' "
                                         rf"of {count} tensors \(positions -{count} to {count - 1}\)"):
        import_onnx(model)


def test_a_sequence_at_of_a_one_element_position_is_planned():
    """A position of shape [1], which onnxruntime takes: ``int()`` of it raised a TypeError out of the import."""
    split, inits = _split([1, 3])
    model = _model(split + [helper.make_node("SequenceAt", ["s", "i"], ["y"], name="at")],
                   inits=inits + [nh.from_array(np.array([1], np.int64), "i")])
    assert _same_as_ort(model) == 2


def test_a_sequence_at_of_unlike_tensors_at_a_run_time_position_names_both():
    split, inits = _split([1, 3])
    model = _model(split + [helper.make_node("SequenceAt", ["s", "i"], ["y"], name="at")],
                   inputs=[V("x", T.FLOAT, [4, 3]), V("i", T.INT64, [])], inits=inits)
    with pytest.raises(GraphError, match=r"node 'at' \(SequenceAt\): value 'y' has no size: sequence 's' holds "
                                         r"tensors of unlike shapes \(\[1, 3\], \[3, 3\]\), so the size of the one "
                                         r"SequenceAt takes follows its position 'i', and the position is computed "
                                         r"at run time"):
        import_onnx(model)


# --- 3. ml opsets and training ops -------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [6, 99])
def test_an_ml_opset_newer_than_onnx_defines_is_refused(version):
    model = _model([helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="L2", name="nrm")],
                   domains=[("ai.onnx.ml", version)])
    assert ort_sizes(model, X) is None
    # (round 52: refused as the model is, at load, naming the domain and opset, whether or not a node uses it)
    with pytest.raises(GraphError, match=rf"the model imports domain 'ai\.onnx\.ml' at opset {version}; onnxruntime "
                                         r"supports opsets up to 5 of it and refuses to load the model"):
        import_onnx(model)


def test_an_ml_opset_onnx_defines_is_still_planned():
    model = _model([helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="L2", name="nrm")],
                   domains=[("ai.onnx.ml", 1)])
    assert _same_as_ort(model) == 1


def test_a_training_op_is_refused_naming_node_domain_and_version():
    f = V("x", T.FLOAT, [4, 3])
    ins = [V("r", T.FLOAT, []), V("t", T.INT64, []), f, V("g", T.FLOAT, [4, 3]), V("h", T.FLOAT, [4, 3])]
    model = _model([helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["y", "h2"], name="ada",
                                     domain="ai.onnx.preview.training")],
                   inputs=ins, outs=("y", "h2"), domains=[("ai.onnx.preview.training", 1)])
    with pytest.raises(GraphError, match=r"node 'ada' \(ai\.onnx\.preview\.training:Adagrad\) is a training op "
                                         r"\(domain 'ai\.onnx\.preview\.training', opset 1\)"):
        import_onnx(model)


def test_a_range_to_the_max_of_a_100_element_initializer_is_planned():
    """Initializers of 65..4,096 elements that reach a size keep their data: a Range to ReduceMax of a 100-entry
    table was refused as a dimension onnx "could not derive"; onnxruntime writes 99 int64s."""
    i64 = T.INT64
    nodes = [helper.make_node("ReduceMax", ["w"], ["mx"], keepdims=0), helper.make_node("Cast", ["mx"], ["lim"], to=i64),
             helper.make_node("Range", ["zero", "lim", "one"], ["y"]), helper.make_node("Relu", ["x"], ["z"])]
    inits = [nh.from_array(np.arange(100, dtype=np.float32), "w"), helper.make_tensor("zero", i64, [], [0]),
             helper.make_tensor("one", i64, [], [1])]
    model = _model(nodes, inits=inits, outs=("y", "z"))
    assert _same_as_ort(model) >= 2
    assert import_onnx(model).tensor("y").size == 99 * 8
