"""ONNX importer, round 64 review: hostile models for the control-flow expansion (``importers/onnx/control_flow.py``).

Each model is run by onnxruntime 1.32 first: one it refuses must be refused by memplan, by one error naming the If or
Loop (it was planned, the subgraph's types or the node's inputs unchecked once inlined); one it runs must be planned
at the shapes and dtypes it computes. Also: the structure check of many Ifs walks the graph once, not once per If.
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
from onnx_oracle import ort_refuses  # noqa: E402
from test_onnx_round64 import FX, _bool, _graph, _i64, _model, _planned_as_onnxruntime_runs  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _ort_refuses(model) -> None:
    # (onnxruntime's own errors only: ``pytest.raises(Exception)`` here passed on a TypeError of the test's, round 69)
    assert ort_refuses(model, FX)


def _if(cond, then_out=None, else_out=None, else_op="Neg", inits=()):
    """``y = If(c)`` of a Relu branch and an ``else_op`` branch, ``c`` holding ``cond``; each branch's output declared
    as ``then_out``/``else_out`` (a ValueInfoProto) or left undeclared."""
    th = _graph([helper.make_node("Relu", ["x"], ["t"])], [then_out or "t"], "then")
    extra = {"to": T.INT64} if else_op == "Cast" else {}
    el = _graph([helper.make_node(else_op, ["x"], ["e"], **extra)], [else_out or "e"], "else")
    return _model([helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)], ["y"],
                  [cond, *inits])


def _body(i=V("i", T.INT64, []), cond_in=V("cond_in", T.BOOL, []), v=V("v", T.FLOAT, None), op="Add", scan=False):
    """A Loop body passing its condition through and carrying ``v`` through ``op`` (``Cast``: to int64)."""
    carried = (helper.make_node("Cast", ["v"], ["v2"], to=T.INT64) if op == "Cast"
               else helper.make_node(op, ["v", "v"], ["v2"]))
    nodes = [helper.make_node("Identity", ["cond_in"], ["cond_out"]), carried]
    return _graph(nodes, ["cond_out", "v2", *(["v2"] if scan else [])], inputs=[i, cond_in, v])


def _loop(body, trip=_i64(3, "M"), cond=None, outputs=("vf",)):
    inits = [t for t in (trip, cond) if t is not None]
    node = helper.make_node("Loop", [trip.name if trip is not None else "", cond.name if cond is not None else "", "x"],
                            list(outputs), name="loop0", body=body)
    return _model([node], list(outputs), inits)


# -- the node's own inputs: onnxruntime checks their types against the schema -------------------------------------

@pytest.mark.parametrize("value", [np.array(1.0, np.float32), np.array(2, np.int64), np.array(0, np.int64)])
def test_an_if_condition_not_of_bool_is_refused_as_onnxruntime_refuses_it(value):
    m = _if(nh.from_array(value, "c"))
    _ort_refuses(m)
    with pytest.raises(GraphError, match=rf"node 'if0' \(If\): its condition 'c' is of dtype {value.dtype}, not bool"):
        import_onnx(m)


def test_a_loop_condition_not_of_bool_and_a_trip_count_not_of_int64_are_refused():
    m = _loop(_body(), cond=nh.from_array(np.array(1.0, np.float32), "c"))
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): its condition 'c' is of dtype float32, not bool"):
        import_onnx(m)
    m = _loop(_body(), trip=nh.from_array(np.array(3, np.int32), "M"))
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): its trip count 'M' is of dtype int32, not int64"):
        import_onnx(m)


def test_a_loop_with_fewer_outputs_than_its_body_makes_is_refused():
    m = _loop(_body(scan=True), outputs=("vf",))
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): it has 1 outputs; its body makes 2 \(1 loop-carried, "
                                         "1 scan"):
        import_onnx(m)


def test_a_loop_without_a_trip_count_whose_condition_is_a_constant_false_returns_its_initial_values(monkeypatch):
    g = _planned_as_onnxruntime_runs(_loop(_body(), trip=None, cond=_bool(False, "c")), monkeypatch)
    assert [n.op for n in g.nodes] == ["Identity"]
    with pytest.raises(GraphError, match="it has no trip count"):   # (true: ort runs it until the body says stop)
        import_onnx(_loop(_body(), trip=None, cond=_bool(True, "c")))


# -- what a subgraph declares: onnxruntime infers the subgraphs as it loads the model ------------------------------

@pytest.mark.parametrize("case", ["taken branch declares int64", "untaken branch declares int64"])
def test_a_branch_output_declared_of_another_type_is_refused(case):
    decl = V("t" if case.startswith("taken") else "e", T.INT64, [5])
    m = _if(_bool(True, "c"), **({"then_out": decl} if case.startswith("taken") else {"else_out": decl}))
    _ort_refuses(m)
    branch = "then_branch" if case.startswith("taken") else "else_branch"
    with pytest.raises(GraphError, match=rf"node 'if0' \(If\): its {branch}'s output #0 '[te]' is declared "
                                         r"tensor\(int64\), .*: it is tensor\(float\), not tensor\(int64\)"):
        import_onnx(m)


def test_a_branch_output_declared_of_another_shape_is_planned_as_onnxruntime_runs_it(monkeypatch):
    # (the guard beside the refusals above: onnxruntime merges a declared shape it contradicts, and runs the model)
    decl = V("t", T.FLOAT, [7, 3])
    _planned_as_onnxruntime_runs(_if(_bool(True, "c"), then_out=decl), monkeypatch)
    with pytest.raises(GraphError, match="declared tensor"):
        import_onnx(_if(_bool(True, "c"), then_out=V("t", T.BOOL, [7, 3])))


@pytest.mark.parametrize("case", ["carried input declared int64", "iteration number declared float",
                                  "condition input declared int64", "carried value turns int64"])
def test_a_loop_body_whose_types_contradict_what_it_is_fed_is_refused(case, monkeypatch):
    body = {
        "carried input declared int64": lambda: _body(v=V("v", T.INT64, [9])),
        "iteration number declared float": lambda: _body(i=V("i", T.FLOAT, [])),
        "condition input declared int64": lambda: _body(cond_in=V("cond_in", T.INT64, [])),
        "carried value turns int64": lambda: _body(op="Cast"),
    }[case]()
    m = _loop(body, cond=_bool(True, "c"))
    _ort_refuses(m)
    want = {
        "carried input declared int64": r"its body's input 'v' is declared tensor\(int64\), but the value fed to it: "
                                        r"it is tensor\(float\)",
        "iteration number declared float": r"its body's iteration number input 'i' is declared tensor\(float\), not "
                                           r"tensor\(int64\)",
        "condition input declared int64": r"its body's condition input 'cond_in' is declared tensor\(int64\), not "
                                          r"tensor\(bool\)",
        "carried value turns int64": r"its loop-carried value #0 'x' turns, after an iteration of its body, into a "
                                     r"value that: it is tensor\(int64\), not tensor\(float\)",
    }[case]
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): " + want):
        import_onnx(m)
    if case == "condition input declared int64":   # (the guard: without a condition, onnxruntime runs it)
        _planned_as_onnxruntime_runs(_loop(body), monkeypatch)


@pytest.mark.parametrize("which", ["iteration number", "condition"])
def test_a_loop_body_whose_iteration_or_condition_input_declares_no_shape_is_refused(which):
    body = _body(i=V("i", T.INT64, None)) if which == "iteration number" else _body(cond_in=V("cond_in", T.BOOL, None))
    m = _loop(body)
    _ort_refuses(m)
    with pytest.raises(GraphError, match=rf"node 'loop0' \(Loop\): its body's {which} input '(i|cond_in)' declares no "
                                         "shape"):
        import_onnx(m)


def test_a_loop_condition_of_another_rank_than_its_body_declares_is_refused(monkeypatch):
    m = _loop(_body(), cond=_bool([True], "c"))
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): its condition 'c' is of rank 1, its body's condition "
                                         "input 'cond_in' declared of rank 0"):
        import_onnx(m)
    # (the guards: what onnxruntime does run stays planned: a [1] iteration number, a carried value declared of
    # another shape)
    _planned_as_onnxruntime_runs(_loop(_body(i=V("i", T.INT64, [1]), v=V("v", T.FLOAT, [6])),
                                       cond=_bool(True, "c")), monkeypatch)


# -- cost ------------------------------------------------------------------------------------------------------------

def test_the_subgraph_name_check_walks_the_graph_once_not_once_per_if(monkeypatch):
    """10,000 constant Ifs took minutes (each If listed every name of the graph again); counted here, not timed: the
    nodes ``_defined`` walks stay proportional to the graph."""
    k = 300
    nodes, prev = [], "x"
    for j in range(k):
        th = _graph([helper.make_node("Relu", [prev], [f"t{j}"])], [f"t{j}"], "then")
        el = _graph([helper.make_node("Neg", [prev], [f"e{j}"])], [f"e{j}"], "else")
        nodes.append(helper.make_node("If", ["c"], [f"y{j}"], then_branch=th, else_branch=el))
        prev = f"y{j}"
    m = _model(nodes, [prev], [_bool(True, "c")])
    walked = []
    real = control_flow._defined

    def counting(g):
        walked.append(len(g.node))
        return real(g)

    monkeypatch.setattr(control_flow, "_defined", counting)
    control_flow._check_subgraph_names(m.graph, [f"If_{j}" for j in range(k)])
    assert sum(walked) <= 4 * k, sum(walked)


# -- local functions called from a subgraph: onnx's inliner inlines them, onnxruntime runs them ---------------------

_OPS = [helper.make_opsetid("", 18), helper.make_opsetid("loc", 1)]


def _calls_in_branches(where: str):
    """``G`` (a Relu) called only from a branch: of an If in local function ``F``'s body (``"function"``), or of an If
    of the graph calling ``F`` which calls ``G`` (``"graph"``)."""
    g_fn = helper.make_function("loc", "G", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["r"]),
                                                           helper.make_node("Add", ["r", "r"], ["b"])], _OPS)
    if where == "function":
        th = _graph([helper.make_node("G", ["a"], ["t"], domain="loc", name="callG")], ["t"], "then")
        el = _graph([helper.make_node("Neg", ["a"], ["e"])], ["e"], "else")
        f_fn = helper.make_function("loc", "F", ["a"], ["b"], [
            helper.make_node("Constant", [], ["c"], value=_bool(True, "c")),
            helper.make_node("If", ["c"], ["b"], name="inner", then_branch=th, else_branch=el)], _OPS)
        nodes = [helper.make_node("F", ["x"], ["y"], domain="loc", name="callF")]
        inits = []
    else:
        f_fn = helper.make_function("loc", "F", ["a"], ["b"], [helper.make_node("G", ["a"], ["b"], domain="loc")],
                                    _OPS)
        th = _graph([helper.make_node("F", ["x"], ["t"], domain="loc", name="callF")], ["t"], "then")
        el = _graph([helper.make_node("Neg", ["x"], ["e"])], ["e"], "else")
        nodes = [helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)]
        inits = [_bool(True, "c")]
    m = _model(nodes, ["y"], inits)
    m.opset_import.append(helper.make_opsetid("loc", 1))
    m.functions.extend([g_fn, f_fn])
    return m


@pytest.mark.parametrize("where", ["function", "graph"])
def test_a_local_function_called_only_from_a_branch_is_inlined_and_planned(where, monkeypatch):
    """``_called_functions`` walked the top level only: ``G``, called from a branch, was taken for a function nothing
    calls (its checks skipped) and the call refused; onnxruntime runs the model."""
    g = _planned_as_onnxruntime_runs(_calls_in_branches(where), monkeypatch)
    assert sorted(n.op for n in g.nodes) == ["Add", "Relu"]


def test_calls_in_a_branch_count_toward_the_inlined_size_bound():
    """A branch calling a function that calls the next twice, 24 deep, inlines to 16 million nodes: refused by the
    bound before inlining, naming the call in the branch."""
    fns = [helper.make_function("loc", "F0", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], _OPS)]
    for k in range(1, 25):
        fns.append(helper.make_function("loc", f"F{k}", ["a"], ["b"], [
            helper.make_node(f"F{k - 1}", ["a"], ["h"], domain="loc"),
            helper.make_node(f"F{k - 1}", ["h"], ["b"], domain="loc")], _OPS))
    th = _graph([helper.make_node("F24", ["x"], ["t"], domain="loc", name="deep")], ["t"], "then")
    el = _graph([helper.make_node("Neg", ["x"], ["e"])], ["e"], "else")
    m = _model([helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)], ["y"],
               [_bool(True, "c")])
    m.opset_import.append(helper.make_opsetid("loc", 1))
    m.functions.extend(fns)
    with pytest.raises(GraphError, match=r"node 'deep' in a subgraph of node 'if0' calls local function loc:F24, whose "
                                         "body inlines to 16777216 nodes"):
        import_onnx(m)
