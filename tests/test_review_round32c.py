"""Review of round 32's ``auto.slack_on_top`` (the default solver lifting the buffer of most alignment slack to
the top): what it may cost. Its re-pack lists every conflicting pair and places every buffer again, about one more
``size`` run, to save less than one alignment; on big problems it must not run."""

from __future__ import annotations

import numpy as np
import pytest

from memplan.problem import BufferProblem
from memplan.solvers import get_solver, solve
from memplan.solvers.auto import slack_on_top
from memplan.solvers.options import SolveOptions
from memplan.solvers.size import dense_route


def many_pairs(n: int = 5000, span: int = 30, alignment: int = 256) -> BufferProblem:
    """An interval problem of ``n`` buffers, each overlapping the next ``span - 1`` (about 145,000 conflicting
    pairs, few enough per buffer that the heuristics list them), sizes off the alignment."""
    lower = np.arange(n)
    return BufferProblem(1000 + np.arange(n) % 77, lower, lower + span, alignment=alignment)


def test_slack_on_top_skips_a_problem_of_many_pairs(monkeypatch):
    """Before: the lift listed the conflict graph again and re-placed all 5,000 buffers (on 100,000 buffers and
    3 million pairs it doubled the default solve, 3 s to 6 s, and saved no byte)."""
    p = many_pairs()
    sol = get_solver("size")(p, SolveOptions())
    top = -(-sol.arena // p.alignment) * p.alignment
    # the lift's other preconditions hold: only the size of the problem may stop it
    assert dense_route(p) == "pairs" and sol.arena > int(p.lower_bound or 0)
    assert int(((-p.sizes) % p.alignment).max()) > top - sol.arena
    assert len(p.conflict_pairs()[0]) > 100_000

    def listed(*args, **kwargs):
        raise AssertionError("slack_on_top listed the conflict graph of a big problem")

    monkeypatch.setattr(BufferProblem, "conflict_csr", listed)
    assert slack_on_top(p, sol) is None


@pytest.mark.parametrize("n", [40, 400])
def test_small_problems_still_get_the_lift_and_a_safe_plan(n):
    """Below the cut the lift still runs: the default plan is never above the best heuristic's, and checked."""
    p = many_pairs(n, span=6)
    best = min(get_solver(name)(p, SolveOptions()).arena for name in ("greedy", "size"))
    assert solve(p, "auto").arena <= best
