"""Hostile input, round 23b: the library API from Python.

A warm start that claims a bound, bad arguments to the show/viz helpers, cost hooks that raise, the ONNX
importer's library wording, and more devices than a graph has nodes. Each test names the input, what
memplan did with it, and what it does now.
"""

from __future__ import annotations

import pytest

import memplan

#: greedy and size both pack these six buffers in 288 bytes; the optimum (and the interval bound) is 272
_SIX = dict(sizes=[112, 48, 112, 80, 80, 48], lower=[4, 1, 5, 1, 2, 3], upper=[7, 4, 8, 2, 5, 6])


@pytest.mark.parametrize("solver", ["search", "cpsat", "auto"])
def test_a_warm_starts_claimed_bound_is_never_trusted(solver):
    """``SolveOptions(warm_start=s)`` with ``s.info["bound"]`` far above the optimum: search and cpsat took the
    claim as proven, stopped at once and called greedy's 288-byte packing OPTIMAL (cpsat reported a bound of
    10**9, above its own arena). The status and bound now rest on what the library proved: the 272 packing."""
    if solver == "cpsat":
        from needs import need

        need("ortools")
    from memplan import BufferProblem, Solution
    from memplan.solvers import SolveOptions, Status, solve
    from memplan.solvers.greedy import solve as greedy

    p = BufferProblem(**_SIX)
    g = greedy(p, SolveOptions())
    assert g.arena == 288 and p.lower_bound == 272
    lie = Solution(g.offsets, g.arena, "mine", Status.OPTIMAL, 10 ** 9, {"bound": 10 ** 9, "gap": 0.0})
    sol = solve(p, solver, SolveOptions(time_limit=1, warm_start=lie))
    assert sol.lower_bound <= 272 and sol.info["bound"] <= 272
    assert sol.status != Status.OPTIMAL or sol.arena == 272
    assert sol.arena == 272   # (the exact solvers find it well within their budget)
