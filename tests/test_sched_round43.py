"""Round 43, scheduling and verification.

- ``max_events``: ``candidate_pool`` replayed every prefix of the two fork lists to the end (thousands of events
  each) and then dropped it for being over the cap: ``fanout_join(30000)`` at 4 streams, ``max_events=3``, replayed
  about 90 x 30,000 positions. A replay now stops at the cap, and a prefix whose streams agree with a capped run up to
  where that run was over the cap is dropped unreplayed (``Replay.over_cap``). The pool is the same.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs

from memplan import examples, generators
from memplan.optimize import budget, optimize
from memplan.optimize.events import Replay


def _pool_key(pool) -> list[tuple]:
    return [(r.name, r.schedule, r.makespan_us, r.forks_serialised, r.forks_total) for r in pool]


def _capped_is_filtered(g, k: int, caps) -> None:
    """The pool under each cap is the uncapped pool (every prefix replayed to the end) less those over the cap."""
    opt = optimize(g, k)
    full = budget.candidate_pool(g, opt, None)
    for cap in caps:
        want = [r for r in full if len(r.schedule.events) <= cap]
        assert _pool_key(budget.candidate_pool(g, opt, cap)) == _pool_key(want), (g.name, k, cap)


@pytest.mark.parametrize("k", [2, 4, 64])
def test_a_capped_pool_is_the_full_pool_less_those_over_the_cap(k):
    gs = [generators.fanout_join(n, seed=n)[0] for n in (80, 400)] + [examples.moe(), examples.views_inplace()]
    for g in gs:
        _capped_is_filtered(g, k, (0, 1, 3, 10, 60))


@settings(max_examples=40, deadline=None)
@given(graphs(max_nodes=12), st.sampled_from([2, 3, 6]))
def test_a_capped_pool_is_the_full_pool_less_those_over_the_cap_on_any_graph(g, k):
    _capped_is_filtered(g, k, (0, 1, 2, 4))


def test_max_events_replays_a_few_positions_per_node_not_every_prefix(monkeypatch):
    """``fanout_join(2000)`` on 4 streams, ``max_events=3``: the prefixes' replays covered 87 x 2,000 positions
    (each to the end); now each stops at the cap and most are dropped unreplayed (about 2 x 2,000)."""
    g = generators.fanout_join(2000)[0]
    opt = optimize(g, 4)
    n = len(g.nodes)
    replayed = [0]
    init, branch = Replay.__init__, Replay.branch

    def counted_init(self, *a, **kw):
        init(self, *a, **kw)
        replayed[0] += min(n, getattr(self, "capped_at", n))

    def counted_branch(self, p, *a, **kw):
        new = branch(self, p, *a, **kw)
        replayed[0] += min(n, getattr(new, "capped_at", n)) - p
        return new

    monkeypatch.setattr(Replay, "__init__", counted_init)
    monkeypatch.setattr(Replay, "branch", counted_branch)
    best = budget.limit_events(g, opt, 3)
    assert len(best.schedule.events) <= 3
    assert replayed[0] <= 5 * n, replayed[0]
