"""Round 30 (solvers): every solver's claims on random graphs and schedules against an exhaustive optimum.

The optimum is found without memplan's planner: the conflict relation is the brute-force reading of CONTRACT.md
(``reference.may_overlap``) and ``oracle.least_first_fit`` packs the roots first-fit in every order (some order of a
pushed-down optimal packing is first-fit). Against it: the plan's ``lower_bound_bytes`` and the solver block's
``bound`` never pass the optimum, an OPTIMAL plan is the optimum, and the reported gap is the arena's distance to
the reported bound."""

from __future__ import annotations

import os

import reference as ref
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracle import least_first_fit
from strategies import graphs, schedules

import memplan

SCALE = int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1"))
SETTINGS = settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: the solvers and options a plan may use: heuristics, and the exact ones with a small work budget
RUNS = [("greedy", {}), ("size", {}), ("auto", {}), ("search", {"time_limit": 0.2}), ("auto", {"time_limit": 0.2})]
#: least_first_fit tries every order of the roots: at most this many
MAX_ROOTS = 7


def contract_optimum(graph: memplan.Graph, order: list[tuple[str, int]], events: list[tuple[str, str]]) -> int:
    """The smallest arena of any safe plan of this schedule, by the contract alone."""
    hb = ref.happens_before(order, events)
    acc = ref.accesses(graph)
    size = {t.id: t.size for t in graph.tensors}
    roots = [r for r in ref.arena_roots(graph) if size[r] > 0]
    apart = {(a, b) for a in roots for b in roots if a != b and not ref.may_overlap(graph, hb, acc, a, b)}
    return least_first_fit({r: size[r] for r in roots}, apart, graph.alignment)


def _assert_claims(p: memplan.Plan, optimum: int, what) -> None:
    block = p.solver
    assert p.lower_bound_bytes <= optimum <= p.arena_bytes, (what, p.lower_bound_bytes, optimum, p.arena_bytes)
    if "bound" in block:
        assert block["bound"] <= optimum, (what, block, optimum)
    if block["status"] == "OPTIMAL":
        assert p.arena_bytes == optimum, (what, block, optimum)
        assert block["gap"] == 0, (what, block)
    bound = block.get("bound", p.lower_bound_bytes)
    assert block["gap"] == round((p.arena_bytes - bound) / max(p.arena_bytes, 1), 6) or (
        p.arena_bytes <= bound and block["gap"] == 0), (what, block)
    if block["status"] == "FEASIBLE":   # an exact solver's claim: a proven bound below its arena
        assert bound < p.arena_bytes, (what, block)


@SETTINGS
@given(st.data())
def test_every_solver_claim_holds_against_the_exhaustive_optimum(data):
    g = data.draw(graphs(max_nodes=6), label="graph")
    assume(len([r for r in ref.arena_roots(g) if next(t for t in g.tensors if t.id == r).size > 0]) <= MAX_ROOTS)
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    sch = memplan.schedule_with_events(g, order, stream_of)
    o, ev = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
    optimum = contract_optimum(g, o, ev)
    runs = RUNS + ([("ggml", {})] if sch.num_streams == 1 else [])
    for solver, opts in runs:
        p = memplan.plan(g, sch, solver=solver, **opts)
        _assert_claims(p, optimum, (solver, opts))


@SETTINGS
@given(st.data())
def test_streams_auto_and_budget_claims_hold_against_the_exhaustive_optimum(data):
    """The same claims on the schedules ``plan`` picks itself (``streams``, a memory budget): each plan's bound and
    status refer to the schedule it returns."""
    g = data.draw(graphs(max_nodes=6), label="graph")
    assume(len([r for r in ref.arena_roots(g) if next(t for t in g.tensors if t.id == r).size > 0]) <= MAX_ROOTS)
    solver, opts = data.draw(st.sampled_from(RUNS), label="solver")
    serial = memplan.plan(g, solver=solver, **opts).arena_bytes   # (a budget the serial plan meets is met)
    budget = data.draw(st.sampled_from([None, serial, serial + serial // 4]), label="budget")
    streams = data.draw(st.sampled_from(["auto", 2, 3]), label="streams")
    p = memplan.plan(g, solver=solver, streams=streams, memory_budget=budget, **opts)
    optimum = contract_optimum(g, list(p.order), list(p.events))
    _assert_claims(p, optimum, (solver, opts, streams, budget))
    if budget is not None:
        assert p.arena_bytes <= budget
