"""ONNX importer, round 79: values onnxruntime's CPU provider computes that the importer refused or sized otherwise.

Why: each planned size must be what onnxruntime writes (``tests/onnx_oracle.py``); a refusal of a model onnxruntime
runs is a defect too, where the sizes are known at import. The round's sweep (``tests/onnx_sweep_round79.py``: the
recurrent ops, grouped and dilated convolutions, the data-dependent ops, the losses, the small attribute-sized ops,
old opsets, quantized products, control flow over outer values, the ops of opsets 20-26, sub-byte types, Concats of
empty inputs) found the quantized convolutions below and agrees elsewhere; the rest are round 78's leftovers and
what probes of the fold against onnxruntime (integer ops, NaN, inexact functions rounded to sizes) found:

* an integer ReduceLogSumExp was never folded (onnx's evaluator refuses integers), so what it sized was refused,
  though onnxruntime runs it: in the integer type, the maximum plus the log of how many values equal it, which
  is not the float64 value truncated ([2, 2, 1, 1]: 2 + log 2 -> 2 there, 3.005 -> 3 in float64);
* a Concat of an input made empty by ``--dim`` whose other dimensions differ from the rest was refused by ONNX's
  inference, where onnxruntime (loading the model with those dimensions symbolic) skips an empty input and runs it;
  likewise a Concat-4 (opsets 4-10) of a negative axis, which the importer sizes itself, held an empty input to the
  rest and left the output unsized;
* a ConvInteger or QLinearConv whose shapes onnxruntime's kernel refuses (its weight's channels, a ``kernel_shape``
  not the weight's, a dilated ``SAME_*`` pad, an input smaller than the dilated kernel, a bias of other channels) was
  planned at the size ONNX's inference gives, where a Conv of the same shapes is refused (round 73): the sweep's
  ConvInteger family found it;
* an integer Pow was folded by onnx's evaluator, exactly, where onnxruntime computes ``std::pow`` in float64 and
  truncates: ``Pow(3, 39)`` is 4052555153018976267 there and 4052555153018976256 in onnxruntime (a size computed from
  it planned apart), and ``Pow(2, -1)`` (0 in onnxruntime) was refused;
* an ArgMax / ArgMin / ReduceMax / ReduceMin / TopK / Hardmax of values holding a NaN, or a Clip to a NaN bound, was
  folded at numpy's value, which takes the NaN as the extreme, where onnxruntime's kernels compare it away:
  ``ArgMax([1, NaN, 3])`` is 1 there and 2 in onnxruntime;
* an integer Div of the type's least value by -1, both known, was planned (numpy wraps the quotient), where
  onnxruntime's process dies of a floating point exception running it;
* a MeanVarianceNormalization of known values was folded as its input: the inference copy stands an Identity for it
  (round 66), and the fold took that Identity's value, so ``Ceil(MVN([0, 0, 0, 0.5]))`` sized 1 where onnxruntime's
  normalized 1.73 gives 2 (a harness of inexact ops rounded to sizes found it);
* the same harness: a window (HannWindow, BlackmanWindow...) or a Det rounded to a whole number was folded at numpy's
  value, which onnxruntime's cosines and LU factorization make an ulp apart (``Floor(4 * HannWindow(3))`` 2 here and
  3 there at its last point): they join round 78's inexact ops.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_sizes  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _planned(model, dims: dict | None = None) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model, dims=dims).tensors if t.kind != "input"}


# -- integer ReduceLogSumExp -----------------------------------------------------------------------------------------

def _rows_of_log_sum_exp(shape: list[int], opset: int):
    """``ConstantOfShape(ReduceLogSumExp(Shape(x)))``: as many floats as onnxruntime's integer log-sum-exp of x's
    dimensions."""
    axes = [numpy_helper.from_array(np.array([0], np.int64), "a")] if opset >= 18 else []
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ReduceLogSumExp", ["s"] + (["a"] if axes else []), ["r"], keepdims=1,
                              **({} if axes else {"axes": [0]})),
             helper.make_node("ConstantOfShape", ["r"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, shape)],
                          [helper.ValueInfoProto(name="y")], initializer=axes)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(("shape", "opset", "rows"), [
    ([2, 2, 1, 1], 18, 2),      # (2 + log 2, truncated; the float64 log-sum-exp, 3.005, truncates to 3)
    ([5, 5, 5, 1], 13, 6),      # (5 + log 3 = 6.1)
    ([7, 7, 7, 7, 7], 21, 8),   # (7 + log 5 = 8.6)
    ([3, 4], 18, 4),            # (one maximum: log 1 = 0)
])
def test_an_integer_reduce_log_sum_exp_of_a_shape_is_planned_at_onnxruntimes_size(shape, opset, rows):
    # (was refused: "its input 'r' sizes it by its values, which the importer does not know")
    model = _rows_of_log_sum_exp(shape, opset)
    real = ort_sizes(model, {"x": np.zeros(shape, np.float32)}, strict=True)
    assert _planned(model)["y"] == real["y"] == 4 * rows


@pytest.mark.parametrize("data", [np.array([-2, -2], np.int64),        # (builds part: -2 + trunc(log 2), or -1)
                                  np.array([2**62, -2**62], np.int64),  # (v - max leaves int64 in older builds)
                                  np.array([2**31 - 1] * 3, np.int32)])  # (past int32: saturated, or wrapped)
def test_an_integer_reduce_log_sum_exp_whose_value_onnxruntimes_builds_make_apart_is_refused(data):
    nodes = [helper.make_node("ReduceLogSumExp", ["d"], ["r"], keepdims=1),
             helper.make_node("Clip", ["r", "lo", "hi"], ["c"]), helper.make_node("Cast", ["c"], ["i"], to=T.INT64),
             helper.make_node("ConstantOfShape", ["i"], ["y"])]
    inits = [numpy_helper.from_array(data, "d"), numpy_helper.from_array(np.array(0, data.dtype), "lo"),
             numpy_helper.from_array(np.array(4, data.dtype), "hi")]
    g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "which the importer does not know" in str(info.value)


# -- Concat of inputs made empty by --dim ----------------------------------------------------------------------------

def _concat(shapes: list[list], axis: int):
    names = [f"x{k}" for k in range(len(shapes))]
    nodes = [helper.make_node("Concat", names, ["y"], axis=axis), helper.make_node("Relu", ["y"], ["z"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(v, T.FLOAT, s) for v, s in zip(names, shapes)],
                          [helper.ValueInfoProto(name="z")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(("shapes", "axis", "dims", "made"), [
    ([["N", "K"], [2, 3]], 0, {"N": 0, "K": 7}, [2, 3]),           # (an empty input's other dimensions not held)
    ([["N", "K"], ["M", 3]], 1, {"N": 2, "K": 0, "M": 2}, [2, 3]),
    ([["N", "K"], [2, 5]], 1, {"N": 0, "K": 7}, [2, 12]),          # (its axis dimension still added: 7 + 5)
    ([["N", "K"], ["M", "J"]], 0, {"N": 3, "K": 0, "M": 2, "J": 5}, [5, 5]),
    ([["N", "K"], ["M", "J"]], 1, {"N": 0, "K": 7, "M": 0, "J": 5}, [0, 12]),   # (all empty: the first's)
    ([[1, 0], ["A", "B"], ["C", 3]], 1, {"A": 0, "B": 4, "C": 1}, [1, 7]),      # (a fixed empty one too)
])
def test_a_concat_of_inputs_made_empty_by_dims_is_planned_as_onnxruntime_skips_them(shapes, axis, dims, made):
    # (was refused: "ONNX shape inference failed: ... Can't merge shape info ... Inferred=3 Declared=7")
    model = _concat(shapes, axis)
    feeds = {f"x{k}": np.ones([dims[d] if isinstance(d, str) else d for d in s], np.float32)
             for k, s in enumerate(shapes)}
    real = ort_sizes(model, feeds, strict=True)
    graph = import_onnx(model, dims=dims)
    y = next(t for t in graph.tensors if t.id == "y")
    assert list(y.attrs["shape"]) == made and y.size == real["y"] == _planned(model, dims)["z"] == 4 * int(
        np.prod(made))


def test_a_concat_whose_inputs_fix_one_dimension_at_two_sizes_stays_refused_as_onnxruntime_refuses_to_load_it():
    from onnx_oracle import ort_refuses

    model = _concat([["N", 7], [2, 3]], 0)   # (7 and 3 fixed by the model: onnxruntime's inference refuses at load)
    assert ort_refuses(model)
    with pytest.raises(GraphError) as info:
        import_onnx(model, dims={"N": 0})
    msg = str(info.value)
    assert "'Concat_0'" in msg and "'x0'" in msg and "'x1'" in msg and "7 and 3" in msg, msg


@pytest.mark.parametrize(("shapes", "axis", "made"), [
    ([[2, 0], [3, 4]], -1, [3, 4]), ([[2, 0], [3, 4]], -2, [5, 4]), ([[0, 5], [0, 4]], -2, [0, 5])])
def test_a_concat_4_of_a_negative_axis_skips_an_empty_input_as_onnxruntime_does(shapes, axis, made):
    # (was refused: "value 'y' has no shape: shape inference could not find its rank")
    model = _concat(shapes, axis)
    model.opset_import[0].version = 9
    real = ort_sizes(model, {f"x{k}": np.ones(s, np.float32) for k, s in enumerate(shapes)}, strict=True)
    y = next(t for t in import_onnx(model).tensors if t.id == "y")
    assert list(y.attrs["shape"]) == made and y.size == real["y"] == 4 * int(np.prod(made))


# -- ConvInteger and QLinearConv of shapes onnxruntime's kernel refuses ------------------------------------------------

def _quantized_conv(op: str, x: list[int], w: list[int], bias: list[int] | None = None, **attrs):
    import onnx_sweep_round78 as sweep

    f32, u8 = (lambda v: np.array(v, np.float32)), (lambda shape: np.ones(shape, np.uint8))
    if op == "ConvInteger":
        ins = {"x": u8(x), "w": u8(w)}
    else:
        ins = {"x": u8(x), "xs": f32(0.1), "xz": np.array(1, np.uint8), "w": u8(w), "ws": f32(0.2),
               "wz": np.array(0, np.uint8), "ys": f32(0.3), "yz": np.array(2, np.uint8),
               "b": None if bias is None else np.ones(bias, np.int32)}
    return sweep.one_op("c", op, ins, ["y"], tuple(k for k in ins if k != "x"), opset=10, **attrs)


@pytest.mark.parametrize("op", ["ConvInteger", "QLinearConv"])
@pytest.mark.parametrize(("x", "w", "attrs", "words"), [
    ([1, 3, 4, 4], [1, 2, 3, 3], {}, "has 3 channels, not its weight 'w''s 2 per group"),
    ([1, 1, 4, 4], [1, 1, 3, 3], {"kernel_shape": [2, 2]}, "its kernel_shape [2, 2] is not its weight's [3, 3]"),
    ([1, 1, 5, 5], [1, 1, 3, 3], {"dilations": [2, 2], "auto_pad": "SAME_UPPER"}, "with dilations [2, 2]"),
    ([1, 2, 4, 4], [3, 1, 3, 3], {"group": 2}, "has 3 output channels, not divisible by group 2"),
    ([1, 1, 3, 4], [1, 1, 3, 3], {"dilations": [2, 1]}, "smaller than its kernel's 5 (dilated)"),
])
def test_a_quantized_conv_of_shapes_onnxruntime_refuses_is_refused_naming_the_node(op, x, w, attrs, words):
    # (planned before: ConvInteger of 3 channels by a weight of 2 at [1, 1, 2, 2], which onnxruntime never writes)
    from onnx_oracle import ort_refuses

    case = _quantized_conv(op, x, w, **attrs)
    assert ort_refuses(case.model, case.feeds)
    with pytest.raises(GraphError) as info:
        import_onnx(case.model)
    msg = str(info.value)
    assert f"'{op}_0' ({op})" in msg and words in msg and "onnxruntime refuses to run it" in msg, msg


def test_a_qlinear_conv_whose_bias_is_not_its_output_channels_is_refused_and_a_right_one_planned():
    from onnx_oracle import ort_refuses

    bad = _quantized_conv("QLinearConv", [1, 1, 4, 4], [2, 1, 3, 3], bias=[3])
    assert ort_refuses(bad.model, bad.feeds)
    with pytest.raises(GraphError) as info:
        import_onnx(bad.model)
    assert "its bias 'b' ([3]) is not 1-D of its 2 output channels" in str(info.value), str(info.value)
    good = _quantized_conv("QLinearConv", [1, 2, 5, 4], [4, 1, 3, 2], bias=[4], group=2, dilations=[2, 1])
    assert _planned(good.model)["y"] == ort_sizes(good.model, good.feeds, strict=True)["y"] == 4 * 1 * 3   # (uint8: [1, 4, 1, 3])


# -- integer Pow ---------------------------------------------------------------------------------------------------------

def _rows_of_pow(base: np.ndarray, power: np.ndarray, minus: int):
    """``ConstantOfShape(Clip(Abs(Pow(base, power) - minus), 0, 6))``: a size that follows an integer Pow."""
    nodes = [helper.make_node("Pow", ["a", "b"], ["p"]), helper.make_node("Sub", ["p", "m"], ["d"]),
             helper.make_node("Abs", ["d"], ["ad"]), helper.make_node("Clip", ["ad", "lo", "hi"], ["c"]),
             helper.make_node("ConstantOfShape", ["c"], ["y"])]
    inits = [numpy_helper.from_array(base, "a"), numpy_helper.from_array(power, "b"),
             numpy_helper.from_array(np.array([minus], base.dtype), "m"),
             numpy_helper.from_array(np.array(0, base.dtype), "lo"), numpy_helper.from_array(np.array(6, base.dtype), "hi")]
    if base.dtype != np.int64:
        nodes.insert(4, helper.make_node("Cast", ["c"], ["c64"], to=T.INT64))
        nodes[-1].input[0] = "c64"
    g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_an_integer_pow_past_2_53_is_refused_not_folded_exactly():
    # (3 ** 39 = 4052555153018976267, onnxruntime's float64 pow 4052555153018976256: |... - ...264| is 8 there, 6 rows
    # written, where the exact value gave 3: 12 bytes planned for 24)
    model = _rows_of_pow(np.array([3], np.int64), np.array([39], np.int64), 4052555153018976264)
    assert ort_sizes(model, {}, strict=True)["y"] == 24
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "which the importer does not know" in str(info.value)


@pytest.mark.parametrize(("base", "power", "minus"), [
    (np.array([2, 1], np.int64), np.array([-1, -2], np.int64), 0),   # (truncated: 0 and 1; was refused)
    (np.array([2], np.int32), np.array([-1], np.int32), 0),
    (np.array([-2, 3], np.int64), np.array([3], np.int64), -11),      # (whole powers below 2**53: exact)
    (np.array([10], np.int64), np.array([0.5], np.float32), 0),       # (a float power: 3.16, truncated to 3)
])
def test_an_integer_pow_is_folded_as_onnxruntime_computes_it(base, power, minus):
    model = _rows_of_pow(base, power, minus)
    assert _planned(model)["y"] == ort_sizes(model, {}, strict=True)["y"]


# -- NaN-decided values ----------------------------------------------------------------------------------------------

def _rows_of(op: str, data: np.ndarray, extra: list[np.ndarray] = (), nan: bool = False, **attrs):
    """``ConstantOfShape(Clip(Cast(op(data, *extra)) + 1, 0, 6))`` summed to one value: a size that follows ``op``
    (``nan``: whether each value of ``op`` is a NaN, ``IsNaN(op(...))``, rather than the value)."""
    names = [f"e{k}" for k in range(len(extra))]
    nodes = [helper.make_node(op, ["d", *names], ["v0"], **attrs),
             helper.make_node("IsNaN" if nan else "Identity", ["v0"], ["v"]),
             helper.make_node("Cast", ["v"], ["i"], to=T.INT64),
             helper.make_node("Add", ["i", "one"], ["i1"]), helper.make_node("ReduceSum", ["i1"], ["s"], keepdims=1),
             helper.make_node("Reshape", ["s", "m1"], ["r"]), helper.make_node("Clip", ["r", "lo", "hi"], ["c"]),
             helper.make_node("ConstantOfShape", ["c"], ["y"])]
    inits = [numpy_helper.from_array(data, "d"), *(numpy_helper.from_array(e, k) for k, e in zip(names, extra)),
             numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array([-1], np.int64), "m1"),
             numpy_helper.from_array(np.array(0, np.int64), "lo"), numpy_helper.from_array(np.array(6, np.int64), "hi")]
    g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


NAN = np.float32(np.nan)


@pytest.mark.parametrize(("op", "data", "extra", "attrs"), [
    ("ArgMax", np.array([1, NAN, 3], np.float32), [], {"keepdims": 1}),      # (1 in numpy, 2 in onnxruntime)
    ("ArgMin", np.array([1, NAN, 0], np.float32), [], {"keepdims": 1}),
    ("ReduceMax", np.array([1, NAN, 3], np.float32), [], {"keepdims": 1, "nan": True}),   # (NaN in numpy, 3 there)
    ("ReduceMin", np.array([1, NAN, 3], np.float32), [], {"keepdims": 1, "nan": True}),
    ("Clip", np.array([1, 0.5, 3], np.float32), [np.array(NAN, np.float32), np.array(2, np.float32)], {"nan": True}),
])
def test_a_value_decided_on_a_nan_is_refused_not_folded_at_numpys_choice(op, data, extra, attrs):
    model = _rows_of(op, data, extra, **attrs)
    real = ort_sizes(model, {}, strict=True)["y"]
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "which the importer does not know" in str(info.value), real
    clean = _rows_of(op, np.nan_to_num(data, nan=2.0), [np.nan_to_num(e, nan=0.0) for e in extra], **attrs)
    assert _planned(clean)["y"] == ort_sizes(clean, {}, strict=True)["y"] > 0   # (without the NaN: folded)


# -- the quotient a signed type does not hold --------------------------------------------------------------------------

def _least_by_minus_one(dtype, a: int):
    inits = [numpy_helper.from_array(np.array([a, 4], dtype), "a"), numpy_helper.from_array(np.array([-1], dtype), "b")]
    g = helper.make_graph([helper.make_node("Div", ["a", "b"], ["y"])], "g", [], [helper.ValueInfoProto(name="y")],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


_RUN_IN_CHILD = """
import sys, onnxruntime as ort
so = ort.SessionOptions(); so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
ort.InferenceSession(sys.stdin.buffer.read(), so, providers=["CPUExecutionProvider"]).run(None, {})
"""


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_a_div_of_the_least_integer_by_minus_one_is_refused_as_it_stops_onnxruntime(dtype):
    import subprocess
    import sys

    least = int(np.iinfo(dtype).min)
    model = _least_by_minus_one(dtype, least)
    child = subprocess.run([sys.executable, "-c", _RUN_IN_CHILD], input=model.SerializeToString(),
                           capture_output=True, timeout=120)
    assert child.returncode < 0, child   # (SIGFPE: the process is gone, no error to catch)
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    msg = str(info.value)
    assert "'Div_0' (Div)" in msg and f"holds {least}, the least" in msg and "'b'" in msg, msg
    ok = _least_by_minus_one(dtype, least + 1)   # (one above: planned, as onnxruntime runs it)
    assert _planned(ok)["y"] == ort_sizes(ok, {}, strict=True)["y"] == 2 * np.dtype(dtype).itemsize


# -- MeanVarianceNormalization's value -------------------------------------------------------------------------------

def test_a_mean_variance_normalization_is_not_folded_as_its_input():
    # (the inference copy's Identity stand-in for the MVN was folded: ceil(max(x)) = 1 float planned, where onnxruntime
    # normalizes [0, 0, 0, 0.5] to at most 1.73: 2 floats written, an overrun)
    data = np.array([0, 0, 0, 0.5], np.float32).reshape(1, 1, 2, 2)
    nodes = [helper.make_node("MeanVarianceNormalization", ["d"], ["v"], axes=[2, 3]),
             helper.make_node("ReduceMax", ["v"], ["mx"], keepdims=0), helper.make_node("Ceil", ["mx"], ["c"]),
             helper.make_node("Cast", ["c"], ["i"], to=T.INT64), helper.make_node("Reshape", ["i", "m1"], ["r"]),
             helper.make_node("ConstantOfShape", ["r"], ["y"])]
    inits = [numpy_helper.from_array(data, "d"), numpy_helper.from_array(np.array([1], np.int64), "m1")]
    g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    assert ort_sizes(model, {}, strict=True)["y"] == 8
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "which the importer does not know" in str(info.value)
    # (and where its value sizes nothing, an MVN is planned as before, at its input's shape)
    plain = helper.make_graph([helper.make_node("MeanVarianceNormalization", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT, [1, 2, 3, 4])],
                              [helper.ValueInfoProto(name="y")])
    plain_model = helper.make_model(plain, opset_imports=[helper.make_opsetid("", 18)])
    assert _planned(plain_model)["y"] == ort_sizes(plain_model, {"x": np.ones([1, 2, 3, 4], np.float32)},
                                                   strict=True)["y"] == 96


# -- windows and determinants rounded to sizes ------------------------------------------------------------------------

def _rows_of_4x(nodes: list, inits: list, rounding: str):
    """``ConstantOfShape(ReduceSum(rounding(4 * v)))`` of the value ``v`` that ``nodes`` make."""
    nodes = nodes + [helper.make_node("Mul", ["v", "four"], ["v4"]), helper.make_node(rounding, ["v4"], ["w"]),
                     helper.make_node("Cast", ["w"], ["i"], to=T.INT64),
                     helper.make_node("ReduceSum", ["i"], ["s"], keepdims=1),
                     helper.make_node("Reshape", ["s", "m1"], ["r"]), helper.make_node("ConstantOfShape", ["r"], ["y"])]
    inits = inits + [numpy_helper.from_array(np.array(4, np.float32), "four"),
                     numpy_helper.from_array(np.array([1], np.int64), "m1")]
    g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("op", "data", "rounding", "attrs", "planned_before"), [
    ("HannWindow", np.array(3, np.int64), "Floor", {"periodic": 1}, 20),    # (onnxruntime: 24 bytes)
    ("BlackmanWindow", np.array(5, np.int64), "Ceil", {"periodic": 0}, 32),  # (onnxruntime: 40)
    ("Det", np.array([[1, -1], [-3, 4]], np.float32), "Ceil", {}, 16),       # (onnxruntime's det 1.0000001: 20)
])
def test_a_window_or_determinant_rounded_to_a_size_is_refused_not_folded_at_numpys_value(op, data, rounding, attrs,
                                                                                          planned_before):
    model = _rows_of_4x([helper.make_node(op, ["d"], ["v"], **attrs)], [numpy_helper.from_array(data, "d")],
                        rounding)
    assert ort_sizes(model, {}, strict=True)["y"] > planned_before   # (the overrun the fold planned)
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "which the importer does not know" in str(info.value)
    clear = _rows_of_4x([helper.make_node("Det", ["d"], ["v"])],   # (det 1.4: 5.6, clear of a whole number: folded)
                        [numpy_helper.from_array(np.array([[2, 0.3], [1, 0.85]], np.float32), "d")], "Ceil")
    assert _planned(clear)["y"] == ort_sizes(clear, {}, strict=True)["y"] == 24


# -- the sweep ----------------------------------------------------------------------------------------------------------

def test_the_round_79_sweep_agrees_with_onnxruntime():
    import onnx_sweep_round78 as sweep78
    import onnx_sweep_round79 as sweep79

    counts = sweep79.run(sweep79.all_cases(count=20), show=5)
    assert not any(counts[k] for k in sweep78.FAILING), counts
    assert counts["agree"] > 110 and counts["data-dependent refusal"] >= 10, counts
