"""A named exact solver given the caller's own warm start starts from the better of it and the default's plan.

Session 34 made ``solver="search"`` / ``"cpsat"`` start from the default solve's plan (``named.default_plan``) only
where the caller gave no warm start; given one (``SolveOptions(warm_start=P)``), they started from greedy's, size's
and the caller's plans alone, and with a short time limit ended above the default's arena (132 of 2,400 seeded runs
warm-started from greedy's or size's plan, up to 1.12x; 0 after: docs/benchmarks.md, "A named exact solver from the caller's warm start")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs
from test_review_round34b import ctrl_c_in_first_search
from test_solvers_round34 import one_node_two_outputs

import memplan
from memplan.benchmarks.scale import random_dag
from memplan.lifetimes import buffer_problem
from memplan.solvers import SolveOptions, solve


def _problem(g: memplan.Graph):
    return buffer_problem(g, memplan.build_happens_before(g, memplan.serial_schedule(g)))


def _need_solver(solver: str) -> None:
    if solver == "cpsat":
        from needs import need

        need("ortools")


@pytest.mark.parametrize("solver", ["search", "cpsat"])
@pytest.mark.parametrize("time_limit", [0.001, 0.1])
def test_a_named_exact_solver_warm_started_by_the_caller_never_ends_above_the_default(solver, time_limit):
    """Greedy's plan as the caller's start (1,411 bytes): cpsat with 1 ms ended at 1,019, the default at 963."""
    _need_solver(solver)
    problem = _problem(one_node_two_outputs())
    default = solve(problem, "auto").arena
    warm = solve(problem, "greedy")
    assert (default, warm.arena) == (963, 1411)
    assert solve(problem, solver, SolveOptions(time_limit=time_limit, warm_start=warm)).arena <= default


def test_a_seeded_graph_cpsat_ended_above_the_default_from_greedys_start():
    """random_dag(19, seed=11): default 191,488 bytes; cpsat from greedy's 195,584 with 1 ms stayed there."""
    _need_solver("cpsat")
    problem = _problem(random_dag(19, seed=11))
    warm = solve(problem, "greedy")
    sol = solve(problem, "cpsat", SolveOptions(time_limit=0.001, warm_start=warm))
    assert sol.arena <= solve(problem, "auto").arena == 191_488 < warm.arena


@settings(max_examples=40, deadline=None)
@given(graphs(max_nodes=14), st.sampled_from(["greedy", "size"]), st.sampled_from(["search", "cpsat"]))
def test_never_above_the_default_nor_the_callers_start(g, start, solver):
    _need_solver(solver)
    problem = _problem(g)
    warm = solve(problem, start)
    sol = solve(problem, solver, SolveOptions(time_limit=0.001, warm_start=warm))
    assert sol.arena <= min(warm.arena, solve(problem, "auto").arena)


def test_a_callers_start_below_the_default_is_kept_and_the_solve_repeats():
    """A start better than the default's plan (a long search's) is where the solver starts: never above it."""
    problem = _problem(random_dag(22, seed=1))
    warm = solve(problem, "search", SolveOptions(time_limit=5))
    default = solve(problem, "auto")
    assert warm.arena <= default.arena
    runs = [solve(problem, "search", SolveOptions(time_limit=0.001, warm_start=warm)) for _ in range(2)]
    assert runs[0].arena <= warm.arena
    assert runs[0].arena == runs[1].arena and list(runs[0].offsets) == list(runs[1].offsets)


def test_a_ctrl_c_in_the_defaults_run_is_reported_when_the_callers_start_wins(monkeypatch):
    """The default's small search is cut by a Ctrl-C; the caller's (smaller) start wins: the solve still stops and
    says ``interrupted`` instead of searching on after the caller's stop."""
    g = random_dag(22, seed=1)   # (its default searches: greedy 453,632 and size 457,728, searched to 437,248)
    problem = _problem(g)
    warm = solve(problem, "search", SolveOptions(time_limit=5))
    assert "interrupted" not in warm.info
    seen = ctrl_c_in_first_search(monkeypatch)
    sol = solve(problem, "search", SolveOptions(time_limit=5, warm_start=warm))
    assert sol.info.get("interrupted") is True
    assert sol.arena <= warm.arena
    assert len(seen) == 1   # no exact work after the caller's stop
