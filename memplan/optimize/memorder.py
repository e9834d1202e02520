"""A one-stream issue order that keeps few bytes live: the memory budget's last resort.

Why: a memory budget the listed order misses may still be met by another order of the same graph
(a branch run to its end before the next one starts frees its buffers sooner). ``memplan.plan`` tries
this order only after every other candidate, the listed serial order included, is over the budget, so
it changes no plan that was made before; it only turns some ``BudgetError`` into a plan.

The order is greedy, as single-stream engines order for memory: among the units (fusion groups whole)
whose data dependencies are issued, take the one whose issue changes the live arena bytes least (the
roots it makes live, minus those it is the last reader of), ties to the one listed first. Inputs and
outputs are live throughout and never count. It is a heuristic, not an optimum; the plan is still
solved and verified like any other.
"""

from __future__ import annotations

import heapq

from ..graph import Graph
from ..schedule import Schedule, data_dependencies

#: the candidate name ``memplan.plan`` reports for this order (solver block, ``schedule.candidate``)
LOW_MEMORY = "serial-low-memory"


def memory_order(graph: Graph) -> Schedule:
    """The greedy low-memory serial schedule of ``graph`` (one stream, no events)."""
    units = graph.units()
    unit_of = [0] * len(graph.nodes)
    for u, members in enumerate(units):
        for m in members:
            unit_of[m] = u
    preds: list[set[int]] = [set() for _ in units]
    for u, members in enumerate(units):
        for m in members:
            preds[u].update(unit_of[d] for d in data_dependencies(graph, m) if unit_of[d] != u)
    succs: list[list[int]] = [[] for _ in units]
    for u, ps in enumerate(preds):
        for p in sorted(ps):
            succs[p].append(u)
    # arena roots that are neither inputs nor outputs: made live by their first toucher, freed by their last
    def counted(r: int) -> bool:
        return graph.in_arena(r) and graph.tensors[r].kind == "intermediate"

    touches: list[list[int]] = []   # per unit: the counted roots it reads or writes (each once)
    users: dict[int, int] = {}      # root -> units that touch it, not yet issued
    for members in units:
        roots = sorted({graph.root[t] for m in members for t in graph.node_inputs[m] + graph.node_outputs[m]
                        if counted(graph.root[t])})
        touches.append(roots)
        for r in roots:
            users[r] = users.get(r, 0) + 1
    live: set[int] = set()

    def delta(u: int) -> int:
        d = 0
        for r in touches[u]:
            if r not in live:
                d += graph.tensors[r].size
            if users[r] == 1:
                d -= graph.tensors[r].size
        return d

    waiting = [len(ps) for ps in preds]
    touching: dict[int, list[int]] = {}   # root -> ready units touching it (their delta moves with it)
    stamp = [0] * len(units)
    heap: list[tuple[int, int, int]] = []

    def push(u: int) -> None:
        stamp[u] += 1
        heapq.heappush(heap, (delta(u), u, stamp[u]))

    issued = [False] * len(units)
    for u in range(len(units)):
        if waiting[u] == 0:
            for r in touches[u]:
                touching.setdefault(r, []).append(u)
            push(u)
    order: list[int] = []
    while heap:
        _d, u, s = heapq.heappop(heap)
        if s != stamp[u] or issued[u]:
            continue
        issued[u] = True
        order.append(u)
        changed: set[int] = set()
        for r in touches[u]:
            users[r] -= 1
            live.add(r)
            if users[r] <= 1:   # made live, or one toucher left who now frees it: those units' deltas moved
                changed.update(v for v in touching.get(r, ()) if not issued[v])
        for v in sorted(changed):
            push(v)
        for v in succs[u]:
            waiting[v] -= 1
            if waiting[v] == 0:
                for r in touches[v]:
                    touching.setdefault(r, []).append(v)
                push(v)
    assert len(order) == len(units), "the graph's data dependencies form a cycle (check_graph refuses those)"
    nodes = tuple(graph.nodes[m].id for u in order for m in units[u])
    return Schedule(nodes, (0,) * len(nodes), ())
