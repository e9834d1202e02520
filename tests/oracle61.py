"""Round 61's independent safety oracle and the graph shapes the earlier generators left out.

Why another oracle: ``tests/oracle.py`` grew its interpretations alongside ``memplan.verify``; this one is written
again from CONTRACT.md's rules 1-4 (and docs/format.md's documented interpretations, each marked ``# interp``),
on the graph and plan JSON dicts only, happens-before as a plain transitive closure, rule 3 over every pair of
overlapping roots. One-device plans, ``fused_groups`` off.

``gap_graphs`` draws the shapes the older strategies rarely or never make: view chains rooted at a weight or an
input, views produced (written) by a node at any depth of a chain, in-place onto a view, outputs that are views
(of an intermediate, an input or a weight), nodes with no inputs, a tensor listed twice as an input, tensors
never read, zero-size tensors, and alignments from 1 to 2**31.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from memplan import GraphBuilder

START, END = "<start>", "<end>"


def safe(graph: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    """Every broken rule of ``plan`` for ``graph`` as short messages; empty when the plan is safe."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    nodes = {n["id"]: n for n in graph["nodes"]}
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    order = [e["node"] for e in plan["order"]]
    if sorted(order) != sorted(nodes):
        return ["rule 1: order is not every node once"]
    if sorted((t["id"], t["size"]) for t in plan["tensors"]) != sorted((t["id"], t["size"]) for t in tensors.values()):
        return ["rule 0: tensors differ"]
    streams = plan["streams"]
    stream = {e["node"]: e["stream"] for e in plan["order"]}
    out = [f"rule 1: {n} stream {s}" for n, s in stream.items() if not 0 <= s < streams]
    pos = {n: i for i, n in enumerate(order)}
    events = [(e["after"], e["before"]) for e in plan["events"]]
    succ: dict[str, set[str]] = {n: set() for n in order}
    last: dict[int, str] = {}
    for n in order:
        if stream[n] in last:
            succ[last[stream[n]]].add(n)
        last[stream[n]] = n
    for a, b in events:
        if a not in nodes or b not in nodes:
            return ["rule 1: event names an unknown node"]
        if stream[a] == stream[b]:
            out.append(f"rule 1: event {a}->{b} on one stream")
        if pos[a] >= pos[b]:
            out.append(f"rule 1: event {a}->{b} backwards")   # interp: and it orders nothing
        else:
            succ[a].add(b)
    reach: dict[str, set[str]] = {}
    for n in reversed(order):   # successors come later in order (stream order and forward events)
        r: set[str] = set()
        for m in succ[n]:
            r.add(m)
            r |= reach[m]
        reach[n] = r

    def hb(a: str, b: str) -> bool:
        if a == b or a == END or b == START:
            return False
        return a == START or b == END or b in reach[a]

    def chain(t: str) -> list[str]:
        c = [t]
        while tensors[c[-1]].get("view_of") is not None:
            c.append(tensors[c[-1]]["view_of"])
        return c

    def root(t: str) -> str:
        return chain(t)[-1]

    for n in order:
        for t in nodes[n]["inputs"]:
            for v in chain(t):   # interp: every writer along the chain
                w = producer.get(v)
                if w is None or w == n:
                    continue
                if pos[w] > pos[n]:
                    out.append(f"rule 1: {n} before {w} writing {v}")
                if not hb(w, n):
                    out.append(f"rule 2: {n} reads {t}, {w} writes {v}")
    groups: dict[str, list[str]] = {}
    for n in graph["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for g, ms in groups.items():
        if len({stream[m] for m in ms}) > 1:
            out.append(f"rule 1: group {g} on several streams")
            continue
        seq = [m for m in order if stream[m] == stream[ms[0]]]
        i = seq.index(ms[0])
        if seq[i:i + len(ms)] != ms:
            out.append(f"rule 1: group {g} not consecutive")

    offset = {t["id"]: t["offset"] for t in plan["tensors"]}
    align = {plan["alignment"], graph.get("alignment", 256)}
    arena = plan["arena_bytes"]
    roots = []
    for t, d in tensors.items():
        r = root(t)
        if tensors[r]["kind"] == "weight":
            if offset[t] is not None:
                out.append(f"rule 4: {t} outside the arena has an offset")
            continue
        if offset[t] is None:
            out.append(f"rule 4: {t} has no offset")
            continue
        if d.get("view_of") is not None:
            p = d["view_of"]
            if offset[p] is not None and offset[t] != offset[p] + d.get("view_offset", 0):
                out.append(f"rule 4: view {t} not at its parent's offset plus view_offset")
            continue
        roots.append(t)
        if offset[t] < 0 or any(offset[t] % a for a in align) or offset[t] + d["size"] > arena:
            out.append(f"rule 4: root {t} at {offset[t]}")
    if plan["lower_bound_bytes"] > arena:   # interp
        out.append("rule 4: lower bound above the arena")
    devices = plan.get("devices", 1)
    tdev = {t["id"]: t.get("device", 0) for t in plan["tensors"]}
    if devices > 1:   # docs/format.md "Multi-device plans": per-device arenas, streams and touches
        ndev = {e["node"]: e.get("device", 0) for e in plan["order"]}
        darena = plan["device_arena_bytes"]
        if len(darena) != devices or min(darena) < 0 or max(darena) > arena:
            out.append("rule 4: device_arena_bytes")
        if any(not 0 <= d < devices for d in list(ndev.values()) + list(tdev.values())):
            return out + ["rule 0: a device outside 0..devices-1"]
        on: dict[int, set[int]] = {}
        for n in order:
            on.setdefault(stream[n], set()).add(ndev[n])
        out += [f"rule 1: stream {s} on several devices" for s, ds in on.items() if len(ds) > 1]
        for t in tensors:
            if tdev[t] != tdev[root(t)]:
                out.append(f"rule 4: view {t} off its root's device")
        for t in roots:
            if offset[t] + tensors[t]["size"] > darena[tdev[t]]:
                out.append(f"rule 4: {t} past its device's arena")
        for n in order:
            touched = nodes[n]["inputs"] + ([] if nodes[n]["op"] == "COPY" else nodes[n]["outputs"])
            out += [f"rule 4: {n} touches {t} of another device" for t in touched if tdev[t] != ndev[n]]
    if out:
        return out

    acc: dict[str, set[str]] = {r: set() for r in roots}
    for r in roots:
        if r in producer:
            acc[r].add(producer[r])
        if tensors[r]["kind"] == "input":
            acc[r].add(START)
    for t, d in tensors.items():   # interp: an output view keeps its root to the end
        if d["kind"] == "output" and root(t) in acc:
            acc[root(t)].add(END)
    for n in order:
        for t in nodes[n]["inputs"]:
            if root(t) in acc:
                acc[root(t)].add(n)
        for t in nodes[n]["outputs"]:
            if t != root(t) and root(t) in acc:
                acc[root(t)].add(n)

    def exception(a: str, b: str) -> bool:
        """Node n, inplace {out: in}, in's root a, out's root b, n the producer of b (out itself or a view of b that
        n writes along with it); interp: n writes no view of a (that write would land on out's bytes)."""
        for n in order:
            node = nodes[n]
            if producer.get(b) != n or any(root(o) == a for o in node["outputs"]):
                continue
            if not any(root(o) == b and root(i) == a for o, i in (node.get("inplace") or {}).items()):
                continue
            if all(hb(x, y) or x == y == n for x in acc[a] for y in acc[b]):
                return True
        return False

    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            oa, ob, sa, sb = offset[a], offset[b], tensors[a]["size"], tensors[b]["size"]
            if sa == 0 or sb == 0 or oa + sa <= ob or ob + sb <= oa or tdev[a] != tdev[b]:   # interp: empty ranges
                continue
            if all(hb(x, y) for x in acc[a] for y in acc[b]) or all(hb(y, x) for x in acc[a] for y in acc[b]):
                continue
            if exception(a, b) or exception(b, a):
                continue
            out.append(f"rule 3: {a} and {b} overlap")
    return out


@st.composite
def gap_graphs(draw, max_nodes: int = 8):
    """A random valid graph (a ``Graph``) in the shapes listed in the module docstring."""
    alignment = draw(st.sampled_from([1, 2, 8, 256, 4096, 2 ** 20, 2 ** 31]))
    b = GraphBuilder("gap", alignment=alignment)
    size = st.one_of(st.sampled_from([0, 1, 256, 512]), st.integers(0, 900), st.sampled_from([2 ** 31 + 1, 2 ** 40 - 3, 2 ** 47]))
    readable: list[tuple[str, int]] = []   # (id, size) a node may read
    writable: list[tuple[str, int]] = []   # (id, size) a node may write a view into (views too: chains)
    kinds: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    k = 0

    def fresh(prefix: str) -> str:
        nonlocal k
        k += 1
        return f"{prefix}{k}"

    def root(t: str) -> str:
        while parent[t] is not None:
            t = parent[t]
        return t

    def add(t: str, s: int, kind: str, of: str | None) -> None:
        kinds[t], parent[t] = kind, of
        readable.append((t, s))
        writable.append((t, s))

    for _ in range(draw(st.integers(0, 2))):
        s = draw(size)
        add(b.input(fresh("x"), s), s, "input", None)
    if draw(st.booleans()):
        s = draw(size)
        add(b.weight(fresh("w"), s), s, "weight", None)
    group = None
    for _ in range(draw(st.integers(1, max_nodes))):
        shape = draw(st.sampled_from(["op", "op", "viewop", "setrows", "inplace_view", "noinput", "view"]))
        if shape == "view" and readable:   # an unproduced view (of a view: chains), read below
            pid, ps = draw(st.sampled_from(readable))
            vs = draw(st.integers(0, ps))
            rk = kinds[root(pid)]
            kind = draw(st.sampled_from(["intermediate", "output"] + ([rk] if rk in ("input", "weight") else [])))
            add(b.view(fresh("v"), pid, vs, draw(st.integers(0, ps - vs)), kind=kind), vs, kind, pid)
            shape = "op"
        ins: list[str] = []
        if readable and shape != "noinput":
            ins = [t for t, _ in draw(st.lists(st.sampled_from(readable), min_size=1, max_size=3))]
            if draw(st.integers(0, 4)) == 0:
                ins.append(ins[0])   # the same tensor twice
        outs: list[str] = []
        inplace: dict[str, str] = {}
        if shape in ("viewop", "setrows") and writable:
            pid, ps = draw(st.sampled_from(writable))
            vs = draw(st.integers(0, ps))
            kind = draw(st.sampled_from(["intermediate", "intermediate", "output"]))
            vid = b.view(fresh("v"), pid, vs, draw(st.integers(0, ps - vs)), kind=kind)
            if shape == "viewop" and pid not in ins:
                ins.append(pid)   # a view op reads what it views
            add(vid, vs, kind, pid)
            outs.append(vid)
        else:
            for _ in range(draw(st.integers(1, 2))):
                s = draw(size)
                kind = draw(st.sampled_from(["intermediate", "intermediate", "output"]))
                t = b.tensor(fresh("t"), s, kind)
                add(t, s, kind, None)
                outs.append(t)
            if draw(st.integers(0, 4)) == 0:   # the node writes a view of its own new root too
                s0 = dict(readable)[outs[0]]
                vs = draw(st.integers(0, s0))
                vid = b.view(fresh("v"), outs[0], vs, draw(st.integers(0, s0 - vs)))
                add(vid, vs, "intermediate", outs[0])
                outs.append(vid)
            cands = [t for t in ins if parent[t] is not None] if shape == "inplace_view" else ins
            if cands and (shape == "inplace_view" or draw(st.integers(0, 2)) == 0):
                inplace[draw(st.sampled_from(outs))] = draw(st.sampled_from(cands))
        if group is None or draw(st.booleans()):   # fusion groups: runs of consecutive nodes
            group = fresh("g") if draw(st.integers(0, 4)) == 0 else None
        b.node(fresh("n"), "OP", ins, outs, inplace=inplace or None, cost=float(draw(st.integers(0, 5))), group=group)
    return b.build()


MUTATIONS = ("shift", "shift_view", "onto", "drop_event", "swap", "restream", "shrink", "retarget", "event_back",
             "alignment", "grow_view", "tensor_device", "node_device", "device_arena",
             "add_event", "dup_node_stream")


def mutate(graph: dict[str, Any], plan: dict[str, Any], how: str, r) -> dict[str, Any] | None:
    """``plan`` (a dict, not changed) with one change of kind ``how`` drawn by ``r`` (a ``random.Random``-like
    chooser: ``r.choice``, ``r.randint``); None where the plan has nothing to change so. Views move with a moved
    root (else the mutant breaks rule 4 alone, which tells little)."""
    import copy

    p = copy.deepcopy(plan)
    tens = {t["id"]: t for t in graph["tensors"]}
    entries = {t["id"]: t for t in p["tensors"]}
    align = max(p["alignment"], graph.get("alignment", 256))

    def root(t: str) -> str:
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
        return t

    def move_root(rt: str, new: int) -> None:
        delta = new - entries[rt]["offset"]
        for t in tens:
            if root(t) == rt and entries[t]["offset"] is not None:
                entries[t]["offset"] += delta

    roots = [t for t in tens if tens[t].get("view_of") is None and entries[t]["offset"] is not None]
    views = [t for t in tens if tens[t].get("view_of") is not None and entries[t]["offset"] is not None]
    if how == "shift" and roots:
        rt = r.choice(roots)
        new = entries[rt]["offset"] + r.choice([-align, align])
        if new < 0:
            return None
        move_root(rt, new)
        p["arena_bytes"] = max(p["arena_bytes"], new + tens[rt]["size"])
    elif how == "onto" and len(roots) > 1:   # one root moved onto another's bytes
        a, b = r.choice(roots), r.choice(roots)
        if a == b:
            return None
        move_root(a, entries[b]["offset"])
        p["arena_bytes"] = max(p["arena_bytes"], entries[a]["offset"] + tens[a]["size"])
    elif how == "shift_view" and views:
        entries[r.choice(views)]["offset"] += r.choice([-1, 1, -align, align])
    elif how == "grow_view" and views:   # a view's offset follows a parent moved by view_offset's size
        v = r.choice(views)
        entries[v]["offset"] = entries[tens[v]["view_of"]]["offset"] if entries[tens[v]["view_of"]]["offset"] \
            is not None else 0
    elif how == "retarget" and views and len(roots) > 1:   # a view placed as if in another root
        v = r.choice(views)
        other = r.choice([t for t in roots if t != root(v)])
        entries[v]["offset"] = entries[other]["offset"] + tens[v].get("view_offset", 0)
    elif how == "drop_event" and p["events"]:
        del p["events"][r.randint(0, len(p["events"]) - 1)]
    elif how == "event_back" and p["events"]:   # an event turned around
        e = p["events"][r.randint(0, len(p["events"]) - 1)]
        e["after"], e["before"] = e["before"], e["after"]
    elif how == "swap" and len(p["order"]) > 1:
        i = r.randint(0, len(p["order"]) - 2)
        j = i + 1 if r.randint(0, 1) else r.randint(0, len(p["order"]) - 1)
        p["order"][i], p["order"][j] = p["order"][j], p["order"][i]
    elif how == "restream" and p["order"]:
        e = r.choice(p["order"])
        s = r.randint(0, p["streams"])
        if s == p["streams"]:
            p["streams"] += 1
        e["stream"] = s
        # events now within one stream are dropped: the mutant is about the move, not a malformed event
        st_of = {x["node"]: x["stream"] for x in p["order"]}
        p["events"] = [ev for ev in p["events"] if st_of[ev["after"]] != st_of[ev["before"]]]
    elif how == "shrink" and p["arena_bytes"] > 0:
        p["arena_bytes"] -= r.choice([1, align if align < p["arena_bytes"] else 1])
        p["lower_bound_bytes"] = min(p["lower_bound_bytes"], p["arena_bytes"])
    elif how == "alignment":
        p["alignment"] = r.choice([1, 3, 2 * align, 3 * align, align // 2 or 1])
    elif how == "add_event" and len(p["order"]) > 1:   # any pair: forward, backward or within one stream
        a, b = r.choice(p["order"])["node"], r.choice(p["order"])["node"]
        p["events"].append({"after": a, "before": b})
    elif how == "dup_node_stream" and p["streams"] > 1:   # fewer streams declared than used
        p["streams"] -= 1
    elif how == "tensor_device" and p.get("devices", 1) > 1:
        e = r.choice(p["tensors"])
        e["device"] = (e["device"] + 1) % p["devices"]
    elif how == "node_device" and p.get("devices", 1) > 1:
        e = r.choice(p["order"])
        e["device"] = (e["device"] + 1) % p["devices"]
    elif how == "device_arena" and p.get("devices", 1) > 1:
        d = r.randint(0, p["devices"] - 1)
        if p["device_arena_bytes"][d] == 0:
            return None
        p["device_arena_bytes"][d] -= 1
    else:
        return None
    return p


def random_plan(graph: dict[str, Any], r, *, max_streams: int = 3) -> dict[str, Any]:
    """A plan dict for ``graph`` made by no planner: a random issue order (mostly topological, by the writers
    along each input's view chain), random streams, a random set of events (mostly forward), and roots at
    random aligned offsets, often on another root's first byte or just past its end, so that rule 3 has
    overlaps to judge; views at their parents' offsets plus view_offset."""
    tens = {t["id"]: t for t in graph["tensors"]}
    producer = {o: n["id"] for n in graph["nodes"] for o in n["outputs"]}
    deps: dict[str, set[str]] = {}
    for n in graph["nodes"]:
        d = set()
        for t in n["inputs"]:
            while True:
                if t in producer and producer[t] != n["id"]:
                    d.add(producer[t])
                if tens[t].get("view_of") is None:
                    break
                t = tens[t]["view_of"]
        deps[n["id"]] = d
    order: list[str] = []
    left = [n["id"] for n in graph["nodes"]]
    while left:
        ready = [n for n in left if deps[n] <= set(order)] if r.randint(0, 19) else left
        n = r.choice(ready or left)
        order.append(n)
        left.remove(n)
    streams = r.randint(1, max_streams)
    stream = {n: r.randint(0, streams - 1) for n in order}
    events = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if stream[a] != stream[b] and r.randint(0, 2) == 0:
                events.append({"after": a, "before": b})
    if events and r.randint(0, 9) == 0:
        e = r.choice(events)
        e["after"], e["before"] = e["before"], e["after"]
    align = graph.get("alignment", 256)

    def up(x: int) -> int:
        return -(-x // align) * align

    offset: dict[str, int | None] = {}
    placed: list[str] = []
    for t, d in tens.items():
        if d.get("view_of") is not None or d["kind"] == "weight":
            continue
        cands = [0] + [offset[p] for p in placed] + [up(offset[p] + tens[p]["size"]) for p in placed]
        offset[t] = r.choice(cands)
        placed.append(t)

    def off(t: str) -> int | None:
        d = tens[t]
        if d.get("view_of") is None:
            return offset.get(t)
        p = off(d["view_of"])
        return None if p is None else p + d.get("view_offset", 0)

    arena = max([offset[t] + tens[t]["size"] for t in placed], default=0)
    return {"format": "memplan.plan/1", "graph": graph["name"], "alignment": align, "arena_bytes": arena,
            "lower_bound_bytes": 0, "streams": streams,
            "order": [{"node": n, "stream": stream[n]} for n in order], "events": events,
            "tensors": [{"id": t, "offset": off(t), "size": tens[t]["size"]} for t in tens],
            "solver": {"name": "random"}}


@st.composite
def wide_graphs(draw, max_nodes: int = 40):
    """Many nodes around one root, for plans on 16 streams and more (where ``memplan.verify`` switches to its
    array paths, ``verify._WIDE``): a root ``r`` (input, weight or produced), a chain of views of it, some of them
    written by nodes, and nodes each reading ``r`` or a view of it (or a tensor an earlier such node made) and
    making a tensor of their own, some in place."""
    b = GraphBuilder("wide", alignment=draw(st.sampled_from([1, 16, 256])))
    kind = draw(st.sampled_from(["input", "weight", "intermediate"]))
    size = 64
    if kind == "intermediate":
        b.input("x", 16)
        b.node("p", "OP", ["x"], b.tensor("r", size))
    else:
        b.tensor("r", size, kind)
    chain = ["r"]
    sizes = {"r": size}
    readable = ["r"]
    k = 0
    if draw(st.booleans()):   # a deep chain, every view written by a node of its own (concurrent writers)
        b.input("src", 4)
        for d in range(draw(st.integers(16, 24))):
            vid = b.view(f"c{d}", chain[-1], 40 - d, 1)
            sizes[vid] = 40 - d
            chain.append(vid)
            b.node(f"set{d}", "SET_ROWS", ["src"], [vid])
        readable.append(chain[-1])
    for _ in range(draw(st.integers(16, max_nodes))):
        what = draw(st.sampled_from(["read", "read", "read", "view", "write", "reread"]))
        k += 1
        if what == "view":   # a view of the chain's last, written by this node or by none
            psize = sizes[chain[-1]]
            vid = b.view(f"v{k}", chain[-1], max(psize - 2, 0), min(psize, 1))
            sizes[vid] = max(psize - 2, 0)
            chain.append(vid)
            readable.append(vid)
            if draw(st.booleans()):
                b.node(f"n{k}", "SET_ROWS", [draw(st.sampled_from(readable[:-1]))], [vid])
                continue
            what = "read"
        if what == "write":   # a fresh view somewhere in the chain, written
            parent = draw(st.sampled_from(chain))
            vid = b.view(f"w{k}", parent, min(4, sizes[parent]), 0)
            sizes[vid] = min(4, sizes[parent])
            b.node(f"n{k}", "SET_ROWS", [draw(st.sampled_from(readable))], [vid])
            readable.append(vid)
            continue
        src = draw(st.sampled_from(readable))
        out = b.tensor(f"t{k}", draw(st.sampled_from([0, 8, 64])), draw(st.sampled_from(["intermediate", "output"])))
        inplace = {out: src} if draw(st.integers(0, 5)) == 0 else None
        b.node(f"n{k}", "OP", [src], [out], inplace=inplace)
        if what == "reread":
            readable.append(out)
    return b.build()
