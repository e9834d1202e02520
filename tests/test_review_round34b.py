"""Review of round 34's start of the named exact solvers (``solvers.named.default_plan``).

An exact solver named by its caller (``solver="search"`` / ``"cpsat"``) now starts from the default solve's plan,
which on a small problem runs a small search (``auto.polish``). A Ctrl-C there was raised out of the solve: the plan
was lost, where ``plan(graph, time_limit=...)`` (``auto``) keeps its best plan on the same Ctrl-C and marks it
``interrupted``."""

from __future__ import annotations

import pytest

import memplan
from memplan.benchmarks.scale import random_dag
from memplan.lifetimes import buffer_problem
from memplan.solvers import SolveOptions, solve
from memplan.solvers import search as search_mod
from memplan.solvers.named import default_plan


def small_polished() -> memplan.Graph:
    """22 nodes whose default plan needs the small search: greedy 453,632 and size 457,728 bytes, searched to the
    bound 437,248."""
    return random_dag(22, seed=1)


def ctrl_c_in_first_search(monkeypatch) -> list[int]:
    """A Ctrl-C in the first search's first try (the default's small search, where a solver is named): later
    searches run as ever. Returns the count of tries seen."""
    seen: list[int] = []
    orig = search_mod._Minimiser.try_capacity

    def try_capacity(self, cap, node_limit):
        seen.append(cap)
        if len(seen) == 1:
            raise KeyboardInterrupt
        return orig(self, cap, node_limit)

    monkeypatch.setattr(search_mod._Minimiser, "try_capacity", try_capacity)
    return seen


@pytest.mark.parametrize("solver", ["auto", "search", "cpsat"])
def test_a_ctrl_c_in_the_defaults_small_search_keeps_a_marked_plan(monkeypatch, solver):
    if solver == "cpsat":
        pytest.importorskip("ortools")
    g = small_polished()
    assert memplan.plan(g).solver["tried"].get("search") is not None   # (the default searches this one)
    seen = ctrl_c_in_first_search(monkeypatch)
    try:
        p = memplan.plan(g, solver=solver, time_limit=5)
    except KeyboardInterrupt:   # (search and cpsat before: the plan was lost; raised on, it ended pytest's run)
        pytest.fail(f"{solver}: the Ctrl-C in the default's small search lost the plan")
    assert p.solver.get("interrupted") is True
    assert memplan.verify(g, p) is None
    assert p.arena_bytes <= 457_728            # the heuristics' best at worst
    assert len(seen) == 1                      # no exact work after the caller's stop


def test_a_warm_start_an_earlier_ctrl_c_marked_does_not_stop_a_named_search():
    """Only the default's own mark ends the solve: a caller's warm start from an interrupted solve is a plan."""
    g = small_polished()
    p = memplan.plan(g, solver="search", time_limit=5)
    problem = buffer_problem(g, memplan.build_happens_before(g, memplan.serial_schedule(g)))
    marked = default_plan(problem, SolveOptions())
    marked = type(marked)(marked.offsets, marked.arena, marked.solver, marked.status, marked.lower_bound,
                          {**marked.info, "interrupted": True})
    sol = solve(problem, "search", SolveOptions(time_limit=5, warm_start=marked))
    assert "interrupted" not in sol.info
    assert sol.arena == p.arena_bytes


def ctrl_c_in_nth_search(monkeypatch, nth: int) -> list[int]:
    """A Ctrl-C in the first try of the ``nth`` search made (counting from 1); returns the searches made so far."""
    made: list[int] = []
    init, orig = search_mod._Minimiser.__init__, search_mod._Minimiser.try_capacity

    def counted_init(self, *args, **kwargs):
        made.append(1)
        self._review_no = len(made)
        init(self, *args, **kwargs)

    def try_capacity(self, cap, node_limit):
        if self._review_no == nth:
            raise KeyboardInterrupt
        return orig(self, cap, node_limit)

    monkeypatch.setattr(search_mod._Minimiser, "__init__", counted_init)
    monkeypatch.setattr(search_mod._Minimiser, "try_capacity", try_capacity)
    return made


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_ctrl_c_in_a_budget_solves_default_run_marks_the_cheap_plan_kept(monkeypatch, nth):
    """A memory budget at the default's arena (below the heuristics'): the first schedule fits cheaply (the default's
    small search: searches 1 and 2). The named search started from a default run of its own (search 3), whose Ctrl-C
    left it at the heuristics' 453,632 bytes, over the budget, and ``_within`` kept the cheap plan but dropped the
    mark. Since session 36 the named search starts from the cheap solve's plan (no default run of its own: search 3
    is the named search, already at the bound, and tries nothing); a Ctrl-C in any search made still marks the plan."""
    g = small_polished()
    made = ctrl_c_in_nth_search(monkeypatch, nth)
    fired: list[int] = []
    try_capacity = search_mod._Minimiser.try_capacity

    def seen(self, cap, node_limit):
        fired.append(self._review_no)
        return try_capacity(self, cap, node_limit)

    monkeypatch.setattr(search_mod._Minimiser, "try_capacity", seen)
    try:
        p = memplan.plan(g, memory_budget=437_248, solver="search", time_limit=5)
    except KeyboardInterrupt:   # (before the start's fix: the plan was lost)
        pytest.fail("the Ctrl-C in the named search's default run lost the plan")
    assert len(made) >= nth
    assert p.arena_bytes == 437_248
    assert memplan.verify(g, p) is None
    assert p.solver.get("interrupted") is (True if nth in fired else None)
