"""Round 54: under a budget of work the search's per-try limits are work too (``search_tree.TRY_NS_PER_NODE``), the
first tries capped at shares of the budget (``search.TRY_SHARES``) but never below one descent."""
import os

import numpy as np

from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, search, solve


def _random_intervals(n: int) -> BufferProblem:
    """``n`` short-lived buffers whose heuristic arena stays above the bound (the search builds its tree)."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def test_minimalloc_a_gets_more_tries(minimalloc_dir, monkeypatch, polish_limit_64, no_skyline):
    """minimalloc A at ``time_limit=1``: two tries at one capacity when their limits counted plain nodes (~330 us
    each: the try at the bound 3.3x its tuned share), three in work units, and one restart (``info["tries"]``)."""
    caps = []
    real = search._round_robin

    def spy(searches, preorders, cap, node_limit, focus=None):   # (``focus``: round 62)
        caps.append(cap)
        return real(searches, preorders, cap, node_limit, focus)

    resume = search.BoundTrees.resume

    def bound_spy(self, cap, units):   # (since round 60 the tries at the bound go on in ``BoundTrees``)
        caps.append(cap)
        return resume(self, cap, units)

    monkeypatch.setattr(search, "_round_robin", spy)
    monkeypatch.setattr(search.BoundTrees, "resume", bound_spy)
    p = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    s = solve(p, "search", SolveOptions(time_limit=1))
    assert len(caps) > 2 and s.info["tries"] > len(caps)


def test_a_large_problem_keeps_its_one_long_try():
    """3,000 buffers at ``time_limit=2``: one descent costs ~12,000 units (3,048 nodes, ~400 us each), half the budget;
    capped at a quarter of it the try at the bound stopped short (arena 23,570,944 for 22,198,528); floored at one
    descent (``search.descent_units``), it finds the bound as before."""
    s = solve(_random_intervals(3000), "search", SolveOptions(time_limit=2))
    assert s.arena == s.lower_bound == 22198528


def test_a_small_budget_still_gets_one_whole_descent():
    """``wide_graph(40)``'s fastest schedule under a memory budget (82 buffers, ``time_limit`` 1/90): capped at a
    quarter of that budget, the try at the bound stopped before placing every buffer and the plan fell back to a
    slower schedule; floored at one descent, the bound is found (as before the caps)."""
    import memplan
    from memplan.benchmarks.scale import wide_graph

    g = wide_graph(40)
    budget = memplan.plan(g, streams="auto", solver="search", time_limit=1).arena_bytes
    free = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    assert free.arena_bytes == budget and free.solver["schedule"]["candidate"] == "list-eft-k8"


def test_tries_in_work_units_repeat_exactly_and_pack_minimalloc_a_tighter(minimalloc_dir):
    """minimalloc A at ``time_limit=1``: arena 1,352,704 when the tries counted plain nodes (each a 3.3x larger share
    of the budget than tuned, at ~330 us a node: one try at the bound and one rung); in work units four tries, arena
    1,169,408 (1,183,744 since round 59: cheaper try starts and preorders move where its tries stop,
    ``docs/experiments/search_s59.txt``). Counted in estimated work, never the clock: the same solve twice is the same
    plan."""
    p = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    a, b = (solve(p, "search", SolveOptions(time_limit=1)) for _ in range(2))
    assert a.arena <= 1183744 and a.info["tries"] > 2
    assert a.offsets.tolist() == b.offsets.tolist() and a.info == b.info
