"""Round 77 (tl77): ``plan(..., time_limit=...)`` with a memory budget past its wall-clock safety stop
(``plan._budget_wall``): what still runs after it. Tests count work or move the clock plan.py reads; none times
real seconds."""

from __future__ import annotations

import importlib

from test_budget_round35 import _probing

import memplan

plan_module = importlib.import_module("memplan.plan")


def test_past_the_budget_wall_a_fitted_candidate_is_not_solved_again(monkeypatch):
    g, budget = _probing()
    real = plan_module.solve_schedule
    fitted: set[tuple] = set()
    again: list[str] = []

    def spy(graph, schedule, solver="auto", options=None, **kw):
        key = (schedule.order, schedule.streams, schedule.events)
        if key in fitted:
            again.append(solver)
        made = real(graph, schedule, solver, options, **kw) if options is not None else real(graph, schedule, solver,
                                                                                                   **kw)
        if made is not None and made.arena_bytes <= budget:
            fitted.add(key)
        return made

    monkeypatch.setattr(plan_module, "solve_schedule", spy)
    monkeypatch.setattr(plan_module, "_budget_wall", lambda t0, options, work: float("-inf"))
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="cpsat", time_limit=1)
    assert p.solver["stopped"] == "wall_clock"
    assert p.arena_bytes <= budget
    assert again == []   # (before: the chosen schedule's default solve ran twice)
    assert memplan.verify(g, p) is None


def test_a_probe_begun_before_the_budget_wall_stops_there(monkeypatch):
    g, budget = _probing()
    real = plan_module.solve_schedule
    stops: list[tuple[float | None, float]] = []   # (the exact probe's wall_limit, seconds left to the plan's stop)
    wall = []

    def spy(graph, schedule, solver="auto", options=None, **kw):
        if options is not None and options.time_limit is not None:
            stops.append((options.wall_limit, wall[0] - plan_module.time.perf_counter()))
        return real(graph, schedule, solver, options, **kw) if options is not None else real(graph, schedule, solver,
                                                                                                **kw)

    def budget_wall(t0, options, work):   # the plan's stop 5 s away: before any probe's own (4 x its share + 10 s)
        wall[:] = [plan_module.time.perf_counter() + 5.0]
        return wall[0]

    monkeypatch.setattr(plan_module, "solve_schedule", spy)
    monkeypatch.setattr(plan_module, "_budget_wall", budget_wall)
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    assert len(stops) >= 2   # (the first schedule's probe, then at least the chosen one's)
    for wall_limit, left in stops:
        assert wall_limit is not None and wall_limit <= 5.0 and wall_limit >= left   # (before: None, its own 10 s+)
    assert p.arena_bytes <= budget
    assert memplan.verify(g, p) is None


def test_a_budget_past_its_wall_does_not_score_the_forks_for_their_count(monkeypatch):
    """The fork give-backs' count sets each probe's share (``exact_budget_tiers``); scoring them ran on past the stop
    (``random_dag(1500)``, ``streams="auto"``, its serial arena, ``time_limit=0.5``: 3 s CPU, through a 12 s stop on
    the loaded VM), for shares no probe then took."""
    from memplan.benchmarks.scale import wide_graph

    budget_module = importlib.import_module("memplan.optimize.budget")
    g = wide_graph(40)   # (its give-backs' issue order is over its serial arena: they are counted, not listed)
    budget = memplan.plan(g).arena_bytes
    real = budget_module.Fork
    scored: list[int] = []

    def fork(*a, **k):
        scored.append(1)
        return real(*a, **k)

    monkeypatch.setattr(budget_module, "Fork", fork)
    free = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=0.1)
    assert "stopped" not in free.solver and scored   # (the count scores them, where no stop is reached)
    scored.clear()
    monkeypatch.setattr(plan_module, "_budget_wall", lambda t0, options, work: float("-inf"))
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=0.1)
    assert scored == []   # (before: every fork scored)
    assert p.solver["stopped"] == "wall_clock"
    assert p.arena_bytes <= budget
    assert memplan.verify(g, p) is None
