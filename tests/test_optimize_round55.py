"""Round 55, ``max_events`` on general DAGs: the stream count an event cap is spent on (``optimize/capsearch.py``).

The optimizer tried a fixed ladder of stream counts (and ``max_events // 2 + 1``, right for one fork-join only), then
gave back forks of its chosen many-stream schedule. Now the most streams whose own schedule fits the cap are
bisected between the ladder's counts, and the fastest 2-, 3- and 4-stream schedules are thinned to the cap.
"""

from __future__ import annotations

import memplan
from memplan import simulate
from memplan.benchmarks.scale import moe_graph, random_dag
from memplan.optimize import CostModel, graph_optimize, optimize
from memplan.optimize.budget import limit_events
from memplan.optimize.capsearch import bracket, known_events

FREE = CostModel(event_us=0.0)


def _capped(g, cap, model=FREE):
    s = graph_optimize(g, 1024, cost_model=model, max_events=cap)
    assert len(s.events) <= cap
    return s, simulate(g, s, model).makespan_us


def test_fork_joins_in_sequence_spend_the_cap_between_ladder_counts():
    """Four 64-expert fork-joins pay 8 events per side stream: ``max_events=100`` buys 13 streams (96 events,
    920 us); 12 streams (88 events, 1,092 us) were taken, as 51 (``100 // 2 + 1``) is far over the cap."""
    g = moe_graph(4, 64)
    s, ms = _capped(g, 100)
    assert ms <= 920.0 + 1e-6, (s.num_streams, len(s.events), ms)
    memplan.verify(g, memplan.plan(g, s))


def test_a_dag_whose_two_streams_are_over_the_cap_thins_two_streams():
    """``random_dag(400)`` needs 107 events on 2 streams already. Under ``max_events=60`` the chosen 10-stream
    schedule's forks were given back (50 events, 7,494 us); the 2-stream schedule thinned to 59 events takes
    6,349 us."""
    g = random_dag(400)
    s, ms = _capped(g, 60)
    assert ms <= 6349.0 + 1e-6, (s.num_streams, len(s.events), ms)


def test_a_low_cap_on_several_fork_joins_thins_rather_than_gives_back():
    """``moe_graph(4, 16)`` under ``max_events=4``: 2,726 us on 3 streams before, 2,124 us now (2 streams thinned)."""
    g = moe_graph(4, 16)
    s, ms = _capped(g, 4)
    assert ms <= 2124.0 + 1e-6, (s.num_streams, len(s.events), ms)


def test_never_slower_than_any_candidate_within_the_cap():
    g = moe_graph(3, 24)
    opt = optimize(g, 1024, cost_model=FREE)
    for cap in (2, 5, 30, 70):
        got = limit_events(g, opt, cap)
        within = [c.makespan_us for c in opt.pool if len(c.schedule.events) <= cap]
        assert len(got.schedule.events) <= cap
        assert round(got.makespan_us, 6) <= round(min(within), 6)


def test_the_search_is_deterministic():
    g = moe_graph(4, 64)
    assert graph_optimize(g, 1024, max_events=100) == graph_optimize(g, 1024, max_events=100)
    g = random_dag(300)
    assert graph_optimize(g, 64, max_events=30) == graph_optimize(g, 64, max_events=30)


def test_bracket_and_known_events():
    known = known_events([("list-eft-k8", 40), ("list-eft-k12", 90), ("listed-cap-k20", 200), ("chains-k8", 1),
                          ("list-eft-free-k8", 3), ("serial", 0)])
    assert known == {"list-eft": {8: 40, 12: 90}, "listed": {20: 200}}
    assert bracket(known["list-eft"], 60) == (8, 12)
    assert bracket(known["list-eft"], 30) is None        # nothing fits
    assert bracket(known["list-eft"], 100) is None       # everything fits
    assert bracket({8: 40, 9: 90}, 60) is None           # neighbours: nothing between
