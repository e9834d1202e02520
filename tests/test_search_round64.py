"""Round 64: chases below a new best (``SearchParams.chase``) and side proofs on HB-filtered problems
(``SearchParams.hb_side_proofs``).

Diagnosis (minimalloc D and J with their capacity at ``time_limit=5``, ``docs/experiments/search_s64.txt``): D's WAT tree
packs 1,048,575 alone in 6,342 units and J's TWA tree 1,044,479 in 858, but the solve tried those capacities only as
ladder rungs of 500 and 818 units a preorder, and spent 36,000 of its 60,000 units on the bound's trees at a bound 6%
below (986,112 and 989,184), which neither pack nor exhaust. A chase gives the preorder whose tree just packed a shot of
its own one below the new best, with as much work as the packing took, for as long as it packs.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minimalloc_data import challenging
from problems import least_stacked_arena
from side_proof_spy import ask_at_every_failed_child, record_side_proofs

from memplan.errors import SolverError
from memplan.problem import BufferProblem, Solution, align_up, arena_of
from memplan.solvers import SolveOptions, search, search_tree, solve
from memplan.solvers.capacity import OverCapacity
from memplan.solvers.check import check_solution
from memplan.solvers.named import default_plan
from memplan.solvers.options import SearchParams

CAP = 1048576


def _brute(p: BufferProblem) -> int:
    """The least arena of any packing of ``p`` (``problems.least_stacked_arena`` over its conflicts)."""
    n = len(p)
    return least_stacked_arena(p.sizes.tolist(), [[j for j in range(n) if j != i and p.conflicts(i, j)]
                                                  for i in range(n)], p.alignment)


def _check(p: BufferProblem, offsets, cap: int | None = None) -> None:
    off = np.asarray(offsets, dtype=np.int64)
    check_solution(p, Solution(off, arena_of(p, off), "search"))
    if cap is not None:
        assert arena_of(p, off) <= cap


# -- chase -------------------------------------------------------------------------------------------------------


def test_chase_packs_minimalloc_j_below_where_the_rounds_stopped():
    """J with its capacity at ``time_limit=5``: 1,044,480 without chases (the rung that packed it gave way to the
    bound's trees), 1,043,456 with them (TWA's shots below); the plan fits, is checked and repeats (work counts)."""
    p = challenging("J", CAP)
    on = solve(p, "search", SolveOptions(time_limit=5))
    again = solve(p, "search", SolveOptions(time_limit=5))
    off = solve(p, "search", SolveOptions(time_limit=5, search=SearchParams(chase=False)))
    check_solution(p, on)
    assert np.asarray(on.offsets, dtype=np.int64).tobytes() == np.asarray(again.offsets, dtype=np.int64).tobytes()
    assert off.arena == 1044480
    assert on.arena <= 1043456 < off.arena


def test_chase_is_not_for_fit_nor_for_a_budget_of_nodes(monkeypatch):
    """Where a packing within the capacity is all that is asked (``Objective.FIT``) the solve stops at it, and a budget
    of nodes (``auto.polish``) keeps its plans: neither chases."""
    from memplan.solvers.options import Objective

    calls = []
    monkeypatch.setattr(search._Minimiser, "chase", lambda self, k, units: calls.append(k))
    p = challenging("J", CAP)
    solve(p, "search", SolveOptions(time_limit=0.5, objective=Objective.FIT))
    start = default_plan(challenging("J"), SolveOptions())
    search.solve(challenging("J"), SolveOptions(time_limit=0.5, default_start=start), nodes=3000)
    assert calls == []
    solve(p, "search", SolveOptions(time_limit=2))
    assert calls   # (the same problem minimised under a budget of work does)


@st.composite
def _small_interval_problems(draw):
    n = draw(st.integers(2, 7))
    horizon = draw(st.integers(3, 8))
    align = draw(st.sampled_from([1, 2, 4]))
    lower = [draw(st.integers(0, horizon - 1)) for _ in range(n)]
    upper = [min(horizon, a + draw(st.integers(1, 4))) for a in lower]
    sizes = [draw(st.integers(1, 9)) for _ in range(n)]
    return BufferProblem(np.array(sizes), np.array(lower), np.array(upper), alignment=align)


_CHASED: list[int] = []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_small_interval_problems(), st.sampled_from([0.002, 0.01, 0.05]), st.integers(0, 4))
def test_a_chased_solve_proves_no_more_than_exhaustive_search(monkeypatch, problem, limit, extra):
    """Small interval problems minimised with chases, from a start of every buffer stacked above the last (over a
    capacity a few bytes above the least arena: the first try packs within it and chases): the plan is checked, its
    arena at least the least of any packing (every order of placement) and within the capacity, its bound at most that
    least, and OPTIMAL only at it; the same with chases off. (``CHASE_MIN_UNITS`` 1: a chase's shots get the work of
    the try that packed alone, so that some stop short, as on large problems.)"""
    monkeypatch.setattr(search, "CHASE_MIN_UNITS", 1)
    least = _brute(problem)
    al = problem.alignment
    tops = np.cumsum([align_up(int(x), al) for x in problem.sizes.tolist()])
    stacked = np.concatenate(([0], tops[:-1])).astype(np.int64)
    p = replace(problem, capacity=least + extra, lower_bound=1)
    start = Solution(stacked, arena_of(p, stacked), "stacked")
    for chase in (True, False):
        calls = []
        real = search._Minimiser.chase

        def counted(self, k, units, real=real, calls=calls):
            calls.append(k)
            return real(self, k, units)

        search._Minimiser.chase = counted
        try:
            opts = SolveOptions(time_limit=limit, search=SearchParams(chase=chase), default_start=start)
            sol = search.solve(p, opts, proven=1)
        except OverCapacity:
            continue
        finally:
            search._Minimiser.chase = real
        check_solution(p, sol)
        assert sol.lower_bound <= least <= sol.arena <= least + extra
        assert (sol.status.name == "OPTIMAL") <= (sol.arena == least)
        _CHASED.append(len(calls))


def test_the_chase_property_test_chased():
    """(run after the property test above: some of its solves did chase, so it tested something)"""
    if not _CHASED:
        pytest.skip("the property test did not run")
    assert sum(1 for c in _CHASED if c) > 5


def test_the_switches_are_checked():
    with pytest.raises(SolverError, match="chase"):
        SearchParams(chase=1)
    with pytest.raises(SolverError, match="hb_side_proofs"):
        SearchParams(hb_side_proofs="yes")


# -- side proofs on HB-filtered problems --------------------------------------------------------------------------


def _try(p: BufferProblem, cap: int, preorder: str, hb: bool, side_proofs: bool = True):
    budget = search_tree.WorkBudget(10**9, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(side_proofs=side_proofs, hb_side_proofs=hb), budget)
    try:
        res = s.feasible(cap, preorder, 10**6)
    except search_tree.Abort:
        res = "abort"
    return res, s


@st.composite
def _small_hb_problems(draw, most: int = 7):
    """Interval problems with some overlapping pairs made compatible (they may share bytes): HB-filtered, not interval."""
    n = draw(st.integers(3, most))
    horizon = draw(st.integers(3, 8))
    align = draw(st.sampled_from([1, 2, 4]))
    lower = [draw(st.integers(0, horizon - 1)) for _ in range(n)]
    upper = [min(horizon, a + draw(st.integers(1, 5))) for a in lower]
    lower[0], upper[0] = 0, horizon   # (one buffer overlaps every other: a compatible pair to draw)
    sizes = [draw(st.integers(1, 9)) for _ in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if lower[i] < upper[j] and lower[j] < upper[i]]
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    compatible = frozenset(pq for pq, k in zip(pairs, keep) if k) or frozenset(pairs[:1])
    return BufferProblem(np.array(sizes), np.array(lower), np.array(upper), alignment=align, compatible=compatible)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_small_hb_problems(), st.sampled_from(["WAT", "TAW", "TWA", "ZW"]), st.integers(0, 6))
def test_hb_side_proofs_prune_only_subtrees_without_a_packing(monkeypatch, problem, preorder, extra):
    """Side proofs asked at every node with a failed child (``PROBE_AFTER_NODES`` 0, no ``PROBE_SHARE``) on small
    problems with compatible pairs: a try packs the very offsets the try without side proofs packs (the first packing
    in the tree's order: only subtrees without one are cut), or none exactly where no packing fits (every order of
    placement tried), and an exhausted try's proof (``above``) holds: nothing packs below it."""
    ask_at_every_failed_child(monkeypatch)
    p = problem
    assert not p.is_interval
    least = _brute(p)
    cap = max(int(p.sizes.max()), least - 3 + extra)
    res, s = _try(p, cap, preorder, hb=True)
    assert res != "abort" and s.probe_on
    assert res == _try(p, cap, preorder, hb=False)[0]
    assert (res is not None) == (least <= cap)
    if res is not None:
        _check(p, res, cap)
    else:
        assert s.above <= least


def test_hb_side_proofs_prune_on_harder_random_problems(monkeypatch):
    """As above on 8-14 buffers with compatible pairs (too many for every order): with side proofs at every failed child
    a try packs the very offsets the try without them does, or none where it finds none, and its proof holds (the try
    without them packs nothing just below ``above``); many sides are found without a packing (so the rule was exercised, not only asked)."""
    ask_at_every_failed_child(monkeypatch)
    proven = record_side_proofs(monkeypatch)
    rng = np.random.default_rng(64)
    for _ in range(50):
        n, horizon = int(rng.integers(8, 15)), int(rng.integers(4, 10))
        lower = rng.integers(0, horizon, n)
        upper = np.maximum(np.minimum(lower + rng.integers(1, 5, n), horizon), lower + 1)
        sizes = rng.integers(1, 9, n)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if lower[i] < upper[j] and lower[j] < upper[i]]
        compatible = frozenset(pq for pq in pairs if rng.random() < 0.2) or frozenset(pairs[:1])
        p = BufferProblem(sizes, lower, upper, alignment=int(rng.choice([2, 4])), compatible=compatible)
        lb = int(search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9)).total0.max())
        for preorder in ("WAT", "TWA"):
            for cap in range(max(lb - 4, int(sizes.max())), lb + 4):
                r1, s1 = _try(p, cap, preorder, hb=True)
                r0, s0 = _try(p, cap, preorder, hb=False)
                assert r1 == r0, (sizes.tolist(), lower.tolist(), upper.tolist(), sorted(compatible), cap, preorder)
                if r1 is not None and r1 != "abort":
                    _check(p, r1, cap)
                elif r1 is None and cap < s1.above - 1 < search_tree.NO_CAPACITY:
                    # (its proof: nothing packs below ``above``; the tree without side proofs finds none just below)
                    assert _try(p, s1.above - 1, preorder, hb=False)[0] is None
    assert sum(proven) > 50


@settings(max_examples=100, deadline=None)
@given(_small_hb_problems(most=12), st.data())
def test_a_side_problem_keeps_exactly_its_buffers_conflicts(problem, data):
    """``_side_compatible``: the side problem of any run of sections (its members cut to it) has exactly the conflicts
    its members have in the problem, pair by pair (a conflict more would make its failure prove nothing)."""
    s = search_tree.PackingSearch(problem, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    if s.nsec == 0:
        return
    a = data.draw(st.integers(0, s.nsec - 1))
    z = data.draw(st.integers(a + 1, s.nsec))
    members = np.flatnonzero((s.slo_a < z) & (s.shi_a > a))
    if len(members) == 0:
        return
    lower, upper = problem.lower[members], problem.upper[members]
    if a > 0:
        lower = np.maximum(lower, s.ends[a - 1])
    upper = np.minimum(upper, s.ends[z - 1])
    compatible, _ = s._side_compatible(members, lower, upper)
    side = BufferProblem(problem.sizes[members], lower, upper, alignment=problem.alignment, compatible=compatible)
    m = members.tolist()
    for i, j in itertools.combinations(range(len(m)), 2):
        assert side.conflicts(i, j) == problem.conflicts(m[i], m[j]), (i, j, m)


def test_hb_side_proofs_are_off_by_default_and_on_when_asked():
    """Off by default (``docs/experiments/search_s64.txt``: at ``time_limit=1`` random_dag and layered_graph on 2 and 4
    streams asked 0-4 side proofs a solve and proved none); asked, an HB-filtered problem's tries ask them."""
    p = BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 2]), np.array([3, 4, 5]), compatible=frozenset({(0, 1)}))
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and not s.probe_on
    s = search_tree.PackingSearch(p, SearchParams(hb_side_proofs=True), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and s.probe_on
    s = search_tree.PackingSearch(p, SearchParams(hb_side_proofs=True, side_proofs=False),
                                  search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and not s.probe_on


def test_hb_side_proofs_on_a_multi_stream_graph(monkeypatch):
    """A random DAG on 2 streams (an HB order, not compatible pairs), side proofs at every failed child: they are asked
    (dozens of sides within a try's 3,000 units), and each try that ends packs the very offsets the try without them packs (checked), or
    none where that finds none."""
    from memplan.benchmarks import scale
    from memplan.lifetimes import buffer_problem
    from memplan.optimize import graph_optimize
    from memplan.schedule import build_happens_before

    ask_at_every_failed_child(monkeypatch)
    g = scale.random_dag(80, seed=0)
    p = buffer_problem(g, build_happens_before(g, graph_optimize(g, 2)))
    assert p.order is not None and not p.is_interval
    lb = max(int(search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9)).total0.max()),
             int(p.sizes.max()))
    asked = 0
    for cap in (lb, lb + 3 * 8192, lb + 10 * 8192):
        budget = search_tree.WorkBudget(10**9, 1e9)
        s1 = search_tree.PackingSearch(p, SearchParams(hb_side_proofs=True), budget)
        try:
            r1 = s1.feasible(cap, "TWA", 3000)
        except search_tree.Abort:
            r1 = "abort"
        asked += s1.side_proofs
        budget = search_tree.WorkBudget(10**9, 1e9)
        try:
            r0 = search_tree.PackingSearch(p, SearchParams(), budget).feasible(cap, "TWA", 3000)
        except search_tree.Abort:
            r0 = "abort"
        if "abort" not in (r0, r1):
            assert r1 == r0
        if r1 not in (None, "abort"):
            _check(p, r1, cap)
    assert asked > 20
