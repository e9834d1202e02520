"""The least arena any schedule of a graph needs: a memory budget below it is refused before any work.

Why: a memory budget is met by searching schedules (the optimizer's candidates, fork give-backs, the serial
orders), each planned or bounded in turn. A budget below what *every* schedule needs made that whole search
run for nothing: ``plan(fan_out_join(20000), streams=1024, memory_budget=512K)`` scheduled, bounded and
planned 27 schedules for 40-55 s before it said that none fits, and the refusal named no node.

Three sets of arena roots lie pairwise apart in every safe plan of every schedule (contract rule 3), each of
them a floor of the arena:

* the roots one node touches (reads, writes, or writes a view of): the node is an access of each, and no node
  happens-before itself, so no two of them may overlap; the one exception, an input the node overwrites in
  place, is left out (its root may share the bytes of the output written over it);
* the input roots: each is accessed by the virtual node before every node;
* the roots that live to the end (outputs, and roots with an ``output`` view): each is accessed by the virtual
  node after every node.

Nonzero roots at offsets that are multiples of the alignment then need at least their sizes rounded up to it,
but for the topmost one (a zero-size root occupies no bytes). The floor depends on the graph alone, so it holds
for every candidate a budget search could try; it is a proven bound, never an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..graph import Graph
from ..problem import align_up


@dataclass(frozen=True)
class Floor:
    """``bytes``: the floor; ``what``: the set of roots that needs it, in words naming its node or kind."""

    bytes: int
    what: str


def packed_bytes(sizes: Iterable[int], alignment: int) -> int:
    """The least arena holding roots of ``sizes`` side by side at offsets that are multiples of ``alignment``:
    every nonzero size rounded up, but the topmost one, which may end unrounded."""
    total, slack = 0, 0
    for s in sizes:
        if s > 0:
            up = align_up(s, alignment)
            total += up
            slack = max(slack, up - s)
    return total - slack


def arena_floor(graph: Graph) -> Floor:
    """The largest of the three floors (the module docstring), the first found on ties: a node's in listed
    order, then the inputs', then the outputs'."""
    tensors, root, a = graph.tensors, graph.root, graph.alignment
    best = Floor(0, "")
    for n, node in enumerate(graph.nodes):
        overwritten = {root[graph.tensor_index[i]] for _, i in node.inplace}
        roots = {root[t] for t in graph.node_inputs[n] + graph.node_outputs[n] if graph.in_arena(t)} - overwritten
        need = packed_bytes((tensors[r].size for r in roots), a)
        if need > best.bytes:
            best = Floor(need, f"node {node.id!r} touches {len(roots)} arena tensor(s) that no plan may overlap "
                               f"(all in use while it runs)")
    inputs = [t for t, x in enumerate(tensors) if x.view_of is None and x.kind == "input"]
    need = packed_bytes((tensors[t].size for t in inputs), a)
    if need > best.bytes:
        best = Floor(need, f"its {len(inputs)} input(s), which no plan may overlap (each is in the arena from the "
                           f"start of the run)")
    ends = sorted({root[t] for t, x in enumerate(tensors) if x.kind == "output" and graph.in_arena(t)})
    need = packed_bytes((tensors[r].size for r in ends), a)
    if need > best.bytes:
        best = Floor(need, f"its {len(ends)} output(s), which no plan may overlap (each lives to the end of the "
                           f"run)")
    return best
