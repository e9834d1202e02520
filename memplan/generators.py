"""Synthetic graphs for benchmarks and scale tests: repeated fan-out/join blocks of any size.

Deterministic for a given seed; each comes with the natural multi-stream schedule (branch ``j`` of a
fan-out on stream ``j % streams``, joins on stream 0) and the events that schedule needs.
"""

from __future__ import annotations

import random

from .errors import GraphError, as_int
from .errors import short_repr as _short
from .examples import MAX_NODES
from .graph import Graph, GraphBuilder
from .planfile import MAX_STREAMS
from .schedule import Schedule, schedule_with_events

SIZES = (1024, 4096, 16384, 65536)


def _count(name: str, value: object, least: int, most: int) -> int:
    """``value`` as a plain int in ``least .. most``, else GraphError naming ``fanout_join``'s argument."""
    v = as_int(value)
    if v is None or not least <= v <= most:
        raise GraphError(f"fanout_join: {name} must be an integer from {least} to {most}, not {_short(value)}")
    return v


def fanout_join(n_nodes: int, *, max_width: int = 4, streams: int = 4, seed: int = 0,
                chain: int = 2) -> tuple[Graph, Schedule]:
    """A DAG of fan-out/join blocks: each branch is a short chain, branches join into one tensor.

    Returns ``(graph, schedule)``: the schedule is the generator's own, each block's branches dealt out
    over ``streams`` streams with the fewest events, so benchmarks can plan a multi-stream schedule that
    ``graph_optimize`` did not choose (``bench scale --mode natural``); take ``[0]`` for the graph alone.

    Each argument an integer in its range (``_count``), else a GraphError naming it: ``streams=0`` was a raw
    ZeroDivisionError, ``max_width=0`` or ``chain=0`` a ValueError from ``randrange``, ``n_nodes=None`` a TypeError,
    ``2.5`` a graph of 3 nodes, ``-5`` one of 1, ``10**12`` nodes built until memory ran out (``examples.MAX_NODES``),
    and ``seed=None`` another graph every call.
    """
    n_nodes = _count("n_nodes", n_nodes, 1, MAX_NODES)
    max_width, chain = _count("max_width", max_width, 1, MAX_NODES), _count("chain", chain, 1, MAX_NODES)
    streams, seed_int = _count("streams", streams, 1, MAX_STREAMS), as_int(seed)
    if seed_int is None:
        raise GraphError(f"fanout_join: seed must be an integer, not {_short(seed)}")
    seed = seed_int
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
