"""The one checked solve, work budgets instead of the wall clock, FIT stopping early, no recursion limit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from problems import random_intervals

import memplan
import memplan.examples
from memplan.errors import SolverError
from memplan.problem import BufferProblem, Solution, Status, find_collision
from memplan.solvers import Objective, SearchParams, SolveOptions, check_solution, get_solver, solve


def unpackable(seed: int = 5, n: int = 600) -> BufferProblem:
    """Sizes that rarely tile: the search cannot reach the load bound in a short budget."""
    return random_intervals(seed, n, max_size=1000, unit=8)


def test_budgeted_search_repeats_exactly_when_it_stops_on_its_budget():
    p = unpackable()
    runs = [solve(p, "search", SolveOptions(time_limit=0.05, wall_limit=600)) for _ in range(3)]
    assert runs[0].status == Status.FEASIBLE  # the budget, not a proof, ended it
    assert "stopped" not in runs[0].info
    for r in runs[1:]:
        assert r.offsets.tolist() == runs[0].offsets.tolist()
        assert r.info["nodes"] == runs[0].info["nodes"]


def test_time_limited_plans_are_byte_identical():
    from memplan.generators import fanout_join

    g, sched = fanout_join(2000, streams=4, seed=1)
    for solver in ("search", "auto"):
        a, b, c = (memplan.plan(g, sched, solver=solver, time_limit=0.1).to_json() for _ in range(3))
        assert a == b == c
        assert '"stopped"' not in a


def test_wall_clock_safety_stop_is_reported():
    p = unpackable()
    sol = solve(p, "search", SolveOptions(time_limit=1000, wall_limit=0.001))  # fires before any proof
    assert sol.info.get("stopped") == "wall_clock"
    assert find_collision(p, sol.offsets) is None


def test_auto_with_a_capacity_stops_at_the_first_fit():
    p = random_intervals()
    heur = min(get_solver("greedy")(p).arena, get_solver("size")(p).arena)
    fit = SolveOptions(time_limit=30, objective=Objective.FIT)
    easy = BufferProblem(p.sizes, p.lower, p.upper, capacity=heur)
    sol = solve(easy, "auto", fit)
    assert sol.arena <= heur and set(sol.info["tried"]) == {"greedy", "size"}
    # a capacity below every heuristic: the search fits it and CP-SAT never runs
    tight = BufferProblem(p.sizes, p.lower, p.upper, capacity=heur - 16)
    sol = solve(tight, "auto", fit)
    assert sol.arena <= heur - 16
    assert "cpsat" not in sol.info["tried"]
    # minimising the same problem does go on past the capacity
    assert "search" in solve(tight, "auto", SolveOptions(time_limit=0.05)).info["tried"]


def test_deep_search_needs_no_recursion_limit():
    # a chain of 3,000 overlapping buffers: the search places them all, one frame each
    n = 3000
    p = BufferProblem(sizes=np.full(n, 4), lower=np.arange(n), upper=np.arange(n) + 2)
    before = sys.getrecursionlimit()
    sol = solve(p, "search", SolveOptions(time_limit=5, search=SearchParams(bound_first=True)))
    assert sys.getrecursionlimit() == before
    assert sol.status == Status.OPTIMAL and sol.arena == 8


def test_search_switches_change_the_work_not_the_answer():
    p = random_intervals(seed=2, n=40)
    full = solve(p, "search", SolveOptions(time_limit=20))
    bare = solve(p, "search", SolveOptions(time_limit=20, search=SearchParams(
        hatless_pruning=False, dynamic_decomposition=False, restarts=False, preorders=("WAT",))))
    assert full.status == bare.status == Status.OPTIMAL
    assert full.arena == bare.arena


def test_check_refuses_an_overlap_and_names_the_buffers():
    p = BufferProblem(sizes=[8, 8, 8], lower=[0, 1, 5], upper=[3, 4, 6], names=("a", "b", "c"))
    bad = Solution(np.array([0, 4, 0]), 12, "broken")
    with pytest.raises(SolverError, match="'a' and 'b'"):
        check_solution(p, bad)
    check_solution(p, Solution(np.array([0, 8, 0]), 16, "fine"))
    with pytest.raises(SolverError, match="reported arena"):
        check_solution(p, Solution(np.array([0, 8, 0]), 15, "liar"))


def test_check_refuses_each_malformed_solution():
    """check_solution: a wrong offset count, a negative or misaligned offset, each a SolverError naming it."""
    p = BufferProblem(sizes=[8, 8], lower=[0, 2], upper=[2, 4], alignment=8, names=("a", "b"))
    check_solution(p, Solution(np.array([0, 0]), 8, "fine"))  # apart in time: offset 0 twice is fine
    with pytest.raises(SolverError, match="returned 1 offsets for 2 buffers"):
        check_solution(p, Solution(np.array([0]), 8, "short"))
    with pytest.raises(SolverError, match="'b' at negative offset -8"):
        check_solution(p, Solution(np.array([8, -8]), 16, "negative"))
    p1 = BufferProblem(sizes=[8, 8], lower=[0, 2], upper=[2, 4], alignment=1, names=("a", "b"))
    with pytest.raises(SolverError, match="'b' at negative offset -1"):  # -1 is negative; 0 is not
        check_solution(p1, Solution(np.array([0, -1]), 8, "negative"))
    with pytest.raises(SolverError, match="'b' at offset 4, not a multiple of the alignment 8"):
        check_solution(p, Solution(np.array([0, 4]), 12, "misaligned"))


def test_check_interval_sweep_edges():
    """The interval sweep: touching bytes or times, empty buffers and empty intervals are no collision;
    two colliding buffers alone are one."""
    # b (live from 1) below a, c (live from 2) above a: both touch a's bytes exactly
    p = BufferProblem(sizes=[8, 8, 8], lower=[0, 1, 2], upper=[4, 4, 4])
    check_solution(p, Solution(np.array([8, 0, 16]), 24, "touching"))
    # a zero-size buffer inside a live one, and a buffer with an empty interval over it
    p = BufferProblem(sizes=[8, 0, 8], lower=[0, 1, 2], upper=[4, 3, 2])
    check_solution(p, Solution(np.array([0, 4, 0]), 8, "empty"))
    # exactly two buffers, colliding
    p = BufferProblem(sizes=[8, 8], lower=[0, 1], upper=[4, 2], names=("a", "b"))
    with pytest.raises(SolverError, match="'a' and 'b'"):
        check_solution(p, Solution(np.array([0, 4]), 12, "two"))
    with pytest.raises(SolverError, match="'a' and 'b'"):
        check_solution(p, Solution(np.array([4, 0]), 12, "two"))
    # the collision is with the neighbour just below, not with another live buffer
    p = BufferProblem(sizes=[8, 8, 8], lower=[0, 0, 1], upper=[4, 4, 2], names=("a", "c", "b"))
    with pytest.raises(SolverError, match="'a' and 'b'"):
        check_solution(p, Solution(np.array([0, 100, 4]), 108, "three"))


def test_check_general_problems_pairwise_up_to_the_limit():
    """A general (in-place) problem is checked by its conflict relation, pairwise up to PAIRWISE_LIMIT buffers
    inclusive: its compatible pair may share bytes, other overlaps may not."""
    from memplan.solvers.check import PAIRWISE_LIMIT

    p = BufferProblem(sizes=[8, 8, 8], lower=[0, 0, 5], upper=[2, 2, 6], compatible=frozenset({(0, 1)}))
    assert not p.is_interval
    check_solution(p, Solution(np.array([0, 0, 0]), 8, "inplace"))
    n = PAIRWISE_LIMIT
    lower = np.arange(n)
    lower[3] = 2  # buffers 2 and 3 are both live over [2, 3)
    p = BufferProblem(sizes=np.ones(n, dtype=np.int64), lower=lower, upper=lower + 1, compatible=frozenset({(0, 1)}))
    with pytest.raises(SolverError, match="'2' and '3'"):
        check_solution(p, Solution(np.zeros(n, dtype=np.int64), 1, "clash"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6), st.integers(0, 4), st.integers(0, 40)),
                min_size=1, max_size=25))
def test_interval_sweep_agrees_with_the_pairwise_check(rows):
    lower = np.array([r[0] for r in rows])
    p = BufferProblem(sizes=np.array([r[2] for r in rows]), lower=lower, upper=lower + np.array([r[1] for r in rows]))
    off = np.array([r[3] for r in rows])
    sol = Solution(off, int((off + p.sizes).max()), "random")
    pairwise = find_collision(p, off)
    if pairwise is None:
        check_solution(p, sol)
    else:
        said = r"solver 'random' overlapped conflicting buffers '\d+' and '\d+' \(a solver bug\)"
        with pytest.raises(SolverError, match=said):
            check_solution(p, sol)


def test_options_out_of_range_are_memplan_errors():
    import math

    from memplan.errors import GraphError, MemplanError, PlanFormatError, ScheduleError

    g = memplan.examples.chain()
    for bad in (math.nan, -1, 0, math.inf, "1", True):
        with pytest.raises(SolverError, match="time_limit"):
            memplan.plan(g, solver="search", time_limit=bad)
    with pytest.raises(SolverError, match="workers"):
        SolveOptions(workers=0)
    with pytest.raises(ScheduleError, match="1..1024"):
        memplan.plan(g, streams=2000)
    with pytest.raises(ScheduleError, match="1..1024"):
        memplan.plan(g, devices=2000)
    with pytest.raises(PlanFormatError, match="NoneType"):
        memplan.verify(g, None)
    with pytest.raises(GraphError, match="dict"):
        memplan.plan({"format": "memplan.graph/1"})
    with pytest.raises(GraphError, match="file path"):
        memplan.load_graph(5)  # an int would be taken for a file descriptor
    with pytest.raises(PlanFormatError, match="file path"):
        memplan.load_plan({})
    assert issubclass(SolverError, MemplanError)


def test_default_bound_of_a_general_problem_is_sound():
    # in-place (compatible) pairs may share bytes: the interval peak is no bound for them
    p = BufferProblem(sizes=[8, 8], lower=[0, 0], upper=[2, 2], compatible=frozenset({(0, 1)}))
    assert p.lower_bound == 0
    assert BufferProblem(sizes=[8, 8], lower=[0, 0], upper=[2, 2]).lower_bound == 16
    sol = solve(p, "cpsat", SolveOptions(time_limit=5))
    assert sol.lower_bound <= sol.arena


def test_check_false_still_verifies_what_the_solver_check_could_not(monkeypatch):
    """Above the solvers' pairwise limit a general (multi-stream) problem is not checked pair by pair;
    plan(check=False) must then still run the verifier, or a solver bug would become a plan."""
    from memplan import GraphBuilder, schedule_with_events
    from memplan.errors import UnsafePlan
    from memplan.problem import align_up, arena_of
    from memplan.solvers.check import PAIRWISE_LIMIT

    solvers = sys.modules["memplan.solvers"]
    real = solvers.get_solver

    def broken(name):
        def all_at_zero(problem, options):
            if problem.order is None:
                return real(name)(problem, options)
            off = np.zeros(len(problem), dtype=np.int64)  # a bug only on the multi-stream path
            # (one buffer above the bound: an arena below a proven bound is refused before the verifier)
            off[-1] = align_up(int(problem.lower_bound or 0), problem.alignment)
            return Solution(off, arena_of(problem, off), "broken")
        return all_at_zero

    monkeypatch.setattr(solvers, "get_solver", broken)
    n = PAIRWISE_LIMIT // 2 + 100
    b = GraphBuilder("chains")
    for c in range(2):
        b.input(f"c{c}x0", 256)
        for i in range(1, n + 1):
            b.node(f"c{c}n{i}", "ADD", [f"c{c}x{i - 1}"],
                   b.output(f"c{c}x{i}", 256) if i == n else b.intermediate(f"c{c}x{i}", 256))
    g = b.build()
    order = [f"c{c}n{i}" for i in range(1, n + 1) for c in range(2)]
    s = schedule_with_events(g, order, {f"c{c}n{i}": c for c in range(2) for i in range(1, n + 1)})
    with pytest.raises(UnsafePlan, match=r"rule 3: tensors 'c[01]x\d+' and 'c[01]x\d+' overlap in the arena"):
        memplan.plan(g, s, solver="greedy", check=False)
