"""Hostile input, round 24: graphs, schedules and options at the edges of the contract.

Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import pytest

import memplan
from memplan import examples
from memplan.schedule import schedule_with_events


def _qkv_on_four_streams():
    g = examples.bundled()["qkv"]
    order = tuple(n.id for n in g.nodes)
    streams = {"norm": 0, "mm_q": 1, "mm_k": 2, "mm_v": 3, "attn": 0, "mm_o": 0}
    return g, schedule_with_events(g, order, streams)


@pytest.mark.parametrize("streams", [None, 4, "auto"])   # (4: the schedule's; fewer is refused, round 41)
def test_max_events_checks_a_given_schedule(streams):
    """``plan(g, schedule=s, streams=2, max_events=0)`` with a schedule of 6 events returned that schedule's
    plan, 6 events, its solver block reporting ``max_events: 0`` beside them; without ``streams`` the call was
    refused with "give streams=N too", after which the cap was ignored. A given schedule is now checked
    against ``max_events`` (as against a memory budget), never changed: over the cap it is a ScheduleError."""
    g, s = _qkv_on_four_streams()
    assert len(s.events) == 6
    opts = {} if streams is None else {"streams": streams}
    with pytest.raises(memplan.ScheduleError, match=r"given schedule has 6 events, over max_events=5"):
        memplan.plan(g, schedule=s, max_events=5, **opts)
    p = memplan.plan(g, schedule=s, max_events=6, **opts)
    assert len(p.events) == 6 and p.solver["schedule"]["max_events"] == 6


@pytest.mark.parametrize("extra", [{"devices": 2, "device_arena_bytes": [1, 2]}, {"devices": 3}])
def test_extra_fields_cannot_name_plan_fields(tmp_path, extra):
    """A single-device Plan with ``extra={"devices": 2, ...}`` (built in code) verified, and ``save`` wrote a file
    declaring two devices, which ``load_plan`` then refused ("needs a 'device' in every order and tensor
    entry"). ``extra`` holds only fields the format does not define: such a Plan is a PlanFormatError naming
    the field, and nothing is written."""
    import dataclasses

    g = examples.bundled()["qkv"]
    bad = dataclasses.replace(memplan.plan(g), extra=extra)
    for call in (lambda: bad.save(str(tmp_path / "p.json")), bad.to_json):
        with pytest.raises(memplan.PlanFormatError, match=r"field 'extra' holds 'dev"):
            call()
    assert list(tmp_path.iterdir()) == []
    ok = dataclasses.replace(memplan.plan(g), extra={"note": 1})   # an unknown field round-trips
    ok.save(str(tmp_path / "ok.json"))
    assert memplan.load_plan(str(tmp_path / "ok.json")).extra == {"note": 1}


def test_an_inplace_output_is_paired_once(tmp_path):
    """``Node(inplace=(("y", "x"), ("y", "z")))`` (a Node built in code; JSON and GraphBuilder take a map) was
    accepted: the plan put y over x, and ``save_graph`` wrote ``{"y": "z"}``, so the saved plan was unsafe
    for the saved graph (rule 3: x and y overlap). Each output is paired once (GraphError naming it)."""
    from memplan.graph import Graph, Node, Tensor

    ts = (Tensor("x", 256, "input"), Tensor("z", 256, "input"), Tensor("y", 256), Tensor("o", 256, "output"))
    m = Node("m", "OP", ("y", "z"), ("o",))
    for pairs in ((("y", "x"), ("y", "z")), (("y", "x"), ("y", "x"))):
        with pytest.raises(memplan.GraphError, match=r"node 'n': inplace output 'y' is paired twice"):
            Graph("g", ts, (Node("n", "OP", ("x", "z"), ("y",), inplace=pairs), m))
    g = Graph("g", ts, (Node("n", "OP", ("x", "z"), ("y",), inplace=(("y", "x"),)), m))
    memplan.save_graph(g, str(tmp_path / "g.json"))
    memplan.verify(memplan.load_graph(str(tmp_path / "g.json")), memplan.plan(g))


def _many_small_then_one_big(k: int, late: int | None = None):
    """k inputs of 256 B, each read once, then a root B over all their bytes, produced and then read by k
    nodes, on one stream (the arena a planner gives it: B reuses the inputs' bytes). ``late``: that input's
    reader runs after B's producer instead, so B overwrites it too early."""
    from memplan import Plan

    b = memplan.GraphBuilder("many_then_big")
    for i in range(k):
        b.input(f"x{i}", 256)
    big = b.intermediate("B", 256 * k)
    readers = [(f"n{i}", [f"x{i}"]) for i in range(k) if i != late]
    b_readers = [(f"r{j}", [big]) for j in range(k)]
    for nid, ins in readers:
        b.node(nid, "R", ins, [])
    b.node("p", "P", [], big)
    if late is not None:
        b.node(f"n{late}", "R", [f"x{late}"], [])
    for nid, ins in b_readers:
        b.node(nid, "R", ins, [])
    g = b.build()
    tensors = tuple((f"x{i}", 256 * i, 256) for i in range(k)) + (("B", 0, 256 * k),)
    plan = Plan(graph=g.name, alignment=256, arena_bytes=256 * k, lower_bound_bytes=0, streams=1,
                order=tuple((n.id, 0) for n in g.nodes), events=(), tensors=tensors)
    return g, plan


def test_a_root_over_many_earlier_roots_verifies_in_linear_time():
    """A root B whose bytes 24,000 earlier roots used, read by 24,000 nodes: the verifier compared every
    earlier root with every access of B (k^2 clock lookups), 14 s here and 34 of the 35 s ``memplan plan``
    took at 32,000 (planning: 0.8 s). B's first access on each stream stands for the rest (clocks only grow
    along a stream): linear. The same shape with one input read after B is written is still unsafe."""
    from test_hostile_api import no_hang

    g, plan = _many_small_then_one_big(24_000)
    with no_hang(8):
        memplan.verify(g, plan)
    g, plan = _many_small_then_one_big(50, late=7)
    with pytest.raises(memplan.UnsafePlan, match=r"tensors 'x7' and 'B' overlap"):
        memplan.verify(g, plan)


def _group_pair():
    b = memplan.GraphBuilder("g")
    x = b.input("x", 256)
    b.node("a", "OP", [x], b.intermediate("t", 256), group="G")
    b.node("c", "OP", ["t"], b.output("y", 256), group="G")
    b.node("d", "OP", [x], b.output("z", 256))
    return b.build()


def test_an_unknown_node_inside_a_fusion_group_is_a_finding():
    """A Plan (built in code) whose order names an unknown node between a fusion group's members:
    ``memplan.verify`` raised KeyError from its group check, which read the node's index from the order.
    The group check now walks each stream's own nodes; the unknown node is a rule 1 finding."""
    import dataclasses

    g = _group_pair()
    p = memplan.plan(g)
    bad = dataclasses.replace(p, order=(("a", 0), ("zzz", 0), ("c", 0), ("d", 0)))
    with pytest.raises(memplan.UnsafePlan, match=r"order names unknown node 'zzz'"):
        memplan.verify(g, bad)


@pytest.mark.parametrize("order,streams,who", [
    (("a", "d", "c"), (0, 0, 0), "'d' on stream 0"),     # interrupted on its own stream
    (("a", "d", "c"), (0, 1, 0), None),                  # another stream's node between: fine
    (("d", "a", "c"), (0, 0, 0), None),
])
def test_fusion_group_interruptions_are_found_on_the_groups_stream(order, streams, who):
    """The group checks (verify's and ``check_schedule``'s) walk each stream's nodes in issue order, not the
    whole issue order between a group's members (which cost streams x nodes): same findings."""
    from memplan.schedule import Schedule, check_schedule
    from memplan.verify import check

    g = _group_pair()
    s = Schedule(order, streams, ())
    if who is None:
        check_schedule(g, s)
    else:
        with pytest.raises(memplan.ScheduleError, match=f"interrupted by node {who}"):
            check_schedule(g, s)
    p = memplan.plan(g)
    found = check(g, memplan.Plan(p.graph, p.alignment, p.arena_bytes, p.lower_bound_bytes, max(streams) + 1,
                                  tuple(zip(order, streams)), (), p.tensors))
    interrupted = [m for r, m in found if "interrupted" in m]
    assert interrupted == ([] if who is None else [f"fusion group 'G' is interrupted by {who}"])


@pytest.mark.parametrize("block", [1, 2, 3, 512])
def test_the_verifiers_painting_matches_a_byte_model(monkeypatch, block):
    """``verify`` finds overlapping roots by painting the arena root by root (``_Painting``); each paint returns
    the owners of the segments it covers. Checked against one owner per byte, with blocks of 1..512 segments
    (the blocks split as they grow; tiny ones split on every few paints)."""
    import random

    from memplan.verify import _Painting

    monkeypatch.setattr(_Painting, "_BLOCK", block)
    for trial in range(300):
        rnd = random.Random(trial)
        paint, width = _Painting(), rnd.choice([8, 30, 200])
        owner: list[int | None] = [None] * width
        for k in range(rnd.randint(1, 40)):
            lo = rnd.randrange(width)
            hi = rnd.randint(lo + 1, min(width, lo + rnd.choice([1, 3, 10, width])))
            got = paint.paint(lo, hi, k)
            want = [owner[x] for x in range(lo, hi) if owner[x] is not None]
            assert [o for i, o in enumerate(got) if i == 0 or got[i - 1] != o] == \
                [o for i, o in enumerate(want) if i == 0 or want[i - 1] != o]
            owner[lo:hi] = [k] * (hi - lo)
            segs = [seg for blk in zip(paint.starts, paint.ends, paint.owners) for seg in zip(*blk)]
            assert paint.heads == [s[0] for s in paint.starts]
            assert all(s < e <= s2 for (s, e, _), (s2, _, _) in zip(segs, segs[1:] + [(width, 0, 0)]))
            assert [x for s, e, o in segs for x in range(s, e) if owner[x] == o] == \
                [x for x in range(width) if owner[x] is not None]


def test_painting_the_arena_from_the_top_down_is_linear():
    """The painting kept every segment in one list: a root painted below all the others moved them all, so
    roots painted from the arena's top down were quadratic (a million roots, each read once from one input
    and placed top-down: ``memplan verify`` ran 237 s; 400,000 paints alone 70 s). Blocks of segments: 1 s."""
    from test_hostile_api import no_hang

    from memplan.verify import _Painting

    paint, k = _Painting(), 400_000
    with no_hang(15):
        for i in range(k):
            assert paint.paint((k - i) * 256, (k - i) * 256 + 256, i) == []
    assert paint.paint(0, (k + 1) * 256, k)[:3] == [k - 1, k - 2, k - 3]


def _fan(k: int):
    b = memplan.GraphBuilder("fan")
    x = b.input("x", 256)
    for i in range(k):
        b.node(f"n{i}", "OP", [x], b.output(f"t{i}", 256))
    return b.build()


def test_cpsat_refuses_more_overlapping_pairs_than_it_can_hold(monkeypatch):
    """10,000 outputs of one input on two streams (50M overlapping buffer pairs, the heuristic plan not proven
    optimal: since round 48 the issue-order sweep bound, and since round 49 the cut bound, prove this fan's plan
    optimal, so the test takes those bounds away to keep a problem CP-SAT must model): ``--solver cpsat`` (and ``auto`` with a time limit, which runs it) built conflict lists and
    cliques of Python objects per pair, past 8 GB before any model (at 32,000 the process was killed for
    memory). CP-SAT now refuses past ``cpsat.MAX_PAIRS`` pairs as the search does past its own limit: a
    SolverError naming the count, and ``auto`` keeps its heuristic plan, noting why in the solver block."""
    from needs import need
    from test_hostile_api import no_hang

    from memplan.solvers.cpsat import MAX_PAIRS

    need("ortools")
    import memplan.lifetimes

    monkeypatch.setattr(memplan.lifetimes, "sweep_lower_bound", lambda *args, **kwargs: 0)
    monkeypatch.setattr(memplan.lifetimes, "cut_lower_bound", lambda *args, **kwargs: 0)   # (round 49's, as strong)
    g = _fan(10_000)
    with no_hang(30), pytest.raises(memplan.SolverError, match=r"cpsat: 10001 buffers with \d+ overlapping pairs, "
                                                               rf"over CP-SAT's limit of {MAX_PAIRS}.*use greedy or size"):
        memplan.plan(g, solver="cpsat", streams=2, time_limit=1)
    with no_hang(30):
        p = memplan.plan(g, solver="auto", streams=2, time_limit=1)
    assert "CP-SAT's limit" in p.solver["cpsat_error"] and p.arena_bytes == 256 * 10_001


def test_a_byte_count_with_a_fraction_or_exponent_is_read_exactly():
    """``--memory-budget 9007199254740993.0`` was read through a float: 2**53 + 1 came out 2**53, a budget
    one byte low (integers were already exact). A fraction or exponent is now a decimal, floored once;
    huge or tiny exponents stay cheap (no big integer built) and past 2**63 is refused as before."""
    import argparse

    from memplan.argtypes import size

    assert size("9007199254740993.0") == 2**53 + 1
    assert size("9007199254740993e0") == 2**53 + 1
    assert size("1.5M") == 3 << 19 and size("0.5K") == 512
    for text in ("0.99999999999999999999", "2.5", "1e-99999999"):   # (a float rounds the first up to 1.0)
        with pytest.raises(argparse.ArgumentTypeError, match="not a whole number of bytes"):   # (round 49: were
            size(text)                                                                     # rounded down)
    for text in ("1e999999999", "9.3e18", "1e19"):
        with pytest.raises(argparse.ArgumentTypeError, match="below 2\\*\\*63"):
            size(text)
