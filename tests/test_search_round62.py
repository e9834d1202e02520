"""Round 62: where nothing fits the capacity yet, the tree furthest into a packing gets more of the work
(``SearchParams.focus``, ``search._round_robin``'s ``focus``).

Each test failed before its change: the three preorders' trees took 256-node turns in strict rotation, so minimalloc B
at its capacity (= its bound, 1,048,576) never packed: its TAW tree needs 28,440 units and had a third of the budget.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
from minimalloc_data import challenging

from memplan.errors import SolverError
from memplan.problem import BufferProblem, Solution, Status, arena_of
from memplan.solvers import SolveOptions, search, search_tree, solve
from memplan.solvers.capacity import OverCapacity
from memplan.solvers.check import check_solution
from memplan.solvers.options import SearchParams

CAP = 1048576


def _minimalloc(name: str, capacity: int | None = None) -> BufferProblem:
    return challenging(name, capacity)


class _Tree:
    """A stand-in for a ``PackingSearch``: each turn searches 256 nodes and has placed ``area`` at most; it packs once
    it has searched ``packs_at`` nodes."""

    def __init__(self, name: str, area: int, log: list[str], packs_at: int | None = None):
        self.name, self.area, self.log, self.packs_at = name, area, log, packs_at
        self.nodes = 100   # (nodes of earlier tries: the focus counts this try's alone)
        self.packed_area = 0

    def feasible_steps(self, cap, key, limit):
        start = self.nodes
        while True:
            self.nodes += 256
            self.packed_area = self.area
            self.log.append(self.name)
            if self.packs_at is not None and self.nodes - start >= self.packs_at:
                return [0]
            yield


def test_the_tree_furthest_into_a_packing_takes_more_turns_once_each_searched_the_focus_nodes():
    log: list[str] = []
    trees = [_Tree("a", 1, log), _Tree("b", 5, log, packs_at=256 * 9), _Tree("c", 3, log)]
    res = search._round_robin(trees, ("WAT", "TAW", "TWA"), CAP, None, focus=512)
    assert res == [0]
    turns = search.FOCUS_TURNS
    # two rounds side by side (512 nodes each), then b (the most area placed) takes FOCUS_TURNS turns to one each
    assert log == ["a", "b", "c"] * 2 + ["a"] + ["b"] * turns + ["c"] + ["a"] + ["b"] * 3
    log.clear()
    trees = [_Tree("a", 1, log), _Tree("b", 5, log, packs_at=256 * 4), _Tree("c", 3, log)]
    assert search._round_robin(trees, ("WAT", "TAW", "TWA"), CAP, None) == [0]
    assert log == ["a", "b", "c"] * 3 + ["a", "b"]   # (no focus: strict rotation, as before)


def test_a_tie_in_area_goes_to_the_first_preorder():
    log: list[str] = []
    trees = [_Tree("a", 2, log), _Tree("b", 7, log), _Tree("c", 7, log, packs_at=256 * 2)]
    search._round_robin(trees, ("WAT", "TAW", "TWA"), CAP, None, focus=256)
    assert log == ["a", "b", "c", "a"] + ["b"] * search.FOCUS_TURNS + ["c"]


def test_placed_area_is_the_deepest_partial_packing_and_resets_each_try():
    p = _minimalloc("B")
    budget = search_tree.WorkBudget(10**9, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(), budget)
    s.feasible(2 * CAP, "WAT", 5000)
    assert s.packed_area == 0   # (kept only where asked: ``_round_robin``'s focus)
    s.track_area = True
    with pytest.raises(search_tree.Abort):
        s.feasible(CAP, "WAT", 500)
    total = sum(s.area_of)
    assert s.placed_area <= s.packed_area and 0 < s.packed_area < total
    assert s.feasible(1, "WAT", 5000) is None and s.packed_area == s.placed_area == 0   # (a new try: none placed)
    assert s.feasible(2 * CAP, "WAT", 5000) is not None   # (a packing: every buffer placed or in a part solved)
    assert s.packed_area == s.placed_area == sum(s.area_of[b] for b in s.active)


def test_minimalloc_b_packs_its_capacity_within_a_budget_where_side_by_side_trees_do_not():
    """minimalloc B at its capacity 1,048,576 (its bound): TAW's tree packs it in 28,440 units, and its placed area
    leads the other two from its first nodes (0.42 of the problem's against 0.26). Side by side, TAW had ~15,000 of 52,000 units
    (its nodes the cheapest: equal turns of 256 nodes) and nothing packed; focused, TAW packs it (as ``time_limit=5``'s 60,000 units do)."""
    p = _minimalloc("B")
    out = {}
    for focus in (True, False):
        budget = search_tree.WorkBudget(52_000, 1e9)
        # (without round 63's side proofs, which pack TAW's tree in 2,394 units either way)
        s = search_tree.PackingSearch(p, SearchParams(side_proofs=False), budget)
        trees = [s] + [copy.copy(s) for _ in range(2)]
        after = search.FOCUS_AFTER_DESCENTS * (s.n + 1) if focus else None
        out[focus] = search._round_robin(trees, SearchParams().preorders, CAP, None, after)
    assert out[False] is search._Stop.OUT_OF_WORK
    res = out[True]
    assert isinstance(res, list)
    off = np.asarray(res, dtype=np.int64)
    check_solution(p, Solution(off, arena_of(p, off), "search"))
    assert arena_of(p, off) <= CAP


def _digest(sol: Solution) -> str:
    return hashlib.sha1(np.asarray(sol.offsets, dtype=np.int64).tobytes()).hexdigest()


def test_a_focused_solve_packs_where_side_by_side_did_not_and_repeats():
    """minimalloc A with its capacity 1,048,576 at ``time_limit=2`` (24,000 units): the start (1,075,200) does not
    fit; TWA's tree packs it in 7,342 units and leads in area placed once the trees have searched the focus's 930 nodes
    each. Side by side (strict rotation) it had ~6,400 units: nothing fit (``OverCapacity``); focused, the plan is
    optimal. Either way the same options give the same offsets every time (counts decide, never the clock)."""
    p = _minimalloc("A", CAP)
    runs = set()
    for _ in range(2):
        sol = solve(p, "search", SolveOptions(time_limit=2))
        check_solution(p, sol)
        assert sol.arena == CAP and sol.status == Status.OPTIMAL
        runs.add(_digest(sol))
    assert len(runs) == 1
    for _ in range(2):
        with pytest.raises(OverCapacity, match=r"search: no packing within capacity 1048576 found"):
            solve(p, "search", SolveOptions(time_limit=2, search=SearchParams(focus=False)))


def test_focus_is_a_switch():
    with pytest.raises(SolverError, match="focus"):
        SearchParams(focus=1)
