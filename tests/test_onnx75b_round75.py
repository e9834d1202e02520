"""ONNX importer, round 75 (onnx75b): control flow that blows up when unrolled.

What was found:

* a 553-byte model of three nested 64-step Loops (a two-node innermost body) unrolls to about 800,000 nodes, under
  the 2**20 bound on the graph, and its import ran for minutes (0.1-0.3 ms a node): a hang to the user. The nodes
  the expansion adds are now bounded too (``control_flow.MAX_UNROLLED_NODES``, 131,072), estimated before any copy
  (trip counts times body sizes, nested), and the refusal names the Loop and the estimate.
"""

from __future__ import annotations

import time

import pytest
from needs import need

need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

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
