"""Review of session 26's correctness-core changes: the verifier's clock join (only the last waited node per
stream, nodes the clock already counts skipped) and its in-place exception by per-stream summaries, both
against the brute-force oracle on hostile event lists; the budget's windowed fork scores (a window to the end
is the exact replay; windowed plans verify and are deterministic); and the Plan's free-form blocks."""

from __future__ import annotations

import copy
import os
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings
from oracle_fuzz import random_placement
from plan_mutators import plan_with_offsets_of, plan_without_event
from strategies import graphs, schedules, view_chains

import memplan
from memplan import GraphBuilder, generators
from memplan.optimize import budget
from memplan.optimize.events import Replay

SCALE = int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1"))
SETTINGS = settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _accepted(graph: memplan.Graph, plan: dict, fused: bool = False) -> bool:
    try:
        memplan.verify(graph, plan, fused_groups=fused)
    except memplan.UnsafePlan:
        return False
    return True


def _hostile_events(rnd: random.Random, plan: dict) -> list[dict]:
    """``plan``'s events shuffled with duplicates, several waits of one node on nodes of one stream (in any
    order), now and then one within a stream or pointing backwards: what the clock join must not be fooled by."""
    order, events = plan["order"], list(plan["events"])
    n = len(order)
    for _ in range(rnd.randrange(6) if n >= 2 else 0):
        r = rnd.random()
        if r < 0.05:
            i, j = sorted(rnd.sample(range(n), 2))
            events.append({"after": order[j]["node"], "before": order[i]["node"]})
        elif r < 0.1:
            same = [(x, y) for x in range(n) for y in range(x + 1, n) if order[x]["stream"] == order[y]["stream"]]
            if same:
                x, y = rnd.choice(same)
                events.append({"after": order[x]["node"], "before": order[y]["node"]})
        elif r < 0.35 and events:
            events.append(dict(rnd.choice(events)))
        else:
            j = rnd.randrange(1, n)
            s = rnd.choice([e["stream"] for e in order[:j]])
            srcs = [e["node"] for e in order[:j] if e["stream"] == s != order[j]["stream"]]
            for a in rnd.sample(srcs, min(len(srcs), rnd.randint(1, 3))):
                events.append({"after": a, "before": order[j]["node"]})
    rnd.shuffle(events)
    return events


def _inplace_onto_input(gd: dict, q: dict, rnd: random.Random) -> None:
    """Move some in-place output roots (and their views) onto their input's root: the exception's own case."""
    tens = {t["id"]: t for t in gd["tensors"]}

    def root(t: str) -> str:
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
        return t

    offs = {e["id"]: e for e in q["tensors"]}
    for nd in gd["nodes"]:
        for o, i in (nd.get("inplace") or {}).items():
            a, b = root(i), root(o)
            if a != b and rnd.random() < 0.7 and offs[a]["offset"] is not None and offs[b]["offset"] is not None:
                delta = offs[a]["offset"] - offs[b]["offset"]
                for t in tens:
                    if root(t) == b and offs[t]["offset"] is not None:
                        offs[t]["offset"] += delta
    q["arena_bytes"] = max([e["offset"] + e["size"] for e in q["tensors"] if e["offset"] is not None] + [0])


@SETTINGS
@given(st.data())
def test_verify_agrees_with_the_oracle_on_hostile_events(data):
    """Random graphs and schedules (strategies.py), the planner's events with duplicates and many waits per
    node added, random or in-place-overlapping placements, a dropped event, serial offsets on the schedule."""
    g = data.draw(st.one_of(graphs(10), view_chains(10)), label="graph")
    order, stream_of = data.draw(schedules(g, 4), label="schedule")
    plan = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of), solver="greedy")
    rnd = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    variants = [plan]
    if plan.events:
        variants.append(plan_without_event(plan, rnd.choice(plan.events)))
    variants.append(plan_with_offsets_of(plan, memplan.plan(g)))
    gd = g.to_dict()
    for base in variants:
        for _ in range(4):
            q = copy.deepcopy(base.to_dict())
            q["events"] = _hostile_events(rnd, q)
            if rnd.random() < 0.5:
                q = random_placement(gd, q, rnd, keep_events=True)
            if rnd.random() < 0.5:
                _inplace_onto_input(gd, q, rnd)
            fused = rnd.random() < 0.3
            want = findings(gd, q, fused_groups=fused)
            assert _accepted(g, q, fused) == (want == []), want


def _fan_graph() -> memplan.Graph:
    """a1, a2 on one stream (a2 writes t2), b and c on others; c reads t2 and b's output."""
    b = GraphBuilder("fan", alignment=1)
    b.input("x", 16)
    b.tensor("t1", 16)
    b.tensor("t2", 16)
    b.tensor("tb", 16)
    b.tensor("y", 16, "output")
    b.node("a1", "OP", ["x"], ["t1"])
    b.node("a2", "OP", ["t1"], ["t2"])
    b.node("b", "OP", ["t1"], ["tb"])
    b.node("c", "OP", ["t2", "tb"], ["y"])
    return b.build()


@pytest.mark.parametrize("events,safe", [
    ([("a1", "b"), ("a2", "c"), ("b", "c")], True),
    ([("a1", "b"), ("a1", "c"), ("b", "c")], False),              # a2 never waited on: c misses t2
    ([("a1", "b"), ("b", "c"), ("a1", "c"), ("a2", "c")], True),  # a1 first, a2 later: a2 must not be skipped
    ([("a1", "b"), ("a2", "c"), ("a1", "c"), ("b", "c"), ("a2", "c")], True),   # duplicates, any order
    ([("a2", "b"), ("b", "c")], True),   # c sees a2 through b's clock (the skip of a node already counted)
    ([("a1", "b"), ("b", "c"), ("a1", "c")], False),   # a1 counted through b, a2 still not
])
def test_several_waits_on_one_stream(events, safe):
    g = _fan_graph()
    order = [("a1", 0), ("a2", 0), ("b", 1), ("c", 2)]
    gd = g.to_dict()
    pd = memplan.plan(g, memplan.schedule_with_events(g, [n for n, _ in order], dict(order)),
                      solver="greedy").to_dict()
    pd["events"] = [{"after": a, "before": b} for a, b in events]
    want = findings(gd, pd)
    assert (want == []) is safe, want
    assert _accepted(g, pd) is safe


def _inplace_graph() -> memplan.Graph:
    """``a`` read by rd and rd2 (one stream), then overwritten in place by n; its output and r2 read by use."""
    b = GraphBuilder("ip", alignment=1)
    b.input("x", 64)
    for t in ("a", "r", "r2", "o"):
        b.tensor(t, 64)
    b.tensor("y", 64, "output")
    b.node("p", "OP", ["x"], ["a"])
    b.node("rd", "OP", ["a"], ["r"])
    b.node("rd2", "OP", ["a"], ["r2"])
    b.node("n", "OP", ["a", "r"], ["o"], inplace={"o": "a"})
    b.node("use", "OP", ["o", "r2"], ["y"])
    return b.build()


@pytest.mark.parametrize("streams,events,safe", [
    ({"p": 0, "rd": 1, "rd2": 1, "n": 0, "use": 2}, [("p", "rd"), ("rd2", "n"), ("n", "use"), ("rd2", "use")], True),
    # n waits on rd only: rd2's read of a (later on stream 1) may run after n overwrote a
    ({"p": 0, "rd": 1, "rd2": 1, "n": 0, "use": 2}, [("p", "rd"), ("rd", "n"), ("n", "use"), ("rd2", "use")], False),
    ({"p": 0, "rd": 1, "rd2": 1, "n": 1, "use": 2}, [("p", "rd"), ("n", "use")], True),
    ({"p": 0, "rd": 1, "rd2": 2, "n": 0, "use": 1}, [("p", "rd"), ("p", "rd2"), ("rd", "n"), ("rd2", "n"),
                                                    ("n", "use"), ("rd2", "use")], True),
    ({"p": 0, "rd": 1, "rd2": 2, "n": 0, "use": 1}, [("p", "rd"), ("p", "rd2"), ("rd", "n"), ("n", "use"),
                                                    ("rd2", "use")], False),
])
def test_inplace_exception_by_stream_summaries(streams, events, safe):
    g = _inplace_graph()
    order = ["p", "rd", "rd2", "n", "use"]
    pd = memplan.plan(g, memplan.schedule_with_events(g, order, streams), solver="greedy").to_dict()
    pd["events"] = [{"after": a, "before": b} for a, b in events]
    offs = {e["id"]: e for e in pd["tensors"]}
    offs["o"]["offset"] = offs["a"]["offset"]   # o written over a
    pd["arena_bytes"] = max(e["offset"] + e["size"] for e in pd["tensors"])
    pd["lower_bound_bytes"] = 0
    want = findings(g.to_dict(), pd)
    assert (want == []) is safe, want
    assert _accepted(g, pd) is safe


def test_windowed_fork_scores(monkeypatch):
    """Past ``MAX_REPLAY_STEPS`` the forks are scored by windows: a window to the end is the exact replay
    (the same plans), and short windows still give verified plans, the same in every run. (30 branches: the same
    three budgets as 60, short windows again changing the plan at one; 60 cost 8.5 s of CI.)"""
    g = generators.fanout_join(30, seed=3)[0]
    serial, free = memplan.plan(g).arena_bytes, memplan.plan(g, streams="auto").arena_bytes
    budgets = sorted({serial, free, (serial + free) // 2})
    exact = [memplan.plan(g, streams="auto", memory_budget=b).to_json() for b in budgets]
    monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", 0)
    monkeypatch.setattr(budget, "REPLAY_WINDOW", 10**9)
    assert [memplan.plan(g, streams="auto", memory_budget=b).to_json() for b in budgets] == exact
    monkeypatch.setattr(budget, "REPLAY_WINDOW", 2)
    for b in budgets:
        p = memplan.plan(g, streams="auto", memory_budget=b)
        memplan.verify(g, p)
        assert p.arena_bytes <= b and p.to_json() == memplan.plan(g, streams="auto", memory_budget=b).to_json()


def test_rerun_window_to_the_end_is_rerun():
    g = generators.fanout_join(40, seed=1)[0]
    rnd = random.Random(0)
    order = list(range(len(g.nodes)))
    streams = [rnd.randrange(3) for _ in order]
    cost = [float(rnd.randint(1, 9)) for _ in order]
    marks = sorted(rnd.sample(range(len(order)), 10))
    rp = Replay(g, order, streams, cost, 2.0, marks)
    for p in marks:
        new = list(streams[:p]) + [rnd.randrange(4) for _ in order[p:]]
        assert rp.rerun_window(p, len(order), new[p:]) == rp.rerun(p, new)
        # and the window left the base run as it was
        assert rp.rerun(p, streams) == (rp.events, rp.makespan)


@pytest.mark.parametrize("extra", [[("k", 1)], None, "text"])
def test_plan_blocks_that_are_no_mapping_are_named(extra):
    """A Plan built in code with ``extra`` (or ``solver``) that is no mapping: to_dict / to_json name the field
    (an AttributeError from ``.items()`` before)."""
    plan = memplan.plan(_fan_graph())
    for bad in (replace(plan, extra=extra), replace(plan, solver=extra)):
        with pytest.raises(memplan.PlanFormatError, match="extra|solver"):
            bad.to_json()
