"""Long chains of views that nodes produce: planning and verifying them is linear, and a hazard planted
deep inside one is still found.

A node reading a view depends on every writer along the view's chain (contract rule 2): on an ONNX
Reshape/Identity chain imported as views (each view produced by its own node, which reads its parent)
or a chain of SET_ROWS writes into nested views, listing those writers for each read took k^2 / 2 steps
for k views each read (a 10k-node chain: 14 s to plan, 9 s to verify). The planner and the verifier now
fold each view's writers once, from the view above it (``Graph.fold_writers``; the verifier's own
``_ChainFold``), and ``graph_optimize`` gives each written view one node of its unit graph.

Performance is measured by benchmarks, not timed here: the tests count the work (reads of the graph's
tensor table, which every walk up a view chain makes at each step) and check that doubling the chain
doubles it. The verifier still checks every writer: the hazard tests plant a missing event, a far writer
on another stream, an order swap and an overlap in the middle or at the end of long chains.
"""

from __future__ import annotations

import copy

import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import schedules, view_chains

import memplan
from memplan import Event, GraphBuilder, Schedule
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.streams import Units, build_units, list_schedule, unit_succs
from memplan.schedule import _walk_clocks, data_dependencies
from memplan.verify import check

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chain(n: int, *, set_rows: bool = False, every: int = 4) -> memplan.Graph:
    """x -> p -> r, then k views of views of r: ``n{i}`` produces ``v{i}``, a view of ``v{i-1}`` (r for the
    first), reading it (a view op) or, with ``set_rows``, reading only x; a reader ``c{i}`` of every
    ``every``-th view, and ``c`` of the last."""
    b = GraphBuilder("setrows" if set_rows else "viewops")
    b.input("x", 256)
    b.node("p", "UNARY", ["x"], b.intermediate("r", 1 << 16))
    prev = "r"
    for i in range(n):
        v = b.view(f"v{i}", prev, 1 << 16)
        b.node(f"n{i}", "SET_ROWS" if set_rows else "RESHAPE", ["x"] if set_rows else [prev], v)
        if every and i % every == 0:
            b.node(f"c{i}", "UNARY", [v], b.output(f"y{i}", 256))
        prev = v
    b.node("c", "UNARY", [prev], b.output("y", 256))
    return b.build()


def ids(g):
    return [nd.id for nd in g.nodes]


def alternating(g):
    """Every other node on stream 1, with the events its data needs."""
    return memplan.schedule_with_events(g, ids(g), {nid: k % 2 for k, nid in enumerate(ids(g))})


# --- linear work ---------------------------------------------------------------------------------------

class CountingTuple(tuple):
    """A graph's tensor table that counts its reads: each step up a view chain reads it."""

    reads = 0

    def __getitem__(self, i):
        CountingTuple.reads += 1
        return tuple.__getitem__(self, i)


def tensor_reads(g: memplan.Graph, mode: str) -> int:
    object.__setattr__(g, "tensors", CountingTuple(g.tensors))
    plan = memplan.plan(g, check=False) if mode == "verify" else None
    CountingTuple.reads = 0
    if mode == "verify":
        memplan.verify(g, plan)
    elif mode == "plan":
        memplan.plan(g, check=False)
    elif mode == "streams":
        memplan.plan(g, alternating(g), check=False)
    else:
        memplan.plan(g, streams="auto", check=False)
    return CountingTuple.reads


@pytest.mark.parametrize("set_rows", [False, True], ids=["view-ops", "set-rows"])
@pytest.mark.parametrize("mode", ["plan", "verify", "streams", "auto"])
def test_work_doubles_with_the_chain(set_rows, mode):
    # planning, verifying, synchronising two streams and graph_optimize each walked every read's chain
    # (reads of the tensor table went up 4x per doubling: 1000 -> 2000 view ops, 2.5M -> 5.0M to verify)
    n = 250 if mode == "auto" else 1000
    small, big = (tensor_reads(chain(k, set_rows=set_rows), mode) for k in (n, 2 * n))
    assert big <= 2.2 * small, (small, big)


# --- long chains plan and verify -----------------------------------------------------------------------

def test_bench_scale_chain_is_a_chain_of_view_ops():
    from memplan.benchmarks.scale import chain_graph

    g = chain_graph(9)
    v8 = g.tensor_index["v8"]
    assert [g.nodes[w].id for w in g.writers(v8)] == [f"n{i}" for i in range(8, -1, -1)] + ["p"]
    assert [n.id for n in g.nodes if n.op == "UNARY"] == ["p", "c0", "c4", "c8", "c"]
    memplan.plan(g, streams="auto")  # verified


def test_5000_view_ops_plan_and_verify_on_one_and_two_streams():
    n = 5000
    g = chain(n, every=0)
    p = memplan.plan(g)  # verified
    offs = p.offsets()
    assert {offs[f"v{i}"] for i in range(n)} == {offs["r"]}
    two = memplan.plan(g, alternating(g))
    # each view op reads its parent, written on the other stream: one event each, and none more, though
    # every node depends on the whole chain above it
    assert two.events == (("p", "n0"), *((f"n{i - 1}", f"n{i}") for i in range(1, n)), (f"n{n - 1}", "c"))
    memplan.verify(g, two)


def test_set_rows_chain_waits_for_a_far_writer_on_another_stream():
    # SET_ROWS writers do not read their parent: c depends on every n{i} itself; with n100 alone on
    # stream 1, the one event it needs is n100 -> c (the others are on c's stream)
    n = 3000
    g = chain(n, set_rows=True, every=0)
    stream_of = {nid: 0 for nid in ids(g)} | {"n100": 1}
    s = memplan.schedule_with_events(g, ids(g), stream_of)
    assert s.events == (Event("n100", "c"),)
    memplan.verify(g, memplan.plan(g, s))


def test_a_chain_issued_before_its_root_is_refused():
    g = chain(3000)
    order = [i for i in ids(g) if i != "p"] + ["p"]
    with pytest.raises(memplan.ScheduleError, match="node 'n0' is issued before 'p', whose result it reads"):
        memplan.plan(g, Schedule(tuple(order), (0,) * len(order)))
    g = chain(3000, set_rows=True, every=0)
    order = [i for i in ids(g) if i != "n7"] + ["n7"]  # a far writer of c's view, issued after c
    with pytest.raises(memplan.ScheduleError, match="node 'c' is issued before 'n7', whose result it reads"):
        memplan.plan(g, Schedule(tuple(order), (0,) * len(order)))


# --- hazards deep inside long chains: the verifier still finds them --------------------------------------

def doc_of(g, schedule=None):
    return copy.deepcopy(memplan.plan(g, schedule).to_dict())


def test_missing_event_in_the_middle_of_a_two_stream_chain():
    n, mid = 3000, 1500
    g = chain(n, every=0)
    doc = doc_of(g, alternating(g))
    doc["events"] = [e for e in doc["events"] if e != {"after": f"n{mid - 1}", "before": f"n{mid}"}]
    # only the nearest writer is missed: n{mid-2} runs on n{mid}'s stream, and the farther ones reach it
    # through their own events
    assert check(g, doc) == [(2, f"node 'n{mid}' reads 'v{mid - 1}' but its writer 'n{mid - 1}' does not "
                                 "happen-before it (missing event?)")]


def test_event_from_the_wrong_writer_at_the_end_of_a_chain():
    n = 3000
    g = chain(n, every=0)
    stream_of = {nid: 0 for nid in ids(g)} | {"c": 1}
    doc = doc_of(g, memplan.schedule_with_events(g, ids(g), stream_of))
    assert doc["events"] == [{"after": f"n{n - 1}", "before": "c"}]
    doc["events"] = [{"after": f"n{n - 2}", "before": "c"}]  # one writer short: every other one is seen
    assert check(g, doc) == [(2, f"node 'c' reads 'v{n - 1}' but its writer 'n{n - 1}' does not "
                                 "happen-before it (missing event?)")]


def test_far_writer_on_another_stream_without_an_event():
    # the nearest writers of c's view happen-before c; one 2900 views up does not: a check that kept
    # only the nearest writer would pass this plan
    n = 3000
    g = chain(n, set_rows=True, every=0)
    doc = doc_of(g)
    for e in doc["order"]:
        if e["node"] == "n100":
            e["stream"] = 1
    doc["streams"] = 2
    assert check(g, doc) == [
        (2, f"node 'c' reads 'v{n - 1}' but its writer 'n100' does not happen-before it (missing event?)"),
        # n100 also reads x, whose bytes c's output y reuses
        (3, "tensors 'x' and 'y' overlap in the arena but not every access of one happens-before every access "
            "of the other: node 'n100', which accesses 'x', does not happen-before node 'c', which accesses 'y'"),
    ]


def test_swapped_view_ops_in_the_middle_of_a_chain():
    n, mid = 3000, 1500
    g = chain(n, every=0)
    doc = doc_of(g)
    order = doc["order"]
    k = next(i for i, e in enumerate(order) if e["node"] == f"n{mid}")
    order[k], order[k + 1] = order[k + 1], order[k]
    assert check(g, doc) == [
        (1, f"node 'n{mid + 1}' is issued before 'n{mid}', which writes 'v{mid}' that it reads"),
        (2, f"node 'n{mid + 1}' reads 'v{mid}' but its writer 'n{mid}' does not happen-before it (missing event?)"),
    ]


def test_overlap_with_a_tensor_live_across_the_middle_of_a_chain():
    # s is made from the middle view and read at the end: live while the chain still reads r's bytes
    n, mid = 3000, 1500
    b = GraphBuilder("side")
    b.input("x", 256)
    b.node("p", "UNARY", ["x"], b.intermediate("r", 4096))
    prev = "r"
    for i in range(n):
        v = b.view(f"v{i}", prev, 4096)
        b.node(f"n{i}", "RESHAPE", [prev], v)
        if i == mid:
            b.node("side", "UNARY", [v], b.intermediate("s", 1024))
        prev = v
    b.node("c", "ADD", [prev, "s"], b.output("y", 1024))
    g = b.build()
    doc = doc_of(g)
    offs = {t["id"]: t["offset"] for t in doc["tensors"]}
    assert offs["s"] + 1024 <= offs["r"] or offs["r"] + 4096 <= offs["s"]
    for t in doc["tensors"]:
        if t["id"] == "s":
            t["offset"] = offs["r"]
    found = check(g, doc)
    assert found == [(3, "tensors 'r' and 's' overlap in the arena but not every access of one happens-before "
                          "every access of the other: node 'c', which accesses 'r', does not happen-before node "
                          "'side', which accesses 's'")]


# --- properties: random graphs of produced views ----------------------------------------------------------

def events_trying_all(g, order, stream_of):
    """``schedule_with_events`` as it was: every dependency of each node tried, latest first."""
    node_pos = {g.node_index[nid]: p for p, nid in enumerate(order)}
    streams = tuple(stream_of[nid] for nid in order)
    events = []

    def needed(n, s, cur, stream, seq):
        for d in sorted(set(data_dependencies(g, n)), key=lambda d: -node_pos[d]):
            if stream[d] != s and cur[stream[d]] <= seq[d]:
                events.append(Event(g.nodes[d].id, g.nodes[n].id))
                yield d

    _walk_clocks(g, tuple(order), streams, max(streams, default=0) + 1, needed)
    return tuple(events)


def units_listing_all(g, cost):
    """``build_units`` as it was: each unit depends on every writer along what it reads."""
    members = g.units()
    unit_of = [0] * len(g.nodes)
    for u, ms in enumerate(members):
        for m in ms:
            unit_of[m] = u
    deps = []
    succs = [[] for _ in members]
    for u, ms in enumerate(members):
        found = {unit_of[d] for m in ms for d in data_dependencies(g, m)} - {u}
        deps.append(tuple(sorted(found)))
        for d in deps[-1]:
            succs[d].append(u)
    ucost = [float(sum(cost[m] for m in ms)) for ms in members]
    rank = [0.0] * len(members)
    for u in range(len(members) - 1, -1, -1):
        rank[u] = ucost[u] + max(map(rank.__getitem__, succs[u]), default=0.0)
    return Units(tuple(map(tuple, members)), tuple(unit_of), tuple(deps), tuple(map(tuple, succs)),
                 tuple(ucost), tuple(rank))


@SETTINGS
@given(st.data())
def test_events_are_those_trying_every_writer_gives(data):
    g = data.draw(view_chains(), label="graph")
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    s = memplan.schedule_with_events(g, order, stream_of)
    assert s.events == events_trying_all(g, order, stream_of)
    p = memplan.plan(g, s)
    assert ref.check_plan(g, p.to_dict()) == set()


@SETTINGS
@given(st.data())
def test_unit_graph_schedules_as_if_every_writer_were_listed(data):
    g = data.draw(view_chains(), label="graph")
    cost = node_costs(g, CostModel())
    U, old = build_units(g, cost), units_listing_all(g, cost)
    n = len(U.members)
    assert U.rank[:n] == old.rank
    assert unit_succs(U, 10 ** 9) == [list(x) for x in old.succs]  # the chain cover's edges
    for k in (2, 3):
        event_us = data.draw(st.sampled_from([0.0, 2.0]), label="event_us")
        for kw in ({}, {"mode": "est"}, {"listed": True}):
            assert list_schedule(U, k, event_us, **kw) == list_schedule(old, k, event_us, **kw)


@SETTINGS
@given(st.data())
def test_verifier_agrees_with_brute_force_on_chains_missing_an_event(data):
    g = data.draw(view_chains(), label="graph")
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    doc = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of)).to_dict()
    if doc["events"]:
        doc["events"].pop(data.draw(st.integers(0, len(doc["events"]) - 1), label="dropped"))
    assert bool(check(g, doc)) == bool(ref.check_plan(g, doc))
