"""Simulated start/end times for pictures: ``memplan.simulate`` when it exists, else a tiny fallback.

The fallback only exists so the trace and the ``--time`` memory map work before the real simulator
lands; it follows exactly what a CUDA runtime enforces: each stream runs its nodes in issue order, and a
node waits for the ``after`` node of every event it waits on. Node ``cost`` (microseconds) is the
duration; a node without a cost takes ``DEFAULT_US``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import Graph
from ..planfile import Plan

DEFAULT_US = 1.0


@dataclass(frozen=True)
class Times:
    start_us: dict[str, float]
    end_us: dict[str, float]
    makespan_us: float
    source: str  # "simulate" or "fallback"


def simulated_times(graph: Graph, plan: Plan) -> Times:
    try:
        from ..simulate import simulate
    except ImportError:
        return _fallback(graph, plan)
    sim = simulate(graph, plan)
    return Times(dict(sim.start_us), dict(sim.end_us), float(sim.makespan_us), "simulate")


def _fallback(graph: Graph, plan: Plan) -> Times:
    waits: dict[str, list[str]] = {}
    for a, b in plan.events:
        waits.setdefault(b, []).append(a)
    free: dict[int, float] = {}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for nid, s in plan.order:
        t = free.get(s, 0.0)
        for a in waits.get(nid, ()):
            t = max(t, end.get(a, 0.0))  # an event waited before it is recorded is a no-op in CUDA
        cost = graph.node(nid).cost
        start[nid] = t
        end[nid] = free[s] = t + (DEFAULT_US if cost is None else float(cost))
    return Times(start, end, max(end.values(), default=0.0), "fallback")
