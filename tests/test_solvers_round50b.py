"""Round 50b: CP-SAT with many ``workers`` at a short ``time_limit`` stops before any solution; the plan must say
it kept the heuristic start (``unsolved_components``) and warn, not pass as a CP-SAT plan."""
import os
import warnings

import pytest

from memplan.errors import UnusedOption
from memplan.io import minimalloc as mm
from memplan.problem import Status
from memplan.solvers import solve
from memplan.solvers.options import SolveOptions

pytest.importorskip("ortools")

A = os.path.join(os.path.dirname(__file__), "data", "minimalloc", "challenging", "A.1048576.csv")   # (bundled)


def _problem():
    return mm.read_csv(A).problem()


@pytest.mark.parametrize("workers", [256, 1024])
def test_many_workers_short_limit_say_heuristic_start(workers):
    p = _problem()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        # (round 58: a wall-clock stop no load reaches: the test reads the work budget, not the clock)
        s = solve(p, "cpsat", SolveOptions(time_limit=0.05, workers=workers, wall_limit=600.0))
    assert s.status == Status.FEASIBLE and s.info["gap"] > 0
    # (round 57: the one worker searches first, ``cpsat.PORTFOLIO``: the plan is its plan, and the workers that added
    # nothing are counted and warned of as before)
    assert "unsolved_components" not in s.info and s.info.get("idle_worker_components") == 1
    assert s.arena <= solve(p, "cpsat", SolveOptions(time_limit=0.05)).arena
    msgs = [w for w in ws if issubclass(w.category, UnusedOption)]
    assert msgs and f"workers={workers}" in str(msgs[0].message) and "one-worker plan" in str(msgs[0].message)


def test_four_workers_unchanged():
    p = _problem()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        # (round 58: a wall-clock stop no load reaches: the test reads the work budget, not the clock)
        s = solve(p, "cpsat", SolveOptions(time_limit=0.05, workers=4, wall_limit=600.0))
    assert "unsolved_components" not in s.info
    assert not [w for w in ws if issubclass(w.category, UnusedOption)]
