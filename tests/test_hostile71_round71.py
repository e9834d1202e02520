"""Round 71 (hostile71): hostile inputs to the library's public API, each a regression test of a fix.

- ``plan(graph, schedule)`` with a hand-built schedule short of an event: the read's race was left to the final
  ``verify`` (an ``UnsafePlan``), and ``check=False`` returned the racing plan.
"""

from __future__ import annotations

import pytest

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
