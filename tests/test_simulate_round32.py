"""``memplan.simulate`` against an independent oracle of the CUDA stream model.

The oracle below is the model's *definition*, not the library's loop: a node starts at the latest of
0, the end of the node before it on its stream (issue order), and ``end(a) + event_us`` for every event
``a -> node``; it ends ``cost`` later. It is evaluated by memoised recursion over those constraints, in
no particular order, so it shares nothing with ``memplan.optimize.timeline`` but the arithmetic (one
``max`` and one ``+`` per constraint, which is exact to compare). Random DAGs, random topological issue
orders, 1..64 streams (sparse ids up to 1023), random event sets (needed, redundant, repeated), and costs
given as ints, floats, zeros and values up to ``MAX_COST_US`` (in the graph or from a user cost model).
"""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

import memplan
from memplan import Graph, Schedule, simulate
from memplan.examples import LLAMA_TINY, llama
from memplan.optimize import CostModel, node_costs
from memplan.schedule import Event

MAX_COST = 1e15   # the documented cap of a node's cost (docs/format.md, graph.MAX_COST_US)

COSTS = st.one_of(
    st.just(0), st.just(0.0), st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False),
    st.sampled_from([0.1, 0.2, 0.3, 1e-300, 5e-324, 1e15, 10**15, 999_999_999_999_999, 1e15 - 1]),
)


def oracle(order: list[str], stream_of: dict[str, int], events: list[tuple[str, str]],
           cost: dict[str, float], event_us: float) -> tuple[dict[str, float], dict[str, float]]:
    """(start, end) per node by the model's definition, evaluated recursively (independent of issue order
    once the per-stream predecessor is known)."""
    prev: dict[str, str | None] = {}
    last: dict[int, str] = {}
    for v in order:
        prev[v] = last.get(stream_of[v])
        last[stream_of[v]] = v
    waits: dict[str, list[str]] = {v: [] for v in order}
    for a, b in events:
        waits[b].append(a)
    start: dict[str, float] = {}
    end: dict[str, float] = {}

    def finish(v: str) -> float:
        if v not in end:
            t = 0.0
            if prev[v] is not None:
                t = max(t, finish(prev[v]))
            for a in waits[v]:
                t = max(t, finish(a) + event_us)
            start[v] = t
            end[v] = t + float(cost[v])
        return end[v]

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(order) + 1000))
    try:
        for v in reversed(order):   # the last first: the recursion reaches everything before it
            finish(v)
    finally:
        sys.setrecursionlimit(limit)
    return start, end


def with_costs(graph: Graph, costs: list) -> Graph:
    """``graph`` with node ``k``'s cost set to ``costs[k]`` (an int or a float, as a user writes it)."""
    nodes = tuple(replace(n, cost=c) for n, c in zip(graph.nodes, costs, strict=True))
    return Graph(graph.name, graph.tensors, nodes, graph.alignment)


@st.composite
def scenarios(draw, max_streams: int = 64):
    g = draw(graphs(max_nodes=14))
    g = with_costs(g, draw(st.lists(COSTS, min_size=len(g.nodes), max_size=len(g.nodes))))
    order, stream_of = draw(schedules(g, max_streams=draw(st.sampled_from([1, 2, 3, max_streams]))))
    # sparse stream ids: the model knows streams by id, not by a count
    ids = draw(st.permutations(range(1024)).map(lambda p: p[:64]))
    stream_of = {v: ids[s] for v, s in stream_of.items()}
    pos = {v: i for i, v in enumerate(order)}
    pairs = [(a, b) for a in order for b in order if pos[a] < pos[b] and stream_of[a] != stream_of[b]]
    events = draw(st.lists(st.sampled_from(pairs), max_size=12)) if pairs else []
    if draw(st.booleans()):   # plus every data dependency's event: the needed ones, most of them redundant
        producer = {o: n.id for n in g.nodes for o in n.outputs}
        parent = {t.id: t.view_of for t in g.tensors}
        for n in g.nodes:
            for t in n.inputs:
                while t is not None:
                    p = producer.get(t)
                    if p is not None and p != n.id and stream_of[p] != stream_of[n.id]:
                        events.append((p, n.id))
                    t = parent[t]
    event_us = draw(st.sampled_from([0.0, 2.0, 0.5, 1e15, 3]))
    return g, order, stream_of, events, event_us


def _check(g: Graph, order, stream_of, events, event_us, model) -> None:
    sched = Schedule(tuple(order), tuple(stream_of[v] for v in order), tuple(Event(a, b) for a, b in events))
    sim = simulate(g, sched, model)
    cost = {n.id: n.cost for n in g.nodes}
    start, end = oracle(order, stream_of, events, cost, float(event_us))
    assert sim.start_us == start
    assert sim.end_us == end
    assert sim.makespan_us == max(end.values(), default=0.0)
    serial = 0.0
    for v in order:   # one stream runs them in issue order
        serial += float(cost[v])
    assert sim.serial_us == serial == pytest.approx(sum(float(c) for c in cost.values()), rel=1e-12)
    assert sim.stream_of == stream_of
    assert sim.num_events == len(set(events))
    assert sim.event_us == float(event_us)
    if not events or len(set(stream_of.values())) == 1:
        assert sim.makespan_us <= sim.serial_us   # (exact: without events no node waits past its stream)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(s=scenarios())
def test_simulate_agrees_with_the_oracle_on_random_schedules(s):
    g, order, stream_of, events, event_us = s
    _check(g, order, stream_of, events, event_us, CostModel(event_us=event_us))


class TableModel:
    """A user cost model: a table of run times (ints, floats) by node id, ignoring the graph's costs."""

    def __init__(self, table: dict, event_us):
        self.table, self.event_us = table, event_us

    def node_us(self, graph: Graph, n: int):
        return self.table[graph.nodes[n].id]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(s=scenarios(), data=st.data())
def test_simulate_agrees_with_the_oracle_under_a_user_cost_model(s, data):
    g, order, stream_of, events, event_us = s
    table = {n.id: data.draw(COSTS) for n in g.nodes}
    model = TableModel(table, event_us)
    g_tab = with_costs(g, [table[n.id] for n in g.nodes])   # the oracle reads the table through the graph
    _check(g_tab, order, stream_of, events, event_us, model)
    assert simulate(g, Schedule(tuple(order), tuple(stream_of[v] for v in order),
                                tuple(Event(a, b) for a, b in events)), model).end_us == \
        simulate(g_tab, Schedule(tuple(order), tuple(stream_of[v] for v in order),
                                 tuple(Event(a, b) for a, b in events)), model).end_us


def test_a_serial_schedule_in_another_order_has_a_speedup_of_exactly_one():
    """Three independent nodes of 0.1, 0.2 and 0.3 us issued in reverse on one stream: the stream runs them in
    0.3 + 0.2 + 0.1 = 0.6 us. Before, the serial time was summed in the listed order, 0.6000000000000001 us,
    and a serial plan reported a speedup of 1.0000000000000002 (or below 1.0 for other costs)."""
    b = memplan.GraphBuilder("three", alignment=1)
    for i, c in enumerate([0.1, 0.2, 0.3]):
        b.input(f"x{i}", 8)
        b.node(f"n{i}", "OP", [f"x{i}"], b.output(f"y{i}", 8), cost=c)
    g = b.build()
    sim = simulate(g, Schedule(("n2", "n1", "n0"), (0, 0, 0)))
    assert sim.makespan_us == sim.serial_us == 0.6
    assert sim.speedup == 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=14), data=st.data())
def test_one_stream_without_events_runs_in_the_serial_time(g, data):
    """One stream, any issue order: every node starts when the one before it ends, and the makespan is the
    serial makespan, so the speedup is exactly 1.0 ("1.0 for a serial plan")."""
    g = with_costs(g, data.draw(st.lists(COSTS, min_size=len(g.nodes), max_size=len(g.nodes))))
    order, _ = data.draw(schedules(g, max_streams=1))
    stream = data.draw(st.integers(0, 1023))
    sim = simulate(g, Schedule(tuple(order), (stream,) * len(order)), CostModel())
    t = 0.0
    for v in order:
        assert sim.start_us[v] == t
        t += float(g.node(v).cost)
    assert sim.makespan_us == t
    assert sim.makespan_us == sim.serial_us
    assert sim.speedup == 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=10), streams=st.sampled_from([1, 2, 3, "auto"]),
       devices=st.integers(1, 3))
def test_simulating_plans_agrees_with_the_oracle(g, streams, devices):
    """Plans from ``plan()`` (one device, or a split with COPY nodes): the oracle on the plan's own order,
    streams and events, with the event latency the plan records."""
    from strategies import fit_devices

    opts = fit_devices(g, {"devices": devices, "streams": streams})
    if opts["devices"] > 1:
        split, p = memplan.plan_devices(g, opts["devices"], streams=streams)
        graph = split.graph
    else:
        graph, p = g, memplan.plan(g, streams=streams)
    order = [n for n, _ in p.order]
    stream_of = dict(p.order)
    sim = simulate(graph, p)
    cost = dict(zip([n.id for n in graph.nodes], node_costs(graph, CostModel()), strict=True))   # the model's input
    event_us = p.solver.get("schedule", p.solver.get("split", {})).get("event_us", 2.0)
    start, end = oracle(order, stream_of, list(p.events), cost, float(event_us))
    assert sim.start_us == start and sim.end_us == end


def _graph_with_its_own_copy() -> Graph:
    """A chain whose second node is the graph's own ``COPY`` (a same-device memcpy, 7 us), split anywhere."""
    b = memplan.GraphBuilder("owncopy", alignment=1)
    b.input("x", 1000)
    b.weight("w", 100)
    b.node("a", "ADD", ["x", "w"], b.intermediate("y", 1000), cost=10)
    b.node("c", "COPY", ["y"], b.intermediate("z", 1000), cost=7)
    b.node("d", "ADD", ["z", "w"], b.intermediate("u", 1000), cost=10)
    b.node("e", "ADD", ["u"], b.output("o", 1000), cost=10)
    return b.build()


@pytest.mark.parametrize("devices", [2, 3, 4])
def test_a_split_plans_serial_time_keeps_the_graphs_own_copy(devices):
    """The serial time of a split plan leaves out the split's transfers only: the graph's own COPY node runs in
    the one-device serial run too. Before, every COPY was left out: 30 us against the plan's own 37 us."""
    g = _graph_with_its_own_copy()
    planned = memplan.plan_graph(g, devices=devices)
    sim = simulate(planned.graph, planned.plan)
    assert sim.serial_us == planned.plan.solver["split"]["serial_makespan_us"] == 37.0
    assert sim.serial_us == simulate(g, memplan.plan(g)).serial_us


def test_a_split_of_a_split_graph_counts_the_earlier_copies_as_work():
    """A split graph split again: the earlier split's copies now run within one device (part of the serial run)."""
    g = llama(LLAMA_TINY)
    first = memplan.plan_graph(g, devices=2).graph
    again = memplan.plan_graph(first, devices=3)
    sim = simulate(again.graph, again.plan)
    assert sim.serial_us == pytest.approx(again.plan.solver["split"]["serial_makespan_us"], abs=1e-3)
    assert sim.serial_us == pytest.approx(simulate(first, memplan.plan(first)).serial_us, abs=1e-9)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=14), data=st.data())
def test_every_candidate_the_optimizer_scores_has_the_oracles_makespan(g, data):
    """graph_optimize scores its candidates with its own replay of the model (the events and the makespan in
    one pass); every score must be the oracle's makespan of the candidate's schedule, bit for bit, or the
    optimizer ranks schedules by times they do not take."""
    from memplan.optimize.streams import optimize

    g = with_costs(g, data.draw(st.lists(COSTS, min_size=len(g.nodes), max_size=len(g.nodes))))
    event_us = data.draw(st.sampled_from([0.0, 2.0, 0.3, 1e15]))
    k = data.draw(st.sampled_from([1, 2, 3, 8, 64]))
    opt = optimize(g, k, cost_model=CostModel(event_us=event_us))
    cost = {n.id: n.cost for n in g.nodes}
    from memplan.optimize.budget import candidate_pool

    max_events = data.draw(st.sampled_from([None, 0, 1, 3]))
    for cand in list(opt.pool) + candidate_pool(g, opt, max_events):   # (fork give-backs, events capped)
        s = cand.schedule
        _, end = oracle(list(s.order), dict(zip(s.order, s.streams)), [(e.after, e.before) for e in s.events],
                        cost, event_us)
        assert cand.makespan_us == max(end.values(), default=0.0), cand.name
    # ranked by the makespan to the picosecond, then fewer events and streams
    assert round(opt.makespan_us, 6) == min(round(c.makespan_us, 6) for c in opt.pool)
