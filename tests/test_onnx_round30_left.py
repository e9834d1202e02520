"""ONNX leftovers of round 30: sparse initializers whose indices lie outside their dims, and graph inputs of a
type that is no tensor, each refused naming what is wrong."""

from __future__ import annotations

import re

import pytest
from needs import need

onnx = need("onnx")
np = need("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

F = TensorProto.FLOAT


def _sparse_model(indices, dims=(4,), nnz=2):
    """x + w, with w a sparse initializer of ``nnz`` ones at ``indices`` in a dense tensor of ``dims``."""
    values = numpy_helper.from_array(np.ones(nnz, np.float32), "w")
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array(indices, np.int64), "w_idx"),
                                       list(dims))
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "m",
                          [helper.make_tensor_value_info("x", F, list(dims))],
                          [helper.make_tensor_value_info("y", F, list(dims))], sparse_initializer=[sparse])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("indices, bad", [([0, 4], 4), ([-1, 2], -1), ([0, 9], 9)])
def test_a_sparse_index_outside_the_dims_is_refused_naming_the_initializer(indices, bad):
    """Was planned (as the dense [4] weight); onnx.checker and onnxruntime refuse the model."""
    m = _sparse_model(indices)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(m)
    with pytest.raises(GraphError, match=rf"sparse initializer 'w': index {bad} at position \[\d\] .*outside its "
                                         r"dims \[4\]"):
        import_onnx(m)


def test_sparse_coordinates_are_checked_per_dimension():
    """[NNZ, rank] indices: (1, 3) lies in a [2, 4] tensor (linear 7), (2, 0) does not (row 2 of 2)."""
    assert import_onnx(_sparse_model([[0, 1], [1, 3]], dims=(2, 4))).tensor("w").size == 32
    with pytest.raises(GraphError, match=r"sparse initializer 'w': index 2 at position \[1, 0\]"):
        import_onnx(_sparse_model([[0, 1], [2, 0]], dims=(2, 4)))


def test_sparse_indices_in_range_still_plan(tmp_path, capsys):
    """The largest index in range (and unsorted ones, which onnxruntime runs) import as before; the CLI says
    the refusal in one line with exit code 2."""
    assert import_onnx(_sparse_model([0, 3])).tensor("w").size == 16
    assert import_onnx(_sparse_model([3, 1])).tensor("w").size == 16
    path = tmp_path / "bad.onnx"
    onnx.save(_sparse_model([0, 4]), str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sparse initializer 'w'" in err and not (tmp_path / "g.json").exists()


_T = helper.make_tensor_type_proto(F, [4])


@pytest.mark.parametrize("typ, words", [
    (helper.make_optional_type_proto(_T), "optional(tensor(float))"),
    (helper.make_sequence_type_proto(_T), "seq(tensor(float))"),
    (helper.make_map_type_proto(TensorProto.INT64, _T), "map(int64, tensor(float))"),
    (helper.make_sparse_tensor_type_proto(F, [4]), "sparse_tensor(float)"),
    (helper.make_optional_type_proto(helper.make_sequence_type_proto(_T)), "optional(seq(tensor(float)))"),
])
def test_a_graph_input_that_is_no_tensor_names_its_type(typ, words):
    """Each was "is not a tensor (sequences/maps are unsupported)": an optional or a sparse tensor is neither."""
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "m", [helper.make_value_info("x", typ)],
                          [helper.make_tensor_value_info("y", F, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    with pytest.raises(GraphError, match=rf"graph input 'x' has type {re.escape(words)}, not a tensor") as info:
        import_onnx(m)
    assert "sequences/maps" not in str(info.value)

