"""Round 35 (hostile): the wall-clock mark of a memory budget's probes.

A memory budget (``plan(g, streams=..., memory_budget=B)``) solves candidate schedules until one fits. The default's
small search (``auto.polish``) has a wall-clock safety stop (``auto.POLISH_WALL``: a process paused or starved); a
plan whose solve it stopped says ``stopped: wall_clock`` (it may not repeat). A stop in another candidate's probe
was lost: that candidate then did not fit, another schedule was chosen, and its plan said nothing. In the cheap
verdict (``solvers.heuristics_over``) the stopped solve was dropped whole, mark and all.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import memplan
from memplan.benchmarks.scale import random_dag
from memplan.solvers import search as search_mod

#: 20 nodes whose budget at 378,880 B chooses a give-back candidate after probing others with the small search
BUDGET = 378_880


@pytest.fixture(autouse=True)
def _round35_candidates(monkeypatch):
    """The candidate pool these tests were written over: round 79's low-memory concurrent candidates
    (``budget.low_memory_streams``) fit this budget without any small search, so no probe is left for the wall clock
    or a Ctrl-C to stop. The probes' stop handling is what is tested here, so the pool stays round 35's."""
    from memplan.optimize import candidates as candidates_mod

    monkeypatch.setattr(candidates_mod, "low_memory_streams", lambda *a, **k: [])


def _graph() -> memplan.Graph:
    return random_dag(20, seed=8)


def _stop_nth_small_search(monkeypatch, nth: int) -> list[int]:
    """The ``nth`` search run by the default's small search ends as its wall-clock safety stop ends it (its info
    says ``stopped``); the others run as ever. Returns the calls seen."""
    calls: list[int] = []
    real = search_mod.solve

    def solve(problem, options, **kw):
        sol = real(problem, options, **kw)
        calls.append(1)
        if len(calls) == nth:
            return replace(sol, info={**sol.info, "stopped": "wall_clock"})
        return sol

    monkeypatch.setattr(search_mod, "solve", solve)
    return calls


@pytest.mark.parametrize("options", [dict(streams="auto"), dict(streams=3),
                                     dict(streams="auto", solver="search", time_limit=0.2)],
                         ids=["auto", "three", "search"])
def test_a_probe_the_wall_clock_stopped_is_said_or_decides_nothing(monkeypatch, options):
    """Whichever small search the wall clock stops, the plan is the unstopped one or says ``stopped``. Before: a
    stop in the first candidate's probe (the cheap verdict) or the second's chose another schedule, 372,736 B on
    'list-eft-k3-give-back-7-by-memory' against 376,832 B on '...-by-events', with no mark."""
    g = _graph()
    base = memplan.plan(g, memory_budget=BUDGET, **options)
    assert "stopped" not in base.solver
    with monkeypatch.context() as m:
        calls = _stop_nth_small_search(m, 0)
        memplan.plan(g, memory_budget=BUDGET, **options)
    total = len(calls)
    assert total >= 2
    for nth in range(1, total + 1):
        with monkeypatch.context() as m:
            _stop_nth_small_search(m, nth)
            p = memplan.plan(g, memory_budget=BUDGET, **options)
        assert memplan.verify(g, p) is None and p.arena_bytes <= BUDGET
        assert p == base or p.solver.get("stopped") == "wall_clock", (nth, p.solver["schedule"]["candidate"])


def test_a_verdict_the_wall_clock_cut_solves_the_schedule_in_full(monkeypatch):
    """``heuristics_over`` answers None (no verdict) for a whole solve the wall clock stopped: True dropped the
    schedule though an unpaused solve fits it."""
    from memplan.lifetimes import buffer_problem, compute_lifetimes
    from memplan.schedule import build_happens_before, serial_schedule
    from memplan.solvers import SolveOptions, heuristics_over, polishes

    g = random_dag(22, seed=1)   # (review34b's: its default plan needs the small search, 437,248 B)
    hb = build_happens_before(g, serial_schedule(g))
    problem = buffer_problem(g, hb, compute_lifetimes(g, hb))
    assert polishes(problem, SolveOptions())
    assert heuristics_over(problem, "auto", SolveOptions(), 437_248) is False
    _stop_nth_small_search(monkeypatch, 1)
    assert heuristics_over(problem, "auto", SolveOptions(), 437_248) is None


def test_a_ctrl_c_in_a_cheap_probe_after_a_candidate_fitted_keeps_the_plan(monkeypatch):
    """A time-limited budget solve tries each candidate's default plan first (``fits_cheaply``: its small search on
    a small graph). A Ctrl-C there was raised out of ``plan``, though a candidate had already fitted (here the 21st
    of 33 tried): the plan was lost, where a Ctrl-C a moment later, in that candidate's exact probe, keeps it and
    marks it ``interrupted``."""
    from test_review_round34b import ctrl_c_in_first_search

    g = _graph()
    ctrl_c_in_first_search(monkeypatch)
    try:
        p = memplan.plan(g, streams="auto", memory_budget=BUDGET, solver="search", time_limit=0.2)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C in a cheap probe lost the plan of the candidate that fitted")
    assert p.solver.get("interrupted") is True
    assert memplan.verify(g, p) is None and p.arena_bytes <= BUDGET


def test_a_ctrl_c_in_the_reports_serial_solve_keeps_the_exact_plan(monkeypatch):
    """After a time-limited exact solve of a multi-stream schedule, the report's serial arena comes from a default
    solve of the serial schedule; a Ctrl-C there (its small search) was raised, and the finished plan lost."""
    import importlib

    planmod = importlib.import_module("memplan.plan")
    g = _graph()
    real = planmod.solve_schedule

    def solve_schedule(graph, schedule, solver="auto", options=None, **kw):
        if solver == "auto" and schedule.num_streams == 1 and len(set(schedule.streams)) == 1:
            raise KeyboardInterrupt   # (the serial report's default solve)
        return real(graph, schedule, solver, options, **kw)

    monkeypatch.setattr(planmod, "solve_schedule", solve_schedule)
    try:
        p = memplan.plan(g, streams=3, solver="search", time_limit=0.2)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C in the report's serial solve lost the plan")
    assert p.solver.get("interrupted") is True and p.streams > 1
    assert memplan.verify(g, p) is None
    assert p.solver["schedule"]["serial_arena_bytes"] > 0
