"""A one-stream issue order that keeps few bytes live: the memory budget's last resort.

Why: a memory budget the listed order misses may still be met by another order of the same graph
(a branch run to its end before the next one starts frees its buffers sooner). ``memplan.plan`` tries
this order only after every other candidate, the listed serial order included, is over the budget, so
it changes no plan that was made before; it only turns some ``BudgetError`` into a plan.

The order is greedy, as single-stream engines order for memory: among the units (fusion groups whole)
whose data dependencies are issued, take the one whose issue changes the live arena bytes least (the
roots it makes live, minus those it is the last reader of), ties to the one listed first. As in the
contract, an input is live from the start until its last reader (so reading it early frees it) and an
output from its first access to the end (so making it early costs its bytes for the rest of the run):
counting neither, as the first version did, issued a node that only makes an output first and kept the
output live throughout (worse than the listed order for 117 of 592 refused random graphs, now 52). It is
a heuristic, not an optimum; the plan is still solved and verified like any other.
"""

from __future__ import annotations

import heapq

from ..graph import Graph
from ..schedule import Schedule
from .streams import Units, build_units

#: the candidate name ``memplan.plan`` reports for this order (solver block, ``schedule.candidate``)
LOW_MEMORY = "serial-low-memory"


def memory_order(graph: Graph) -> Schedule:
    """The greedy low-memory serial schedule of ``graph`` (one stream, no events)."""
    # the optimizer's unit graph: fusion groups whole, and rule 2's dependencies through one zero-cost node
    # per written view (a deep view chain costs O(k) edges, not k^2 / 2: ``streams.Units``)
    units = build_units(graph, [0.0] * len(graph.nodes))
    order = _greedy(graph, units)
    nodes = tuple(graph.nodes[m].id for u in order for m in units.members[u])
    return Schedule(nodes, (0,) * len(nodes), ())


def memory_unit_order(graph: Graph, units: Units) -> list[int]:
    """``memory_order``'s issue order as units of ``units`` (any cost: the order reads only the unit graph and the
    tensors), for the concurrent schedules a memory budget derives from it (``budget.low_memory_streams``)."""
    return _greedy(graph, units)


def _greedy(graph: Graph, units: Units) -> list[int]:
    """The units (``units.members`` indices) in the greedy low-memory order; view nodes (from
    ``len(units.members)`` on) pass their readiness on at once."""
    U = len(units.members)
    tensors = graph.tensors
    succs = units.succs
    waiting = [len(d) for d in units.deps]

    def frees(r: int) -> bool:     # its last access frees it (an output's lasts to the end of the run)
        return tensors[r].kind != "output"

    # per unit: the arena roots it reads or writes, each once (an input is live from the start, an output
    # to the end)
    touches: list[list[int]] = []
    users: dict[int, int] = {}      # root -> units that touch it, not yet issued
    for members in units.members:
        roots = sorted({graph.root[t] for m in members for t in graph.node_inputs[m] + graph.node_outputs[m]
                        if graph.in_arena(graph.root[t])})
        touches.append(roots)
        for r in roots:
            users[r] = users.get(r, 0) + 1
    live: set[int] = {r for r in users if tensors[r].kind == "input"}

    def share(r: int) -> int:   # what root r adds to the live bytes of issuing a unit that touches it
        size = tensors[r].size
        return (size if r not in live else 0) - (size if users[r] == 1 and frees(r) else 0)

    touching: dict[int, list[int]] = {}   # root -> ready units touching it (their delta moves with it)
    stamp = [0] * U
    heap: list[tuple[int, int, int]] = []
    issued = [False] * U
    # a ready unit's delta (live bytes after issuing it, minus before): summed once when it becomes ready, then moved
    # by each change of one of its roots' share. Why: summed again over every root of the unit at each change, a unit
    # touching k roots whose shares change one by one (a node reading 8,000 inputs that each have another reader)
    # cost k^2 steps (8,000: 10 s of a budgeted plan, which builds this order as its last resort)
    delta = [0] * U

    def push(u: int) -> None:
        stamp[u] += 1
        heapq.heappush(heap, (delta[u], u, stamp[u]))

    def release(v: int) -> None:
        """``v``'s dependencies are all issued: a unit becomes ready, a chain vertex passes it on at once."""
        stack = [v]
        while stack:
            w = stack.pop()
            if w < U:
                for r in touches[w]:
                    touching.setdefault(r, []).append(w)
                delta[w] = sum(map(share, touches[w]))
                push(w)
                continue
            for x in succs[w]:
                waiting[x] -= 1
                if waiting[x] == 0:
                    stack.append(x)

    for v in range(len(waiting)):
        if waiting[v] == 0:
            release(v)
    order: list[int] = []
    while heap:
        _d, u, s = heapq.heappop(heap)
        if s != stamp[u] or issued[u]:
            continue
        issued[u] = True
        order.append(u)
        changed: set[int] = set()
        for r in touches[u]:
            before = share(r)
            users[r] -= 1
            live.add(r)
            moved = share(r) - before   # others no longer make it live, or the one left now frees it
            if moved:
                for v in touching.get(r, ()):
                    if not issued[v]:
                        delta[v] += moved
                        changed.add(v)
        for v in sorted(changed):
            push(v)
        for v in succs[u]:
            waiting[v] -= 1
            if waiting[v] == 0:
                release(v)
    assert len(order) == U, "the graph's data dependencies form a cycle (check_graph refuses those)"
    return order
