"""Session 54: ``memplan.verify`` read as an adversary, against tests/verify54_ref.py (a reference checker written
from CONTRACT.md and docs/format.md that answers happens-before by a depth-first search over the plan's edges and
compares every access of every pair of overlapping roots, importing nothing of memplan).

Two kinds of tests: hand-edited plans of small graphs, each the boundary of one rule (a byte of overlap at either
end against none, reuse ordered only through an event recorded before the old reader, waits before their records,
an event inside one stream, a three-stream chain with a link missing, a view's parent reused while the view is read,
inputs / outputs / weights overwritten, zero-size roots, alignment, two devices, a graph changed after planning),
each judged alike by both checkers and as the contract says; and a hypothesis property test: random tiny graph,
random streams and devices, random (often unsafe) offsets and events, the verifier's verdict and broken rules equal
to the reference's.
"""

from __future__ import annotations

import copy
import importlib
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify54_gen import graph_doc, plan_doc
from verify54_ref import reasons

import memplan
from memplan import examples
from memplan.verify import check

V = importlib.import_module("memplan.verify")   # (``memplan.verify`` is the function)


def _rules(graph: dict, plan: dict, fused: bool = False) -> tuple[set[int], set[int]]:
    """The rules the verifier and the reference find broken (empty: safe); ``fused``: with fusion groups run as one
    kernel (``verify(fused_groups=True)``)."""
    got = {r for r, _ in check(memplan.graph_from_dict(graph), copy.deepcopy(plan), fused_groups=fused)}
    want = {int(r[0]) for r in reasons(graph, plan, fused=fused)}
    return got, want


def _graph(tensors: list[tuple], nodes: list[tuple], alignment: int = 1) -> dict:
    """A graph document from ``(id, size, kind[, parent, view_offset])`` and ``(id, inputs, outputs[, inplace])``."""
    ts = []
    for t in tensors:
        d = {"id": t[0], "size": t[1], "kind": t[2]}
        if len(t) > 3:
            d["view_of"], d["view_offset"] = t[3], t[4]
        ts.append(d)
    ns = [{"id": n[0], "op": "OP", "inputs": n[1], "outputs": n[2], **({"inplace": n[3]} if len(n) > 3 else {})}
          for n in nodes]
    return {"format": "memplan.graph/1", "name": "g", "alignment": alignment, "tensors": ts, "nodes": ns}


def _plan(graph: dict, order: list[tuple[str, int]], events: list[tuple[str, str]], offsets: dict[str, int],
          arena: int | None = None, alignment: int | None = None) -> dict:
    """A plan document: ``order`` as (node, stream), offsets of the arena roots (views follow their parents)."""
    tensors = {t["id"]: t for t in graph["tensors"]}

    def off(t: str):
        td = tensors[t]
        if td.get("view_of") is not None:
            p = off(td["view_of"])
            return None if p is None else p + td["view_offset"]
        return None if td["kind"] == "weight" else offsets[t]

    place = [{"id": t, "offset": off(t), "size": td["size"]} for t, td in tensors.items()]
    top = max([e["offset"] + e["size"] for e in place if e["offset"] is not None] or [0])
    return {"format": "memplan.plan/1", "graph": "g", "alignment": alignment or graph["alignment"],
            "arena_bytes": top if arena is None else arena, "lower_bound_bytes": 0,
            "streams": 1 + max(s for _, s in order), "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events], "tensors": place}


def _judged(graph: dict, plan: dict, broken: set[int]) -> None:
    got, want = _rules(graph, plan)
    assert want == broken, reasons(graph, plan)
    assert got == broken, check(memplan.graph_from_dict(graph), copy.deepcopy(plan))


# x -> n0 -> a -> n1 -> b -> n2 -> y, 100 bytes each, alignment 1: a and b are both live at n1
CHAIN = _graph([("x", 100, "input"), ("a", 100, "intermediate"), ("b", 100, "intermediate"), ("y", 100, "output")],
               [("n0", ["x"], ["a"]), ("n1", ["a"], ["b"]), ("n2", ["b"], ["y"])])
SERIAL = [("n0", 0), ("n1", 0), ("n2", 0)]


@pytest.mark.parametrize("a, b, broken", [
    (0, 99, {3}), (0, 100, set()),     # b over a's last byte / right after it
    (100, 1, {3}), (100, 0, set()),    # b over a's first byte / right before it
])
def test_one_byte_of_overlap_at_either_end(a, b, broken):
    _judged(CHAIN, _plan(CHAIN, SERIAL, [], {"x": 300, "a": a, "b": b, "y": 200}), broken)


# n0 writes a, r reads it last (stream 0); w on stream 1 writes c over a's bytes
REUSE = _graph([("x", 64, "input"), ("a", 64, "intermediate"), ("y", 64, "output"), ("c", 64, "output")],
               [("n0", ["x"], ["a"]), ("r", ["a"], ["y"]), ("w", ["x"], ["c"])])
REUSE_ORDER = [("n0", 0), ("r", 0), ("w", 1)]


@pytest.mark.parametrize("events, broken", [
    ([("n0", "w")], {3}),            # recorded after a's producer but before its reader r: w may overwrite a under r
    ([("r", "w")], set()),           # after the last reader
    ([("n0", "w"), ("r", "w")], set()),
    ([], {3}),
])
def test_reuse_ordered_only_through_an_event_before_the_old_reader(events, broken):
    _judged(REUSE, _plan(REUSE, REUSE_ORDER, events, {"x": 128, "a": 0, "y": 64, "c": 0}), broken)


def test_waits_before_their_records_in_a_cycle_order_nothing():
    """p, q on stream 0; u, v on stream 1; issue order p u q v; the events q->u and v->p are waited on before they are
    recorded (a cycle if they counted): rule 1, and c over a is then unordered (rule 3), as u reads what q frees."""
    g = _graph([("x", 64, "input"), ("a", 64, "intermediate"), ("c", 64, "output"), ("d", 64, "output"),
                ("e", 64, "output")],
               [("p", ["x"], ["a"]), ("u", ["x"], ["c"]), ("q", ["a"], ["d"]), ("v", ["c"], ["e"])])
    order = [("p", 0), ("u", 1), ("q", 0), ("v", 1)]
    offsets = {"x": 256, "a": 0, "c": 0, "d": 64, "e": 128}
    _judged(g, _plan(g, order, [("q", "u"), ("v", "p")], offsets), {1, 3})
    _judged(g, _plan(g, order, [("q", "u")], offsets), {1, 3})
    _judged(g, _plan(g, [("p", 0), ("q", 0), ("u", 1), ("v", 1)], [("q", "u")], offsets), set())


def test_an_event_inside_one_stream_is_refused_even_where_harmless():
    _judged(CHAIN, _plan(CHAIN, SERIAL, [("n0", "n1")], {"x": 0, "a": 100, "b": 200, "y": 300}), {1})
    _judged(CHAIN, _plan(CHAIN, SERIAL, [("n1", "n1")], {"x": 0, "a": 100, "b": 200, "y": 300}), {1})


# a written on stream 0, read on stream 2; the only path goes through m on stream 1
THREE = _graph([("x", 64, "input"), ("a", 64, "intermediate"), ("k", 64, "intermediate"), ("y", 64, "output"),
                ("z", 64, "output")],
               [("n0", ["x"], ["a"]), ("m", ["x"], ["k"]), ("n1", ["x"], ["z"]), ("r", ["a", "k"], ["y"])])
THREE_ORDER = [("n0", 0), ("n1", 0), ("m", 1), ("r", 2)]


@pytest.mark.parametrize("events, broken", [
    ([("n0", "m"), ("m", "r")], set()),     # n0 -> m -> r: a's writer happens-before its reader
    ([("n0", "m")], {2}),                   # the link into r missing: neither a's nor k's writer ordered
    ([("m", "r")], {2}),                    # the link out of stream 0 missing
    ([("n1", "m"), ("m", "r")], set()),     # recorded after n1 (after n0 on stream 0): still a path
    ([("n0", "n1"), ("m", "r")], {1, 2}),   # an event inside stream 0 instead of the link to stream 1
])
def test_a_chain_of_events_over_three_streams_with_a_link_missing(events, broken):
    offsets = {"x": 0, "a": 64, "k": 128, "y": 192, "z": 256}
    _judged(THREE, _plan(THREE, THREE_ORDER, events, offsets), broken)


def test_a_views_parent_reused_while_the_view_is_still_read():
    """R is read through its view v by r (stream 0) after c's producer w (stream 1) has taken R's bytes: w waits for
    the view op only, not for r; with the event from r it is safe."""
    g = _graph([("x", 64, "input"), ("R", 128, "intermediate"), ("v", 64, "intermediate", "R", 64),
                ("y", 64, "output"), ("c", 64, "output")],
               [("p", ["x"], ["R"]), ("vw", ["R"], ["v"]), ("r", ["v"], ["y"]), ("w", ["x"], ["c"])])
    order = [("p", 0), ("vw", 0), ("r", 0), ("w", 1)]
    offsets = {"x": 256, "R": 0, "y": 128, "c": 64}   # c over v's bytes
    _judged(g, _plan(g, order, [("vw", "w")], offsets), {3})
    _judged(g, _plan(g, order, [("r", "w")], offsets), set())
    _judged(g, _plan(g, order, [("r", "w")], {**offsets, "c": 0}), set())   # c over R's bytes v does not cover


def test_inputs_outputs_and_weights_overwritten():
    g = _graph([("x", 64, "input"), ("w8", 64, "weight"), ("a", 64, "intermediate"), ("y", 64, "output"),
                ("b", 64, "intermediate"), ("z", 64, "output")],
               [("n0", ["x", "w8"], ["a"]), ("n1", ["a"], ["y"]), ("n2", ["a"], ["b"]), ("n3", ["b"], ["z"])])
    order = [("n0", 0), ("n1", 0), ("n2", 0), ("n3", 0)]
    safe = {"x": 0, "a": 64, "y": 128, "b": 0, "z": 192}   # b over x, whose last reader n0 came first
    _judged(g, _plan(g, order, [], safe), set())
    _judged(g, _plan(g, order, [], {**safe, "b": 128}), {3})   # b over the output y, which must survive the run
    _judged(g, _plan(g, order, [], {**safe, "a": 0, "b": 64}), {3})   # a over x, both touched by n0
    doc = _plan(g, order, [], safe)
    next(e for e in doc["tensors"] if e["id"] == "w8")["offset"] = 192   # the weight placed in the arena
    _judged(g, doc, {4})


def test_an_input_no_node_reads_still_holds_the_hosts_data():
    g = _graph([("x", 64, "input"), ("u", 64, "input"), ("a", 64, "output")], [("n0", ["x"], ["a"])])
    _judged(g, _plan(g, [("n0", 0)], [], {"x": 0, "u": 64, "a": 128}), set())
    _judged(g, _plan(g, [("n0", 0)], [], {"x": 0, "u": 0, "a": 128}), {3})   # two inputs, both written before the run
    # the unread input under the output: its only access, the host's write before the run, precedes all of a's
    _judged(g, _plan(g, [("n0", 0)], [], {"x": 0, "u": 128, "a": 128}), set())
    _judged(g, _plan(g, [("n0", 0)], [], {"x": 0, "u": 128, "a": 0}), {3})   # the read one: n0 reads x, writes a


@pytest.mark.parametrize("offset, arena, broken", [
    (0, 100, set()), (50, 100, set()),     # inside live tensors: a zero-size root overlaps nothing
    (100, 100, set()), (101, 100, {4}),    # at arena_bytes itself / a byte past it
])
def test_zero_size_roots(offset, arena, broken):
    g = _graph([("x", 100, "input"), ("e", 0, "intermediate"), ("y", 100, "output")],
               [("n0", ["x"], ["e"]), ("n1", ["x", "e"], ["y"])])
    doc = _plan(g, [("n0", 0), ("n1", 0)], [], {"x": 0, "e": offset, "y": 0}, arena=arena)
    doc["tensors"][2]["offset"] = 0   # y over x: n1 reads x and writes y (not in place): unsafe on its own
    _judged(g, doc, broken | {3})   # (round 70: rule 3 is judged beside rule 4's findings, as it was not before)
    doc["tensors"][0]["offset"], doc["tensors"][2]["offset"] = 0, 0
    g2 = _graph([("x", 100, "input"), ("e", 0, "intermediate"), ("y", 100, "output")],
                [("n0", ["x"], ["e"]), ("n1", ["e"], ["y"])])   # x's last reader n0 before y's writer n1
    _judged(g2, _plan(g2, [("n0", 0), ("n1", 0)], [], {"x": 0, "e": offset, "y": 0}, arena=arena), broken)


@pytest.mark.parametrize("graph_align, plan_align, offset, broken", [
    (256, 256, 256, set()), (256, 256, 128, {4}), (256, 512, 256, {4}), (1, 4, 66, {4}), (1, 1, 67, set()), (1, 1, 63, {3}),
])
def test_alignment_of_the_graph_and_of_the_plan(graph_align, plan_align, offset, broken):
    g = _graph([("x", 64, "input"), ("y", 64, "output")], [("n0", ["x"], ["y"])], alignment=graph_align)
    doc = _plan(g, [("n0", 0)], [], {"x": 0, "y": offset}, alignment=plan_align)
    _judged(g, doc, broken)


def test_two_devices_reuse_across_devices_only():
    """chain4 split over two devices: t1 (device 0) and its copy t1@dev1 (device 1) both at offset 0 while the COPY
    touches both is safe (one arena per device); t2 moved onto t1@dev1 on device 1, where op2 reads one and writes
    the other, is not; nor is t1@dev1 moved to device 0, where op2 (device 1) cannot touch it (and where it lies on t1,
    which the COPY reads while it writes t1@dev1)."""
    planned = memplan.plan_graph(examples.chain(4, size=256), devices=2)
    gd, doc = planned.graph.to_dict(), planned.plan.to_dict()
    place = {e["id"]: e for e in doc["tensors"]}
    assert (place["t1"]["offset"], place["t1"]["device"]) == (0, 0)
    assert (place["t1@dev1"]["offset"], place["t1@dev1"]["device"]) == (0, 1)
    _judged(gd, doc, set())
    onto = copy.deepcopy(doc)
    next(e for e in onto["tensors"] if e["id"] == "t2")["offset"] = 0
    _judged(gd, onto, {3})
    moved = copy.deepcopy(doc)
    next(e for e in moved["tensors"] if e["id"] == "t1@dev1")["device"] = 0
    _judged(gd, moved, {3, 4})   # (and, judged beside rule 4 since round 70, on t1's bytes, which the COPY reads)


def test_a_plan_checked_against_its_graph_changed_after_planning():
    doc = _plan(CHAIN, SERIAL, [], {"x": 0, "a": 100, "b": 0, "y": 200})
    _judged(CHAIN, doc, set())
    grown = copy.deepcopy(CHAIN)
    grown["tensors"][1]["size"] = 101   # a one byte larger: the plan's entry disagrees, and a's bytes now reach y
    _judged(grown, doc, {4})
    reread = copy.deepcopy(CHAIN)
    reread["nodes"][2]["inputs"] = ["b", "x"]   # n2 now reads x too, which b's producer n1 overwrote
    _judged(reread, doc, {3})


def _agrees(seed: int, wide: bool) -> None:
    """The verifier breaks the same rules as the reference on the random tiny plan of ``seed`` (tests/verify54_gen.py),
    none where the reference finds it safe (every third seed with fusion groups run as one kernel); ``wide`` takes the verifier's many-stream paths (every comparison through
    floors and arrays, clocks shared at any difference) on these few streams too."""
    rnd = random.Random(seed)
    gd = graph_doc(rnd.randint)
    pd = plan_doc(gd, rnd.randint)
    saved = V._WIDE, V._SHARE_SLACK, V._CHECKPOINT
    try:
        if wide:
            V._WIDE, V._SHARE_SLACK, V._CHECKPOINT = 1, 1, 1
        got, want = _rules(gd, pd, fused=seed % 3 == 0)
    finally:
        V._WIDE, V._SHARE_SLACK, V._CHECKPOINT = saved
    assert got == want, (seed, reasons(gd, pd, fused=seed % 3 == 0), pd)


@settings(max_examples=400 * int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**63), st.booleans())
def test_verify_agrees_with_the_reference_on_random_tiny_plans(seed, wide):
    _agrees(seed, wide)


def test_verify_agrees_with_the_reference_on_a_fixed_sweep():
    """4,000 fixed seeds, half of them on the wide paths: a broken corner (an in-place pair whose input is an output, a
    device arena a byte short, a COPY's output on another device) comes up a few times in a few thousand plans, more
    than hypothesis's examples reach in a second or two. Checked to fail with each of those corners taken out of
    ``memplan.verify`` (2 to 280 disagreements in 6,000 plans each)."""
    for seed in range(4000):
        _agrees(seed, seed % 2 == 1)
