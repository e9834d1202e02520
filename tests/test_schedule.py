"""Schedules: rule-1 checks with ScheduleError naming the node, the vector-clock happens-before index
against an explicit transitive closure, and the events ``schedule_with_events`` chooses."""

from __future__ import annotations

import re

import handgraphs as H
import pytest
import reference as ref

import memplan
from memplan import Event, Schedule, ScheduleError, build_happens_before, schedule_with_events, serial_schedule
from memplan.schedule import check_schedule


def closure_matches(graph, schedule):
    hb = build_happens_before(graph, schedule)
    closure = ref.happens_before(list(zip(schedule.order, schedule.streams)),
                                 [(e.after, e.before) for e in schedule.events])
    for a in graph.nodes:
        for b in graph.nodes:
            got = hb.hb(graph.node_index[a.id], graph.node_index[b.id])
            assert got == closure(a.id, b.id), (a.id, b.id)
    return hb


def test_serial_schedule_is_listed_order_on_stream_0():
    g = H.qkv()
    s = serial_schedule(g)
    assert s.order == tuple(n.id for n in g.nodes) and set(s.streams) == {0} and s.events == ()
    assert s.num_streams == 1
    hb = closure_matches(g, s)
    idx = g.node_index
    assert hb.hb(idx["norm"], idx["mm_o"]) and not hb.hb(idx["mm_o"], idx["norm"])
    assert not hb.hb(idx["attn"], idx["attn"])  # strict


def test_qkv_three_streams_happens_before():
    g = H.qkv()
    s = schedule_with_events(g, [n.id for n in g.nodes], H.QKV_STREAMS)
    hb = closure_matches(g, s)
    idx = g.node_index
    # q, k, v are computed concurrently, then joined
    for a, b in (("mm_q", "mm_k"), ("mm_k", "mm_v"), ("mm_q", "mm_v")):
        assert not hb.hb(idx[a], idx[b]) and not hb.hb(idx[b], idx[a])
    for a in ("mm_q", "mm_k", "mm_v"):
        assert hb.hb(idx["norm"], idx[a]) and hb.hb(idx[a], idx["attn"]) and hb.hb(idx[a], idx["mm_o"])
    assert s.stream_of() == H.QKV_STREAMS and s.num_streams == 3


def test_transitive_events_are_not_repeated():
    # chain on alternating streams: op2 (stream 0) reads t1 from op1 (stream 1); it needs op1 -> op2
    # only, because op0 -> op1 already makes op0 happen-before op1.
    g = H.chain()
    s = schedule_with_events(g, [n.id for n in g.nodes], {"op0": 0, "op1": 1, "op2": 0, "op3": 1})
    assert s.events == (Event("op0", "op1"), Event("op1", "op2"), Event("op2", "op3"))
    closure_matches(g, s)


def test_event_implied_by_an_earlier_one_is_skipped():
    # diamond with l, r on stream 1 and a, j on stream 0: j reads tl and tr; one event r -> j
    # covers l too (l comes before r on stream 1).
    g = H.diamond()
    s = schedule_with_events(g, ["a", "l", "r", "j"], {"a": 0, "l": 1, "r": 1, "j": 0})
    assert set(s.events) == {Event("a", "l"), Event("r", "j")}
    closure_matches(g, s)


def test_reads_through_view_chain_get_their_event():
    g = H.kv_cache()
    s = schedule_with_events(g, [n.id for n in g.nodes], H.KV_STREAMS)
    assert s.events == (Event("set", "attn"),)


def test_fanout15_events_and_concurrency():
    g = H.fanout15()
    s = schedule_with_events(g, [n.id for n in g.nodes], H.FANOUT15_STREAMS)
    hb = closure_matches(g, s)
    idx = g.node_index
    assert not hb.hb(idx["b3"], idx["j15"]) and not hb.hb(idx["j15"], idx["b3"])
    assert hb.hb(idx["b3"], idx["j"])


def test_explicit_schedule_with_redundant_events():
    g = H.qkv()
    s = Schedule(tuple(n.id for n in g.nodes), (0, 0, 1, 2, 0, 0),
                 (Event("norm", "mm_k"), Event("norm", "mm_v"), Event("mm_k", "attn"), Event("mm_v", "attn"),
                  Event("mm_q", "mm_v")))  # mm_q -> mm_v is extra
    hb = closure_matches(g, s)
    assert hb.hb(g.node_index["mm_q"], g.node_index["mm_v"])
    p = memplan.plan(g, s)
    assert p.events[-1] == ("mm_q", "mm_v")


def test_empty_stream_ids_are_allowed():
    # streams 0 and 2 used, 1 empty: still a valid schedule; the plan says 3 streams
    g = H.diamond()
    s = schedule_with_events(g, ["a", "l", "r", "j"], {"a": 0, "l": 0, "r": 2, "j": 0})
    assert s.num_streams == 3
    closure_matches(g, s)
    p = memplan.plan(g, s)
    assert p.streams == 3 and p.arena_bytes == 3072


# --- ScheduleError cases ---------------------------------------------------------------------------

def _chain_schedule(order=None, streams=None, events=()):
    g = H.chain()
    order = tuple(order or (n.id for n in g.nodes))
    return g, Schedule(order, tuple(streams or (0,) * len(order)), tuple(events))


@pytest.mark.parametrize("order,streams,events,names", [
    (("op0", "op1", "op2", "ghost"), None, (), ["'ghost'"]),
    (("op0", "op1", "op1", "op3"), None, (), ["'op1'", "twice"]),
    (("op0", "op1", "op2"), None, (), ["'op3'", "missing"]),
    (("op0", "op2", "op1", "op3"), None, (), ["'op2'", "'op1'"]),
    (None, (0, 0, -1, 0), (), ["'op2'", "stream"]),
    (None, (0, 1, 1, 1), (Event("op0", "ghost"),), ["'ghost'"]),
    (None, (0, 0, 0, 0), (Event("op0", "op2"),), ["'op0'", "'op2'", "itself"]),
    (None, (0, 1, 0, 1), (Event("op0", "op1"), Event("op2", "op1"), Event("op1", "op2")), ["'op2'", "'op1'", "waited before"]),
    (None, (0, 0, 0), (), ["length"]),
    (None, (0, 1, 1, 1), (("op0", "op1"),), ["event #0", "tuple"]),  # not an Event
    (None, (0, 1, 1, 1), (Event(0, "op1"),), ["event #0", "not an Event(after, before)"]),  # an Event of a non-id
])
def test_schedule_errors(order, streams, events, names):
    g, s = _chain_schedule(order, streams, events)
    with pytest.raises(ScheduleError) as info:
        build_happens_before(g, s)
    for n in names:
        assert n in str(info.value), (n, str(info.value))
    with pytest.raises(ScheduleError, match=re.escape(str(info.value))):
        memplan.plan(g, s)


def _group_graph():
    b = memplan.GraphBuilder("fused")
    b.input("x", 256)
    b.node("f1", "A", ["x"], b.intermediate("a", 256), group="g")
    b.node("f2", "B", ["x"], b.intermediate("c", 256), group="g")
    b.node("other", "C", ["x"], b.intermediate("d", 256))
    b.node("end", "D", ["a", "c", "d"], b.output("y", 256))
    return b.build()


@pytest.mark.parametrize("order,stream_of,words", [
    (["f1", "f2", "other", "end"], {"f1": 0, "f2": 1, "other": 0, "end": 0}, ["'g'", "split"]),
    (["f2", "f1", "other", "end"], {"f1": 0, "f2": 0, "other": 0, "end": 0}, ["'g'", "order"]),
    (["f1", "other", "f2", "end"], {"f1": 0, "f2": 0, "other": 0, "end": 0}, ["'g'", "'other'"]),
])
def test_fusion_group_errors(order, stream_of, words):
    g = _group_graph()
    with pytest.raises(ScheduleError) as info:
        schedule_with_events(g, order, stream_of)
    for w in words:
        assert w in str(info.value)


def test_fusion_group_may_interleave_with_other_streams():
    g = _group_graph()
    s = schedule_with_events(g, ["f1", "other", "f2", "end"], {"f1": 0, "f2": 0, "other": 1, "end": 0})
    check_schedule(g, s)
    assert s.order == ("f1", "other", "f2", "end") and s.streams == (0, 1, 0, 0)  # kept as given
    plan = memplan.plan(g, s)
    memplan.verify(g, plan)
    assert plan.order == (("f1", 0), ("other", 1), ("f2", 0), ("end", 0)) and plan.streams == 2


def test_schedule_with_events_missing_stream_is_schedule_error():
    g = H.chain()
    with pytest.raises(ScheduleError, match="'op3'"):
        schedule_with_events(g, ["op0", "op1", "op2", "op3"], {"op0": 0, "op1": 0, "op2": 0})


@pytest.mark.parametrize("bad", [1.5, "1", None, True])
def test_schedule_with_events_non_integer_stream_is_schedule_error(bad):
    g = H.chain()
    with pytest.raises(ScheduleError, match="'op1'"):
        schedule_with_events(g, ["op0", "op1", "op2", "op3"], {"op0": 0, "op1": bad, "op2": 0, "op3": 0})
