"""Round 34: a memory budget's candidate schedules stop their clique bound once it passes the budget.

Session 33 made every candidate of up to 64 buffers compute its clique bound before its heuristics (the small
search needs it), and the search for the heaviest clique was most of a budgeted plan of a 60-node in-place graph
on ``streams="auto"`` (0.5-2 s, 50 candidates). A candidate whose bound passes the budget is discarded, so its
search now stops at the first clique past it. These tests count work and compare plans; none is timed."""

from __future__ import annotations

import importlib
import random

import pytest

import memplan
from memplan import GraphBuilder
from memplan.generators import fanout_join
from memplan.lifetimes import buffer_problem
from memplan.problem import clique_lower_bound

problem_mod = importlib.import_module("memplan.problem")
lifetimes_mod = importlib.import_module("memplan.lifetimes")


def inplace_dag(seed: int, n: int = 60) -> memplan.Graph:
    """A random DAG of ``n`` nodes, 40% of them in place, mixed sizes and costs (the shape session 33 slowed)."""
    rng = random.Random(seed)
    b = GraphBuilder(f"ip{seed}", alignment=rng.choice([64, 256]))
    avail = [b.input(f"x{i}", rng.choice([256, 1000, 4096])) for i in range(rng.randint(2, 4))]
    for i in range(n):
        ins = (rng.sample(avail[-4:], rng.randint(1, min(2, len(avail[-4:])))) if rng.random() < 0.5
               else rng.sample(avail, min(len(avail), rng.randint(1, 3))))
        out = b.tensor(f"t{i}", rng.choice([256, 512, 1000, 2048, 4096, 3000]),
                       rng.choice(["intermediate"] * 8 + ["output"]))
        b.node(f"n{i}", "OP", ins, [out], cost=rng.choice([1.0, 2.0, 5.0, 0.5, 10.0]),
               inplace={out: ins[0]} if rng.random() < 0.4 else None)
        avail.append(out)
    return b.build()


def _budget(g: memplan.Graph, frac: float) -> int:
    return _budgets(g, (frac,))[0]


def _budgets(g: memplan.Graph, fracs) -> list[int]:
    """Budgets ``frac`` of the way from the serial arena to the unbudgeted ``streams="auto"`` one (both planned
    once for all of ``fracs``)."""
    serial, free = memplan.plan(g).arena_bytes, memplan.plan(g, streams="auto").arena_bytes
    return [int(serial + frac * (free - serial)) for frac in fracs]


def test_budget_candidates_stop_their_clique_search_past_the_budget(monkeypatch):
    """A budgeted plan searches no candidate's clique past the budget to its end: every clique search that ends
    above the budget was told to stop there, but the first schedule's, planned in full for the report (before:
    50 full searches of 60 buffers, each up to 20,000 expansions)."""
    g = inplace_dag(3)
    budget = _budget(g, 0.1)
    calls: list[tuple[int, int | None]] = []
    real = clique_lower_bound

    def counted(problem, **kw):
        got = real(problem, **kw)
        calls.append((got, kw.get("stop_above")))
        return got

    monkeypatch.setattr(lifetimes_mod, "clique_lower_bound", counted)
    p = memplan.plan(g, streams="auto", memory_budget=budget)
    assert p.arena_bytes <= budget
    past = [c for c in calls if c[0] > budget]
    # (more than 10 before round 49: candidates over their issue order's bound are now rejected before any clique)
    assert len(past) > 5, "the graph no longer has candidates over the budget: the test tests nothing"
    assert [stop for _, stop in past].count(None) <= 1, past
    assert all(stop in (None, budget) for _, stop in past), past


@pytest.mark.parametrize("seed", range(2))
def test_budgeted_plans_are_those_of_the_full_clique_search(seed, monkeypatch):
    """The early stop changes no plan: the same JSON as with the clique searches run to the end."""
    g = inplace_dag(seed)
    budgets = _budgets(g, (0.0, 0.3))
    fast = [memplan.plan(g, streams="auto", memory_budget=b).to_json() for b in budgets]
    monkeypatch.setattr(problem_mod, "_passed", lambda best, stop_above: False)
    assert [memplan.plan(g, streams="auto", memory_budget=b).to_json() for b in budgets] == fast


@pytest.mark.parametrize("seed", range(6))
def test_clique_bound_with_stop_above_passes_it_or_is_the_full_bound(seed):
    """``stop_above``: a bound above it where the full bound is above it, else exactly the full bound."""
    g, sched = fanout_join(40, seed=seed, streams=3)
    problem = buffer_problem(g, memplan.build_happens_before(g, sched), clique=False)
    full = clique_lower_bound(problem)
    for stop in (0, full // 2, full - 1, full, full + 1):
        got = clique_lower_bound(problem, stop_above=stop)
        assert (stop < got <= full) if full > stop else got == full, (stop, got, full)
