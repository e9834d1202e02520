"""A memory budget with a named exact solver does the cheap work of each candidate schedule once.

The budget's search (``plan._exact_budget``) solves each candidate cheaply first (``auto`` without a time limit),
then the chosen one, or one the heuristics miss, exactly. The exact solve built the schedule's problem again and ran
the default solve again (``solvers.named.default_plan``: the plan it starts from), the very solve the cheap test had
just made; now the cheap solve's problem and plan are handed on (``solve_schedule(start=...)``). An exact probe of a
candidate also stops its clique bound at the budget (``with_clique_bound(stop_above=...)``): the heaviest clique of a
schedule whose bound already passes the budget was most of a budgeted plan (``wide_graph(100)`` at its serial arena,
``solver="search", time_limit=1``: 5.2 s of CPU before, 0.6 s after). Plans are the same as before (checked here
against the pipeline without either shortcut)."""

from __future__ import annotations

import importlib

import pytest

import memplan
from memplan import examples as E
from memplan.benchmarks.scale import wide_graph

plan_module = importlib.import_module("memplan.plan")
start_module = importlib.import_module("memplan.solvers.named")
lifetimes_module = importlib.import_module("memplan.lifetimes")

GRAPHS = {"fanout_join15": E.fanout_join15, "moe": E.moe, "wide40": lambda: wide_graph(40)}


def _budget(g, which: str) -> int:
    return memplan.plan(g).arena_bytes if which == "serial" else memplan.plan(g, streams="auto").arena_bytes


def _counting(monkeypatch, module, name: str, calls: list):
    real = getattr(module, name)

    def wrapper(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_a_schedule_the_cheap_test_fitted_is_not_solved_by_default_again(monkeypatch, name):
    """At the fastest schedule's own arena the cheap test fits it: the exact solve starts from that plan (the
    default solve ran once there, and again in the exact solve)."""
    g = GRAPHS[name]()
    budget = _budget(g, "concurrent")
    calls: list = []
    _counting(monkeypatch, start_module, "default_plan", calls)
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=0.2)
    assert p.arena_bytes <= budget
    assert calls == []   # was one run


def test_the_serial_schedule_chosen_is_not_solved_by_default_again(monkeypatch):
    g = E.fanout_join15()
    calls: list = []
    budget = _budget(g, "serial")
    _counting(monkeypatch, start_module, "default_plan", calls)
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=0.2)
    assert p.solver["schedule"]["candidate"] == "serial"
    assert len(calls) == 1   # was 2: the first schedule's probe (its heuristics miss the budget) runs it, once


def test_exact_probes_stop_their_clique_bound_at_the_budget(monkeypatch):
    """Every candidate probed against the budget stops its clique search there; only the plan made without one (the
    first schedule's, quoted by the report) searches to the end (was: each of 38 probes)."""
    g = wide_graph(40)
    budget = _budget(g, "serial")
    calls: list = []
    _counting(monkeypatch, lifetimes_module, "clique_lower_bound", calls)
    memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=0.2)
    full = [k for k in calls if k.get("stop_above") is None]
    assert len(full) <= 1 < len(calls)


def _unshared(monkeypatch) -> None:
    """The pipeline without the two shortcuts: no cheap solve handed on, every clique bound searched to the end."""
    real_bound = plan_module.with_clique_bound
    monkeypatch.setattr(plan_module, "with_clique_bound", lambda problem, stop_above=None: real_bound(problem))
    monkeypatch.setattr(plan_module, "_solve_started", lambda graph, schedule, solver, options, start, *, t0, over:
                        plan_module.solve_schedule(graph, schedule, solver, options, t0=t0, over=over))


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("which", ["concurrent", "serial"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_plans_are_those_of_the_pipeline_without_the_shortcuts(monkeypatch, name, which, solver):
    if solver == "cpsat":
        pytest.importorskip("ortools")
    g = GRAPHS[name]()
    budget = _budget(g, which)
    opts = dict(streams="auto", memory_budget=budget, solver=solver, time_limit=0.2)
    fast = memplan.plan(g, **opts)
    with monkeypatch.context() as m:
        _unshared(m)
        slow = memplan.plan(g, **opts)
    if fast.solver.get("stopped") or slow.solver.get("stopped"):
        pytest.skip("a wall-clock stop (a loaded machine): such a plan may not repeat")
    assert fast.to_json() == slow.to_json()


def test_past_the_budgets_wall_the_schedule_chosen_can_differ_and_the_plan_says_so(monkeypatch):
    """What the docs say of the budget's wall-clock stop (``plan()``'s docstring, docs/scheduling.md): not only the
    offsets, the schedule chosen can differ from an unstopped run's (the fastest schedule fits only under its exact
    solve, which the stop leaves out), and the plan is marked ``stopped``, within the budget and verified."""
    g = wide_graph(40)
    # (time_limit=1: since round 53 the search's work is charged as it costs, and the fastest schedule's exact
    # solve no longer fits in 0.2 s, which it did by overrunning the limit about twice)
    budget = memplan.plan(g, streams="auto", solver="search", time_limit=1).arena_bytes
    free = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    monkeypatch.setattr(plan_module, "_budget_wall", lambda t0, options, work: float("-inf"))
    late = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    assert "stopped" not in free.solver and late.solver["stopped"] == "wall_clock"
    assert late.solver["schedule"]["candidate"] != free.solver["schedule"]["candidate"]
    assert late.solver["schedule"]["makespan_us"] > free.solver["schedule"]["makespan_us"]
    assert max(free.arena_bytes, late.arena_bytes) <= budget
    assert memplan.verify(g, late) is None


def test_a_default_start_that_is_no_packing_or_no_solution_is_refused_by_name():
    """``SolveOptions.default_start`` (how a budget hands the cheap solve's plan on) is checked as ``warm_start`` is."""
    from memplan.errors import SolverError
    from memplan.problem import BufferProblem, Solution, Status
    from memplan.solvers import SolveOptions, solve

    with pytest.raises(SolverError, match="default_start must be a memplan Solution"):
        SolveOptions(default_start=[0, 0])
    p = BufferProblem(sizes=[256, 256], lower=[0, 0], upper=[2, 2], alignment=256)
    overlapping = Solution([0, 0], 256, "greedy", Status.HEURISTIC, 0, {})
    with pytest.raises(SolverError, match="default_start is no packing"):
        solve(p, "search", SolveOptions(time_limit=0.1, default_start=overlapping))
    given = Solution([0, 256], 512, "greedy", Status.HEURISTIC, 0, {})
    assert solve(p, "search", SolveOptions(time_limit=0.1, default_start=given)).arena == 512
