"""The default: every fast heuristic, keep the smallest arena (ties go to the first listed)."""

from __future__ import annotations

from ..problem import BufferProblem, Solution
from .options import SolveOptions

HEURISTICS = ("greedy", "size")


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    from . import get_solver

    best: Solution | None = None
    tried = {}
    for name in HEURISTICS:
        sol = get_solver(name)(problem, options)
        tried[name] = sol.arena
        if best is None or sol.arena < best.arena:
            best = sol
    assert best is not None
    status = "OPTIMAL" if best.arena <= (problem.lower_bound or 0) else best.status
    return Solution(best.offsets, best.arena, best.solver, status, best.lower_bound,
                    {**best.info, "tried": tried})
