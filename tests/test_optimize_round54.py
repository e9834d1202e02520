"""Round 54, ``max_events``: an event cap is spent on the stream count it pays for.

The optimizer schedules at 2..8, 12, 16, 24, 32, 48, 64 and ``max_streams`` streams; a cap between two of those
took the lower one and left events unspent (a fork-join pays two events per side stream). ``limit_events`` now
also schedules at ``max_events // 2 + 1`` streams (``budget.cap_streams``).
"""

from __future__ import annotations

import memplan
from memplan import simulate
from memplan.benchmarks.scale import wide_graph
from memplan.optimize import CostModel, graph_optimize


def test_a_cap_between_tried_stream_counts_is_spent():
    """A 600-branch fork-join on 1,024 streams under ``max_events=60``: 31 streams fit the cap exactly (60
    events); the 24-stream schedule (46 events) was taken, slower."""
    g = wide_graph(600)
    model = CostModel(event_us=0.0)
    capped = graph_optimize(g, 1024, cost_model=model, max_events=60)
    exact = graph_optimize(g, 31, cost_model=model)
    assert len(exact.events) <= 60
    assert len(capped.events) <= 60
    got = simulate(g, capped, model).makespan_us
    assert got <= simulate(g, exact, model).makespan_us + 1e-6, (capped.num_streams, len(capped.events), got)
    p = memplan.plan(g, capped)
    memplan.verify(g, p)


def test_the_cap_schedule_is_deterministic():
    g = wide_graph(300)
    a = graph_optimize(g, 1024, max_events=40)
    b = graph_optimize(g, 1024, max_events=40)
    assert a == b and len(a.events) <= 40
