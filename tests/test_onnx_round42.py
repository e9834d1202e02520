"""ONNX importer, round 42: differential checks against what onnxruntime really writes (``onnx_oracle``).

- an int32 or int64 ``Range`` of known values whose difference wraps in its type or passes 2**53 was sized by
  ONNX's inference (which subtracts in the type and divides in float64): ``Range(-2**31, 2**31 - 1, 2**31 - 1)``
  planned empty where onnxruntime writes 3 elements; it is planned at onnxruntime's exact count; one onnxruntime
  refuses to run (a delta of 0, a float count not finite or past int64) was planned empty, and is refused;
- a ``Slice`` (10 and later) with an end of INT32_MAX or INT64_MAX and a negative step was sized by ONNX's rule
  (the end clamped to ``dim - 1``: empty), where onnxruntime reads that end as "none" and runs down to index 0;
- a ``NonZero`` or ``Unique`` of a constant was refused as depending on "values computed at run time from what the
  graph inputs hold"; it is planned at the count onnxruntime writes, and one of a graph input is still refused;
- a model-local function importing ``ai.onnx.ml`` at an opset onnx does not define (6) with a node of it, where the
  model imports 5, was planned (aligned to 5); onnxruntime refuses the model;
- a negative dimension (declared, or made by a Pad of negative pads, a Conv of a kernel larger than its input...)
  sliced by a Slice aborted the process (onnx's Slice inference asserts); it is refused naming the value;
- a small sparse initializer whose data lies in an external file was never read: one used as a Reshape's shape was
  refused as a dimension ONNX "could not derive", naming neither the tensor nor the file; it is read.
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


def _model(nodes, inputs=(), inits=(), outs=("y",), opset=21):
    g = helper.make_graph(nodes, "g", list(inputs), [helper.ValueInfoProto(name=o) for o in outs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _same_as_ort(model, feeds=None) -> int:
    real = ort_sizes(model, feeds or {}, strict=True)
    compared, bad = size_mismatches(import_onnx(model), real)
    assert not bad, bad
    return compared


# --- 1. integer Range past its type's range ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype, start, limit, delta", [
    (np.int32, -2**31, 2**31 - 1, 2**31 - 1),     # ONNX: wraps to -1 -> 0 elements; onnxruntime 3
    (np.int32, 2**31 - 3, -2**31 + 3, 2),         # ONNX: wraps to 6 -> 3 elements; onnxruntime 0
    (np.int64, 0, 2**53 + 1, 2**53),              # ONNX: float64 rounds to 1 element; onnxruntime 2
    (np.int64, -2**63, 2**63 - 1, 2**63 - 1),     # ONNX: 0; onnxruntime 3
    (np.int64, 5, -2**63, -2**62),                # ONNX: 0; onnxruntime 3
], ids=["int32-wraps-negative", "int32-wraps-positive", "int64-past-2**53", "int64-wraps", "int64-down"])
def test_an_integer_range_past_its_type_is_planned_as_onnxruntime_counts(dtype, start, limit, delta):
    inits = [nh.from_array(np.array(v, dtype), k) for k, v in zip("sld", (start, limit, delta))]
    model = _model([helper.make_node("Range", ["s", "l", "d"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
                   inits=inits)
    assert _same_as_ort(model) == 2


def test_an_integer_range_of_folded_values_is_planned_as_onnxruntime_counts():
    """The start computed (``Add`` of two constants, folded by the importer) and its length read from the shape."""
    inits = [nh.from_array(np.array(v, np.int32), k) for k, v in
             (("s0", 2**31 - 4), ("one", 1), ("l", -2**31 + 3), ("d", 2))]
    model = _model([helper.make_node("Add", ["s0", "one"], ["s"]), helper.make_node("Range", ["s", "l", "d"], ["r"]),
                    helper.make_node("Identity", ["r"], ["y"])], inits=inits)
    assert _same_as_ort(model) == 3


def test_a_declared_length_of_a_wrapping_range_is_refused():
    inits = [nh.from_array(np.array(v, np.int32), k) for k, v in zip("sld", (-2**31, 2**31 - 1, 2**31 - 1))]
    model = _model([helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")], inits=inits)
    del model.graph.output[:]
    model.graph.output.append(V("y", T.INT32, [0]))
    with pytest.raises(GraphError, match=r"node 'rng' \(Range\): value 'y' is declared \[0\].*makes it \[3\]"):
        import_onnx(model)


@pytest.mark.parametrize("dtype, start, limit, delta, says", [
    (np.int64, 0, 5, 0, r"its delta 'd' is 0: onnxruntime refuses"),
    (np.float32, 0, 5, 0, r"its delta 'd' is 0"),
    (np.float32, 0, np.inf, 1, r"ceil\(\(inf - 0.0\) / 1.0\) is not finite"),
    (np.float32, 0, np.nan, 1, r"is not finite"),
    (np.float64, 0, 1e20, 1, r"\(1e\+20\) exceeds int64's range"),
], ids=["int-delta-0", "float-delta-0", "inf", "nan", "past-int64"])
def test_a_range_onnxruntime_refuses_to_run_is_refused(dtype, start, limit, delta, says):
    inits = [nh.from_array(np.array(v, dtype), k) for k, v in zip("sld", (start, limit, delta))]
    model = _model([helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")], inits=inits)
    with pytest.raises(GraphError, match=r"node 'rng' \(Range\): .*" + says):
        import_onnx(model)
    assert ort_sizes(model, {}) is None   # (onnxruntime: "delta ... can not be zero", "... not a finite value"...)


# --- 2. Slice to INT_MAX with a negative step ---------------------------------------------------------------------

@pytest.mark.parametrize("start, limit, delta", [(-2**63, 2**63 - 1, 1), (-2**63, 2**63 - 1, 2), (2**63 - 1, -2**63, -1)])
def test_an_int64_range_of_more_than_int64_elements_is_refused(start, limit, delta):
    """Its exact count (2**64 - 1, 2**63) is no int64: a raw OverflowError where its length was made a Constant."""
    args = [nh.from_array(np.array(v, np.int64), k) for k, v in zip(("s", "l", "d"), (start, limit, delta))]
    model = _model([helper.make_node("Range", ["s", "l", "d"], ["y"], name="rg")], inits=args)
    with pytest.raises(GraphError, match=r"node 'rg' \(Range\): its count of elements .* exceeds int64's range: "
                                         "onnxruntime refuses to run it"):
        import_onnx(model)


def _i64(name, values):
    return nh.from_array(np.array(values, np.int64), name)


X75 = {"x": np.arange(35, dtype=np.float32).reshape(7, 5)}


@pytest.mark.parametrize("start, end, step, dtype", [
    (0, 2**63 - 1, -1, np.int64),      # onnxruntime: row 0 (20 bytes); ONNX: empty
    (4, 2**63 - 1, -1, np.int64),      # rows 4..0
    (5, 2**31 - 1, -3, np.int32),      # rows 5, 2
    (-1, 2**31 - 1, -2, np.int64),     # rows 6, 4, 2, 0
], ids=["int64-from-0", "int64-from-4", "int32-step-3", "from-last"])
def test_a_slice_to_int_max_with_a_negative_step_is_planned_as_onnxruntime_runs_it(start, end, step, dtype):
    inits = [nh.from_array(np.array([v], dtype), k) for k, v in (("st", start), ("en", end), ("ax", 0), ("stp", step))]
    model = _model([helper.make_node("Slice", ["x", "st", "en", "ax", "stp"], ["r"]),
                    helper.make_node("Relu", ["r"], ["y"])], [V("x", T.FLOAT, [7, 5])], inits)
    assert _same_as_ort(model, X75) == 2


def test_a_slice_to_int_max_of_folded_ends_and_a_declared_shape():
    """The ends a Concat of constants (folded by the importer); a Constant's ends with ONNX's shape declared."""
    model = _model([helper.make_node("Concat", ["e1", "e2"], ["en"], axis=0),
                    helper.make_node("Slice", ["x", "st", "en", "ax", "stp"], ["r"]),
                    helper.make_node("Relu", ["r"], ["y"])], [V("x", T.FLOAT, [7, 5])],
                   [_i64("e1", [2**63 - 1]), _i64("e2", [2**31 - 1]), _i64("st", [4, 3]), _i64("ax", [0, 1]),
                    _i64("stp", [-1, -2])])
    assert _same_as_ort(model, X75) == 3
    model = _model([helper.make_node("Constant", [], ["en"], value=_i64("en", [2**63 - 1])),
                    helper.make_node("Slice", ["x", "st", "en", "ax", "stp"], ["r"]),
                    helper.make_node("Relu", ["r"], ["y"])], [V("x", T.FLOAT, [7, 5])],
                   [_i64("st", [4]), _i64("ax", [0]), _i64("stp", [-1])])
    model.graph.value_info.append(V("r", T.FLOAT, [0, 5]))   # (ONNX's count, as an exporter declares it)
    assert _same_as_ort(model, X75) == 3   # (the Constant's output too: a weight of its 8 bytes)


def test_a_reversed_slice_of_a_shape_to_int_max_sizes_what_follows():
    """``Shape(x)[1::-1]`` of a [2, 3, 4] is [3, 2]: the Expand of a scalar to it makes 6 floats."""
    model = _model([helper.make_node("Shape", ["x"], ["sh"]),
                    helper.make_node("Slice", ["sh", "st", "en", "ax", "stp"], ["r"]),
                    helper.make_node("Expand", ["one", "r"], ["y"])], [V("x", T.FLOAT, [2, 3, 4])],
                   [_i64("st", [1]), _i64("en", [2**63 - 1]), _i64("ax", [0]), _i64("stp", [-1]),
                    nh.from_array(np.array(1.0, np.float32), "one")])
    assert _same_as_ort(model, {"x": np.zeros((2, 3, 4), np.float32)}) == 3


# --- 3. NonZero and Unique of constants ---------------------------------------------------------------------------

@pytest.mark.parametrize("end", [2**63 - 1, -100])
def test_a_reversed_slice_of_a_shape_from_before_its_start_sizes_what_follows(end):
    """``Shape(x)[-9::-2]`` of a [2, 3, 4]: onnxruntime clamps the start to index 0 (``[2]``, 2 floats after the
    ConstantOfShape); onnx's evaluator (numpy) made it empty, which disagreed with inference, and the
    ConstantOfShape was refused as a dimension ONNX "could not derive" (under opset 11)."""
    model = _model([helper.make_node("Shape", ["x"], ["sh"]),
                    helper.make_node("Slice", ["sh", "st", "en", "ax", "stp"], ["r"]),
                    helper.make_node("ConstantOfShape", ["r"], ["y"])], [V("x", T.FLOAT, [2, 3, 4])],
                   [_i64("st", [-9]), _i64("en", [end]), _i64("ax", [0]), _i64("stp", [-2])],
                   opset=11)   # (ONNX's data propagation runs a Slice of a shape from opset 13 on)
    assert _same_as_ort(model, {"x": np.zeros((2, 3, 4), np.float32)}) == 3


def _of_constant(op, value, outs=("y",), **attrs):
    nodes = [helper.make_node(op, ["c"], [f"{op}_{o}" for o in outs], **attrs)]
    nodes += [helper.make_node("Identity", [f"{op}_{o}"], [o]) for o in outs]
    return _model(nodes, inits=[nh.from_array(np.asarray(value), "c")], outs=outs)


@pytest.mark.parametrize("value", [np.array([[1, 0], [0, 3]], np.int64), np.zeros((2, 0), np.float32),
                                   np.arange(100).reshape(10, 10) % 3 == 0], ids=["int64", "empty", "bool-100"])
def test_a_nonzero_of_a_constant_is_planned(value):
    assert _same_as_ort(_of_constant("NonZero", value)) == 2


UNIQUE_OUTS = ("y", "indices", "inverse", "counts")


@pytest.mark.parametrize("value, axis", [
    (np.array([0.0, -0.0, 1.0], np.float32), None),        # (-0.0 is 0.0: 2 distinct)
    (np.arange(200, dtype=np.int64) % 7, None),
    (np.array([[1, 2], [1, 2], [3, 4]], np.int64), 0),
    (np.array([[1, 2], [1, 2], [3, 4]], np.int64), -1),
    (np.zeros((0, 3), np.float32), 1),                       # (three empty columns are one distinct slice)
    (np.zeros((0, 3), np.float32), 0),                       # (no slice along the axis: numpy's reshape(0, -1) raised)
    (np.zeros((0, 0, 4), np.int64), 1),
], ids=["signed-zero", "200-entries", "rows", "columns", "empty-columns", "no-rows", "no-slices"])
def test_a_unique_of_a_constant_is_planned(value, axis):
    attrs = {} if axis is None else {"axis": axis}
    assert _same_as_ort(_of_constant("Unique", value, UNIQUE_OUTS, sorted=0, **attrs)) == 8


def test_a_unique_of_a_shape_sizes_what_follows():
    """``Unique(Shape(x))`` of a [2, 3, 2] is [2, 3]: the ConstantOfShape to it makes 6 floats."""
    model = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Unique", ["s"], ["u"]),
                    helper.make_node("ConstantOfShape", ["u"], ["y"])], [V("x", T.FLOAT, [2, 3, 2])])
    assert _same_as_ort(model, {"x": np.zeros((2, 3, 2), np.float32)}) == 3


@pytest.mark.parametrize("value, attrs, out", [
    (np.array([5, 1, 5, 3], np.int64), {"sorted": 0}, 0),                  # (first occurrence: 5, not 1)
    (np.array([[4, 1, 4], [2, 9, 2]], np.int64), {"sorted": 0, "axis": 1}, 0),   # (columns, not rows)
    (np.array([5, 1, 5, 3], np.int64), {"sorted": 0}, 3),                  # (counts in that order: 2, 1, 1)
], ids=["values", "along-axis-1", "counts"])
def test_a_folded_unsorted_unique_sizes_what_follows_as_onnxruntime_orders_it(value, attrs, out):
    """A ConstantOfShape to the first entry of a Unique's output of a constant: onnx's evaluator sorted a one-output
    Unique of ``sorted=0`` (planned 4 bytes, onnxruntime wrote 20) and took its slices along axis 0 whatever the
    axis."""
    outs = ["Y", "", "", ""][: out + 1]
    outs[out] = "u"
    axis = attrs.get("axis", 0)   # (the first entry of a 1-D output, the first column of a 2-D one)
    z = np.array([0] if axis == 0 else 0, np.int64)
    model = _model([helper.make_node("Unique", ["c"], outs, **attrs),
                    helper.make_node("Gather", ["u", "z"], ["g"], axis=axis),
                    helper.make_node("ConstantOfShape", ["g"], ["y"])],
                   inits=[nh.from_array(value, "c"), nh.from_array(z, "z")])
    assert _same_as_ort(model) >= 3


def test_nonzero_and_unique_of_what_onnxruntime_counts_otherwise_or_of_an_input_are_refused():
    """A Unique of a NaN (onnxruntime's ordering merges NaNs: [1, nan, nan, 2, 1] makes 2 values, numpy's 3), a
    scalar NonZero (onnxruntime makes [1, n], ONNX's inference [0, n]), a NonZero of a graph input, one of an
    initializer past the 4,096 entries read; a declared shape is not planned (the constant's count is)."""
    with pytest.raises(GraphError, match=r"node 'Unique_0' \(Unique\): value 'Unique_y' has no size: .*'c' holds NaN"):
        import_onnx(_of_constant("Unique", np.array([1, np.nan, np.nan, 2, 1], np.float32)))
    with pytest.raises(GraphError, match=r"node 'NonZero_0' \(NonZero\): value 'NonZero_y' has no size: .*the scalar 'c'"):
        import_onnx(_of_constant("NonZero", np.array(3.0, np.float32)))
    with pytest.raises(GraphError, match="'y' dimension 1 is unknown after shape inference: it depends on values "
                                         "computed at run time"):
        import_onnx(_model([helper.make_node("NonZero", ["x"], ["y"])], [V("x", T.FLOAT, [2, 3])]))
    model = _model([helper.make_node("NonZero", ["c"], ["y"], name="nz")],
                   inits=[nh.from_array(np.array([[1, 0], [0, 3]], np.int64), "c")])
    model.graph.output[0].CopyFrom(V("y", T.INT64, [2, 1]))   # (a traced example's count: not what is planned)
    assert {t.id: t.size for t in import_onnx(model).tensors}["y"] == 32 == ort_sizes(model, {}, strict=True)["y"]
    model = _model([helper.make_node("NonZero", ["c"], ["y"], name="nz")],
                   inits=[nh.from_array(np.ones(5000, np.float32), "c")])   # (past the 4,096 entries read)
    with pytest.raises(GraphError, match=r"node 'nz' \(NonZero\): value 'y' has no size: .*input 'c', and that "
                                         r"input is not a value the importer knows \(a large initializer"):
        import_onnx(model)


# --- 4. a local function's ai.onnx.ml opset ----------------------------------------------------------------------

@pytest.mark.parametrize("function_ml, model_ml", [(6, 5), (99, None)], ids=["6-under-5", "99-alone"])
def test_a_function_of_an_ml_opset_onnx_does_not_define_is_refused(function_ml, model_ml):
    body = [helper.make_node("Normalizer", ["a"], ["b"], domain="ai.onnx.ml", norm="MAX")]
    f = helper.make_function("loc", "F", ["a"], ["b"], body, [helper.make_opsetid("", 21),
                                                              helper.make_opsetid("ai.onnx.ml", function_ml)])
    g = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="loc")], "g", [V("x", T.FLOAT, [2, 3])],
                          [helper.ValueInfoProto(name="y")])
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("loc", 1)]
    opsets += [helper.make_opsetid("ai.onnx.ml", model_ml)] if model_ml else []
    model = helper.make_model(g, opset_imports=opsets, functions=[f], ir_version=10)
    with pytest.raises(GraphError, match=rf"local function loc:F imports domain 'ai.onnx.ml' at opset {function_ml}, "
                                         r"and its node 'Normalizer' \(ai.onnx.ml:Normalizer\) is of it"):
        import_onnx(model)


# --- 5. a negative dimension reaching a Slice (onnx's inference aborted the process) ------------------------------

def _sliced(nodes, inputs, inits=()):
    last = nodes[-1].output[0]
    inits = [*inits, _i64("st", [0]), _i64("en", [1]), _i64("ax", [-1]), _i64("sp", [-1])]
    return _model([*nodes, helper.make_node("Slice", [last, "st", "en", "ax", "sp"], ["y"])], inputs, inits)


def test_a_declared_negative_dimension_sliced_is_refused_before_inference():
    model = _sliced([helper.make_node("Relu", ["x"], ["v"])], [V("x", T.FLOAT, [2, -1])])
    # (round 51: a graph input's negative dimension is one of any length, as onnxruntime takes it: refused as unknown)
    with pytest.raises(GraphError, match=r"graph input 'x' dimension 1 is unknown: the model must give it"):
        import_onnx(model)
    model = _sliced([helper.make_node("Relu", ["x"], ["v"])], [V("x", T.FLOAT, [2, 3])])
    model.graph.value_info.append(V("v", T.FLOAT, [2, -1]))   # (dropped, as onnxruntime drops it: v is [2, 3])
    assert import_onnx(model).tensor("y").attrs["shape"] == [2, 0]   # (steps -1 from 0 to 1: empty)


@pytest.mark.parametrize("nodes, shape, inits, named", [
    ([helper.make_node("Pad", ["x", "p"], ["v"])], [2, 3], [_i64("p", [0, -2, 0, -2])], r"node 'Pad_0' \(Pad\)"),
    ([helper.make_node("Pad", ["x", "p"], ["t"]), helper.make_node("Transpose", ["t"], ["v"], perm=[1, 0])], [2, 3],
     [_i64("p", [0, -2, 0, -2])], r"node 'Pad_0' \(Pad\): value 't' dimension 1"),   # (where it starts)
    ([helper.make_node("Conv", ["x", "w"], ["v"])], [1, 1, 2, 2],
     [nh.from_array(np.ones((1, 1, 5, 5), np.float32), "w")], r"node 'Conv_0' \(Conv\)"),
    ([helper.make_node("MaxPool", ["x"], ["v"], kernel_shape=[5, 5])], [1, 1, 2, 2], [], r"node 'MaxPool_0'"),
], ids=["pad", "pad-transposed", "conv", "maxpool"])
def test_a_negative_dimension_made_and_sliced_is_refused(nodes, shape, inits, named):
    with pytest.raises(GraphError, match=named + r".*is negative \(-\d+\), which no tensor has"):
        import_onnx(_sliced(nodes, [V("x", T.FLOAT, shape)], inits))


def test_a_negative_dimension_known_only_after_a_fold_and_sliced_is_refused():
    """The pads a Concat of constants: ONNX's first inference leaves the Pad unsized, the fold makes it [2, -1]."""
    model = _sliced([helper.make_node("Concat", ["p1", "p2"], ["p"], axis=0),
                     helper.make_node("Pad", ["x", "p"], ["v"])], [V("x", T.FLOAT, [2, 3])],
                    [_i64("p1", [0, -2]), _i64("p2", [0, -2])])
    with pytest.raises(GraphError, match=r"node 'Pad_1' \(Pad\): value 'v' dimension 1 is negative \(-1\)"):
        import_onnx(model)


def test_a_declared_nonzero_shape_of_a_shape_made_input_is_not_planned():
    """``NonZero(ConstantOfShape(Shape(x)))`` declared [2, 6] (traced at n=2): onnxruntime counts 15 at n=5; at
    n=3000 the input (9,000 entries) is past what the importer evaluates, and it is refused, not planned at [2, 6]."""
    model = _model([helper.make_node("Shape", ["x"], ["s"]),
                    helper.make_node("ConstantOfShape", ["s"], ["c"], value=nh.from_array(np.array([1], np.int64))),
                    helper.make_node("NonZero", ["c"], ["y"])], [V("x", T.FLOAT, ["n", 3])])
    model.graph.output[0].CopyFrom(V("y", T.INT64, [2, 6]))
    sizes = {t.id: t.size for t in import_onnx(model, dims={"n": 5}).tensors}
    assert sizes["y"] == 240 == ort_sizes(model, {"x": np.zeros((5, 3), np.float32)}, strict=True)["y"]
    with pytest.raises(GraphError, match=r"value 'y' has no size: NonZero makes one entry per non-zero entry of its "
                                         r"input 'c', and that input is not a value the importer knows"):
        import_onnx(model, dims={"n": 3000})


# --- 6. a sparse initializer's external data ---------------------------------------------------------------------

def _sparse_external_model(folder):
    """``[0, -1]`` stored as the one value -1 at index 1, its values in ``w.bin``; saved as ``m.onnx``."""
    import os

    from onnx.external_data_helper import set_external_data

    st = helper.make_sparse_tensor(nh.from_array(np.array([-1], np.int64), "shape"),
                                   nh.from_array(np.array([1], np.int64), "shape_idx"), [2])
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])],
                          "g", [V("x", T.FLOAT, [4, 3])], [helper.ValueInfoProto(name="y")])
    g.sparse_initializer.append(st)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    values = model.graph.sparse_initializer[0].values
    values.ClearField("int64_data")
    set_external_data(values, "w.bin", 0, 8)
    values.data_location = T.EXTERNAL
    with open(os.path.join(folder, "w.bin"), "wb") as f:
        f.write(np.array([-1], np.int64).tobytes())
    onnx.save(model, os.path.join(folder, "m.onnx"))
    return os.path.join(folder, "m.onnx")


def test_a_sparse_initializer_of_external_data_as_a_reshape_shape_is_read(tmp_path):
    path = _sparse_external_model(str(tmp_path))
    sizes = {t.id: t.size for t in import_onnx(path).tensors}
    assert sizes["r"] == sizes["y"] == 48   # ([4, 3] reshaped to [4, 3]: 0 copies, -1 takes the rest)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(GraphError, match=r"held in external data: sparse initializer 'shape', not read \(its data "
                                         r"file 'w.bin' is not a file in the model's folder\)"):
        import_onnx(path)
