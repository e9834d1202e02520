"""ONNX importer, round 40: a node's attributes as its op's schema defines them.

A standard op's attribute given twice (``Gather`` with ``axis=1`` then ``axis=0``), of another type than the
schema's (``axis=1.0``, a float; an attribute without a type), one the op does not have, or an op onnx deprecated
at the model's opset (``Upsample`` at opset 10) was imported and planned by what onnx's shape inference reads of
it (the last of two attributes, the integer field of a float one: 0), while onnx's checker and onnxruntime refuse
the model ("Attribute 'axis' appeared multiple times", "Mismatched attribute type"): a plan of a model no runtime
runs, sized by a reading nobody else makes (a Gather of ``[3, 2]`` by 5 indices with ``axis`` 1 then 0 was planned
40 bytes, ``[5, 2]``; taken by its first axis it writes 60). Such a node is now refused, naming it and what the
checker says, also where a local function's call passes an attribute of the wrong type into its body.
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
F = T.FLOAT
OUT = helper.ValueInfoProto(name="y")


def _model(nodes, inputs, outputs=(OUT,), inits=(), opset: int = 18, functions=(), domains=()):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    g = helper.make_graph(nodes, "g", inputs, list(outputs), list(inits))
    return helper.make_model(g, opset_imports=opsets, ir_version=8, functions=list(functions))


def _gather(node):
    return _model([node], [V("x", F, [3, 2])], inits=[nh.from_array(np.array([0, 1, 1, 0, 1], np.int64), "i")])


def _runs_on_ort(model) -> bool:
    return ort_sizes(model, {"x": np.zeros((3, 2), np.float32)}) is not None


def test_an_attribute_given_twice_is_refused_naming_the_node():
    """Planned as the last one says (40 bytes); by the first, the Gather writes 60. onnxruntime refuses it."""
    n = helper.make_node("Gather", ["x", "i"], ["y"], axis=1, name="pick")
    n.attribute.extend([helper.make_attribute("axis", 0)])
    model = _gather(n)
    assert not _runs_on_ort(model)
    with pytest.raises(GraphError, match=r"node 'pick' \(Gather\): attribute 'axis' is given twice.*onnxruntime"):
        import_onnx(model)


@pytest.mark.parametrize("value", [1.0, "1", [1]])
def test_an_attribute_of_the_wrong_type_is_refused(value):
    """``axis=1.0`` was read as 0 by onnx's inference (the integer field of a float attribute) and planned so."""
    model = _gather(helper.make_node("Gather", ["x", "i"], ["y"], axis=value))
    assert not _runs_on_ort(model)
    with pytest.raises(GraphError, match=r"node 'Gather_0' \(Gather\): Mismatched attribute type in "
                                         r"'Gather_0 : axis'\. Expected: 'INT'"):
        import_onnx(model)


def test_an_attribute_without_a_type_is_refused():
    n = helper.make_node("Gather", ["x", "i"], ["y"])
    a = n.attribute.add()
    a.name, a.i = "axis", 1   # (type left UNDEFINED)
    model = _gather(n)
    assert not _runs_on_ort(model)
    with pytest.raises(GraphError, match=r"node 'Gather_0' \(Gather\): attribute 'axis' has no type"):
        import_onnx(model)


def test_an_attribute_the_op_does_not_have_is_refused():
    model = _model([helper.make_node("Relu", ["x"], ["y"], alpha=0.5)], [V("x", F, [3, 2])])
    assert not _runs_on_ort(model)
    with pytest.raises(GraphError, match=r"node 'Relu_0' \(Relu\).*Unrecognized attribute: alpha"):
        import_onnx(model)


def test_an_op_deprecated_at_the_models_opset_is_refused():
    s = nh.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    model = _model([helper.make_node("Upsample", ["x", "s"], ["y"])], [V("x", F, [1, 1, 2, 2])], inits=[s], opset=10)
    assert ort_sizes(model, {"x": np.zeros((1, 1, 2, 2), np.float32)}) is None
    with pytest.raises(GraphError, match=r"node 'Upsample_0' \(Upsample\).*deprecated"):
        import_onnx(model)


def test_a_function_call_passing_a_float_for_an_int_attribute_is_refused():
    """The inlined body's Concat got ``axis`` as a float: planned (read as 0) where onnxruntime refuses."""
    concat = helper.make_node("Concat", ["a", "a"], ["b"])
    ref = helper.AttributeProto(name="axis", ref_attr_name="ax", type=helper.AttributeProto.INT)
    concat.attribute.append(ref)
    f = helper.make_function("loc", "twice", ["a"], ["b"], [concat], [helper.make_opsetid("", 18)],
                             attributes=["ax"])
    model = _model([helper.make_node("twice", ["x"], ["y"], domain="loc", ax=1.0)], [V("x", F, [3, 2])],
                   functions=[f], domains=["loc"])
    assert not _runs_on_ort(model)
    with pytest.raises(GraphError, match=r"\(Concat\): Mismatched attribute type in '.*: axis'\. Expected: 'INT', actual: 'FLOAT'"):
        import_onnx(model)


def test_attributes_as_the_schema_defines_them_still_plan_as_onnxruntime_runs_them():
    """What the check lets through: typed attributes, the ``ai.onnx`` spelling of the default domain, an op onnx
    has no schema for (onnxruntime's own, its judge), an ``ai.onnx.ml`` op, LayerNormalization-17 (whose schema
    takes unchecked attributes) and a Constant (folded into a weight)."""
    nodes = [helper.make_node("Gather", ["x", "i"], ["g"], axis=1),
             helper.make_node("Relu", ["g"], ["r"], domain="ai.onnx"),
             helper.make_node("FastGelu", ["r"], ["f"], domain="com.microsoft"),
             helper.make_node("Scaler", ["f"], ["s"], domain="ai.onnx.ml", scale=[2.0], offset=[0.0]),
             helper.make_node("Constant", [], ["w"], value=nh.from_array(np.ones(5, np.float32))),
             helper.make_node("LayerNormalization", ["s", "w"], ["y"], axis=-1, epsilon=1e-5)]
    g = helper.make_graph(nodes, "g", [V("x", F, [3, 2])], [OUT],
                          [nh.from_array(np.array([0, 1, 1, 0, 1], np.int64), "i")])
    model = helper.make_model(g, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                              helper.make_opsetid("com.microsoft", 1),
                                                              helper.make_opsetid("ai.onnx.ml", 3)])
    graph = import_onnx(model)
    real = ort_sizes(model, {"x": np.random.default_rng(0).random((3, 2), np.float32)}, strict=True)
    compared, bad = size_mismatches(graph, real)
    assert compared == 6 and not bad
    assert {t.id: t.size for t in graph.tensors}["y"] == 60
