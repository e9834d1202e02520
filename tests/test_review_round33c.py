"""Review round 33c: the time-limited default now runs ``auto.polish`` before its exact solvers."""

from __future__ import annotations

from dataclasses import replace

from problems import random_intervals

from memplan.solvers import SolveOptions, solve
from memplan.solvers import search as search_module


def test_ctrl_c_in_the_small_search_of_a_time_limited_solve_keeps_the_plan(monkeypatch):
    """With a time limit a Ctrl-C in an exact solver ends the solve with the best plan so far, marked
    "interrupted" (``search``/``cpsat`` catch it; auto stops there). Round 33 runs ``auto.polish`` (the search) first
    in a time-limited solve too, and polish raised KeyboardInterrupt on, as a default solve does: a Ctrl-C in that
    first part lost the plan that a Ctrl-C a moment later kept."""
    problem = random_intervals(seed=12, n=30)   # the heuristics end above the bound: the polish runs
    calls = []
    real = search_module.solve

    def interrupted(problem, options, **kw):   # the search as it returns after catching a Ctrl-C: its best so far
        calls.append(options.warm_start.arena)
        sol = real(problem, replace(options, time_limit=1e-4), **kw)
        return replace(sol, info={**sol.info, "interrupted": True})

    monkeypatch.setattr(search_module, "solve", interrupted)
    sol = solve(problem, "auto", SolveOptions(time_limit=5))
    assert sol.info.get("interrupted") is True
    assert len(calls) == 1   # nothing ran after the Ctrl-C
    assert sol.arena <= min(sol.info["tried"]["greedy"], sol.info["tried"]["size"])
