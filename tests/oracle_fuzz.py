"""Strategies and plan corruptions for the oracle comparison (tests/test_oracle.py)."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import strategies as st

from memplan import Graph, GraphBuilder


@st.composite
def dags(draw, max_nodes: int = 10) -> Graph:
    """Random DAGs in the shapes that stress reuse: wide fan-outs, deep chains, diamonds (joins of two
    recent tensors), views (plain and node-produced, chained), in-place chains, zero-size tensors,
    several inputs and outputs, weights, and view-writes into earlier roots."""
    b = GraphBuilder("dag", alignment=draw(st.sampled_from([1, 16, 256])))
    size = st.one_of(st.sampled_from([0, 256, 512, 1024]), st.integers(0, 700))
    avail: list[tuple[str, int]] = []
    roots: list[tuple[str, int]] = []
    for i in range(draw(st.integers(1, 3))):
        s = draw(size)
        avail.append((b.input(f"x{i}", s), s))
        roots.append(avail[-1])
    if draw(st.booleans()):
        avail.append((b.weight("w", 512), 512))
    k = 0
    for n in range(draw(st.integers(1, max_nodes))):
        shape = draw(st.sampled_from(["chain", "chain", "fan", "join", "view", "inplace", "setrows", "viewop"]))
        last = avail[-1]
        if shape == "chain":
            ins = [last]
        elif shape == "fan":   # read an early tensor again: fan-out
            ins = [draw(st.sampled_from(avail[: max(1, len(avail) // 2)]))]
        elif shape == "join":
            ins = draw(st.lists(st.sampled_from(avail[-4:]), min_size=2, max_size=3))
        else:
            ins = [draw(st.sampled_from(avail))]
        nid = f"n{n}"
        if shape == "view" and ins[0][1] > 0:   # an unproduced view, read by this node
            pid, ps = ins[0]
            vs = draw(st.integers(0, ps))
            vid = b.view(f"v{k}", pid, vs, draw(st.integers(0, ps - vs)),
                         kind=draw(st.sampled_from(["intermediate"] * 5 + ["output"])))
            k += 1
            ins = [(vid, vs)]
        if shape == "setrows" and roots:   # write a slice of an existing root (KV cache style)
            pid, ps = draw(st.sampled_from(roots))
            vs = draw(st.integers(0, ps))
            out = b.view(f"v{k}", pid, vs, ps - vs)
            k += 1
            b.node(nid, "SET_ROWS", [t for t, _ in ins], [out], cost=1.0)
            avail.append((out, vs))
            continue
        if shape == "viewop":   # a node producing a reshape view of its input
            pid, ps = ins[0]
            out = b.view(f"v{k}", pid, ps)
            k += 1
            b.node(nid, "RESHAPE", [pid], [out], cost=0.0)
            avail.append((out, ps))
            continue
        outs = []
        for _ in range(draw(st.integers(1, 2))):
            s = draw(size)
            outs.append((b.tensor(f"t{k}", s, draw(st.sampled_from(["intermediate"] * 4 + ["output"]))), s))
            k += 1
        inplace = {outs[0][0]: ins[0][0]} if shape == "inplace" else None
        b.node(nid, "OP", [t for t, _ in ins], [t for t, _ in outs], inplace=inplace,
               cost=float(draw(st.integers(0, 9))))
        avail.extend(outs)
        roots.extend(outs)
    return b.build()


def _roots(graph: dict[str, Any]) -> list[str]:
    return [t["id"] for t in graph["tensors"] if t.get("view_of") is None and t["kind"] != "weight"]


def _set_root_offset(graph: dict[str, Any], plan: dict[str, Any], root: str, off: int, views: bool = True) -> None:
    """Move ``root`` to ``off``, and (``views``) its views along with it."""
    offs = {e["id"]: e for e in plan["tensors"]}
    delta = off - offs[root]["offset"]
    parent = {t["id"]: t.get("view_of") for t in graph["tensors"]}

    def root_of(t: str) -> str:
        while parent[t] is not None:
            t = parent[t]
        return t

    for t in graph["tensors"]:
        if t["id"] == root or (views and root_of(t["id"]) == root):
            if offs[t["id"]]["offset"] is not None:
                offs[t["id"]]["offset"] += delta


MUTATIONS = ("onto_root", "onto_root_views_stay", "drop_event", "swap_order", "move_stream", "shrink_arena",
             "misalign", "bump_alignment", "backward_event", "event_same_stream", "swap_offsets", "negative",
             "view_offset", "add_event", "null_offset", "node_device", "tensor_device", "device_arena",
             "align_unit", "dup_event", "move_event", "arena_exact", "near_2_63",
             # session 44: the same happens-before on other streams or stream ids, one byte off,
             # a size shrunk, two nodes' streams swapped
             "explode_streams", "permute_streams", "shift_one_byte", "shrink_size", "swap_two_streams")


def corrupt(graph: dict[str, Any], plan: dict[str, Any], how: str, rnd: random.Random) -> dict[str, Any] | None:
    """A copy of ``plan`` corrupted one way (``how``, one of MUTATIONS), or None where it does not apply.
    The result may still be safe (moving a tensor onto one it never meets is fine): the oracle judges."""
    p = copy.deepcopy(plan)
    roots = [r for r in _roots(graph) if any(e["id"] == r and e["offset"] is not None for e in p["tensors"])]
    offs = {e["id"]: e for e in p["tensors"]}
    if how in ("onto_root", "onto_root_views_stay", "swap_offsets") and len(roots) >= 2:
        a, b = rnd.sample(roots, 2)
        if how == "swap_offsets":
            oa, ob = offs[a]["offset"], offs[b]["offset"]
            _set_root_offset(graph, p, a, ob)
            _set_root_offset(graph, p, b, oa)
        else:
            _set_root_offset(graph, p, a, offs[b]["offset"], views=how == "onto_root")
        p["arena_bytes"] = max([p["arena_bytes"]] + [e["offset"] + e["size"] for e in p["tensors"]
                                                      if e["offset"] is not None])
        if "device_arena_bytes" in p:
            p["device_arena_bytes"] = [p["arena_bytes"]] * len(p["device_arena_bytes"])
        return p
    if how == "drop_event" and p["events"]:
        del p["events"][rnd.randrange(len(p["events"]))]
        return p
    if how == "swap_order" and len(p["order"]) >= 2:
        i = rnd.randrange(len(p["order"]) - 1)
        p["order"][i], p["order"][i + 1] = p["order"][i + 1], p["order"][i]
        return p
    if how == "move_stream" and p["streams"] >= 2:
        e = rnd.choice(p["order"])
        e["stream"] = (e["stream"] + rnd.randrange(1, p["streams"])) % p["streams"]
        return p
    if how == "shrink_arena" and p["arena_bytes"] > 0:
        p["arena_bytes"] -= rnd.choice([1, p["arena_bytes"]])
        if "device_arena_bytes" in p:
            p["device_arena_bytes"] = [min(a, p["arena_bytes"]) for a in p["device_arena_bytes"]]
        return p
    if how == "misalign" and roots:
        r = rnd.choice(roots)
        _set_root_offset(graph, p, r, offs[r]["offset"] + rnd.choice([1, 8, 128]))
        p["arena_bytes"] += 256
        if "device_arena_bytes" in p:
            p["device_arena_bytes"] = [a + 256 for a in p["device_arena_bytes"]]
        return p
    if how == "bump_alignment":
        p["alignment"] = rnd.choice([p["alignment"] * 2, 3, 1])
        return p
    if how in ("backward_event", "event_same_stream", "add_event") and len(p["order"]) >= 2:
        i, j = sorted(rnd.sample(range(len(p["order"])), 2))
        a, b = p["order"][i]["node"], p["order"][j]["node"]
        if how == "backward_event":
            a, b = b, a
        if how == "event_same_stream":
            same = [(x["node"], y["node"]) for k, x in enumerate(p["order"]) for y in p["order"][k + 1:]
                    if x["stream"] == y["stream"]]
            if not same:
                return None
            a, b = rnd.choice(same)
        p["events"].append({"after": a, "before": b})
        return p
    if how == "negative" and roots:
        r = rnd.choice(roots)
        _set_root_offset(graph, p, r, -rnd.choice([256, p["alignment"]]))
        return p
    if how == "view_offset":
        views = [e for e in p["tensors"] if e["offset"] is not None and e["id"] not in roots]
        if not views:
            return None
        rnd.choice(views)["offset"] += rnd.choice([-1, 1, 256])
        return p
    if how == "align_unit" and roots:   # one alignment unit up or down (views along): a neighbour's edge, or the arena's
        r = rnd.choice(roots)
        unit = max(p["alignment"], graph.get("alignment", 256))
        _set_root_offset(graph, p, r, offs[r]["offset"] + rnd.choice([-unit, unit]))
        _fit_arena(p)
        return p
    if how == "dup_event" and p["events"]:
        p["events"].insert(rnd.randrange(len(p["events"]) + 1), dict(rnd.choice(p["events"])))
        return p
    if how == "move_event" and p["events"]:   # one end to another node: forward, backward, same stream, anything
        e = rnd.choice(p["events"])
        e[rnd.choice(["after", "before"])] = rnd.choice(p["order"])["node"]
        return p
    if how == "arena_exact":   # arena_bytes (and each device's) exactly the largest end: the tightest legal arena
        _fit_arena(p, exact=True)
        p["lower_bound_bytes"] = min(p["lower_bound_bytes"], p["arena_bytes"])
        return p
    if how == "near_2_63":   # every offset shifted to just below 2**63: the verdict must not change
        ends = [e["offset"] + e["size"] for e in p["tensors"] if e["offset"] is not None]
        unit = max(p["alignment"], graph.get("alignment", 256))
        shift = ((1 << 63) - 1 - max(ends + [p["arena_bytes"]])) // unit * unit
        for e in p["tensors"]:
            if e["offset"] is not None:
                e["offset"] += shift
        p["arena_bytes"] += shift
        if "device_arena_bytes" in p:
            p["device_arena_bytes"] = [a + shift for a in p["device_arena_bytes"]]
        return p
    if how == "explode_streams" and 0 < len(p["order"]) <= 1024 and p.get("devices", 1) == 1:   # (1024: MAX_STREAMS)
        # every node on a stream of its own (ids shuffled), each old stream's order restated by events: the
        # happens-before is unchanged, and so is the verdict (but where a fusion group is now split over streams),
        # while the clocks, the waits and the stream count all differ
        last: dict[Any, str] = {}
        chain = []
        ids = list(range(len(p["order"])))
        rnd.shuffle(ids)
        for e, s in zip(p["order"], ids):
            if e["stream"] in last:
                chain.append({"after": last[e["stream"]], "before": e["node"]})
            last[e["stream"]] = e["node"]
            e["stream"] = s
        p["events"] = chain + p["events"]
        p["streams"] = len(p["order"])
        return p
    if how == "permute_streams" and p["streams"] >= 2:   # stream ids renamed: the same plan
        perm = list(range(p["streams"]))
        rnd.shuffle(perm)
        for e in p["order"]:
            if type(e["stream"]) is int and 0 <= e["stream"] < len(perm):   # (a stray id, from an earlier edit, stays)
                e["stream"] = perm[e["stream"]]
        return p
    if how == "shift_one_byte" and roots:   # a root (views along) one byte up or down, the arena fitted to it
        r = rnd.choice(roots)
        _set_root_offset(graph, p, r, offs[r]["offset"] + rnd.choice([-1, 1]))
        _fit_arena(p)
        return p
    if how == "shrink_size":   # a tensor one byte (or all its bytes) smaller in the plan than in the graph
        sized = [e for e in p["tensors"] if e["size"] > 0]
        if not sized:
            return None
        e = rnd.choice(sized)
        e["size"] -= rnd.choice([1, e["size"]])
        return p
    if how == "swap_two_streams" and p["streams"] >= 2:   # two nodes of different streams trade streams
        pairs = [(x, y) for k, x in enumerate(p["order"]) for y in p["order"][k + 1:] if x["stream"] != y["stream"]
                 and x.get("device", 0) == y.get("device", 0)]
        if not pairs:
            return None
        x, y = rnd.choice(pairs)
        x["stream"], y["stream"] = y["stream"], x["stream"]
        return p
    if how == "null_offset" and roots:
        offs[rnd.choice(roots)]["offset"] = None
        return p
    if p.get("devices", 1) > 1 and p["order"]:
        if how == "node_device":
            e = rnd.choice(p["order"])
            e["device"] = (e["device"] + 1) % p["devices"]
            return p
        if how == "tensor_device":
            e = rnd.choice(p["tensors"])
            e["device"] = (e["device"] + 1) % p["devices"]
            return p
        if how == "device_arena":
            d = rnd.randrange(p["devices"])
            p["device_arena_bytes"][d] = max(0, p["device_arena_bytes"][d] - rnd.choice([1, 256]))
            return p
    return None


def _fit_arena(p: dict[str, Any], exact: bool = False) -> None:
    """``arena_bytes`` (and each device's) raised to the largest ``offset + size`` of its tensors, or (``exact``) set
    to it."""
    dev = [e.get("device", 0) for e in p["tensors"]]
    ends: dict[int, int] = {}
    for e, d in zip(p["tensors"], dev):
        if e["offset"] is not None:
            ends[d] = max(ends.get(d, 0), e["offset"] + e["size"])
    top = max(ends.values(), default=0)
    p["arena_bytes"] = top if exact else max(p["arena_bytes"], top)
    if "device_arena_bytes" in p:
        p["device_arena_bytes"] = [ends.get(d, 0) if exact else max(a, ends.get(d, 0))
                                   for d, a in enumerate(p["device_arena_bytes"])]


def random_placement(graph: dict[str, Any], plan: dict[str, Any], rnd: random.Random,
                     keep_events: bool = False) -> dict[str, Any]:
    """``plan`` with a random subset of its events (plus a few random forward ones; ``keep_events``: all of
    them, none added) and every root at a random aligned slot of a small arena, views following their roots:
    mostly unsafe plans, some safe, with partial overlaps of every kind, for the verifier and the oracle to
    judge alike."""
    q = copy.deepcopy(plan)
    q["events"] = [e for e in q["events"] if keep_events or rnd.random() < 0.7]
    order = q["order"]
    for _ in range(0 if keep_events else rnd.randrange(3)):
        if len(order) >= 2:
            i, j = sorted(rnd.sample(range(len(order)), 2))
            if order[i]["stream"] != order[j]["stream"]:
                q["events"].append({"after": order[i]["node"], "before": order[j]["node"]})
    tensors = {t["id"]: t for t in graph["tensors"]}
    align = max(q["alignment"], graph.get("alignment", 256))
    biggest = max([t["size"] for t in graph["tensors"]] + [1])
    slots = rnd.randrange(1, 5)
    step = max(align, -(-biggest // slots // align) * align)
    offset: dict[str, int | None] = {}

    def place(t: str) -> int | None:
        if t not in offset:
            parent = tensors[t].get("view_of")
            if parent is None:
                offset[t] = None if tensors[t]["kind"] == "weight" else rnd.randrange(slots) * step
            else:
                p = place(parent)
                offset[t] = None if p is None else p + tensors[t].get("view_offset", 0)
        return offset[t]

    for e in q["tensors"]:
        e["offset"] = place(e["id"])
    q["arena_bytes"] = max([e["offset"] + e["size"] for e in q["tensors"] if e["offset"] is not None] + [0])
    if rnd.random() < 0.8:
        q["lower_bound_bytes"] = 0
    if "device_arena_bytes" in q:
        q["device_arena_bytes"] = [q["arena_bytes"]] * q["devices"]
    return q


def multistream_graph(rnd: random.Random, max_nodes: int = 30) -> dict[str, Any]:
    """A random graph (JSON dict) in the shapes the verifier's shortcuts lean on: roots read by many nodes
    (fans, which land on several streams), views read and produced (RESHAPE), in-place chains, SET_ROWS
    writes into views of earlier roots and of weights, COPY nodes, outputs and inputs, and fusion groups
    (runs of consecutive nodes)."""
    tensors: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    size_of: dict[str, int] = {}
    roots: list[str] = []    # arena roots, for SET_ROWS targets
    avail: list[str] = []    # tensors a node may read

    def tensor(kind: str, size: int, **view: Any) -> str:
        tid = f"t{len(tensors)}"
        tensors.append({"id": tid, "size": size, "kind": kind, **view})
        size_of[tid] = size
        return tid

    for _ in range(rnd.randint(1, 3)):
        roots.append(tensor("input", rnd.choice([0, 256, 512, 1024])))
        avail.append(roots[-1])
    weights = [tensor("weight", 1024)] if rnd.random() < 0.5 else []
    avail += weights
    n_nodes, groups = rnd.randint(3, max_nodes), 0
    while len(nodes) < n_nodes:
        run = rnd.choice([2, 3]) if rnd.random() < 0.15 else 1
        group = None if run == 1 else f"g{groups}"
        groups += run > 1
        for _ in range(run):
            shape = rnd.choice(["chain", "fan", "fan", "join", "view", "inplace", "inplace", "setrows", "viewop",
                                "copy"])
            if shape == "chain":
                ins = [avail[-1]]
            elif shape == "fan":   # an early tensor read again: readers on several streams
                ins = [rnd.choice(avail[: max(1, len(avail) // 2)])]
            elif shape == "join":
                ins = rnd.sample(avail[-5:], min(len(avail[-5:]), rnd.randint(2, 3)))
            else:
                ins = [rnd.choice(avail)]
            node: dict[str, Any] = {"id": f"n{len(nodes)}", "op": "OP", "inputs": ins, "outputs": [], "cost": 1.0}
            if group is not None:
                node["group"] = group
            if shape == "setrows":   # a KV-cache style write into a slice of an earlier root or a weight
                parent = rnd.choice(roots + weights)
                vo = rnd.randint(0, size_of[parent])
                node["op"], node["outputs"] = "SET_ROWS", [tensor("intermediate", size_of[parent] - vo,
                                                                  view_of=parent, view_offset=vo)]
                avail.append(node["outputs"][0])
            elif shape == "viewop":   # a node producing a reshape view of its input
                node["op"], node["outputs"] = "RESHAPE", [tensor("intermediate", size_of[ins[0]],
                                                                 view_of=ins[0], view_offset=0)]
                avail.append(node["outputs"][0])
            else:
                if shape == "view" and size_of[ins[0]] > 0:   # an unproduced view, read by this node
                    vo = rnd.randint(0, size_of[ins[0]])
                    node["inputs"] = [tensor(rnd.choice(["intermediate"] * 4 + ["output"]),
                                             rnd.randint(0, size_of[ins[0]] - vo), view_of=ins[0], view_offset=vo)]
                for _ in range(rnd.choice([1, 1, 2])):
                    node["outputs"].append(tensor(rnd.choice(["intermediate"] * 4 + ["output"]),
                                                  rnd.choice([0, 256, 512, 768, 1024])))
                if shape == "inplace":
                    node["inplace"] = {node["outputs"][0]: node["inputs"][0]}
                if shape == "copy":
                    node["op"] = "COPY"
                avail += node["outputs"]
                roots += node["outputs"]
            node["inputs"] = list(dict.fromkeys(node["inputs"]))
            nodes.append(node)
    return {"format": "memplan.graph/1", "name": "ms", "alignment": rnd.choice([1, 256]), "tensors": tensors,
            "nodes": nodes}


def data_deps(graph: dict[str, Any]) -> dict[str, set[str]]:
    """Each node's data dependencies: the producers of what it reads or writes and of those tensors' view parents
    (a view's writer and its root's producer both come first)."""
    parent = {t["id"]: t.get("view_of") for t in graph["tensors"]}
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    deps: dict[str, set[str]] = {}
    for n in graph["nodes"]:
        d = deps[n["id"]] = set()
        for t in n["inputs"] + n["outputs"]:
            while t is not None:
                if producer.get(t, n["id"]) != n["id"]:
                    d.add(producer[t])
                t = parent[t]
    return deps


def multistream_plan(graph: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """A plan for ``graph`` on up to 8 streams: a random list schedule issuing each fusion group as a unit on
    one stream (mostly), other streams' nodes (rarely its own stream's) issued between its members; most cross-stream data
    dependencies get an event, plus random forward events (from and to mid-group members too); roots at
    random slots of a small arena (heavy reuse), views with them. Mostly unsafe, many safe."""
    deps = data_deps(graph)
    ids = [n["id"] for n in graph["nodes"]]
    group_of = {n["id"]: n.get("group") for n in graph["nodes"]}
    members: dict[str, list[str]] = {}
    for nid in ids:
        if group_of[nid] is not None:
            members.setdefault(group_of[nid], []).append(nid)
    streams = rnd.choice([1, 2, 3, 4, 6, 8])
    stream = {nid: rnd.randrange(streams) for nid in ids}
    for ms in members.values():
        if rnd.random() < 0.9:
            for m in ms:
                stream[m] = stream[ms[0]]
    order: list[str] = []
    issued: set[str] = set()
    left = list(ids)

    def issue(nid: str) -> None:
        order.append(nid)
        issued.add(nid)
        left.remove(nid)

    while left:
        ready = [n for n in left if deps[n] <= issued and (
            group_of[n] is None or (members[group_of[n]][0] == n
                                    and set().union(*(deps[m] for m in members[group_of[n]])) - set(
                                        members[group_of[n]]) <= issued))]
        if not ready:   # a group member a non-member waits on: issue by data alone (the group breaks)
            ready = [n for n in left if deps[n] <= issued]
        n = rnd.choice(ready)
        if group_of[n] is None or members[group_of[n]][0] != n:
            issue(n)
            continue
        for m in [m for m in members[group_of[n]] if m in left]:
            issue(m)
            own = rnd.random() < 0.1   # now and then one on the group's own stream: it breaks the group
            others = [x for x in left if deps[x] <= issued and group_of[x] is None and (own or stream[x] != stream[m])]
            if others and rnd.random() < 0.4:
                issue(rnd.choice(others))
    events = [(d, n) for n in order for d in sorted(deps[n]) if stream[d] != stream[n] and rnd.random() < 0.85]
    for _ in range(rnd.randrange(2 * len(order))):
        i, j = sorted(rnd.sample(range(len(order)), 2)) if len(order) > 1 else (0, 0)
        if stream[order[i]] != stream[order[j]]:
            events.append((order[i], order[j]))
    plan = {"format": "memplan.plan/1", "graph": graph["name"], "alignment": 256 if graph["alignment"] == 256 else 1,
            "arena_bytes": 0, "lower_bound_bytes": 0, "streams": streams,
            "order": [{"node": n, "stream": stream[n]} for n in order],
            "events": [{"after": a, "before": b} for a, b in dict.fromkeys(events)],
            "tensors": [{"id": t["id"], "offset": 0, "size": t["size"]} for t in graph["tensors"]], "solver": {}}
    return random_placement(graph, plan, rnd, keep_events=True)
