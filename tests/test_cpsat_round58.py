"""Round 58 (cpsat): several CP-SAT ``workers`` run two phases of work (``cpsat.PORTFOLIO``: the one-worker search,
then the interleaved workers from its best, a budget each), and the wall-clock safety stop now scales with them.

Before (round 57's branch), the two phases shared the one stop a single budget has (``4 * time_limit + 10`` s from the
start), so on a loaded 2-core machine the one-worker phase used most of it and the interleaved phase of 8 workers on
minimalloc's A ran into it (3 tests of the full suite failed): the plan then depended on the load. Now the one-worker
phase has ``workers=1``'s stop and the interleaved phase one of its own, counted from its start (``auto``'s one stop
counts both phases of cpsat's share too); and where the stop cuts the interleaved phase its search is dropped, so the
plan is the one worker's, byte for byte, and ``info["stopped"]`` says the stop fired.

No test here times anything: a fake clock stands in for ``time.perf_counter`` where the stop's arithmetic is checked,
and the determinism test sets a wall limit no load reaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
from needs import need

import memplan.solvers as solvers_pkg
from memplan.problem import BufferProblem, find_collision
from memplan.solvers import SolveOptions, auto, cpsat, solve

pytestmark = pytest.mark.usefixtures("polish_limit_64")   # (conftest: problems sized for the old limit)

# round 57's random interval problems and its wall-clock stop no load reaches (a test reads the work budget and not
# the clock; a fake clock stands in where the stop itself is tested)
from test_cpsat_round57 import NO_STOP, problem, solved  # noqa: E402


@pytest.fixture(autouse=True)
def _ortools():
    need("ortools")   # (a core dependency: skipped in a bare checkout without it, failed under CI)


class FakeClock:
    """``time.perf_counter`` for a solver module: it stands still unless a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def _walls(monkeypatch, clock: FakeClock, *, after_one: float) -> list[tuple[int, float]]:
    """(workers, the wall seconds ``_run`` is given) of every CP-SAT run from now on, under ``clock``, which moves on
    by ``after_one`` seconds when a one-worker run ends (a loaded machine: that phase took that long)."""
    seen: list[tuple[int, float]] = []
    real = cpsat._run

    def spy(solver, model, callback, wall=float("inf")):
        seen.append((solver.parameters.num_workers, wall))
        out = real(solver, model, callback, wall)
        if solver.parameters.num_workers == 1:
            clock.now += after_one
        return out

    monkeypatch.setattr(cpsat, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(cpsat, "_run", spy)
    return seen


def test_the_interleaved_phase_has_a_wall_stop_of_its_own(monkeypatch):
    """Seed 0 at ``time_limit=0.5`` (stop: 12 s), 4 workers, the one-worker phase taking 11 s of its 12: the
    interleaved phase was given the 1 s left of the one stop (and at 12 s or more, none: the stop fired, a plan of
    the load); now it has 12 s of its own, and the one-worker phase the 12 s ``workers=1`` has."""
    stop = SolveOptions().wall_seconds(0.5)
    assert stop == 12.0
    seen = _walls(monkeypatch, FakeClock(), after_one=11.0)
    sol = solve(problem(0), "cpsat", SolveOptions(time_limit=0.5, workers=4))
    ones = [w for n, w in seen if n == 1]
    several = [w for n, w in seen if n > 1]
    assert len(ones) == 1 and ones[0] == pytest.approx(stop), seen
    assert several and several[0] == pytest.approx(stop), seen   # (before: 1.0)
    assert "stopped" not in sol.info and find_collision(problem(0), sol.offsets) is None


def test_one_worker_keeps_its_wall_stop(monkeypatch, no_skyline):
    """``workers=1`` runs one phase: its stop is the one it always had (4 * 0.5 + 10 s), its plan unchanged."""
    seen = _walls(monkeypatch, FakeClock(), after_one=0.0)
    sol = solve(problem(0), "cpsat", SolveOptions(time_limit=0.5))
    assert [n for n, _ in seen] == [1] and seen[0][1] == pytest.approx(12.0)
    assert sol.arena == 9600 and "stopped" not in sol.info


def test_work_phases_count_what_the_workers_are_asked():
    p = problem(0)
    assert cpsat.work_phases(p, SolveOptions(workers=1)) == 1.0
    assert cpsat.work_phases(p, SolveOptions(workers=8)) == sum(cpsat.PHASE_SHARES) == 2.0
    # at an alignment above ``INTERLEAVE_MAX_ALIGNMENT`` one thread runs whatever ``workers`` says: one phase
    huge = BufferProblem(sizes=[1, 2], lower=[0, 0], upper=[1, 1], alignment=2 * cpsat.INTERLEAVE_MAX_ALIGNMENT)
    assert cpsat.work_phases(huge, SolveOptions(workers=8)) == 1.0


def test_a_stop_in_the_interleaved_phase_keeps_the_one_workers_plan_and_says_so(monkeypatch, no_skyline):
    """Seed 0 at ``time_limit=0.5``: one worker plans 9,600 B; 2 workers' interleaved search finds 9,592 B. Where
    the wall-clock stop cuts that search (here: every interleaved run reports the stop), its plan was kept, 9,592 B
    after one round, a plan of where the clock fell; now the one worker's plan is returned, offsets, arena and bound,
    and ``info["stopped"]`` says the stop fired (``memplan.plan`` warns of it: ``WallClockStop``)."""
    p = problem(0)
    one = solved(0)   # (round 57's plan: the same problem, options and start)
    real = cpsat._run

    def clock_stops_the_workers(solver, model, callback, wall=float("inf")):
        status, interrupted, walled = real(solver, model, callback, wall)
        return status, interrupted, walled or solver.parameters.num_workers > 1

    monkeypatch.setattr(cpsat, "_run", clock_stops_the_workers)
    cut = solve(p, "cpsat", SolveOptions(time_limit=0.5, workers=2, wall_limit=NO_STOP))
    assert cut.info.get("stopped") == "wall_clock"
    assert cut.offsets.tolist() == one.offsets.tolist() and cut.arena == one.arena == 9600
    assert cut.lower_bound == one.lower_bound and cut.status == one.status
    assert find_collision(p, cut.offsets) is None
    monkeypatch.setattr(cpsat, "_run", real)
    unstopped = solved(0, 2)
    assert unstopped.arena == 9592 and "stopped" not in unstopped.info


def test_autos_one_stop_counts_cpsats_two_phases(monkeypatch):
    """``auto`` with a time limit on an interval problem: the search gets 90% of it, cpsat 10%; with several workers
    cpsat runs two phases of its 10%, so auto's one stop is ``wall_seconds(1.1 * time_limit)`` (before:
    ``wall_seconds(time_limit)`` for 1.1 limits of work); one worker: as before."""
    clock = FakeClock()
    monkeypatch.setattr(auto, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    walls: list[float] = []
    real = solvers_pkg.get_solver

    def spy(name):
        def run(problem, options, **kw):
            walls.append(options.wall_limit)
            raise cpsat.SolverError("not run here")   # (auto goes on to the next solver)
        return run if name in ("search", "cpsat") else real(name)

    monkeypatch.setattr(solvers_pkg, "get_solver", spy)
    p = problem(0)
    solve(p, "auto", SolveOptions(time_limit=1.0, workers=4))
    assert walls == [pytest.approx(SolveOptions().wall_seconds(1.1))] * 2, walls
    walls.clear()
    solve(p, "auto", SolveOptions(time_limit=1.0))
    assert walls == [pytest.approx(SolveOptions().wall_seconds(1.0))] * 2, walls


_PLAN = """
import sys, warnings
import memplan
from memplan.benchmarks.scale import random_dag
from memplan.solvers.options import SolveOptions
warnings.simplefilter("ignore")
# (``plan`` takes no wall limit: its stop is set far above any load's here, so the test reads the budgets alone)
SolveOptions.wall_seconds = lambda self, work: 600.0
g = random_dag(100, seed=1)
for workers in (1, 2, 3, 8):
    plan = memplan.plan(g, solver="cpsat", time_limit=0.3, workers=workers, streams=2, seed=3)
    sys.stdout.write(plan.to_json() + "\\n----\\n")
"""


def test_plan_json_repeats_byte_for_byte_for_every_worker_count():
    """``memplan.plan`` with ``solver="cpsat"`` and 1, 2, 3 and 8 workers (two phases each above 1): the same plan
    JSON in two processes of different hash seeds; the wall-clock stop is set far above any load's, so the test
    reads the deterministic budgets alone."""
    outs = []
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", _PLAN], capture_output=True, text=True, env=env, timeout=900)
        assert run.returncode == 0, run.stderr
        outs.append(run.stdout)
    assert outs[0] and outs[0] == outs[1]
    plans = [json.loads(x) for x in outs[0].split("----") if x.strip()]
    assert len(plans) == 4 and not any("stopped" in p["solver"] for p in plans)
    assert all(p["solver"].get("solved_components") for p in plans), [p["solver"] for p in plans]

