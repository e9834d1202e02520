# ruff: noqa: B023  (every lambda here runs inside the loop that made it, under ``guarded``)
"""Session 59 (hostile59): the verifier on adversarial plans, scale hostility, index methods given non-integers.

Why: a verifier that accepts an unsafe plan is the worst defect memplan can have, and rounds 57-58 fed it point
mutants of a few plans only. This driver takes valid plans of varied graphs (the bundled examples and random DAGs
with views, view writers, in-place pairs and fusion groups, planned on 1-4 streams by memplan and by random stream
assignments), mutates each plan document as a buggy or malicious producer would, and compares ``memplan.verify``
with ``oracle_unsafe`` below: an independent brute-force reading of CONTRACT.md's four rules (happens-before as a
transitive closure over bitsets, every pair of overlapping roots x every pair of their accesses). A plan the verifier
accepts that the oracle calls unsafe, or refuses that the oracle calls safe, is a defect; so is any exception other
than ``memplan.errors``. A sample of the mutants (and every type mutant) also goes through ``memplan verify`` in
process (exit 0 or 2 as the oracle says, one error line). Families:

  verifier  seeded mutations of plan documents, oracle-checked (``--mutants N`` per base plan)
  scale     a 200,000-node chain, a node with 100,000 inputs, --streams 50,000, a plan declaring 50,000 streams with a
            node on each, 1 MB names, deeply nested JSON, each in a child process under a timeout, its peak RSS read
  index     HappensBefore / Graph / BufferProblem index methods given non-integers, negative and past-the-end indices

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/hostile_s59.py [--quick] [--only verifier,scale,index]``.
Files go under one TemporaryDirectory, removed at the end. Results: ``hostile_s59.txt``.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("hostile_s57", os.path.join(HERE, "hostile_s57.py"))
s57 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(s57)
Recorder, guarded, cli_case = s57.Recorder, s57.guarded, s57.cli_case


# ---------------------------------------------------------------- the oracle (CONTRACT.md, word by word)

def _is_int(v) -> bool:
    return type(v) is int


def oracle_unsafe(gdoc: dict, pdoc: dict) -> str | None:
    """Why ``pdoc`` is not a safe ``memplan.plan/1`` plan of the graph document ``gdoc`` (one device), or None.

    Written from CONTRACT.md alone, brute force (small plans only): HB is the transitive closure of same-stream
    issue order and events; rule 3 compares every access of one root with every access of the other."""
    if pdoc.get("format") != "memplan.plan/1":
        return "format"
    if pdoc.get("graph", "") not in ("", gdoc["name"]):   # ("" or none: a plan that names no graph)
        return "plan of another graph"
    for key in ("alignment", "arena_bytes", "lower_bound_bytes", "streams"):
        if not _is_int(pdoc.get(key)):
            return f"{key} not an int"
    if any(pdoc[k] >= 2**63 for k in ("alignment", "arena_bytes", "lower_bound_bytes")) or pdoc["streams"] > 1024:
        return "past docs/format.md's limits (int64, 1,024 streams)"
    if pdoc["alignment"] < 1 or pdoc["streams"] < 1 or pdoc["arena_bytes"] < 0 or pdoc["lower_bound_bytes"] < 0:
        return "field out of range"
    if pdoc["lower_bound_bytes"] > pdoc["arena_bytes"]:
        return "lower bound above the arena (a false bound)"
    D = pdoc.get("devices", 1)
    if not _is_int(D) or not 1 <= D <= 1024:
        return "devices"
    arenas = pdoc.get("device_arena_bytes", [pdoc["arena_bytes"]]) if D > 1 else [pdoc["arena_bytes"]]
    if not isinstance(arenas, list) or len(arenas) != D or not all(_is_int(a) and 0 <= a <= pdoc["arena_bytes"]
                                                                     for a in arenas):
        return "device_arena_bytes"
    tens = {t["id"]: t for t in gdoc["tensors"]}
    nodes = gdoc["nodes"]
    nid = [n["id"] for n in nodes]
    galign = gdoc.get("alignment", 256)
    # ---- order
    order = pdoc.get("order")
    if not isinstance(order, list) or len(order) != len(nodes):
        return "order length"
    pos, stream = {}, {}
    for p, e in enumerate(order):
        if not isinstance(e, dict) or not isinstance(e.get("node"), str) or not _is_int(e.get("stream")):
            return f"order[{p}] malformed"
        if e["node"] in pos or e["node"] not in set(nid):
            return f"order[{p}] repeated/unknown"
        if D > 1 and not (_is_int(e.get("device")) and 0 <= e["device"] < D):
            return f"order[{p}] device"
        if not 0 <= e["stream"] < pdoc["streams"]:
            return f"order[{p}] stream out of range"
        pos[e["node"]], stream[e["node"]] = p, e["stream"]
    N = len(nodes)
    ndev = {e["node"]: e.get("device", 0) if D > 1 else 0 for e in order}
    sdev: dict[int, int] = {}
    for e in order:
        if sdev.setdefault(e["stream"], ndev[e["node"]]) != ndev[e["node"]]:
            return f"stream {e['stream']} on two devices"
    by_pos = sorted(nid, key=pos.__getitem__)
    ix = {n: i for i, n in enumerate(by_pos)}    # nodes renumbered by issue position
    # ---- events
    events = pdoc.get("events")
    if not isinstance(events, list):
        return "events"
    preds = [0] * N   # bitset of direct predecessors, by position
    last_on: dict[int, int] = {}
    for n in by_pos:
        s = stream[n]
        if s in last_on:
            preds[ix[n]] |= 1 << last_on[s]
        last_on[s] = ix[n]
    for e in events:
        if not isinstance(e, dict) or not isinstance(e.get("after"), str) or not isinstance(e.get("before"), str):
            return "event malformed"
        a, b = e["after"], e["before"]
        if a not in pos or b not in pos:
            return f"event {a}->{b} unknown node"
        if stream[a] == stream[b]:
            return f"event {a}->{b} on one stream"
        if pos[a] >= pos[b]:
            return f"event {a}->{b} not forward"
        preds[ix[b]] |= 1 << ix[a]
    reach = [0] * N   # reach[i]: bitset of nodes (by position) that happen-before node i
    for i in range(N):
        r, p = 0, preds[i]
        while p:
            low = p & -p
            j = low.bit_length() - 1
            r |= reach[j] | low
            p ^= low
        reach[i] = r

    def HB(a, b):   # a, b: node ids, or "<start>" / "<end>"
        if a == "<start>":
            return b != "<start>"
        if b == "<end>":
            return a != "<end>"
        if a == "<end>" or b == "<start>":
            return False
        return bool(reach[ix[b]] >> ix[a] & 1)

    # ---- graph facts
    def chain(t):
        out = [t]
        while tens[out[-1]].get("view_of") is not None:
            out.append(tens[out[-1]]["view_of"])
        return out

    producer = {}
    for n in nodes:
        for o in n["outputs"]:
            producer[o] = n["id"]
    root = {t: chain(t)[-1] for t in tens}
    # rule 1: topological (data dependencies: the producers along each input's view chain)
    for n in nodes:
        for t in n["inputs"]:
            for w in chain(t):
                if w in producer and producer[w] != n["id"] and pos[producer[w]] > pos[n["id"]]:
                    return f"order not topological: {n['id']} before {producer[w]}"
    # groups: consecutive on one stream, in listed order
    groups: dict[str, list[str]] = {}
    for n in nodes:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for g, mem in groups.items():
        if len({stream[m] for m in mem}) != 1:
            return f"group {g} on several streams"
        ps = [pos[m] for m in mem]
        if ps != sorted(ps):
            return f"group {g} out of order"
        s = stream[mem[0]]
        between = [n for n in by_pos if stream[n] == s and ps[0] <= pos[n] <= ps[-1]]
        if between != mem:
            return f"group {g} interrupted"
    # rule 2: producer of t and of t's root HB the reader (and the writers between: the verifier's stricter reading,
    # counted apart as "view-chain" so a difference there is told from a plain miss)
    for n in nodes:
        for t in n["inputs"]:
            for w in (t, root[t]):
                if w in producer and producer[w] != n["id"] and not HB(producer[w], n["id"]):
                    return f"rule 2: {n['id']} reads {t}, writer {producer[w]} not HB"
            for w in chain(t)[1:-1]:
                if w in producer and producer[w] != n["id"] and not HB(producer[w], n["id"]):
                    return f"rule 2 (view-chain): {n['id']} reads {t}, writer {producer[w]} of {w} not HB"
    # ---- tensors / rule 4
    placed = pdoc.get("tensors")
    if not isinstance(placed, list):
        return "tensors"
    off: dict[str, int | None] = {}
    tdev: dict[str, int] = {}
    for e in placed:
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or "offset" not in e or not _is_int(e.get("size")):
            return "tensor entry malformed"
        if e["id"] in off or e["id"] not in tens:
            return f"tensor {e['id']} repeated/unknown"
        if e["offset"] is not None and not _is_int(e["offset"]):
            return f"tensor {e['id']} offset not an int"
        if e["size"] != tens[e["id"]]["size"]:
            return f"tensor {e['id']} size differs"
        if D > 1 and not (_is_int(e.get("device")) and 0 <= e["device"] < D):
            return f"tensor {e['id']} device"
        off[e["id"]] = e["offset"]
        tdev[e["id"]] = e.get("device", 0) if D > 1 else 0
    if set(off) != set(tens):
        return "a tensor missing"
    for t in tens:   # a view on its root's device; a node touches its own device's roots, a COPY reads its own
        if tdev[t] != tdev[root[t]]:
            return f"view {t} on another device than its root"
    for n in nodes:
        touched = n["inputs"] + ([] if n["op"] == "COPY" else n["outputs"])
        if any(tdev[root[t]] != ndev[n["id"]] for t in touched):
            return f"node {n['id']} touches another device's tensor"
    for t, td in tens.items():
        if tens[root[t]]["kind"] == "weight":
            if off[t] is not None:
                return f"weight-rooted {t} has an offset"
            continue
        if off[t] is None:
            return f"{t} has no offset"
        if td.get("view_of") is not None:
            if off[td["view_of"]] is None or off[t] != off[td["view_of"]] + td.get("view_offset", 0):
                return f"view {t} not at parent + view_offset"
            continue
        if off[t] < 0 or off[t] % galign or off[t] % pdoc["alignment"]:
            return f"{t} misaligned/negative"
        if off[t] + td["size"] > arenas[tdev[t]]:
            return f"{t} past its device's arena"
    # ---- rule 3
    acc: dict[str, list[str]] = {}
    for t, td in tens.items():
        if root[t] == t and td["kind"] != "weight":
            acc[t] = []
            if td["kind"] == "input":
                acc[t].append("<start>")
            if t in producer:
                acc[t].append(producer[t])
            if td["kind"] == "output":
                acc[t].append("<end>")
    for n in nodes:
        for t in n["inputs"]:
            if root[t] in acc:
                acc[root[t]].append(n["id"])
        for t in n["outputs"]:
            if root[t] in acc and t != root[t]:
                acc[root[t]].append(n["id"])
    inplace = set()   # (in root, out root, node)
    for n in nodes:
        for o, i in (n.get("inplace") or {}).items():
            if producer.get(root[o]) == n["id"]:
                inplace.add((root[i], root[o], n["id"]))
    roots = [r for r in acc if tens[r]["size"] > 0]

    def ordered(A, B):
        for a in acc[A]:
            for b in acc[B]:
                if HB(a, b):
                    continue
                if a == b and (A, B, a) in inplace:
                    continue
                return False
        return True

    for i, A in enumerate(roots):
        for B in roots[i + 1:]:
            if off[A] < off[B] + tens[B]["size"] and off[B] < off[A] + tens[A]["size"] and tdev[A] == tdev[B]:
                if not ordered(A, B) and not ordered(B, A):
                    return f"rule 3: {A} and {B} overlap, accesses unordered"
    return None


def oracle_fused_unsafe(gdoc: dict, pdoc: dict) -> str | None:
    """``oracle_unsafe`` for ``verify(fused_groups=True)`` (its docstring's words): the plan must be safe node by node,
    and a fusion group of several nodes that can run as one kernel (no event recorded after a member other than its
    last is waited on by a node issued no later than the last member) touches no two roots that share bytes."""
    why = oracle_unsafe(gdoc, pdoc)
    if why:
        return why
    tens = {t["id"]: t for t in gdoc["tensors"]}

    def root(t):
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
        return t

    pos = {e["node"]: i for i, e in enumerate(pdoc["order"])}
    off = {e["id"]: e["offset"] for e in pdoc["tensors"]}
    groups: dict[str, list[dict]] = {}
    for n in gdoc["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n)
    for g, mem in groups.items():
        if len(mem) < 2:
            continue
        last = max(mem, key=lambda n: pos[n["id"]])["id"]
        if any(e["after"] in {m["id"] for m in mem} - {last} and pos[e["before"]] <= pos[last] for e in pdoc["events"]):
            continue   # runs node by node
        rs = sorted({root(t) for m in mem for t in m["inputs"] + m["outputs"]
                     if tens[root(t)]["kind"] != "weight" and tens[root(t)]["size"] > 0})
        for i, a in enumerate(rs):
            for b in rs[i + 1:]:
                if off[a] < off[b] + tens[b]["size"] and off[b] < off[a] + tens[a]["size"]:
                    return f"fused group {g} touches {a} and {b}, which overlap"
    return None


# ---------------------------------------------------------------- random graphs with views, in-place, groups

def random_graph_doc(rng: random.Random, n_nodes: int, name: str = "rnd") -> dict:
    align = rng.choice([1, 8, 64, 256])
    tensors, nodes = [], []
    avail = []   # tensor ids readable so far
    nt = 0

    def new(kind, size, **kw):
        nonlocal nt
        tid = f"t{nt}"
        nt += 1
        tensors.append({"id": tid, "size": size, "kind": kind, **kw})
        return tid

    size_of = {}
    for _ in range(rng.randint(1, 3)):
        t = new("input", rng.choice([16, 64, 100, 256, 300]))
        size_of[t] = tensors[-1]["size"]
        avail.append(t)
    w = new("weight", 512)
    size_of[w] = 512
    kinds = {t["id"]: t["kind"] for t in tensors}
    groups_open = None
    for k in range(n_nodes):
        nid = f"n{k}"
        ins = rng.sample(avail, min(len(avail), rng.randint(1, 3)))
        if rng.random() < 0.15:
            ins.append(w)
        outs, inplace, extra = [], {}, {}
        r = rng.random()
        arena_ins = [t for t in ins if kinds[t] != "weight"]
        if r < 0.15 and arena_ins:   # a view op: produces a view of one of its inputs
            parent = rng.choice(arena_ins)
            ps = size_of[parent]
            vo = rng.randrange(0, max(ps // 2, 1))
            vs = rng.randint(0, ps - vo)
            t = new("intermediate", vs, view_of=parent, view_offset=vo)
            outs.append(t)
        elif r < 0.25 and arena_ins:   # writes a slot of an input (SET_ROWS-like), reading something else
            parent = rng.choice(arena_ins)
            ps = size_of[parent]
            vo = rng.randrange(0, ps) if ps else 0
            t = new("intermediate", rng.randint(0, ps - vo), view_of=parent, view_offset=vo)
            outs.append(t)
        elif r < 0.4 and arena_ins:   # in place over an input of the same size
            i = rng.choice(arena_ins)
            t = new("intermediate", size_of[i])
            outs.append(t)
            inplace[t] = i
        else:
            for _ in range(rng.choice([1, 1, 1, 2])):
                outs.append(new("intermediate", rng.choice([0, 8, 16, 50, 64, 100, 200, 256, 257, 512])))
        for t in outs:
            size_of[t] = tensors[int(t[1:])]["size"]
            kinds[t] = "intermediate"
            avail.append(t)
        nd = {"id": nid, "op": "UNARY", "inputs": ins, "outputs": outs, "cost": rng.choice([1.0, 2.0, 5.0])}
        if inplace:
            nd["inplace"] = inplace
        if groups_open is not None and rng.random() < 0.5:
            nd["group"] = groups_open
        elif rng.random() < 0.1:
            groups_open = f"g{k}"
            nd["group"] = groups_open
        else:
            groups_open = None
        nd.update(extra)
        nodes.append(nd)
    # a few roots become outputs (never read after? outputs may be read: the contract allows it)
    for t in tensors:
        if t["kind"] == "intermediate" and "view_of" not in t and rng.random() < 0.15:
            t["kind"] = "output"
    # views of a weight-rooted / input-rooted tensor are fine; a graph with no output is fine too
    return {"format": "memplan.graph/1", "name": name, "alignment": align, "tensors": tensors, "nodes": nodes}


def random_wide_doc(rng: random.Random, width: int, name: str = "wide") -> dict:
    """A graph whose roots are accessed on many streams once planned wide: an input read by ``width`` nodes, a root
    written through a chain of ``width`` views (each view written by its own node, the last read by several), joins
    of the branches, and a tail whose buffers reuse the branches' bytes. Why: the verifier summarises a root accessed
    on 16 or more streams (``_WIDE``) and a view chain written on as many by other code than the narrow case's."""
    T = [{"id": "x", "size": 64, "kind": "input"}, {"id": "R", "size": 8 * width, "kind": "intermediate"}]
    nodes = [{"id": "init", "op": "FILL", "inputs": ["x"], "outputs": ["R"]}]
    for k in range(width):
        T.append({"id": f"b{k}", "size": rng.choice([8, 64, 100]), "kind": "intermediate"})
        nodes.append({"id": f"f{k}", "op": "U", "inputs": ["x"], "outputs": [f"b{k}"]})
    prev = "R"
    for k in range(width):   # v_k: a view of v_{k-1}, written by w_k
        T.append({"id": f"v{k}", "size": 8 * (width - k), "kind": "intermediate", "view_of": prev, "view_offset": 0 if
                  k == 0 else 8})
        nodes.append({"id": f"w{k}", "op": "SET", "inputs": [f"b{rng.randrange(width)}"], "outputs": [f"v{k}"]})
        prev = f"v{k}"
    for j in range(rng.randint(2, 5)):
        T.append({"id": f"r{j}", "size": 64, "kind": "intermediate"})
        nodes.append({"id": f"rd{j}", "op": "U", "inputs": [prev if rng.random() < 0.7 else f"v{rng.randrange(width)}"],
                      "outputs": [f"r{j}"]})
    T.append({"id": "y", "size": 64, "kind": "output"})
    nodes.append({"id": "join", "op": "CAT", "inputs": [f"b{k}" for k in range(width)] + [t["id"] for t in T
                                                                                         if t["id"].startswith("r")
                                                                                         and t["id"] != "R"],
                  "outputs": ["y"]})
    for k in range(rng.randint(0, 6)):   # a tail reusing the freed bytes
        T.append({"id": f"z{k}", "size": rng.choice([64, 256, 8 * width]), "kind": "intermediate"})
        nodes.append({"id": f"tail{k}", "op": "U", "inputs": ["y" if k == 0 else f"z{k - 1}"], "outputs": [f"z{k}"]})
    if rng.random() < 0.5:   # shuffle the listed order of the independent middle (still topological)
        mid = nodes[1:1 + width]
        rng.shuffle(mid)
        nodes[1:1 + width] = mid
    return {"format": "memplan.graph/1", "name": name, "alignment": rng.choice([8, 64]), "tensors": T, "nodes": nodes}


def wide_plans(rng, g, width):
    """Plans of a wide graph: its nodes dealt over ``width`` or more streams, with the fewest events."""
    import memplan

    out = []
    for k in range(3):
        S = rng.choice([width, width + 3, 16, 17, 33])
        order = [n.id for n in g.nodes]
        stream_of = {nid: (i % S if k == 0 else rng.randrange(S)) for i, nid in enumerate(order)}
        try:
            sched = memplan.schedule_with_events(g, order, stream_of)
            out.append((f"wide{k}", memplan.plan(g, sched, solver=rng.choice(["greedy", "size"])).to_dict()))
        except memplan.MemplanError:
            pass
    return out


def base_plans(rng, g, gdoc, quick):
    """Valid plans of ``g``: memplan's own on 1-4 streams, and random stream assignments with the fewest events."""
    import memplan

    out = []
    for streams in (1, 2, 3, 4)[: 2 if quick else 4]:
        try:
            p = memplan.plan(g, streams=streams) if streams > 1 else memplan.plan(g)
            out.append((f"s{streams}", p.to_dict()))
        except memplan.MemplanError:
            pass
    for k in range(1 if quick else 3):
        S = rng.randint(2, 4)
        order = [n.id for n in g.nodes]
        stream_of = {nid: rng.randrange(S) for nid in order}
        for members in g.groups().values():   # a group on one stream
            for m in members:
                stream_of[g.nodes[m].id] = stream_of[g.nodes[members[0]].id]
        try:
            sched = memplan.schedule_with_events(g, order, stream_of)
            p = memplan.plan(g, sched, solver=rng.choice(["greedy", "size", "auto"]))
            out.append((f"rand{k}", p.to_dict()))
        except memplan.MemplanError:
            pass
    return out


# ---------------------------------------------------------------- mutations of a plan document

SEMANTIC = ["off_to_other", "off_overlap1", "off_plus_align", "off_random", "arena_shrink", "arena_grow",
            "ev_drop", "ev_dup", "ev_add", "ev_reverse", "ev_unknown", "ev_self", "ev_cycle", "ev_move_before",
            "st_swap", "st_move", "st_relabel", "st_out", "st_decl", "ord_swap", "ord_move", "ord_drop", "ord_dup",
            "t_drop", "t_dup", "t_extra", "t_size", "t_weight_off", "t_null", "view_off", "align_plan",
            "lb_up", "lb_down", "graph_name", "ev_drop_all", "off_swap", "ev_weaken", "ev_weaken", "ev_drop", "multi"]
DEVICE_KINDS = ["dev_node", "dev_tensor", "dev_arena", "dev_arena_len", "dev_root_move"]
TYPES = ["off_float", "off_bool", "off_str", "off_2_63", "off_2_64", "off_neg", "off_neg_2_63", "st_float",
         "st_bool", "st_str", "st_neg", "st_huge", "streams_0", "streams_huge", "arena_float", "arena_2_64",
         "align_0", "align_neg", "size_neg", "ev_int", "order_obj", "devices_2"]


def mutate(rng: random.Random, gdoc: dict, pdoc: dict, kind: str) -> dict | None:
    d = copy.deepcopy(pdoc)
    ts = [e for e in d["tensors"] if e["offset"] is not None]
    tens = {t["id"]: t for t in gdoc["tensors"]}
    roots = [e for e in ts if tens[e["id"]].get("view_of") is None and e["size"] > 0]
    order, events = d["order"], d["events"]
    align = max(d["alignment"], gdoc.get("alignment", 256))
    nodes = [e["node"] for e in order]

    def fix_views():   # keep views at their parent's offset + view_offset (a root moved carries its views)
        off = {e["id"]: e for e in d["tensors"]}
        for t in gdoc["tensors"]:   # tensors are listed parents first in these graphs
            if t.get("view_of") is not None and off[t["view_of"]]["offset"] is not None:
                off[t["id"]]["offset"] = off[t["view_of"]]["offset"] + t.get("view_offset", 0)

    def grow_arena():
        d["arena_bytes"] = max([d["arena_bytes"]] + [e["offset"] + e["size"] for e in d["tensors"]
                                                     if _is_int(e["offset"]) and _is_int(e["size"])])

    if kind == "multi":
        for _ in range(rng.randint(2, 4)):
            try:   # (a step after one that broke the document's shape may not apply: skipped)
                d = mutate(rng, gdoc, d, rng.choice(SEMANTIC[:-1])) or d
            except (KeyError, ValueError, IndexError, TypeError):
                pass
        return d
    if kind.startswith("off_") and kind in SEMANTIC:
        if len(roots) < (2 if kind in ("off_to_other", "off_overlap1", "off_swap") else 1):
            return None
        a = rng.choice(roots)
        if kind == "off_to_other":
            b = rng.choice([e for e in roots if e is not a])
            a["offset"] = b["offset"]
        elif kind == "off_overlap1":   # a's first byte on b's last (rounded down to the alignment)
            b = rng.choice([e for e in roots if e is not a])
            a["offset"] = (b["offset"] + b["size"] - 1) // align * align
        elif kind == "off_plus_align":
            a["offset"] = max(0, a["offset"] + rng.choice([-1, 1]) * align)
        elif kind == "off_random":
            a["offset"] = rng.randrange(0, max(d["arena_bytes"], 1) + align) // align * align
        elif kind == "off_swap":
            b = rng.choice([e for e in roots if e is not a])
            a["offset"], b["offset"] = b["offset"], a["offset"]
        fix_views()
        if rng.random() < 0.7:
            grow_arena()
        return d
    if kind == "arena_shrink":
        d["arena_bytes"] = max(0, d["arena_bytes"] - rng.choice([1, align, d["arena_bytes"]]))
        d["lower_bound_bytes"] = min(d["lower_bound_bytes"], d["arena_bytes"])
        return d
    if kind == "arena_grow":
        d["arena_bytes"] += rng.choice([1, align, 10**6])
        return d
    if kind == "ev_drop":
        if not events:
            return None
        events.pop(rng.randrange(len(events)))
        return d
    if kind == "ev_drop_all":
        if not events:
            return None
        d["events"] = []
        return d
    if kind == "ev_dup":
        if not events:
            return None
        events.insert(rng.randrange(len(events) + 1), dict(rng.choice(events)))
        return d
    if kind in ("ev_add", "ev_reverse", "ev_move_before"):
        if len(order) < 2:
            return None
        i, j = sorted(rng.sample(range(len(order)), 2))
        a, b = order[i]["node"], order[j]["node"]
        if kind == "ev_add":
            events.append({"after": a, "before": b})
        elif kind == "ev_reverse":
            if not events:
                return None
            e = rng.choice(events)
            e["after"], e["before"] = e["before"], e["after"]
        else:   # an event moved to wait at a node issued earlier than it waited before
            if not events:
                return None
            e = rng.choice(events)
            pb = nodes.index(e["before"])
            e["before"] = nodes[rng.randrange(0, pb + 1)]
        return d
    if kind == "ev_weaken":   # an event recorded after an earlier node of its stream, or waited on by a later one
        if not events:
            return None
        e = rng.choice(events)
        st = {o["node"]: o["stream"] for o in order}
        end = rng.choice(["after", "before"])
        same = [n for n in nodes if st[n] == st[e[end]]]
        k = same.index(e[end])
        if end == "after" and k > 0:
            e["after"] = same[rng.randrange(k)]
        elif end == "before" and k + 1 < len(same):
            e["before"] = same[rng.randrange(k + 1, len(same))]
        else:
            return None
        return d
    if kind.startswith("dev_"):   # a split plan's device fields
        D = d.get("devices", 1)
        if D < 2:
            return None
        if kind == "dev_node":
            rng.choice(order)["device"] = rng.randrange(D + 1)
        elif kind == "dev_tensor":
            rng.choice(d["tensors"])["device"] = rng.randrange(D + 1)
        elif kind == "dev_arena":
            k = rng.randrange(D)
            d["device_arena_bytes"][k] = max(0, d["device_arena_bytes"][k] + rng.choice([-align, -1, 1, align]))
        elif kind == "dev_arena_len":
            d["device_arena_bytes"] = d["device_arena_bytes"][:-1] if rng.random() < 0.5 else d["device_arena_bytes"] + [0]
        elif kind == "dev_root_move":   # a root and its views moved to another device, same offsets
            r = rng.choice(roots) if roots else None
            if r is None:
                return None
            new = rng.randrange(D)
            for t in gdoc["tensors"]:
                x = t["id"]
                while tens[x].get("view_of") is not None:
                    x = tens[x]["view_of"]
                if x == r["id"]:
                    next(e for e in d["tensors"] if e["id"] == t["id"])["device"] = new
        return d
    if kind == "ev_unknown":
        events.append({"after": rng.choice(nodes), "before": "ghost"} if rng.random() < 0.5 else
                      {"after": "ghost", "before": rng.choice(nodes)})
        return d
    if kind == "ev_self":
        n = rng.choice(nodes)
        events.append({"after": n, "before": n})
        return d
    if kind == "ev_cycle":
        if not events:
            return None
        e = rng.choice(events)
        events.append({"after": e["before"], "before": e["after"]})
        return d
    if kind == "st_swap":
        if len(order) < 2:
            return None
        x, y = rng.sample(order, 2)
        x["stream"], y["stream"] = y["stream"], x["stream"]
        return d
    if kind == "st_move":
        rng.choice(order)["stream"] = rng.randrange(d["streams"])
        return d
    if kind == "st_relabel":
        perm = list(range(max(d["streams"], max(e["stream"] for e in order) + 1)))
        rng.shuffle(perm)
        for e in order:
            e["stream"] = perm[e["stream"]]
        return d
    if kind == "st_out":
        rng.choice(order)["stream"] = d["streams"] + rng.choice([0, 5])
        return d
    if kind == "st_decl":
        used = max(e["stream"] for e in order) + 1
        d["streams"] = rng.choice([used - 1, used + 3]) if used > 1 else used + 3
        return d
    if kind == "ord_swap":
        if len(order) < 2:
            return None
        i = rng.randrange(len(order) - 1)
        order[i], order[i + 1] = order[i + 1], order[i]
        return d
    if kind == "ord_move":
        if len(order) < 2:
            return None
        e = order.pop(rng.randrange(len(order)))
        order.insert(rng.randrange(len(order) + 1), e)
        return d
    if kind == "ord_drop":
        order.pop(rng.randrange(len(order)))
        return d
    if kind == "ord_dup":
        order.insert(rng.randrange(len(order) + 1), dict(rng.choice(order)))
        return d
    if kind == "t_drop":
        d["tensors"].pop(rng.randrange(len(d["tensors"])))
        return d
    if kind == "t_dup":
        d["tensors"].insert(rng.randrange(len(d["tensors"]) + 1), dict(rng.choice(d["tensors"])))
        return d
    if kind == "t_extra":
        d["tensors"].append({"id": "ghost", "offset": 0, "size": 8})
        return d
    if kind == "t_size":
        e = rng.choice(d["tensors"])
        e["size"] += rng.choice([-1, 1])
        return d
    if kind == "t_weight_off":
        ws = [e for e in d["tensors"] if e["offset"] is None]
        if not ws:
            return None
        rng.choice(ws)["offset"] = 0
        return d
    if kind == "t_null":
        if not ts:
            return None
        rng.choice(ts)["offset"] = None
        return d
    if kind == "view_off":
        vs = [e for e in ts if tens[e["id"]].get("view_of") is not None]
        if not vs:
            return None
        rng.choice(vs)["offset"] += rng.choice([-align, align, 1])
        return d
    if kind == "align_plan":
        d["alignment"] = rng.choice([1, d["alignment"] * 2, d["alignment"] * 4096, 3])
        return d
    if kind == "lb_up":
        d["lower_bound_bytes"] = d["arena_bytes"] + rng.choice([0, 1])
        return d
    if kind == "lb_down":
        d["lower_bound_bytes"] = 0
        return d
    if kind == "graph_name":
        d["graph"] = rng.choice(["other", gdoc["name"] + " ", ""])
        return d
    # ---- type mutations (every one of them is unsafe: not a plan the contract describes)
    ent = rng.choice(ts) if ts else None
    oe = rng.choice(order)
    table = {
        "off_float": (ent, "offset", 0.0 + (ent["offset"] if ent else 0)), "off_bool": (ent, "offset", False),
        "off_str": (ent, "offset", "0"), "off_2_63": (ent, "offset", 2**63), "off_2_64": (ent, "offset", 2**64),
        "off_neg": (ent, "offset", -align), "off_neg_2_63": (ent, "offset", -(2**63)),
        "st_float": (oe, "stream", float(oe["stream"])), "st_bool": (oe, "stream", bool(oe["stream"])),
        "st_str": (oe, "stream", str(oe["stream"])), "st_neg": (oe, "stream", -1), "st_huge": (oe, "stream", 2**63),
        "streams_0": (d, "streams", 0), "streams_huge": (d, "streams", 2**64),
        "arena_float": (d, "arena_bytes", float(d["arena_bytes"])), "arena_2_64": (d, "arena_bytes", 2**64),
        "align_0": (d, "alignment", 0), "align_neg": (d, "alignment", -256),
        "size_neg": (ent, "size", -1), "ev_int": (events[0] if events else None, "after", 0),
        "order_obj": (d, "order", {e["node"]: e["stream"] for e in order}), "devices_2": (d, "devices", 2),
    }
    obj, key, value = table[kind]
    if obj is None:
        return None
    obj[key] = value
    return d


# ---------------------------------------------------------------- family: verifier

def verdict(g, pdoc, fused=False):
    """('ok' | 'refused' | 'raw: ...', message) of memplan.verify on the plan document."""
    import memplan

    try:
        memplan.verify(g, memplan.plan_from_dict(pdoc), fused_groups=fused)
        return "ok", ""
    except memplan.MemplanError as exc:
        return "refused", str(exc)
    except Exception as exc:  # noqa: BLE001
        return f"raw: {type(exc).__name__}", str(exc)[:200]


def fam_verifier(rec, rng, tmp, quick, mutants, max_nodes=14):
    import memplan
    from memplan.examples import bundled

    seeds = []
    for name, g in bundled().items():
        if len(g.nodes) <= 80:
            seeds.append((name, g, g.to_dict()))
    n_random = 20 if quick else 120
    for k in range(n_random):
        gdoc = random_graph_doc(rng, rng.randint(2, max_nodes), name=f"rnd{k}")
        try:
            g = memplan.graph_from_dict(gdoc)
        except memplan.MemplanError:
            continue
        seeds.append((f"rnd{k}", g, g.to_dict()))
    wide = []
    for k in range(4 if quick else 24):
        width = rng.choice([16, 17, 20, 24, 32])
        gdoc = random_wide_doc(rng, width, name=f"wide{k}")
        g = memplan.graph_from_dict(gdoc)
        wide.append((f"wide{k}", g, g.to_dict(), width))
    stats = {"bases": 0, "mutants": 0, "accepted": 0, "refused": 0, "cli": 0, "kinds": {}}
    cli_every = 25
    jobs = [(name, g, gdoc, base_plans(rng, g, gdoc, quick)) for name, g, gdoc in seeds]
    for name, g, _gdoc in seeds[: len(seeds) if not quick else 12]:   # split plans: their split graph
        for devices, streams in ((2, 1), (2, 2), (3, 2)):
            try:
                pl = memplan.plan_graph(g, devices=devices, streams=streams)
            except memplan.MemplanError:
                continue
            jobs.append((f"{name}@{devices}dev", pl.graph, pl.graph.to_dict(), [(f"d{devices}s{streams}",
                                                                                  pl.plan.to_dict())]))
    jobs += [(name, g, gdoc, wide_plans(rng, g, width)) for name, g, gdoc, width in wide]
    for name, g, gdoc, plans in jobs:
        for label, pdoc in plans:
            stats["bases"] += 1
            why = oracle_unsafe(gdoc, pdoc)
            if why:
                rec.defect("verifier-base", f"{name}/{label}", f"memplan's own plan fails the oracle: {why}")
            pool = SEMANTIC + DEVICE_KINDS * 4 if pdoc.get("devices", 1) > 1 else SEMANTIC
            kinds = [rng.choice(pool) for _ in range(mutants)] + rng.sample(TYPES, 3)
            for i, kind in enumerate(kinds):
                d = mutate(rng, gdoc, pdoc, kind)
                if d is None:
                    continue
                case = f"{name}/{label}/{kind}#{i}"
                rec.count("verifier")
                stats["mutants"] += 1
                stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
                want = oracle_unsafe(gdoc, d)
                got, msg = verdict(g, d)
                if got.startswith("raw"):
                    rec.defect("verifier", case, f"{got}: {msg}")
                    continue
                stats["accepted" if got == "ok" else "refused"] += 1
                if got == "ok" and want:
                    rec.defect("verifier-accepts-unsafe", case, f"oracle: {want}")
                elif got == "refused" and not want:
                    rec.defect("verifier-refuses-safe", case, f"verify: {msg[:300]}")
                if got == "ok" and any(n.group is not None for n in g.nodes):   # the fused reading too
                    stats["fused"] = stats.get("fused", 0) + 1
                    fwant = oracle_fused_unsafe(gdoc, d)
                    fgot, fmsg = verdict(g, d, fused=True)
                    if fgot.startswith("raw") or (fgot == "ok") != (fwant is None):
                        rec.defect("verifier-fused", case, f"verify(fused_groups=True) {fgot} {fmsg[:200]} / "
                                                           f"oracle {fwant}")
                if kind in TYPES or stats["mutants"] % cli_every == 0:
                    stats["cli"] += 1
                    gp, pp = os.path.join(tmp, "g.json"), os.path.join(tmp, "p.json")
                    with open(gp, "w") as f:
                        json.dump(gdoc, f)
                    with open(pp, "w") as f:
                        json.dump(d, f)
                    cli_case(rec, case, ["verify", gp, pp], inputs=(gp, pp), expect=2 if want else 0,
                             family="verifier-cli")
    # plan of graph A with graph B (same name too), and duplicate keys in the file text
    for (na, ga, _gda), (nb, gb, gdb) in zip(seeds, seeds[1:]):
        pa = memplan.plan(ga).to_dict()
        for rename in (False, True):
            d = copy.deepcopy(pa)
            if rename:
                d["graph"] = gdb["name"]
            case = f"plan of {na} for {nb}{' (renamed)' if rename else ''}"
            rec.count("verifier")
            want = oracle_unsafe(gdb, d)
            got, msg = verdict(gb, d)
            if got.startswith("raw") or (got == "ok") != (want is None):
                rec.defect("verifier-cross", case, f"verify {got} {msg[:200]} / oracle {want}")
    gp, pp = os.path.join(tmp, "g.json"), os.path.join(tmp, "p.json")
    name, g, gdoc = seeds[1]
    text = json.dumps(memplan.plan(g).to_dict())
    with open(gp, "w") as f:
        json.dump(gdoc, f)
    for old, new in (('"offset": 0', '"offset": 0, "offset": 1024'), ('"streams": 1', '"streams": 1, "streams": 0'),
                     ('"arena_bytes": ', '"arena_bytes": 0, "arena_bytes": ')):
        with open(pp, "w") as f:
            f.write(text.replace(old, new, 1))
        cli_case(rec, f"duplicate key {old}", ["verify", gp, pp], inputs=(gp, pp), expect=2, family="verifier-cli")
    return stats


# ---------------------------------------------------------------- family: scale

SCALE_CHILD = r"""
import json, sys, time, resource
sys.setrecursionlimit(1000)
case, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.time()
outcome = "ok"
try:
    import memplan
    from memplan import cli
    if case == "cli":
        import contextlib, io
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = cli.main(extra)
            except SystemExit as exc:   # (argparse's refusal of an option: exit 2, its one line)
                code = exc.code
        outcome = f"exit {code} {err.getvalue().strip()[:200]!r}"
    elif case == "verify":
        memplan.verify(memplan.load_graph(path), memplan.load_plan(extra[0]))
    elif case == "pipeline":
        g = memplan.load_graph(path)
        p = memplan.plan(g, **json.loads(extra[0])) if extra else memplan.plan(g)
        memplan.verify(g, p)
        memplan.simulate(g, p)
        memplan.reuse_table(g, p)
        outcome = f"ok arena {p.arena_bytes}"
except memplan.MemplanError as exc:
    outcome = f"refused {type(exc).__name__}: {str(exc)[:200]}"
except BaseException as exc:
    outcome = f"RAW {type(exc).__name__}: {str(exc)[:200]}"
print(json.dumps({"outcome": outcome, "s": round(time.time() - t0, 1),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def scale_docs(tmp):
    """(label, graph path, plan path or None) for each scale-hostile input; built as text, streamed to disk."""
    out = []

    def write(name, doc):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            json.dump(doc, f)
        return p

    n = 200_000
    chain = {"format": "memplan.graph/1", "name": "chain200k", "alignment": 256,
             "tensors": [{"id": "x", "size": 1024, "kind": "input"}]
             + [{"id": f"t{i}", "size": 1024, "kind": "output" if i == n - 1 else "intermediate"} for i in range(n)],
             "nodes": [{"id": f"n{i}", "op": "UNARY", "inputs": ["x" if i == 0 else f"t{i - 1}"], "outputs": [f"t{i}"]}
                       for i in range(n)]}
    out.append(("chain 200k", write("chain.json", chain), None))
    # a 200,000-deep view chain
    vchain = {"format": "memplan.graph/1", "name": "views200k", "alignment": 1,
              "tensors": [{"id": "r", "size": 1024, "kind": "intermediate"}]
              + [{"id": f"v{i}", "size": 1024, "kind": "intermediate", "view_of": "r" if i == 0 else f"v{i - 1}",
                  "view_offset": 0} for i in range(n)] + [{"id": "y", "size": 8, "kind": "output"}],
              "nodes": [{"id": "w", "op": "X", "inputs": [], "outputs": ["r"]},
                        {"id": "rd", "op": "X", "inputs": [f"v{n - 1}"], "outputs": ["y"]}]}
    out.append(("view chain 200k", write("vchain.json", vchain), None))
    wide = {"format": "memplan.graph/1", "name": "wide", "alignment": 256,
            "tensors": [{"id": f"i{k}", "size": 256, "kind": "input"} for k in range(100_000)]
            + [{"id": "y", "size": 256, "kind": "output"}],
            "nodes": [{"id": "cat", "op": "CONCAT", "inputs": [f"i{k}" for k in range(100_000)], "outputs": ["y"]}]}
    out.append(("node with 100k inputs", write("wide.json", wide), None))
    same = dict(wide, name="same", tensors=[{"id": "i", "size": 256, "kind": "input"}, {"id": "y", "size": 256,
                                                                                        "kind": "output"}],
                nodes=[{"id": "cat", "op": "CONCAT", "inputs": ["i"] * 100_000, "outputs": ["y"]}])
    out.append(("one input read 100k times by one node", write("same.json", same), None))
    fan = {"format": "memplan.graph/1", "name": "fan", "alignment": 256,
           "tensors": [{"id": "x", "size": 256, "kind": "input"}]
           + [{"id": f"b{k}", "size": 256, "kind": "intermediate"} for k in range(50_000)]
           + [{"id": "y", "size": 256, "kind": "output"}],
           "nodes": [{"id": f"n{k}", "op": "U", "inputs": ["x"], "outputs": [f"b{k}"]} for k in range(50_000)]
           + [{"id": "join", "op": "CONCAT", "inputs": [f"b{k}" for k in range(50_000)], "outputs": ["y"]}]}
    fp = write("fan.json", fan)
    out.append(("fan-out 50k", fp, None))
    # a plan of the fan-out declaring 50,000 streams, a node on each, every event to the join
    plan = {"format": "memplan.plan/1", "graph": "fan", "alignment": 256, "arena_bytes": 256 * 50_002,
            "lower_bound_bytes": 0, "streams": 50_001,
            "order": [{"node": f"n{k}", "stream": k} for k in range(50_000)] + [{"node": "join", "stream": 50_000}],
            "events": [{"after": f"n{k}", "before": "join"} for k in range(50_000)],
            "tensors": [{"id": "x", "offset": 0, "size": 256}]
            + [{"id": f"b{k}", "offset": 256 * (k + 1), "size": 256} for k in range(50_000)]
            + [{"id": "y", "offset": 256 * 50_001, "size": 256}], "solver": {"name": "hand"}}
    out.append(("plan with 50k streams", fp, write("fanplan.json", plan)))
    big = "n" * (1 << 20)
    names = {"format": "memplan.graph/1", "name": "g" * (1 << 20), "alignment": 256,
             "tensors": [{"id": "x" * (1 << 20), "size": 256, "kind": "input"},
                         {"id": "y" * (1 << 20), "size": 256, "kind": "output"}],
             "nodes": [{"id": big, "op": "O" * (1 << 20), "inputs": ["x" * (1 << 20)], "outputs": ["y" * (1 << 20)],
                        "group": "G" * (1 << 20)}]}
    out.append(("1 MB names", write("names.json", names), None))
    outs = {"format": "memplan.graph/1", "name": "outs", "alignment": 256,
            "tensors": [{"id": "x", "size": 256, "kind": "input"}]
            + [{"id": f"o{k}", "size": 256, "kind": "output"} for k in range(100_000)],
            "nodes": [{"id": "split", "op": "SPLIT", "inputs": ["x"], "outputs": [f"o{k}" for k in range(100_000)]}]}
    out.append(("node with 100k outputs", write("outs.json", outs), None))
    grouped = copy.deepcopy(chain)
    grouped["name"] = "grouped"
    del grouped["nodes"][50_000:], grouped["tensors"][50_001:]
    grouped["tensors"][-1]["kind"] = "output"
    for nd in grouped["nodes"]:
        nd["group"] = "one"
    out.append(("one fusion group of 50k nodes", write("grouped.json", grouped), None))
    inpl = copy.deepcopy(wide)
    inpl["name"] = "inpl"
    inpl["tensors"] += [{"id": f"o{k}", "size": 256, "kind": "intermediate"} for k in range(50_000)]
    inpl["tensors"][100_000]["kind"] = "output"
    inpl["nodes"] = [{"id": "ip", "op": "U", "inputs": [f"i{k}" for k in range(50_000)],
                      "outputs": [f"o{k}" for k in range(50_000)], "inplace": {f"o{k}": f"i{k}" for k in range(50_000)}},
                     {"id": "cat", "op": "CONCAT", "inputs": [f"o{k}" for k in range(50_000)], "outputs": ["y"]}]
    out.append(("node with 50k in-place pairs", write("inpl.json", inpl), None))
    p = os.path.join(tmp, "nested.json")
    with open(p, "w") as f:
        f.write('{"format": "memplan.graph/1", "name": "n", "attrs": ' + "[" * 100_000 + "]" * 100_000 + ', "tensors": [], '
                '"nodes": []}')
    out.append(("100k-deep JSON", p, None))
    p = os.path.join(tmp, "nestedplan.json")
    with open(p, "w") as f:
        f.write('{"format": "memplan.plan/1", "solver": ' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}")
    out.append(("100k-deep plan JSON", os.path.join(tmp, "chain.json"), p))
    return out


def child(argv, seconds):
    t0 = time.time()
    try:
        r = subprocess.run([sys.executable, "-c", SCALE_CHILD] + argv, capture_output=True, text=True, timeout=seconds,
                           env=dict(os.environ, PYTHONPATH=os.getcwd()))
    except subprocess.TimeoutExpired:
        return {"outcome": f"HANG > {seconds}s", "s": round(time.time() - t0, 1), "rss_mb": None}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        return {"outcome": f"CRASH rc {r.returncode}: {r.stderr[-300:]}", "s": round(time.time() - t0, 1),
                "rss_mb": None}


def fam_scale(rec, tmp, quick, seconds):
    # the documents are built by a child (``--build-scale``): a child's peak RSS starts from its parent's at fork, so
    # the parent stays small and each case's reading is its own
    built = subprocess.run([sys.executable, os.path.abspath(__file__), "--build-scale", tmp], capture_output=True,
                           text=True, check=True)
    rows = []
    for label, gp, pp in json.loads(built.stdout):
        runs = []
        if pp is None:
            runs.append(("library plan+verify+simulate+reuse_table", ["pipeline", gp]))
            out = os.path.join(tmp, "out.json")
            runs.append(("memplan plan", ["cli", gp, "plan", gp, "-o", out, "-q"]))
            if "deep" not in label:
                runs.append(("memplan verify (its plan)", ["cli", gp, "verify", gp, out]))
                runs.append(("memplan show --graph", ["cli", gp, "show", out, "--graph", gp]))
            if not quick and "names" not in label and "deep" not in label:
                runs.append(("memplan plan --streams auto", ["cli", gp, "plan", gp, "-o", out, "-q", "--streams",
                                                             "auto"]))
            if label == "fan-out 50k":
                runs.append(("plan(streams=50000)", ["pipeline", gp, json.dumps({"streams": 50_000})]))
                runs.append(("memplan plan --streams 50000", ["cli", gp, "plan", gp, "-o", out, "-q", "--streams",
                                                              "50000"]))
        else:
            runs.append(("library verify", ["verify", gp, pp]))
            runs.append(("memplan verify", ["cli", gp, "verify", gp, pp]))
            runs.append(("memplan show", ["cli", gp, "show", pp]))
            runs.append(("memplan show --graph", ["cli", gp, "show", pp, "--graph", gp]))
        for what, argv in runs:
            rec.count("scale")
            r = child(argv, seconds)
            rows.append((label, what, r))
            print(f"  scale: {label:38s} {what:42s} {r['s']:6}s {r['rss_mb']} MB  {r['outcome'][:110]}", flush=True)
            o = r["outcome"]
            if o.startswith(("RAW", "HANG", "CRASH")) or ("exit" in o and not o.startswith(("exit 0", "exit 2"))):
                rec.defect("scale", f"{label}: {what}", o[:200])
            if "Traceback" in o or "RecursionError" in o or "MemoryError" in o:
                rec.defect("scale", f"{label}: {what}", o[:200])
    return rows


# ---------------------------------------------------------------- family: index

def as_chunk(v) -> bool:
    return type(v) is int and v >= 1


def fam_index(rec):
    import numpy as np

    import memplan
    from memplan.examples import diamond

    g = diamond()
    p = memplan.plan(g, streams=2)
    sched = memplan.Schedule(tuple(n for n, _ in p.order), tuple(s for _, s in p.order),
                             tuple(memplan.Event(a, b) for a, b in p.events))
    hb = memplan.build_happens_before(g, sched)
    N, T = len(g.nodes), len(g.tensors)
    bad = [None, "x", 1.5, float("nan"), [0], (0,), -1, -N, -N - 1, N, 10**20, np.float64(1.0), object(), b"\x00"]
    calls = {
        "HappensBefore.hb(v, 0)": lambda v: hb.hb(v, 0), "HappensBefore.hb(0, v)": lambda v: hb.hb(0, v),
        "HappensBefore.first_at_least(v, 0, [1])": lambda v: hb.first_at_least(v, 0, np.array([1])),
        "HappensBefore.first_at_least(0, v, [1])": lambda v: hb.first_at_least(0, v, np.array([1])),
        "Graph.in_arena(v)": lambda v: g.in_arena(v), "Graph.is_root(v)": lambda v: g.is_root(v),
        "Graph.offset_in_root(v)": lambda v: g.offset_in_root(v), "Graph.writers(v)": lambda v: g.writers(v),
    }
    prob = memplan.BufferProblem(np.array([8, 8, 8]), np.array([0, 1, 2]), np.array([2, 3, 4]))
    cm = memplan.CostModel()
    calls.update({"BufferProblem.conflicts(v, 0)": lambda v: prob.conflicts(v, 0),
                  "BufferProblem.conflicts(0, v)": lambda v: prob.conflicts(0, v),
                  "CostModel.node_us(g, v)": lambda v: cm.node_us(g, v),
                  "BufferProblem.name(v)": lambda v: prob.name(v)})
    sizes = {"BufferProblem": 3}
    results = []
    for v in bad + [0, 1.0, -5, "3"]:   # conflict_pairs(chunk): any chunk of at least 1
        case = f"BufferProblem.conflict_pairs(v) v={v!r}"
        rec.count("index")
        try:
            prob.conflict_pairs(v)
            results.append((case, "answer" if as_chunk(v) else "answer (for no chunk)"))
            if not as_chunk(v):
                rec.defect("index-silent", case, "answered for a chunk that is no count")
        except memplan.MemplanError as exc:
            results.append((case, type(exc).__name__))
        except Exception as exc:  # noqa: BLE001
            results.append((case, f"RAW {type(exc).__name__}"))
            rec.defect("index", case, f"{type(exc).__name__}: {str(exc)[:100]}")
    for name, fn in calls.items():
        for v in bad:
            case = f"{name} v={v!r}"[:80]
            rec.count("index")
            try:
                r = fn(v)
                # a negative or past-the-end index must not answer for another node or tensor
                count = N if ("Happens" in name or "node_us" in name) else sizes.get(name.split(".")[0], T)
                silent = ""
                if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < count:
                    silent = f"answered {r!r} for an index outside the graph"
                elif not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                    silent = f"answered {r!r} for a non-integer"
                if silent:
                    rec.defect("index-silent", case, silent)
                results.append((case, f"{'SILENT ' if silent else ''}answer {r!r}"[:60]))
            except memplan.MemplanError as exc:
                results.append((case, f"{type(exc).__name__}"))
            except Exception as exc:  # noqa: BLE001
                results.append((case, f"RAW {type(exc).__name__}"))
                rec.defect("index", case, f"{type(exc).__name__}: {str(exc)[:100]}")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="verifier,scale,index")
    ap.add_argument("--seed", type=int, default=59)
    ap.add_argument("--mutants", type=int, default=40)
    ap.add_argument("--max-nodes", type=int, default=14, help="random graphs have 2 .. this many nodes")
    ap.add_argument("--scale-seconds", type=int, default=300)
    ap.add_argument("--build-scale", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_scale:
        print(json.dumps(scale_docs(args.build_scale)))
        return
    rng = random.Random(args.seed)
    rec = Recorder()
    only = set(args.only.split(","))
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="hostile59-") as tmp:
        if "verifier" in only:
            st = fam_verifier(rec, rng, tmp, args.quick, args.mutants, args.max_nodes)
            print(f"verifier: {st['bases']} base plans, {st['mutants']} mutants ({st['accepted']} accepted, "
                  f"{st['refused']} refused), {st.get('fused', 0)} accepted ones also with fused_groups=True, "
                  f"{st['cli']} through the CLI; kinds: {st['kinds']}", flush=True)
        if "index" in only:
            res = fam_index(rec)
            raw = [c for c, r in res if r.startswith("RAW")]
            silent = [c for c, r in res if r.startswith("SILENT")]
            print(f"index: {len(res)} calls, {len(raw)} raw errors, {len(silent)} silent answers", flush=True)
            for c, r in res:
                print(f"  {c:70s} {r}")
        if "scale" in only:
            fam_scale(rec, tmp, args.quick, args.scale_seconds)
    print(f"\ntried {sum(rec.tried.values())} in {time.time() - t0:.0f} s: {rec.tried}")
    print(f"defects (distinct): {len(rec.defects)}")
    for fam, case, what in rec.defects:
        print(f"  [{fam}] {case}: {what}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
