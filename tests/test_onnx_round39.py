"""ONNX importer, round 39: empty names among a variadic parameter's; ``com.microsoft:Range`` of constants.

A ``Split`` whose outputs are ``["a", "", "c"]`` was imported and planned (the unnamed piece left out), while
onnxruntime 1.32 dies on the model (a segmentation fault): ONNX's IR lets an empty name stand only for an
omitted *optional* input or output, and a variadic parameter (Split's outputs, Concat's or Sum's inputs) has
none to omit. Such a node is now refused, naming it, the place and the parameter.

``com.microsoft:Range`` was refused ("value 'y' has no type or shape") where its inputs are constants but it
has no ``delta`` (onnxruntime's inference reads all three inputs or sizes nothing) or is of floats; and the
standard Range of int16 constants was refused as unsized (onnx's inference computes no int16 length). Both are
now planned at the length onnxruntime's kernel makes (one kernel for the two ops); a Range of run-time values
is still refused as data-dependent.
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

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
F = T.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset: int = 18, value_info=(), ms: bool = False):
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


# -- 1. empty names among variadic inputs / outputs --------------------------------------------------------


@pytest.mark.parametrize("outs", [["a", "", "c"], ["", "b", "c"], ["a", "b", ""]])
def test_split_with_an_empty_output_name_is_refused_naming_the_node(outs):
    """Planned before (the pieces sized as if all three were there), though onnxruntime crashes on it: the
    spec's empty name is for optional outputs, and Split's are variadic."""
    split = helper.make_node("Split", ["x"], outs, axis=0, num_outputs=3, name="cut")
    model = _model([split], [V("x", F, [6, 4])], [V(o, F, [2, 4]) for o in outs if o])
    onnx.checker.check_model(model)   # (onnx's checker lets it through)
    k = outs.index("")
    with pytest.raises(GraphError, match=rf"node 'cut' \(Split\): output #{k} is empty.*variadic outputs "
                                         r"'outputs' of Split-18"):
        import_onnx(model)


def test_split_of_given_sizes_with_an_empty_output_is_refused():
    sizes = nh.from_array(np.array([1, 2, 3], np.int64), "s")
    split = helper.make_node("Split", ["x", "s"], ["a", "", "c"], axis=0)
    model = _model([split], [V("x", F, [6, 4])], [V("a", F, [1, 4]), V("c", F, [3, 4])], [sizes], opset=13)
    with pytest.raises(GraphError, match=r"Split_0.*output #1 is empty.*Split-13"):
        import_onnx(model)


@pytest.mark.parametrize("op", ["Concat", "Sum", "Max"])
def test_an_empty_variadic_input_is_refused_as_such(op):
    """Refused before only by the inference failure it caused ("has no shape"), which named no empty input."""
    attrs = {"axis": 0} if op == "Concat" else {}
    node = helper.make_node(op, ["a", "", "b"], ["y"], **attrs)
    model = _model([node], [V("a", F, [4, 2]), V("b", F, [4, 2])], [V("y", F, None)])
    with pytest.raises(GraphError, match=rf"{op}_0.*input #1 is empty, but it is one of the variadic inputs"):
        import_onnx(model)


def test_a_split_with_every_output_named_still_plans():
    split = helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)
    model = _model([split], [V("x", F, [6, 4])], [V(o, F, None) for o in "abc"])
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, {"x": np.ones((6, 4), np.float32)}, strict=True))
    assert compared == 3 and not bad, bad


def test_omitted_optional_outputs_are_still_taken():
    """An empty name in an optional place (Dropout's mask, LayerNormalization's mean) is what ONNX means it for."""
    nodes = [helper.make_node("Dropout", ["x"], ["d", ""]),
             helper.make_node("LayerNormalization", ["d", "w"], ["y", "", "istd"], axis=-1)]
    w = nh.from_array(np.ones(4, np.float32), "w")
    model = _model(nodes, [V("x", F, [3, 4])], [V("y", F, None), V("istd", F, None)], [w])
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, {"x": np.ones((3, 4), np.float32)}, strict=True))
    assert compared >= 3 and not bad, bad


# -- 2. com.microsoft:Range of constants ---------------------------------------------------------------


def _ms_range(values, dtype, how: str, declared=None):
    """A ``com.microsoft:Range`` of ``values`` (start, limit[, delta]) given as initializers or Constants."""
    names = ["s", "l", "d"][:len(values)]
    tensors = [nh.from_array(np.array(v, dtype), k) for k, v in zip(names, values)]
    nodes = [] if how == "init" else [helper.make_node("Constant", [], [t.name], value=t) for t in tensors]
    nodes += [helper.make_node("Range", names, ["y"], domain="com.microsoft"), helper.make_node("Identity", ["y"], ["z"])]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    vi = [V("y", elem, declared)] if declared is not None else []
    return _model(nodes, [], [V("z", elem, None)], tensors if how == "init" else (), opset=17, value_info=vi, ms=True)


@pytest.mark.parametrize("how", ["init", "const"])
@pytest.mark.parametrize(("values", "dtype"), [
    ([0, 9], np.int64),               # no delta: 1
    ([5, 0], np.int64),               # empty
    ([0.3, 5.3, 0.2], np.float32),    # 26 elements where float32 subtraction would give 25
    ([0.0, 1.0, 0.1], np.float64),
    ([2.5, -1.0], np.float32),
    ([0, 7, 2], np.int16),
    ([10, 0, -3], np.int32),
])
def test_ort_range_of_constants_is_planned_at_what_onnxruntime_writes(values, dtype, how):
    model = _ms_range(values, dtype, how)
    g = import_onnx(model)
    real = ort_sizes(model, {}, strict=True)
    compared, bad = size_mismatches(g, real)
    assert compared >= 2 and not bad, bad
    assert {t.id: t.size for t in g.tensors}["y"] == real["y"]
    memplan.verify(g, memplan.plan(g))


def test_ort_range_of_a_shape_computed_start_and_limit_without_delta():
    """Neither input's type is known before inference: the omitted delta takes the start's (CastLike)."""
    nodes = [helper.make_node("Shape", ["x"], ["sx"]), helper.make_node("Gather", ["sx", "one"], ["n"], axis=0),
             helper.make_node("Sub", ["n", "n"], ["s0"]),
             helper.make_node("Range", ["s0", "n"], ["y"], domain="com.microsoft"),
             helper.make_node("Identity", ["y"], ["z"])]
    model = _model(nodes, [V("x", F, [2, 7])], [V("z", T.INT64, None)],
                   [nh.from_array(np.array(1, np.int64), "one")], opset=17, ms=True)
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, {"x": np.ones((2, 7), np.float32)}, strict=True))
    assert compared >= 4 and not bad, bad
    assert {t.id: t.size for t in g.tensors}["y"] == 7 * 8


def test_ort_range_of_constants_declared_otherwise_is_planned_at_what_onnxruntime_writes():
    """(Refused until round 49: onnxruntime merges the contradicted declaration leniently and writes 9 elements.)"""
    model = _ms_range([0, 9], np.int64, "init", declared=[4])
    compared, bad = size_mismatches(import_onnx(model), ort_sizes(model, {}, strict=True))
    assert compared and not bad


def test_ort_range_without_delta_of_a_run_time_limit_stays_refused():
    nodes = [helper.make_node("Range", ["zero", "b"], ["y"], domain="com.microsoft"),
             helper.make_node("Identity", ["y"], ["z"])]
    model = _model(nodes, [V("b", T.INT64, [])], [V("z", T.INT64, None)],
                   [nh.from_array(np.array(0, np.int64), "zero")], opset=17, value_info=[V("y", T.INT64, [4])],
                   ms=True)
    assert ort_sizes(model, {"b": np.array(9, np.int64)}, strict=True)["y"] == 72   # declared 32
    with pytest.raises(GraphError, match=r"Range_0.*'y'.*run time"):
        import_onnx(model)


@pytest.mark.parametrize("how", ["init", "const"])
def test_standard_int16_range_of_constants_is_planned(how):
    """onnx's inference gives an int16 Range no length; it was refused as unsized."""
    tensors = [nh.from_array(np.array(v, np.int16), k) for k, v in zip("sld", [-3, 20, 4])]
    nodes = [] if how == "init" else [helper.make_node("Constant", [], [t.name], value=t) for t in tensors]
    nodes += [helper.make_node("Range", ["s", "l", "d"], ["y"]), helper.make_node("Identity", ["y"], ["z"])]
    model = _model(nodes, [], [V("z", T.INT16, None)], tensors if how == "init" else (), opset=17)
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, {}, strict=True))
    assert compared >= 2 and not bad, bad
    assert {t.id: t.size for t in g.tensors}["y"] == 6 * 2
