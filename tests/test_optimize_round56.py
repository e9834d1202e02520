"""Round 56, the cost of ``max_events``' search over stream counts (``optimize/capsearch.py``, ``budget.py``).

``bisect_streams`` bisected the stream count between the ladder's counts, every probe a list schedule of the whole
graph: ``wide_graph(21000)`` on 1,024 streams under ``max_events=1000`` probed 18 counts, all over the cap (the cap
is spent exactly at 501 streams). It now interpolates, makes no probe where the bracket's lower count spends the cap
already, and makes at most ``PROBE_UNITS // (2 * units)`` per scheduler. With a memory budget beside the cap, the
candidate pool that ``limit_events`` chose from was built again by ``budget_tiers``; now it is built once.
"""

from __future__ import annotations

import pytest

import memplan
import memplan.optimize.budget as budget_module
import memplan.optimize.candidates as candidates_module
import memplan.optimize.capsearch as capsearch
from memplan import simulate
from memplan.benchmarks.scale import moe_graph, random_dag, wide_graph
from memplan.optimize import CostModel, graph_optimize, optimize
from memplan.optimize.budget import candidate_pool

FREE = CostModel(event_us=0.0)


def _probes(monkeypatch) -> list[int]:
    """The stream counts ``bisect_streams`` schedules at, in order (its only list schedules)."""
    made: list[int] = []
    real = capsearch.list_schedule

    def counting(U, k, *args, **kw):
        made.append(k)
        return real(U, k, *args, **kw)

    monkeypatch.setattr(capsearch, "list_schedule", counting)
    return made


def _capped(g, cap, model=FREE):
    s = graph_optimize(g, 1024, cost_model=model, max_events=cap)
    assert len(s.events) <= cap
    return s, simulate(g, s, model).makespan_us


def test_no_probe_where_the_bracket_spends_the_cap(monkeypatch):
    """``wide_graph(300)`` under ``max_events=100``: 51 streams need exactly 100 events (2 per side stream), so no
    count above fits; bisection probed 57, 54 and 52 streams with each scheduler (6 list schedules), now none."""
    made = _probes(monkeypatch)
    s, ms = _capped(wide_graph(300), 100)
    assert made == []
    assert (s.num_streams, len(s.events), ms) == (51, 100, 139.0)


def test_interpolation_lands_on_the_count(monkeypatch):
    """``wide_graph(300)`` under ``max_events=99``: 50 streams (98 events) fit, 64 (126) do not; the line through
    them puts the cap at 50.5 streams, so one probe per scheduler (51: 100 events, over) settles it, where bisection
    probed 57, 53 and 51."""
    made = _probes(monkeypatch)
    s, ms = _capped(wide_graph(300), 99)
    assert made == [51, 51]
    assert (s.num_streams, len(s.events), ms) == (50, 98, 141.0)


def test_interpolation_keeps_the_fork_joins_in_sequence_answer(monkeypatch):
    """``moe_graph(4, 64)`` under ``max_events=100`` (round 55: 13 streams, 96 events, 920 us): the same answer, in
    no more probes than bisection made (its ``listed`` bracket 12..16 at 8 events per side stream: 13, then 14)."""
    made = _probes(monkeypatch)
    s, ms = _capped(moe_graph(4, 64), 100)
    assert ms <= 920.0 + 1e-6, (s.num_streams, len(s.events), ms)
    assert len(made) <= 4 and 13 in made


def test_probes_are_capped_by_graph_size(monkeypatch):
    """At most ``max(1, PROBE_UNITS // (2 * units))`` probes per scheduler: with a budget of one unit, one each."""
    monkeypatch.setattr(capsearch, "PROBE_UNITS", 1)
    made = _probes(monkeypatch)
    g = moe_graph(2, 64)
    s = graph_optimize(g, 1024, cost_model=FREE, max_events=58)
    assert len(s.events) <= 58
    assert len(made) <= 2


def test_next_probe():
    from memplan.optimize.capsearch import next_probe

    assert next_probe(501, 1000, 1024, 2046, 1000, False) == 502   # no spare event: the next count (clamped)
    assert next_probe(12, 88, 16, 120, 100, False) == 13            # 8 events per stream: 12 spare buy 1.5 streams
    assert next_probe(12, 88, 16, 120, 100, True) == 14             # halving
    assert next_probe(2, 0, 100, 10, 1000, False) == 99             # never past hi - 1


def _over_budget_case(**solver):
    """A graph, options and a memory budget that the first schedule under the cap is over while the serial plan fits:
    ``budget_tiers`` is asked for the candidates."""
    g = moe_graph(2, 16)
    opts = dict(streams=16, max_events=6, cost_model=FREE, **solver)
    first = memplan.plan(g, **opts)
    serial = memplan.plan(g, **solver)
    assert first.arena_bytes > serial.arena_bytes
    return g, opts, serial.arena_bytes


@pytest.mark.parametrize("solver", ["greedy", "cpsat"])
def test_a_memory_budget_beside_the_cap_builds_the_candidates_once(monkeypatch, solver):
    g, opts, budget = _over_budget_case(solver=solver, **({"time_limit": 1} if solver == "cpsat" else {}))
    calls: list[bool] = []
    real = budget_module.candidate_pool

    def counting(*args, **kw):
        calls.append(kw.get("forks", True))
        return real(*args, **kw)

    monkeypatch.setattr(budget_module, "candidate_pool", counting)
    monkeypatch.setattr(candidates_module, "candidate_pool", counting)
    p = memplan.plan(g, memory_budget=budget, **opts)
    assert p.arena_bytes <= budget
    assert len(calls) == 1, calls


def test_the_pool_built_once_plans_as_the_pool_built_twice(monkeypatch):
    """The same plan, byte for byte, as when ``budget_tiers`` builds the pool itself."""
    g, opts, budget = _over_budget_case()
    once = memplan.plan(g, memory_budget=budget, **opts)
    real = budget_module.limit_events_pool
    monkeypatch.setattr(candidates_module, "limit_events_pool", lambda *a: (real(*a)[0], None))
    twice = memplan.plan(g, memory_budget=budget, **opts)
    assert once.to_json() == twice.to_json()


@pytest.mark.parametrize("make,streams,cap", [(lambda: moe_graph(2, 16), 16, 6), (lambda: random_dag(80), 8, 20),
                                              (lambda: wide_graph(40), 64, 30)])
def test_without_forks_is_the_pool_built_without_forks(make, streams, cap):
    from memplan.optimize.budget import without_forks

    g = make()
    opt = optimize(g, streams, cost_model=FREE)
    full = tuple(candidate_pool(g, opt, cap))
    got = without_forks(g, opt, full)
    want = candidate_pool(g, opt, cap, forks=False)
    assert [(r.name, r.schedule, r.makespan_us, r.forks_serialised, r.forks_total) for r in got] == \
        [(r.name, r.schedule, r.makespan_us, r.forks_serialised, r.forks_total) for r in want]
