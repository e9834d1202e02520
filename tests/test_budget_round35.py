"""A memory budget with an exact solver stops its exact solves at the whole plan's wall-clock safety stop.

Each exact solve's own safety stop starts after its setup (happens-before, bounds, the default's plan it starts
from, the search's tables or CP-SAT's model), and a budget probes many candidate schedules: ``wide_graph(300)`` at
its serial arena with ``solver="search", time_limit=1`` ran 46-52 s here (the stop it documents: 4x + 10 s), most of
it the setup of 38 probes of a few milliseconds' share each. Past ``plan._budget_wall`` the rest is planned by the
default's heuristics, and the plan says ``stopped: wall_clock`` (20 s on that graph, the same arena)."""

from __future__ import annotations

import importlib
import time

import pytest

import memplan
from memplan.generators import fanout_join
from memplan.solvers import SolveOptions

plan_module = importlib.import_module("memplan.plan")


def _probing() -> tuple[memplan.Graph, int]:
    """A budget its fastest schedule misses (so the candidates are probed exactly): round 34's fan."""
    g = fanout_join(30, seed=0)[0]
    budget = memplan.plan(g).arena_bytes
    assert memplan.plan(g, streams="auto").arena_bytes > budget
    return g, budget


class _Clock:
    """``time`` for plan.py whose ``perf_counter`` can jump ahead (a machine paused or starved)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.ahead


def _spy(monkeypatch, clock: _Clock, jump_after: int) -> list[tuple[str, float | None]]:
    """(solver, time_limit) of every solve; the clock jumps an hour ahead after the ``jump_after``-th exact one."""
    real = plan_module.solve
    calls: list[tuple[str, float | None]] = []

    def solve(problem, solver="auto", options=SolveOptions()):
        calls.append((solver, options.time_limit))
        sol = real(problem, solver, options)
        if sum(t is not None for _, t in calls) == jump_after:
            clock.ahead = 3600.0
        return sol

    real_from = plan_module.solve_from_default

    def solve_from(problem, solver, options, default):   # (an exact solve from the budget's own default solve)
        calls.append((solver, options.time_limit))
        sol = real_from(problem, solver, options, default)
        if sum(t is not None for _, t in calls) == jump_after:
            clock.ahead = 3600.0
        return sol

    monkeypatch.setattr(plan_module, "solve", solve)
    monkeypatch.setattr(plan_module, "solve_from_default", solve_from)
    monkeypatch.setattr(plan_module, "time", clock)
    return calls


@pytest.mark.parametrize("solver", ["search", "auto"])
def test_a_budgets_exact_probes_stop_at_the_wall_and_the_plan_says_so(monkeypatch, solver):
    g, budget = _probing()
    free = memplan.plan(g, streams="auto", memory_budget=budget, solver=solver, time_limit=1)
    assert "stopped" not in free.solver
    calls = _spy(monkeypatch, _Clock(), jump_after=1)
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver=solver, time_limit=1)
    assert sum(t is not None for _, t in calls) == 1          # no exact solve once the wall has passed
    assert all(s == "auto" for s, t in calls if t is None)
    assert p.solver["stopped"] == "wall_clock"
    assert p.arena_bytes <= budget
    assert memplan.verify(g, p) is None


def test_a_wall_passed_before_any_probe_leaves_the_budget_to_the_heuristics(monkeypatch):
    g, budget = _probing()
    calls = _spy(monkeypatch, _Clock(), jump_after=-1)
    monkeypatch.setattr(plan_module, "_budget_wall", lambda t0, options, work: float("-inf"), raising=False)
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    assert [c for c in calls if c[1] is not None] == []
    assert p.solver["stopped"] == "wall_clock"
    assert p.arena_bytes <= budget
    assert memplan.verify(g, p) is None
