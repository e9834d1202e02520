"""ONNX importer, round 44: long 1-D values no longer run ONNX's data propagation; an Einsum that broadcasts.

onnx's data propagation makes one dimension object per element of every 1-D value an Add, Sub, Mul, Cast, Concat,
Gather or Slice reads, shape or not: ten Adds of 1-D float tensors of 4M elements took 72 s and 6.4 GB to import,
forty of 16M ran past ten minutes and 22 GB. Where a node reads a 1-D value longer than ``LONG_VECTOR``, inference
runs without it, and the fold rounds size the shape computations.

An Einsum whose output label has length 1 in one input and N in another (``bij,bjk->bik`` of [1, 3, 4] and
[5, 4, 6]) was planned at ONNX's inference, which takes the label's first length ([1, 3, 6]); onnxruntime broadcasts
it, as numpy does, and writes [5, 3, 6].
"""
from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")

import onnx  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from memplan.importers.onnx import import_onnx  # noqa: E402
from memplan.importers.onnx import infer as onnx_importer  # noqa: E402
from memplan.importers.onnx.infer import LONG_VECTOR  # noqa: E402

V = helper.make_tensor_value_info
N = LONG_VECTOR + 1


def _model(nodes, inputs, outs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, [onnx.ValueInfoProto(name=o) for o in outs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _adds(n: int, length: int):
    nodes = [helper.make_node("Add", ["x" if k == 0 else f"a{k - 1}", "w"], [f"a{k}"]) for k in range(n)]
    return _model(nodes, [V("x", T.FLOAT, [length]), V("w", T.FLOAT, [length])], [f"a{n - 1}"])


@pytest.fixture
def propagation(monkeypatch):
    """The ``data_prop`` flag of every shape inference the importer runs."""
    seen: list[bool] = []
    infer = onnx.shape_inference.infer_shapes

    def spy(model, *args, **kwargs):
        seen.append(bool(kwargs.get("data_prop", False)))
        return infer(model, *args, **kwargs)

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", spy)
    return seen


def test_adds_of_a_long_vector_run_no_data_propagation(propagation):
    """Three Adds of 1-D [2**18 + 1] floats: every inference ran data propagation (a second and 200 MB per Add at
    2**20 elements); none does now, and the sizes are the same."""
    g = import_onnx(_adds(3, N))
    assert propagation and not any(propagation)
    assert {t.id: t.size for t in g.tensors if t.kind != "input"} == {f"a{k}": 4 * N for k in range(3)}


def test_a_short_vector_keeps_data_propagation(propagation):
    """The same model of 2**18 elements: inference with data propagation, as before."""
    import_onnx(_adds(2, LONG_VECTOR))
    assert any(propagation)


def test_a_long_vector_made_inside_the_model_is_found(propagation):
    """x [512, 1025] flattened by a Reshape to [-1] and Added to itself: the 1-D value no input declares is found by
    the inference without propagation that runs first."""
    nodes = [helper.make_node("Reshape", ["x", "m1"], ["f"]), helper.make_node("Add", ["f", "f"], ["y"])]
    inits = [nh.from_array(np.array([-1], np.int64), "m1")]
    g = import_onnx(_model(nodes, [V("x", T.FLOAT, [512, 1025])], ["y"], inits))
    assert {t.id: t.size for t in g.tensors}["y"] == 4 * 512 * 1025
    assert propagation and not any(propagation)


def test_shape_computations_beside_a_long_vector_are_still_sized():
    """A Reshape to a Concat of Shape slices (an exporter's pattern) in a model that also reads a long 1-D value:
    the fold rounds size it without data propagation."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "z", "o"], ["b"]),
             helper.make_node("Concat", ["b", "m1"], ["t"], axis=0), helper.make_node("Reshape", ["x", "t"], ["r"]),
             helper.make_node("Mul", ["v", "v"], ["y"])]
    inits = [nh.from_array(np.array(v, np.int64), k) for k, v in (("z", [0]), ("o", [1]), ("m1", [-1]))]
    g = import_onnx(_model(nodes, [V("x", T.FLOAT, [3, 4, 5]), V("v", T.FLOAT, [N])], ["r", "y"], inits))
    sizes = {t.id: t.size for t in g.tensors}
    assert sizes["r"] == 4 * 60 and sizes["y"] == 4 * N
    assert onnx_importer._long_vector(onnx.shape_inference.infer_shapes(_adds(1, N)).graph) == "x"


def test_sizes_match_onnxruntime():
    """What onnxruntime writes for the long-vector model, value by value."""
    need("onnxruntime")
    from onnx_oracle import feeds_for, ort_sizes, size_mismatches

    model = _adds(2, N)
    real = ort_sizes(model, feeds_for(model), strict=True)
    compared, bad = size_mismatches(import_onnx(model), real)
    assert compared == 2 and not bad, bad


def _einsum(equation: str, a: list[int], b: list[int], declared=None):
    m = _model([helper.make_node("Einsum", ["a", "b"], ["y"], equation=equation)],
               [V("a", T.FLOAT, a), V("b", T.FLOAT, b)], ["y"])
    if declared is not None:
        m.graph.output[0].CopyFrom(V("y", T.FLOAT, declared))
    return m


@pytest.mark.parametrize(("equation", "a", "b", "shape"), [
    ("bij,bjk->bik", [1, 3, 4], [5, 4, 6], (5, 3, 6)),   # (a batch label of length 1 in the first input)
    ("bij,bjk->bik", [5, 3, 4], [1, 4, 6], (5, 3, 6)),   # (in the second: ONNX took the first length, right by luck)
    (" Ab , bC -> AC ", [2, 3], [3, 4], (2, 4)),         # (spaces, capitals: nothing to broadcast)
    ("ij,ik", [1, 3], [4, 5], (3, 5)),                   # (implicit output: the labels used once; i contracted)
    ("ij,kj", [2, 1], [4, 6], (2, 4)),                   # (j contracted: its length 1 broadcasts, no output has it)
    ("...bij,...bjk->...bik", [2, 1, 3, 4], [2, 5, 4, 6], (2, 5, 3, 6)),   # (a label beside an ellipsis)
    ("...ij,...jk->...ik", [1, 3, 4], [5, 4, 6], (5, 3, 6)),   # (the ellipsis alone: ONNX broadcasts it itself)
])
def test_einsum_broadcasting_a_label_of_length_one_is_planned_at_onnxruntimes_size(equation, a, b, shape):
    """``bij,bjk->bik`` of [1, 3, 4] and [5, 4, 6] was planned [1, 3, 6] (72 bytes, ONNX's inference takes the label's
    first length); onnxruntime, like numpy, broadcasts it and writes [5, 3, 6] (360 bytes)."""
    need("onnxruntime")
    from onnx_oracle import feeds_for, ort_sizes, size_mismatches

    model = _einsum(equation, a, b)
    g = import_onnx(model)
    assert {t.id: t.size for t in g.tensors}["y"] == 4 * int(np.prod(shape))
    compared, bad = size_mismatches(g, ort_sizes(model, feeds_for(model), strict=True))
    assert compared == 1 and not bad, bad


def test_einsum_output_declared_at_onnxs_size_is_planned_at_onnxruntimes():
    """A traced model declaring the Einsum's output [1, 3, 6] (what ONNX infers): the declaration is not what
    onnxruntime writes; the value is planned at [5, 3, 6]."""
    g = import_onnx(_einsum("bij,bjk->bik", [1, 3, 4], [5, 4, 6], declared=[1, 3, 6]))
    assert {t.id: t.size for t in g.tensors}["y"] == 4 * 5 * 3 * 6
