"""ONNX importer, round 78: shape computations folded to another value than onnxruntime computes.

Why: the importer folds the small values that size tensors (a ``Shape -> ... -> ConstantOfShape`` chain) with onnx's
reference evaluator; where onnxruntime's CPU kernel computes another value, the plan holds the evaluator's size and
onnxruntime writes its own, past the buffer when larger. The random sweep (``tests/onnx_sweep_round78.py``: one-op
models over attribute corners, and random shape chains) found two such places:

* an integer ReduceSum / ReduceProd / ReduceMean / ReduceL1 / ReduceSumSquare: onnxruntime accumulates it in float64
  and converts back saturating, the evaluator wraps in the integer type (ReduceProd of int64 [2**62, 4]:
  9223372036854775807 there, 0 here; 4 floats written into 0 planned bytes). Past 2**53 (or the type's range) such a
  value is now left unknown, and what it sizes refused naming it;
* a whole number rounded from Exp, Log, Sin, Pow... (functions no library rounds correctly): onnxruntime's vectorized
  ones differ from numpy's by an ulp, so ``Ceil(Exp(Log(14)))`` is 14 in the evaluator and 15 in onnxruntime (of 5:
  6 and 5). Near where the rounding changes such a value is now left unknown; clear of it, it folds.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnx_sweep_round78 as sweep  # noqa: E402
from onnx_oracle import ort_sizes  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _planned(model) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model).tensors if t.kind != "input"}


# -- integer reductions onnxruntime accumulates in float64 ------------------------------------------------------------

@pytest.mark.parametrize(("op", "data", "ort_bytes"), [
    ("ReduceProd", np.array([2**62, 4], np.int64), 16),         # (saturates at INT64_MAX, clipped to 4 floats)
    ("ReduceSum", np.array([2**31 - 1, 2], np.int32), 16),      # (saturates at INT32_MAX; the evaluator wraps negative)
    ("ReduceSumSquare", np.array([2**40, 3], np.int64), 16),
])
def test_an_integer_reduction_onnxruntime_saturates_is_refused_not_planned_at_the_wrapped_value(op, data, ort_bytes):
    model = sweep.reduction_model(op, data)
    assert ort_sizes(model, {}, strict=True)["y"] == ort_bytes   # (the hazard: planned 0 bytes before the fix)
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    msg = str(info.value)
    assert "'ConstantOfShape_" in msg and "which the importer does not know" in msg, msg
    # a reduction of small values still folds, to onnxruntime's size
    small = sweep.reduction_model(op, np.array([1, 2], data.dtype))
    assert _planned(small)["y"] == ort_sizes(small, {}, strict=True)["y"] > 0


# -- whole numbers rounded from inexact float functions ---------------------------------------------------------------

#: Ceil / Floor / Round of an inexact value clear of where the rounding changes: still folded, to onnxruntime's size
CLEAR = [(14, [("Log", None), ("Mul", 3.0)], "Ceil"),    # (7.917: clear of 8)
         (5, [("Pow", 2.0)], "Floor"),                   # (a whole power, exact in both)
         (9, [("Sqrt", None)], "Floor"),                 # (correctly rounded in both)
         (5, [("Exp", None), ("Log", None)], "Round")]   # (5.0000x rounds to 5 in both: clear of 5.5)


def test_a_whole_number_rounded_from_exp_of_log_is_refused_where_onnxruntime_rounds_it_otherwise():
    model = sweep.float_rows_model(14, [("Log", None), ("Exp", None)])
    # (numpy's Exp(Log(14.0)) is 14.0: 14 rows, 56 bytes planned; onnxruntime's vectorized one an ulp above: 15 rows,
    # 60 bytes written)
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value) and "'i'" in str(info.value), str(info.value)
    # (and sliced first: the Slice's value, folded by its own rule, is as inexact as what it slices)
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["f"], to=T.FLOAT),
             helper.make_node("Log", ["f"], ["l"]), helper.make_node("Exp", ["l"], ["e"]),
             helper.make_node("Slice", ["e", "st", "en"], ["sl"]), helper.make_node("Ceil", ["sl"], ["c"]),
             helper.make_node("Cast", ["c"], ["i"], to=T.INT64), helper.make_node("ConstantOfShape", ["i"], ["y"])]
    sliced = sweep._graph_model(nodes, 14, inits=[numpy_helper.from_array(np.array([0], np.int64), "st"),
                                                  numpy_helper.from_array(np.array([1], np.int64), "en")])
    assert ort_sizes(sliced, {"x": np.zeros(14, np.float32)}, strict=True)["y"] == 60
    with pytest.raises(GraphError) as info:
        import_onnx(sliced)
    assert "'ConstantOfShape_" in str(info.value) and "'i'" in str(info.value), str(info.value)
    for n, ops, rounding in CLEAR:
        model = sweep.float_rows_model(n, ops, rounding)
        real = ort_sizes(model, {"x": np.zeros(n, np.float32)}, strict=True)
        assert _planned(model)["y"] == real["y"] > 0, (n, ops, rounding)


def test_a_whole_number_rounded_from_a_float_sum_is_refused_where_onnxruntime_sums_in_another_order():
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    def rows(data: np.ndarray):
        nodes = [helper.make_node("ReduceSum", ["d", "a"], ["r"], keepdims=1), helper.make_node("Ceil", ["r"], ["c"]),
                 helper.make_node("Cast", ["c"], ["i"], to=T.INT64), helper.make_node("ConstantOfShape", ["i"], ["y"])]
        g = helper.make_graph(nodes, "g", [], [helper.ValueInfoProto(name="y")], initializer=[
            numpy_helper.from_array(data, "d"), numpy_helper.from_array(np.array([0], np.int64), "a")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])

    # (numpy's pairwise sum of these thirds is 15.0: 15 rows, 60 bytes planned; onnxruntime's 15.000001: 64 written)
    thirds = rows((np.array([5, 7, 6, 9, 5, 3, 4, 6]) * np.float32(1 / 3)).astype(np.float32))
    assert ort_sizes(thirds, {}, strict=True)["y"] == 64
    with pytest.raises(GraphError) as info:
        import_onnx(thirds)
    assert "'ConstantOfShape_" in str(info.value), str(info.value)
    whole = rows(np.array([5, 7, 6, 9], np.float32))   # (whole numbers: exact in any order, still folded)
    assert _planned(whole)["y"] == ort_sizes(whole, {}, strict=True)["y"] == 27 * 4


def test_a_comparison_of_an_inexact_value_is_not_folded():
    # (Where(Greater(Exp(Log(n)), n), ...): which branch is onnxruntime's build's own; the import must not pick one)
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["f"], to=T.FLOAT),
             helper.make_node("Log", ["f"], ["l"]), helper.make_node("Exp", ["l"], ["e"]),
             helper.make_node("GreaterOrEqual", ["e", "f"], ["g"]),
             helper.make_node("Where", ["g", "big", "small"], ["w"]),
             helper.make_node("ConstantOfShape", ["w"], ["y"])]
    model = sweep._graph_model(nodes, 14, inits=[numpy_helper.from_array(np.array([3], np.int64), "big"),
                                                 numpy_helper.from_array(np.array([2], np.int64), "small")])
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'ConstantOfShape_" in str(info.value), str(info.value)


# -- integer ReduceLogSum, which onnx's evaluator refuses ----------------------------------------------------------

@pytest.mark.parametrize(("shape", "opset"), [([4, 2, 3], 18), ([5, 5], 13), ([2, 3, 1, 7], 21)])
def test_an_integer_reduce_log_sum_of_a_shape_is_planned_at_onnxruntimes_size(shape, opset):
    # (was refused: "its input 'r' sizes it by its values, which the importer does not know")
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    axes = [numpy_helper.from_array(np.array([0], np.int64), "a")] if opset >= 18 else []
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ReduceLogSum", ["s"] + (["a"] if axes else []), ["r"], keepdims=1,
                              **({} if axes else {"axes": [0]})),
             helper.make_node("ConstantOfShape", ["r"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, shape)],
                          [helper.ValueInfoProto(name="y")], initializer=axes)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    real = ort_sizes(model, {"x": np.zeros(shape, np.float32)}, strict=True)
    assert _planned(model)["y"] == real["y"] == 4 * int(np.log(sum(shape)))


# -- MelWeightMatrix edges outside the spectrogram -------------------------------------------------------------------

def _mel(dft: int, lo: float, hi: float):
    ins = {"bins": np.array(3, np.int64), "dft": np.array(dft, np.int64), "rate": np.array(16000, np.int64),
           "lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)}
    return sweep.one_op("mel", "MelWeightMatrix", ins, ["y"], tuple(ins), opset=17).model


@pytest.mark.parametrize(("dft", "lo", "hi", "edge"), [(15, 0.0, 8000.0, "upper_edge_hertz 'hi' (8000.0 Hz)"),
                                                        (16, -600.0, 4000.0, "lower_edge_hertz 'lo' (-600.0 Hz)")])
def test_a_mel_weight_matrix_whose_edge_falls_outside_its_bins_is_refused_as_onnxruntime_refuses_it(dft, lo, hi, edge):
    # (planned [dft // 2 + 1, 3] floats before; onnxruntime's kernel refuses the edge's bin at run time)
    from onnx_oracle import ort_refuses

    model = _mel(dft, lo, hi)
    assert ort_refuses(model, {})
    with pytest.raises(GraphError) as info:
        import_onnx(model)
    assert "'MelWeightMatrix_0'" in str(info.value) and edge in str(info.value), str(info.value)
    ok = _mel(16, 0.0, 8000.0)   # (bin 8 of 9: runs, planned at onnxruntime's size)
    assert _planned(ok)["y"] == ort_sizes(ok, {}, strict=True)["y"] == 9 * 3 * 4


# -- block-wise quantization of a one-element scale --------------------------------------------------------------------

@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
@pytest.mark.parametrize(("shape", "block"), [([1], 1), ([3], 4)])
def test_a_blocked_quantization_whose_scale_is_one_value_is_refused_as_onnxruntime_refuses_it(op, shape, block):
    # (the spec's blocked scale of [1] or [3] by blocks of 4 is [1]: ONNX's inference takes it and memplan planned it,
    # but onnxruntime reads a one-element scale as per tensor and refuses the block_size)
    from onnx_oracle import ort_refuses

    x = np.zeros(shape, np.float32 if op == "QuantizeLinear" else np.uint8)
    case = sweep.one_op("q", op, {"x": x, "s": np.ones([1], np.float32)}, ["y"], ("s",), opset=21, axis=0,
                        block_size=block)
    assert ort_refuses(case.model, case.feeds)
    with pytest.raises(GraphError) as info:
        import_onnx(case.model)
    assert f"'{op}_0'" in str(info.value) and f"its block_size is {block}" in str(info.value), str(info.value)
    two = sweep.one_op("q", op, {"x": np.zeros([2, 3], x.dtype), "s": np.ones([2, -(-3 // block)], np.float32)},
                       ["y"], ("s",),
                       opset=21, axis=1, block_size=block)   # (a blocked scale of two values: planned, as it runs)
    assert _planned(two.model)["y"] == ort_sizes(two.model, two.feeds, strict=True)["y"]


# -- ConcatFromSequence of a sequence holding empty tensors ------------------------------------------------------------

@pytest.mark.parametrize(("shapes", "axis", "new_axis", "made"), [
    ([(1, 0), (1, 1)], 0, 0, [2, 1]),            # (an empty piece's other dimensions are not held to the rest)
    ([(2, 0, 3), (2, 1, 2)], 1, 0, [2, 1, 2]),
    ([(3, 0), (3, 1), (3, 0)], 0, 1, [3, 3, 1]),  # (stacked: the first tensor holding elements gives the shape)
    ([(0, 5), (2, 4)], 0, 1, [2, 2, 4]),
])
def test_a_sequence_holding_empty_tensors_concatenates_as_onnxruntime_runs_it(shapes, axis, new_axis, made):
    # (was refused: "its sequence holds tensors of shapes [[1, 0], [1, 1]], that differ off axis 0 (new_axis=0):
    # onnxruntime refuses to concatenate them", where onnxruntime runs it)
    from onnx import TensorProto as T
    from onnx import helper

    names = [f"x{k}" for k in range(len(shapes))]
    nodes = [helper.make_node("SequenceConstruct", names, ["sq"]),
             helper.make_node("ConcatFromSequence", ["sq"], ["y"], axis=axis, new_axis=new_axis)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(v, T.FLOAT, list(s)) for v, s in zip(names, shapes)],
                          [helper.ValueInfoProto(name="y")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    real = ort_sizes(model, {v: np.ones(s, np.float32) for v, s in zip(names, shapes)}, strict=True)
    graph = import_onnx(model)
    y = next(t for t in graph.tensors if t.id == "y")
    assert list(y.attrs["shape"]) == made and y.size == real["y"] == 4 * int(np.prod(made))


# -- the sweep ----------------------------------------------------------------------------------------------------------

def test_the_round_78_sweep_agrees_with_onnxruntime():
    counts = sweep.run(sweep.all_cases(count=14), show=5)
    assert not any(counts[k] for k in sweep.FAILING), counts
    assert counts["agree"] > 150 and counts["known refusal"] >= 3, counts
