"""Random graphs and plans for comparing ``memplan.verify`` with tests/verify45_oracle.py (session 45), and the
verifier's findings parsed into the oracle's tuples.

``graph_doc(rnd)``: up to 9 nodes with inputs, weights, in-place pairs (over roots and over views), view ops,
SET_ROWS writes into roots of every kind, unproduced views read, output views, zero-size tensors, fusion groups,
nodes without inputs or outputs. ``plan_doc(graph, rnd)``: an issue order that is topological or not, 1-4 streams,
events that are needed, left out, redundant, duplicated, on one stream, onto the node itself, backwards, in
cross-stream cycles, naming unknown nodes, and offsets at a few aligned slots (so roots overlap often), now and
then one byte off, past the arena by one byte, at the arena's very end, or negative, with weights given offsets.
"""

from __future__ import annotations

import random
import re
from typing import Any

SIZES = [0, 1, 100, 256, 256, 512, 513]


def graph_doc(rnd: random.Random, max_nodes: int = 9) -> dict[str, Any]:
    tensors: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    avail: list[str] = []
    roots: list[str] = []

    def tensor(kind: str, size: int, parent: str | None = None) -> str:
        tid = f"t{len(tensors)}"
        t: dict[str, Any] = {"id": tid, "size": size, "kind": kind}
        if parent is not None:
            psize = next(x["size"] for x in tensors if x["id"] == parent)
            off = rnd.randint(0, psize - size) if size <= psize else 0
            t["size"] = min(size, psize)
            t["view_of"], t["view_offset"] = parent, off
        tensors.append(t)
        return tid

    for _ in range(rnd.randint(1, 3)):
        x = tensor("input", rnd.choice(SIZES))
        avail.append(x)
        roots.append(x)
        if rnd.random() < 0.2:
            tensor("output", rnd.choice(SIZES), parent=x)   # an output view of an input
        if rnd.random() < 0.2:
            avail.append(tensor("input", rnd.choice(SIZES), parent=x))   # an input view of it
    if rnd.random() < 0.5:
        w = tensor("weight", 256)
        avail.append(w)
        roots.append(w)
    group, gid = None, 0
    for k in range(rnd.randint(1, max_nodes)):
        shape = rnd.choice(["op", "op", "op", "inplace", "inplace", "inplace_view", "viewop", "setrows",
                            "view_read", "empty"])
        node: dict[str, Any] = {"id": f"n{k}", "op": "OP", "inputs": [], "outputs": []}
        ins = rnd.sample(avail, rnd.randint(1, min(3, len(avail))))
        if shape == "view_read":
            ins[0] = tensor(rnd.choice(["intermediate", "output"]), rnd.choice(SIZES), parent=ins[0])
        if rnd.random() < 0.1:
            ins.append(ins[0])   # one tensor read twice
        node["inputs"] = ins
        if shape == "viewop":
            v = tensor(rnd.choice(["intermediate", "intermediate", "output"]), rnd.choice(SIZES), parent=ins[0])
            node["op"], node["outputs"] = "RESHAPE", [v]
            avail.append(v)
        elif shape == "setrows":
            p = rnd.choice(roots + avail)
            v = tensor("intermediate", rnd.choice(SIZES), parent=p)
            node["op"], node["outputs"] = "SET_ROWS", [v]
            if rnd.random() < 0.5 and p not in ins:
                node["inputs"].append(p)
            avail.append(v)
        elif shape == "empty":
            if rnd.random() < 0.5:
                node["inputs"] = []
                o = tensor(rnd.choice(["intermediate", "output"]), rnd.choice(SIZES))
                node["outputs"] = [o]
                avail.append(o)
                roots.append(o)
        else:
            for _ in range(rnd.choice([1, 1, 2])):
                o = tensor(rnd.choice(["intermediate", "intermediate", "output"]), rnd.choice(SIZES))
                node["outputs"].append(o)
                avail.append(o)
                roots.append(o)
            if shape == "inplace":
                node["inplace"] = {node["outputs"][0]: ins[0]}
            elif shape == "inplace_view":   # in place, and a view output into the in-place input's root too
                v = tensor("intermediate", rnd.choice(SIZES), parent=ins[0])
                node["outputs"].append(v)
                node["inplace"] = {node["outputs"][0]: ins[0]}
        if group is not None and rnd.random() < 0.5:
            pass
        elif rnd.random() < 0.25:
            group, gid = f"g{gid}", gid + 1
        else:
            group = None
        if group is not None:
            node["group"] = group
        nodes.append(node)
    return {"format": "memplan.graph/1", "name": "g45", "alignment": rnd.choice([1, 2, 64, 256]),
            "tensors": tensors, "nodes": nodes}


def _chain(tensors: dict[str, dict[str, Any]], tid: str) -> list[str]:
    out = [tid]
    while tensors[out[-1]].get("view_of") is not None:
        out.append(tensors[out[-1]]["view_of"])
    return out


def plan_doc(graph: dict[str, Any], rnd: random.Random, max_streams: int = 4) -> dict[str, Any]:
    tensors = {t["id"]: t for t in graph["tensors"]}
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    deps = {n["id"]: {producer[v] for t in n["inputs"] for v in _chain(tensors, t) if v in producer}
            for n in graph["nodes"]}
    ids = [n["id"] for n in graph["nodes"]]
    group_of = {n["id"]: n.get("group") for n in graph["nodes"]}
    used = rnd.randint(1, max_streams)
    declared = used + rnd.choice([0, 0, 1])
    names = rnd.sample(range(declared), used)
    stream: dict[str, int] = {}
    for n in ids:   # a group's members on one stream, mostly
        g = group_of[n]
        prev = next((m for m in stream if g is not None and group_of[m] == g), None)
        stream[n] = stream[prev] if prev is not None and rnd.random() < 0.95 else names[rnd.randrange(used)]
    # issue order: a random topological order (groups kept together), or the listed one, or shuffled a little
    order: list[str] = []
    left = list(ids)
    while left:
        ready = [n for n in left if deps[n] <= set(order)]
        n = ready[0] if rnd.random() < 0.3 else rnd.choice(ready)
        g = group_of[n]
        members = [m for m in left if g is not None and group_of[m] == g] if g is not None else [n]
        if g is not None and all(deps[m] <= set(order) | set(members) for m in members):
            for m in members:
                left.remove(m)
                order.append(m)
        else:
            left.remove(n)
            order.append(n)
    if rnd.random() < 0.15 and len(order) > 1:   # not topological (perhaps)
        i, j = rnd.sample(range(len(order)), 2)
        order[i], order[j] = order[j], order[i]
    pos = {n: i for i, n in enumerate(order)}
    evs: list[list[str]] = []
    mode = rnd.choice(["needed", "needed", "serial", "some", "wild"])
    if mode == "serial":   # every node waits for the one issued before it on another stream: issue order is HB
        for a, b in zip(order, order[1:]):
            if stream[a] != stream[b]:
                evs.append([a, b])
    for n in order:
        for d in sorted(deps[n]):
            if stream[d] != stream[n] and not (mode == "some" and rnd.random() < 0.4):
                evs.append([d, n])
    if mode == "wild" or rnd.random() < 0.3:
        for _ in range(rnd.randint(1, 4)):
            kind = rnd.choice(["random", "self", "same", "back", "cycle", "dup", "unknown", "redundant"])
            a, b = rnd.choice(order), rnd.choice(order)
            if kind == "self":
                evs.append([a, a])
            elif kind == "same":
                same = [m for m in order if stream[m] == stream[a] and m != a]
                if same:
                    evs.append(sorted([a, rnd.choice(same)], key=pos.__getitem__))
            elif kind == "back" and pos[a] != pos[b]:
                evs.append(sorted([a, b], key=pos.__getitem__, reverse=True))
            elif kind == "cycle" and stream[a] != stream[b]:
                evs += [[a, b], [b, a]]
            elif kind == "dup" and evs:
                evs.append(list(rnd.choice(evs)))
            elif kind == "unknown":
                evs.append([a, "nope"] if rnd.random() < 0.5 else ["nope", b])
            elif kind == "redundant" and pos[a] < pos[b] and stream[a] != stream[b]:
                evs.append([a, b])
            elif kind == "random":
                evs.append([a, b])
    rnd.shuffle(evs)
    align = graph["alignment"]
    palign = rnd.choice([align, align, align, 1, align * 2])
    step = max(palign, align)
    biggest = max([t["size"] for t in graph["tensors"]] + [1])
    slots = rnd.randint(1, 4)
    unit = max(step, -(-biggest // step) * step)
    offset: dict[str, int | None] = {}
    tight = rnd.random() < 0.6
    if tight:   # first fit, sharing bytes only between roots the schedule orders: safe unless a hazard is planted
        probe = {"streams": declared, "order": [{"node": n, "stream": stream[n]} for n in order],
                 "events": [{"after": a, "before": b} for a, b in evs], "tensors": [], "alignment": palign,
                 "arena_bytes": 0, "lower_bound_bytes": 0}
        share: set[tuple[str, str]] = set()
        from verify45_oracle import findings
        findings(graph, probe, may_share=share)
    placed: list[tuple[int, int, str]] = []
    for t in graph["tensors"]:
        if t.get("view_of") is None:
            if t["kind"] == "weight":
                offset[t["id"]] = None
            elif tight:
                off = 0
                while any(o < off + t["size"] and off < o + s and (t["id"], r) not in share for o, s, r in placed):
                    off += step
                offset[t["id"]] = off
                placed.append((off, t["size"], t["id"]))
            else:
                offset[t["id"]] = rnd.randrange(slots) * unit // rnd.choice([1, 1, 2]) // step * step
    for t in graph["tensors"]:
        if t.get("view_of") is not None:
            ch = _chain(tensors, t["id"])
            r = offset[ch[-1]]
            offset[t["id"]] = None if r is None else r + sum(tensors[v].get("view_offset", 0) for v in ch[:-1])
    arena = max([offset[t["id"]] + t["size"] for t in graph["tensors"] if offset[t["id"]] is not None] + [0])
    entries = [{"id": t["id"], "offset": offset[t["id"]], "size": t["size"]} for t in graph["tensors"]]
    plan = {"format": "memplan.plan/1", "graph": graph["name"], "alignment": palign, "arena_bytes": arena,
            "lower_bound_bytes": 0, "streams": declared,
            "order": [{"node": n, "stream": stream[n]} for n in order],
            "events": [{"after": a, "before": b} for a, b in evs], "tensors": entries, "solver": {}}
    if rnd.random() < 0.25:
        hazard(graph, plan, rnd)
    return plan


def hazard(graph: dict[str, Any], plan: dict[str, Any], rnd: random.Random) -> None:
    """One small edit of the kind a careless tool makes (module docstring)."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    roots = [e for e in plan["tensors"] if tensors[e["id"]].get("view_of") is None and e["offset"] is not None]
    how = rnd.choice(["one_byte", "past_end", "at_end", "negative", "weight", "bound", "view_off", "misalign",
                      "stream_out", "order_twice", "order_unknown", "order_missing", "tensor_twice", "size"])
    if how in ("one_byte", "misalign") and roots:   # a root moved by one byte (views left behind, or not)
        e = rnd.choice(roots)
        e["offset"] += rnd.choice([1, -1])
    elif how == "past_end":
        plan["arena_bytes"] = max(plan["arena_bytes"] - 1, 0)
    elif how == "at_end" and roots:   # a root moved to end exactly at the arena's end, or one byte past it
        e = rnd.choice(roots)
        a = max(plan["alignment"], graph["alignment"])
        e["offset"] = max((plan["arena_bytes"] - e["size"]) // a * a, 0)
        plan["arena_bytes"] = max(plan["arena_bytes"], e["offset"] + e["size"]) + rnd.choice([0, 0, -1])
    elif how == "negative" and roots:
        rnd.choice(roots)["offset"] = -max(plan["alignment"], graph["alignment"])
    elif how == "weight":
        ws = [e for e in plan["tensors"] if e["offset"] is None]
        if ws:
            rnd.choice(ws)["offset"] = 0
    elif how == "bound":
        plan["lower_bound_bytes"] = plan["arena_bytes"] + 1
    elif how == "stream_out":
        rnd.choice(plan["order"])["stream"] = rnd.choice([plan["streams"], -1, 2**40])
    elif how == "order_twice":
        plan["order"].insert(rnd.randrange(len(plan["order"]) + 1), dict(rnd.choice(plan["order"])))
    elif how == "order_unknown":
        plan["order"].append({"node": "ghost", "stream": 0})
    elif how == "order_missing" and len(plan["order"]) > 1:
        del plan["order"][rnd.randrange(len(plan["order"]))]
    elif how == "tensor_twice":
        e = dict(rnd.choice(plan["tensors"]))
        if e["offset"] is not None and rnd.random() < 0.5:
            e["offset"] += max(plan["alignment"], graph["alignment"])
        plan["tensors"].append(e)
    elif how == "size":
        rnd.choice(plan["tensors"])["size"] += 1
    elif how == "view_off":
        views = [e for e in plan["tensors"] if tensors[e["id"]].get("view_of") is not None and e["offset"] is not None]
        if views:
            rnd.choice(views)["offset"] += 1


_Q = r"'((?:[^'\\]|\\.)*)'"


def parsed(findings: list[tuple[int, str]]) -> set[tuple]:
    """The verifier's findings as the oracle's tuples where the message names them (topological order, rule 2
    triples, rule 3 pairs), else ``(rule,)``."""
    out: set[tuple] = set()
    for rule, msg in findings:
        m = re.fullmatch(rf"node {_Q} is issued before {_Q}, which writes {_Q} that it reads", msg)
        if rule == 1 and m:
            out.add((1, "topo", m[1], m[2]))
            continue
        m = re.fullmatch(rf"node {_Q} reads {_Q} but its writer {_Q} does not happen-before it \(missing event\?\)", msg)
        if rule == 2 and m:
            out.add((2, m[1], m[2], m[3]))
            continue
        m = re.match(rf"tensors {_Q} and {_Q} overlap in the arena", msg)
        if rule == 3 and m:
            out.add((3, m[1], m[2]))
            w = re.search(rf": node {_Q}, which accesses {_Q}, does not happen-before node {_Q}, which accesses {_Q}$", msg)
            if w:
                out.add(("3why", w[2], w[1], w[4], w[3]))
                continue
            w = re.search(rf": node {_Q} accesses both \(", msg)
            if w:
                out.add(("3why", m[1], w[1], m[2], w[1]))
                continue
            w = re.search(rf": {_Q} holds an output, kept to the end of the run, and {_Q} is accessed", msg)
            if w:
                out.add(("3why", w[1], "output"))
                continue
            w = re.search(rf": {_Q} is an input, written before the run, and {_Q} is accessed", msg)
            if w or msg.endswith(": both are inputs, written before the run"):
                out.add(("3why", w[1] if w else m[1], "input"))
                if not w:
                    out.add(("3why", m[2], "input"))
                continue
            out.add(("3why?", msg))
            continue
        out.add((rule,))
    return out
