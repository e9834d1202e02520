"""ONNX importer, round 31: initializers the caller may override (IR 4 and later lists them as graph inputs with a
default) no longer size what follows by their default value, and local functions' default attribute values
(``FunctionProto.attribute_proto``) are given to calls that omit them (onnx's inliner dropped the attribute, and
the body op's own default sized it). Every size asserted is what onnxruntime 1.32's
CPU provider writes for the same model (``tests/onnx_oracle.py``), where the test says so."""

from __future__ import annotations

import re

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _sizes(graph) -> dict[str, int]:
    return {t.id: t.size for t in graph.tensors}


# -- an initializer that is also a graph input sizes nothing by its default ---------------------------------------

def _expand_to_input(ir_version: int, listed: bool = True):
    """``y = Expand(x[2, 3, 4], s)`` with ``s`` an initializer ``[1, 2, 3, 4]``, listed as a graph input (an
    overridable default from IR 4) where ``listed``."""
    s = numpy_helper.from_array(np.array([1, 2, 3, 4], np.int64), "s")
    inputs = [V("x", T.FLOAT, [2, 3, 4])] + ([V("s", T.INT64, [4])] if listed else [])
    g = helper.make_graph([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")], "g", inputs,
                          [V("y", T.FLOAT, None)], [s])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


def test_an_overridable_initializer_that_sizes_an_output_is_refused_naming_it():
    # was: planned 'y' at the default's [1, 2, 3, 4] (96 bytes); fed s = [5, 2, 3, 4], onnxruntime writes 480
    with pytest.raises(GraphError, match=r"node 'ex' \(Expand\): value 'y' dimension 0 is unknown .*run time.*"
                                         r"graph input 's', whose initializer is only a default the caller may override"):
        import_onnx(_expand_to_input(8))


def test_onnxruntime_writes_what_the_caller_feeds_not_the_default():
    """Why the refusal is right: onnxruntime runs the node with the value fed in place of the initializer."""
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = np.ones((2, 3, 4), np.float32)
    model = _expand_to_input(8)
    assert ort_sizes(model, {"x": x}, strict=True)["y"] == 96
    assert ort_sizes(model, {"x": x, "s": np.array([5, 2, 3, 4], np.int64)}, strict=True)["y"] == 480


def test_an_initializer_that_is_no_overridable_input_still_sizes_its_output():
    # IR 3 lists every initializer as a graph input, a constant; from IR 4 one not listed is a constant too
    for model in (_expand_to_input(3), _expand_to_input(8, listed=False)):
        assert _sizes(import_onnx(model))["y"] == 96


def test_an_overridable_weight_that_sizes_nothing_is_still_planned():
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [V("x", T.FLOAT, [2, 3, 4]), V("w", T.FLOAT, [4])], [V("y", T.FLOAT, None)], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sizes = _sizes(import_onnx(model))
    assert (sizes["w"], sizes["y"]) == (16, 96)


# -- a local function's default attribute values ------------------------------------------------------------------

def _gather_function_call(**call_attrs):
    """``y = F(x[3, 2])``, F's body ``Gather(x, [0, 1, 0, 1])`` whose ``axis`` refers to F's attribute ``ax``
    (default 1: ``[3, 4]``, 48 bytes; ``ax=0``: ``[4, 2]``, 32)."""
    idx = helper.make_node("Constant", [], ["i"], value=numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64)))
    gather = helper.make_node("Gather", ["x", "i"], ["y"])
    gather.attribute.append(onnx.AttributeProto(name="axis", ref_attr_name="ax", type=onnx.AttributeProto.INT))
    f = helper.make_function("local", "F", ["x"], ["y"], [idx, gather], [helper.make_opsetid("", 21)])
    f.attribute_proto.append(helper.make_attribute("ax", 1))
    g = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="local", name="call", **call_attrs)], "g",
                          [V("x", T.FLOAT, [3, 2])], [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("local", 1)],
                             ir_version=10, functions=[f])


def test_a_local_function_call_omitting_a_defaulted_attribute_takes_the_default():
    # was: onnx's inliner dropped the body's axis, so Gather's own default (0) sized it: [4, 2], 32 bytes planned
    # where onnxruntime writes [3, 4], 48 (a Concat's axis so dropped was refused as "Required attribute axis")
    model = _gather_function_call()
    assert _sizes(import_onnx(model))["y"] == 48
    assert _sizes(import_onnx(_gather_function_call(ax=0)))["y"] == 32   # [4, 2]: the call's own value
    assert not any(a.name == "ax" for a in model.graph.node[0].attribute)   # (the caller's model is not modified)


def test_the_default_is_what_onnxruntime_runs_with():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((3, 2), np.float32)}
    assert ort_sizes(_gather_function_call(), x, strict=True)["y"] == 48
    assert ort_sizes(_gather_function_call(ax=0), x, strict=True)["y"] == 32


def _nested_calls(outer_call_attrs: dict, other_use: str | None = None):
    """``y = Out(x[3, 2])``: Out's body calls the Gather function F (``ax`` defaulting to 1) passing on its own
    attribute ``oax`` (no default) as ``ax``; ``other_use``: a second body node using ``oax`` (``"op"``: a Gather
    of its own, whose axis defaults to 0)."""
    inner = _gather_function_call().functions[0]
    call = helper.make_node("F", ["x"], ["y"], domain="local")
    call.attribute.append(onnx.AttributeProto(name="ax", ref_attr_name="oax", type=onnx.AttributeProto.INT))
    body = [call]
    if other_use == "op":
        idx = helper.make_node("Constant", [], ["j"], value=numpy_helper.from_array(np.array([0, 1], np.int64)))
        gather = helper.make_node("Gather", ["x", "j"], ["z"])
        gather.attribute.append(onnx.AttributeProto(name="axis", ref_attr_name="oax", type=onnx.AttributeProto.INT))
        body += [idx, gather]
    outer = helper.make_function("local", "Out", ["x"], ["y"] + (["z"] if other_use else []), body,
                                 [helper.make_opsetid("", 21), helper.make_opsetid("local", 1)], attributes=["oax"])
    outs = ["y"] + (["z"] if other_use else [])
    g = helper.make_graph([helper.make_node("Out", ["x"], outs, domain="local", name="top", **outer_call_attrs)], "g",
                          [V("x", T.FLOAT, [3, 2])], [V(o, T.FLOAT, None) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("local", 1)],
                             ir_version=10, functions=[outer, inner])


def test_an_attribute_passed_on_to_a_defaulting_callee_takes_its_default_where_omitted():
    # was: the inliner dropped ``ax`` (``oax`` omitted), so Gather's own axis 0 sized y: 32 bytes, onnxruntime 48
    assert _sizes(import_onnx(_nested_calls({})))["y"] == 48
    assert _sizes(import_onnx(_nested_calls({"oax": 0})))["y"] == 32


def test_an_omitted_attribute_whose_uses_default_differently_is_refused_naming_the_call():
    with pytest.raises(GraphError, match=r"node 'top' calls local function local:Out without its attribute 'oax'"):
        import_onnx(_nested_calls({}, other_use="op"))
    sizes = _sizes(import_onnx(_nested_calls({"oax": 1}, other_use="op")))
    assert (sizes["y"], sizes["z"]) == (48, 24)


def test_nested_defaults_are_what_onnxruntime_runs_with():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((3, 2), np.float32)}
    assert ort_sizes(_nested_calls({}), x, strict=True)["y"] == 48
    assert ort_sizes(_nested_calls({"oax": 0}), x, strict=True)["y"] == 32
    # (the refused one: onnxruntime runs F at its default 1 and the body's Gather at its own 0)
    real = ort_sizes(_nested_calls({}, other_use="op"), x, strict=True)
    assert (real["y"], real["z"]) == (48, 16)


# -- a declared shape the spec's rule contradicts, where ONNX's inference is silent ---------------------------------

def _f32(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.float32), name)


def _i64(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _declared(case: str, declared):
    """``y = Neg(a)`` with ``a`` made by ``case``'s op from ``x[2, 3, 8, 8]`` and declared ``declared`` in
    value_info (None: not declared), where ONNX's inference leaves ``a`` to the declaration."""
    make = {   # case -> (nodes making "a", initializers, opset)
        "groupnorm": ([helper.make_node("GroupNormalization", ["x", "s", "b"], ["a"], name="op", num_groups=3)],
                      [_f32("s", [1, 1, 1]), _f32("b", [0, 0, 0])], 21),
        "maxunpool": ([helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
                       helper.make_node("MaxUnpool", ["p", "i", "os"], ["a"], name="op", kernel_shape=[2, 2],
                                        strides=[2, 2])], [_i64("os", [2, 3, 9, 9])], 17),
        "sequence_at": ([helper.make_node("SplitToSequence", ["x", "sp"], ["q"], axis=3),
                         helper.make_node("SequenceAt", ["q", "pos"], ["a"], name="op")],
                        [_i64("sp", [1, 7]), _i64("pos", 1)], 17),
        "concat_from_sequence": ([helper.make_node("SplitToSequence", ["x", "sp"], ["q"], axis=3),
                                  helper.make_node("ConcatFromSequence", ["q"], ["a"], name="op", axis=0)],
                                 [_i64("sp", [4, 4])], 17),
        "concat4": ([helper.make_node("Slice", ["x"], ["l"], axes=[-1], starts=[-3], ends=[1 << 62]),
                     helper.make_node("Slice", ["x"], ["r"], axes=[-1], starts=[0], ends=[-3]),
                     helper.make_node("Concat", ["l", "r"], ["a"], name="op", axis=-1)], [], 9),
    }
    nodes, inits, opset = make[case]
    vi = [V("a", T.FLOAT, declared)] if declared is not None else []
    g = helper.make_graph(nodes + [helper.make_node("Neg", ["a"], ["y"])], "g", [V("x", T.FLOAT, [2, 3, 8, 8])],
                          [V("y", T.FLOAT, None)], inits, value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


#: case -> (a declaration smaller than what onnxruntime writes, the bytes of ``a`` onnxruntime writes)
DECLARED = {"groupnorm": ([2, 3, 8, 1], 1536), "maxunpool": ([2, 3, 8, 8], 1944),
            "sequence_at": ([2, 3, 8, 1], 1344), "concat_from_sequence": ([2, 3, 8, 4], 1536),
            "concat4": ([2, 3, 8, 4], 1536)}


@pytest.mark.parametrize("case", sorted(DECLARED))
def test_a_declaration_the_ops_rule_contradicts_is_refused_naming_the_node(case):
    # was: planned at the declaration (groupnorm: 192 bytes where onnxruntime writes 1,536)
    small, real = DECLARED[case]
    with pytest.raises(GraphError, match=rf"node 'op' \(\w+\): value 'a' is declared {re.escape(str(small))} in the "
                                         "model, but "):
        import_onnx(_declared(case, small))


@pytest.mark.parametrize("case", sorted(DECLARED))
def test_a_declaration_the_ops_rule_agrees_with_is_planned(case):
    real = DECLARED[case][1]
    right = [2, 3, 8, 8] if case != "maxunpool" else [2, 3, 9, 9]
    right = [4, 3, 8, 4] if case == "concat_from_sequence" else [2, 3, 8, 7] if case == "sequence_at" else right
    for declared in (right, None):
        sizes = _sizes(import_onnx(_declared(case, declared)))
        assert (sizes["a"], sizes["y"]) == (real, real)


@pytest.mark.parametrize("case", sorted(DECLARED))
def test_the_sizes_are_what_onnxruntime_writes(case):
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)}
    assert ort_sizes(_declared(case, DECLARED[case][0]), x, strict=True)["a"] == DECLARED[case][1]


def test_a_concat4_of_a_negative_axis_after_a_symbolic_batch_is_sized():
    """torch.onnx at opsets 9-10 writes ``torch.roll`` (and split-then-cat, unfold) on dim -1 as Slice-1s and a
    Concat-4 of axis -1, declaring its output's batch by a name of its own: ONNX's inference of Concat-4 gives up
    on the negative axis, and the output was refused ("symbolic 'Concat3_dim_0': pass dims=..."), which
    onnxruntime runs."""
    model = _declared("concat4", None)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    out = model.graph.output[0]
    out.type.tensor_type.shape.dim.add().dim_param = "Concat3_dim_0"
    for d in (3, 8, 8):
        out.type.tensor_type.shape.dim.add().dim_value = d
    sizes = _sizes(import_onnx(model, dims={"batch": 2}))
    assert (sizes["a"], sizes["y"]) == (1536, 1536)


# -- Resize / Upsample by scales that onnxruntime's float32 arithmetic sizes otherwise -------------------------------

def _resize(scale: float, op: str = "Resize", opset: int = 13):
    """``y = op(x[1, 1, 10, 13], scales=[1, 1, scale, 2])`` (float32 scales; Resize-13 with an empty roi)."""
    sc = numpy_helper.from_array(np.array([1, 1, scale, 2], np.float32), "sc")
    ins = ["x", "", "sc"] if op == "Resize" else ["x", "sc"]
    g = helper.make_graph([helper.make_node(op, ins, ["y"], name="rs")], "g", [V("x", T.FLOAT, [1, 1, 10, 13])],
                          [V("y", T.FLOAT, None)], [sc])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


#: float32(1.7) - 1 ulp: 10 * it is 16.9999993 exactly (ONNX: 16), 17.0 in float32 (onnxruntime: 17)
JUST_BELOW = float(np.nextafter(np.float32(1.7), np.float32(0)))


@pytest.mark.parametrize("op,opset", [("Resize", 13), ("Resize", 19), ("Upsample", 9)])
def test_scales_whose_size_onnxruntime_rounds_otherwise_are_refused(op, opset):
    # was: planned [1, 1, 16, 26], 1,664 bytes, where onnxruntime writes [1, 1, 17, 26], 1,768
    with pytest.raises(GraphError, match=rf"node 'rs' \({op}\): dimension 2 of its output 'y' \(10 by scales "
                                         r"\[1\.0, 1\.0, 1\.69999\d*, 2\.0\]\) is 16 by ONNX's rule and 17 as "
                                         r"onnxruntime computes it .*'sizes'"):
        import_onnx(_resize(JUST_BELOW, op, opset))
    assert _sizes(import_onnx(_resize(1.5, op, opset)))["y"] == 15 * 26 * 4   # (where they agree: planned)


def test_onnxruntime_sizes_by_float32_products():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((1, 1, 10, 13), np.float32)}
    assert ort_sizes(_resize(JUST_BELOW), x, strict=True)["y"] == 17 * 26 * 4
    assert ort_sizes(_resize(1.5), x, strict=True)["y"] == 15 * 26 * 4


# -- float32 Range lengths as onnxruntime computes them -----------------------------------------------------------

def _range(limit: float, computed: bool = False, declared=None):
    """``y = Neg(Range(0.3, limit, 0.2))`` in float32; ``computed``: the limit computed from ``x``'s shape
    (``Cast(Shape(x)) * 0.1``, folded), ``x`` being ``[round(limit * 10)]``."""
    f = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    inits = [f("a", 0.3), f("d", 0.2)]
    n = int(round(limit * 10))
    if computed:
        nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["sf"], to=T.FLOAT),
                 helper.make_node("Mul", ["sf", "k"], ["l1"]), helper.make_node("Squeeze", ["l1"], ["b"])]
        inits.append(f("k", [0.1]))
    else:
        nodes = []
        inits.append(f("b", limit))
    nodes += [helper.make_node("Range", ["a", "b", "d"], ["r"], name="rg"), helper.make_node("Neg", ["r"], ["y"])]
    vi = [V("r", T.FLOAT, declared)] if declared else []
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [n])], [V("y", T.FLOAT, None)], inits, value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


#: limit -> the elements onnxruntime's Range(0.3, limit, 0.2) makes (ONNX's inference: 25 and 5,003)
RANGES = {5.3: 26, 1000.7: 5002}


@pytest.mark.parametrize("limit", sorted(RANGES))
@pytest.mark.parametrize("computed", [False, True])
def test_a_float32_range_is_sized_as_onnxruntime_computes_its_length(limit, computed):
    # was: 25 elements planned for 5.3 (ceil of a float32 difference, 4.9999995, over 0.2), onnxruntime makes 26;
    # 5,003 for 1000.7 (waste)
    sizes = _sizes(import_onnx(_range(limit, computed)))
    assert (sizes["r"], sizes["y"]) == (4 * RANGES[limit], 4 * RANGES[limit])


def test_a_range_declared_at_onnx_s_length_is_refused_naming_it():
    with pytest.raises(GraphError, match=r"node 'rg' \(Range\): value 'r' is declared \[25\] in the model, but "
                                         r"onnxruntime's Range makes it \[26\]"):
        import_onnx(_range(5.3, declared=[25]))
    assert _sizes(import_onnx(_range(5.3, declared=[26])))["r"] == 104


@pytest.mark.parametrize("limit", sorted(RANGES))
def test_onnxruntime_makes_those_lengths(limit):
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones(int(round(limit * 10)), np.float32)}
    for computed in (False, True):
        assert ort_sizes(_range(limit, computed), x, strict=True)["r"] == 4 * RANGES[limit]


def _resize_kept(sizes, policy: str = "not_larger"):
    """``y = Resize(x[1, 1, 20, 50], sizes=sizes, axes=[2, 3])`` keeping the aspect ratio (Resize-19)."""
    sz = numpy_helper.from_array(np.array(sizes, np.int64), "sz")
    g = helper.make_graph([helper.make_node("Resize", ["x", "", "", "sz"], ["y"], name="rs", axes=[2, 3],
                                            keep_aspect_ratio_policy=policy)], "g",
                          [V("x", T.FLOAT, [1, 1, 20, 50])], [V("y", T.FLOAT, None)], [sz])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=8)


def test_sizes_kept_in_aspect_ratio_that_onnxruntime_rounds_otherwise_are_refused():
    # was: 50 * (23 / 20) = 57.5 exactly 57.4999999 (ONNX: 57), 57.5 in float32 (onnxruntime rounds to 58):
    # [1, 1, 23, 57] planned, 5,244 bytes, where onnxruntime writes [1, 1, 23, 58], 5,336
    with pytest.raises(GraphError, match=r"node 'rs' \(Resize\): dimension 3 of its output 'y' \(50 by not_larger "
                                         r"sizes \[23, 79\]\) is 57 by ONNX's rule and 58 as onnxruntime computes it"):
        import_onnx(_resize_kept([23, 79]))
    assert _sizes(import_onnx(_resize_kept([10, 79])))["y"] == 10 * 25 * 4   # (scale 0.5: the two agree)
    assert _sizes(import_onnx(_resize_kept([23, 79], "stretch")))["y"] == 23 * 79 * 4


def test_onnxruntime_keeps_the_aspect_ratio_in_float32():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((1, 1, 20, 50), np.float32)}
    assert ort_sizes(_resize_kept([23, 79]), x, strict=True)["y"] == 23 * 58 * 4
    assert ort_sizes(_resize_kept([10, 79]), x, strict=True)["y"] == 10 * 25 * 4


# -- a sequence wrapped in an optional ----------------------------------------------------------------------------

def _optional_sequence():
    """``y = ConcatFromSequence(OptionalGetElement(Optional(SplitToSequence(x[6, 4], [1, 5]))), axis=0)``."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sp"], ["q"]), helper.make_node("Optional", ["q"], ["o"]),
             helper.make_node("OptionalGetElement", ["o"], ["g"]),
             helper.make_node("ConcatFromSequence", ["g"], ["y"], name="cat", axis=0)]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [6, 4])], [V("y", T.FLOAT, None)], [_i64("sp", [1, 5])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def test_a_sequence_through_an_optional_keeps_its_tensors():
    # was: refused, "value 'y' dimension 0 is unknown" (ONNX merges the pieces [1, 4] and [5, 4] into [?, 4])
    sizes = _sizes(import_onnx(_optional_sequence()))
    assert (sizes["q"], sizes["o"], sizes["g"], sizes["y"]) == (96, 96, 96, 96)


def test_onnxruntime_concatenates_the_optionals_sequence():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    assert ort_sizes(_optional_sequence(), {"x": np.ones((6, 4), np.float32)}, strict=True)["y"] == 96


# -- pooling windows onnxruntime does not make ----------------------------------------------------------------------

def _pool(op: str = "MaxPool", declared=None, opset: int = 17, **attrs):
    """``y = Relu(op(x[1, 3, 5, 5]))``, ``op``'s output ``p`` declared ``declared`` (as torch.onnx declares
    ONNX's count); default attributes (an attribute given None is left out): kernel 2, stride 2, pads 1,
    ``ceil_mode`` (PyTorch's ``MaxPool2d(2, 2, padding=1, ceil_mode=True)``)."""
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, **attrs}
    pool = helper.make_node(op, ["x"], ["p"], name="pool", **{k: v for k, v in attrs.items() if v is not None})
    vi = [V("p", T.FLOAT, declared)] if declared else []
    g = helper.make_graph([pool, helper.make_node("Relu", ["p"], ["y"])], "g", [V("x", T.FLOAT, [1, 3, 5, 5])],
                          [V("y", T.FLOAT, declared)], value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


POOLS = {   # case -> (attributes, opset, the bytes of p onnxruntime writes; ONNX's inference counted 4x4 windows)
    "maxpool_ceil": ({}, 17, 3 * 3 * 3 * 4),
    "averagepool_ceil": ({"op": "AveragePool"}, 17, 3 * 3 * 3 * 4),
    "lppool_ceil": ({"op": "LpPool"}, 18, 3 * 3 * 3 * 4),
    # SAME_UPPER of a kernel 3 dilated 2, stride 1: ONNX ceil(5 / 1) = 5 windows, onnxruntime pads for an undilated
    # kernel (2) and makes 5 + 2 - 4 - 1 + 1 = 3
    "same_dilated": ({"kernel_shape": [3, 3], "strides": [1, 1], "dilations": [2, 2], "auto_pad": "SAME_UPPER",
                      "ceil_mode": 0, "pads": None}, 17, 3 * 3 * 3 * 4),
}


def _pool_case(case: str, declared=None):
    attrs, opset, _ = POOLS[case]
    return _pool(attrs.get("op", "MaxPool"), declared, opset, **{k: v for k, v in attrs.items() if k != "op"})


@pytest.mark.parametrize("case", sorted(POOLS))
def test_pooling_is_sized_by_the_windows_onnxruntime_makes(case):
    # was: 4x4 windows planned (192 bytes for 'p' and 'y'; 5x5, 300, for same_dilated), onnxruntime writes 3x3 (108)
    real = POOLS[case][2]
    sizes = _sizes(import_onnx(_pool_case(case)))
    assert (sizes["p"], sizes["y"]) == (real, real)


def test_a_torch_export_declaring_onnx_s_count_is_sized_as_onnxruntime_runs_it():
    """torch.onnx declares the pooled output (and what follows) at ONNX's count, 4x4; onnxruntime writes PyTorch's
    3x3 and warns that the declaration is wrong: the declaration is not planned."""
    sizes = _sizes(import_onnx(_pool_case("maxpool_ceil", declared=[1, 3, 4, 4])))
    assert (sizes["p"], sizes["y"]) == (108, 108)


@pytest.mark.parametrize("case", sorted(POOLS))
def test_onnxruntime_makes_those_windows(case):
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((1, 3, 5, 5), np.float32)}
    assert ort_sizes(_pool_case(case), x, strict=True)["p"] == POOLS[case][2]


def _conv_transpose(auto_pad: str = "SAME_UPPER"):
    """``y = ConvTranspose(x[1, 2, 2, 3], w[2, 3, 2, 2], strides 2, output_padding 1)``."""
    w = numpy_helper.from_array(np.ones((2, 3, 2, 2), np.float32), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="ct", kernel_shape=[2, 2], strides=[2, 2],
                            output_padding=[1, 1], auto_pad=auto_pad)
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, [1, 2, 2, 3])], [V("y", T.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_same_padded_conv_transpose_is_sized_without_its_output_padding():
    # was: [1, 3, 5, 7] planned (420 bytes): ONNX's inference adds output_padding, onnxruntime makes in * stride
    assert _sizes(import_onnx(_conv_transpose()))["y"] == 3 * 4 * 6 * 4
    assert _sizes(import_onnx(_conv_transpose("NOTSET")))["y"] == 3 * 5 * 7 * 4   # (explicit pads: padded)


def test_onnxruntime_ignores_output_padding_beside_same():
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = {"x": np.ones((1, 2, 2, 3), np.float32)}
    assert ort_sizes(_conv_transpose(), x, strict=True)["y"] == 3 * 4 * 6 * 4
    assert ort_sizes(_conv_transpose("NOTSET"), x, strict=True)["y"] == 3 * 5 * 7 * 4
