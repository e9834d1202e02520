"""Round 79 (solve79): the solvers' one time limit across re-solve rounds, their option warnings, and their claims
(status, bound, gap) against brute-force optima and the published minimalloc results.

Why: a ``time_limit`` is one deterministic work budget for the whole solve (``SolveOptions``), whatever the solve
does inside it, and a solver never ignores an option in silence (docs/format.md). The checks count the work the
solvers report, never the clock, so they hold on any machine and load.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_solve78_round78 import INPLACE_RESOLVED, _inplace_problem

from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, solve


def test_cpsat_solved_again_with_in_place_pairs_apart_keeps_one_time_limit(monkeypatch):
    """``solve(p, "cpsat", time_limit=0.1)`` of 18 buffers with 15 in-place pairs solves twice (its first plan shifts
    pairs no move puts right): the first round spent 0.018 s of the limit and the second got 0.1 s again. The second
    round's limit is now what the first left, so the work handed out never exceeds the one limit."""
    pytest.importorskip("ortools")
    from memplan.solvers import cpsat

    handed: list[tuple[float, float]] = []   # (each round's time limit, what its components' work spent of it)
    real = cpsat.solve

    def spy(problem, options, **kwargs):
        sol = real(problem, options, **kwargs)
        handed.append((options.time_limit, cpsat.spent_seconds(sol)))
        return sol

    monkeypatch.setattr(cpsat, "solve", spy)
    limit = 0.1
    sol = solve(_inplace_problem(INPLACE_RESOLVED), "cpsat", SolveOptions(time_limit=limit))
    assert len(handed) == 2, handed
    (first, used), (second, then) = handed
    assert first == limit and 0 < used < limit
    assert second == pytest.approx(limit - used), handed
    assert sol.info["spent"] == pytest.approx(used + then)   # (the plan's ``spent``: both rounds')


def test_auto_reports_the_time_limit_its_exact_solvers_spent(monkeypatch):
    """``auto`` with a time limit runs CP-SAT and the search on parts of it; ``solvers._solve`` solving the problem
    again (shifted in-place pairs apart) gave that round the whole limit again, as if auto had spent nothing. What is
    left after a round of auto is the limit less the work its exact solvers counted (CP-SAT's deterministic time,
    the search's units and setup), counted here beside it."""
    pytest.importorskip("ortools")
    from memplan.solvers import _budget_left, cpsat, search
    from memplan.solvers.search import spent_seconds

    counted: list[float] = []
    real_cpsat, real_search = cpsat.solve, search.solve

    def spy_cpsat(problem, options, **kwargs):
        sol = real_cpsat(problem, options, **kwargs)
        counted.append(cpsat.spent_seconds(sol))
        return sol

    def spy_search(problem, options, **kwargs):
        sol = real_search(problem, options, **kwargs)
        if kwargs.get("nodes") is None:   # (auto's small search of a fixed node budget is not the limit's)
            counted.append(spent_seconds(problem, options, sol))
        return sol

    monkeypatch.setattr(cpsat, "solve", spy_cpsat)
    monkeypatch.setattr(search, "solve", spy_search)
    from memplan.solvers import auto

    p = _inplace_problem(INPLACE_RESOLVED)
    options = SolveOptions(time_limit=0.3)
    sol = auto.solve(p, options)
    assert len(counted) == 2 and all(c > 0 for c in counted), counted
    left = _budget_left(p, "auto", options, sol)
    assert left is not None and left.time_limit == pytest.approx(0.3 - sum(counted)), (left, counted)


def test_cpsat_workers_at_an_alignment_it_runs_one_thread_are_warned_of():
    """CP-SAT runs one thread above an alignment of 2**30 B; ``plan`` and ``solve_table`` warn of ``workers`` there,
    while ``solvers.solve(p, "cpsat", SolveOptions(workers=4))`` of a problem aligned to 2**31 ran one thread in
    silence. It warns now (``UnusedOption``, the same words), once; at 2**30 nothing."""
    pytest.importorskip("ortools")
    from memplan.errors import UnusedOption

    for alignment, warned in ((1 << 31, True), (1 << 30, False)):
        p = BufferProblem(sizes=np.array([3, 3]), lower=np.array([0, 1]), upper=np.array([2, 3]), alignment=alignment)
        for solver in ("cpsat", "auto"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sol = solve(p, solver, SolveOptions(time_limit=1, workers=4))
            assert sol.arena == alignment + 3
            said = [str(w.message) for w in caught if issubclass(w.category, UnusedOption)]
            assert said == ([f"workers=4 has no effect on a problem of alignment {alignment}: CP-SAT runs one thread "
                             "at an alignment above 2**30 B (several gave false optima there); ignored"]
                            if warned else []), (solver, said)
            assert all(w.filename == __file__ for w in caught)
