"""ONNX importer, round 44: long 1-D values no longer run ONNX's data propagation.

onnx's data propagation makes one dimension object per element of every 1-D value an Add, Sub, Mul, Cast, Concat,
Gather or Slice reads, shape or not: ten Adds of 1-D float tensors of 4M elements took 72 s and 6.4 GB to import,
forty of 16M ran past ten minutes and 22 GB. Where a node reads a 1-D value longer than ``LONG_VECTOR``, inference
runs without it, and the fold rounds size the shape computations.
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

from memplan.importers import onnx as onnx_importer  # noqa: E402
from memplan.importers.onnx import LONG_VECTOR, import_onnx  # noqa: E402

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
