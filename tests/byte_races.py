"""Every interleaving at once: what each read of a plan may see, byte by byte, against the serial run.

``semantic.check`` runs a plan under a few dozen interleavings. This checker covers all of them for the same
execution model (a node reads its inputs when it starts and writes its outputs when it finishes; a stream runs
its nodes in issue order; an event's waiter starts after its ``after`` finished; a wait issued before its
record orders nothing) by reasoning instead of running: in some interleaving a read by node ``n`` of a byte
sees writer ``w`` exactly when ``n`` does not happen-before ``w`` and no other writer of that byte lies
between them in happens-before (schedule everything that happens-before ``w``, then ``w``, then what must
precede ``n``), and it sees the arena's junk when no writer of the byte happens-before ``n``. A plan is right
when each read (before and after the node's own writes) and each output's final byte can only be what the
serial run with a buffer per root has there. The bytes the contract leaves open are excluded with
``semantic.analyse``'s masks, so the verdicts are comparable with ``semantic.check`` (fused groups excluded:
only plans checked without ``fused_groups``).

Quadratic in the writers of a byte and linear in bytes: for graphs of a few nodes and a few KB.
"""

from __future__ import annotations

from typing import Any

import semantic

from memplan import Graph, Plan
from memplan.planfile import plan_from_dict

JUNK = ("junk",)


def _closure(graph: Graph, plan: Plan) -> list[int]:
    """reach[a]: the bitset of the nodes (graph indices) that ``a`` happens-before."""
    idx = graph.node_index
    pos = {nid: k for k, (nid, _) in enumerate(plan.order)}
    succ: list[set[int]] = [set() for _ in graph.nodes]
    last: dict[int, int] = {}
    for nid, s in plan.order:
        if s in last:
            succ[last[s]].add(idx[nid])
        last[s] = idx[nid]
    for a, b in plan.events:
        if pos[a] < pos[b]:
            succ[idx[a]].add(idx[b])
    reach = [0] * len(graph.nodes)
    for nid, _ in reversed(plan.order):
        a = idx[nid]
        for b in succ[a]:
            reach[a] |= (1 << b) | reach[b]
    return reach


def findings(graph: Graph, plan: Plan | dict[str, Any], limit: int = 5) -> list[str]:
    """Reads (and final output bytes) that some interleaving of ``plan`` gets wrong; empty when none does."""
    if isinstance(plan, dict):
        plan = plan_from_dict(plan)
    g = graph
    an = semantic.analyse(g)
    reach = _closure(g, plan)

    def hb(a: int, b: int) -> bool:
        return (reach[a] >> b) & 1 == 1

    offset = plan.offsets()
    device = dict(zip((t for t, _, _ in plan.tensors), plan.tensor_devices, strict=True)) if plan.devices > 1 else {}

    def where(t: int, k: int) -> tuple:
        """Where byte ``k`` of tensor ``t`` lives in the plan's memory."""
        r = g.root[t]
        if g.tensors[r].kind == "weight":
            return ("w", r, g.root_offset[t] + k)
        tid = g.tensors[t].id
        return ("a", device.get(tid, 0), offset[tid] + k)

    # the plan's writers of each location, each node with the identity of its last covering output there
    writers: dict[tuple, dict[int, tuple]] = {}
    host: dict[tuple, set[tuple]] = {}   # the host writes every input before the run, in no fixed order
    for r, t in enumerate(g.tensors):
        if g.is_root(r) and t.kind in ("input", "weight") and r not in an.constant:
            for k in range(t.size):
                host.setdefault(where(r, k), set()).add(("host", t.id, k))
    for n in range(len(g.nodes)):
        for o in g.node_outputs[n]:
            for k in range(g.tensors[o].size):
                writers.setdefault(where(o, k), {})[n] = (g.nodes[n].id, g.tensors[o].id, k)

    def seen_by(n: int, loc: tuple) -> set[tuple]:
        ws = writers.get(loc, {})
        out = set()
        for w, ident in ws.items():
            if w == n or hb(n, w):
                continue
            if not any(w2 != n and hb(w, w2) and hb(w2, n) for w2 in ws):
                out.add(ident)
        if not any(hb(w, n) for w in ws):
            out |= host.get(loc, {JUNK})
        return out

    def final(loc: tuple) -> set[tuple]:
        ws = writers.get(loc, {})
        if not ws:
            return host.get(loc, {JUNK})
        return {ident for w, ident in ws.items() if not any(hb(w, w2) for w2 in ws)}

    # the serial run, one buffer per root: the identity of each root byte's last write
    ref: dict[tuple[int, int], tuple] = {}
    for r, t in enumerate(g.tensors):
        if g.is_root(r) and t.kind in ("input", "weight") and r not in an.constant:
            for k in range(t.size):
                ref[r, k] = ("host", t.id, k)
    found: list[str] = []

    def compare(what: str, got: set[tuple], want: tuple) -> None:
        if got != {want} and len(found) < limit:
            found.append(f"{what}: may see {sorted(got)[:3]}, the serial run sees {want}")

    for n, node in enumerate(g.nodes):
        reads = []
        for i, t in enumerate(g.node_inputs[n]):
            if g.root[t] in an.constant:
                continue
            masked = an.read_mask[n, i]
            for k in range(g.tensors[t].size):
                if not any(lo <= k < hi for lo, hi in masked):
                    reads.append((i, t, k))
        for _i, t, k in reads:
            compare(f"node {node.id!r} reads {g.tensors[t].id!r}[{k}]", seen_by(n, where(t, k)),
                    ref.get((g.root[t], g.root_offset[t] + k), JUNK))
        for o in g.node_outputs[n]:
            for k in range(g.tensors[o].size):
                ref[g.root[o], g.root_offset[o] + k] = (node.id, g.tensors[o].id, k)
        overwritten = {g.root[g.tensor_index[i]] for _, i in node.inplace}
        for _i, t, k in reads:   # after its own writes (a node clobbering what it reads)
            if g.root[t] in overwritten:
                continue
            loc = where(t, k)
            got = {writers[loc][n]} if n in writers.get(loc, {}) else seen_by(n, loc)
            compare(f"node {node.id!r} reads {g.tensors[t].id!r}[{k}] after its writes", got,
                    ref.get((g.root[t], g.root_offset[t] + k), JUNK))
    for t, mask in an.out_mask.items():
        for k in range(g.tensors[t].size):
            if not any(lo <= k < hi for lo, hi in mask):
                compare(f"output {g.tensors[t].id!r}[{k}] at the end", final(where(t, k)),
                        ref.get((g.root[t], g.root_offset[t] + k), JUNK))
    return found
