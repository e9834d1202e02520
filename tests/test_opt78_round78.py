"""Round 78 (opt78): ``graph_optimize`` / ``memplan/optimize`` on large and hostile DAGs.

Why: each test pins a defect found by comparing the optimizer with brute force or by counting its work on large
graphs; work is counted (operation counts), never timed.
"""

from __future__ import annotations

import memplan
import memplan.optimize.streams as streams_module
from memplan import GraphBuilder
from memplan.optimize.cost import CostModel, node_costs


def _moe_layers(layers: int, experts: int = 64, depth: int = 2) -> memplan.Graph:
    """MoE-like layers: a router, ``experts`` chains of ``depth`` nodes reading it, a join of every chain's end.
    On 1,024 streams the experts spread over hundreds of streams and each join's clock comes to know all of them."""
    b = GraphBuilder("moe-layers", alignment=64)
    prev = b.input("x", 256)
    for layer in range(layers):
        b.node(f"r{layer}", "ROUTE", [prev], b.intermediate(f"rt{layer}", 256), cost=2.0)
        ends = []
        for e in range(experts):
            p = f"rt{layer}"
            for j in range(depth):
                t = f"e{layer}_{e}_{j}"
                b.node(f"n{t}", "EXPERT", [p], b.intermediate(t, 512), cost=float(1 + (e + j) % 3))
                p = t
            ends.append(p)
        out = f"j{layer}"
        b.node(f"nj{layer}", "JOIN", ends, b.output(out, 256) if layer == layers - 1 else b.intermediate(out, 256),
               cost=2.0)
        prev = out
    return b.build()


def test_list_scheduler_keeps_dense_clocks_on_many_units(monkeypatch):
    """Above 32 streams the list scheduler's vector clocks are numpy rows only while a row for *every unit* fitted a
    cap of 2**26 cells (65,536 units on 1,024 streams); past it they fell back to dict clocks, which copy a dict of
    every known stream for every unit and merge an event's clock entry by entry: a 100,000-node MoE-like graph on
    1,024 streams took 3.8 GB and 85 s of CPU (dense rows: 0.32 GB, 6.7 s). Dense rows are
    made only where a unit takes an event, so no unit count makes them the larger choice; now they are kept.

    The cap is set here to what 1,000 units' rows take (the graph has ~2,000 units), as the 2**26 cap stood to a
    100,000-unit graph: each event must still merge in one step (a dict clock merged hundreds of entries each)."""
    monkeypatch.setattr(streams_module, "DENSE_CELLS", 1000 * 1024, raising=False)
    g = _moe_layers(16)
    U = streams_module.build_units(g, node_costs(g, CostModel()))
    stats: dict = {}
    streams_module.list_schedule_twin(U, 1024, 2.0, stats=stats)
    merged = stats.get("merged", 0)
    # one step per event source merged: at most the 64 chain ends of each join and each expert's router
    assert 0 < merged <= 2 * len(U.members), stats


def _cache_writes(n: int) -> memplan.Graph:
    """A cache made first, ``n`` nodes each writing its own slot through a view (reading the cache, as SET_ROWS
    does), each slot read by its own node, and a join of those: every stream soon knows the cache's producer."""
    b = GraphBuilder("cache-writes", alignment=64)
    b.input("x", 64)
    b.intermediate("c", 64 * n)
    b.node("mk", "FILL", ["x"], ["c"], cost=1.0)
    ends = []
    for i in range(n):
        b.view(f"v{i}", "c", 64, 64 * i)
        b.node(f"w{i}", "SET_ROWS", ["x", "c"], [f"v{i}"], cost=2.0)
        b.node(f"r{i}", "READ", [f"v{i}"], b.intermediate(f"u{i}", 64), cost=1.0)
        ends.append(f"u{i}")
    b.node("join", "JOIN", ends, b.output("y", 64), cost=1.0)
    return b.build()


def _list_runs(U, k: int, stats: dict | None = None) -> list:
    return [streams_module.list_schedule_twin(U, k, 2.0, stats=stats, **kw)
            for kw in (dict(mode="eft"), dict(mode="est"), dict(mode="eft", listed=True, twin=False))]


def test_list_scheduler_does_not_try_every_stream_for_an_input_every_stream_knows(monkeypatch):
    """A unit reading a tensor that every used stream already waited for (the cache's producer here; positions or a
    fork's source in a model) beside a fresh one had every stream that knows the first listed as a candidate, so its
    start was computed on every used stream: on 256 streams ~95 starts per unit (1,024: ~500, and 10 s of
    ``graph_optimize`` for 5,000 slots). Such an input ranks no stream apart (no event, one end on each), so it adds no
    candidate: ~8 per unit, and the same schedules as the dict clocks, which list streams another way."""
    U = streams_module.build_units(_cache_writes(400), node_costs(_cache_writes(400), CostModel()))
    stats: dict = {}
    dense = _list_runs(U, 256, stats)
    assert stats["scored"] <= 3 * 12 * len(U.members), stats
    monkeypatch.setattr(streams_module, "DENSE_STREAMS", 1 << 30)
    assert _list_runs(U, 256) == dense
