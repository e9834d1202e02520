"""Round 41, ``graph_optimize``: fork scores that replay only what a give-back changes; a given schedule's streams.

- ``events.Replay.rescore`` gives exactly ``rerun_window``'s (and, to the end, ``rerun``'s) events and makespan,
  replaying only the nodes whose result can differ: ``score_forks`` under an event cap or a memory budget at 1,024
  streams replayed every node once per fork (``fork_join(10000)``, ``max_events=10``: 50 s).
- a given schedule is checked against ``streams`` as against ``max_events``: one declaring 4 streams was planned
  with ``streams=2`` and the plan's solver block said ``streams_requested: 2`` beside its ``streams: 4``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules, view_chains

import memplan
from memplan import examples
from memplan.optimize import budget, events, optimize
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.events import Replay
from memplan.schedule import Schedule, schedule_with_events

sys.path.insert(0, str(Path(__file__).parent))
from test_perf_round40 import fork_join  # noqa: E402

any_graph = st.one_of(graphs(max_nodes=12), view_chains())


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([0.0, 2.0]), st.sampled_from([0, events.BIG_READER]),
       st.sampled_from([0, events.SEQUENTIAL_AT]))
def test_rescore_is_the_window_replay(data, ev, big, sequential):
    """Any nodes moved to any streams from ``p`` on, any window: ``rescore`` is ``rerun_window`` (``rerun`` to the
    end), and leaves the run as it was. ``BIG_READER`` 0 takes every node of several writers through the join's
    correction (``_latest_moved``); ``SEQUENTIAL_AT`` 0 hands the rest to ``_run`` as soon as most of it is due."""
    g = data.draw(any_graph)
    cost = node_costs(g, CostModel())
    order, stream_of = data.draw(schedules(g, max_streams=4))
    if not order:
        return
    idx = g.node_index
    o = [idx[n] for n in order]
    s = [stream_of[n] for n in order]
    replay = Replay(g, o, s, cost, ev, range(len(o) + 1))   # (``rerun_window`` starts at a mark)
    base = (replay.events, replay.makespan, list(replay.seq), list(replay.end), list(replay.clock))
    old_knobs = events.BIG_READER, events.SEQUENTIAL_AT
    events.BIG_READER, events.SEQUENTIAL_AT = big, sequential
    try:
        for _ in range(3):
            p = data.draw(st.integers(0, len(o) - 1))
            stop = data.draw(st.integers(p, len(o)))
            moved = {o[q]: data.draw(st.integers(0, 4)) for q in sorted(set(data.draw(
                st.lists(st.integers(p, max(p, stop - 1)), max_size=5)))) if q < stop}
            window = [moved.get(v, s[q]) for q, v in enumerate(o)]
            assert replay.rescore(p, stop, moved) == replay.rerun_window(p, stop, window[p:stop])
            if stop == len(o):
                assert replay.rescore(p, stop, moved) == replay.rerun(p, window)
            assert base == (replay.events, replay.makespan, list(replay.seq), list(replay.end), list(replay.clock))
            assert replay.stream == [stream_of[g.nodes[v].id] for v in range(len(g.nodes))]
    finally:
        events.BIG_READER, events.SEQUENTIAL_AT = old_knobs


def test_rescore_hands_a_long_rest_to_the_plain_replay(monkeypatch):
    """A 300-node random DAG on 6 streams, nodes moved at random: where most of what follows is due (every later node
    reads the moved ones), ``rescore`` replays the rest in order (``_run``), and still gives ``rerun_window``'s
    numbers, leaving the run as it was."""
    import random

    from memplan.benchmarks.scale import random_dag

    g = random_dag(300)
    rnd = random.Random(1)
    o = list(range(len(g.nodes)))
    s = [rnd.randrange(6) for _ in o]
    replay = Replay(g, o, s, node_costs(g, CostModel()), 2.0, range(len(o) + 1))
    ends = list(replay.end)
    handed = []
    real = Replay._run
    monkeypatch.setattr(Replay, "_run", lambda self, p0, *a, **k: handed.append(p0) or real(self, p0, *a, **k))
    for _ in range(200):
        p = rnd.randrange(len(o))
        stop = rnd.randrange(p + 1, len(o) + 1)
        moved = {o[q]: rnd.randrange(8) for q in rnd.sample(range(p, stop), min(3, stop - p))}
        window = [moved.get(v, s[q]) for q, v in enumerate(o)]
        assert replay.rescore(p, stop, moved) == replay.rerun_window(p, stop, window[p:stop])
    assert replay.end == ends and len(handed) > 200 + 20   # (rerun_window's own 200, and the hand-overs)


def _reference_scores(monkeypatch, g, opt) -> list:
    """``score_forks`` as it was: every fork replayed by ``rerun`` / ``rerun_window`` over all its positions."""
    def rescore(self, p, stop, moved):
        ref = Replay(self.graph, self.order, [self.stream[v] for v in self.order], self.cost, self.event_us, [p])
        streams = [moved.get(v, self.stream[v]) for v in self.order]
        return ref.rerun(p, streams) if stop == len(self.order) else ref.rerun_window(p, stop, streams[p:stop])
    with monkeypatch.context() as m:
        m.setattr(Replay, "rescore", rescore)
        return budget.score_forks(g, opt, opt.schedule)


@pytest.mark.parametrize("steps", [None, 0])
def test_fork_scores_are_those_of_the_full_replays(monkeypatch, steps):
    """A fork join on 64 streams (every fork spans the order), exactly and by windows of 16 positions."""
    if steps is not None:
        monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", steps)
        monkeypatch.setattr(budget, "REPLAY_WINDOW", 16)
    for g in (fork_join(300), examples.moe(), examples.views_inplace()):
        opt = optimize(g, 64)
        assert budget.score_forks(g, opt, opt.schedule) == _reference_scores(monkeypatch, g, opt)


def test_a_fork_of_a_wide_join_replays_its_own_nodes_only(monkeypatch):
    """``fork_join(1200)`` on 128 streams: 128 forks of about 9 branches each, interleaved over the whole order.
    Scoring a fork replayed every one of the 1,202 nodes (and the join's 1,200 writers): 150,000 nodes. Now it
    replays its branches, the source stream's later nodes and the join, whose writers per stream are corrected
    for the moved ones; the scores are the full replays'."""
    g = fork_join(1200)
    opt = optimize(g, 128)
    stats: dict[str, int] = {}
    real = Replay.rescore
    with monkeypatch.context() as m:
        m.setattr(Replay, "rescore", lambda self, p, stop, moved: real(self, p, stop, moved, stats))
        forks = budget.score_forks(g, opt, opt.schedule)
    assert len(forks) == 128
    assert stats["replayed"] < 128 * 25 and stats["writers"] < 128 * 160, stats
    assert forks == _reference_scores(monkeypatch, g, opt)


def _qkv_on_four_streams():
    g = examples.bundled()["qkv"]
    streams = {"norm": 0, "mm_q": 1, "mm_k": 2, "mm_v": 3, "attn": 0, "mm_o": 0}
    return g, schedule_with_events(g, [n.id for n in g.nodes], streams)


@pytest.mark.parametrize("opts", [{}, {"max_events": 6}, {"memory_budget": 10**9}])
def test_a_given_schedule_over_the_streams_asked_is_refused_naming_both(opts):
    """``plan(g, schedule=<4 streams>, streams=2)`` planned the schedule (a given one wins over ``streams``) and its
    solver block reported ``streams_requested: 2`` beside the plan's ``streams: 4``: the caller's cap broken
    without a word. A given schedule is checked against ``streams``, as against ``max_events``, never changed."""
    g, s = _qkv_on_four_streams()
    assert s.num_streams == 4
    for streams in (1, 2, 3):
        with pytest.raises(memplan.ScheduleError, match=rf"given schedule declares 4 streams \(stream ids up to 3\), "
                                                        rf"over streams={streams} \(a given schedule is checked"):
            memplan.plan(g, schedule=s, streams=streams, **opts)
    for streams in (4, 5, "auto", 1024):   # within the cap: planned, the block says what was asked
        p = memplan.plan(g, schedule=s, streams=streams, **opts)
        assert p.streams == 4 and p.solver["schedule"]["streams_requested"] == streams
        assert p.solver["schedule"]["method"] == "given"
    assert memplan.plan(g, schedule=s).solver["schedule"]["streams_requested"] is None


def test_a_given_schedule_declares_the_streams_of_its_highest_id():
    """Stream ids 0 and 7 (streams 1..6 empty): the plan declares 8 streams, so ``streams=2`` and "auto" (at most 8)
    are compared with 8, which "auto" allows and 2 does not."""
    g = examples.bundled()["diamond"]
    ids = [n.id for n in g.nodes]
    s = schedule_with_events(g, ids, {n: (7 if i == 1 else 0) for i, n in enumerate(ids)})
    assert s.num_streams == 8
    with pytest.raises(memplan.ScheduleError, match=r"declares 8 streams \(stream ids up to 7\), over streams=2"):
        memplan.plan(g, schedule=s, streams=2)
    assert memplan.plan(g, schedule=s, streams="auto").streams == 8
    s9 = Schedule(s.order, tuple(8 if x == 7 else x for x in s.streams), tuple(s.events))
    with pytest.raises(memplan.ScheduleError, match=r"declares 9 streams .*over streams='auto' \(at most 8\)"):
        memplan.plan(g, schedule=s9, streams="auto")
