"""ONNX importer, round 75 (onnx75b): control flow that blows up when unrolled.

What was found:

* a 553-byte model of three nested 64-step Loops (a two-node innermost body) unrolls to about 800,000 nodes, under
  the 2**20 bound on the graph, and its import ran for minutes (0.1-0.3 ms a node): a hang to the user. The nodes
  the expansion adds are now bounded too (``control_flow.MAX_UNROLLED_NODES``, 131,072), estimated before any copy
  (trip counts times body sizes, nested), and the refusal names the Loop and the estimate.
* a Loop whose body computes its condition (tf2onnx's while-loops: ``cond = Less(i + 1, limit)``, no trip count or
  INT64_MAX) was refused though the limit is a constant or a shape; it is now unrolled while its condition folds true
  (at most 64 iterations, and ``MAX_CONDITION_FOLDS`` folds a model), each size as onnxruntime makes it; a limit the
  inputs hold is refused naming the Loop.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _nested_loops(depth: int, trip: int, body_nodes: int = 2):
    """``depth`` Loops nested, each of ``trip`` iterations (one initializer ``trip``), the innermost body
    ``body_nodes`` Relus of a ``[4]`` float carried value."""
    def body(level: int):
        cur = f"x{level}_in"
        ins = [V(f"i{level}", T.INT64, []), V(f"c{level}", T.BOOL, []), V(cur, T.FLOAT, [4])]
        nodes = [helper.make_node("Identity", [f"c{level}"], [f"co{level}"])]
        if level == depth - 1:
            for k in range(body_nodes):
                nodes.append(helper.make_node("Relu", [cur], [f"r{level}_{k}"]))
                cur = f"r{level}_{k}"
        else:
            nodes.append(helper.make_node("Loop", ["trip", "", cur], [f"lo{level}"], name=f"inner{level}",
                                          body=body(level + 1)))
            cur = f"lo{level}"
        return helper.make_graph(nodes, f"b{level}", ins, [V(f"co{level}", T.BOOL, []), V(cur, T.FLOAT, [4])])

    g = helper.make_graph([helper.make_node("Loop", ["trip", "", "x"], ["y"], name="top", body=body(0))], "m",
                          [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, [4])],
                          initializer=[helper.make_tensor("trip", T.INT64, [], [trip])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_three_nested_64_step_loops_are_refused_at_once_naming_the_loop_and_the_size():
    """About 800,000 nodes unrolled (under 2**20): the import took minutes; refused before any copy."""
    m = _nested_loops(3, 64)
    assert len(m.SerializeToString()) < 1024
    t0 = time.perf_counter()
    with pytest.raises(GraphError, match=r"node 'top' \(Loop\): unrolling it adds about 794752 nodes \(64 iterations "
                                         r"of a body of up to 12418 nodes.*over the 131072 nodes"):
        import_onnx(m)
    assert time.perf_counter() - t0 < 5


def test_nested_loops_under_the_bound_still_unroll():
    g = import_onnx(_nested_loops(2, 8))
    assert sum(n.op == "Relu" for n in g.nodes) == 8 * 8 * 2


def test_the_bound_counts_what_the_expansion_adds_not_the_models_own_nodes(monkeypatch):
    """A model larger than the bound with one small Loop is not refused; a Loop adding past it is."""
    monkeypatch.setattr(control_flow, "MAX_UNROLLED_NODES", 40)
    m = _nested_loops(1, 8)   # 8 iterations of 3 nodes: 24 added
    g = m.graph
    prev = "x"
    pre = []
    for k in range(60):   # (60 nodes of the model's own before the Loop)
        pre.append(helper.make_node("Relu", [prev], [f"p{k}"], name=f"p{k}"))
        prev = f"p{k}"
    g.node[0].input[2] = prev
    nodes = pre + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    assert sum(n.op == "Relu" for n in import_onnx(m).nodes) == 60 + 16
    m2 = _nested_loops(1, 16)   # 16 x 3 = 48 added
    with pytest.raises(GraphError, match=r"node 'top' \(Loop\): unrolling it adds about 48 nodes .*over the 40"):
        import_onnx(m2)


# -- while-loops: a body that computes its condition -------------------------------------------------------------

def _while(limit: str = "shape", trip: int | None = None, c0_true: bool = False):
    """tf2onnx's while-loop: ``j = 0; while j < lim: j += 1; acc = concat(acc, row)`` (a loop-carried value growing
    a row an iteration) with a scan output; ``lim`` is x's first dimension (``shape``), the constant 5
    (``constant``) or a graph input (``fed``). No trip count unless ``trip``; the first condition ``Less(0, lim)``
    (a constant true with ``c0_true``)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["j", "one"], ["j1"]), helper.make_node("Less", ["j1", "lim"], ["cout"]),
         helper.make_node("Concat", ["acc", "row"], ["acc1"], axis=0), helper.make_node("Relu", ["row"], ["sc"])],
        "body", [V("it", T.INT64, []), V("cin", T.BOOL, []), V("j", T.INT64, []), V("acc", T.FLOAT, None)],
        [V("cout", T.BOOL, []), V("j1", T.INT64, []), V("acc1", T.FLOAT, None), V("sc", T.FLOAT, None)])
    nodes = []
    inits = [nh.from_array(np.array(0, np.int64), "zero"), nh.from_array(np.array(1, np.int64), "one"),
             nh.from_array(np.zeros((1, 3), np.float32), "row")]
    ins = [V("x", T.FLOAT, [5, 3])]
    if limit == "fed":
        ins.append(V("lim", T.INT64, []))
    elif limit == "shape":
        nodes += [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["lim"], axis=0)]
    else:
        inits.append(nh.from_array(np.array(int(limit), np.int64), "lim"))
    if c0_true:
        inits.append(nh.from_array(np.array(True), "c0"))
    else:
        nodes.append(helper.make_node("Less", ["zero", "lim"], ["c0"]))
    if trip is not None:
        inits.append(nh.from_array(np.array(trip, np.int64), "M"))
    nodes.append(helper.make_node("Loop", ["M" if trip is not None else "", "c0", "zero", "x"], ["jf", "accf", "scans"],
                                  name="while", body=body))
    g = helper.make_graph(nodes, "g", ins, [helper.make_empty_tensor_value_info(o) for o in ["jf", "accf", "scans"]],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _ort_bytes(model, feeds: dict) -> dict[str, int]:
    from onnx_oracle import ort_run

    return {name: v.nbytes for name, v in ort_run(model, feeds).items()}


@pytest.mark.parametrize(("limit", "trip", "rows"), [("shape", None, 5), ("constant", None, 5), ("constant", 3, 3),
                                                     ("constant", 2**63 - 1, 5), ("1", None, 1)])
def test_a_while_loop_whose_condition_folds_is_unrolled_as_onnxruntime_runs_it(limit, trip, rows):
    """Refused before ("it has no trip count", "its body computes its condition"); now the iterations that run are
    those whose condition folds true, the outputs sized as onnxruntime makes them."""
    m = _while(limit if limit != "constant" else "5", trip)
    g = import_onnx(m)
    want = _ort_bytes(m, {"x": np.zeros((5, 3), np.float32)})
    assert {k: g.tensor(k).size for k in want} == want
    assert want["scans"] == rows * 12 and sum(n.op == "Relu" for n in g.nodes) == rows


def test_a_while_loop_on_a_limit_the_inputs_hold_is_refused_naming_it():
    with pytest.raises(GraphError, match=r"node 'while' \(Loop\): its body computes its condition 'cout', which after "
                                         r"iteration 0 is not a constant known at import"):
        import_onnx(_while("fed", c0_true=True))


def test_a_while_loop_that_runs_past_64_iterations_is_refused():
    with pytest.raises(GraphError, match=r"node 'while' \(Loop\): its body's condition 'cout' still holds after 64 "
                                         "iterations"):
        import_onnx(_while("1000000"))


def test_nested_while_loops_are_bounded_by_the_folds_they_make(monkeypatch):
    monkeypatch.setattr(control_flow, "MAX_CONDITION_FOLDS", 6)
    inner = helper.make_node("Loop", ["", "c0", "zero", "x"], ["jf", "accf", "scans"], name="inner",
                             body=_while("5").graph.node[-1].attribute[0].g)
    outer_body = helper.make_graph([helper.make_node("Identity", ["oc"], ["oco"]),
                                    helper.make_node("Less", ["zero", "lim"], ["c0"]), inner],
                                   "ob", [V("oi", T.INT64, []), V("oc", T.BOOL, []), V("ov", T.FLOAT, [5, 3])],
                                   [V("oco", T.BOOL, []), V("ov_next", T.FLOAT, [5, 3]), V("accf", T.FLOAT, None)])
    outer_body.node.append(helper.make_node("Identity", ["ov"], ["ov_next"]))
    m = _while("5")
    g = m.graph
    loop = helper.make_node("Loop", ["M", "", "x"], ["xf", "accs"], name="outer", body=outer_body)
    del g.node[:]
    g.node.append(loop)
    g.initializer.append(nh.from_array(np.array(3, np.int64), "M"))
    del g.output[:]
    g.output.extend([helper.make_empty_tensor_value_info("xf")])
    with pytest.raises(GraphError, match=r"node 'outer/1/inner' \(Loop\): folding its body's condition once an "
                                         "iteration makes more than 6 folds"):
        import_onnx(m)


def test_a_while_loop_is_bounded_by_what_its_iterations_add_not_by_64_of_them(monkeypatch):
    """Its iterations are counted as made: 65 estimated copies of the body refused one that runs twice; one that
    adds past the bound is refused at the iteration that does."""
    monkeypatch.setattr(control_flow, "MAX_UNROLLED_NODES", 24)
    g = import_onnx(_while("2"))
    assert sum(n.op == "Relu" for n in g.nodes) == 2
    with pytest.raises(GraphError, match=r"node 'while' \(Loop\): unrolling it adds \d+ nodes by its iteration \d "
                                         r"\(its body computes its condition 'cout'\), over the 24 nodes"):
        import_onnx(_while("50"))
