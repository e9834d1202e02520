"""Round 50, ``graph_optimize``: fork scores that stop where a give-back's change dies out.

``events.Replay.rescore`` replayed every later node of each stream a moved node left or joined, and every reader of
a replayed node: giving a fork back onto the main stream replayed most of the rest of the order, fork after fork
(1,000 of a 2,000-node fan-out/join's nodes per fork). Clock entries are now issue positions (which a move leaves
alone), a node is replayed in full only when its stream predecessor, a writer's stream or clock, or its own stream
changed, and a node whose events are the base run's is only timed; with integer costs the base run's tails give the
latest end past the last change at once. These tests hold the fast path to the plain replays it stands for
(``rerun_window`` / ``rerun``) and the fork scores to full replays; no timings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules, view_chains

from memplan import examples
from memplan.generators import fanout_join
from memplan.optimize import budget, events, optimize
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.events import Replay

sys.path.insert(0, str(Path(__file__).parent))
from test_perf_round40 import fork_join  # noqa: E402

any_graph = st.one_of(graphs(max_nodes=12), view_chains())


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([0.0, 1.0, 2.0, 0.5]), st.booleans(), st.sampled_from([0, events.SEQUENTIAL_AT]))
def test_rescore_is_the_plain_replay(data, ev, whole, sequential):
    """Any nodes moved to any streams from ``p`` on, integer costs (the tails' exact arithmetic) or roofline ones,
    any window: ``rescore`` gives ``rerun_window``'s numbers (``rerun``'s to the end) and leaves the run as it was."""
    g = data.draw(any_graph)
    if whole:
        cost = [float(c) for c in data.draw(st.lists(st.integers(0, 9), min_size=len(g.nodes),
                                                     max_size=len(g.nodes)))]
    else:
        cost = node_costs(g, CostModel())
    order, stream_of = data.draw(schedules(g, max_streams=4))
    if not order:
        return
    idx = g.node_index
    o = [idx[n] for n in order]
    s = [stream_of[n] for n in order]
    replay = Replay(g, o, s, cost, ev, range(len(o) + 1))
    base = (replay.events, replay.makespan, list(replay.seq), list(replay.end), list(replay.clock))
    old = events.SEQUENTIAL_AT
    events.SEQUENTIAL_AT = sequential
    try:
        for _ in range(4):
            p = data.draw(st.integers(0, len(o) - 1))
            stop = len(o) if data.draw(st.booleans()) else data.draw(st.integers(p, len(o)))
            moved = {o[q]: data.draw(st.integers(0, 4)) for q in sorted(set(data.draw(
                st.lists(st.integers(p, max(p, stop - 1)), max_size=5)))) if q < stop}
            window = [moved.get(v, s[q]) for q, v in enumerate(o)]
            got = replay.rescore(p, stop, moved)
            assert type(got[1]) is float   # (not numpy's: a score's repr, and the plan's numbers, stay the same)
            assert got == replay.rerun_window(p, stop, window[p:stop])
            if stop == len(o):
                assert got == replay.rerun(p, window)
                full = Replay(g, o, window, cost, ev)
                assert got == (full.events, full.makespan)
            assert base == (replay.events, replay.makespan, list(replay.seq), list(replay.end), list(replay.clock))
    finally:
        events.SEQUENTIAL_AT = old


def _reference_scores(monkeypatch, g, opt) -> list:
    """``score_forks`` with every fork's give-back replayed in full (``rerun`` / ``rerun_window``)."""
    def rescore(self, p, stop, moved, stats=None):
        ref = Replay(self.graph, self.order, [self.stream[v] for v in self.order], self.cost, self.event_us, [p])
        streams = [moved.get(v, self.stream[v]) for v in self.order]
        return ref.rerun(p, streams) if stop == len(self.order) else ref.rerun_window(p, stop, streams[p:stop])
    with monkeypatch.context() as m:
        m.setattr(Replay, "rescore", rescore)
        return budget.score_forks(g, opt, opt.schedule)


@pytest.mark.parametrize("make, k", [
    (lambda: fanout_join(400, max_width=8)[0], 8),        # integer costs: the tails
    (lambda: fanout_join(300, max_width=8, seed=3)[0], 64),
    (lambda: examples.llama(examples.LlamaConfig(layers=4, batch=1)), 8),   # roofline costs: timed in order
    (lambda: fork_join(300), 64),
    (examples.views_inplace, 4),
    (lambda: examples.moe(16), 8),
])
def test_fork_scores_are_those_of_full_replays(monkeypatch, make, k):
    g = make()
    opt = optimize(g, k)
    forks = budget.score_forks(g, opt, opt.schedule)
    assert forks == _reference_scores(monkeypatch, g, opt)
    assert all(type(f.saves_us) is float for f in forks)   # (numpy's float64 once leaked in: another repr)


def test_a_fork_given_back_onto_the_main_stream_replays_what_changes(monkeypatch):
    """``fanout_join(600)`` on 8 streams: each fork's give-back delays the main stream and so every later end, but
    only the nodes whose events or clock can differ are replayed in full (round 41: about half the order per
    fork), and the latest end past them comes from the base run's tails; the scores are the full replays'."""
    g = fanout_join(600, max_width=8)[0]
    opt = optimize(g, 8)
    stats: dict[str, int] = {}
    real = Replay.rescore
    with monkeypatch.context() as m:
        m.setattr(Replay, "rescore", lambda self, p, stop, moved, st=None: real(self, p, stop, moved, stats))
        forks = budget.score_forks(g, opt, opt.schedule)
    n = len(g.nodes)
    assert len(forks) > 100
    assert stats["replayed"] + stats["timed"] < len(forks) * 60 < len(forks) * n // 4, stats
    assert forks == _reference_scores(monkeypatch, g, opt)


def test_fork_scores_are_plain_floats():
    """``random_dag(300)`` on 8 streams: forks off the critical path score their makespan from the base run's latest
    end past the change, a numpy number in the index; a score is a Python float all the same (np.float64 once leaked
    into ``Fork.saves_us``: equal, but another repr). (Round 72: 300 nodes instead of 2,000, 1.6 s of CI; with the
    fix undone, ``float(ix.suffix_top[q])`` in ``Replay.rescore``, both sizes fail and 100 nodes would not.)"""
    from memplan.benchmarks.scale import random_dag

    g = random_dag(300)
    opt = optimize(g, 8)
    forks = budget.score_forks(g, opt, opt.schedule)
    assert forks and all(type(f.saves_us) is float for f in forks)
