"""The verifier judged by independent checkers where the other fuzzers reach least (session 30).

Three judges that share no code with ``memplan.verify``: ``oracle.findings`` (the contract's rules by brute
force), ``byte_races.findings`` (every interleaving of the execution model at once, byte by byte, against the
serial run) and ``semantic.check`` (runs). They look at graphs rich in aliasing (``verify_fuzz30.alias_graphs``:
in-place chains and in-place through views, view ops, SET_ROWS, outputs that are views of inputs, COPY nodes,
zero-size tensors, fusion groups, alignments up to 4096) and at plans written by hand as another tool might
(``verify_fuzz30.hand_plan``: an issue order other than the listed one, streams declared and never used,
several waits on one node, redundant and duplicated events, a plan alignment apart from the graph's, offsets
shifted up to just below 2**63, several devices). Then explicit cases, one per class, that pin the verdicts.
"""

from __future__ import annotations

import copy
import json
import random

import byte_races
import pytest
import semantic
from conftest import expect_unsafe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings
from verify_fuzz30 import alias_graphs, hand_plan, on_devices, shifted

import memplan
from memplan import GraphBuilder, examples
from memplan.verify import check

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepted(graph: memplan.Graph, plan: dict, fused: bool = False) -> bool:
    return not check(graph, plan, fused_groups=fused)


# ---- properties ---------------------------------------------------------------------------------------------

@SETTINGS
@given(alias_graphs(), st.integers(0, 2**32), st.booleans(), st.sampled_from(["needed", "some", "random"]))
def test_hand_plans_verify_as_the_oracle_and_accepted_ones_never_race(gd, seed, fused, events):
    """verify accepts exactly what the oracle accepts; a plan it accepts computes the serial result in every
    interleaving (``byte_races``, for plans checked node by node) and its shift to just below 2**63 gets the
    same verdict."""
    g = memplan.graph_from_dict(gd)
    rnd = random.Random(seed)
    pd = hand_plan(gd, rnd, keep_groups=rnd.random() < 0.9, events=events)
    ok = accepted(g, pd, fused)
    assert ok == (findings(gd, pd, fused_groups=fused) == []), (check(g, pd, fused_groups=fused), pd)
    if ok:
        assert byte_races.findings(g, pd) == [] if not fused else semantic.check(g, pd, fused_groups=True) == []
    high = shifted(pd, gd["alignment"])
    if high is not None:
        assert accepted(g, high, fused) == ok


@SETTINGS
@given(alias_graphs(), st.integers(0, 2**32), st.integers(2, 3))
def test_multi_device_hand_plans_verify_as_the_oracle(gd, seed, devices):
    g = memplan.graph_from_dict(gd)
    rnd = random.Random(seed)
    pd = on_devices(gd, hand_plan(gd, rnd, events=rnd.choice(["needed", "random"])), rnd, devices)
    ok = accepted(g, pd)
    assert ok == (findings(gd, pd) == []), check(g, pd)
    if ok:
        assert byte_races.findings(g, pd) == []


def _permuted_streams(pd: dict, rnd: random.Random) -> dict:
    """The same schedule with its streams renamed into a larger declared range (some never used)."""
    q = copy.deepcopy(pd)
    declared = q["streams"] + rnd.randrange(3)
    names = rnd.sample(range(declared), q["streams"])
    for e in q["order"]:
        e["stream"] = names[e["stream"]]
    q["streams"] = declared
    return q


def _with_implied_events(pd: dict, rnd: random.Random) -> dict:
    """The same plan with events it already implies added (and two repeated), the lists shuffled."""
    q = copy.deepcopy(pd)
    order = [e["node"] for e in q["order"]]
    stream = {e["node"]: e["stream"] for e in q["order"]}
    pos = {n: i for i, n in enumerate(order)}
    reach: dict[str, set[str]] = {}
    edges = {(e["after"], e["before"]) for e in q["events"] if pos[e["after"]] < pos[e["before"]]}
    for i in reversed(range(len(order))):
        a = order[i]
        nxt = next((b for b in order[i + 1:] if stream[b] == stream[a]), None)
        succ = ({nxt} if nxt else set()) | {b for x, b in edges if x == a}
        reach[a] = set().union(*({b} | reach[b] for b in succ)) if succ else set()
    implied = sorted((a, b) for a in order for b in reach[a] if stream[a] != stream[b])
    q["events"] += [{"after": a, "before": b} for a, b in rnd.sample(implied, min(3, len(implied)))]
    q["events"] += q["events"][:2]
    rnd.shuffle(q["events"])
    rnd.shuffle(q["tensors"])
    return q


@SETTINGS
@given(alias_graphs(), st.integers(0, 2**32), st.booleans())
def test_verdicts_do_not_depend_on_stream_names_redundant_events_or_entry_order(gd, seed, fused):
    g = memplan.graph_from_dict(gd)
    rnd = random.Random(seed)
    pd = hand_plan(gd, rnd, events=rnd.choice(["needed", "some", "random"]))
    ok = accepted(g, pd, fused)
    assert accepted(g, _permuted_streams(pd, rnd), fused) == ok
    assert accepted(g, _with_implied_events(pd, rnd), fused) == ok


@st.composite
def plan_options(draw) -> dict:
    """A random option set of ``memplan.plan_graph`` (what ``test_oracle.OPTIONS`` lists, and mixes of them)."""
    o: dict = {"solver": draw(st.sampled_from(["auto", "greedy", "size", "search"]))}
    if o["solver"] == "search":
        o["time_limit"] = 0.02
    devices = draw(st.sampled_from([None, None, 2, 3]))
    if devices:
        o["devices"] = devices
    streams = draw(st.sampled_from([None, 2, 3, "auto"]))
    if streams is not None:
        o["streams"] = streams
        if draw(st.booleans()):
            o["max_events"] = draw(st.integers(0, 2))
        if not devices and draw(st.integers(0, 3)) == 0:
            o["memory_budget"] = draw(st.sampled_from([0, 4096, 1 << 40]))
    o["fused_groups"] = draw(st.booleans())
    return o


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alias_graphs(), plan_options())
def test_planned_alias_graphs_pass_every_judge(gd, opts):
    """Plans ``memplan.plan`` makes for aliasing graphs under mixed options: verified (plan() raises otherwise),
    accepted by the oracle, read back from their JSON and verified again, and race-free in every interleaving."""
    from strategies import fit_devices

    g = memplan.graph_from_dict(gd)
    opts = fit_devices(g, opts)
    try:
        planned = memplan.plan_graph(g, **opts)
    except memplan.BudgetError:
        return
    fused = opts["fused_groups"]
    pd = json.loads(planned.plan.to_json())
    assert findings(planned.graph.to_dict(), pd, fused_groups=fused) == []
    memplan.verify(memplan.graph_from_dict(planned.graph.to_dict()), pd, fused_groups=fused)
    assert byte_races.findings(planned.graph, pd) == []


def test_byte_races_can_fail():
    """The exhaustive checker finds the race of a plan missing one event, which a serial plan does not have."""
    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3).to_dict()
    assert byte_races.findings(g, p) == []
    for k in range(len(p["events"])):
        q = copy.deepcopy(p)
        del q["events"][k]
        assert byte_races.findings(g, q), q["events"]


@pytest.mark.parametrize("block", [1, 2, 3])
def test_arena_painting_across_blocks(monkeypatch, block):
    """The verifier's painting (who owns each byte last) split into tiny blocks, against a byte map: the
    block splits and splices are reached only by graphs of over a thousand roots otherwise."""
    from memplan.verify import _Painting

    monkeypatch.setattr(_Painting, "_BLOCK", block)
    for trial in range(300):
        rnd = random.Random(trial)
        painting, mem = _Painting(), {}
        for k in range(rnd.randint(1, 30)):
            lo = rnd.randrange(40)
            hi = rnd.randint(lo + 1, 40)
            got = painting.paint(lo, hi, k)
            want = []
            for x in range(lo, hi):
                if x in mem and (not want or want[-1] != mem[x]):
                    want.append(mem[x])
                mem[x] = k
            assert [o for i, o in enumerate(got) if i == 0 or got[i - 1] != o] == want, (trial, k)
            flat = [seg for s, e, o in zip(painting.starts, painting.ends, painting.owners) for seg in zip(s, e, o)]
            assert all(a[1] <= b[0] for a, b in zip(flat, flat[1:])) and painting.heads == [s[0] for s in painting.starts]
            assert {x: o for s, e, o in flat for x in range(s, e)} == mem


# ---- explicit cases, one per class -------------------------------------------------------------------------

def _doc(g: memplan.Graph, order: list[tuple[str, int]], events: list[tuple[str, str]], offsets: dict[str, int],
         streams: int | None = None, alignment: int | None = None) -> dict:
    """A plan document by hand: ``offsets`` for the arena roots (views follow their roots, weights null)."""
    tensors = []
    for ti, t in enumerate(g.tensors):
        r = g.root[ti]
        off = None if g.tensors[r].kind == "weight" else offsets[g.tensors[r].id] + g.root_offset[ti]
        tensors.append({"id": t.id, "offset": off, "size": t.size})
    arena = max([e["offset"] + e["size"] for e in tensors if e["offset"] is not None] + [0])
    return {"format": "memplan.plan/1", "graph": g.name, "alignment": alignment or g.alignment, "arena_bytes": arena,
            "lower_bound_bytes": 0, "streams": streams or 1 + max(s for _, s in order),
            "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events], "tensors": tensors, "solver": {}}


def _all_judges(g: memplan.Graph, doc: dict, safe: bool, fused: bool = False) -> None:
    assert accepted(g, doc, fused) is safe, check(g, doc, fused_groups=fused)
    assert (findings(g.to_dict(), doc, fused_groups=fused) == []) is safe
    if safe and not fused:
        assert byte_races.findings(g, doc) == []


def _inplace_chain() -> memplan.Graph:
    """``a`` -> ``b`` -> ``c`` each written in place over the last, ``c`` read through a view; ``r`` reads ``a``."""
    b = GraphBuilder("chain", alignment=256)
    b.input("x", 512)
    b.node("p", "OP", ["x"], b.intermediate("a", 512))
    b.node("r", "OP", ["a"], b.output("y", 256))
    b.node("q1", "OP", ["a"], b.intermediate("b", 512), inplace={"b": "a"})
    b.view("bv", "b", 512)
    b.node("q2", "OP", ["bv"], b.intermediate("c", 512), inplace={"c": "bv"})
    b.node("s", "OP", ["c"], b.output("z", 512))
    return b.build()


def test_inplace_chain_across_streams():
    """An in-place chain sharing one slot, its first link on another stream than a reader of its input: safe
    while that reader is waited for, unsafe (rule 3, and a race) without the wait."""
    g = _inplace_chain()
    order = [("p", 0), ("r", 1), ("q1", 0), ("q2", 0), ("s", 0)]
    offs = {"x": 0, "a": 512, "b": 512, "c": 512, "y": 1024, "z": 1280}
    _all_judges(g, _doc(g, order, [("p", "r"), ("r", "q1")], offs), True)
    bad = _doc(g, order, [("p", "r")], offs)
    _all_judges(g, bad, False)
    expect_unsafe(g, bad, 3, "a", "b")
    assert byte_races.findings(g, bad)


def test_output_view_of_an_input_keeps_the_input_to_the_end():
    """A graph output that is a view of a graph input keeps the input's bytes to the end: ``y`` may not take
    them after ``n``, the input's last reader, as it may when the view is an intermediate (and ``t`` over
    ``x`` while ``n`` reads ``x`` is unsafe either way)."""
    def graph(kind: str) -> memplan.Graph:
        b = GraphBuilder("alias_io", alignment=256)
        b.input("x", 512)
        b.view("xo", "x", 256, 256, kind=kind)
        b.node("n", "OP", ["x"], b.intermediate("t", 512))
        b.node("m", "OP", ["t"], b.output("y", 256))
        return b.build()

    offs = {"x": 0, "t": 0, "y": 512}   # t over x once n has read it
    g = graph("output")
    doc = _doc(g, [("n", 0), ("m", 0)], [], offs)
    expect_unsafe(g, doc, 3, "x", "t")
    _all_judges(g, doc, False)
    _all_judges(graph("intermediate"), doc, False)   # n reads x while writing t over it: unsafe either way
    offs = {"x": 0, "t": 512, "y": 0}   # y over x after n, the last reader
    _all_judges(graph("intermediate"), _doc(graph("intermediate"), [("n", 0), ("m", 0)], [], offs), True)
    _all_judges(g, _doc(g, [("n", 0), ("m", 0)], [], offs), False)


def _fused() -> memplan.Graph:
    b = GraphBuilder("fused", alignment=256)
    b.input("x", 256)
    b.node("g0", "OP", ["x"], b.intermediate("t", 256), group="g")
    b.node("g1", "OP", ["t"], b.intermediate("u", 256), group="g")
    b.node("h", "FILL", [], b.intermediate("v", 256))
    b.node("k", "OP", ["u", "v"], b.output("y", 256))
    return b.build()


def test_fusion_group_with_a_wait_on_its_first_member():
    """``h`` on another stream writes ``v`` over ``x`` after waiting on the group's first member, the last to
    read ``x``: safe node by node, and safe when the group runs as one kernel too (round 49: that kernel records
    the first member's event after it, as ``runtime.step`` issues it, so ``h`` waits for the whole group; it was
    refused), and when ``h`` waits on the group's last member."""
    g = _fused()
    order = [("g0", 0), ("g1", 0), ("h", 1), ("k", 0)]
    offs = {"x": 0, "t": 256, "u": 512, "v": 0, "y": 768}
    doc = _doc(g, order, [("g0", "h"), ("h", "k")], offs)
    _all_judges(g, doc, True)
    assert accepted(g, doc, True) and semantic.check(g, doc, fused_groups=True) == []
    _all_judges(g, _doc(g, order, [("g1", "h"), ("h", "k")], offs), True, fused=True)
    assert semantic.check(g, _doc(g, order, [("g1", "h"), ("h", "k")], offs), fused_groups=True) == []


def test_copy_node_crosses_devices_and_only_it():
    """Two devices: a COPY node reads device 0's tensor and writes device 1's; the same node as another op is
    refused (rule 4), and both devices may use the same offsets."""
    def graph(op: str) -> memplan.Graph:
        b = GraphBuilder("devs", alignment=256)
        b.input("x", 256)
        b.node("a", "OP", ["x"], b.intermediate("t", 256))
        b.node("c", op, ["t"], b.intermediate("t1", 256))
        b.node("d", "OP", ["t1"], b.output("y", 256))
        return b.build()

    def doc(g: memplan.Graph) -> dict:
        d = _doc(g, [("a", 0), ("c", 0), ("d", 1)], [("c", "d")], {"x": 0, "t": 256, "t1": 0, "y": 256})
        d["devices"], d["device_arena_bytes"] = 2, [512, 512]
        dev = {"a": 0, "c": 0, "d": 1, "x": 0, "t": 0, "t1": 1, "y": 1}
        for e in d["order"]:
            e["device"] = dev[e["node"]]
        for e in d["tensors"]:
            e["device"] = dev[e["id"]]
        return d

    _all_judges(graph("COPY"), doc(graph("COPY")), True)
    expect_unsafe(graph("OP"), doc(graph("OP")), 4, "c", "t1")
    _all_judges(graph("OP"), doc(graph("OP")), False)


def test_several_waits_on_one_node_each_needed():
    """``j`` joins three streams through three events; each one left out is a rule 2 finding (and a race)."""
    b = GraphBuilder("join", alignment=256)
    b.input("x", 256)
    for k in range(3):
        b.node(f"p{k}", "OP", ["x"], b.intermediate(f"t{k}", 256))
    b.node("j", "OP", ["t0", "t1", "t2"], b.output("y", 256))
    g = b.build()
    order = [("p0", 0), ("p1", 1), ("p2", 2), ("j", 3)]
    offs = {"x": 0, "t0": 256, "t1": 512, "t2": 768, "y": 0}   # y over x: every reader of x is waited for
    events = [("p0", "j"), ("p1", "j"), ("p2", "j")]
    _all_judges(g, _doc(g, order, events + [("p0", "j")], offs, streams=6), True)
    for k in range(3):
        bad = _doc(g, order, events[:k] + events[k + 1:], offs)
        expect_unsafe(g, bad, 2, "j", f"t{k}", f"p{k}")
        _all_judges(g, bad, False)


def test_zero_size_tensors_overlap_nothing_but_are_aligned():
    """A zero-size root may sit on any live bytes, but its offset is a root offset: a multiple of the alignment
    and inside the arena."""
    b = GraphBuilder("zeros", alignment=256)
    b.input("x", 256)
    b.node("n", "OP", ["x"], [b.intermediate("e", 0), b.intermediate("t", 256)])
    b.node("m", "OP", ["e", "t", "x"], b.output("y", 256))
    g = b.build()
    order = [("n", 0), ("m", 0)]
    _all_judges(g, _doc(g, order, [], {"x": 0, "e": 0, "t": 256, "y": 512}), True)
    _all_judges(g, _doc(g, order, [], {"x": 0, "e": 768, "t": 256, "y": 512}), True)   # at the arena's end
    bad = _doc(g, order, [], {"x": 0, "e": 100, "t": 256, "y": 512})
    expect_unsafe(g, bad, 4, "e")
    bad = _doc(g, order, [], {"x": 0, "e": 1024, "t": 256, "y": 512})
    bad["arena_bytes"] = 768
    expect_unsafe(g, bad, 4, "e")


def test_offsets_just_below_two_to_the_63():
    """A plan whose arena ends at 2**63 - 1 is judged as the same plan at offset 0; one byte more is no plan."""
    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3).to_dict()
    high = shifted(p, g.alignment)
    assert high["arena_bytes"] > 1 << 62
    memplan.verify(g, high)
    assert byte_races.findings(g, high) == []
    dropped = copy.deepcopy(high)
    del dropped["events"][0]
    assert not accepted(g, dropped)
    over = copy.deepcopy(high)
    over["arena_bytes"] = 1 << 63
    with pytest.raises(memplan.PlanFormatError, match="arena_bytes"):
        memplan.verify(g, over)


def test_issue_order_other_than_the_listed_one_and_unused_streams():
    """The listed order is one topological order; a plan may issue another (the three projections last to
    first), on streams 7, 3 and 5 of 8 (the others never used)."""
    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3).to_dict()
    assert [e["node"] for e in p["order"]] == ["norm", "mm_q", "mm_k", "mm_v", "attn", "mm_o"]
    stream = {e["node"]: {0: 7, 1: 3, 2: 5}[e["stream"]] for e in p["order"]}
    q = copy.deepcopy(p)
    q["order"] = [{"node": n, "stream": stream[n]} for n in ["norm", "mm_v", "mm_k", "mm_q", "attn", "mm_o"]]
    q["streams"] = 8
    _all_judges(g, q, True)
    q["order"][1], q["order"][0] = q["order"][0], q["order"][1]   # mm_v before norm: not topological
    expect_unsafe(g, q, 1, "mm_v", "norm")


def test_json_forms_that_mean_the_same_plan(tmp_path):
    """A plan file with its keys in another order, ids spelt with escapes, unknown fields in entries and at the
    top, ``-0`` for an offset, ``devices: 1`` with a device per entry, and CRLF whitespace is the same plan."""
    g = examples.bundled()["qkv"]
    p = json.loads(memplan.plan(g, streams=3).to_json())
    doc = {k: p[k] for k in reversed(list(p))}
    doc["order"] = [{"device": 0, "stream": e["stream"], "node": e["node"], "note": "x"} for e in p["order"]]
    doc["events"] = [dict(e, id=i) for i, e in enumerate(p["events"])]
    doc["devices"], doc["tool"] = 1, {"name": "other"}
    text = json.dumps(doc).replace('"node": "norm"', '"node": "\\u006eorm"').replace(", ", ",\r\n")
    text = text.replace('"offset": 0,', '"offset": -0,', 1)
    path = tmp_path / "plan.json"
    path.write_text(text)
    loaded = memplan.load_plan(str(path))
    assert loaded.order == memplan.plan_from_dict(p).order
    memplan.verify(g, loaded)
