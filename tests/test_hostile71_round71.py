"""Round 71 (hostile71): hostile inputs to the library's public API, each a regression test of a fix.

- ``plan(graph, schedule)`` with a hand-built schedule short of an event: the read's race was left to the final
  ``verify`` (an ``UnsafePlan``), and ``check=False`` returned the racing plan.
"""

from __future__ import annotations

import json

import oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import happens_before, writers
from strategies import graphs, schedules

import memplan
from memplan import Event, GraphBuilder, Schedule
from memplan.errors import ScheduleError


def _chain():
    b = GraphBuilder("g")
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.tensor("y", 100))
    b.node("c", "OP", ["y"], b.output("z", 100))
    return b.build()


@pytest.mark.parametrize("check", [True, False])
def test_a_given_schedule_short_of_an_event_is_refused_naming_the_read(check):
    g = _chain()
    racing = Schedule(("a", "c"), (0, 1), ())
    with pytest.raises(ScheduleError, match=r"node 'c' reads 'y' but its writer 'a' .*Event\('a', 'c'\)"):
        memplan.plan(g, racing, check=check)
    with pytest.raises(ScheduleError, match="node 'c' reads 'y'"):
        memplan.plan(g, racing, check=check, streams=2, max_events=3)
    ok = Schedule(("a", "c"), (0, 1), (Event("a", "c"),))
    memplan.verify(g, memplan.plan(g, ok, check=check))


def test_a_read_through_a_view_chain_needs_its_view_writers_event_too():
    """The writer named is one along the read's view chain (a SET_ROWS-style write into a slot), not only the
    root's producer, which the reader's own stream orders."""
    b = GraphBuilder("kv")
    b.input("x", 8)
    b.node("mk", "OP", ["x"], b.tensor("cache", 64))
    b.view("slot", "cache", 8, 8)
    b.node("set", "SET_ROWS", ["x"], ["slot"])
    b.node("r", "OP", ["slot"], b.output("y", 8))
    g = b.build()
    with pytest.raises(ScheduleError, match="node 'r' reads 'slot' but its writer 'set' "):
        memplan.plan(g, Schedule(("mk", "set", "r"), (0, 1, 0), ()), check=False)
    memplan.verify(g, memplan.plan(g, Schedule(("mk", "set", "r"), (0, 1, 0), (Event("set", "r"),)), check=False))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_given_schedule_is_planned_exactly_when_every_read_follows_its_writers(data):
    """Any hand-built schedule (a random issue order and streams, the fewest events with some dropped and random
    forward ones added): ``plan(check=False)`` refuses it by name exactly when the reference's happens-before (an
    explicit closure) leaves a read unordered after one of its writers, and otherwise returns a plan the brute-force
    oracle finds safe, with the schedule unchanged."""
    g = data.draw(graphs(max_nodes=8))
    order, stream_of = data.draw(schedules(g, max_streams=3))
    events = list(memplan.schedule_with_events(g, order, stream_of).events)
    keep = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    events = [e for e, k in zip(events, keep) if k]
    for a, b in data.draw(st.lists(st.tuples(st.integers(0, len(order) - 1), st.integers(0, len(order) - 1)),
                                   max_size=3)):
        a, b = min(a, b), max(a, b)
        if stream_of[order[a]] != stream_of[order[b]]:
            events.append(Event(order[a], order[b]))
    sched = Schedule(tuple(order), tuple(stream_of[n] for n in order), tuple(events))
    hb = happens_before(list(zip(sched.order, sched.streams)), [(e.after, e.before) for e in sched.events])
    unordered = {(n.id, t) for n in g.nodes for t in n.inputs for w in writers(g, t) if w != n.id and not hb(w, n.id)}
    try:
        p = memplan.plan(g, sched, solver="greedy", check=False)
    except ScheduleError as exc:
        assert unordered, exc
        reader, tensor = str(exc).split("node ", 1)[1].split(" reads ", 1)
        assert (reader.strip("'"), tensor.split(" but ", 1)[0].strip("'")) in unordered, exc
        return
    assert not unordered, unordered
    doc = json.loads(p.to_json())
    assert [(e["node"], e["stream"]) for e in doc["order"]] == list(zip(sched.order, sched.streams))
    assert oracle.findings(g.to_dict(), doc) == []
