"""Tiny random graphs and possibly unsafe plans (session 54) for comparing ``memplan.verify`` with
tests/verify54_ref.py, drawn through a ``pick(lo, hi)`` function (``random.Random.randint``, or a hypothesis draw).

Graphs: 1-2 inputs (an input view now and then), a weight, 2-6 nodes (``max_nodes``) that produce roots, overwrite
what they read in place (onto a root they produce, onto a view of another root, or while also writing a view into the
input's own root: the last two are not the contract's exception), make views of what they read, write a slot
(``SET_ROWS``) into any root including the weight and inputs, or ``COPY``; sizes 0, 1, 255, 256, 300 at alignment 1
or 256; fusion groups of consecutive nodes. Plans: 1-4 streams (``max_streams``), one or two devices (streams split
between them, a node on its first input's device, a COPY's output on either, now and then a tensor moved or a
device's arena a byte short), a random topological issue order (or one swapped pair), the events a read needs (each
left out now and then) or an event between every two consecutive nodes on different streams (issue order =
happens-before), plus a stray event (backwards, on one stream, onto the node itself); roots laid end to end, or at a
few slots (apart, on top of each other, one byte off), the arena at the end or a byte short, the lower bound at it
or a byte above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Pick = Callable[[int, int], int]
SIZES = [0, 1, 255, 256, 300]


def graph_doc(pick: Pick, max_nodes: int = 6) -> dict[str, Any]:
    align = [1, 256][pick(0, 1)]
    tensors: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    avail: list[str] = []   # readable tensors
    roots: list[str] = []   # roots a SET_ROWS may write into

    def tensor(kind: str, size: int, parent: str | None = None) -> str:
        t: dict[str, Any] = {"id": f"t{len(tensors)}", "size": size, "kind": kind}
        if parent is not None:
            psize = next(x["size"] for x in tensors if x["id"] == parent)
            t["size"] = min(size, psize)
            t["view_of"], t["view_offset"] = parent, pick(0, psize - t["size"])
        tensors.append(t)
        return t["id"]

    for _ in range(pick(1, 2)):
        x = tensor("input", SIZES[pick(0, 4)])
        avail.append(x)
        roots.append(x)
        if pick(0, 4) == 0:
            avail.append(tensor("input", SIZES[pick(0, 4)], parent=x))
    if pick(0, 2) == 0:
        w = tensor("weight", 256)
        avail.append(w)
        roots.append(w)
    group: str | None = None
    for k in range(pick(2, max_nodes)):
        shape = ["op", "op", "inplace", "view", "setrows", "copy", "inplace_view", "inplace_into"][pick(0, 7)]
        ins = [avail[pick(0, len(avail) - 1)]]
        if shape in ("op", "inplace", "inplace_into") and pick(0, 1):
            other = avail[pick(0, len(avail) - 1)]
            if other not in ins:
                ins.append(other)
        node: dict[str, Any] = {"id": f"n{k}", "op": "OP", "inputs": ins, "outputs": []}
        if shape == "view":
            node["op"] = "VIEW"
            node["outputs"] = [tensor(["intermediate", "output"][pick(0, 1)], SIZES[pick(0, 4)], parent=ins[0])]
        elif shape in ("setrows", "inplace_view"):   # a write into any root (in place of an input: not its root)
            node["op"] = "SET_ROWS"
            node["outputs"] = [tensor(["intermediate", "output"][pick(0, 1)], SIZES[pick(0, 4)],
                                      parent=roots[pick(0, len(roots) - 1)])]
            if shape == "inplace_view":
                node["inplace"] = {node["outputs"][0]: ins[0]}
        else:
            size = next(x["size"] for x in tensors if x["id"] == ins[0]) if shape == "copy" else SIZES[pick(0, 4)]
            o = tensor(["intermediate", "intermediate", "output"][pick(0, 2)], size)
            node["outputs"] = [o]
            roots.append(o)
            if shape == "copy":
                node["op"] = "COPY"
            elif shape == "op":
                pass
            else:
                node["inplace"] = {o: ins[0]}
                if shape == "inplace_into":   # and a view output into the input's own root: not in place then
                    node["outputs"].append(tensor("intermediate", SIZES[pick(0, 4)], parent=ins[0]))
        avail.extend(node["outputs"])
        g = pick(0, 4)
        if g == 0:
            group = f"g{k}"
        elif g > 2:
            group = None
        if group is not None:
            node["group"] = group
        nodes.append(node)
    return {"format": "memplan.graph/1", "name": "g54", "alignment": align, "tensors": tensors, "nodes": nodes}


def plan_doc(graph: dict[str, Any], pick: Pick, max_streams: int = 4) -> dict[str, Any]:
    tensors = {t["id"]: t for t in graph["tensors"]}
    ids = [n["id"] for n in graph["nodes"]]

    def chain(t: str) -> list[str]:
        c = [t]
        while tensors[c[-1]].get("view_of") is not None:
            c.append(tensors[c[-1]]["view_of"])
        return c

    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    deps = {n["id"]: {producer[v] for t in n["inputs"] for v in chain(t) if v in producer} for n in graph["nodes"]}
    devices = 1 + (pick(0, 3) == 0)
    streams = pick(devices, max_streams)
    stream_dev = [0 if devices == 1 or s < streams // 2 else 1 for s in range(streams)]
    group_of = {n["id"]: n.get("group") for n in graph["nodes"]}
    # devices: a node on its first input's device (a COPY's output on either), a tensor on its root's producer's
    # (an input root and the weight on device 0), so that most plans keep to the device rules and a few do not
    tdev: dict[str, int] = {t: 0 for t in tensors}
    ndev: dict[str, int] = {}
    for node in graph["nodes"]:
        d = tdev[chain(node["inputs"][0])[-1]] if node["inputs"] else 0
        ndev[node["id"]] = d
        for o in node["outputs"]:
            if tensors[o].get("view_of") is None:
                tdev[o] = pick(0, devices - 1) if node["op"] == "COPY" else d
    for t in tensors:
        tdev[t] = tdev[chain(t)[-1]]
    if devices > 1 and pick(0, 5) == 0:   # a tensor moved to the other device
        t = sorted(tensors)[pick(0, len(tensors) - 1)]
        tdev[t] = 1 - tdev[t]
    on_dev = [[s for s in range(streams) if stream_dev[s] == d] for d in range(devices)]
    stream: dict[str, int] = {}
    for n in ids:
        g = group_of[n]
        mate = next((m for m in stream if g is not None and group_of[m] == g), None)
        mine = on_dev[ndev[n]] if pick(0, 19) else list(range(streams))
        stream[n] = stream[mate] if mate is not None and pick(0, 9) else mine[pick(0, len(mine) - 1)]
        ndev[n] = stream_dev[stream[n]]
    order: list[str] = []
    left = list(ids)
    while left:
        ready = [n for n in left if deps[n] <= set(order)]
        n = ready[pick(0, len(ready) - 1)]
        g = group_of[n]
        members = [m for m in left if g is not None and group_of[m] == g] if g is not None else [n]
        if not all(deps[m] <= set(order) | set(members) for m in members):
            members = [n]
        for m in members:
            left.remove(m)
            order.append(m)
    if pick(0, 9) == 0:
        i, j = pick(0, len(order) - 1), pick(0, len(order) - 1)
        order[i], order[j] = order[j], order[i]
    pos = {n: i for i, n in enumerate(order)}
    events: list[dict[str, str]] = []
    if pick(0, 2) == 0:   # issue order is happens-before
        events += [{"after": a, "before": b} for a, b in zip(order, order[1:]) if stream[a] != stream[b]]
    else:
        for b in order:
            for a in sorted(deps[b]):
                if stream[a] != stream[b] and pos[a] < pos[b] and pick(0, 7):
                    events.append({"after": a, "before": b})
    for _ in range(pick(0, 5) == 0):   # a stray event: any two nodes (backwards, one stream, itself)
        events.append({"after": order[pick(0, len(order) - 1)], "before": order[pick(0, len(order) - 1)]})
    align = graph["alignment"]
    arena_roots = [t for t, td in tensors.items() if td.get("view_of") is None and td["kind"] != "weight"]
    offset: dict[str, int | None] = {}
    apart = pick(0, 2) == 0
    top = [0, 0]
    for r in arena_roots:
        if apart:
            offset[r] = top[tdev[r]]
            top[tdev[r]] += -(-tensors[r]["size"] // align) * align
        else:
            off = [0, 0, 256, 512][pick(0, 3)]
            shift = pick(0, 11 if align > 1 else 3)
            off += 1 if shift == 0 else -1 if shift == 1 and off else 0
            offset[r] = off
    for t, td in tensors.items():   # views at their parent's offset plus theirs (parents come first)
        if chain(t)[-1] not in arena_roots:
            offset[t] = None
        elif td.get("view_of") is not None:
            offset[t] = offset[td["view_of"]] + td["view_offset"]
    dev_arena = [max([offset[r] + tensors[r]["size"] for r in arena_roots if tdev[r] == d] or [0])
                 for d in range(devices)]
    if devices > 1 and pick(0, 7) == 0:   # one device's arena a byte short
        d = pick(0, 1)
        dev_arena[d] = max(dev_arena[d] - 1, 0)
    arena = max(dev_arena)
    if arena and pick(0, 19) == 0:
        arena -= 1
        dev_arena = [min(a, arena) for a in dev_arena]
    doc: dict[str, Any] = {
        "format": "memplan.plan/1", "graph": graph["name"], "alignment": align, "arena_bytes": arena,
        "lower_bound_bytes": arena + (pick(0, 19) == 0), "streams": streams,
        "order": [{"node": n, "stream": stream[n]} for n in order], "events": events,
        "tensors": [{"id": t, "offset": offset[t], "size": td["size"]} for t, td in tensors.items()]}
    if devices > 1:
        doc["devices"] = devices
        doc["device_arena_bytes"] = dev_arena
        for e in doc["order"]:
            e["device"] = ndev[e["node"]]
        for e in doc["tensors"]:
            e["device"] = tdev[e["id"]]
    return doc
