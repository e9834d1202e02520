"""Round 39 (solvers): determinism under load and CP-SAT's claims past 2**53 bytes.

- CP-SAT decides OPTIMAL by comparing its objective and bound as doubles: above 2**53 an arena a few bytes above the
  proven bound read as closed, and memplan claimed OPTIMAL (and a bound above the optimum) from those doubles. The
  integer bound of the response is claimed now (``cpsat._exact_bound``).
- CP-SAT's own wall-clock limit stopped a solve without a trace memplan could read: with several workers the
  deterministic time passes the budget long before the search ends, so a plan the clock had cut (another arena than
  the unstopped one, minimalloc's C at ``time_limit=1``, 4 workers, on a loaded machine) was not marked ``stopped``.
  The safety stop is memplan's own now (``cpsat._run``), and a solve it stopped says so.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from buffer_oracle import conflict_matrix, optimum

from memplan.problem import BufferProblem, Status
from memplan.solvers import SolveOptions, cpsat, get_solver, solve

pytest.importorskip("ortools")

#: four buffers live together; the odd-sized one on top packs them in ``HUGE_OPT`` bytes (alignment 64)
HUGE_SIZES = [276029692718998437, 252201579132747776, 576460752303423488, 576460752303423488]
HUGE_OPT = 1681152776458593189


def _all_live(sizes: list[int], align: int) -> BufferProblem:
    n = len(sizes)
    return BufferProblem(np.array(sizes, dtype=np.int64), np.zeros(n, int), np.ones(n, int), alignment=align)


def test_the_oracle_agrees_on_the_huge_optimum():
    assert optimum(HUGE_SIZES, conflict_matrix(HUGE_SIZES, [0] * 4, [1] * 4), 64) == HUGE_OPT


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("align", [1, 64, 256])
def test_cpsat_claims_no_optimum_a_rounded_double_closed(align, workers):
    """Started from greedy's and size's plans (as ``auto`` starts it), 27 bytes above the optimum at alignment 64:
    CP-SAT said OPTIMAL (its doubles equal) with the integer bound at the optimum; memplan claimed OPTIMAL with a
    bound of the arena. Now FEASIBLE, its bound at most the optimum."""
    p = _all_live(HUGE_SIZES, align)
    opt = optimum(HUGE_SIZES, conflict_matrix(HUGE_SIZES, [0] * 4, [1] * 4), align)
    pair = (solve(p, "greedy"), solve(p, "size"))
    s = get_solver("cpsat")(p, SolveOptions(time_limit=0.2, workers=workers), heuristics=pair)
    bound = int(s.info["bound"])
    assert s.arena >= opt and bound <= opt and s.lower_bound <= opt, (s.arena, bound, opt)
    assert s.status != Status.OPTIMAL or s.arena == opt, (s.arena, opt)
    if align == 64:
        assert s.arena > opt and s.status == Status.FEASIBLE and bound < s.arena


def test_the_exact_bound_keeps_plans_below_2_53():
    """Below 2**53 the integer bound and the old rounded double are the same: an OPTIMAL claim stays OPTIMAL."""
    p = _all_live([1000, 1001, 999, 3], 8)
    s = solve(p, "cpsat", SolveOptions(time_limit=0.2))
    assert s.status == Status.OPTIMAL
    assert s.arena == optimum([1000, 1001, 999, 3], conflict_matrix([1000, 1001, 999, 3], [0] * 4, [1] * 4), 8)


def test_a_stop_by_the_wall_clock_is_reported_whatever_the_deterministic_time():
    """Several workers spent 0.21 of a 0.15 deterministic-second budget when CP-SAT's clock cut them (4.2 s of 5 s:
    minimalloc's C, ``time_limit=1``, 4 workers; 0.36 unstopped, another arena): taken for a spent budget."""
    reason = cpsat.stop_reason
    assert reason(finished=False, interrupted=False, deterministic_time=0.2147, budget=0.15, wall_fired=True) == "wall_clock"
    assert reason(finished=True, interrupted=False, deterministic_time=0.01, budget=0.15, wall_fired=True) is None
    assert reason(finished=False, interrupted=False, deterministic_time=0.2147, budget=0.15) is None
    assert reason(finished=False, interrupted=True, deterministic_time=0.2, budget=0.15, wall_fired=True) == "interrupted"


class _Stub:
    """A CP-SAT solver stand-in whose solve runs until stopped, or ``runs`` seconds."""

    def __init__(self, runs: float) -> None:
        self.runs, self.stopped = runs, threading.Event()

    def solve(self, model, callback) -> int:
        self.stopped.wait(self.runs)
        return 2   # FEASIBLE

    def stop_search(self) -> None:
        self.stopped.set()


def test_run_stops_the_solve_at_its_wall_limit_and_says_so():
    t = time.perf_counter()
    status, interrupted, walled = cpsat._run(_Stub(30.0), None, None, wall=0.3)
    assert (status, interrupted, walled) == (2, False, True)
    assert 0.25 <= time.perf_counter() - t < 10


def test_run_says_nothing_of_a_solve_that_ends_in_time():
    stub = _Stub(0.05)
    assert cpsat._run(stub, None, None, wall=30.0) == (2, False, False)
    assert not stub.stopped.is_set()


def test_cpsat_leaves_the_wall_clock_to_run(monkeypatch):
    """The solve's wall limit goes to ``_run``; CP-SAT gets none of its own (it stopped early, predicting, and left
    no trace of it memplan could read)."""
    seen = []
    real = cpsat._run

    def spy(solver, model, cb, **kw):
        seen.append((solver.parameters.max_time_in_seconds, kw.get("wall")))
        return real(solver, model, cb, **kw)

    monkeypatch.setattr(cpsat, "_run", spy)
    p = _all_live([3, 5, 7, 2, 4, 6], 4)
    get_solver("cpsat")(p, SolveOptions(time_limit=0.2, wall_limit=7.5), heuristics=(solve(p, "greedy"), solve(p, "size")))
    assert seen and all(limit == float("inf") and 0 < wall <= 7.5 for limit, wall in seen), seen
