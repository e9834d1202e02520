"""A reference checker for plan safety (session 54), written from /work/shared/CONTRACT.md and docs/format.md
("memplan's documented interpretations", "Multi-device plans") for tiny plans, to judge ``memplan.verify`` by.

Why another one: the verifier's answers must not depend on how a plan was made, and the checks it is compared with
should share as little as possible with it. This one reads only the two JSON documents (no ``memplan`` import) and
takes the slowest, most literal road: happens-before is answered by a depth-first search over the explicit edges
(each node to the next node of its stream, and each forward event), every access of every pair of overlapping
roots is compared, and nothing is summarised per stream or per view. ``reasons(graph, plan)`` lists why a plan is
unsafe, one string per broken rule instance (rule number first); an empty list means safe.

The documented interpretations it follows (where the contract's words are short): every writer on a read tensor's
view chain must happen-before the reader (rules 1 and 2); an ``output`` view keeps its root to the end; the in-place
exception needs ``n`` to produce ``out``'s root and to write nothing else into ``in``'s root; a wait issued before its
record adds no edge; a zero-size root overlaps nothing; with ``devices`` > 1 rule 3 is per device and each stream,
tensor and non-COPY node keeps to one device (a COPY runs on its source's device).
"""

from __future__ import annotations

from typing import Any

from reference import END, HB, START, closure  # (the oracles' shared happens-before; no memplan import either)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def reasons(graph: dict[str, Any], plan: dict[str, Any], fused: bool = False) -> list[str]:
    """Why ``plan`` is unsafe for ``graph`` (both as JSON documents); [] when it is safe. ``fused``: also for a
    backend that runs each fusion group of several nodes as one kernel at its last member's place (``memplan.verify``'s
    ``fused_groups``): unless an event after a member other than the last is waited on by a node issued no later than
    the last member (then the group runs node by node), no two arena roots the group touches share a byte."""
    out: list[str] = []
    tensors = {t["id"]: t for t in graph["tensors"]}
    nodes = {n["id"]: n for n in graph["nodes"]}

    def chain(t: str) -> list[str]:
        c = [t]
        while tensors[c[-1]].get("view_of") is not None:
            c.append(tensors[c[-1]]["view_of"])
        return c

    def root(t: str) -> str:
        return chain(t)[-1]

    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}

    def writers(t: str) -> list[str]:
        return [producer[v] for v in chain(t) if v in producer]

    # ---- rule 1: the order is a permutation on declared streams, topological; events; groups -----------------------
    pos: dict[str, int] = {}
    stream: dict[str, int] = {}
    for p, e in enumerate(plan["order"]):
        n, s = e["node"], e["stream"]
        if n not in nodes or n in pos:
            out.append(f"1 order entry {n!r} unknown or repeated")
            continue
        if not (_is_int(s) and 0 <= s < plan["streams"]):
            out.append(f"1 stream {s!r} of {n!r} undeclared")
        pos[n], stream[n] = p, s
    if len(pos) != len(nodes):
        out.append("1 order incomplete")   # (no happens-before: rules 2 and 3 are not asked; rule 4 is, round 70)
        _placement(graph, plan, out, tensors, nodes, root)
        return out
    for n in nodes.values():
        for t in n["inputs"]:
            for w in writers(t):
                if pos[w] > pos[n["id"]]:
                    out.append(f"1 {n['id']} issued before {w}, which writes {t}")
    edges: dict[str, set[str]] = {n: set() for n in nodes}
    by_pos = sorted(nodes, key=pos.__getitem__)
    prev: dict[int, str] = {}
    for n in by_pos:
        if stream[n] in prev:
            edges[prev[stream[n]]].add(n)
        prev[stream[n]] = n
    for e in plan["events"]:
        a, b = e["after"], e["before"]
        if a not in nodes or b not in nodes:
            out.append(f"1 event {a!r}->{b!r} names an unknown node")
            continue
        if stream[a] == stream[b]:
            out.append(f"1 event {a}->{b} on one stream")
        if pos[a] >= pos[b]:
            out.append(f"1 event {a}->{b} waited before recorded")
            continue   # (orders nothing)
        edges[a].add(b)
    groups: dict[str, list[str]] = {}
    for n in graph["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for g, members in groups.items():
        ss = {stream[m] for m in members}
        on = [m for m in by_pos if stream[m] == stream[members[0]]]
        k = on.index(members[0])
        if len(ss) > 1 or on[k:k + len(members)] != members:
            out.append(f"1 group {g} not one consecutive piece")

    hb = HB(closure(edges))   # every node a happens-before, by a depth-first search from each (``reference.closure``)

    # ---- rule 2 ---------------------------------------------------------------------------------------------------
    for n in graph["nodes"]:
        for t in n["inputs"]:
            for w in writers(t):
                if not hb(w, n["id"]):
                    out.append(f"2 {n['id']} reads {t} before {w} finished writing it")

    entry, tdev, repeated = _placement(graph, plan, out, tensors, nodes, root)

    # ---- rule 3 -----------------------------------------------------------------------------------------------------
    D = plan.get("devices", 1)
    roots = [t for t, td in tensors.items() if td.get("view_of") is None and td["kind"] != "weight"
             and _is_int(entry.get(t)) and t not in repeated and (D == 1 or 0 <= tdev.get(t, 0) < D)]
    acc: dict[str, set[str]] = {r: set() for r in roots}
    for r in roots:
        if tensors[r]["kind"] == "input":
            acc[r].add(START)
    for t, td in tensors.items():
        if td["kind"] == "output" and root(t) in acc:
            acc[root(t)].add(END)
    for n in graph["nodes"]:
        for t in n["inputs"] + n["outputs"]:
            if root(t) in acc:
                acc[root(t)].add(n["id"])

    def exempt(n: str, a: str, b: str) -> bool:
        node = nodes[n]
        if producer.get(b) != n or any(root(o) == a for o in node["outputs"]):
            return False
        return any(root(i) == a and root(o) == b for o, i in (node.get("inplace") or {}).items())

    def ordered(a: str, b: str) -> bool:
        return all(hb(x, y) or (x == y and x in nodes and exempt(x, a, b)) for x in acc[a] for y in acc[b])

    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            oa, ob, sa, sb = entry[a], entry[b], tensors[a]["size"], tensors[b]["size"]
            if sa == 0 or sb == 0 or tdev.get(a, 0) != tdev.get(b, 0):
                continue
            if oa < ob + sb and ob < oa + sa and not (ordered(a, b) or ordered(b, a)):
                out.append(f"3 {a} and {b} share bytes unordered")
    if fused:
        for g, members in groups.items():
            last = max(members, key=pos.__getitem__)
            if len(members) < 2 or any(e["after"] in members and e["after"] != last and e["before"] in pos
                                       and pos[e["before"]] <= pos[last] for e in plan["events"]):
                continue
            touched = sorted({root(t) for m in members for t in nodes[m]["inputs"] + nodes[m]["outputs"]
                              if root(t) in acc and tensors[root(t)]["size"] > 0})
            for i, a in enumerate(touched):
                for b in touched[i + 1:]:
                    oa, ob, sa, sb = entry[a], entry[b], tensors[a]["size"], tensors[b]["size"]
                    if tdev.get(a, 0) == tdev.get(b, 0) and oa < ob + sb and ob < oa + sa:
                        out.append(f"3 {a} and {b} share bytes in fused group {g}")
    return out


def _placement(graph: dict[str, Any], plan: dict[str, Any], out: list[str], tensors: dict, nodes: dict, root):
    """The device checks and rule 4 (appended to ``out``); each tensor's offset, device, and the tensors listed twice.
    Round 70: rule 3 is then asked of the roots with one offset on a device in range, however misplaced."""
    # ---- devices ----------------------------------------------------------------------------------------------------
    D = plan.get("devices", 1)
    ndev = {e["node"]: e.get("device", 0) for e in plan["order"]}
    tdev = {e["id"]: e.get("device", 0) for e in plan["tensors"] if e["id"] in tensors}
    if D > 1:
        arenas = plan["device_arena_bytes"]
        if len(arenas) != D or any(not 0 <= a <= plan["arena_bytes"] for a in arenas):
            out.append("4 device_arena_bytes malformed")
        seen_dev: dict[int, int] = {}
        for e in plan["order"]:
            if not 0 <= ndev[e["node"]] < D:
                out.append(f"1 node {e['node']} on no device")
            if seen_dev.setdefault(e["stream"], ndev[e["node"]]) != ndev[e["node"]]:
                out.append(f"1 stream {e['stream']} on two devices")
        for t in tensors:
            if not 0 <= tdev.get(t, 0) < D:
                out.append(f"4 tensor {t} on no device")
            if tdev.get(t, 0) != tdev.get(root(t), 0):
                out.append(f"4 view {t} off its root's device")
        for n in graph["nodes"]:
            if n["id"] not in ndev:
                continue   # (not in the order: rule 1 names it; where it runs is unknown)
            if n["op"] == "COPY":
                touched = n["inputs"]
            else:
                touched = n["inputs"] + n["outputs"]
            for t in touched:
                if tdev.get(root(t), 0) != ndev[n["id"]]:
                    out.append(f"4 node {n['id']} touches {t} on another device")

    # ---- rule 4 -----------------------------------------------------------------------------------------------------
    entry: dict[str, Any] = {}
    repeated: set[str] = set()
    for e in plan["tensors"]:
        t = e["id"]
        if t not in tensors or t in entry:
            out.append(f"4 tensor entry {t!r} unknown or repeated")
            repeated.add(t)
            continue
        entry[t] = e["offset"]
        if e["size"] != tensors[t]["size"]:
            out.append(f"4 size of {t}")
    bound_false = plan["lower_bound_bytes"] > plan["arena_bytes"]
    for t, td in tensors.items():
        if t not in entry:
            out.append(f"4 {t} not placed")
            continue
        off = entry[t]
        if tensors[root(t)]["kind"] == "weight":
            if off is not None:
                out.append(f"4 weight memory {t} has an offset")
            continue
        if off is None:
            out.append(f"4 arena tensor {t} has no offset")
            continue
        if td.get("view_of") is not None:
            p = entry.get(td["view_of"])
            if p is not None and off != p + td.get("view_offset", 0):
                out.append(f"4 view {t} off its parent")
            continue
        if off < 0 or off % graph.get("alignment", 256) or off % plan["alignment"]:
            out.append(f"4 {t} misaligned")
        if off + td["size"] > plan["arena_bytes"]:
            out.append(f"4 {t} past the arena")
        if D > 1 and 0 <= tdev.get(t, 0) < len(plan["device_arena_bytes"]) \
                and off + td["size"] > plan["device_arena_bytes"][tdev[t]]:
            out.append(f"4 {t} past its device's arena")
    if bound_false:   # (a false bound is no misplacement: rule 3 is still asked, session 65)
        out.append("4 bound above arena")
    return entry, tdev, repeated
