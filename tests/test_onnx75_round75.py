"""ONNX importer, round 75 (onnx75): models other producers write, checked against onnxruntime 1.32.

Hand-built with ``onnx.helper`` in the patterns tf2onnx, skl2onnx, paddle2onnx and Olive/optimum write (ai.onnx.ml
classifiers and regressors, sequence ops, Loops carrying sequences, Scan in both directions, functions with
attribute references, several opset domains, IR versions 3 to 11, overridable initializers, value_info lies, 4-bit
and float8 types), every value exposed and each planned size held against the bytes onnxruntime writes. What was
found:

* a Squeeze or Unsqueeze of opsets 1-10 (its ``axes`` an attribute) of a negative axis: onnxruntime's kernels count
  it from the end (Squeeze in its input's rank, Unsqueeze in its output's), ONNX's inference passes over it and gives
  the input's shape, and what followed was planned for the wrong rank (an ``Add`` of an Unsqueeze ``[3, 4]`` by
  ``axes=[-1]`` and a ``[1, 1, 4]``: 48 bytes planned, 192 written); a Scan of those opsets stacking a scan output
  on a negative ``scan_output_axes`` (its Unsqueezes so) was refused as of no known rank.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_shapes  # noqa: E402

import memplan  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset: int = 9):
    g = helper.make_graph(nodes, "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


@pytest.mark.parametrize("opset", [7, 9, 10])
def test_squeeze_and_unsqueeze_of_negative_axes_before_opset_11_are_sized_as_onnxruntime_runs_them(opset):
    """Unsqueeze-1 of ``axes=[0, -1]`` inserts the last axis of its output, Squeeze-1 of ``[-2]`` drops the middle
    one of its input, as onnxruntime's kernels do; what follows is sized from those shapes (an Add of ``[3, 4, 1]``
    and ``[1, 1, 4]`` is ``[3, 4, 4]``: it was planned ``[1, 3, 4]``, a quarter of what onnxruntime writes)."""
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], name="u", axes=[-1]),
             helper.make_node("Add", ["u", "b"], ["z"], name="add"),
             helper.make_node("Unsqueeze", ["x"], ["u2"], name="u2", axes=[0, -1]),
             helper.make_node("Squeeze", ["s"], ["q"], name="q", axes=[-2])]
    model = _model(nodes, [V("x", T.FLOAT, [3, 4]), V("s", T.FLOAT, [3, 1, 4])], ["z", "u2", "q"],
                   [nh.from_array(np.ones((1, 1, 4), np.float32), "b")], opset)
    feeds = {"x": np.ones((3, 4), np.float32), "s": np.ones((3, 1, 4), np.float32)}
    real = ort_shapes(model, feeds)
    assert real == {"z": (3, 4, 4), "u2": (1, 3, 4, 1), "q": (3, 4)}
    g = import_onnx(model)
    for name, shape in (*real.items(), ("u", (3, 4, 1))):
        assert tuple(g.tensor(name).attrs["shape"]) == shape
        assert g.tensor(name).size == 4 * int(np.prod(shape))
    memplan.verify(g, memplan.plan(g))



@pytest.mark.parametrize("opset", [9, 10])
def test_a_chain_of_negative_axes_before_opset_11_is_counted_node_by_node(opset):
    """``Unsqueeze(axes=[-1])``, then ``Squeeze(axes=[-1])`` of it, then ``Unsqueeze(axes=[-4, -1])``: each counted in
    the rank its input has once the one before is counted (a later node's rank as ONNX gave it is wrong until then),
    as onnxruntime runs them; the Squeeze failed ONNX's strict inference of the shape ONNX gave the first Unsqueeze
    ("Dimension of input 1 must be 1 instead of 3") and the model was refused."""
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[-1]), helper.make_node("Squeeze", ["u"], ["q"], axes=[-1]),
             helper.make_node("Unsqueeze", ["q"], ["u2"], axes=[-4, -1])]
    model = _model(nodes, [V("x", T.FLOAT, ["n", 3])], ["u", "q", "u2"], opset=opset)
    real = ort_shapes(model, {"x": np.ones((2, 3), np.float32)})
    assert real == {"u": (2, 3, 1), "q": (2, 3), "u2": (1, 2, 3, 1)}
    g = import_onnx(model, dims={"n": 2})
    assert {name: tuple(g.tensor(name).attrs["shape"]) for name in real} == real

def test_scan_of_negative_output_axes_at_opset_9_is_planned():
    """A Scan-9 stacking its scan outputs on ``scan_output_axes=[-1, -2]`` (onnxruntime counts them from the end of
    the stacked output, as from opset 11) is planned at onnxruntime's shapes; it was refused ("shape inference could
    not find its rank", naming a Concat of the unrolling)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Identity", ["s2"], ["y"]),
         helper.make_node("Mul", ["x", "x2"], ["z"])], "body",
        [V("s", T.FLOAT, [3]), V("x", T.FLOAT, [3]), V("x2", T.FLOAT, [3])],
        [V("s2", T.FLOAT, [3]), V("y", T.FLOAT, [3]), V("z", T.FLOAT, [3])])
    scan = helper.make_node("Scan", ["s0", "xs", "xs2"], ["sf", "ys", "zs"], name="scan", body=body,
                            num_scan_inputs=2, scan_input_axes=[0, 1], scan_output_axes=[-1, -2],
                            scan_input_directions=[0, 1], scan_output_directions=[1, 0])
    model = _model([scan], [V("s0", T.FLOAT, [3]), V("xs", T.FLOAT, [4, 3]), V("xs2", T.FLOAT, [3, 4])],
                   ["sf", "ys", "zs"])
    feeds = {"s0": np.ones(3, np.float32), "xs": np.ones((4, 3), np.float32), "xs2": np.ones((3, 4), np.float32)}
    real = ort_shapes(model, feeds)
    assert real == {"sf": (3,), "ys": (3, 4), "zs": (4, 3)}
    g = import_onnx(model)
    for name, shape in real.items():
        assert tuple(g.tensor(name).attrs["shape"]) == shape
    memplan.verify(g, memplan.plan(g))


def _loop_scan_if(kind: str):
    """A Loop (3 iterations), a Scan (4 slices) or an If on a fed condition (its branches a Concat of ``x``) whose
    output ``o`` the model declares in ``n``, which the output's leading 3 or 4 contradicts once ``--dim n=2``."""
    from onnx import numpy_helper

    if kind == "Loop":
        body = helper.make_graph([helper.make_node("Identity", ["c"], ["co"]), helper.make_node("Relu", ["x"], ["so"])],
                                 "b", [V("i", T.INT64, []), V("c", T.BOOL, [])], [V("co", T.BOOL, []), V("so", T.FLOAT, None)])
        node = helper.make_node("Loop", ["m", ""], ["o"], name="loop", body=body)
        inits = [numpy_helper.from_array(np.array(3, np.int64), "m")]
        return _declared(node, [V("x", T.FLOAT, ["n", 3])], ["n", "n", 3], inits)
    if kind == "Scan":
        body = helper.make_graph([helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Identity", ["s2"], ["y"])],
                                 "b", [V("s", T.FLOAT, None), V("x", T.FLOAT, None)], [V("s2", T.FLOAT, None), V("y", T.FLOAT, None)])
        node = helper.make_node("Scan", ["s0", "x"], ["sf", "o"], name="scan", body=body, num_scan_inputs=1)
        return _declared(node, [V("s0", T.FLOAT, ["n"]), V("x", T.FLOAT, [4, "n"])], ["n", "n"], (), extra=["sf"])
    branches = {b: helper.make_graph([helper.make_node("Concat", ["x", "x"], [b], axis=0)], b, [], [V(b, T.FLOAT, None)])
                for b in ("t", "e")}
    node = helper.make_node("If", ["c"], ["o"], name="if", then_branch=branches["t"], else_branch=branches["e"])
    return _declared(node, [V("x", T.FLOAT, ["n", 3]), V("c", T.BOOL, [])], ["n", 3], ())


def _declared(node, inputs, dims, inits, extra=()):
    outs = [V(o, T.FLOAT, None) for o in extra] + [V("o", T.FLOAT, dims)]
    g = helper.make_graph([node], "g", inputs, outs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("kind", ["Loop", "Scan", "If"])
def test_a_control_flow_output_declared_against_fixed_dims_is_refused_for_that(kind):
    """An If, Loop or Scan output the model declares in terms of a dimension ``--dim`` fixes, which the values made
    contradict, is refused as any node's output so (a traced export's declaration), naming the declaration and the
    dimension fixed: it was refused for branches "of two types" or iterations of "another shape from one iteration to
    the next", neither of which the model has (onnxruntime runs it)."""
    model = _loop_scan_if(kind)
    with pytest.raises(memplan.errors.GraphError) as info:
        import_onnx(model, dims={"n": 2})
    msg = str(info.value)
    assert "its output 'o' is declared" in msg and "which the dimensions fixed (n=2) contradict" in msg, msg
    assert "two types" not in msg and "from one iteration to the next" not in msg, msg


@pytest.mark.parametrize("kind", ["Scan", "Loop", "If"])
def test_a_dim_named_only_in_a_graph_output_is_taken_beside_control_flow(kind):
    """``--dim n=4`` for a dimension the model names only in a graph output's declaration (``["n", 3]``) is taken, as
    it is in a model without control flow: beside a Scan, a Loop whose trip count folds from a shape, or an If whose
    condition does, it was refused as "the model has no symbolic dimension 'n' (it has none)" (the sub-model that
    folds the trip count or condition holds no graph output's declaration)."""
    from onnx import numpy_helper

    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    x = V("x", T.FLOAT, [4, 3])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["m"], axis=0)]
    if kind == "Scan":
        body = helper.make_graph([helper.make_node("Add", ["a", "b"], ["a2"]), helper.make_node("Identity", ["a2"], ["y"])],
                                 "b", [V("a", T.FLOAT, None), V("b", T.FLOAT, None)], [V("a2", T.FLOAT, None), V("y", T.FLOAT, None)])
        nodes = [helper.make_node("Scan", ["s0", "x"], ["sf", "o"], body=body, num_scan_inputs=1)]
        inputs, extra = [V("s0", T.FLOAT, [3]), x], [V("sf", T.FLOAT, None)]
    elif kind == "Loop":
        body = helper.make_graph([helper.make_node("Identity", ["c"], ["co"]), helper.make_node("Relu", ["x"], ["so"])],
                                 "b", [V("i", T.INT64, []), V("c", T.BOOL, [])], [V("co", T.BOOL, []), V("so", T.FLOAT, None)])
        nodes.append(helper.make_node("Loop", ["m", ""], ["o"], body=body))
        inputs, extra = [x], []
    else:
        branches = [helper.make_graph([helper.make_node(op, ["x"], [b])], b, [], [V(b, T.FLOAT, None)])
                    for op, b in (("Relu", "t"), ("Neg", "e"))]
        nodes += [helper.make_node("Greater", ["m", "zero"], ["c"]),
                  helper.make_node("If", ["c"], ["o"], then_branch=branches[0], else_branch=branches[1])]
        inputs, extra = [x], []
    declared = ["n", 4, 3] if kind == "Loop" else ["n", 3]
    g = helper.make_graph(nodes, "g", inputs, [*extra, V("o", T.FLOAT, declared)], initializer=[zero])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    graph = import_onnx(model, dims={"n": 4})
    assert tuple(graph.tensor("o").attrs["shape"]) == (4, *declared[1:])
    memplan.verify(graph, memplan.plan(graph))


def test_a_dim_named_only_inside_a_branch_or_body_is_taken_and_a_misspelt_one_refused():
    """``--dim q=3`` for a name the model declares only inside a Scan body (its inputs and outputs ``["q"]``) or an If
    branch is taken (no size follows it: the expansion sizes the body's values from what it reads); it was refused as
    "the model has no symbolic dimension 'q' (it has none)". A name the model has nowhere is still refused."""
    body = helper.make_graph([helper.make_node("Add", ["a", "b"], ["a2"]), helper.make_node("Identity", ["a2"], ["y"])],
                             "b", [V("a", T.FLOAT, ["q"]), V("b", T.FLOAT, ["q"])],
                             [V("a2", T.FLOAT, ["q"]), V("y", T.FLOAT, ["q"])])
    branches = [helper.make_graph([helper.make_node(op, ["x"], [b])], b, [], [V(b, T.FLOAT, ["w", 3])])
                for op, b in (("Relu", "t"), ("Neg", "e"))]
    nodes = [helper.make_node("Scan", ["s0", "x"], ["sf", "ys"], body=body, num_scan_inputs=1),
             helper.make_node("If", ["c"], ["o"], then_branch=branches[0], else_branch=branches[1])]
    g = helper.make_graph(nodes, "g", [V("s0", T.FLOAT, [3]), V("x", T.FLOAT, [4, 3]), V("c", T.BOOL, [])],
                          [V(o, T.FLOAT, None) for o in ("sf", "ys", "o")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    graph = import_onnx(model, dims={"q": 3, "w": 4})
    assert [tuple(graph.tensor(o).attrs["shape"]) for o in ("sf", "ys", "o")] == [(3,), (4, 3), (4, 3)]
    with pytest.raises(memplan.errors.GraphError, match=r"dims\['qq'\]: the model has no symbolic dimension 'qq'"):
        import_onnx(model, dims={"qq": 3})


@pytest.mark.parametrize("maker, taken", [("Optional(x)", "then"), ("Optional()", "else"), ("x", "then")])
def test_an_if_on_whether_a_known_optional_holds_a_value_is_its_taken_branch(maker, taken):
    """``If(OptionalHasElement(o))`` (torch's ``if x is None``) where ``o`` is an ``Optional`` of a value, an empty
    ``Optional`` or a tensor (opset 18): which branch runs is known at import, and the If is that branch, as one on a
    constant condition is. Its branches make ``[4, 3]`` and ``[2, 3]``: it was refused as an If on a run-time
    condition of two shapes (onnxruntime runs it), and of one shape planned both branches."""
    then = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["t"], axis=0)], "then", [], [V("t", T.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [], [V("e", T.FLOAT, None)])
    nodes = [helper.make_node("OptionalHasElement", ["o" if maker != "x" else "x"], ["has"], name="has"),
             helper.make_node("If", ["has"], ["y"], name="if", then_branch=then, else_branch=other)]
    if maker == "Optional(x)":
        nodes.insert(0, helper.make_node("Optional", ["x"], ["o"]))
    elif maker == "Optional()":
        nodes.insert(0, helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(T.FLOAT, [])))
    model = _model(nodes, [V("x", T.FLOAT, [2, 3])], ["y"], opset=18)
    real = ort_shapes(model, {"x": np.ones((2, 3), np.float32)})
    assert real == {"y": (4, 3) if taken == "then" else (2, 3)}
    g = import_onnx(model)
    assert tuple(g.tensor("y").attrs["shape"]) == real["y"]
    assert any(n.id.startswith(f"if/{taken}/") for n in g.nodes)
    assert not any(n.id.startswith("if/" + ("else" if taken == "then" else "then") + "/") for n in g.nodes)


def _function_model(declared, body_op: str = "Relu", domain: str = ""):
    """A model calling local function ``F`` (IR 10) whose body's ``t`` (made by ``body_op``) the function declares
    ``declared`` (a ValueInfoProto) in its ``value_info``; ``x`` is ``["n", 3]``."""
    f = helper.make_function("local", "F", ["x"], ["y"],
                             [helper.make_node(body_op, ["x"], ["t"], domain=domain),
                              helper.make_node("Concat", ["t", "t"], ["y"], axis=0)],
                             opset_imports=[helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else []))
    f.value_info.append(declared)
    g = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="local", name="call")], "g",
                          [V("x", T.FLOAT, ["n", 3])], [V("y", T.FLOAT, None)])
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(g, opset_imports=opsets, functions=[f], ir_version=10)


def test_a_local_functions_declared_type_of_a_standard_ops_value_is_not_held_against_it():
    """A local function declaring its body's ``Relu`` output int64 (its ``value_info``, IR 10): onnxruntime inlines the
    body without the declaration and runs the model; it was refused ("Inferred elem type differs from existing elem
    type"). Planned as the Relu makes it; a custom op's declaration in a body, its only size, still sizes it; and a
    ``--dim`` the model names only in a function's ``value_info`` is one it has."""
    model = _function_model(V("t", T.INT64, ["z", 3]))
    real = ort_shapes(model, {"x": np.ones((2, 3), np.float32)})
    assert real == {"y": (4, 3)}
    g = import_onnx(model, dims={"n": 2})
    assert tuple(g.tensor("y").attrs["shape"]) == (4, 3) and g.tensor("y").size == 48
    import_onnx(model, dims={"n": 2, "z": 2})
    custom = import_onnx(_function_model(V("t", T.FLOAT, ["n", 3]), "Foo", "my.domain"), dims={"n": 2})
    assert tuple(custom.tensor("y").attrs["shape"]) == (4, 3)
