"""An oracle for "is this plan safe?", written from /work/shared/CONTRACT.md and docs/format.md
("Multi-device plans") alone, without memplan.verify's code: a checker that shares the verifier's code
shares its bugs. Slow on purpose (explicit happens-before sets, every pair of roots): for small plans only.

``findings(graph, doc)`` takes the graph the plan refers to and the plan as its JSON document (a dict, as
``Plan.to_dict`` writes it) and returns one line per broken rule; an empty list means the plan is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memplan import Graph

START, END = "<start>", "<end>"   # the virtual accesses: the host's write of inputs, the read of outputs


def findings(graph: Graph, doc: Mapping[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the contract for ``graph`` (docs above); [] when it is safe."""
    bad: list[str] = []
    shape = _shape(graph, doc, bad)
    if shape is None:
        return bad
    order, stream, ndev, tinfo = shape
    pos = {n: i for i, n in enumerate(order)}
    hb = _happens_before(order, stream, doc["events"], bad)
    if hb is None:
        return bad
    _rule1(graph, order, stream, pos, doc["events"], bad)
    _rule2(graph, hb, bad)
    _rule3(graph, hb, tinfo, bad)
    _rule4(graph, doc, tinfo, bad)
    _devices(graph, doc, ndev, tinfo, bad)
    return bad


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _root(graph: Graph, tid: str) -> str:
    t = graph.tensor(tid)
    while t.view_of is not None:
        t = graph.tensor(t.view_of)
    return t.id


def _abs_offset(graph: Graph, tid: str, root_offset: int) -> int:
    """A view's offset from its root's: the sum of the chain's view_offsets."""
    off, t = 0, graph.tensor(tid)
    while t.view_of is not None:
        off += t.view_offset
        t = graph.tensor(t.view_of)
    return root_offset + off


def _shape(graph: Graph, doc: Mapping[str, Any], bad: list[str]):
    """(issue order, node -> stream, node -> device, tensor -> (offset, size, device)) when the document
    names every node and tensor once; None (with findings) when it cannot even be read as a plan of graph."""
    nodes = [n.id for n in graph.nodes]
    order = [e["node"] for e in doc["order"]]
    if sorted(order) != sorted(nodes):
        bad.append(f"order does not list every node exactly once: {sorted(set(order) ^ set(nodes))}")
        return None
    streams = doc["streams"]
    stream = {e["node"]: e["stream"] for e in doc["order"]}
    for n, s in stream.items():
        if not _is_int(s) or not 0 <= s < streams:
            bad.append(f"node {n!r}: stream {s!r} outside 0..{streams - 1}")
            return None
    ndevices = doc.get("devices", 1)
    ndev = {e["node"]: e.get("device", 0) for e in doc["order"]}
    tids = [e["id"] for e in doc["tensors"]]
    gids = [t.id for t in graph.tensors]
    if sorted(tids) != sorted(gids):
        bad.append(f"tensors does not list every tensor exactly once: {sorted(set(tids) ^ set(gids))}")
        return None
    tinfo = {e["id"]: (e["offset"], e["size"], e.get("device", 0)) for e in doc["tensors"]}
    for d in list(ndev.values()) + [v[2] for v in tinfo.values()]:
        if not _is_int(d) or not 0 <= d < ndevices:
            bad.append(f"device {d!r} outside 0..{ndevices - 1}")
            return None
    for e in doc["events"]:
        if e["after"] not in stream or e["before"] not in stream:
            bad.append(f"event {e['after']!r} -> {e['before']!r} names an unknown node")
            return None
    return order, stream, ndev, tinfo


def _happens_before(order, stream, events, bad) -> dict[str, set[str]] | None:
    """node -> the nodes it happens before (strictly), from stream order and events; None on a cycle (a deadlock:
    some stream waits on an event that is only recorded after something that waits for that stream)."""
    succ: dict[str, set[str]] = {n: set() for n in order}
    last: dict[int, str] = {}
    for n in order:
        s = stream[n]
        if s in last:
            succ[last[s]].add(n)
        last[s] = n
    for e in events:
        succ[e["after"]].add(e["before"])
    # transitive closure by DFS from every node; a node reaching itself is a cycle
    hb: dict[str, set[str]] = {}
    for n in order:
        seen: set[str] = set()
        stack = list(succ[n])
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            stack.extend(succ[m])
        if n in seen:
            bad.append(f"deadlock: node {n!r} waits (through streams and events) on itself")
            return None
        hb[n] = seen
    return hb


def _before(hb: dict[str, set[str]], a: str, b: str) -> bool:
    """a HB b, with the virtual start before and end after every real node."""
    if a == START:
        return b != START
    if b == END:
        return a != END
    if a == END or b == START:
        return False
    return b in hb[a]


def _writers(graph: Graph, tid: str) -> set[str]:
    """The producers of ``tid`` and of every tensor above it on its view chain. The contract's rule 2 names
    t's producer and its root's; a view between them that a node wrote holds bytes t reads too ("every read
    sees its data"), so its writer counts as well."""
    producer = {o: n.id for n in graph.nodes for o in n.outputs}
    out, t = set(), graph.tensor(tid)
    while True:
        if t.id in producer:
            out.add(producer[t.id])
        if t.view_of is None:
            return out
        t = graph.tensor(t.view_of)


def _rule1(graph, order, stream, pos, events, bad) -> None:
    for n in graph.nodes:
        for t in n.inputs:
            for w in _writers(graph, t) - {n.id}:
                if pos[w] > pos[n.id]:
                    bad.append(f"rule 1: {n.id!r} reads {t!r} but is issued before its writer {w!r}")
    for e in events:
        a, b = e["after"], e["before"]
        if stream[a] == stream[b]:
            bad.append(f"rule 1: event {a!r} -> {b!r} joins a stream to itself")
        if pos[a] >= pos[b]:
            bad.append(f"rule 1: event {a!r} -> {b!r} points backward in order")
    groups: dict[str, list[str]] = {}
    for n in graph.nodes:
        if n.group is not None:
            groups.setdefault(n.group, []).append(n.id)
    for g, members in groups.items():
        if len({stream[m] for m in members}) > 1:
            bad.append(f"rule 1: group {g!r} spans streams")
            continue
        s = stream[members[0]]
        on_s = [m for m in order if stream[m] == s]
        i = on_s.index(members[0])
        if on_s[i:i + len(members)] != members:
            bad.append(f"rule 1: group {g!r} is not consecutive in listed order on stream {s}")


def _rule2(graph, hb, bad) -> None:
    for n in graph.nodes:
        for t in n.inputs:
            for w in _writers(graph, t):
                if w != n.id and not _before(hb, w, n.id):
                    bad.append(f"rule 2: {n.id!r} reads {t!r} without waiting for its writer {w!r}")


def _accesses(graph: Graph) -> dict[str, set[str]]:
    acc: dict[str, set[str]] = {t.id: set() for t in graph.tensors if t.view_of is None}
    for t in graph.tensors:
        if t.view_of is None and t.kind == "input":
            acc[t.id].add(START)
        if t.kind == "output":   # an output view too: its bytes, its root's, must survive the run
            acc[_root(graph, t.id)].add(END)
    for n in graph.nodes:
        for t in (*n.inputs, *n.outputs):
            acc[_root(graph, t)].add(n.id)
    return acc


def _rule3(graph, hb, tinfo, bad) -> None:
    acc = _accesses(graph)
    roots = [t.id for t in graph.tensors
             if t.view_of is None and t.kind != "weight" and tinfo[t.id][0] is not None and t.size > 0]
    # (node, in root, out root) of every in-place pair where the node produces out's root ("the producer of out's
    # root") and writes nothing else into in's root: a second write there (a view output) could land on out's bytes
    exempt = set()
    for n in graph.nodes:
        writes = {_root(graph, o) for o in n.outputs}
        for out, inp in n.inplace:
            if _root(graph, out) in n.outputs and _root(graph, inp) not in writes:
                exempt.add((n.id, _root(graph, inp), _root(graph, out)))
    for i, a in enumerate(roots):
        oa, sa, da = tinfo[a]
        for b in roots[i + 1:]:
            ob, sb, db = tinfo[b]
            if da != db or not (oa < ob + sb and ob < oa + sa):
                continue
            if not (_all_before(hb, acc, a, b, exempt) or _all_before(hb, acc, b, a, exempt)):
                bad.append(f"rule 3: roots {a!r} and {b!r} overlap on device {da} while both may be live")


def _all_before(hb, acc, a: str, b: str, exempt) -> bool:
    for x in acc[a]:
        for y in acc[b]:
            if _before(hb, x, y):
                continue
            if x == y and (x, a, b) in exempt:
                continue
            return False
    return True


def _rule4(graph, doc, tinfo, bad) -> None:
    alignment = doc["alignment"]
    arena = doc["arena_bytes"]
    dab = doc.get("device_arena_bytes")
    for t in graph.tensors:
        off, size, dev = tinfo[t.id]
        if size != t.size:
            bad.append(f"tensor {t.id!r}: size {size} but the graph says {t.size}")
        root = graph.tensor(_root(graph, t.id))
        if root.kind == "weight":
            if off is not None:
                bad.append(f"tensor {t.id!r} lives outside the arena (weight) but has offset {off}")
            continue
        if not _is_int(off):
            bad.append(f"tensor {t.id!r}: arena offset {off!r}")
            continue
        if t.view_of is not None:
            want = _abs_offset(graph, t.id, tinfo[root.id][0]) if _is_int(tinfo[root.id][0]) else None
            if off != want:
                bad.append(f"view {t.id!r}: offset {off} but its root's offset + view offsets is {want}")
            continue
        if off < 0:
            bad.append(f"rule 4: root {t.id!r} at negative offset {off}")
        if off % alignment or off % graph.alignment:
            bad.append(f"rule 4: root {t.id!r} offset {off} not a multiple of {alignment} / {graph.alignment}")
        if off + t.size > arena:
            bad.append(f"rule 4: root {t.id!r} ends at {off + t.size} past arena_bytes {arena}")
        if dab is not None and (not 0 <= dev < len(dab) or off + t.size > dab[dev]):
            bad.append(f"rule 4: root {t.id!r} past device {dev}'s arena")
    if dab is not None:
        if len(dab) != doc.get("devices", 1):
            bad.append("device_arena_bytes: one entry per device")
        for d, v in enumerate(dab):
            if not 0 <= v <= arena:
                bad.append(f"device_arena_bytes[{d}] = {v} outside 0..arena_bytes")


def _devices(graph, doc, ndev, tinfo, bad) -> None:
    """Each stream on one device; a view on its root's device; a node other than COPY touches only its own
    device's tensors; a COPY (one input, one output) runs on its source's device (a push)."""
    on: dict[int, set[int]] = {}
    for e in doc["order"]:
        on.setdefault(e["stream"], set()).add(e.get("device", 0))
    for s, ds in on.items():
        if len(ds) > 1:
            bad.append(f"stream {s} runs on devices {sorted(ds)}")
    for t in graph.tensors:
        r = _root(graph, t.id)
        if tinfo[t.id][2] != tinfo[r][2]:
            bad.append(f"view {t.id!r} on device {tinfo[t.id][2]}, its root {r!r} on {tinfo[r][2]}")
    for n in graph.nodes:
        d = ndev[n.id]
        if n.op == "COPY":
            if len(n.inputs) != 1 or len(n.outputs) != 1:
                bad.append(f"COPY {n.id!r}: not one input and one output")
                continue
            src = tinfo[_root(graph, n.inputs[0])][2]
            if src != d:
                bad.append(f"COPY {n.id!r} on device {d}, its source {n.inputs[0]!r} on device {src}")
            continue
        for t in (*n.inputs, *n.outputs):
            td = tinfo[_root(graph, t)][2]
            if td != d:
                bad.append(f"node {n.id!r} on device {d} touches {t!r} on device {td}")
