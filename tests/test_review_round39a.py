"""Review of round 39's merged changes (review39a).

- cpsat's wall-clock safety stop is ``_run``'s own since solver39, and a solve it fired on was marked
  ``stopped: wall_clock`` whatever its status: a component CP-SAT had proven OPTIMAL (its optimum found and closed as
  the deadline passed: a progress consumer slow on that last solution, a loaded machine) was marked cut, a plan
  "that may not repeat", and ``_whole_over`` then took no verdict from it. A proven answer is the one an unstopped
  run gives, so it is not marked (as before solver39).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from memplan.problem import BufferProblem, Status
from memplan.solvers import SolveOptions, cpsat, get_solver, solve

pytest.importorskip("ortools")

#: eight buffers over time; greedy packs them in 144 B, size in 152 B; CP-SAT finds and proves 112 B at once
FIRST_FIT_MISSES = BufferProblem(np.array([48, 40, 8, 8, 56, 56, 56, 40]), np.array([2, 3, 4, 5, 0, 0, 4, 5]),
                                 np.array([3, 5, 8, 7, 2, 4, 6, 7]), alignment=8)


def test_a_finished_solve_is_not_marked_cut_by_the_clock():
    reason = cpsat.stop_reason
    assert reason(finished=True, interrupted=False, deterministic_time=0.01, budget=0.15, wall_fired=True) is None
    assert reason(finished=False, interrupted=False, deterministic_time=0.2, budget=0.15, wall_fired=True) == \
        "wall_clock"


def test_an_optimum_proven_as_the_deadline_passes_is_not_marked_stopped():
    """The progress consumer takes 0.8 s over the optimal solution's message, past the 0.3 s wall limit; CP-SAT has
    proven that solution optimal by then (its bound is the problem's), and the plan is the unstopped one."""
    p = FIRST_FIT_MISSES
    pair = (solve(p, "greedy"), solve(p, "size"))
    assert min(s.arena for s in pair) > p.lower_bound == 112
    said: list[str] = []

    def slow(msg: str) -> None:
        said.append(msg)
        if "best arena 112," in msg:
            time.sleep(0.8)

    sol = get_solver("cpsat")(p, SolveOptions(time_limit=1.0, wall_limit=0.3, progress=slow), heuristics=pair)
    unstopped = get_solver("cpsat")(p, SolveOptions(time_limit=1.0), heuristics=pair)
    assert sol.status == Status.OPTIMAL and sol.arena == 112, sol.info
    assert "stopped" not in sol.info, sol.info
    assert not any("wall-clock safety stop" in m for m in said), said
    assert sol.offsets.tolist() == unstopped.offsets.tolist()
