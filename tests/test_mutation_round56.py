"""Tests that kill mutants of the solvers, the optimizer, plan writing and the CLI that survived session 56's mutation
run (docs/experiments/mutation_s56.py, its results in docs/experiments/mutation_s56.txt). Each test names the mutant
(id, module, line) it kills; each would pass on that mutant otherwise (a test that cannot fail is a defect)."""
from __future__ import annotations

import numpy as np
import pytest

from memplan.problem import BufferProblem, HBOrder, Solution, Status
from memplan.solvers import heuristics_of, solve, work_seconds
from memplan.solvers import size as size_solver
from memplan.solvers.check import InvalidPacking, check_solution
from memplan.solvers.options import SolveOptions


def _intervals(sizes, lower, upper, **kw) -> BufferProblem:
    return BufferProblem(np.asarray(sizes), np.asarray(lower), np.asarray(upper), **kw)


# --- solvers/check.py ---------------------------------------------------------------------------------------------

def test_check_refuses_a_packing_with_too_few_offsets():
    """mutant 0 (check L34): a solver returning 2 offsets for 3 buffers is named as such, not read as a packing
    (the arena of the 2 it gave would be checked against buffers it never placed)."""
    p = _intervals([8, 8, 8], [0, 0, 0], [1, 1, 1])
    with pytest.raises(InvalidPacking, match="returned 2 offsets for 3 buffers"):
        check_solution(p, Solution(np.array([0, 8]), 24, "x"))


# --- solvers/__init__.py: which packing is returned ---------------------------------------------------------------

def test_heuristics_of_names_the_one_heuristic_asked_for():
    """mutant 10 (solve L219): greedy or size without a time limit keeps that heuristic alone, not auto's set."""
    assert heuristics_of("greedy", SolveOptions()) == ("greedy",)
    assert heuristics_of("size", SolveOptions()) == ("size",)
    assert heuristics_of("search", SolveOptions()) is None
    assert len(heuristics_of("auto", SolveOptions())) > 1


def test_work_seconds_is_the_time_limit_given_else_the_solvers_default():
    """mutant 12 (solve L210): a time limit given is the work, not the exact solver's default."""
    from memplan.solvers.cpsat import DEFAULT_TIME_LIMIT as CPSAT_DEFAULT
    from memplan.solvers.search import DEFAULT_TIME_LIMIT as SEARCH_DEFAULT

    assert work_seconds("search", SolveOptions(time_limit=0.25)) == 0.25
    assert work_seconds("cpsat", SolveOptions(time_limit=0.5)) == 0.5
    assert work_seconds("search", SolveOptions()) == SEARCH_DEFAULT
    assert work_seconds("cpsat", SolveOptions()) == CPSAT_DEFAULT
    assert work_seconds("greedy", SolveOptions(time_limit=1.0)) is None



def test_an_exact_solver_by_name_keeps_the_default_plan_whose_pairs_are_in_place():
    """mutant 11 (solve L124): ``plan(moe(8, 5000), solver="search")`` planned 76,064 B (its packing shifted an
    in-place pair and the problem was solved again with the pair apart) where the default it starts from plans
    61,064 B; the default's plan is kept (CHANGELOG, "Exact solvers by name on in-place pairs")."""
    from memplan import plan
    from memplan.examples import moe

    assert plan(moe(8, 5000), solver="search").arena_bytes == 61_064


# --- solvers/size.py ----------------------------------------------------------------------------------------------

def _dense(n: int = 200, **kw) -> BufferProblem:
    """n buffers all live at once (n(n-1)/2 overlapping pairs, past size's DENSE_OVERLAPS per buffer)."""
    sizes = [32 + 8 * (k % 5) for k in range(n)]
    return _intervals(sizes, [k % 3 for k in range(n)], [10 + k % 4 for k in range(n)], **kw)


def test_size_routes_a_dense_interval_problem_through_windows_with_the_same_placements():
    """mutants 16 and 18 (size L49, L185): a dense interval problem goes the ``windows`` route (16 sent every
    problem the pairs route), whose placements are the pairs route's (18 called ``mend`` on no guard: an
    AttributeError)."""
    p = _dense()
    assert size_solver.dense_route(p) == "windows"
    sol = size_solver.solve(p)
    n = len(p)
    order = np.lexsort((np.arange(n), p.lower, -p.sizes)).tolist()
    offsets = [0] * n
    size_solver._place_pairs(p, order, p.sizes.tolist(), offsets)
    assert sol.offsets.tolist() == offsets
    check_solution(p, sol)


def test_size_sends_a_zero_length_buffer_and_an_ordered_problem_the_pairs_route():
    """mutant 14 (size L49): a problem with a buffer of no lifetime (upper == lower) goes the pairs route; so does a
    multi-stream problem below the HB pair cap (the windows route sees its intervals only: 200 x 1,000 B where its
    happens-before order lets all 200 share 1,000 B). Only interval problems of positive lifetimes take ``windows``."""
    p = _dense()
    upper = p.upper.copy()
    upper[5] = p.lower[5]
    assert size_solver.dense_route(_intervals(p.sizes, p.lower, upper)) == "pairs"
    assert size_solver.dense_route(_intervals([], [], [])) == "pairs"
    # 200 buffers of one stream, each happening-before the next, all overlapping in time: 19,900 overlapping
    # pairs (past 64 a buffer), none a conflict; the windows route sees the intervals only (200 x 1000 B)
    n = 200
    first = np.arange(n).reshape(n, 1)
    none = np.zeros(n, dtype=bool)
    order = HBOrder(first, first + 1, none, none, np.arange(n) + 1, (np.arange(n) + 1,))
    chain = BufferProblem(sizes=np.full(n, 1000), lower=np.arange(n) + 1, upper=np.full(n, n + 1), order=order)
    assert size_solver.dense_route(chain) == "pairs"
    assert size_solver.solve(chain).arena == 1000


def test_size_puts_an_output_over_a_view_exactly_on_its_input():
    """mutant 17 (size L103): an in-place output over a view 128 B into its 256-B input (``inplace_shift``) goes
    exactly there (offset 128 past its input's), not apart from it."""
    p = _intervals([256, 128], [0, 1], [2, 3], compatible=frozenset({(0, 1)}), inplace=((1, 0),),
                   meta={"inplace_shift": {(1, 0): 128}})
    sol = size_solver.solve(p)
    assert sol.offsets[1] - sol.offsets[0] == 128
    assert sol.arena == 256


# --- solvers/greedy.py --------------------------------------------------------------------------------------------

def test_greedy_puts_an_output_over_its_input_only_where_the_bytes_are_free():
    """mutant 26 (greedy L966): among 100 placed conflicting blocks (past ``BULK_BLOCKS``: numpy's path) an in-place
    output whose input's bytes another block holds goes to the best fit (800), not over its input at 0 into that
    block (an overlap ``check_solution`` then refused as a solver bug); the list path likewise."""
    from memplan.solvers.greedy import _fit_listed

    sizes = [8] * 102
    offsets = [8 * k for k in range(100)] + [0, 0]   # buffer 100: the input, at 0 under buffer 0
    js = np.arange(100)
    bulk = (np.asarray(offsets, dtype=np.int64), np.asarray(sizes, dtype=np.int64))
    assert _fit_listed(js, (100, 0), 8, sizes, offsets, bulk, 8) == 800
    assert _fit_listed(js, (100, 0), 8, sizes, offsets, None, 8) == 800
    assert _fit_listed(js[1:], (100, 0), 8, sizes, offsets, bulk, 8) == 0   # (its bytes free: over its input)


# --- solvers/search.py --------------------------------------------------------------------------------------------

def _random_intervals(seed: int, n: int | None = None, *, long: bool = False, **kw) -> BufferProblem:
    """Random 8-aligned intervals: ``n`` buffers (by default 30, 60, 120 or 250 by seed), lives up to ``n / 3`` long
    (up to ``n`` with ``long``)."""
    rng = np.random.default_rng(seed)
    n = n or [30, 60, 120, 250][seed % 4]
    lower = rng.integers(0, n, n)
    return BufferProblem(sizes=rng.integers(1, 64, n) * 8, lower=lower,
                         upper=lower + rng.integers(1, n if long else n // 3, n), alignment=8, **kw)


def test_search_opening_descent_at_the_bound_keeps_what_it_packs():
    """mutants 30 and 31 (search L207, L363): with a budget of few descents the search opens with one descent at the
    bound. 31 took a packing found there for a proof that none exists (bound + 1) and kept its start: 8,392 B
    FEASIBLE where the bound, 7,848 B, packs; on another problem it raised its bound to its start's arena, 13,656 B,
    and called it OPTIMAL where 13,216 B packs. 30 opened on every budget, not only one of few descents, with
    no node limit: a TypeError."""
    # (round 59: seed 2's start is at its bound now, no opening; seed 7 opens, its start 18,456 B)
    s = solve(_random_intervals(7), "search", SolveOptions(time_limit=0.2))
    assert (s.arena, s.status, s.lower_bound) == (17_832, Status.OPTIMAL, 17_832)
    assert s.info.get("opening") == "bound"
    s = solve(_random_intervals(3), "search", SolveOptions(time_limit=0.2))
    assert s.arena <= 13_216 and s.lower_bound <= 13_216
    s = solve(_random_intervals(0), "search", SolveOptions(time_limit=0.002))
    assert s.arena == s.lower_bound == 2496


def test_a_ctrl_c_before_the_search_fits_anything_is_the_callers_stop(monkeypatch):
    """mutant 28 (search L240): a Ctrl-C (``KeyboardInterrupt``) in the search before any packing fits the capacity
    stops the solve as a KeyboardInterrupt; 28 turned it into "no packing within capacity 16424 found" (an
    OverCapacity, which ``auto`` caught, and the Ctrl-C was lost)."""
    from memplan.solvers import search

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search._Minimiser, "try_capacity", interrupted)
    monkeypatch.setattr(search._Minimiser, "shot", interrupted)
    p = _random_intervals(3, 120, long=True)
    assert solve(p, "size").arena > p.lower_bound == 16_424   # (the start is above the capacity: nothing fits yet)
    capped = _random_intervals(3, 120, long=True, capacity=p.lower_bound)
    with pytest.raises(KeyboardInterrupt):
        solve(capped, "search", SolveOptions(time_limit=1))

# --- solvers/cpsat.py ---------------------------------------------------------------------------------------------

def test_cpsat_refuses_a_problem_past_its_pair_limit_before_any_work(monkeypatch):
    """mutant 34 (cpsat L216): a problem with more overlapping pairs than ``MAX_PAIRS`` is refused by name and
    number (10 buffers all live at once: 45 pairs, over a limit of 44), before a model is built."""
    from memplan.errors import SolverError
    from memplan.solvers import cpsat

    monkeypatch.setattr(cpsat, "MAX_PAIRS", 44)
    p = _intervals([8] * 10, [0] * 10, [1] * 10)
    with pytest.raises(SolverError, match="10 buffers with 45 overlapping pairs, over CP-SAT's limit of 44"):
        cpsat.check_size(p)
    monkeypatch.setattr(cpsat, "MAX_PAIRS", 45)
    cpsat.check_size(p)


def test_cpsat_keeps_the_start_of_a_component_whose_model_would_outlast_its_share(monkeypatch):
    """mutant 36 (cpsat L273): a component whose model's estimated cost (``model_seconds``) is past its share of the
    time limit keeps its heuristic offsets, counted as skipped, deterministically (no clock read); 36 solved it
    anyway (the limit overrun that rule prevents)."""
    from memplan.solvers import cpsat

    p = _random_intervals(3, 120, long=True)
    monkeypatch.setattr(cpsat, "model_seconds", lambda sub: 1e6)
    s = solve(p, "cpsat", SolveOptions(time_limit=0.5))
    assert s.info.get("skipped_components") == 1 and s.info.get("solved_components") == 0
    # (its start: the default's plan, skyline's walks since round 61, 17,016 B; size's alone 17,216 B)
    assert s.arena == solve(p, "auto").arena == 17_016 and s.info.get("start") == "skyline"

# --- optimize/streams.py ------------------------------------------------------------------------------------------

def test_a_schedule_built_without_costs_has_no_makespan():
    """mutant 40 (streams L760): ``to_schedule`` (``scored_schedule`` without costs) returns the schedule and NaN;
    simulating it with no costs raised a TypeError."""
    import math

    from memplan.examples import moe
    from memplan.optimize.streams import build_units, fixed_order, scored_schedule, to_schedule

    g = moe(4, 1000)
    U = build_units(g, [1.0] * len(g.nodes))
    order = fixed_order(U)
    for ustream in ([0] * len(U.members), [k % 2 for k in range(len(U.members))]):
        sched, ms = scored_schedule(g, U, order, ustream)
        assert math.isnan(ms)
        assert to_schedule(g, U, order, ustream) == sched
        assert len(sched.order) == len(g.nodes)


def test_a_view_reader_waits_for_each_streams_latest_writer():
    """mutant 44 (streams L309): ``latest_per_stream`` keeps each stream's latest writer of a view's root; keeping
    the first one seen made the 24-stream list schedule of ``moe_graph(2, 80)`` place nodes on stale clocks: 284
    events where 268 give the same 334 us."""
    from memplan.benchmarks.scale import moe_graph
    from memplan.optimize import CostModel, optimize

    opt = optimize(moe_graph(2, 80), 1024, cost_model=CostModel(event_us=0.0))
    c = next(c for c in opt.pool if c.name == "list-eft-k24")
    assert (c.schedule.num_streams, len(c.schedule.events), round(c.makespan_us, 3)) == (24, 268, 334.0)

# --- optimize/budget.py -------------------------------------------------------------------------------------------

def test_an_event_cap_thins_two_streams_on_fork_joins():
    """mutants 49 and 50 (budget L299, L479): under ``max_events=4`` ``moe_graph(4, 16)`` runs in 2,124 us on 2
    thinned streams and ``moe_graph(3, 24)`` in 2,109 us. 49 took a prefix whose replay is over the cap for one
    within it in the thinning's bisection (2,726 us on 3 streams; 3,098 us); 50 kept the pool's best where thinning found a faster schedule and unpacked
    None where it found none (a TypeError at ``max_events=0``)."""
    from memplan import simulate
    from memplan.benchmarks.scale import moe_graph
    from memplan.optimize import CostModel, graph_optimize

    free = CostModel(event_us=0.0)
    for g, cap, want in ((moe_graph(4, 16), 4, 2124.0), (moe_graph(3, 24), 4, 2109.0), (moe_graph(4, 16), 0, 2812.0)):
        s = graph_optimize(g, 1024, cost_model=free, max_events=cap)
        assert len(s.events) <= cap
        assert simulate(g, s, free).makespan_us == pytest.approx(want)


# --- plan JSON writing (planfile) ---------------------------------------------------------------------------------

def _small_plan():
    from memplan import plan
    from memplan.examples import moe

    return plan(moe(2, 1000))


def test_plan_json_leaves_the_timings_out_unless_asked():
    """mutants 60 and 63 (planfile L174, L184): the solver block's ``seconds`` (a wall-clock time) is written only
    with ``timings=True``, so the same input gives byte-identical JSON; ``timings`` must be a bool (``"no"``
    wrote them)."""
    import json

    from memplan.errors import PlanFormatError

    p = _small_plan()
    assert "seconds" in p.solver
    assert "seconds" not in json.loads(p.to_json())["solver"]
    assert json.loads(p.to_json(timings=True))["solver"]["seconds"] == p.solver["seconds"]
    assert p.to_json() == _small_plan().to_json()
    with pytest.raises(PlanFormatError, match="timings must be True or False"):
        p.to_json(timings="no")
