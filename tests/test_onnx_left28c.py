"""ONNX importer, round 28 leftovers (c): onnxruntime's quantized and layout ops its shape inference leaves to the
model's declaration (QLinearConv, QGemm, QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat, QLinearWhere,
NhwcMaxPool, MaxpoolWithMask, GridSample, CropAndResize, QAttention, QEmbedLayerNormalization, Unique) are sized by
memplan's rules, and a declaration that disagrees is refused naming the node and value. Every size asserted is
what onnxruntime 1.32 (CPU) writes for the same model, run here."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"
F32, U8, I8, I32, I64 = np.float32, np.uint8, np.int8, np.int32, np.int64


def _model(op, ins, outs, inits, inputs, **attrs):
    """A one-node com.microsoft model: ``ins`` graph inputs (name, elem, shape), ``outs`` (name, elem, shape or
    None), ``inits`` (name, array), ``inputs`` the node's input names in order ('' for an absent one)."""
    node = helper.make_node(op, inputs, [o for o, _, _ in outs], domain=MS, name="n", **attrs)
    g = helper.make_graph([node], "g", [V(*i) for i in ins], [V(*o) for o in outs],
                          [numpy_helper.from_array(a, v) for v, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                             ir_version=8)


def _ort_run(model, ins) -> list[tuple[list, int]]:
    """(shape, bytes) of each output as onnxruntime's CPU kernels write them."""
    import onnxruntime as ort

    try:
        s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - an op this onnxruntime build has no kernel for
        if "NOT_IMPLEMENTED" in str(exc) or "Could not find an implementation" in str(exc):
            pytest.skip(f"onnxruntime lacks the op: {exc}")
        raise
    feeds = {v: np.ones(shape, helper.tensor_dtype_to_np_dtype(e)) for v, e, shape in ins}
    return [(list(r.shape), r.nbytes) for r in s.run(None, feeds)]


def _q(prefix, zp_type=U8):
    """A scale and zero point initializer pair."""
    return [(f"{prefix}s", np.array(0.1, F32)), (f"{prefix}z", np.array(0, zp_type))]


_W = np.ones((4, 1, 3, 3), U8)   # QLinearConv weights: 4 filters of 1 channel (group 2 over 2 channels)
_CASES = {
    "QLinearConv": (
        [("X", T.UINT8, [1, 2, 7, 6])], _q("x") + [("W", _W)] + _q("w") + _q("y"),
        ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz"],
        {"group": 2, "strides": [2, 1], "pads": [1, 0, 1, 1], "dilations": [1, 2]}, T.UINT8, [1, 4, 4, 3]),
    "QLinearConv-channels_last": (
        [("X", T.UINT8, [1, 7, 6, 2])], _q("x") + [("W", _W)] + _q("w") + _q("y"),
        ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz"],
        {"group": 2, "strides": [2, 1], "auto_pad": "SAME_UPPER", "channels_last": 1}, T.UINT8, [1, 4, 6, 4]),
    "QGemm": (
        [("A", T.UINT8, [5, 3])], _q("a") + [("B", np.ones((4, 3), U8))] + _q("b"),
        ["A", "as", "az", "B", "bs", "bz"], {"transB": 1}, T.FLOAT, [5, 4]),
    "QGemm-quantized": (
        [("A", T.UINT8, [3, 5])], _q("a") + [("B", np.ones((3, 4), U8))] + _q("b") + _q("y"),
        ["A", "as", "az", "B", "bs", "bz", "", "ys", "yz"], {"transA": 1}, T.UINT8, [5, 4]),
    "QGemm-y_scale_alone": (   # (float: onnxruntime quantizes only with a y_zero_point)
        [("A", T.UINT8, [3, 5])], _q("a") + [("B", np.ones((5, 4), I8))] + _q("b", I8) + _q("y")[:1],
        ["A", "as", "az", "B", "bs", "bz", "", "ys"], {}, T.FLOAT, [3, 4]),
    "QLinearAveragePool": (
        [("X", T.UINT8, [1, 3, 7, 7])], _q("x") + _q("y"), ["X", "xs", "xz", "ys", "yz"],
        {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}, T.UINT8, [1, 3, 3, 4]),
    "QLinearAveragePool-channels_last": (
        [("X", T.UINT8, [1, 7, 5, 3])], _q("x") + _q("y"), ["X", "xs", "xz", "ys", "yz"],
        {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "channels_last": 1}, T.UINT8, [1, 8, 6, 3]),
    "QLinearGlobalAveragePool": (
        [("X", T.UINT8, [2, 3, 5, 4])], _q("x") + _q("y"), ["X", "xs", "xz", "ys", "yz"], {}, T.UINT8,
        [2, 3, 1, 1]),
    "QLinearGlobalAveragePool-channels_last": (
        [("X", T.UINT8, [2, 5, 4, 3])], _q("x") + _q("y"), ["X", "xs", "xz", "ys", "yz"], {"channels_last": 1},
        T.UINT8, [2, 1, 1, 3]),
    "QLinearConcat": (
        [("A", T.UINT8, [2, 3, 4]), ("B", T.UINT8, [2, 5, 4])], _q("y") + _q("a") + _q("b"),
        ["ys", "yz", "A", "as", "az", "B", "bs", "bz"], {"axis": -2}, T.UINT8, [2, 8, 4]),
    "QLinearWhere": (
        [("C", T.BOOL, [3, 1]), ("A", T.UINT8, [1, 4]), ("B", T.UINT8, [2, 1, 1])], _q("a") + _q("b") + _q("y"),
        ["C", "A", "as", "az", "B", "bs", "bz", "ys", "yz"], {}, T.UINT8, [2, 3, 4]),
    "NhwcMaxPool": (
        [("X", T.UINT8, [1, 7, 6, 3])], [], ["X"], {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 0]},
        T.UINT8, [1, 4, 3, 3]),
    "MaxpoolWithMask": (
        [("X", T.FLOAT, [1, 2, 7, 6]), ("M", T.INT32, [1, 2, 7, 6])], [], ["X", "M"],
        {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 1, 1, 1]}, T.FLOAT, [1, 2, 4, 6]),
    "GridSample": (
        [("X", T.FLOAT, [2, 3, 5, 6]), ("G", T.FLOAT, [2, 4, 7, 2])], [], ["X", "G"], {}, T.FLOAT, [2, 3, 4, 7]),
    "CropAndResize": (
        [("X", T.FLOAT, [2, 3, 8, 8])], [("R", np.array([[0, 0, 1, 1]] * 5, F32)), ("I", np.zeros(5, I32)),
                                        ("S", np.array([4, 6], I32))],
        ["X", "R", "I", "S"], {}, T.FLOAT, [5, 3, 4, 6]),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_onnxruntime_op_is_sized_as_its_kernel_writes_whatever_the_declaration(case):
    # each was sized by its declaration alone: a declaration of one element less was planned, and the kernel wrote
    # past its slot (QLinearConv declared [1, 4, 4, 2] was planned 32 bytes; onnxruntime writes 48)
    need("onnxruntime")
    op = case.split("-")[0]
    ins, inits, inputs, attrs, elem, shape = _CASES[case]
    model = _model(op, ins, [("Y", elem, None)], inits, inputs, **attrs)
    nbytes = int(np.prod(shape)) * np.dtype(helper.tensor_dtype_to_np_dtype(elem)).itemsize
    assert _ort_run(model, ins) == [(shape, nbytes)]
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert planned["Y"] == (shape, nbytes)
    # (round 50b: a declaration one element short is not refused, as onnxruntime runs it, its kernel writing its
    # own size: planned at that size, as for a standard op)
    wrong = _model(op, ins, [("Y", elem, shape[:-1] + [shape[-1] - 1])], inits, inputs, **attrs)
    assert _ort_run(wrong, ins) == [(shape, nbytes)]
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(wrong).tensors}
    assert planned["Y"] == (shape, nbytes)


def _qattention(past: bool, present_shape=None):
    heads, h = 2, 4
    ins = [("X", T.UINT8, [2, 3, h])] + ([("P", T.FLOAT, [2, 2, heads, 5, 3])] if past else [])
    inits = [("W", np.ones((h, 18), U8)), ("Bi", np.zeros(18, F32)), ("xs", np.array(0.1, F32)),
             ("ws", np.array(0.1, F32)), ("xz", np.array(0, U8)), ("wz", np.array(0, U8))]
    inputs = ["X", "W", "Bi", "xs", "ws", "", "xz", "wz"] + (["P"] if past else [])
    outs = [("Y", T.FLOAT, None)] + ([("Pr", T.FLOAT, present_shape)] if past else [])
    return _model("QAttention", ins, outs, inits, inputs, num_heads=heads, unidirectional=int(past)), ins


@pytest.mark.parametrize("past", [False, True])
def test_qattention_is_sized_as_its_kernel_writes(past):
    # output [B, S, weight's columns / 3], present [2, B, heads, P + S, head]: declared only, before
    need("onnxruntime")
    model, ins = _qattention(past)
    expect = [([2, 3, 6], 144)] + ([([2, 2, 2, 8, 3], 4 * 192)] if past else [])
    assert _ort_run(model, ins) == expect
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert [planned[o] for o in ("Y", "Pr")[:len(expect)]] == expect


def test_qattention_present_declared_without_the_new_tokens_is_planned_as_written():
    need("onnxruntime")
    model, ins = _qattention(True, [2, 2, 2, 5, 3])   # the past's length: 3 tokens short
    # (round 50b: onnxruntime runs it, its kernel writing [2, 2, 2, 8, 3]: planned at that, not refused)
    real = _ort_run(model, ins)
    assert real[1] == ([2, 2, 2, 8, 3], 768)
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert [planned["Y"], planned["Pr"]] == real


def _qembed(declared=None):
    ins = [("ids", T.INT32, [2, 5]), ("seg", T.INT32, [2, 5])]
    q = {k: np.array(0.1, F32) for k in ("ws", "ps", "ss", "gs", "bs")}
    z = {k: np.array(0, U8) for k in ("wz", "pz", "sz", "gz", "bz")}
    inits = [("W", np.ones((10, 4), U8)), ("Pe", np.ones((8, 4), U8)), ("Se", np.ones((2, 4), U8)),
             ("G", np.ones(4, U8)), ("Be", np.ones(4, U8))] + list(q.items()) + list(z.items())
    inputs = ["ids", "seg", "W", "Pe", "Se", "G", "Be", "", *q, *z]
    return _model("QEmbedLayerNormalization", ins, [("Y", T.FLOAT, declared), ("M", T.INT32, None)], inits,
                  inputs, epsilon=1e-5), ins


def test_qembed_layer_normalization_is_sized_as_its_kernel_writes_whatever_the_declaration():
    need("onnxruntime")
    model, ins = _qembed()
    expect = [([2, 5, 4], 160), ([2], 8)]
    assert _ort_run(model, ins) == expect
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert [planned["Y"], planned["M"]] == expect
    wrong = _qembed([2, 5, 3])[0]   # (round 50b: onnxruntime runs it at [2, 5, 4]: planned so, not refused)
    assert _ort_run(wrong, ins) == expect
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(wrong).tensors}
    assert [planned["Y"], planned["M"]] == expect


def _unique(y_shape):
    return _model("Unique", [("X", T.FLOAT, [6])], [("Y", T.FLOAT, y_shape), ("I", T.INT64, None),
                                                    ("C", T.INT64, y_shape)], [], ["X"])


def test_unique_indices_are_sized_and_its_values_left_to_run_time():
    # its y and counts have one entry per distinct value: a declared [3] was planned (a traced example's count)
    need("onnxruntime")
    assert _ort_run(_unique([3]), [("X", T.FLOAT, [6])])[1] == ([6], 48)
    for declared in ([3], None):
        with pytest.raises(GraphError, match=r"node 'n' \(Unique\): value 'Y' .*it depends on values computed at run time"):
            import_onnx(_unique(declared))
    model = _unique([3])
    model.graph.output.pop(0)   # (keep Y out of the graph's outputs: only its index output is asked for)
    node = model.graph.node[0]
    node.output[:] = ["", "I"]
    model.graph.output.pop(-1)
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert planned["I"] == ([6], 48)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_binary_op_declared_other_than_written_is_planned_as_written(op):
    # sized by onnxruntime's own inference (a broadcast): a declaration that disagrees is refused all the same
    need("onnxruntime")
    ins = [("A", T.UINT8, [2, 1, 4]), ("B", T.UINT8, [3, 1])]
    inits = _q("a") + _q("b") + _q("y")
    inputs = ["A", "as", "az", "B", "bs", "bz", "ys", "yz"]
    model = _model(op, ins, [("Y", T.UINT8, None)], inits, inputs)
    assert _ort_run(model, ins) == [([2, 3, 4], 24)]
    assert {t.id: t.size for t in import_onnx(model).tensors}["Y"] == 24
    wrong = _model(op, ins, [("Y", T.UINT8, [2, 1, 4])], inits, inputs)   # (round 50b: run by onnxruntime at
    assert _ort_run(wrong, ins) == [([2, 3, 4], 24)]                         # its own size, planned so)
    assert {t.id: t.size for t in import_onnx(wrong).tensors}["Y"] == 24
