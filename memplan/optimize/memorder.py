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
    order = _greedy(graph, units, _chain_preds(graph, units, unit_of))
    if order is None:   # a safety net only: ``_chain_preds`` waits for writers of earlier units alone
        order = _greedy(graph, units, _explicit_preds(graph, units, unit_of))
    assert order is not None, "the graph's data dependencies form a cycle (check_graph refuses those)"
    nodes = tuple(graph.nodes[m].id for u in order for m in units[u])
    return Schedule(nodes, (0,) * len(nodes), ())


def _explicit_preds(graph: Graph, units: list[list[int]], unit_of: list[int]) -> dict[int, set[int]]:
    """Each unit's rule-2 data dependencies as units, every writer listed (O(depth) per read)."""
    return {u: {unit_of[d] for m in members for d in data_dependencies(graph, m) if unit_of[d] != u}
            for u, members in enumerate(units)}


def _chain_preds(graph: Graph, units: list[list[int]], unit_of: list[int]) -> dict[int, set[int]]:
    """The same order relation without listing every writer of a deep view chain for every reader
    (``Graph.writers`` is O(depth) per read: a 5,000-view chain took 3 s, quadratic): a zero-cost vertex
    per written tensor j (``len(units) + j``) stands for "every writer along j's chain is issued"; it
    waits for j's producer and for the vertex of the next written tensor up the chain, and a reader
    waits for it. A unit that writes on a chain it reads (a fused group's members, or a member writing
    a view above one another unit wrote) must not wait for itself: its reads list the writers one by one
    up to its own topmost write there (a fold of the latest-listed writer finds it, memoized per view),
    and take the vertex above it. So the relation has no cycle: every writer a unit waits for, directly
    or through vertices, is listed in an earlier unit. (Taking the vertex below a unit's own write made a
    cycle, and the fallback listed every writer for every read of the graph: quadratic, 15 s at 8k views.)"""
    U = len(units)
    tensors, written, tindex = graph.tensors, graph.written, graph.tensor_index
    preds: dict[int, set[int]] = {}
    latest = graph.fold_writers(lambda w: w, max)   # the last-listed writer on a tensor's chain

    def up(j: int) -> int:
        parent = tensors[j].view_of
        return -1 if parent is None else written[tindex[parent]]

    def chain_vertex(j: int) -> int:
        top = j
        while j >= 0 and U + j not in preds:
            preds[U + j] = {unit_of[graph.producer[j]]}
            k = up(j)
            if k >= 0:
                preds[U + j].add(U + k)
            j = k
        return U + top

    for u, members in enumerate(units):
        ps = preds.setdefault(u, set())
        first = members[0]   # writers listed from here on are this unit's (the listed order is topological)
        for m in members:
            for t in graph.node_inputs[m]:
                j = written[t]
                while j >= 0 and latest.of(j) >= first:   # this unit writes at j or above: list j's writer
                    if unit_of[graph.producer[j]] != u:
                        ps.add(unit_of[graph.producer[j]])
                    j = up(j)
                if j >= 0:
                    ps.add(chain_vertex(j))
    return preds


def _greedy(graph: Graph, units: list[list[int]], preds: dict[int, set[int]]) -> list[int] | None:
    """Units in the greedy low-memory order under ``preds`` (vertex -> the vertices it waits for; those
    from ``len(units)`` on are zero-cost chain vertices), or None if ``preds`` has a cycle."""
    U = len(units)
    tensors = graph.tensors
    succs: dict[int, list[int]] = {}
    waiting: dict[int, int] = {}
    for v in sorted(preds):
        ps = preds[v] - {v}
        waiting[v] = len(ps)
        for p in sorted(ps):
            succs.setdefault(p, []).append(v)

    def counted(r: int) -> bool:   # arena roots (an input is live from the start, an output to the end)
        return graph.in_arena(r)

    def frees(r: int) -> bool:     # its last access frees it (an output's lasts to the end of the run)
        return tensors[r].kind != "output"

    touches: list[list[int]] = []   # per unit: the counted roots it reads or writes (each once)
    users: dict[int, int] = {}      # root -> units that touch it, not yet issued
    for members in units:
        roots = sorted({graph.root[t] for m in members for t in graph.node_inputs[m] + graph.node_outputs[m]
                        if counted(graph.root[t])})
        touches.append(roots)
        for r in roots:
            users[r] = users.get(r, 0) + 1
    live: set[int] = {r for r in users if tensors[r].kind == "input"}

    def delta(u: int) -> int:   # live bytes after issuing u, minus before
        d = 0
        for r in touches[u]:
            if r not in live:
                d += tensors[r].size
            if users[r] == 1 and frees(r):
                d -= tensors[r].size
        return d

    touching: dict[int, list[int]] = {}   # root -> ready units touching it (their delta moves with it)
    stamp = [0] * U
    heap: list[tuple[int, int, int]] = []
    issued = [False] * U

    def push(u: int) -> None:
        stamp[u] += 1
        heapq.heappush(heap, (delta(u), u, stamp[u]))

    def release(v: int) -> None:
        """``v``'s dependencies are all issued: a unit becomes ready, a chain vertex passes it on at once."""
        stack = [v]
        while stack:
            w = stack.pop()
            if w < U:
                for r in touches[w]:
                    touching.setdefault(r, []).append(w)
                push(w)
                continue
            for x in succs.get(w, ()):
                waiting[x] -= 1
                if waiting[x] == 0:
                    stack.append(x)

    for v in sorted(waiting):
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
            users[r] -= 1
            made_live = r not in live
            live.add(r)
            if made_live or (users[r] == 1 and frees(r)):   # others no longer make it live, or the one left now frees it
                changed.update(v for v in touching.get(r, ()) if not issued[v])
        for v in sorted(changed):
            push(v)
        for v in succs.get(u, ()):
            waiting[v] -= 1
            if waiting[v] == 0:
                release(v)
    return order if len(order) == U else None
