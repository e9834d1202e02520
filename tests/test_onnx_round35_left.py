"""ONNX importer, round 35 (left35): an initializer whose data disagrees with its dims.

memplan planned a weight by its dims alone, so an initializer whose ``raw_data`` (or typed field: ``float_data``,
``int64_data``, ...) holds another length than its dims and dtype make, whose external data's ``length`` says
another size, whose dims are negative, or whose dims multiply past int64, was planned; onnxruntime refuses each
such model ("raw_data size (8 bytes) does not match expected size"). Each is now refused naming the initializer.
Checked against onnxruntime where it is installed (``_ort_refuses``)."""

from __future__ import annotations

import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _tensor(dims, dtype=T.FLOAT, raw: bytes | None = None, **typed) -> T:
    """An initializer ``w`` built field by field (onnx.helper.make_tensor refuses the bad ones we need)."""
    t = T(name="w", data_type=dtype, dims=list(dims))
    if raw is not None:
        t.raw_data = raw
    for field, values in typed.items():
        getattr(t, field).extend(values)
    return t


def _model(t: T):
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"], name="id")], "g", [],
                          [helper.make_tensor_value_info("y", t.data_type, None)], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])   # (Identity of int4 from opset 21)
    m.ir_version = 10
    return m


def _ort_refuses(m) -> None:
    """onnxruntime (where installed) refuses the model too: memplan is not stricter than the runtime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    from onnx_oracle import ort_refuses  # (onnxruntime's own errors only: a TypeError of the test's is no refusal)

    assert ort_refuses(m)


BAD = {
    "raw_data short": (_tensor([1000], raw=b"\0" * 8), r"its raw_data holds 8 bytes, but its dims \[1000\] and dtype "
                                                        "float make 4000"),
    "raw_data long": (_tensor([1000], raw=b"\0" * 4004), "raw_data holds 4004 bytes"),
    "raw_data set empty": (_tensor([3], raw=b""), "raw_data holds 0 bytes"),
    "float_data short": (_tensor([1000], float_data=[1.0] * 3), r"its float_data holds 3 values, but its dims \[1000\] "
                                                                 "and dtype float make 1000"),
    "int64 in float_data": (_tensor([3], T.INT64, float_data=[1, 2, 3]), "int64_data holds 0 values"),
    "no data at all": (_tensor([3]), "float_data holds 0 values"),
    "uint8 short": (_tensor([3], T.UINT8, int32_data=[1, 2]), "int32_data holds 2 values"),
    "uint32 short": (_tensor([3], T.UINT32, uint64_data=[1, 2]), "uint64_data holds 2 values"),
    "int4 one entry over": (_tensor([5], T.INT4, int32_data=[1, 2, 3, 4]), "int32_data holds 4 values, but its dims "
                                                                            r"\[5\] and dtype int4 make 3"),
    "negative dim": (_tensor([-1000], raw=b"\0" * 4000), r"initializer 'w' dimension 0 is negative \(-1000"),
    "dims overflow": (_tensor([1 << 40, 1 << 40], raw=b""), "product of its dims .* overflows int64"),
    "dims overflow before a 0": (_tensor([1 << 62, 1 << 62, 0], raw=b""), "overflows int64"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_an_initializer_whose_data_disagrees_with_its_dims_is_refused_naming_it(case):
    t, message = BAD[case]
    m = _model(t)
    _ort_refuses(m)
    with pytest.raises(GraphError, match="initializer 'w'") as err:
        import_onnx(m)
    assert err.match(message)


OK = {
    "raw": _tensor([3], raw=b"\0" * 12),
    "float_data": _tensor([3], float_data=[1.0, 2.0, 3.0]),
    "empty, no data": _tensor([0]),
    "int4 packed two an entry": helper.make_tensor("w", T.INT4, [5], [1, 2, 3, 4, 5]),
    "complex64 two floats an element": helper.make_tensor("w", T.COMPLEX64, [3], [1 + 2j] * 3),
    "0 first, then large": _tensor([0, 1 << 62, 1 << 62], raw=b""),
}


@pytest.mark.parametrize("case", sorted(OK))
def test_an_initializer_whose_data_matches_its_dims_is_planned(case):
    g = import_onnx(_model(OK[case]))
    assert {t.id for t in g.tensors} >= {"w", "y"}


def test_a_constant_node_whose_value_disagrees_with_its_dims_is_refused_naming_the_node():
    bad = _tensor([1000], raw=b"\0" * 8)
    g = helper.make_graph([helper.make_node("Constant", [], ["c"], name="k", value=bad),
                           helper.make_node("Identity", ["c"], ["y"], name="id")], "g", [],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with pytest.raises(GraphError, match=r"node 'k' \(Constant\)'s value: its raw_data holds 8 bytes"):
        import_onnx(m)


def _external(tmp_path, length: str | None, file_bytes: int = 4000):
    """A model whose 1000-float initializer lives in ``w.bin`` (``file_bytes`` long), with ``length`` if given."""
    (tmp_path / "w.bin").write_bytes(b"\0" * file_bytes)
    t = T(name="w", data_type=T.FLOAT, dims=[1000], data_location=T.EXTERNAL)
    t.external_data.add(key="location", value="w.bin")
    if length is not None:
        t.external_data.add(key="length", value=length)
    path = tmp_path / "m.onnx"
    onnx.save(_model(t), str(path))
    return path


def test_an_external_initializer_whose_length_disagrees_with_its_dims_is_refused(tmp_path):
    path = _external(tmp_path, "400")
    with pytest.raises(GraphError, match="initializer 'w': its external data's length is 400 bytes, but its dims "
                                         r"\[1000\] and dtype float make 4000"):
        import_onnx(str(path))


@pytest.mark.parametrize("length", ["4000", None])
def test_an_external_initializer_of_the_right_or_no_length_is_planned_without_reading_its_file(tmp_path, length):
    """No length: the file is not read (nor its size taken) to check it; a file shorter than the tensor is the
    runtime's to find, as before."""
    path = _external(tmp_path, length, file_bytes=4)
    assert next(t.size for t in import_onnx(str(path)).tensors if t.id == "w") == 4000


def test_a_sparse_initializer_with_a_negative_dim_is_refused_naming_it():
    values = helper.make_tensor("w", T.FLOAT, [1], [1.0])
    indices = helper.make_tensor("w_i", T.INT64, [1], [0])
    st = helper.make_sparse_tensor(values, indices, [-4])
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"], name="id")], "g", [],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)], sparse_initializer=[st])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with pytest.raises(GraphError, match="sparse initializer 'w' dimension 0 is negative"):
        import_onnx(m)
