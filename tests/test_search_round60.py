"""Round 60: the search's tries at the bound go on across rounds (``search.BoundTrees``), and its work budget is never
taken past what it had (``search_tree.WorkBudget.taken``, ``info["work"]``).

Each test failed before its change (``BoundTrees``, ``WorkBudget.taken`` and ``info["work"]`` did not exist; minimalloc
H at ``time_limit=5`` ended at 1,135,616 for its bound 1,048,576).
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from minimalloc_data import challenging
from problems import exhaustive as _exhaustive

from memplan.problem import BufferProblem, Solution, arena_of
from memplan.solvers import SolveOptions, search, search_tree, solve
from memplan.solvers.check import check_solution
from memplan.solvers.options import SearchParams


def _solve(p: BufferProblem, limit: float) -> Solution:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return solve(p, "search", SolveOptions(time_limit=limit))


def _intervals(n: int, seed: int) -> BufferProblem:
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 10, n) * 16, lower, lower + rng.integers(1, 40, n), alignment=16)


def test_a_charge_larger_than_what_is_left_takes_only_what_is_left():
    """A step charged before its work (a repair's ``REPAIR_PER_*``, 445 units with 98 left) took its whole charge: the
    solve read 6,347 units of a 6,000-unit budget. Now the budget takes what it has and stops the solve."""
    ns = search_tree.WORK_NS_PER_UNIT
    b = search_tree.WorkBudget(100, 1e9)
    b.spend(60 * ns)
    assert b.taken == 60 * ns
    with pytest.raises(search_tree.OutOfWork):
        b.spend(445 * ns)
    assert b.taken == 100 * ns and b.exhausted()
    with pytest.raises(search_tree.OutOfWork):
        b.spend(ns)
    assert b.taken == 100 * ns


@pytest.mark.parametrize("limit", [0.05, 0.3])
def test_a_solve_reports_its_work_within_its_budget(limit):
    """``info["work"]``: the units the solve's budget took (deterministic), never above ``time_limit`` of them."""
    p = _intervals(300, 1)
    s = _solve(p, limit)
    cap = int(limit * SearchParams().nodes_per_second)
    assert 0 < s.info["work"] <= cap
    assert _solve(p, limit).info["work"] == s.info["work"]


def test_a_repair_run_out_of_work_stays_within_its_budget(monkeypatch, no_skyline):
    """The repairs of a large problem (``search_repair``) charge ``pushed_down`` and ``free_part`` before they run; where
    that charge is more than the budget has left, the budget's work is still at most its cap. (``no_skyline``: its
    walks start this problem at its bound, where no repair runs.)"""
    monkeypatch.setattr(search, "REPAIR_PER_BUFFER", 10**6)   # (a repair's charge: more than the budget)
    calls = [0]
    repair = search._Minimiser.repair

    def counted(self, free, node_limit):
        calls[0] += 1
        return repair(self, free, node_limit)
    monkeypatch.setattr(search._Minimiser, "repair", counted)
    p = _intervals(2100, 3)
    s = _solve(p, 0.2)
    assert calls[0] > 0
    assert s.info["work"] <= int(0.2 * SearchParams().nodes_per_second)
    check_solution(p, s)


def _minimalloc(name: str) -> BufferProblem:
    return challenging(name)


def test_a_tree_resumed_in_turns_finds_what_one_long_try_finds():
    """``BoundTrees`` runs each preorder's tree in turns of ``BOUND_SLICE_UNITS`` and goes on where a round stopped:
    minimalloc J at 1,048,576 with TWA, resumed 40 units at a time, packs exactly what one try of that tree does."""
    p = _minimalloc("J")
    params = SearchParams(preorders=("TWA",))
    one = search_tree.PackingSearch(p, params, search_tree.WorkBudget(10**6, 1e9))
    want = one.feasible(1048576, "TWA", 10**6)
    assert want is not None
    trees = search.BoundTrees([search_tree.PackingSearch(p, params, search_tree.WorkBudget(10**6, 1e9))])
    rounds = 0
    while True:
        rounds += 1
        res = trees.resume(1048576, 40)
        if res is not search._Stop.ABORT:
            break
    assert rounds > 5 and res == want
    off = np.asarray(res, dtype=np.int64)
    check_solution(p, Solution(off, arena_of(p, off), "search"))


def test_minimalloc_h_packs_its_bound_at_five_seconds():
    """H packs 1,048,576 only deep in TAW's tree (1,291 nodes, ~6,700 units); each round's try at the bound began
    again from the root with 6,000 units, and the ladder took the rest: 1,135,616 at ``time_limit=5``. The tree goes
    on now: the bound, proven optimal, the same packing on a second solve."""
    p = _minimalloc("H")
    s = _solve(p, 5)
    assert int(s.arena) == 1048576 and s.status.name == "OPTIMAL"
    check_solution(p, s)
    assert np.array_equal(_solve(p, 5).offsets, s.offsets)


def test_bounds_the_bound_trees_prove_are_true_on_tiny_problems(monkeypatch):
    """A bound ``BoundTrees`` proves (an exhausted tree: the capacity it searched plus one, or its failed tests' least
    passing capacity) is at most the exhaustive optimum, and an OPTIMAL solve packs exactly it."""
    calls, proofs = [0], [0]
    resume = search.BoundTrees.resume

    def counted(self, cap, units):
        calls[0] += 1
        res = resume(self, cap, units)
        proofs[0] += isinstance(res, search._Exhausted)
        return res

    def stacked(problem, options, heuristics):   # (a start far above the bound: the rounds must search)
        off = np.cumsum(np.r_[0, problem.sizes[:-1]]) * problem.alignment
        return Solution(off, arena_of(problem, off), "stacked")
    monkeypatch.setattr(search.BoundTrees, "resume", counted)
    monkeypatch.setattr(search, "best_start", stacked)
    for seed in range(40):
        rng = random.Random(600 + seed)
        n = rng.randint(2, 6)
        lo = [rng.randint(0, 5) for _ in range(n)]
        up = [v + rng.randint(1, 4) for v in lo]
        sz = [rng.randint(1, 9) for _ in range(n)]
        comp = frozenset((i, j) for i in range(n) for j in range(i + 1, n) if seed % 2 and rng.random() < 0.25)
        p = BufferProblem(sizes=sz, lower=lo, upper=up, compatible=comp, alignment=rng.choice((1, 4)))
        s = search.solve(p, SolveOptions(time_limit=0.2))   # (the search alone: its own proofs from the start)
        best = _exhaustive(p)
        assert s.lower_bound <= best <= s.arena, seed
        if s.status.name == "OPTIMAL":
            assert s.arena == best, seed
    assert calls[0] > 0 and proofs[0] > 0
