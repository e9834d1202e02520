"""Round 78 (solve78): the solvers' time limits, bounds and claims against counted work and brute-force optima.

Why: a solver's ``time_limit`` is a deterministic work budget for the whole solve (``SolveOptions``), and the checks
here count that work rather than time it, so they hold on any machine and load.
"""

from __future__ import annotations

import numpy as np

from memplan.problem import BufferProblem
from memplan.solvers import SearchParams, SolveOptions, search, solve

# 18 buffers (alignment 8) with 15 in-place pairs: the search's plan at ``time_limit=0.01`` overlaps pairs off their
# inputs where no move puts them right, so ``solvers._solve`` solves the problem again with those pairs apart
INPLACE_RESOLVED = dict(
    sizes=[3, 3, 0, 5, 1, 0, 100, 100, 1, 5, 64, 5, 3, 3, 100, 64, 100, 256],
    lower=[4, 2, 4, 3, 2, 5, 0, 1, 3, 1, 3, 6, 3, 5, 2, 1, 2, 6],
    upper=[8, 6, 9, 5, 4, 7, 4, 4, 8, 5, 8, 6, 5, 7, 4, 6, 4, 8],
    inplace=((1, 0), (13, 1), (10, 4), (12, 4), (15, 4), (4, 16), (5, 11), (6, 10), (16, 6), (7, 8), (10, 7),
             (16, 7), (10, 12), (15, 12), (17, 13)),
)


def _inplace_problem(spec: dict) -> BufferProblem:
    return BufferProblem(sizes=np.array(spec["sizes"]), lower=np.array(spec["lower"]), upper=np.array(spec["upper"]),
                         alignment=8, inplace=spec["inplace"],
                         compatible=frozenset((min(p), max(p)) for p in spec["inplace"]))


def _spy_search_work(monkeypatch) -> list[int]:
    """The work units (``info["work"]``) of every search run under a budget of work from now on (``auto.polish``'s
    node budgets, which a time limit does not change, are left out)."""
    works: list[int] = []
    real = search.solve

    def spy(*args, **kwargs):
        sol = real(*args, **kwargs)
        if kwargs.get("nodes") is None:
            works.append(int(sol.info.get("work", 0)))
        return sol

    monkeypatch.setattr(search, "solve", spy)
    return works


def test_search_solved_again_with_in_place_pairs_apart_keeps_one_time_limit(monkeypatch):
    """``solve(p, "search", time_limit=0.01)`` (120 work units) spent 240: the round that solved the problem again
    with the shifted pairs apart got the whole limit again (a limit per round). The rounds share the one limit now,
    and the plan is still a checked packing with every in-place pair exact or apart."""
    p = _inplace_problem(INPLACE_RESOLVED)
    limit = 0.01
    budget = int(limit * SearchParams().nodes_per_second)
    works = _spy_search_work(monkeypatch)
    sol = solve(p, "search", SolveOptions(time_limit=limit))
    assert len(works) >= 1 and sum(works) <= budget, (works, budget)
    assert sol.arena >= int(p.lower_bound or 0)
    from memplan.solvers.exact_pairs import shifted_pairs
    assert shifted_pairs(p, sol.offsets) == []
