"""Round 48: the issue-order sweep bound (``lifetimes.sweep_lower_bound``) on multi-stream plans.

A fan-out whose branches each write an output that lives to the end had a bound of one stream's share: the
per-node bound never adds concurrent branches and the clique search ran out of budget. The sweep counts every
root whose access span holds one point of the issue order; these tests check it is proven (never above the
exact heaviest conflict clique, hence never above the optimum nor any safe plan's arena) on random graphs with
views, in-place pairs, fusion groups, several streams and devices.
"""

from __future__ import annotations

import numpy as np
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fit_devices, graphs, schedules

import memplan
from memplan.graph import GraphBuilder
from memplan.lifetimes import buffer_problem, compute_lifetimes, sweep_lower_bound

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fan(k: int, size: int = 256):
    b = GraphBuilder(f"fan-{k}")
    b.input("x", 256)
    for i in range(k):
        b.node(f"n{i}", "UNARY", ["x"], b.output(f"y{i}", size), cost=1.0)
    return b.build()


def _lists(p):
    return [tuple(x) for x in p.order], [tuple(e) for e in p.events]


def test_fan_out_of_outputs_on_many_streams_is_proven_optimal():
    # was: lower bound 640,256 B of an optimal 5,120,256 B arena at 20,000 branches (x7.997, HEURISTIC); at
    # 8,000 branches 793,856 B of 2,048,256 B (the clique search's pair budget ran out)
    g = _fan(8000)
    p = memplan.plan(g, streams=8)
    assert p.streams > 1
    assert p.lower_bound_bytes == p.arena_bytes == 8000 * 256 + 256
    assert p.solver["status"] == "OPTIMAL" and p.solver["gap"] == 0


def test_outputs_no_node_touches_together_are_counted_at_the_end():
    # two outputs on two streams, each written by its own branch: no node sees both, the end does
    b = GraphBuilder("two", alignment=1)
    b.input("x", 8)
    b.node("a", "UNARY", ["x"], b.output("ya", 100))
    b.node("b", "UNARY", ["x"], b.output("yb", 300))
    g = b.build()
    sch = memplan.schedule_with_events(g, ["a", "b"], {"a": 0, "b": 1})
    hb = memplan.build_happens_before(g, sch)
    assert sweep_lower_bound(hb, compute_lifetimes(g, hb), buffer_problem(g, hb).sizes) == 408
    assert memplan.plan(g, sch).lower_bound_bytes == 408


@SETTINGS
@given(data=st.data())
def test_sweep_is_a_conflict_clique_of_the_contract(data):
    g = data.draw(graphs(), label="graph")
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    sch = memplan.schedule_with_events(g, order, stream_of)
    o, ev = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
    hb = memplan.build_happens_before(g, sch)
    lt = compute_lifetimes(g, hb)
    problem = buffer_problem(g, hb, lt)
    exact = ref.max_clique_bound(g, o, ev)
    assert sweep_lower_bound(hb, lt, problem.sizes, g.alignment) <= exact
    assert problem.lower_bound <= max(exact, ref.lower_bound(g, o, ev))
    # fusion groups: a stricter problem, whose own bound is below every plan of it
    fused = buffer_problem(g, hb, compute_lifetimes(g, hb, fused_groups=True))
    p = memplan.plan(g, sch, solver="greedy", fused_groups=True)
    assert fused.lower_bound <= p.arena_bytes
    assert p.lower_bound_bytes <= max(exact, ref.lower_bound(g, o, ev))


@SETTINGS
@given(data=st.data())
def test_reported_bound_never_exceeds_any_solvers_arena(data):
    g = data.draw(graphs(), label="graph")
    opts = data.draw(st.sampled_from([{"streams": "auto"}, {"streams": 2}, {"streams": 3}, {"devices": 2},
                                      {"devices": 2, "streams": 2}, {"fused_groups": True, "streams": 2}]))
    opts = fit_devices(g, opts)
    for solver in ("greedy", "size", "auto"):
        p = memplan.plan(g, solver=solver, **opts)     # verified by plan(): safe, so its arena is a safe plan's
        assert p.lower_bound_bytes <= p.arena_bytes, (solver, opts)
        for d in p.solver.get("per_device", ()):
            assert d["lower_bound_bytes"] <= d["arena_bytes"], (solver, opts, d)
        if p.devices == 1:   # the reference checker reads single-device plans (a split adds COPY nodes)
            assert ref.check_plan(g, p.to_dict()) == set()
            o, ev = _lists(p)
            assert p.lower_bound_bytes <= max(ref.max_clique_bound(g, o, ev), ref.lower_bound(g, o, ev))


def test_bound_is_deterministic():
    g = _fan(300)
    a = memplan.plan(g, streams="auto").to_dict()
    b = memplan.plan(g, streams="auto").to_dict()
    assert a == b


def test_sweep_sums_past_int64_exactly():
    # 40,000 tensors of 2**48 B (the largest a graph may hold) live together sum past 2**63: no silent wrap
    from memplan.lifetimes import _sweep

    w = np.full(40000, 2**48, dtype=np.int64)
    lo, hi = np.zeros(40000, dtype=np.int64), np.full(40000, 3, dtype=np.int64)
    assert _sweep(lo, hi, w, 3, [], w) == 40000 * 2**48
