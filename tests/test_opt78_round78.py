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
    1,024 streams took 3.8 GB and over 390 s on the loaded VM (50,000 nodes, dense: 0.18 GB, 25 s). Dense rows are
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
