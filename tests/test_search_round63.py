"""Round 63: side proofs (``SearchParams.side_proofs``, ``search_tree.PackingSearch._side_proof``).

A node whose child's subtree failed after ``search_tree.PROBE_AFTER_NODES`` nodes searches the sections beyond that
child's buffer apart, each buffer cut to them; a side without a packing fails the node, and every ancestor whose own
placement lies outside that side. Before (no ``side_proofs``), minimalloc E's TWA tree at its capacity 1,048,576 took
39,895 units to its packing: one buffer at 117,760 left sections 31-48 without one, and the 17,664 nodes below it
placed buffers of sections 0-30 before each refutation.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minimalloc_data import challenging
from packing_tries import check_packing, one_try
from problems import least_stacked_arena
from side_proof_spy import ask_at_every_failed_child, record_side_proofs

from memplan.errors import SolverError
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, search_tree, solve
from memplan.solvers.check import check_solution
from memplan.solvers.options import SearchParams

CAP = 1048576


@functools.cache
def _e_twa_8000():
    """minimalloc E's TWA try at its capacity with 8,000 units and side proofs (``one_try``'s result, search and units):
    made once, read by the two tests below (neither changes the search)."""
    return one_try(challenging("E"), CAP, "TWA", 8000)


def test_side_proofs_cut_minimalloc_e_to_its_packing():
    """minimalloc E at its capacity with TWA: 39,895 units without side proofs; with them the subtree under the buffer
    at 117,760 fails once its first deep refutation finds sections 31-48 without a packing, and the tree packs
    within 8,000 units (a third of ``time_limit=5``'s budget, the tree's share side by side)."""
    p = challenging("E")
    res, s, units = _e_twa_8000()
    assert res not in ("abort", None)
    check_packing(p, res, CAP)
    assert units < 8000 and s.side_proofs > 0
    off, s0, _ = one_try(p, CAP, "TWA", 8000, side_proofs=False)
    assert off == "abort" and s0.side_proofs == 0


def test_a_proof_fails_the_ancestors_whose_placement_lies_outside_its_side():
    """The side a proof names travels up: E's proofs are few (one per refuted subtree and per ancestor whose buffer lies
    in the side), the tree a seventh of its nodes without them."""
    p = challenging("E")
    res, s, _ = _e_twa_8000()
    _, s0, _ = one_try(p, CAP, "TWA", 42000, side_proofs=False)
    assert s.side_proofs < 20 and s.nodes * 5 < s0.nodes


def _brute(sizes: list[int], lower: list[int], upper: list[int], align: int) -> int:
    """The least arena of any packing of buffers alive over ``[lower, upper)`` (``problems.least_stacked_arena``)."""
    n = len(sizes)
    return least_stacked_arena(
        sizes, [[j for j in range(n) if j != i and lower[i] < upper[j] and lower[j] < upper[i]] for i in range(n)],
        align)


@st.composite
def _small_problems(draw):
    n = draw(st.integers(2, 13))
    horizon = draw(st.integers(3, 9))
    align = draw(st.sampled_from([1, 2, 4, 4]))
    lower = [draw(st.integers(0, horizon - 1)) for _ in range(n)]
    upper = [min(horizon, a + draw(st.integers(1, 4))) for a in lower]
    sizes = [draw(st.integers(1, 9)) for _ in range(n)]
    return sizes, lower, upper, align


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_small_problems(), st.sampled_from(["WAT", "TAW", "TWA", "ZW"]), st.integers(0, 6))
def test_side_proofs_prune_only_subtrees_without_a_packing(monkeypatch, problem, preorder, extra):
    """Side proofs asked at every node with a failed child (``PROBE_AFTER_NODES`` 0, no ``PROBE_SHARE``) on small
    interval problems, most aligned (most then pack nothing at their interval bound, and tries below their best search
    whole trees): a try packs the very offsets the try without side proofs packs (the first packing in the tree's
    order: only subtrees without one are cut), or none where it finds none; up to 7 buffers, exactly where some packing
    fits (every order of placement tried), and an exhausted try's proof (``above``) holds: nothing packs below it."""
    sizes, lower, upper, align = problem
    ask_at_every_failed_child(monkeypatch)
    p = BufferProblem(np.array(sizes), np.array(lower), np.array(upper), alignment=align)
    least = _brute(sizes, lower, upper, align) if len(sizes) <= 7 else None
    base = least if least is not None else int(p.lower_bound) + 2
    cap = max(max(sizes), base - 3 + extra)
    res, s, _ = one_try(p, cap, preorder, 10**6)
    assert res != "abort"
    assert res == one_try(p, cap, preorder, 10**6, side_proofs=False)[0]
    if res is not None:
        check_packing(p, res, cap)
    if least is not None:
        assert (res is not None) == (least <= cap)
        if res is None:
            assert s.above <= least


def test_side_proofs_prune_on_harder_random_problems(monkeypatch):
    """As above on aligned problems of 8-16 buffers over up to 10 time steps (too many for every order; aligned, most
    have no packing at their interval bound, so the tries below their best search whole trees): with side proofs at
    every failed child, a try packs the very offsets the try without them does (the first packing in the tree's order:
    only subtrees without one are cut), or none where it finds none, and proves no more (``above``). Many
    of the proofs find their side without a packing (163 of 622 here)."""
    ask_at_every_failed_child(monkeypatch)
    proven = record_side_proofs(monkeypatch)
    rng = np.random.default_rng(5)
    for _ in range(60):
        n, horizon = int(rng.integers(8, 17)), int(rng.integers(4, 11))
        lower = rng.integers(0, horizon, n)
        upper = np.maximum(np.minimum(lower + rng.integers(1, 5, n), horizon), lower + 1)
        sizes = rng.integers(1, 9, n)
        p = BufferProblem(sizes, lower, upper, alignment=int(rng.choice([2, 4])))
        lb = int(p.lower_bound)
        for preorder in ("WAT", "TWA"):
            for cap in range(lb, lb + 6):
                r1, s1, _ = one_try(p, cap, preorder, 10**6)
                r0, s0, _ = one_try(p, cap, preorder, 10**6, side_proofs=False)
                # (a pruned subtree holds no packing, so the first packing in the tree's order is the same one)
                assert r1 == r0, (sizes.tolist(), lower.tolist(), upper.tolist(), cap, preorder)
                if r1 is not None:
                    check_packing(p, r1, cap)
                elif s0.above < search_tree.NO_CAPACITY:
                    assert s1.above <= s0.above
    assert sum(proven) > 100


def test_side_proofs_are_only_for_interval_problems_under_a_budget_of_work():
    """A side's conflicts are its cut intervals' overlaps: problems with compatible pairs (or an HB order) never ask; nor does a budget
    of nodes (``auto.polish``'s plans stay as they were), nor a repair (its kept buffers may lie above the rest), nor
    a short try."""
    p = BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 2]), np.array([3, 4, 5]), compatible=frozenset({(0, 1)}))
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and not s.probe_on
    q = BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 2]), np.array([3, 4, 5]))
    s = search_tree.PackingSearch(q, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and s.probe_on
    s = search_tree.PackingSearch(q, SearchParams(), search_tree.WorkBudget(10**6, 1e9, by_nodes=True))
    assert s.feasible(100, "WAT", 1000) is not None and not s.probe_on
    s = search_tree.PackingSearch(q, SearchParams(side_proofs=False), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(100, "WAT", 1000) is not None and not s.probe_on
    s = search_tree.PackingSearch(q, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    fixed = (np.array([0]), np.array([0]))
    assert s.feasible(100, "WAT", 1000, fixed) is not None and not s.probe_on
    # (nor a try whose limit affords fewer than two descents: the opening's shots, the ladder's first tries)
    least = search_tree.PROBE_MIN_DESCENTS * search_tree.PROBE_DESCENT_UNITS * (len(q) + 1)
    assert s.feasible(100, "WAT", least) is not None and s.probe_on
    assert s.feasible(100, "WAT", least - 1) is not None and not s.probe_on


def test_the_switch_is_checked():
    with pytest.raises(SolverError, match="side_proofs"):
        SearchParams(side_proofs=1)


def test_minimalloc_e_solves_repeatably_with_side_proofs():
    """E with its capacity at ``time_limit=2``: the plan fits the capacity and repeats (work counts, never the clock)."""
    p = challenging("E", CAP)
    runs = set()
    for _ in range(2):
        sol = solve(p, "search", SolveOptions(time_limit=2))
        check_solution(p, sol)
        assert sol.arena <= CAP
        runs.add(np.asarray(sol.offsets, dtype=np.int64).tobytes())
    assert len(runs) == 1
