"""ONNX importer, round 29: control flow inside a model-local function is refused naming the call and the body
node as the model has them (not a name made up for the inlined graph)."""

from __future__ import annotations

import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _branch(op, out):
    return helper.make_graph([helper.make_node(op, ["x"], [out])], out, [], [V(out, T.FLOAT, [4])])


def _calls_a_function_with_if(body_name: str = ""):
    """``y = F(x, c)``, F's body one ``If`` (named ``body_name``) choosing Relu(x) or Neg(x)."""
    cond = helper.make_node("If", ["c"], ["y"], name=body_name, then_branch=_branch("Relu", "t"),
                            else_branch=_branch("Neg", "e"))
    fn = helper.make_function("local", "F", ["x", "c"], ["y"], [cond], [helper.make_opsetid("", 17)])
    g = helper.make_graph([helper.make_node("F", ["x", "c"], ["y"], domain="local", name="call")], "g",
                          [V("x", T.FLOAT, [4]), V("c", T.BOOL, [])], [V("y", T.FLOAT, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                             functions=[fn], ir_version=8)


@pytest.mark.parametrize("body_name, node", [("", r"#0 \(If\)"), ("choose", r"'choose' \(If\)")])
def test_control_flow_in_a_called_local_function_is_refused_naming_the_call_and_the_body_node(body_name, node):
    # was: "node 'If_0' (If) has a subgraph", a name of the inlined graph that the model does not have
    with pytest.raises(GraphError, match=rf"local function local:F \(called by node 'call'\): its node {node} has a "
                                         r"subgraph \(attribute '(then|else)_branch'\): control flow"):
        import_onnx(_calls_a_function_with_if(body_name))


def test_control_flow_in_a_function_nobody_calls_is_not_refused():
    m = _calls_a_function_with_if()
    m.graph.node[0].CopyFrom(helper.make_node("Relu", ["x"], ["y"], name="call"))
    assert {t.id: t.size for t in import_onnx(m).tensors}["y"] == 16
