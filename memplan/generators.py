"""Synthetic graphs for benchmarks and scale tests: repeated fan-out/join blocks of any size.

Deterministic for a given seed; each comes with the natural multi-stream schedule (branch ``j`` of a
fan-out on stream ``j % streams``, joins on stream 0) and the events that schedule needs.
"""

from __future__ import annotations

import random

from .graph import Graph, GraphBuilder
from .schedule import Schedule, schedule_with_events

SIZES = (1024, 4096, 16384, 65536)


def fanout_join(n_nodes: int, *, max_width: int = 4, streams: int = 4, seed: int = 0,
                chain: int = 2) -> tuple[Graph, Schedule]:
    """A DAG of fan-out/join blocks: each branch is a short chain, branches join into one tensor.

    Returns ``(graph, schedule)``: the schedule is the generator's own, each block's branches dealt out
    over ``streams`` streams with the fewest events, so benchmarks can plan a multi-stream schedule that
    ``graph_optimize`` did not choose (``bench scale --mode natural``); take ``[0]`` for the graph alone.
    """
    rng = random.Random(seed)
    b = GraphBuilder(f"fanout-join-{n_nodes}-s{seed}")
    b.input("x", 4096)
    src = "x"
    stream_of: dict[str, int] = {}
    k = 0

    def new(op: str, inputs: list[str], s: int) -> str:
        nonlocal k
        t = b.intermediate(f"t{k}", rng.choice(SIZES))
        b.node(f"n{k}", op, inputs, t, cost=float(rng.randint(2, 40)))
        stream_of[f"n{k}"] = s
        k += 1
        return t

    while k < n_nodes - 1:
        width = rng.randint(1, max_width)
        ends = []
        for j in range(width):
            t = src
            for _ in range(rng.randint(1, chain)):
                if k >= n_nodes - 1:
                    break
                t = new("OP", [t], j % streams)
            if t != src:
                ends.append(t)
        src = new("ADD", ends or [src], 0) if k < n_nodes - 1 else (ends[-1] if ends else src)
    out = b.output("y", 4096)
    b.node(f"n{k}", "OUT", [src], out, cost=2.0)
    stream_of[f"n{k}"] = 0
    g = b.build()
    return g, schedule_with_events(g, [n.id for n in g.nodes], stream_of)
