"""Round 78 (solve78): the solvers' time limits, bounds and claims against counted work and brute-force optima.

Why: a solver's ``time_limit`` is a deterministic work budget for the whole solve (``SolveOptions``), and the checks
here count that work rather than time it, so they hold on any machine and load.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from memplan.problem import BufferProblem
from memplan.solvers import Objective, SearchParams, SolveOptions, search, solve
from memplan.solvers.exact_pairs import shifted_pairs

# 18 buffers (alignment 8) with 15 in-place pairs: the search's plan at ``time_limit=0.01`` overlaps pairs off their
# inputs where no move puts them right, so ``solvers._solve`` solves the problem again with those pairs apart
INPLACE_RESOLVED = dict(
    sizes=[3, 3, 0, 5, 1, 0, 100, 100, 1, 5, 64, 5, 3, 3, 100, 64, 100, 256],
    lower=[4, 2, 4, 3, 2, 5, 0, 1, 3, 1, 3, 6, 3, 5, 2, 1, 2, 6],
    upper=[8, 6, 9, 5, 4, 7, 4, 4, 8, 5, 8, 6, 5, 7, 4, 6, 4, 8],
    inplace=((1, 0), (13, 1), (10, 4), (12, 4), (15, 4), (4, 16), (5, 11), (6, 10), (16, 6), (7, 8), (10, 7),
             (16, 7), (10, 12), (15, 12), (17, 13)),
)


def _inplace_problem(spec: dict, alignment: int = 8) -> BufferProblem:
    """``spec``'s buffers, each in-place pair also ``compatible`` (as ``lifetimes`` makes them)."""
    return BufferProblem(sizes=np.array(spec["sizes"]), lower=np.array(spec["lower"]), upper=np.array(spec["upper"]),
                         alignment=alignment, inplace=spec["inplace"],
                         compatible=frozenset((min(p), max(p)) for p in spec["inplace"]))


def _spy_search_work(monkeypatch) -> list[int]:
    """The work units (``info["work"]``) of every search run under a budget of work from now on (``auto.polish``'s
    node budgets, which a time limit does not change, are left out)."""
    works: list[int] = []
    real = search.solve

    def spy(*args, **kwargs):
        sol = real(*args, **kwargs)
        if kwargs.get("nodes") is None:
            works.append(int(sol.info.get("work", 0)))
        return sol

    monkeypatch.setattr(search, "solve", spy)
    return works


def test_search_solved_again_with_in_place_pairs_apart_keeps_one_time_limit(monkeypatch):
    """``solve(p, "search", time_limit=0.01)`` (120 work units) spent 240: the round that solved the problem again
    with the shifted pairs apart got the whole limit again (a limit per round). The rounds share the one limit now,
    and the plan is still a checked packing with every in-place pair exact or apart."""
    p = _inplace_problem(INPLACE_RESOLVED)
    limit = 0.01
    budget = int(limit * SearchParams().nodes_per_second)
    works = _spy_search_work(monkeypatch)
    sol = solve(p, "search", SolveOptions(time_limit=limit))
    assert len(works) >= 1 and sum(works) <= budget, (works, budget)
    assert sol.arena >= int(p.lower_bound or 0)
    assert shifted_pairs(p, sol.offsets) == []


def test_a_round_left_less_than_a_unit_of_work_is_not_searched():
    """Rounds that spent 360 and then 240 of ``time_limit=0.05``'s 600 units left 0.05 - 0.03 - 0.02 = 3.5e-18 s in
    floats, and the next round ran with that as its limit: a search of no work, whose refusal of a capacity read
    "within a work budget of 3.46945e-18s". Less than a unit of work left is none (the default solve's plan instead)."""
    from memplan.problem import Solution
    from memplan.solvers import _budget_left

    p = _inplace_problem(INPLACE_RESOLVED)

    def spent(units: int) -> Solution:
        return Solution(np.zeros(len(p), dtype=np.int64), 0, "search", info={"work": units})

    left = _budget_left(p, "search", SolveOptions(time_limit=0.05), spent(360))
    assert left.time_limit == pytest.approx(0.02)
    assert _budget_left(p, "search", left, spent(240)) is None


# 12 in-place pairs (alignment 1): ``auto`` packs them in 426 B, every pair exact or apart; the search's plan shifts a
# pair no move puts right, and solved again with it apart, that stricter problem has no packing within 426 B
INPLACE_CAPACITY = dict(
    sizes=[192, 15, 24, 0, 192, 15, 24, 24, 300, 300, 15, 3],
    lower=[2, 6, 2, 1, 2, 6, 4, 0, 0, 5, 3, 4],
    upper=[6, 9, 7, 2, 4, 10, 7, 0, 0, 10, 8, 7],
    inplace=((1, 0), (3, 0), (9, 0), (1, 8), (6, 2), (9, 2), (4, 11), (6, 9), (7, 8), (10, 7), (7, 11), (9, 10)),
)


def test_search_never_refuses_a_capacity_that_an_in_place_plan_fits():
    """``search`` at the capacity of ``auto``'s own plan (426 B, its in-place pairs exact) raised OverCapacity "none
    exists; best arena 534, lower bound 492": the bound its second solve proved with a shifted pair apart, a problem
    stricter than the one asked (the contract lets the pair share). It fits now, and a bound of the stricter problem
    is never claimed for the problem (``exact_pairs.contract_claim``)."""
    p = _inplace_problem(INPLACE_CAPACITY, alignment=1)
    witness = solve(p, "auto")
    assert witness.arena == 426 and shifted_pairs(p, witness.offsets) == []
    sol = solve(replace(p, capacity=426), "search", SolveOptions(time_limit=0.05))
    assert sol.arena <= 426 and shifted_pairs(p, sol.offsets) == []
    assert sol.lower_bound <= int(p.lower_bound or 0) and int(sol.info.get("bound", 0)) <= 426


# 18 buffers (alignment 8) with 15 pairs that may share bytes (``compatible``, no in-place entries): ``auto`` packs them
# in 397 B, the heuristics in 440 B, its small search (``auto.polish``) the rest of the way
POLISHED = dict(
    sizes=[3, 3, 0, 5, 1, 0, 100, 100, 1, 5, 64, 5, 3, 3, 100, 64, 100, 256],
    lower=[4, 2, 4, 3, 2, 5, 0, 1, 3, 1, 3, 6, 3, 5, 2, 1, 2, 6],
    upper=[8, 6, 9, 5, 4, 7, 4, 4, 8, 5, 8, 6, 5, 7, 4, 6, 4, 8],
    compatible=frozenset({(0, 1), (4, 10), (4, 16), (5, 11), (13, 17), (7, 10), (7, 16), (4, 12), (4, 15), (1, 13),
                          (6, 10), (6, 16), (12, 15), (10, 12), (7, 8)}),
)


@pytest.mark.parametrize("objective", [Objective.MINIMIZE, Objective.FIT])
def test_auto_fits_a_capacity_its_own_plan_fits(objective):
    """``solve(p, "auto")`` packs 397 B; with ``capacity=397`` it raised OverCapacity "no packing within capacity 397
    found by the auto heuristics; best arena 440": under a capacity its small search had the capacity as a hard cap, so
    from heuristics above it the search had no start and spent its nodes on shots at the capacity alone. A capacity
    never makes ``auto`` worse now: the same 397 B plan, whichever the objective."""
    p = BufferProblem(sizes=np.array(POLISHED["sizes"]), lower=np.array(POLISHED["lower"]),
                      upper=np.array(POLISHED["upper"]), alignment=8, compatible=POLISHED["compatible"])
    free = solve(p, "auto")
    assert free.arena == 397 and free.info["tried"]["greedy"] == 440
    capped = solve(replace(p, capacity=397), "auto", SolveOptions(objective=objective))
    assert capped.arena == 397 and capped.offsets.tolist() == free.offsets.tolist()
