"""The search's randomised restarts: seeded, sound, and a proof when they exhaust the tree.

The minimise loop itself is covered against exhaustive enumeration in test_cpsat.py; these tests
drive the restart step directly, where its outcomes are exact (no node limit is hit).
"""

from __future__ import annotations

import copy
import math
import random

from problems import random_intervals

from memplan.problem import BufferProblem, find_collision
from memplan.solvers import SolveOptions, get_solver
from memplan.solvers.options import SearchParams
from memplan.solvers.search import _Minimiser
from memplan.solvers.search_tree import PackingSearch, WorkBudget


def interval_problem(seed: int, n: int = 40) -> BufferProblem:
    return random_intervals(seed, n, horizon=60, max_size=9, unit=4, max_length=15)


def new_minimiser(p: BufferProblem, seed: int, proven: int | None = None) -> _Minimiser:
    start = get_solver("greedy")(p, SolveOptions())
    params = SearchParams()
    s = PackingSearch(p, params, WorkBudget(1 << 62, math.inf))
    searches = [s] + [copy.copy(s) for _ in params.preorders[1:]]
    bound = p.lower_bound if proven is None else proven
    return _Minimiser(searches, p, params, random.Random(seed), bound, start.arena, start.offsets)


def run_restarts(p: BufferProblem, seed: int, count: int = 6) -> list[int]:
    m = new_minimiser(p, seed)
    arenas = []
    for _ in range(count):
        if m.done():
            break
        assert m.restart(10**7)  # no deadline: every restart completes
        assert m.searches[0].noise is None  # the perturbation never leaks into the next try
        assert find_collision(p, m.best_off) is None
        arenas.append(m.best)
    assert arenas and arenas == sorted(arenas, reverse=True)
    return arenas + m.best_off.tolist()


def test_restarts_are_seeded_and_sound():
    for seed in (1, 2, 5, 6):  # problems where greedy is above the load bound
        p = interval_problem(seed)
        assert new_minimiser(p, 0).best > p.lower_bound
        assert run_restarts(p, seed=7) == run_restarts(p, seed=7)


def test_an_exhausted_restart_proves_the_best_arena_optimal():
    # at time 4 buffers 0, 1, 2 and 4 are live: 9 is both the load bound and reachable
    p = BufferProblem(sizes=[3, 2, 2, 4, 2], lower=[3, 4, 3, 1, 2], upper=[6, 5, 5, 3, 5])
    m = new_minimiser(p, seed=0, proven=1)  # a deliberately weak bound: only the restarts can lift it
    assert m.best > 9
    while not m.done():
        assert m.restart(10**7)
    assert m.best == 9 and m.proven == 9
    assert find_collision(p, m.best_off) is None


def test_minimise_reaches_the_bound_greedy_misses():
    for seed in (1, 2, 5, 6):
        p = interval_problem(seed)
        sol = get_solver("search")(p, SolveOptions(time_limit=20, seed=3))
        assert find_collision(p, sol.offsets) is None
        assert sol.status == "OPTIMAL" and sol.arena == sol.lower_bound == p.lower_bound
