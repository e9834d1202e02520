"""The optimizer's shortcuts against the simple code they replace, on random graphs and schedules.

- ``events.wait_pairs`` (sparse clocks on node indices) gives exactly ``schedule_with_events``'s events;
- ``streams.fixed_order`` is the order ``list_schedule`` issues with every stream fixed, whatever they are;
- a ``list_schedule`` run that leaves a stream unused is the same run with more streams, and an "eft" run
  that ``list_schedule_twin`` finds choosing as "est" (or as either with free events: the same stream and
  start) at every unit is that run (``optimize`` skips those repeats);
- ``events.Replay`` rerun from a marked position with other streams after it gives the events and the
  makespan that ``wait_pairs`` and ``simulate_indices`` give the whole schedule (``score_forks``);
- ``scored_schedule`` is ``to_schedule``'s old body (``schedule_with_events`` on the ids) and
  ``schedule_makespan`` of the result.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules, view_chains

from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.events import Replay, wait_pairs
from memplan.optimize.timeline import simulate_indices
from memplan.schedule import Event, schedule_with_events

any_graph = st.one_of(graphs(max_nodes=12), view_chains())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_wait_pairs_are_schedule_with_events(data):
    g = data.draw(any_graph)
    order, stream_of = data.draw(schedules(g, max_streams=5))
    want = schedule_with_events(g, order, stream_of)
    idx = g.node_index
    got = wait_pairs(g, [idx[n] for n in order], [stream_of[n] for n in order])
    assert tuple(Event(g.nodes[a].id, g.nodes[b].id) for a, b in got) == want.events


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fixed_order_is_list_schedule_with_every_stream_fixed(data):
    g = data.draw(any_graph)
    U = S.build_units(g, node_costs(g, CostModel()))
    n = len(U.members)
    k = data.draw(st.integers(1, 4))
    fixed = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    ev = data.draw(st.sampled_from([0.0, 2.0]))
    assert S.list_schedule(U, k, ev, fixed=fixed) == (list(U.fixed_order), fixed)


@settings(max_examples=100, deadline=None)
@given(any_graph, st.sampled_from([0.0, 2.0]))
def test_a_run_leaving_a_stream_unused_is_the_run_on_more_streams(g, ev):
    U = S.build_units(g, node_costs(g, CostModel()))
    succs = S.unit_succs(U, 1 << 30)
    pred = S.chain_cover(U, succs)
    for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True), dict(mode="eft", chain_pred=pred)):
        for k in range(1, 6):
            o, s = S.list_schedule(U, k, ev, **kw)
            if max(s, default=0) < k - 1:
                for more in (k + 1, k + 3, 20):
                    assert S.list_schedule(U, more, ev, **kw) == (o, s), (kw, k, more)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_scored_schedule_is_schedule_with_events_and_its_makespan(data):
    g = data.draw(any_graph)
    cost = node_costs(g, CostModel())
    U = S.build_units(g, cost)
    k = data.draw(st.integers(1, 4))
    o, s = S.list_schedule(U, k, 2.0, mode=data.draw(st.sampled_from(["eft", "est"])))
    renum: dict[int, int] = {}
    ids, stream_of = [], {}
    for u in o:
        r = renum.setdefault(s[u], len(renum))
        for m in U.members[u]:
            ids.append(g.nodes[m].id)
            stream_of[g.nodes[m].id] = r
    want = schedule_with_events(g, ids, stream_of)
    sched, ms = S.scored_schedule(g, U, o, s, cost, 2.0)
    assert sched == want
    assert ms == S.schedule_makespan(g, want, cost, 2.0)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([0.0, 0.1, 2.0]), st.integers(2, 6), st.booleans())
def test_twins_say_when_other_runs_are_this_run(data, ev, k, listed):
    g = data.draw(any_graph)
    # tenths and a few huge costs: starts that differ in the last bit give one finish after a huge cost,
    # where "eft" goes on to the events and "est" takes the earlier start
    cost = data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.7, 1e6]), min_size=len(g.nodes),
                              max_size=len(g.nodes)))
    U = S.build_units(g, cost)
    o, s, (est, free, free_est) = S.list_schedule_twin(U, k, ev, mode="eft", listed=listed)
    assert (o, s) == S.list_schedule(U, k, ev, mode="eft", listed=listed)
    for same, kw in ((est, dict(mode="est", event_us=ev)), (free, dict(mode="eft", event_us=0.0)),
                     (free_est, dict(mode="est", event_us=0.0))):
        if same:
            assert (o, s) == S.list_schedule(U, k, listed=listed, **kw), kw
    assert S.list_schedule_twin(U, k, ev, mode="est")[2] == (False, False, False)


def test_twin_sees_a_rounding_tie():
    """Starts 0.29999999999999993 (a new stream, after an event) and 0.30000000000000004 (the producer's
    stream) finish together after 1e6 us: "est" takes the earlier start, "eft" the stream needing no event."""
    U = S.Units(members=((0,), (1,), (2,)), unit_of=(0, 1, 2), deps=((), (0,), (0,)), succs=((1, 2), (), ()),
                cost=(0.1, 0.2, 1e6), rank=(1e6 + 0.1, 0.2, 1e6))
    ev = 0.19999999999999996
    o, s, (est, free, free_est) = S.list_schedule_twin(U, 2, ev, mode="eft", listed=True)
    assert (o, s) == ([0, 1, 2], [0, 0, 0]) and not est
    assert S.list_schedule(U, 2, ev, mode="est", listed=True) == ([0, 1, 2], [0, 0, 1])
    # with free events the third unit starts at 0.1 on the new stream: not this run either
    assert not free and not free_est
    assert S.list_schedule(U, 2, 0.0, mode="eft", listed=True) == ([0, 1, 2], [0, 0, 1])


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([0.0, 2.0]))
def test_replay_from_a_mark_is_the_whole_run(data, ev):
    g = data.draw(any_graph)
    cost = node_costs(g, CostModel())
    order, stream_of = data.draw(schedules(g, max_streams=4))
    idx = g.node_index
    o = [idx[n] for n in order]
    s = [stream_of[n] for n in order]
    marks = sorted(set(data.draw(st.lists(st.integers(0, len(o) - 1), max_size=4)))) if o else []
    replay = Replay(g, o, s, cost, ev, marks)

    def whole(streams):
        waits = wait_pairs(g, o, streams)
        _, end = simulate_indices(o, streams, waits, cost, ev)
        return len(waits), max(end, default=0.0)

    assert (replay.events, replay.makespan) == whole(s)
    for p in marks:
        # streams may change from p on (a group keeps one stream: the strategy's streams per unit are
        # redrawn for every node of a unit alike)
        new = {}
        for q in range(p, len(o)):
            n = g.nodes[o[q]]
            key = n.group if n.group is not None else n.id
            if key not in new:
                new[key] = data.draw(st.integers(0, 4))
        s2 = s[:p] + [new[g.nodes[o[q]].group if g.nodes[o[q]].group is not None else g.nodes[o[q]].id]
                      for q in range(p, len(o))]
        assert replay.rerun(p, s2) == whole(s2)
        # a window reaching the end is the whole rerun, and leaves the replay as it was
        assert replay.rerun_window(p, len(o), s2[p:]) == whole(s2)
        assert replay.rerun(p, s2) == whole(s2)
        stop = data.draw(st.integers(p, len(o)))
        ev_w, ms_w = replay.rerun_window(p, stop, s2[p:stop])
        assert (replay.events, replay.makespan) == whole(s)
        assert ev_w >= 0 and (stop == len(o) or ms_w >= replay.makespan)
