"""Round 60 (budget60): what a ``time_limit`` adds to a memory budget's search beyond the limit itself.

With ``memory_budget`` and an exact solver (``auto`` with a time limit, ``search``, ``cpsat``) the plan (a) replayed
every fork give-back of the candidate pool only to count them (each probe's share of the limit is fixed by that
count), where the issue order all of them share was bounded over the budget, so none could fit; and (b) searched
the conflict cliques of every candidate its heuristics rejected twice, once in the cheap solve and again, stopped
at the same budget, in the exact probe. Both now happen once (or not at all), and the plans are the same bytes.
Nothing here is timed: calls are counted.
"""

from __future__ import annotations

import importlib
from collections import Counter

import pytest
from test_time_round60 import moe

import memplan
import memplan.optimize.budget as budget_mod
import memplan.optimize.candidates as cand_mod
from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.lifetimes import issue_order_bound
from memplan.optimize.budget import give_back_order
from memplan.optimize.candidates import budget_tiers, candidates
from memplan.optimize.events import Replay

plan_mod = importlib.import_module("memplan.plan")   # (``memplan.plan`` the attribute is the function)


def _old_tiers(graph, cands, max_events, memory_budget, *, deadline=None):
    """``exact_budget_tiers`` as the plan took it before: every give-back listed (scored, replayed) and counted."""
    tiers = budget_tiers(graph, cands, max_events)
    return tiers, len(tiers[1])


@pytest.mark.parametrize("make", [lambda: moe(12), lambda: random_dag(400), lambda: layered_graph(300)])
@pytest.mark.parametrize("streams", ["auto", 3])
def test_give_backs_counted_as_the_pool_lists_them(make, streams):
    """``own_and_give_backs``: the pool's own candidates, in its order, and exactly as many give-backs as it lists
    (the prefixes whose streams repeat one another, or an optimizer's candidate, counted once or not at all)."""
    from memplan.optimize.budget import own_and_give_backs
    from memplan.optimize.candidates import _with_low_memory

    g = make()
    cands = candidates(g, streams=streams)
    own, give_backs, _ = budget_tiers(g, cands)
    own2, count = own_and_give_backs(g, cands.optimized)
    own2 = _with_low_memory(g, cands.optimized, own2, None)   # (round 79: both tiers take the low-memory schedules)
    assert count == len(give_backs) > 0
    assert [(r.name, r.schedule, r.makespan_us) for r in own] == [(r.name, r.schedule, r.makespan_us) for r in own2]


def _counting_replays(monkeypatch) -> Counter:
    """Counts of ``Replay`` runs made by the budget module (``branch``: a give-back prefix's replay)."""
    seen: Counter = Counter()
    real_branch = Replay.branch

    def branch(self, *a, **kw):
        seen["branch"] += 1
        return real_branch(self, *a, **kw)

    monkeypatch.setattr(Replay, "branch", branch)
    real_sched = budget_mod._schedule_of

    def schedule_of(*a, **kw):
        seen["schedule"] += 1
        return real_sched(*a, **kw)

    monkeypatch.setattr(budget_mod, "_schedule_of", schedule_of)
    return seen


@pytest.mark.parametrize("solver, limit", [("auto", 0.05), ("search", 0.2)])
def test_budget_probes_skip_give_backs_that_cannot_fit(monkeypatch, solver, limit):
    """A 12-expert MoE at its serial arena: every give-back shares one issue order bounded at 498,688 B, over the
    299,008 B budget. Before, the exact path replayed each prefix (``Replay.branch``) and made the schedules of the
    24 it tried, which their bound then rejected; now none, and the plan is the very bytes of the old path's."""
    g = moe(12)
    budget = memplan.plan(g).arena_bytes
    cands = candidates(g, streams="auto")
    assert issue_order_bound(g, give_back_order(g, cands.optimized)) > budget
    seen = _counting_replays(monkeypatch)
    p = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=limit)
    assert p.arena_bytes <= budget
    assert seen["branch"] == 0 and seen["schedule"] == 0, seen
    monkeypatch.setattr(cand_mod, "exact_budget_tiers", _old_tiers)
    seen.clear()
    old = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=limit)
    assert seen["branch"] > 0 and seen["schedule"] > 0   # (the old path did replay and make them)
    assert old.to_json() == p.to_json()


def test_give_backs_that_may_fit_are_still_listed():
    """``random_dag(300)`` at its serial arena: the give-backs' order is bounded at 1,386,496 B, under the
    1,495,040 B budget, so they are listed (and replayed) as before, and the count is the list's."""
    from memplan.optimize.candidates import exact_budget_tiers

    g = random_dag(300)
    budget = memplan.plan(g).arena_bytes
    cands = candidates(g, streams="auto")
    tiers, count = exact_budget_tiers(g, cands, None, budget)
    assert count == len(tiers[1]) > 0
    assert tiers == budget_tiers(g, cands)


def test_event_cap_keeps_the_listed_give_backs():
    """Under ``max_events`` a prefix is dropped by its replayed events: the give-backs are listed as before."""
    from memplan.optimize.candidates import exact_budget_tiers

    g = moe(12)
    budget = memplan.plan(g).arena_bytes
    cands = candidates(g, streams="auto", max_events=10)
    tiers, count = exact_budget_tiers(g, cands, 10, budget)
    assert tiers == budget_tiers(g, cands, 10) and count == len(tiers[1])


def _problem_key(problem) -> tuple:
    return problem.names, problem.lower.tobytes(), problem.upper.tobytes(), problem.lower_bound


@pytest.mark.parametrize("solver", ["auto", "search"])
def test_clique_bound_once_per_schedule_and_budget(monkeypatch, solver):
    """Each candidate the heuristics reject is probed exactly; before, the probe searched the same problem's cliques
    again, stopped at the same budget (a 12-expert MoE: 2 searches for each of those schedules). Now once per
    problem and ``stop_above``, and the plan is the same bytes as with a search on every call."""
    g = moe(12)
    budget = memplan.plan(g).arena_bytes
    calls: Counter = Counter()
    real = plan_mod.with_clique_bound

    def spy(problem, stop_above=None):
        calls[_problem_key(problem), stop_above] += 1
        return real(problem, stop_above=stop_above)

    monkeypatch.setattr(plan_mod, "with_clique_bound", spy)
    p = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=0.05)
    assert sum(1 for (_, above) in calls if above == budget) >= 3   # (probes did bound their problems at the budget)
    assert max(calls.values()) == 1, calls.most_common(2)
    # the same plan with the cache bypassed: every call searches
    monkeypatch.setattr(plan_mod, "_clique_bounded", lambda problem, above, reuse: real(problem, stop_above=above))
    again = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=0.05)
    assert again.to_json() == p.to_json()


@pytest.mark.filterwarnings("ignore::memplan.errors.UnusedOption")   # (CP-SAT's few ms of the share: unsearched)
def test_order_bound_once_per_schedule(monkeypatch):
    """A candidate its issue order's bound rejects in the cheap solve was bounded again in its exact probe; now the
    bound is computed once per schedule tried (``random_dag(300)`` at its serial arena: every own candidate's
    order is bounded over the budget and probed)."""
    g = random_dag(300)
    budget = memplan.plan(g).arena_bytes
    calls: list = []
    real_bound = plan_mod.issue_order_bound

    def bound(graph, order):
        calls.append(order)
        return real_bound(graph, order)

    tried: set = set()
    real_solve = plan_mod.solve_schedule

    def solve(graph, schedule, *a, **kw):
        if kw.get("over") is not None:
            tried.add((schedule.order, schedule.streams, schedule.events))
        return real_solve(graph, schedule, *a, **kw)

    monkeypatch.setattr(plan_mod, "issue_order_bound", bound)
    monkeypatch.setattr(plan_mod, "solve_schedule", solve)
    p = memplan.plan(g, streams="auto", memory_budget=budget, time_limit=0.05)
    assert p.arena_bytes <= budget
    assert len(tried) >= 3 and len(calls) <= len(tried), (len(calls), len(tried))
