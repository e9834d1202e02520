"""CONTRACT.md's plan document field by field, read from the JSON text a tool wrote (no memplan code).

Why it exists: ``oracle.py`` decides the four safety rules, but a plan can be safe and still not be the
document the contract describes to other tools: a ``true`` where an integer belongs (JSON readers in
other languages do not take it as 1), an offset on a weight, a view whose offset is not its parent's plus
``view_offset``, an ``arena_bytes`` larger than any tensor reaches, a duplicated event, wall-clock
seconds in a file that is meant to be byte-identical. ``problems(graph_doc, plan_text)`` lists every
such departure as a string; empty means the document is what CONTRACT.md and docs/format.md say.
"""

from __future__ import annotations

import json
from typing import Any

PLAN_FORMAT = "memplan.plan/1"
#: the fields CONTRACT.md's example shows, in its order (memplan writes them in this order)
CONTRACT_FIELDS = ["format", "graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order",
                   "events", "tensors", "solver"]
STATUSES = {"OPTIMAL", "FEASIBLE", "HEURISTIC"}


def is_int(v: Any) -> bool:
    """A JSON integer: ``true`` is a bool in Python and must not pass as 1."""
    return isinstance(v, int) and not isinstance(v, bool)


def _roots(graph: dict[str, Any]) -> tuple[dict[str, str], dict[str, int]]:
    """Each tensor's root and its byte offset inside that root (views chain)."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    root, within = {}, {}
    for tid in tensors:
        cur, off = tid, 0
        while tensors[cur].get("view_of") is not None:
            off += tensors[cur].get("view_offset", 0)
            cur = tensors[cur]["view_of"]
        root[tid], within[tid] = cur, off
    return root, within


def problems(graph: dict[str, Any], text: str, *, timings: bool = False) -> list[str]:
    """Every way the plan JSON ``text`` departs from the contract's document for ``graph`` (a graph dict)."""
    out: list[str] = []
    plan = json.loads(text)
    if not isinstance(plan, dict):
        return ["the plan is not a JSON object"]
    missing = [k for k in CONTRACT_FIELDS if k not in plan]
    if missing:
        return [f"missing fields {missing}"]
    if [k for k in plan if k in CONTRACT_FIELDS] != CONTRACT_FIELDS:
        out.append(f"fields not in the contract's order: {list(plan)}")
    if plan["format"] != PLAN_FORMAT:
        out.append(f"format {plan['format']!r}")
    if plan["graph"] != graph["name"]:
        out.append(f"graph {plan['graph']!r} is not the graph's name {graph['name']!r}")
    for key in ("alignment", "arena_bytes", "lower_bound_bytes", "streams"):
        if not is_int(plan[key]):
            out.append(f"{key} {plan[key]!r} is not an integer")
    if out:
        return out
    if plan["alignment"] != graph.get("alignment", 256):
        out.append(f"alignment {plan['alignment']} is not the graph's {graph.get('alignment', 256)}")
    if not 1 <= plan["streams"] <= 1024:
        out.append(f"streams {plan['streams']} outside 1..1024")
    if not 0 <= plan["lower_bound_bytes"] <= plan["arena_bytes"]:
        out.append(f"lower bound {plan['lower_bound_bytes']} not in 0..arena {plan['arena_bytes']}")

    # order: every node once, as {"node", "stream"}, streams in range, a topological order
    nodes = {n["id"]: n for n in graph["nodes"]}
    order = plan["order"]
    pos: dict[str, int] = {}
    stream: dict[str, int] = {}
    for i, e in enumerate(order):
        if not isinstance(e, dict) or set(e) - {"device"} != {"node", "stream"}:
            out.append(f"order entry {e!r} is not {{node, stream}}")
            continue
        if e["node"] not in nodes or e["node"] in pos:
            out.append(f"order entry {e['node']!r} unknown or repeated")
            continue
        if not is_int(e["stream"]) or not 0 <= e["stream"] < plan["streams"]:
            out.append(f"stream {e['stream']!r} of {e['node']} outside 0..streams-1")
        pos[e["node"]], stream[e["node"]] = i, e["stream"]
    if set(pos) != set(nodes):
        out.append(f"order misses nodes {sorted(set(nodes) - set(pos))}")
        return out
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    root, within = _roots(graph)
    by_id = {t["id"]: t for t in graph["tensors"]}
    for n in graph["nodes"]:
        for t in n["inputs"]:
            cur = t
            while cur is not None:   # every writer along the view chain comes first
                w = producer.get(cur)
                if w is not None and w != n["id"] and pos[w] > pos[n["id"]]:
                    out.append(f"{n['id']} is issued before {w}, which writes its input {t}")
                cur = by_id[cur].get("view_of")
    if len(set(stream.values())) > plan["streams"]:
        out.append("more streams used than declared")

    # events: {"after", "before"} of known nodes on different streams, forward, none twice
    seen = set()
    for e in plan["events"]:
        if not isinstance(e, dict) or set(e) != {"after", "before"}:
            out.append(f"event {e!r} is not {{after, before}}")
            continue
        a, b = e["after"], e["before"]
        if a not in pos or b not in pos:
            out.append(f"event {a!r} -> {b!r} names an unknown node")
            continue
        if stream[a] == stream[b]:
            out.append(f"event {a} -> {b} within stream {stream[a]}")
        if pos[a] >= pos[b]:
            out.append(f"event {a} -> {b} waits before it is recorded")
        if (a, b) in seen:
            out.append(f"event {a} -> {b} twice")
        seen.add((a, b))

    # tensors: every graph tensor once, its size, offsets null exactly outside the arena, views follow
    entries: dict[str, dict] = {}
    for e in plan["tensors"]:
        if not isinstance(e, dict) or set(e) - {"device"} != {"id", "offset", "size"}:
            out.append(f"tensor entry {e!r} is not {{id, offset, size}}")
            continue
        if e["id"] in entries or e["id"] not in by_id:
            out.append(f"tensor entry {e['id']!r} unknown or repeated")
            continue
        entries[e["id"]] = e
    if set(entries) != set(by_id):
        out.append(f"tensors missing {sorted(set(by_id) - set(entries))}")
        return out
    devices = plan.get("devices", 1)
    if not is_int(devices) or not 1 <= devices <= 1024 or ("devices" in plan) != (devices > 1):
        out.append(f"devices {devices!r}: an integer in 2..1024 when present, absent for one device")
        return out
    device_of = {e["id"]: e.get("device", 0) for e in entries.values()}
    if devices > 1:
        arenas = plan.get("device_arena_bytes")
        if not isinstance(arenas, list) or len(arenas) != devices or not all(is_int(a) for a in arenas):
            out.append(f"device_arena_bytes {arenas!r} is not one integer per device")
            return out
        for e in list(order) + list(plan["tensors"]):
            if not is_int(e.get("device")) or not 0 <= e["device"] < devices:
                out.append(f"device {e.get('device')!r} of {e.get('node', e.get('id'))} outside 0..devices-1")
                return out
        if max(arenas) != plan["arena_bytes"]:
            out.append(f"arena_bytes {plan['arena_bytes']} is not the largest device arena {max(arenas)}")
    elif "device_arena_bytes" in plan or any("device" in e for e in list(order) + list(plan["tensors"])):
        out.append("device fields in a one-device plan")
    reach = [0] * devices
    for tid, t in by_id.items():
        e = entries[tid]
        if not is_int(e["size"]) or e["size"] != t["size"]:
            out.append(f"{tid}: size {e['size']!r}, the graph's is {t['size']}")
        r = root[tid]
        off = e["offset"]
        if device_of[tid] != device_of[r]:
            out.append(f"view {tid} is on device {device_of[tid]}, its root {r} on {device_of[r]}")
        if by_id[r]["kind"] == "weight":
            if off is not None:
                out.append(f"{tid}: offset {off!r} for a tensor outside the arena (root {r} is a weight)")
            continue
        if not is_int(off):
            out.append(f"{tid}: offset {off!r} is not an integer")
            continue
        if tid != r:
            if is_int(entries[r]["offset"]) and off != entries[r]["offset"] + within[tid]:
                out.append(f"view {tid}: offset {off}, its root's {entries[r]['offset']} + {within[tid]} expected")
            continue
        if off < 0 or off % plan["alignment"]:
            out.append(f"{tid}: offset {off} negative or not a multiple of {plan['alignment']}")
        arena = plan["device_arena_bytes"][device_of[tid]] if devices > 1 else plan["arena_bytes"]
        if off + t["size"] > arena:
            out.append(f"{tid}: ends at {off + t['size']}, past its arena {arena}")
        reach[device_of[tid]] = max(reach[device_of[tid]], off + t["size"])
    # docs/format.md: arena_bytes is "the largest offset + size"; device_arena_bytes each device's
    if devices > 1 and reach != plan["device_arena_bytes"]:
        out.append(f"device_arena_bytes {plan['device_arena_bytes']}, the largest offset + size per device {reach}")
    if max(reach) != plan["arena_bytes"]:
        out.append(f"arena_bytes {plan['arena_bytes']} is not the largest offset + size, {max(reach)}")

    # solver: an object naming the solver and its status; wall-clock seconds only when asked for
    s = plan["solver"]
    if not isinstance(s, dict) or not isinstance(s.get("name"), str) or s.get("status") not in STATUSES:
        out.append(f"solver block {s!r} lacks a name or a known status")
    elif ("seconds" in json.dumps(s)) != timings:
        out.append(f"solver block {'lacks' if timings else 'has'} wall-clock seconds")
    return out
