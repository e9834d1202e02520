"""Baseline schedules the benchmark compares ``graph_optimize`` against (never used as defaults).

- ``serial``: the listed order on one stream, what single-stream engines run.
- ``qkv_only``: llama.cpp's concurrency pass as it stands: find a node whose op is RMS_NORM or MUL
  and whose output feeds exactly three MUL_MATs (Q, K, V in listed order), run K's and V's branches
  on streams 1 and 2 until they join (a node that also needs work from another stream), everything
  else on stream 0 in listed order. Nothing else runs concurrently.
"""

from __future__ import annotations

from ..graph import Graph
from ..schedule import Schedule, data_dependencies, schedule_with_events, serial_schedule

__all__ = ["qkv_only", "serial"]


def serial(graph: Graph) -> Schedule:
    return serial_schedule(graph)


def qkv_only(graph: Graph) -> Schedule:
    """K and V branches of every Q/K/V fork on streams 1 and 2; the rest serial on stream 0."""
    n_nodes = len(graph.nodes)
    readers: list[list[int]] = [[] for _ in range(n_nodes)]
    deps = [sorted(set(data_dependencies(graph, n))) for n in range(n_nodes)]
    for n in range(n_nodes):
        for d in deps[n]:
            readers[d].append(n)
    stream = [0] * n_nodes
    for n, node in enumerate(graph.nodes):
        if node.op not in ("RMS_NORM", "MUL"):
            continue
        mms = sorted(r for r in readers[n] if graph.nodes[r].op == "MUL_MAT")
        if len(mms) != 3 or len(readers[n]) != 3:
            continue
        for s, head in ((1, mms[1]), (2, mms[2])):
            branch = {head}
            stream[head] = s
            frontier = [head]
            while frontier:
                u = frontier.pop()
                for r in sorted(readers[u]):
                    if r in branch or graph.nodes[r].group is not None:
                        continue
                    if all(d in branch or not _descends(d, n, deps) for d in deps[r]):
                        branch.add(r)
                        stream[r] = s
                        frontier.append(r)
    order = [nd.id for nd in graph.nodes]
    return schedule_with_events(graph, order, {graph.nodes[i].id: stream[i] for i in range(n_nodes)})


def _descends(d: int, fork: int, deps: list[list[int]]) -> bool:
    """Whether node ``d`` is ``fork`` or depends on it (so joining it means a join, not a free input)."""
    stack, seen = [d], set()
    while stack:
        x = stack.pop()
        if x == fork:
            return True
        if x < fork or x in seen:
            continue
        seen.add(x)
        stack.extend(deps[x])
    return False
