"""ONNX importer, round 36: a node's data tensors are checked against their dims as initializers are.

An initializer (dense or sparse) and a ``Constant``'s dense ``value`` whose data disagrees with its dims were refused
(round 31), but a ``Constant``'s ``sparse_value`` and a ``ConstantOfShape``'s ``value`` (its fill) were planned
unchecked, by their dims, where onnxruntime 1.32 refuses the model (a plan for a model that never runs). They now go
through the same checks (``_check_tensor_data``, and a sparse tensor's ``_check_sparse``), each error naming the
node and the attribute."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, [V("y", T.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _fill(value) -> onnx.ModelProto:
    """``y = ConstantOfShape([2, 3], value=value)``."""
    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "s")
    return _model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos", value=value)], [], [shape])


def _sparse(values, indices, dims) -> onnx.ModelProto:
    """``y = x[2, 3] + Constant(sparse_value=(values, indices, dims))``."""
    sp = helper.make_sparse_tensor(values, indices, dims)
    return _model([helper.make_node("Constant", [], ["c"], name="k", sparse_value=sp),
                   helper.make_node("Add", ["x", "c"], ["y"], name="add")], [V("x", T.FLOAT, [2, 3])])


def _raw(name: str, dtype: int, dims: list[int], data: bytes):
    return T(name=name, data_type=dtype, dims=dims, raw_data=data)


def _ints(values: list[int]):
    return helper.make_tensor("idx", T.INT64, [len(values)], values)


def _floats(values: list[float]):
    return helper.make_tensor("vals", T.FLOAT, [len(values)], values)


BAD = {   # case -> (model, what the message says)
    "a fill of 8 raw bytes for one float": (
        lambda: _fill(_raw("v", T.FLOAT, [1], b"\0" * 8)),
        r"node 'cos' \(ConstantOfShape\)'s value: its raw_data holds 8 bytes, but its dims \[1\] and dtype float make 4"),
    "a fill of two floats for one": (
        lambda: _fill(T(name="v", data_type=T.FLOAT, dims=[1], float_data=[1.0, 2.0])),
        r"node 'cos' \(ConstantOfShape\)'s value: its float_data holds 2 values, but .* make 1"),
    "a fill of a negative dim": (
        lambda: _fill(T(name="v", data_type=T.FLOAT, dims=[-1], float_data=[1.0])),
        r"node 'cos' \(ConstantOfShape\)'s value dimension 0 is negative"),
    "sparse values of 4 raw bytes for two floats": (
        lambda: _sparse(_raw("vals", T.FLOAT, [2], b"\0" * 4), _ints([0, 3]), [2, 3]),
        r"node 'k' \(Constant\)'s sparse_value's values: its raw_data holds 4 bytes, but its dims \[2\]"),
    "sparse indices of 3 values for two": (
        lambda: _sparse(_floats([1, 2]), T(name="idx", data_type=T.INT64, dims=[2], int64_data=[0, 1, 2]), [2, 3]),
        r"node 'k' \(Constant\)'s sparse_value's indices: its int64_data holds 3 values"),
    "a sparse index past the dims": (
        lambda: _sparse(_floats([1, 2]), _ints([0, 9]), [2, 3]),
        r"node 'k' \(Constant\)'s sparse_value: index 9 at position \[1\] of its indices 'idx' lies outside"),
    "a sparse negative dim": (
        lambda: _sparse(_floats([1, 2]), _ints([0, 3]), [2, -3]),
        r"node 'k' \(Constant\)'s sparse_value dimension 1 is negative"),
    "sparse values and indices of two counts": (
        lambda: _sparse(_floats([1, 2, 3]), _ints([0, 3]), [2, 3]),
        r"node 'k' \(Constant\)'s sparse_value: its values' dims \[3\] and its indices' dims \[2\] are not"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_nodes_data_that_disagrees_with_its_dims_is_refused_naming_the_node(case):
    build, says = BAD[case]
    with pytest.raises(GraphError, match=says):
        import_onnx(build())


@pytest.mark.parametrize("case", sorted(BAD))
def test_onnxruntime_refuses_those_models(case):
    ort = need("onnxruntime")
    from onnx_oracle import ORT_ERRORS

    model, feeds = BAD[case][0](), {}
    if model.graph.input:
        feeds = {"x": np.zeros((2, 3), np.float32)}
    with pytest.raises(ORT_ERRORS):   # load or initialization fails, in words of its own
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(_sparse(_floats([1, 2]), _ints([0, 9]), [2, 3]), str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "node 'k' (Constant)'s sparse_value: index 9" in err, err
    assert not (tmp_path / "g.json").exists()


def test_good_data_still_imports_with_onnxruntimes_sizes():
    need("onnxruntime")
    from onnx_oracle import ort_sizes, size_mismatches

    feeds = {"x": np.ones((2, 3), np.float32)}
    for model, f in ((_fill(numpy_helper.from_array(np.array([7.0], np.float32), "v")), {}),
                     (_sparse(_floats([1, 2]), _ints([0, 5]), [2, 3]), feeds),
                     (_sparse(_floats([1, 2]), helper.make_tensor("idx", T.INT64, [2, 2], [0, 0, 1, 2]), [2, 3]),
                      feeds)):
        g = import_onnx(model)
        assert g.tensor("y").size == 24
        compared, bad = size_mismatches(g, ort_sizes(model, f, strict=True))
        assert compared and not bad, bad
