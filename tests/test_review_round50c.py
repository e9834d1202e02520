"""Review of round 50 (review50c): adversarial inputs against what the session merged.

ONNX import: onnxruntime names the body of the first inlined call of local function ``F`` ``_inlfunc_F_...`` by the
op's *name* alone, so with two functions ``F`` (two domains, or overloads) whichever it inlines first clashes with
a graph value ``_inlfunc_F_t`` where both bodies make ``t``; the check skipped every name several functions share,
and such a model (onnxruntime: "Duplicate definition of name (_inlfunc_F_t)") was planned.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_refuses  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
FEEDS = {"x": np.ones((2, 3), np.float32)}


def _fn(domain: str, first_op: str, made: str = "t", overload: str = ""):
    f = helper.make_function(domain, "F", ["a"], ["b"],
                             [helper.make_node(first_op, ["a"], [made]), helper.make_node("Neg", [made], ["b"])],
                             [helper.make_opsetid("", 17)])
    if overload:
        f.overload = overload
    return f


def _model():
    """``F`` of domain ``local`` and ``F`` of domain ``other`` (bodies of other ops), both called; the graph has a
    value ``_inlfunc_F_t``."""
    nodes = [helper.make_node("Relu", ["x"], ["_inlfunc_F_t"], name="other_relu"),
             helper.make_node("F", ["_inlfunc_F_t"], ["y"], domain="local", name="call"),
             helper.make_node("F", ["y"], ["z"], domain="other", name="call2")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("z", T.FLOAT, [2, 3])])
    return helper.make_model(g, functions=[_fn("local", "Relu"), _fn("other", "Abs")], ir_version=8,
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1),
                                            helper.make_opsetid("other", 1)])


def test_two_functions_of_one_name_that_both_make_the_clashing_value_are_refused():
    model = _model()
    assert ort_refuses(model, FEEDS)
    with pytest.raises(GraphError, match=r"local function local:F \(or other:F\) \(called by node 'call'\): "
                                         r"onnxruntime inlines its value 't' as '_inlfunc_F_t', the name of value "
                                         r"'_inlfunc_F_t' of node 'other_relu'"):
        import_onnx(model)

