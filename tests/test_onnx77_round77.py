"""ONNX importer, round 77 (onnx77): graphs built with ``onnx.helper`` against onnxruntime 1.32.

What was found:

* a shape computed in float16 (``Cast(Shape(x), FLOAT16) -> Div -> Ceil -> Cast(INT64)``) was folded by ONNX's float16
  arithmetic, rounding at each node, while onnxruntime's CPU provider computes such a chain in float32 (it has no
  float16 kernel for ``Div``, ``Ceil``..., and drops the casts between them): 4 / 0.1 was 40 rows planned, 41 written;
  likewise a ``Range`` to such a value cast to float, and a float32 value cast to float16 before such ops;
* an ``Attention``-23/24 given a past key or value without its present, a ``Squeeze`` of ``axes`` listed as ``""`` and a
  ``DFT``-20 of ``axis`` listed as ``""`` were planned, while onnxruntime refuses to run them (the DFT crashes it);
* an int64 shape product that overflows was refused by ONNX's data propagation, while onnxruntime runs it wrapped.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_shapes  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _half_shape_model(divisors, rounding: str = "Ceil", dims=(4, 3)):
    """``y = ConstantOfShape(Cast(rounding(Cast(Shape(x), FLOAT16) / divisors), INT64))``: a float16 shape computation."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["sf"], to=T.FLOAT16),
             helper.make_node("Div", ["sf", "k"], ["q"]), helper.make_node(rounding, ["q"], ["r"]),
             helper.make_node("Cast", ["r"], ["p"], to=T.INT64), helper.make_node("ConstantOfShape", ["p"], ["y"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, list(dims))], [helper.make_empty_tensor_value_info("y")],
                          initializer=[nh.from_array(np.array(divisors, np.float16), "k")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


@pytest.mark.parametrize("rounding", ["Ceil", "Floor"])
def test_float16_shape_arithmetic_onnxruntime_rounds_otherwise_is_refused(rounding):
    # 4 / 0.1 in float16 rounds to 40.0 (Ceil 40), onnxruntime computes 40.0098 in float32 (Ceil 41: 41 rows written
    # where 40 were planned); 3 / 0.3 rounds to 10.0 (Floor 10), onnxruntime's 9.998 floors to 9
    model = _half_shape_model([0.1, 0.3], rounding)
    x = np.zeros((4, 3), np.float32)
    made = ort_shapes(model, {"x": x})["y"]
    assert made == ((41, 10) if rounding == "Ceil" else (40, 9))
    with pytest.raises(GraphError, match=r"node 'Cast_4' \(Cast\) computes 'p' from float16 values.*float32"):
        import_onnx(model)


def test_float16_arithmetic_cast_to_float_sizing_a_range_is_refused():
    # Range(0, Cast(Cast(Shape(x)[0], FLOAT16) / 0.1, FLOAT), 1): 40 long by ONNX's float16 arithmetic, 41 written by
    # onnxruntime, which drops the casts around its float32 island (the Cast to float included)
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["s0"]),
             helper.make_node("Cast", ["s0"], ["sf"], to=T.FLOAT16), helper.make_node("Div", ["sf", "k"], ["q"]),
             helper.make_node("Cast", ["q"], ["lim"], to=T.FLOAT), helper.make_node("Range", ["z", "lim", "o"], ["r"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [4, 3])], [helper.make_empty_tensor_value_info("r")],
                          initializer=[nh.from_array(np.array(0, np.int64), "i"),
                                       nh.from_array(np.array(0.1, np.float16), "k"),
                                       nh.from_array(np.array(0, np.float32), "z"),
                                       nh.from_array(np.array(1, np.float32), "o")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    assert ort_shapes(model, {"x": np.zeros((4, 3), np.float32)})["r"] == (41,)
    with pytest.raises(GraphError, match=r"node 'Range_5' \(Range\) makes 'r' of shape \[40\] .* of \[41\]"):
        import_onnx(model)


def test_float32_shape_cast_to_float16_before_an_island_is_refused():
    # Cast(Div(Cast(Shape(x), FLOAT), 0.30004883), FLOAT16) -> Neg -> Abs -> Cast(INT64): the Cast to float16 rounds 9.998
    # to 10.0, but onnxruntime drops it before its float32 island (Neg, Abs) and allocates 9 rows
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["sf"], to=T.FLOAT),
             helper.make_node("Div", ["sf", "k"], ["q"]), helper.make_node("Cast", ["q"], ["h"], to=T.FLOAT16),
             helper.make_node("Neg", ["h"], ["nh"]), helper.make_node("Abs", ["nh"], ["ah"]),
             helper.make_node("Cast", ["ah"], ["p"], to=T.INT64), helper.make_node("ConstantOfShape", ["p"], ["y"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [3, 5])], [helper.make_empty_tensor_value_info("y")],
                          initializer=[nh.from_array(np.array([0.30004883, 0.5], np.float32), "k")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    assert ort_shapes(model, {"x": np.zeros((3, 5), np.float32)})["y"] == (9, 10)
    with pytest.raises(GraphError, match=r"node 'Cast_6' \(Cast\) computes 'p' from float16 values.* \[10, 10\].*"
                                         r"\[9, 10\]"):
        import_onnx(model)


def test_float16_shape_arithmetic_both_ways_alike_is_planned():
    # 4 / 0.5 and 3 / 0.25 are exact in both arithmetics: folded and planned at onnxruntime's size
    model = _half_shape_model([0.5, 0.25])
    made = ort_shapes(model, {"x": np.zeros((4, 3), np.float32)})["y"]
    y = next(t for t in import_onnx(model).tensors if t.id == "y")
    assert tuple(y.attrs["shape"]) == made == (8, 12)


def _attention_model(outputs, opset: int, dtype=np.float32):
    """An Attention of a 4-D Q = K = V ``x`` [1, 2, 3, 4] with a past key and value [1, 2, 5, 4] (initializers)."""
    tdt = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("Attention", ["x", "x", "x", "", "pk", "pv"], outputs)
    g = helper.make_graph([node], "g", [V("x", tdt, [1, 2, 3, 4])],
                          [helper.make_empty_tensor_value_info(o) for o in outputs if o],
                          initializer=[nh.from_array(np.ones((1, 2, 5, 4), dtype), "pk"),
                                       nh.from_array(np.ones((1, 2, 5, 4), dtype), "pv")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _ort_runs(model, feeds: dict) -> bool:
    try:
        ort_shapes(model, feeds)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own refusal, whatever its class
        assert "does not support past_" in str(exc)
        return False
    return True


@pytest.mark.parametrize("outputs,past", [(["y", "", "pv2"], "past_key"), (["y"], "past_key"),
                                          (["y", "pk2", ""], "past_value")])
@pytest.mark.parametrize("opset,dtype", [(23, np.float32), (24, np.float16)])
def test_attention_past_without_present_is_refused_where_onnxruntime_kernel_runs_it(outputs, past, opset, dtype):
    # the spec lets every output be omitted; onnxruntime's CPU kernel of Attention-23/24 refuses a past without its
    # present as it runs the model, which was planned
    model = _attention_model(outputs, opset, dtype)
    assert not _ort_runs(model, {"x": np.ones((1, 2, 3, 4), dtype)})
    with pytest.raises(GraphError, match=rf"node 'Attention_0' \(Attention\): it is given a {past} .* makes no "
                                         rf"present_{past[5:]}"):
        import_onnx(model)


def test_attention_past_without_present_by_function_body_is_planned():
    # of double, Attention-24 runs by its function body, which runs it: planned at onnxruntime's size
    model = _attention_model(["y", "", "pv2"], 24, np.float64)
    made = ort_shapes(model, {"x": np.ones((1, 2, 3, 4), np.float64)})
    sizes = {t.id: tuple(t.attrs["shape"]) for t in import_onnx(model).tensors}
    assert sizes["y"] == made["y"] and sizes["pv2"] == made["pv2"] == (1, 2, 8, 4)


@pytest.mark.parametrize("opset", [13, 21, 24])
def test_squeeze_axes_listed_empty_is_refused_as_onnxruntime_refuses_to_run_it(opset):
    # ["x", ""]: the spec's omitted axes (every dimension of 1), planned; onnxruntime's kernel: "Axes input is null"
    def model(inputs):
        g = helper.make_graph([helper.make_node("Squeeze", inputs, ["y"])], "g", [V("x", T.FLOAT, [1, 3, 1])],
                              [helper.make_empty_tensor_value_info("y")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)

    x = np.zeros((1, 3, 1), np.float32)
    with pytest.raises(Exception, match="Axes input is null"):
        ort_shapes(model(["x", ""]), {"x": x})
    with pytest.raises(GraphError, match=r"node 'Squeeze_0' \(Squeeze\): its axes input is listed as ''"):
        import_onnx(model(["x", ""]))
    # the data alone: onnxruntime squeezes every dimension of length 1, and so is it planned
    y = next(t for t in import_onnx(model(["x"])).tensors if t.id == "y")
    assert tuple(y.attrs["shape"]) == ort_shapes(model(["x"]), {"x": x})["y"] == (3,)


@pytest.mark.parametrize("inputs", [["x", "", ""], ["x", "n", ""]])
def test_dft_axis_listed_empty_is_refused_as_onnxruntime_crashes_on_it(inputs):
    # the spec's omitted axis (-2) was planned; onnxruntime 1.32's DFT-20 kernel, given a third input, reads it and
    # crashes the process (a segmentation fault: not run here); the same inputs listed without it run
    def model(ins):
        g = helper.make_graph([helper.make_node("DFT", ins, ["y"])], "g", [V("x", T.FLOAT, [2, 3, 4, 1])],
                              [helper.make_empty_tensor_value_info("y")],
                              initializer=[nh.from_array(np.array(5, np.int64), "n")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)

    with pytest.raises(GraphError, match=r"node 'DFT_0' \(DFT\): its axis input is listed as ''"):
        import_onnx(model(inputs))
    shorter = model([v for v in inputs[:2] if v] if inputs[1] else inputs[:1])
    y = next(t for t in import_onnx(shorter).tensors if t.id == "y")
    assert tuple(y.attrs["shape"]) == ort_shapes(shorter, {"x": np.ones((2, 3, 4, 1), np.float32)})["y"]


@pytest.mark.parametrize("factor,rows", [(2**62, 0), (2**62 + 1, 4), (2**62 + 3, 12)])
def test_int64_shape_product_that_wraps_is_planned_as_onnxruntime_wraps_it(factor, rows):
    # 4 * factor overflows int64: ONNX's data propagation refused the model ("Integer overflow in Mul during data
    # propagation"), onnxruntime computes it wrapped (4 * (2**62 + 1) is 4) and runs the model
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "z", "o"], ["s0"]),
             helper.make_node("Mul", ["s0", "k"], ["p"]), helper.make_node("ConstantOfShape", ["p"], ["y"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [4, 3])], [helper.make_empty_tensor_value_info("y")],
                          initializer=[nh.from_array(np.array([0], np.int64), "z"),
                                       nh.from_array(np.array([1], np.int64), "o"),
                                       nh.from_array(np.array([factor], np.int64), "k")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    made = ort_shapes(model, {"x": np.zeros((4, 3), np.float32)})["y"]
    y = next(t for t in import_onnx(model).tensors if t.id == "y")
    assert tuple(y.attrs["shape"]) == made == (rows,) and y.size == 4 * rows
