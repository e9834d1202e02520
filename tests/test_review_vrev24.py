"""Review of round 24's verifier rewrites (first access per stream, the painting in blocks, fusion-group checks
on the group's own stream): randomized cross-checks against the brute-force oracle on the shapes those
shortcuts lean on, and the boundary cases of the painting, as regression guards."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings
from oracle_fuzz import corrupt, multistream_graph, multistream_plan

import memplan

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _accepted(graph: memplan.Graph, plan: dict, fused: bool) -> bool:
    try:
        memplan.verify(graph, plan, fused_groups=fused)
    except memplan.UnsafePlan:
        return False
    return True


def _near_safe(rnd: random.Random, graph: memplan.Graph, gd: dict, plan: dict) -> dict | None:
    """The planner's own plan for ``plan``'s schedule, perturbed once (an event dropped, random events added,
    a root moved onto another): plans at the edge of safety, where a shortcut that skips an access shows."""
    order = [e["node"] for e in plan["order"]]
    try:
        sched = memplan.schedule_with_events(graph, order, {e["node"]: e["stream"] for e in plan["order"]})
        q = memplan.plan(graph, sched, solver=rnd.choice(["greedy", "size"])).to_dict()
    except memplan.ScheduleError:   # a group split or interrupted: planned without groups, safe but for rule 1
        loose = memplan.graph_from_dict({**gd, "nodes": [{k: v for k, v in n.items() if k != "group"}
                                                         for n in gd["nodes"]]})
        sched = memplan.schedule_with_events(loose, order, {e["node"]: e["stream"] for e in plan["order"]})
        return memplan.plan(loose, sched, solver="greedy").to_dict()
    how = rnd.randrange(3)
    if how == 0 and q["events"]:
        del q["events"][rnd.randrange(len(q["events"]))]
    elif how == 1:
        q["events"] += rnd.sample(plan["events"], min(3, len(plan["events"])))
    else:
        q = corrupt(gd, q, rnd.choice(["onto_root", "onto_root_views_stay", "swap_offsets"]), rnd) or q
    q["lower_bound_bytes"] = 0
    return q


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_verify_agrees_with_the_oracle_on_multistream_reuse(seed):
    """Roots read on several of up to 8 streams, views and in-place chains, SET_ROWS into views of roots and
    weights, COPY nodes, inputs and outputs, fusion groups with other streams' nodes between their members
    and events from and to mid-group members; roots crammed into a few slots. ``memplan.verify`` (with and
    without ``fused_groups``) accepts exactly what the oracle accepts. (At review, 130,000 such plans also
    gave the pre-round-24 verifier's exact findings.)"""
    rnd = random.Random(seed)
    gd = multistream_graph(rnd)
    graph = memplan.graph_from_dict(gd)
    plans = [multistream_plan(gd, rnd) for _ in range(3)]
    plans += [q for q in (_near_safe(rnd, graph, gd, p) for p in plans[:2]) if q is not None]
    for plan in plans:
        for fused in (False, True):
            want = findings(gd, plan, fused_groups=fused) == []
            assert _accepted(graph, copy.deepcopy(plan), fused) == want, (fused, findings(gd, plan, fused_groups=fused))


def test_a_view_writer_on_another_stream_is_an_access_of_its_root():
    """Rule 3 compares an earlier root with the new root's first access on each stream. The new root B is
    produced after the old root ``a``'s last reader (an event), but a SET_ROWS on a third stream writes a
    view of B with no event from ``a``'s side: that access races ``a``'s reader and must be found, though B's
    own first access (its producer) is ordered. With the event it is safe."""
    b = memplan.GraphBuilder("g")
    x = b.input("x", 256)
    b.node("n0", "OP", [x], b.intermediate("a", 256))
    b.node("n1", "OP", ["a"], b.output("y", 256))
    b.node("n2", "OP", [x], b.intermediate("B", 512))
    b.node("n3", "SET_ROWS", [x], [b.view("vb", "B", 256, 256)])
    b.node("n4", "OP", ["B"], b.output("z", 256))
    g = b.build()
    offsets = {"x": 1024, "a": 0, "y": 1280, "B": 0, "vb": 256, "z": 512}

    def plan(events):
        return {"format": "memplan.plan/1", "graph": "g", "alignment": 256, "arena_bytes": 1536,
                "lower_bound_bytes": 0, "streams": 3,
                "order": [{"node": n, "stream": s} for n, s in [("n0", 0), ("n1", 0), ("n2", 1), ("n3", 2), ("n4", 1)]],
                "events": [{"after": a, "before": c} for a, c in events],
                "tensors": [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]}

    with pytest.raises(memplan.UnsafePlan, match=r"tensors 'a' and 'B' overlap"):
        memplan.verify(g, plan([("n1", "n2"), ("n3", "n4")]))
    memplan.verify(g, plan([("n1", "n2"), ("n1", "n3"), ("n3", "n4")]))


@pytest.mark.parametrize("block", [1, 2, 3, 512])
def test_painting_keeps_exact_segments_at_any_address(monkeypatch, block):
    """``_Painting`` against a list of (start, end, owner) segments: each paint returns exactly the covered
    segments' owners in address order (repeats included), and the blocks hold exactly the model's segments;
    ranges identical to, nested in, touching and spanning earlier ones, painted top-down, near 2**63."""
    from memplan.verify import _Painting

    monkeypatch.setattr(_Painting, "_BLOCK", block)
    for trial in range(150):
        rnd = random.Random(trial)
        paint, segs = _Painting(), []
        base, span = rnd.choice([0, 2**63 - 10**6]), rnd.choice([20, 1000, 10**6])
        for k in range(rnd.choice([10, 60, 200])):
            how = rnd.randrange(6)
            if how < 3 and segs:   # identical, nested, touching an earlier segment
                s, e, _ = rnd.choice(segs)
                lo, hi = [(s, e), (s + (d := rnd.randrange(e - s)), rnd.randint(s + d + 1, e)), (e, e + 3)][how]
            elif how == 3:   # top-down
                lo = base + max(span - k - 1, 0)
                hi = lo + 1
            else:
                lo = base + rnd.randrange(span)
                hi = lo + rnd.randint(1, max(1, span // rnd.choice([1, 5, 50])))
            want = [o for s, e, o in segs if s < hi and lo < e]
            segs = sorted([seg for s, e, o in segs for seg in ((s, min(e, lo), o), (max(s, hi), e, o)) if seg[0] < seg[1]]
                          + [(lo, hi, k)])
            assert paint.paint(lo, hi, k) == want
            assert [seg for blk in zip(paint.starts, paint.ends, paint.owners) for seg in zip(*blk)] == segs
            assert paint.heads == [s[0] for s in paint.starts] and all(paint.starts)
