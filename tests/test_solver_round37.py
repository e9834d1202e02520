"""Round 37 (solvers): the claims of optimality and gaps, against oracles written here.

The optimum of a small problem is found by brute force (``_optimum``): any packing pushed down as far as it goes
puts each buffer at the aligned top of the highest buffer below it that it conflicts with, so placing the buffers in
every order, each on the aligned top of the placed ones it conflicts with, reaches the optimum. The conflict
relation is read off the intervals by hand, not from ``BufferProblem.conflicts``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import optimal_arenas
from refusals import REFUSALS, skip_refusal
from strategies import graphs

from memplan.plan import plan_graph
from memplan.problem import BufferProblem, Solution, Status
from memplan.solvers import SolveOptions, solve

#: ten buffers at alignment 64 that greedy and size leave above the optimum (3293 and 3328 bytes) and the default's
#: small search (``auto.polish``) packs into 3284 bytes and proves optimal; the interval bound is only 3222
POLISHED = dict(sizes=[512, 512, 256, 256, 256, 256, 933, 916, 605, 512], lower=[11, 0, 6, 4, 4, 5, 5, 3, 5, 7],
                upper=[17, 2, 9, 9, 8, 11, 7, 6, 9, 12], alignment=64)
#: the exact solvers with budgets too small to prove anything themselves, and with enough to
EXACT_RUNS = [("search", 1e-4), ("search", 0.05), ("cpsat", 1e-4), ("cpsat", 0.05), ("auto", 1e-4), ("auto", 0.05)]
RUNS = [("greedy", None), ("size", None), ("ggml", None), ("auto", None), *EXACT_RUNS]


def _problem(sizes, lower, upper, alignment: int = 1, **kw) -> BufferProblem:
    return BufferProblem(np.array(sizes), np.array(lower), np.array(upper), alignment=alignment, **kw)


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def _optimum(sizes: list[int], lower: list[int], upper: list[int], alignment: int) -> int:
    """The smallest arena of any packing, by trying every order (see the module docstring)."""
    live = [i for i, s in enumerate(sizes) if s > 0 and lower[i] < upper[i]]

    def conflict(i: int, j: int) -> bool:
        return lower[i] < upper[j] and lower[j] < upper[i]

    best = max([0] + [s for s in sizes])   # (a buffer live at no time still needs its bytes somewhere)
    best_live: list[int | None] = [None]
    off: dict[int, int] = {}

    def place(top: int, last: int) -> None:
        """Every order, depth first, sharing prefixes; a prefix whose top reaches the best arena found ends every order
        that starts with it. Two buffers that do not conflict, placed one after the other, land where they would in
        the other order, so only one of the two orders is tried (the lower index first): each class of orders
        keeps its smallest member in lexicographic order, which has no such pair out of order."""
        if len(off) == len(live):
            best_live[0] = top
            return
        for i in live:
            if i in off or (last >= 0 and i < last and not conflict(i, last)):
                continue
            at = _align(max([off[j] + sizes[j] for j in off if conflict(i, j)] + [0]), alignment)
            if best_live[0] is not None and max(top, at + sizes[i]) >= best_live[0]:
                continue
            off[i] = at
            place(max(top, at + sizes[i]), i)
            del off[i]

    place(0, -1)
    return max(best, best_live[0] or 0)


def _assert_claims(sol: Solution, optimum: int, problem: BufferProblem, what) -> None:
    """What a solution says against the optimum: never below it; OPTIMAL only at it, with gap 0; every bound at most
    it; FEASIBLE only with a proven bound below the arena; the gap the arena's distance to the bound it reports."""
    bound = int(sol.info.get("bound", sol.lower_bound))
    assert sol.arena >= optimum, what
    assert int(problem.lower_bound or 0) <= optimum and sol.lower_bound <= optimum and bound <= optimum, what
    if sol.status == Status.OPTIMAL:
        assert sol.arena == optimum and sol.gap == 0, what
    if sol.status == Status.FEASIBLE:
        assert bound < sol.arena, what
    gap = sol.info.get("gap", sol.gap)
    assert round(gap, 6) == round((sol.arena - bound) / max(sol.arena, 1), 6) or (sol.arena <= bound and gap == 0), what


@st.composite
def interval_problems(draw):
    """Up to 7 buffers of random sizes (zero too) over random, possibly empty, intervals, at a random alignment."""
    n = draw(st.integers(1, 7))
    size = st.one_of(st.integers(0, 1200), st.sampled_from([256, 512, 1024]), st.integers(1, 10))
    sizes = draw(st.lists(size, min_size=n, max_size=n))
    lower = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    upper = [lo + draw(st.integers(0, 5)) for lo in lower]
    return sizes, lower, upper, draw(st.sampled_from([1, 4, 8, 64, 256]))


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(interval_problems())
def test_every_solver_claim_holds_against_the_brute_force_optimum(case):
    """Every solver, heuristic and exact with budgets too small and large enough, on interval problems: the claims
    hold against the optimum (searched with ``--hypothesis-seed=random`` for 1,000 problems: none broke)."""
    sizes, lower, upper, a = case
    p = _problem(sizes, lower, upper, a)
    optimum = _optimum(sizes, lower, upper, a)
    for name, limit in RUNS:
        _assert_claims(solve(p, name, SolveOptions(time_limit=limit)), optimum, p, (name, limit))


def test_the_brute_force_optimum_of_polished():
    """The oracle itself on ``POLISHED``: the default's arena (3284) is the optimum."""
    assert _optimum(POLISHED["sizes"], POLISHED["lower"], POLISHED["upper"], 64) == 3284


@pytest.mark.parametrize("name", ["cpsat", "search"])
def test_a_named_exact_solver_keeps_the_proof_of_the_default_it_starts_from(name):
    """``cpsat`` with a limit too short to prove anything started from the default's plan (3284 bytes, proven OPTIMAL
    by its small search) and called it FEASIBLE, gap 1.9% against the interval bound 3222: naming an exact solver
    and giving it time bought a weaker claim than naming none (26 of 72 small problems the default's search solved).
    It now takes the bound the default's own run proved (checked to fail without the fix: FEASIBLE, bound 3222)."""
    p = _problem(**POLISHED)
    default = solve(p, "auto")
    assert default.status == Status.OPTIMAL and default.arena == 3284 and "search" in default.info["tried"]
    sol = solve(p, name, SolveOptions(time_limit=1e-4))
    assert (sol.arena, sol.status, sol.lower_bound, sol.info["bound"], sol.info["gap"]) == (
        3284, Status.OPTIMAL, 3284, 3284, 0.0)


@pytest.mark.parametrize("name", ["cpsat", "search"])
@pytest.mark.parametrize("option", ["warm_start", "default_start"])
def test_a_callers_start_proves_nothing(name, option):
    """The default's proof is taken only from a default run the solver made itself: a caller's ``warm_start`` or
    ``default_start`` carrying a bound (``info["bound"]``) is a claim, and a claim above the optimum must not
    make a heuristic packing OPTIMAL. Greedy's plan of ``POLISHED`` (3293 bytes, above the optimum 3284) marked
    with its own arena as the bound."""
    p = _problem(**POLISHED)
    greedy = solve(p, "greedy")
    assert greedy.arena == 3293
    claim = replace(greedy, info={"bound": 3293})
    sol = solve(p, name, SolveOptions(time_limit=1e-4, **{option: claim}))
    assert sol.info["bound"] <= 3284 and (sol.status != Status.OPTIMAL or sol.arena == 3284)


def test_the_default_keeps_the_proof_of_its_small_search():
    """Seven buffers at alignment 8: greedy packs them in 1394 bytes, the optimum (brute force), above the interval
    bound 1388. The default's small search (``auto.polish``) proved 1394 optimal but packed nothing smaller, and its
    proof was dropped with its plan: the default said HEURISTIC, gap 0.43% against 1388 (53 of 68 small defaults that
    were not OPTIMAL had been proven so). Its bound is kept now; the plan is greedy's, as before (checked to fail
    without the fix: HEURISTIC, lower bound 1388)."""
    case = dict(sizes=[757, 512, 256, 256, 362, 512, 269], lower=[9, 12, 3, 3, 10, 5, 8], upper=[12, 14, 5, 7, 16, 8, 14])
    # (the raw interval bound 1388 given: since round 79 the problem's own bound is sharpened by alignment and is the
    # optimum 1394 here, which leaves the search nothing to prove)
    assert _problem(**case, alignment=8).lower_bound == 1394
    p = _problem(**case, alignment=8, lower_bound=1388)
    assert _optimum(case["sizes"], case["lower"], case["upper"], 8) == 1394 and p.lower_bound == 1388
    greedy = solve(p, "greedy")
    sol = solve(p, "auto")
    assert (sol.arena, sol.status, sol.lower_bound, sol.info["bound"], sol.info["gap"]) == (
        1394, Status.OPTIMAL, 1394, 1394, 0.0)
    assert sol.offsets.tolist() == greedy.offsets.tolist() and "search" not in sol.info["tried"]


#: the plan options round 30's graph test leaves out: cpsat, devices, fusion groups, memory budgets
GRAPH_RUNS = [("cpsat", {"time_limit": 1e-4}), ("cpsat", {"time_limit": 0.05}), ("search", {"time_limit": 1e-4}),
              ("auto", {"time_limit": 0.05}), ("auto", {})]


def _entries(plan) -> list[dict]:
    """Per device: its arena, bounds, status and gap as the solver block states them (one entry without devices)."""
    block = plan.solver
    if block.get("per_device"):
        return block["per_device"]
    return [{"device": 0, "arena_bytes": plan.arena_bytes, "lower_bound_bytes": plan.lower_bound_bytes,
             "status": block["status"], "gap": block["gap"], "bound": block.get("bound"),
             "fused_groups": block.get("fused_groups", {})}]


def _assert_plan_claims(planned, fused: bool, what) -> None:
    """Each device's claims against its brute-force optimum (``oracle.optimal_arenas``, under the plan's own schedule;
    with ``fused`` the stricter fused-group problem, which the status and the solver's bound refer to, while
    ``lower_bound_bytes`` bounds the plain one); a one-device plan's bound never above the heaviest clique."""
    g, p = planned.graph, planned.plan
    strict = optimal_arenas(g.to_dict(), p.to_dict(), fused_groups=fused)
    plain = optimal_arenas(g.to_dict(), p.to_dict())
    if strict is None or plain is None:
        return
    for e in _entries(p):
        d, arena = e["device"], e["arena_bytes"]
        bound = e.get("bound")
        bound = bound if bound is not None else e.get("fused_groups", {}).get("lower_bound_bytes", e["lower_bound_bytes"])
        assert e["lower_bound_bytes"] <= plain.get(d, 0) and bound <= strict.get(d, 0) <= arena, (what, e, strict)
        if e["status"] == "OPTIMAL":
            assert arena == strict.get(d, 0) and e["gap"] == 0, (what, e, strict)
        if e["status"] == "FEASIBLE":
            assert bound < arena, (what, e)
        if "bound" in e or not p.solver.get("per_device"):
            assert e["gap"] == round((arena - bound) / max(arena, 1), 6) or (arena <= bound and e["gap"] == 0), (what, e)
    if not p.solver.get("per_device"):
        assert p.lower_bound_bytes <= ref.max_clique_bound(g, list(p.order), list(p.events)), what


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_plan_claims_with_cpsat_devices_fusion_and_budgets(data):
    """Random graphs of up to 7 nodes (views, in-place pairs, fusion groups) planned by the exact solvers with tiny and
    small budgets, on streams, devices and memory budgets: every device's claims hold against its brute-force optimum
    (searched with ``--hypothesis-seed=random`` for 600 graphs: none broke)."""
    g = data.draw(graphs(max_nodes=7), label="graph")
    solver, opts = data.draw(st.sampled_from(GRAPH_RUNS), label="solver")
    fused = data.draw(st.booleans(), label="fused")
    devices = data.draw(st.sampled_from([None, 2, 3]), label="devices")
    streams = data.draw(st.sampled_from([None, "auto", 2, 3]), label="streams")
    budget = None
    if devices is None:
        serial = plan_graph(g, solver=solver, **opts).plan.arena_bytes
        budget = data.draw(st.sampled_from([None, serial, serial * 9 // 10]), label="budget")
    try:
        planned = plan_graph(g, solver=solver, fused_groups=fused, devices=devices, streams=streams,
                             memory_budget=budget, **opts)
    except REFUSALS as exc:   # (a device with nothing to run, a budget nothing meets: refusals, not claims)
        skip_refusal(exc)
        return
    _assert_plan_claims(planned, fused, (solver, opts, fused, devices, streams, budget))
