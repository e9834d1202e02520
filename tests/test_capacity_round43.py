"""Round 43: a plan above a requested capacity is never a silent success, and ``auto``'s one wall-clock deadline
binds the exact solvers it runs from the moment it is set (not from after their own setup)."""

from __future__ import annotations

import numpy as np
import pytest

from memplan.errors import BudgetError
from memplan.problem import BufferProblem
from memplan.solvers import Objective, SolveOptions, solve

FIT = SolveOptions(objective=Objective.FIT)
HEURISTIC_SOLVERS = ("auto", "greedy", "size", "ggml")


def _three(capacity: int | None) -> BufferProblem:
    """Three buffers live together: 250 bytes is the optimum and the lower bound."""
    return BufferProblem(sizes=np.array([100, 100, 50]), lower=np.array([0, 1, 2]), upper=np.array([4, 5, 6]),
                         alignment=1, capacity=capacity)


def _gap(capacity: int | None) -> BufferProblem:
    """Greedy and size end at 200 bytes; the optimum is 180, the lower bound (the search finds it)."""
    return BufferProblem(sizes=np.array([60, 50, 10, 10, 80, 70, 80, 50]),
                         lower=np.array([4, 5, 7, 9, 0, 1, 8, 9]), upper=np.array([6, 7, 12, 12, 2, 6, 10, 12]),
                         alignment=1, capacity=capacity)


@pytest.mark.parametrize("solver", HEURISTIC_SOLVERS)
@pytest.mark.parametrize("limit", [None, 0.2])
def test_fit_below_the_optimum_raises(solver, limit):
    with pytest.raises(BudgetError, match=r"capacity 200 found \(none exists\); best arena 250, lower bound 250"):
        solve(_three(200), solver, SolveOptions(objective=Objective.FIT, time_limit=limit))


@pytest.mark.parametrize("solver", ("greedy", "size"))
def test_heuristic_miss_says_it_proves_nothing(solver):
    with pytest.raises(BudgetError, match=rf"{solver}: no packing within capacity 180 found by the {solver} "
                                          r"heuristic .*best arena 200, lower bound 180"):
        solve(_gap(180), solver, FIT)
    assert solve(_gap(180), "search", FIT).arena == 180   # a packing exists: the error said "found", not "none"


@pytest.mark.parametrize("solver", HEURISTIC_SOLVERS + ("search",))
def test_fit_at_the_optimum_still_returns(solver):
    assert solve(_three(250), solver, FIT).arena == 250


@pytest.mark.parametrize("solver", HEURISTIC_SOLVERS)
def test_minimise_with_a_capacity_unchanged(solver):
    # minimising, the capacity is the caller's to compare (documented): the smallest arena comes back
    assert solve(_three(200), solver, SolveOptions()).arena == 250

