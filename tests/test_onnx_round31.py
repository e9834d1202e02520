"""ONNX importer, round 31: initializers the caller may override (IR 4 and later lists them as graph inputs with a
default) no longer size what follows by their default value, and local functions' default attribute values
(``FunctionProto.attribute_proto``) are given to calls that omit them (onnx's inliner dropped the attribute, and
the body op's own default sized it). Every size asserted is what onnxruntime 1.32's
CPU provider writes for the same model (``tests/onnx_oracle.py``), where the test says so."""

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
