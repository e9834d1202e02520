"""Graphs and plans for judging the verifier where the other fuzzers reach least (session 30).

``alias_graphs``: small graphs (at most 8 nodes) rich in aliasing: in-place chains (an output written over
an input that was itself written in place), in-place through views, view ops and SET_ROWS writes, graph
outputs that are views of inputs (an output aliasing an input), COPY nodes, zero-size tensors, nodes with
no inputs or no outputs, fusion groups, and alignments from 1 to 4096.

``hand_plans``: plans for them written by hand, as another tool might: an issue order that is a random
topological order (not the listed one), streams that are declared but never used, events with several
waits on one node, redundant events (implied, duplicated), events left out now and then, a plan alignment
apart from the graph's, roots at random aligned slots of a small arena or all apart, and optionally every
offset shifted up near 2**63. Mostly safe or nearly so, so both false accepts and false rejects show.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import strategies as st

SIZES = [0, 0, 1, 100, 256, 256, 512, 1000]


@st.composite
def alias_graphs(draw, max_nodes: int = 8) -> dict[str, Any]:
    """A graph document (JSON dict) in the aliasing shapes the module docstring lists."""
    tensors: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    size_of: dict[str, int] = {}
    kind_of: dict[str, str] = {}
    avail: list[str] = []          # tensors a node may read
    roots: list[str] = []          # arena roots (SET_ROWS targets)
    inplaced: list[str] = []       # outputs written in place (the next in-place link reads one)

    def tensor(kind: str, size: int, **view: Any) -> str:
        tid = f"t{len(tensors)}"
        tensors.append({"id": tid, "size": size, "kind": kind, **view})
        size_of[tid], kind_of[tid] = size, kind
        return tid

    for _ in range(draw(st.integers(1, 2))):
        x = tensor("input", draw(st.sampled_from(SIZES[2:])))
        avail.append(x)
        roots.append(x)
        if draw(st.integers(0, 3)) == 0:   # a graph output aliasing the input (an output view of it)
            off = draw(st.integers(0, size_of[x]))
            tensor("output", draw(st.integers(0, size_of[x] - off)), view_of=x, view_offset=off)
    if draw(st.booleans()):
        avail.append(tensor("weight", 512))
    group, gid = None, 0
    for k in range(draw(st.integers(1, max_nodes))):
        shape = draw(st.sampled_from(["op", "op", "inplace", "inplace", "chain", "viewop", "setrows", "copy",
                                      "empty", "view_read"]))
        node: dict[str, Any] = {"id": f"n{k}", "op": "OP", "inputs": [], "outputs": []}
        if draw(st.integers(0, 3)) == 0:
            node["cost"] = float(draw(st.integers(0, 5)))
        ins = draw(st.lists(st.sampled_from(avail), min_size=1, max_size=3, unique=True))
        if shape == "chain" and inplaced:
            ins = [inplaced[-1]] + [t for t in ins if t != inplaced[-1]][:1]
        if shape == "view_read" and size_of[ins[0]] > 0:   # read through an unproduced view
            p = ins[0]
            off = draw(st.integers(0, size_of[p]))
            ins[0] = tensor(draw(st.sampled_from(["intermediate", "intermediate", "output"])),
                            draw(st.integers(0, size_of[p] - off)), view_of=p, view_offset=off)
        node["inputs"] = ins
        if shape == "viewop":   # a node producing a view of what it reads (reshape)
            p = ins[0]
            node["op"] = "RESHAPE"
            off = draw(st.integers(0, size_of[p]))
            v = tensor(draw(st.sampled_from(["intermediate", "intermediate", "output"])),
                       draw(st.integers(0, size_of[p] - off)), view_of=p, view_offset=off)
            node["outputs"] = [v]
            avail.append(v)
        elif shape == "setrows":   # a write into a slice of an earlier root (its producer may read it or not)
            p = draw(st.sampled_from(roots))
            off = draw(st.integers(0, size_of[p]))
            v = tensor("intermediate", draw(st.integers(0, size_of[p] - off)), view_of=p, view_offset=off)
            node["op"], node["outputs"] = "SET_ROWS", [v]
            if draw(st.booleans()) and p not in node["inputs"]:
                node["inputs"].append(p)
            avail.append(v)
        elif shape == "empty":   # no outputs, or no inputs
            if draw(st.booleans()):
                node["inputs"] = []
                o = tensor(draw(st.sampled_from(["intermediate", "output"])), draw(st.sampled_from(SIZES)))
                node["outputs"] = [o]
                avail.append(o)
                roots.append(o)
        else:
            for _ in range(draw(st.sampled_from([1, 1, 2]))):
                o = tensor(draw(st.sampled_from(["intermediate", "intermediate", "output"])),
                           draw(st.sampled_from(SIZES)))
                node["outputs"].append(o)
                avail.append(o)
                roots.append(o)
            if shape in ("inplace", "chain"):
                pairs = {node["outputs"][0]: ins[0]}
                if len(node["outputs"]) > 1 and draw(st.booleans()):
                    pairs[node["outputs"][1]] = draw(st.sampled_from(ins))
                node["inplace"] = pairs
                inplaced.append(node["outputs"][0])
            if shape == "copy":
                node["op"] = "COPY"
        if group is not None and draw(st.booleans()):
            pass
        elif draw(st.integers(0, 3)) == 0:
            group, gid = f"g{gid}", gid + 1
        else:
            group = None
        if group is not None:
            node["group"] = group
        nodes.append(node)
    return {"format": "memplan.graph/1", "name": "alias", "alignment": draw(st.sampled_from([1, 16, 256, 4096])),
            "tensors": tensors, "nodes": nodes}


def _chain(tensors: dict[str, dict[str, Any]], t: str) -> list[str]:
    out = [t]
    while tensors[out[-1]].get("view_of") is not None:
        out.append(tensors[out[-1]]["view_of"])
    return out


def data_deps(graph: dict[str, Any]) -> dict[str, set[str]]:
    """node -> the nodes writing anything along the view chains of what it reads (rule 1's dependencies)."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    return {n["id"]: {producer[v] for t in n["inputs"] for v in _chain(tensors, t) if v in producer} - {n["id"]}
            for n in graph["nodes"]}


def hand_plan(graph: dict[str, Any], rnd: random.Random, *, keep_groups: bool = True,
              events: str = "needed") -> dict[str, Any]:
    """A plan document for ``graph`` written by hand (see the module docstring); ``events``: "needed" (an event
    per cross-stream dependency, plus redundant ones), "some" (a few left out), "random" (plus random ones)."""
    deps = data_deps(graph)
    ids = [n["id"] for n in graph["nodes"]]
    group_of = {n["id"]: n.get("group") for n in graph["nodes"]}
    units: list[list[str]] = []
    for nid in ids:
        if keep_groups and group_of[nid] is not None and units and group_of[units[-1][-1]] == group_of[nid]:
            units[-1].append(nid)
        else:
            units.append([nid])
    used = rnd.randint(1, 4)
    declared = used + rnd.choice([0, 0, 0, 1, 3])          # streams that are never used
    names = rnd.sample(range(declared), used)              # the used ones are any of the declared ids
    stream = {}
    for u in units:
        s = names[rnd.randrange(used)]
        for m in u:
            stream[m] = s
    order: list[str] = []
    done: set[str] = set()
    left = list(range(len(units)))
    while left:
        ready = [u for u in left if all(d in done or d in units[u] for m in units[u] for d in deps[m])]
        u = rnd.choice(ready)
        left.remove(u)
        order.extend(units[u])
        done.update(units[u])
    pos = {n: i for i, n in enumerate(order)}
    evs: list[tuple[str, str]] = []
    for n in order:
        for d in sorted(deps[n]):
            if stream[d] != stream[n] and not (events == "some" and rnd.random() < 0.3):
                evs.append((d, n))
                if rnd.random() < 0.3:   # a redundant wait: an earlier node of d's stream, or the same again
                    earlier = [m for m in order[:pos[d]] if stream[m] == stream[d]]
                    evs.append((rnd.choice(earlier), n) if earlier else (d, n))
    extra = rnd.randrange(4) if events == "random" else rnd.randrange(2)
    for _ in range(extra):
        if len(order) > 1:
            i, j = sorted(rnd.sample(range(len(order)), 2))
            if stream[order[i]] != stream[order[j]]:
                evs.append((order[i], order[j]))
    rnd.shuffle(evs)   # events in any order: their meaning does not depend on it
    align = graph.get("alignment", 256)
    plan = {"format": "memplan.plan/1", "graph": graph["name"],
            "alignment": rnd.choice([align, align, 1, max(1, align // 2)]),
            "arena_bytes": 0, "lower_bound_bytes": 0, "streams": declared,
            "order": [{"node": n, "stream": stream[n]} for n in order],
            "events": [{"after": a, "before": b} for a, b in evs],
            "tensors": [{"id": t["id"], "offset": 0, "size": t["size"]} for t in graph["tensors"]], "solver": {}}
    place(graph, plan, rnd)
    return plan


def place(graph: dict[str, Any], plan: dict[str, Any], rnd: random.Random, apart: bool | None = None) -> None:
    """Every root of ``plan`` at a random aligned slot of a small arena (``apart``: each at bytes of its own),
    views with their roots; arena_bytes the end of the last."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    align = max(plan["alignment"], graph.get("alignment", 256))
    if apart is None:
        apart = rnd.random() < 0.25
    biggest = max([t["size"] for t in graph["tensors"]] + [1])
    slots = rnd.randrange(1, 4)
    step = max(align, -(-biggest // slots // align) * align)
    offset: dict[str, int | None] = {}
    top = 0
    for t in graph["tensors"]:   # roots first
        if t.get("view_of") is None:
            if t["kind"] == "weight":
                offset[t["id"]] = None
            elif apart:
                offset[t["id"]] = top
                top += -(-max(t["size"], 1) // align) * align
            else:
                offset[t["id"]] = rnd.randrange(slots) * step + rnd.choice([0, 0, align])
    for t in graph["tensors"]:
        if t.get("view_of") is not None:
            ch = _chain(tensors, t["id"])
            r = offset[ch[-1]]
            offset[t["id"]] = None if r is None else r + sum(tensors[v].get("view_offset", 0) for v in ch[:-1])
    for e in plan["tensors"]:
        e["offset"] = offset[e["id"]]
    plan["arena_bytes"] = max([e["offset"] + e["size"] for e in plan["tensors"] if e["offset"] is not None] + [0])


def shifted(plan: dict[str, Any], graph_alignment: int) -> dict[str, Any] | None:
    """``plan`` with every arena offset raised by the same aligned amount, so that the arena ends just below
    2**63: the same plan as far as safety goes (None when it cannot be raised that far)."""
    q = copy.deepcopy(plan)
    align = max(q["alignment"], graph_alignment)
    room = (1 << 63) - 1 - q["arena_bytes"]
    delta = room // align * align
    if delta <= 0:
        return None
    for e in q["tensors"]:
        if e["offset"] is not None:
            e["offset"] += delta
    q["arena_bytes"] += delta
    return q


def on_devices(graph: dict[str, Any], plan: dict[str, Any], rnd: random.Random, devices: int) -> dict[str, Any]:
    """``plan`` spread over ``devices`` devices by hand: each stream on a random device, each root on the device
    of its producer (an input: of its first reader; now and then another one), views on their root's, one arena
    per device sized to its roots. Nodes other than COPY that touch another device's tensor make it unsafe, and a COPY
    that reads one (a COPY runs on its source's device, session 41)."""
    q = copy.deepcopy(plan)
    tensors = {t["id"]: t for t in graph["tensors"]}
    dev_of_stream = {s: rnd.randrange(devices) for s in range(q["streams"])}
    node_dev = {e["node"]: dev_of_stream[e["stream"]] for e in q["order"]}
    first_touch: dict[str, int] = {}
    for e in q["order"]:
        n = next(n for n in graph["nodes"] if n["id"] == e["node"])
        for t in n["outputs"] + n["inputs"]:
            root = _chain(tensors, t)[-1]
            if n["op"] != "COPY" or t in n["outputs"]:
                first_touch.setdefault(root, node_dev[e["node"]])
    tdev = {}
    for t in graph["tensors"]:
        root = _chain(tensors, t["id"])[-1]
        if root not in tdev:
            tdev[root] = rnd.randrange(devices) if rnd.random() < 0.1 else first_touch.get(root, 0)
        tdev[t["id"]] = tdev[root]
    q["devices"] = devices
    for e in q["order"]:
        e["device"] = node_dev[e["node"]]
    for e in q["tensors"]:
        e["device"] = tdev[e["id"]]
    place(graph, q, rnd)
    ends = [0] * devices
    for e in q["tensors"]:
        if e["offset"] is not None:
            ends[e["device"]] = max(ends[e["device"]], e["offset"] + e["size"])
    q["device_arena_bytes"] = ends
    q["arena_bytes"] = max(ends)
    return q
