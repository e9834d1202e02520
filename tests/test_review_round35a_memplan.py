"""Round 35 review (memplan side): a memory budget whose wall-clock stop has passed still meets a budget at the
listed serial schedule's exact arena.

``plan._budget_wall`` hands every exact solve after the whole plan's wall-clock stop to the default's heuristics;
the listed serial schedule's last-resort solve too, whose whole point (``fits_last``) is that a budget at the arena
a plan without a budget gets is met. ``plan(g, memory_budget=B, solver="search", time_limit=0.3)`` with ``B`` the
arena of ``plan(g, solver="search", time_limit=0.3)`` (below the heuristics') raised BudgetError, "the serial plan
needs an arena of 163840 B" (the heuristics' arena, not the plan's) on a machine slow enough to pass the stop.
"""

from __future__ import annotations

import importlib

import memplan
from memplan.generators import fanout_join

plan_module = importlib.import_module("memplan.plan")


def test_a_budget_at_the_exact_serial_arena_is_met_past_the_wall(monkeypatch, polish_limit_64, no_skyline):
    g = fanout_join(100, seed=4, max_width=4)[0]
    budget = memplan.plan(g, solver="search", time_limit=0.3).arena_bytes
    assert budget < memplan.plan(g).arena_bytes   # only the exact solve reaches it
    monkeypatch.setattr(plan_module, "_budget_wall", lambda t0, options, work: float("-inf"))
    p = memplan.plan(g, memory_budget=budget, solver="search", time_limit=0.3)
    assert p.arena_bytes <= budget
    assert p.solver["stopped"] == "wall_clock"   # the other candidates were left to the heuristics
    assert memplan.verify(g, p) is None
