"""ONNX importer, round 49: each case held against what onnxruntime does with the same model.

Duplicate node names: onnxruntime refuses a model with two nodes of one name ("two nodes with same node name"),
also two of one name in the body of a local function it inlines; the importer renamed the second (``n`` ->
``n_1``, pushing a node really named ``n_1`` to ``n_2``), so graph and plan named nodes the model does not have.
Now refused naming the name and both nodes; a ``Constant`` (folded into an initializer, as onnxruntime does before
it checks names) may share a name, and the node that really has the name keeps it as its id.
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


def _model(nodes, inputs, outputs, inits=(), opset: int = 18, functions=(), extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset), *[helper.make_opsetid(d, 1) for d in extra_opsets]]
    return helper.make_model(g, opset_imports=ops, ir_version=8, functions=list(functions))


def _x_feeds(shape=(2,)):
    return {"x": np.ones(shape, np.float32)}


# ------------------------------------------------------------------------------------------ duplicate names
def _relu_chain(names):
    nodes, prev = [], "x"
    for k, nm in enumerate(names):
        out = "y" if k == len(names) - 1 else f"v{k}"
        nodes.append(helper.make_node("Relu", [prev], [out], name=nm))
        prev = out
    return _model(nodes, [V("x", T.FLOAT, [2])], [V("y", T.FLOAT, [2])])


@pytest.mark.parametrize("names", [["n", "n"], ["n", "n_1", "n"], ["a", "", "b", "a"], ["", "", "x1", "x1", "z"]])
def test_repeated_node_name_refused_as_onnxruntime_refuses(names):
    m = _relu_chain(names)
    assert ort_refuses(m, _x_feeds())
    dup = next(x for i, x in enumerate(names) if x and x in names[:i])
    with pytest.raises(GraphError, match=rf"both named {dup!r}: onnxruntime refuses the model"):
        import_onnx(m)


@pytest.mark.parametrize("names", [["n", "n_1", "m"], ["", "", ""], ["", "Relu_0", "Relu_1_1"]])
def test_unique_names_kept_as_ids(names):
    """Every named node keeps its ONNX name as its id (a generated name never takes one a node has)."""
    m = _relu_chain(names)
    assert not ort_refuses(m, _x_feeds())
    ids = [n.id for n in import_onnx(m).nodes]
    assert len(set(ids)) == len(ids)
    assert all(i == nm for i, nm in zip(ids, names) if nm)


def test_constant_may_share_a_name_and_the_node_keeps_it():
    """onnxruntime folds the Constant into an initializer first and runs the model; the Add, the only node of
    the plan, was imported as ``n_1``, a name the model does not have."""
    c = helper.make_node("Constant", [], ["c"], name="n", value=helper.make_tensor("v", T.FLOAT, [2], [1, 2]))
    m = _model([c, helper.make_node("Add", ["x", "c"], ["y"], name="n")], [V("x", T.FLOAT, [2])],
               [V("y", T.FLOAT, [2])])
    assert not ort_refuses(m, _x_feeds())
    assert [n.id for n in import_onnx(m).nodes] == ["n"]


def _fn_model(body, callers, tail="m"):
    f = helper.make_function("loc", "F", ["i"], ["o"], body, [helper.make_opsetid("", 18)])
    nodes, prev = [], "x"
    for k, nm in enumerate(callers):
        nodes.append(helper.make_node("F", [prev], [f"a{k}"], name=nm, domain="loc"))
        prev = f"a{k}"
    nodes.append(helper.make_node("Relu", [prev], ["y"], name=tail))
    return _model(nodes, [V("x", T.FLOAT, [2])], [V("y", T.FLOAT, [2])], functions=[f], extra_opsets=["loc"])


def _two_relus(a="n", b="n"):
    return [helper.make_node("Relu", ["i"], ["t"], name=a), helper.make_node("Relu", ["t"], ["o"], name=b)]


def test_repeated_name_in_a_called_function_body_refused():
    m = _fn_model(_two_relus(), ["c"])
    assert ort_refuses(m, _x_feeds())
    with pytest.raises(GraphError, match=r"of local function loc:F \(called by node 'c'\) are both named 'n'"):
        import_onnx(m)


def test_repeated_name_in_an_uncalled_function_body_is_no_error():
    m = _fn_model(_two_relus(), [])
    assert not ort_refuses(m, _x_feeds())
    assert [n.id for n in import_onnx(m).nodes] == ["m"]


@pytest.mark.parametrize("callers,tail,refused", [(["c", "c"], "m", True), (["c"], "c", True), (["c", "e"], "m", False)])
def test_function_callers_named_alike(callers, tail, refused):
    m = _fn_model(_two_relus("p", "q"), callers, tail)
    assert ort_refuses(m, _x_feeds()) == refused
    if refused:
        with pytest.raises(GraphError, match=r"of the graph are both named 'c'"):
            import_onnx(m)
    else:
        g = import_onnx(m)
        assert len({n.id for n in g.nodes}) == len(g.nodes) == 5
