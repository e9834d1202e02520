"""Round 57: the fork thinning (``budget.thinned``) probes every fork given back before it scores the forks.

Why: ``thin_streams`` thins the fastest 2-, 3- and 4-stream schedules to the event cap. On layered and random DAGs
the 3- and 4-stream bases with every fork given back are still over the cap, so ``thinned`` answered None, but only
after ``score_forks`` had replayed the rest of the order once per fork: on ``layered_graph(2000)`` 660 forks, about
two thirds of the thinning's CPU, for nothing (docs/experiments/events_s57.txt). The answers must stay the same.
"""

from __future__ import annotations

import pytest

import memplan.optimize.budget as B
from memplan import simulate
from memplan.benchmarks.scale import layered_graph, moe_graph
from memplan.optimize import CostModel, graph_optimize
from memplan.optimize.events import Replay
from memplan.optimize.streams import optimize


def _opt(graph):
    return optimize(graph, 1024, cost_model=CostModel(event_us=0.0))


def _base(opt, k):
    """``thin_streams``' base at ``k`` streams: the fastest candidate, ties by name."""
    return min((c for c in opt.pool if c.schedule.num_streams == k),
               key=lambda c: (round(c.makespan_us, 6), c.name)).schedule


@pytest.fixture(scope="module")
def layered():
    g = layered_graph(400)
    return g, _opt(g)


def test_base_over_the_cap_with_every_fork_given_back_is_not_scored(layered, monkeypatch):
    g, opt = layered
    base = _base(opt, 3)
    scored = []
    real = B.score_forks
    monkeypatch.setattr(B, "score_forks", lambda *a: scored.append(1) or real(*a))
    assert B.thinned(g, opt, base, 8) is None
    assert scored == []
    stats: dict[str, int] = {}
    assert B.thinned(g, opt, base, 8, stats) is None and stats == {"bases": 1}   # (none scored)


def test_the_dropped_base_is_over_the_cap_with_every_fork_given_back(layered):
    """The answer None is the old one: every fork given back (in ``thinned``'s order) is over the cap."""
    g, opt = layered
    base = _base(opt, 3)
    forks = sorted(B.find_forks(g, opt, base), key=lambda f: min(f[0]))
    ustream = B.unit_streams(opt, base, g)[1]
    U = opt.units
    streams = B._node_streams(U, B._assign(ustream, forks)).tolist()
    run = Replay(g, B.expand(U, U.fixed_order, ustream)[0], streams, opt.cost, opt.event_us)
    assert any(streams) and run.events > 8


@pytest.mark.parametrize("graph, k, cap, want", [
    (lambda: layered_graph(400), 2, 8, (7975.0, 7, 44, 48)),
    (lambda: moe_graph(4, 16), 3, 8, (2712.0, 6, 87, 88)),   # every fork back fits: scored and thinned as before
])
def test_a_base_that_fits_is_scored_and_thinned_as_before(graph, k, cap, want):
    g = graph()
    opt = _opt(g)
    stats: dict[str, int] = {}
    s, ms, m, f = B.thinned(g, opt, _base(opt, k), cap, stats)
    assert (ms, len(s.events), m, f) == want
    assert stats == {"bases": 1, "scored": f}


def test_capped_layered_schedules_are_the_round_56_ones():
    """``events_s56.txt``'s layered(400) rows (``event_us=0``), byte-identical across two runs."""
    g = layered_graph(400)
    model = CostModel(event_us=0.0)
    for cap, (us, events) in {8: (7975.0, 7), 60: (5306.0, 59)}.items():
        s = graph_optimize(g, 1024, cost_model=model, max_events=cap)
        assert (simulate(g, s, model).makespan_us, len(s.events), s.num_streams) == (us, events, 2)
        assert graph_optimize(g, 1024, cost_model=model, max_events=cap) == s
