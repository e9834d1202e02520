"""Round 45 (graph_optimize): ``max_events`` checked before any work, and the events it returns are never
redundant (brute force on small graphs) and never more than ``max_events``."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs

import memplan
import memplan.optimize
from memplan import examples, graph_optimize
from memplan.errors import ScheduleError


def _hb_without(order: list[str], stream_of: dict[str, int], events, skip: int) -> dict[str, set[str]]:
    """Happens-before by brute force: node -> the nodes it happens before (program order on each stream, plus
    every event but the ``skip``-th), as the transitive closure."""
    succ: dict[str, set[str]] = {n: set() for n in order}
    last: dict[int, str] = {}
    for n in order:
        s = stream_of[n]
        if s in last:
            succ[last[s]].add(n)
        last[s] = n
    for i, e in enumerate(events):
        if i != skip:
            succ[e.after].add(e.before)
    reach: dict[str, set[str]] = {}
    for n in reversed(order):   # events point forward in ``order``, and so does program order
        r: set[str] = set()
        for m in succ[n]:
            r.add(m)
            r |= reach[m]
        reach[n] = r
    return reach


def redundant_events(schedule) -> list:
    """The events of ``schedule`` whose ordering the other events and program order already imply."""
    order, stream_of = list(schedule.order), schedule.stream_of()
    return [e for i, e in enumerate(schedule.events)
            if e.before in _hb_without(order, stream_of, schedule.events, i)[e.after]]


def test_redundant_events_finds_an_implied_event():
    """The checker itself: diamond a -> (l, r) -> j with l, r on stream 1 needs a -> l and r -> j; an added a -> r
    is implied (a -> l, then l before r on stream 1)."""
    g = examples.diamond()
    order = [n.id for n in g.nodes]
    sched = memplan.schedule_with_events(g, order, {nid: int(0 < i < 3) for i, nid in enumerate(order)})
    assert len(sched.events) == 2 and redundant_events(sched) == []
    extra = memplan.Schedule(sched.order, sched.streams, (*sched.events, memplan.Event(order[0], order[2])))
    assert redundant_events(extra) == [memplan.Event(order[0], order[2])]


@pytest.mark.parametrize("bad", [-1, -(2 ** 70), True, False, 1.5, 2.0, float("nan"), "3", [1], object()])
def test_a_bad_max_events_is_refused_before_any_work(monkeypatch, bad):
    """``graph_optimize(g, max_events=-1)`` (or a bool, a float, a string) ran the whole optimisation (every
    candidate schedule of the graph: seconds on a large one) and only then was refused by the event cap's step;
    now a ScheduleError naming max_events comes first."""
    def no_work(*args, **kwargs):
        raise AssertionError("graph_optimize worked before checking max_events")

    monkeypatch.setattr(memplan.optimize, "optimize", no_work)
    with pytest.raises(ScheduleError, match="max_events"):
        graph_optimize(examples.qkv_attention(), 3, max_events=bad)


def test_good_max_events_values_are_taken():
    g = examples.qkv_attention()
    assert len(graph_optimize(g, 3, max_events=0).events) == 0
    assert len(graph_optimize(g, 3, max_events=2 ** 63 - 1).events) == len(graph_optimize(g, 3).events)
    with pytest.raises(ScheduleError, match=r"max_events .*below 2\*\*63"):   # (as plan() and --max-events: round 49)
        graph_optimize(g, 3, max_events=2 ** 80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(g=graphs(max_nodes=9), streams=st.integers(1, 5), cap=st.one_of(st.none(), st.integers(0, 4)),
       event_us=st.sampled_from([0.0, 2.0, 8.0]))
def test_graph_optimize_events_are_never_redundant_nor_over_the_cap(g, streams, cap, event_us):
    sched = graph_optimize(g, streams, cost_model=memplan.CostModel(event_us=event_us), max_events=cap)
    memplan.build_happens_before(g, sched)   # well-formed (raises otherwise)
    assert redundant_events(sched) == [], sched.events
    if cap is not None:
        assert len(sched.events) <= cap


def test_a_given_schedule_of_one_event_over_the_cap_says_one_event():
    """``plan(g, schedule, max_events=0)`` with a schedule of one event said "the given schedule has 1 events"."""
    g = examples.diamond()
    sched = memplan.schedule_with_events(g, ["a", "l", "r", "j"], {"a": 0, "l": 1, "r": 1, "j": 1})
    assert len(sched.events) == 1
    with pytest.raises(ScheduleError, match="has 1 event, over max_events=0"):
        memplan.plan(g, sched, max_events=0)


class _PlanSchedule:
    """A plan's issue order, streams and events, as ``redundant_events`` reads a Schedule."""

    def __init__(self, plan) -> None:
        self.order = [o[0] if isinstance(o, tuple) else o for o in plan.order]
        self._stream_of = plan.stream_of()
        self.events = [memplan.Event(*e) for e in plan.events]

    def stream_of(self) -> dict[str, int]:
        return self._stream_of


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(g=graphs(max_nodes=9), streams=st.integers(2, 4), cap=st.one_of(st.none(), st.integers(0, 3)),
       budget=st.one_of(st.none(), st.floats(0.6, 1.2)))
def test_planned_events_are_never_redundant_nor_over_the_cap(g, streams, cap, budget):
    """The same of ``plan(streams=..., max_events=..., memory_budget=...)``: the schedule it plans (a give-back of
    forks for the budget included) waits on no event the others imply, and keeps the cap."""
    limit = None if budget is None else int(memplan.plan(g, solver="greedy").arena_bytes * budget)
    try:
        p = memplan.plan(g, streams=streams, max_events=cap, memory_budget=limit, solver="greedy")
    except memplan.errors.BudgetError:
        return
    assert redundant_events(_PlanSchedule(p)) == [], p.events
    if cap is not None:
        assert len(p.events) <= cap
