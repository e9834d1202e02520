"""What a graph allows a device split to cut, and the split graph with its COPY nodes.

``cut_constraints`` and friends read the graph once for ``partition``; ``insert_copies`` rewrites it
so every tensor lives on one device and data crossing devices flows through explicit ``COPY`` nodes
(``memplan.ops.COPY_OP``) that the planner, the verifier and the multi-GPU runtime all understand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import GraphError, ScheduleError
from ..graph import Graph, Node, Tensor
from ..ops import COPY_OP

#: peer-to-peer bandwidth used for COPY node costs, bytes per microsecond (NVLink 4: ~400 GB/s)
LINK_BYTES_PER_US = 4.0e5
#: fixed latency of one peer copy of at least one byte (launch plus link), microseconds
COPY_FLOOR_US = 5.0


def units_of(graph: Graph) -> list[list[int]]:
    """Fusion groups as one unit each (they must run on one stream), other nodes alone, listed order."""
    return graph.units()


def _root_spans(graph: Graph, units: list[list[int]], keep) -> tuple[dict[int, int], dict[int, int]]:
    """(first, last) unit accessing each root ``r`` with ``keep(r)``."""
    unit_of = [0] * len(graph.nodes)
    for u, ms in enumerate(units):
        for m in ms:
            unit_of[m] = u
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for m in range(len(graph.nodes)):
        u = unit_of[m]
        for t in graph.node_inputs[m] + graph.node_outputs[m]:
            r = graph.root[t]
            if keep(r):
                first.setdefault(r, u)
                last[r] = u
    return first, last


def pinned_roots(graph: Graph) -> set[int]:
    """Roots that must stay on one device with all their accesses: tensors written through a view (a
    view of theirs is some node's output: a KV cache). Read-only weights are replicated instead."""
    pinned: set[int] = set()
    for outs in graph.node_outputs:
        for t in outs:
            if graph.root[t] != t:
                pinned.add(graph.root[t])
    return pinned


def cut_constraints(graph: Graph, units: list[list[int]]) -> tuple[list[bool], list[int]]:
    """Per unit: whether a stage may end after it, and the weight bytes it brings (a weight's bytes
    count at its first accessing unit; unread weights at unit 0; the replicas a cut makes of a weight read
    by several units are ``shared_weights``', which ``partition`` counts on every stage reading them)."""
    U = len(units)
    pinned = pinned_roots(graph)
    first, last = _root_spans(graph, units, lambda r: r in pinned or graph.tensors[r].kind == "weight")
    blocked = [0] * (U + 1)
    for r, f in first.items():
        if r in pinned and last[r] > f:
            blocked[f] += 1
            blocked[last[r]] -= 1
    allowed = [True] * U
    run = 0
    for u in range(U):
        run += blocked[u]
        allowed[u] = run == 0
    weight = [0] * max(U, 1)
    for t, tensor in enumerate(graph.tensors):
        if tensor.kind == "weight" and graph.root[t] == t:
            weight[first.get(t, 0)] += tensor.size
    return allowed, weight[:U] if U else []


def shared_weights(graph: Graph, units: list[list[int]]) -> list[tuple[int, list[int]]]:
    """``(bytes, the units that read it, ascending)`` of each read-only weight root read by more than one unit
    (through any view): a stage cut between two of them replicates it (``insert_copies``), so ``partition`` counts
    it on every stage that reads it. (A weight written through a view is pinned, never cut, never replicated.)"""
    pinned = pinned_roots(graph)
    readers: dict[int, list[int]] = {}
    for u, ms in enumerate(units):
        for m in ms:
            for t in graph.node_inputs[m]:
                r = graph.root[t]
                if graph.tensors[r].kind == "weight" and r not in pinned:
                    us = readers.setdefault(r, [])
                    if not us or us[-1] != u:
                        us.append(u)
    return [(graph.tensors[r].size, us) for r, us in readers.items() if len(us) > 1]


def crossing_bytes(graph: Graph, units: list[list[int]]) -> list[int]:
    """Per unit ``i``: bytes that a stage boundary after unit ``i`` would copy: each tensor of an arena root written
    at or before ``i`` (or, for inputs, first read there) and read after it, as ``insert_copies`` copies it — a view
    as its own bytes, and not at all where a tensor above it on its view chain is read after ``i`` too (that one's
    copy holds it). Why not the root's bytes wherever any view of it is read later (as before): a 64-byte view of a
    1 MiB buffer read after a boundary counted 1 MiB, so the split took a boundary that copied 1 MiB (and balanced
    worse) over one that copied 4 KiB."""
    U = len(units)
    first, _last = _root_spans(graph, units, lambda r: graph.tensors[r].kind != "weight")
    unit_of = [0] * len(graph.nodes)
    for u, ms in enumerate(units):
        for m in ms:
            unit_of[m] = u
    read_last: dict[int, int] = {}   # each tensor read directly: the last unit that reads it
    for m in range(len(graph.nodes)):
        for t in graph.node_inputs[m]:
            if graph.root[t] in first:
                read_last[t] = unit_of[m]
    above: dict[int, int] = {}   # per view: the last unit reading a tensor above it (-1: none), once per tensor

    def read_above(t: int) -> int:
        chain = []   # (a loop, not recursion: view chains run thousands deep)
        j = t
        while j not in above and (parent := graph.tensors[j].view_of) is not None:
            chain.append(j)
            j = graph.tensor_index[parent]
        value = above.get(j, -1)
        for k in reversed(chain):   # k's parent is j: what is above j, and j itself where it is read
            value = max(value, read_last.get(j, -1))
            above[k] = value
            j = k
        return above.get(t, -1)

    diff = [0] * (U + 1)
    for t, last in read_last.items():
        # until the last read of a tensor above it, that one's copy holds it
        lo = max(first[graph.root[t]], read_above(t))
        if last > lo:
            diff[lo] += graph.tensors[t].size
            diff[last] -= graph.tensors[t].size
    out, run = [], 0
    for u in range(U):
        run += diff[u]
        out.append(run)
    return out


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    taken.add(name)
    return name


def copy_cost_us(nbytes: int) -> float:
    """Microseconds of a peer copy of ``nbytes``: the link time, at least ``COPY_FLOOR_US``. A copy of no bytes
    costs nothing: no runtime issues a transfer for it (``runtime.kernels`` launches no memcpy for a 0-byte
    COPY), so the floor charged it 5 us the run never spends (its cross-device event still costs ``event_us``)."""
    return round(max(COPY_FLOOR_US, nbytes / LINK_BYTES_PER_US), 3) if nbytes else 0.0


def insert_copies(graph: Graph, node_dev: Sequence[int], n: int) -> tuple[Graph, list[int], list[int], list[int]]:
    """The graph with COPY nodes for tensors read on a later device (read-only weights are replicated
    instead: ``name@devN``, kind ``weight``, ``attrs.replica_of``); the devices of its nodes and
    tensors; the indices of the copy tensors.

    Stage ``d``'s nodes keep their listed order and are followed by the COPY nodes that send from
    ``d`` (push design: issued on the source device), in the order their tensors' roots are produced (then by
    tensor and destination): the copy of the tensor made first is sent first, so the next device can start on it.

    A ``COPY`` of the graph's own runs within its device like any node: one from an earlier split (a split graph
    split again) gets its ``src_device`` / ``dst_device`` set to that device, which kept the earlier split's
    devices (``0 -> 1`` on a copy now within device 1 or 2: attrs the split graph's readers are told to trust).
    """
    T = len(graph.tensors)
    home = [-1] * T
    for m in range(len(graph.nodes)):  # writers decide (pinned roots have all writers on one device)
        for t in graph.node_outputs[m]:
            r = graph.root[t]
            if home[r] < 0:
                home[r] = node_dev[m]
            elif home[r] != node_dev[m]:
                raise ScheduleError(f"tensor {graph.tensors[r].id!r} would be written on devices {home[r]} "
                                    f"and {node_dev[m]} (a stage cut splits its writers)")
    for m in range(len(graph.nodes)):  # unwritten roots (inputs, weights): the first device that reads
        for t in graph.node_inputs[m]:  # them (devices never decrease along the listed order)
            r = graph.root[t]
            if home[r] < 0:
                home[r] = node_dev[m]
    home = [h if h >= 0 else 0 for h in home]
    tdev = [home[graph.root[t]] for t in range(T)]

    taken_t = {t.id for t in graph.tensors}
    taken_n = {nd.id for nd in graph.nodes}
    copy_of: dict[tuple[int, int], str] = {}
    sends: list[tuple[int, int, int]] = []  # (source device, tensor, destination device)

    def with_device(attrs: Mapping[str, Any], d: int, **more: Any) -> dict[str, Any]:
        out = dict(attrs)
        out["device"] = d
        out.update(more)
        return out

    replicas: list[Tensor] = []
    replica_dev: list[int] = []

    def replicate(t: int, d: int) -> str:
        """A read-only weight (or a view of one) read on device ``d``: the same bytes loaded there too.

        Walks up the view chain in a loop (names taken from ``t`` up), then adds the replicas from the top
        down, each view after its parent: recursion hit Python's limit on a chain a few thousand views deep."""
        chain: list[int] = []
        j = t
        while (j, d) not in copy_of:
            orig = graph.tensors[j]
            copy_of[(j, d)] = _unique(f"{orig.id}@dev{d}", taken_t)
            chain.append(j)
            if orig.view_of is None:
                break
            j = graph.tensor_index[orig.view_of]
        for j in reversed(chain):
            orig, rid = graph.tensors[j], copy_of[(j, d)]
            if orig.view_of is None:
                replicas.append(Tensor(rid, orig.size, "weight", attrs=with_device(orig.attrs, d, replica_of=orig.id)))
            else:
                parent = copy_of[(graph.tensor_index[orig.view_of], d)]
                replicas.append(Tensor(rid, orig.size, "intermediate", view_of=parent, view_offset=orig.view_offset,
                                       attrs=with_device(orig.attrs, d, replica_of=orig.id)))
            replica_dev.append(d)
        return copy_of[(t, d)]

    # what each device reads from an earlier one (weights aside): a view read on a device that also reads a tensor
    # above it on its view chain is a view of that tensor's copy there, not a COPY of its own (``_covering``)
    wanted: set[tuple[int, int]] = set()
    for m in range(len(graph.nodes)):
        d = node_dev[m]
        for t in graph.node_inputs[m]:
            if tdev[t] != d and graph.tensors[graph.root[t]].kind != "weight":
                wanted.add((t, d))
    inside: list[tuple[int, int, int, int]] = []   # (tensor, device, the tensor whose copy holds it, offset in it)

    for m, node in enumerate(graph.nodes):
        d = node_dev[m]
        for t in graph.node_inputs[m]:
            src = tdev[t]
            if src == d or (t, d) in copy_of:
                continue
            if graph.tensors[graph.root[t]].kind == "weight":
                replicate(t, d)
                continue
            if src > d:
                raise ScheduleError(f"node {node.id!r} on device {d} reads {graph.tensors[t].id!r} from the "
                                    f"later device {src} (a stage cut splits a pinned tensor's accesses)")
            copy_of[(t, d)] = _unique(f"{graph.tensors[t].id}@dev{d}", taken_t)
            cover = _covering(graph, t, d, wanted)
            if cover is None:
                sends.append((src, t, d))
            else:
                inside.append((t, d, *cover))

    tensors = [replace(t, attrs=with_device(t.attrs, tdev[i])) for i, t in enumerate(graph.tensors)] + replicas
    new_tdev = list(tdev) + replica_dev
    first_copy = len(tensors)
    copy_nodes: dict[int, list[tuple[Node, int]]] = {}
    for src, t, d in sorted(sends, key=lambda x: (x[0], graph.producer[graph.root[x[1]]], x[1], x[2])):
        orig = graph.tensors[t]
        cid = copy_of[(t, d)]
        tensors.append(Tensor(cid, orig.size, "intermediate",
                              attrs=with_device(orig.attrs, d, copy_of=orig.id)))
        new_tdev.append(d)
        node = Node(_unique(f"copy:{orig.id}@dev{d}", taken_n), COPY_OP, (orig.id,), (cid,),
                    cost=copy_cost_us(orig.size), attrs={"device": src, "src_device": src, "dst_device": d})
        copy_nodes.setdefault(src, []).append((node, src))
    last_copy = len(tensors)
    for t, d, a, off in inside:   # (every covering tensor's copy is above: views come after their parents)
        orig = graph.tensors[t]
        tensors.append(Tensor(copy_of[(t, d)], orig.size, "intermediate", view_of=copy_of[(a, d)], view_offset=off,
                              attrs=with_device(orig.attrs, d, copy_of=orig.id)))
        new_tdev.append(d)

    nodes: list[Node] = []
    ndev: list[int] = []
    by_dev: dict[int, list[int]] = {}
    for m in range(len(graph.nodes)):
        by_dev.setdefault(node_dev[m], []).append(m)
    for d in range(n):
        for m in by_dev.get(d, ()):
            node = graph.nodes[m]
            ren = {graph.tensors[t].id: copy_of[(t, d)] for t in graph.node_inputs[m] if (t, d) in copy_of}
            nodes.append(replace(
                node, inputs=tuple(ren.get(i, i) for i in node.inputs),
                inplace=tuple((o, ren.get(i, i)) for o, i in node.inplace), attrs=with_device(node.attrs, d, **{
                    k: d for k in ("src_device", "dst_device") if node.op == COPY_OP and k in node.attrs})))
            ndev.append(d)
        for node, src in copy_nodes.get(d, ()):
            nodes.append(node)
            ndev.append(src)
    try:
        split = Graph(graph.name, tuple(tensors), tuple(nodes), graph.alignment)
    except GraphError as exc:   # the copies' bytes took a graph within the limits past them: say so
        copies = last_copy - first_copy
        raise GraphError(f"split over {n} devices, graph {graph.name!r} with its {copies} COPY tensor(s) breaks a "
                         f"graph limit: {exc} (give fewer devices)") from None
    return split, ndev, new_tdev, list(range(first_copy, last_copy))


def _covering(graph: Graph, t: int, d: int, wanted: set[tuple[int, int]]) -> tuple[int, int] | None:
    """(the tensor, its offset of ``t``'s bytes in it) highest on ``t``'s view chain that device ``d`` reads too
    (``wanted``), or None where ``t`` is no view or no tensor above it is read there. Such a ``t`` is a view of that
    tensor's copy on ``d``: a view and its root read on a later device were copied as two buffers, the view's bytes
    sent twice and held twice there (and two overlapping views of a root the root's copy holds were each sent).
    A root copied to another device is never written after its producer (a root written through a view is pinned:
    no cut falls inside its accesses), so the view's bytes in the root's copy are the very bytes a copy of it sends."""
    best = None
    j, off = t, 0
    while (parent := graph.tensors[j].view_of) is not None:
        off += graph.tensors[j].view_offset
        j = graph.tensor_index[parent]
        if (j, d) in wanted:
            best = (j, off)
    return best


def device_subgraph(graph: Graph, members: Sequence[int]) -> Graph:
    """The nodes ``members`` alone (for scheduling): tensors produced elsewhere become inputs."""
    keep = set(members)
    touched: set[int] = set()
    for m in members:
        touched.update(graph.node_inputs[m])
        touched.update(graph.node_outputs[m])
    stack = list(touched)
    while stack:
        parent = graph.tensors[stack.pop()].view_of
        if parent is not None:
            p = graph.tensor_index[parent]
            if p not in touched:
                touched.add(p)
                stack.append(p)
    tensors = []
    for t in sorted(touched):
        tensor = graph.tensors[t]
        if tensor.view_of is None and tensor.kind in ("intermediate", "output") and graph.producer[t] not in keep:
            tensor = replace(tensor, kind="input")
        tensors.append(tensor)
    return Graph(graph.name, tuple(tensors), tuple(graph.nodes[m] for m in members), graph.alignment)
