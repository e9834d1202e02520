"""Round 65's oracle: is a plan safe? Written from /work/shared/CONTRACT.md (and the readings docs/format.md
documents where the contract's words are short, each marked ``# interp``), not from ``memplan/verify.py``.

Why yet another one: ``memplan.verify`` is the product's last line of defence and is fast (vector clocks, painting
the arena, summaries per view and per stream), so it has room for bugs that a fast checker written by the same hands
could share. This one imports nothing (not memplan, not the older oracles): it reads the two JSON documents as plain
dicts and answers every question the slowest, most literal way:

- happens-before is the transitive closure of explicit edges (each node to the next one of its stream in ``order``,
  and each event whose wait is issued after its record), computed by a depth-first search from every node;
- rule 3 compares *every* pair of roots whose byte ranges overlap, and for them *every* pair of accesses;
- nothing is summarised, cached or pruned. It is meant for graphs of tens of nodes.

``findings(graph, plan)`` returns the broken rules as ``(rule, text)``; empty means safe. Rule 0 is a plan that
is not a well-formed plan of this graph at all (a field of the wrong type, another graph's name).

Round 65b (planio) added, from docs/format.md: multi-device plans ("Multi-device plans": a device per order and
tensor entry, one arena per device, rule 3 per device, a node touching only its own device's tensors but a
``COPY``, which runs on its source's device), and ``fused_groups=True`` (the "solver" field's ``--fused-groups``:
no two roots that one fusable group of several nodes touches share bytes).
"""

from __future__ import annotations

from typing import Any

START, END = "<start>", "<end>"   # the virtual accesses: an input's before every node, an output's after every node


def _is_int(v: Any) -> bool:
    """A JSON integer within the documented limits (docs/format.md "Limits": every plan integer within +-2^63)."""
    return type(v) is int and -2 ** 63 <= v < 2 ** 63


def findings(graph: dict[str, Any], plan: dict[str, Any], fused_groups: bool = False) -> list[tuple[int, str]]:
    """Every broken rule of ``plan`` for ``graph``, as ``(rule, text)``; [] when the plan is safe. ``fused_groups``:
    also safe for a backend that runs each fusable group of several nodes as one kernel (``verify --fused-groups``)."""
    out: list[tuple[int, str]] = []
    try:
        _check(graph, plan, out, fused_groups)
    except _Malformed as e:
        out.append((0, str(e)))
    return out


class _Malformed(Exception):
    """The plan is not a plan of this graph's shape: no rule can be judged."""


def _need(cond: bool, text: str) -> None:
    if not cond:
        raise _Malformed(text)


def _check(graph: dict[str, Any], plan: dict[str, Any], out: list[tuple[int, str]], fused_groups: bool) -> None:
    # ---- the graph, as the contract describes it ------------------------------------------------
    tensors = {t["id"]: t for t in graph["tensors"]}
    nodes = [n["id"] for n in graph["nodes"]]
    node_doc = {n["id"]: n for n in graph["nodes"]}
    producer: dict[str, str] = {}
    for n in graph["nodes"]:
        for o in n["outputs"]:
            producer[o] = n["id"]

    def chain(t: str) -> list[str]:
        """``t``, its parent, ..., its root."""
        c = [t]
        while tensors[c[-1]].get("view_of") is not None:
            c.append(tensors[c[-1]]["view_of"])
        return c

    def root(t: str) -> str:
        return chain(t)[-1]

    # ---- the plan's shape (a plan that is no plan: rule 0) ---------------------------------------
    _need(isinstance(plan, dict), "plan is not an object")
    _need(plan.get("format") == "memplan.plan/1", "plan format")
    # interp: a plan names its graph, when it names one (docs/format.md: "A plan belongs to one graph")
    _need(plan.get("graph", "") in ("", graph["name"]), "plan names another graph")
    for key in ("arena_bytes", "lower_bound_bytes", "streams", "alignment"):
        _need(_is_int(plan.get(key)), f"{key} is not an integer")
    _need(1 <= plan["streams"] <= 1024 and plan["alignment"] >= 1 and plan["arena_bytes"] >= 0
          and plan["lower_bound_bytes"] >= 0, "a count out of range")
    for key in ("order", "events", "tensors"):
        _need(isinstance(plan.get(key), list), f"{key} is not a list")
    order: list[tuple[str, Any]] = []
    for e in plan["order"]:
        _need(isinstance(e, dict) and isinstance(e.get("node"), str) and _is_int(e.get("stream")), "order entry")
        order.append((e["node"], e["stream"]))
    events: list[tuple[str, str]] = []
    for e in plan["events"]:
        _need(isinstance(e, dict) and isinstance(e.get("after"), str) and isinstance(e.get("before"), str), "event")
        events.append((e["after"], e["before"]))
    placed: list[tuple[str, Any, Any]] = []
    for e in plan["tensors"]:
        _need(isinstance(e, dict) and isinstance(e.get("id"), str) and _is_int(e.get("size"))
              and (e.get("offset") is None or _is_int(e.get("offset"))), "tensor entry")
        placed.append((e["id"], e["offset"], e["size"]))
    # multi-device (docs/format.md "Multi-device plans"): ``devices`` (absent: 1); a plan of several names a device in
    # every order and tensor entry and lists one arena per device; one of one device may restate device 0 (interp:
    # "a file that restates them is read as the one device they describe") and nothing else
    D = plan.get("devices", 1)
    _need(_is_int(D) and 1 <= D <= 1024, "devices")
    if D == 1:
        _need(plan.get("device_arena_bytes", [plan["arena_bytes"]]) == [plan["arena_bytes"]]
              and all(_is_int(a) for a in plan.get("device_arena_bytes", [])), "device_arena_bytes of one device")
        _need(all(e.get("device", 0) == 0 and _is_int(e.get("device", 0))
                  for key in ("order", "tensors") for e in plan[key]), "an entry off device 0 in a one-device plan")
    else:
        arenas = plan.get("device_arena_bytes")
        _need(isinstance(arenas, list) and len(arenas) == D and all(_is_int(a) for a in arenas), "device_arena_bytes")
        _need(all(_is_int(e.get("device")) for key in ("order", "tensors") for e in plan[key]), "an entry's device")
    node_dev = {e["node"]: e.get("device", 0) for e in plan["order"]}
    tensor_dev = {e["id"]: e.get("device", 0) for e in plan["tensors"]}

    # ---- rule 1: order is every node once, on a stream 0..streams-1 ------------------------------
    pos: dict[str, int] = {}
    stream: dict[str, int] = {}
    for p, (n, s) in enumerate(order):
        if n not in node_doc:
            out.append((1, f"order names unknown node {n!r}"))
            continue
        if n in pos:
            out.append((1, f"node {n!r} twice in order"))
            continue
        if not 0 <= s < plan["streams"]:
            out.append((1, f"node {n!r} on stream {s} outside 0..{plan['streams'] - 1}"))
        pos[n], stream[n] = p, s
    if D > 1:
        dev_of_stream: dict[int, int] = {}
        for n, s in order:
            d = node_dev[n]
            if not 0 <= d < D:
                out.append((1, f"node {n!r} on device {d} outside 0..{D - 1}"))
                continue
            if dev_of_stream.setdefault(s, d) != d:
                out.append((1, f"stream {s} on devices {dev_of_stream[s]} and {d}"))
    missing = [n for n in nodes if n not in pos]
    if missing:   # no happens-before without every node placed: rules 2 and 3 are not judged, rule 4 is
        out.append((1, f"order misses {missing}"))
    if not missing:
        seq = sorted(pos, key=pos.__getitem__)

        # writers of what a node reads (interp: every writer along the view chain, CONTRACT names t's and its root's)
        def writers(t: str) -> list[str]:
            return [producer[c] for c in chain(t) if c in producer]

        # rule 1: topological (every writer of what n reads is issued before n)
        for n in nodes:
            for t in node_doc[n]["inputs"]:
                for w in writers(t):
                    if pos[w] > pos[n]:
                        out.append((1, f"{n!r} issued before {w!r}, which writes {t!r} that it reads"))
        # rule 1: events name two nodes on different streams (interp: one stream is malformed), record before wait
        edges: dict[str, set[str]] = {n: set() for n in nodes}
        for a, b in events:
            if a not in pos or b not in pos:
                out.append((1, f"event {a!r}->{b!r} names an unknown node"))
                continue
            if stream[a] == stream[b]:
                out.append((1, f"event {a!r}->{b!r} inside stream {stream[a]}"))
            if pos[a] >= pos[b]:
                out.append((1, f"event {a!r}->{b!r} waits before its record"))
                continue   # interp: a wait before its record orders nothing
            edges[a].add(b)
        # rule 1: a fusion group runs consecutively, in its listed order, on one stream
        groups: dict[str, list[str]] = {}
        for n in graph["nodes"]:
            if n.get("group") is not None:
                groups.setdefault(n["group"], []).append(n["id"])
        for g, members in groups.items():
            if len({stream[m] for m in members}) > 1:
                out.append((1, f"group {g!r} on several streams"))
                continue
            if [pos[m] for m in members] != sorted(pos[m] for m in members):
                out.append((1, f"group {g!r} out of its listed order"))
            s = stream[members[0]]
            lo, hi = min(pos[m] for m in members), max(pos[m] for m in members)
            if any(stream[x] == s and lo < pos[x] < hi and x not in members for x in seq):
                out.append((1, f"group {g!r} interrupted on stream {s}"))

        # ---- happens-before: explicit edges, transitive closure by search ----------------------------
        last_on: dict[int, str] = {}
        for n in seq:
            if stream[n] in last_on:
                edges[last_on[stream[n]]].add(n)
            last_on[stream[n]] = n
        reach: dict[str, set[str]] = {}
        for n in nodes:
            seen: set[str] = set()
            todo = list(edges[n])
            while todo:
                x = todo.pop()
                if x not in seen:
                    seen.add(x)
                    todo.extend(edges[x])
            reach[n] = seen

        def hb(a: str, b: str) -> bool:
            if a == END or b == START:
                return False
            if a == START or b == END:
                return True
            return b in reach[a]   # (a node never reaches itself: edges only go forward in order)

        # ---- rule 2: every read sees its data ---------------------------------------------------------
        for n in nodes:
            for t in node_doc[n]["inputs"]:
                for w in writers(t):
                    if not hb(w, n):
                        out.append((2, f"{n!r} reads {t!r}, written by {w!r}, which does not happen-before it"))

    # ---- rule 4: every tensor placed once, views where their parents put them, aligned, in the arena ----
    offset: dict[str, Any] = {}
    broken4 = False
    twice: set[str] = set()
    for tid, off, size in placed:
        if tid not in tensors:
            out.append((4, f"unknown tensor {tid!r} placed"))
            broken4 = True
            continue
        if tid in offset:
            out.append((4, f"tensor {tid!r} placed twice"))
            broken4 = True
            twice.add(tid)
        if size != tensors[tid]["size"]:
            out.append((4, f"tensor {tid!r} of size {size}, {tensors[tid]['size']} in the graph"))
            broken4 = True
        offset[tid] = off
    for tid, t in tensors.items():
        if tid not in offset:
            out.append((4, f"tensor {tid!r} not placed"))
            broken4 = True
            continue
        in_arena = tensors[root(tid)]["kind"] != "weight"
        off = offset[tid]
        if not in_arena:
            if off is not None:
                out.append((4, f"weight memory {tid!r} given offset {off}"))
                broken4 = True
            continue
        if off is None:
            out.append((4, f"arena tensor {tid!r} without offset"))
            broken4 = True
            continue
        if t.get("view_of") is not None:
            poff = offset.get(t["view_of"])
            if poff is not None and off != poff + t.get("view_offset", 0):
                out.append((4, f"view {tid!r} at {off}, not its parent's {poff} + {t.get('view_offset', 0)}"))
                broken4 = True
            continue
        # interp: the graph's alignment and the plan's both hold; offsets are never negative
        if off < 0 or off % graph.get("alignment", 256) or off % plan["alignment"]:
            out.append((4, f"root {tid!r} at {off}: negative or misaligned"))
            broken4 = True
        if off + t["size"] > plan["arena_bytes"]:
            out.append((4, f"root {tid!r} [{off}, {off + t['size']}) ends past the arena {plan['arena_bytes']}"))
            broken4 = True
    if D > 1:
        for d, a in enumerate(plan["device_arena_bytes"]):
            if not 0 <= a <= plan["arena_bytes"]:   # ("a byte count: never negative, never above arena_bytes")
                out.append((4, f"device {d}'s arena {a} outside 0..arena_bytes"))
                broken4 = True
        for tid in tensors:
            if tid in tensor_dev and not 0 <= tensor_dev[tid] < D:
                out.append((4, f"tensor {tid!r} on device {tensor_dev[tid]} outside 0..{D - 1}"))
                broken4 = True
        if not broken4:
            for tid in tensors:   # "a view is on its root's device"
                if tensor_dev[tid] != tensor_dev[root(tid)]:
                    out.append((4, f"view {tid!r} on device {tensor_dev[tid]}, its root on {tensor_dev[root(tid)]}"))
                    broken4 = True
            for n in graph["nodes"]:
                d = node_dev.get(n["id"], -1)   # (-1: not in the order, which rule 1 names)
                if not 0 <= d < D:
                    continue   # (rule 1 said so; where it runs is unknown)
                # "a node other than COPY may only touch tensors on its own device ...; a COPY runs on its source's
                # device (it reads only tensors on its own device; its output may be on another)"
                touched = n["inputs"] if n["op"] == "COPY" else n["inputs"] + n["outputs"]
                for t in touched:
                    if tensor_dev[root(t)] != d:
                        out.append((4, f"node {n['id']!r} on device {d} touches {t!r} on device {tensor_dev[root(t)]}"))
                        broken4 = True
            for tid, t in tensors.items():   # each root against its own device's arena
                off = offset.get(tid)
                if t.get("view_of") is None and off is not None and tensors[tid]["kind"] != "weight" \
                        and off + t["size"] > plan["device_arena_bytes"][tensor_dev[tid]]:
                    out.append((4, f"root {tid!r} ends past device {tensor_dev[tid]}'s arena"))
                    broken4 = True
    if plan["lower_bound_bytes"] > plan["arena_bytes"]:   # interp: a "proven" bound above the plan's own arena
        out.append((4, "lower_bound_bytes above arena_bytes"))
    if missing:
        return   # rule 3 needs happens-before
    # ---- rule 3: no memory reused too early --------------------------------------------------------
    # round 70: judged whatever rule 4 found, on the roots with definite bytes (interp: one offset, on a device in
    # range; a root past the arena or misaligned still has its bytes), the others left out
    roots = [t for t in tensors if tensors[t].get("view_of") is None and tensors[t]["kind"] != "weight"
             and _is_int(offset.get(t)) and t not in twice and (D == 1 or 0 <= tensor_dev.get(t, -1) < D)]
    acc: dict[str, set[str]] = {r: set() for r in roots}
    for r in roots:
        if tensors[r]["kind"] == "input":
            acc[r].add(START)
        if r in producer:
            acc[r].add(producer[r])
    for t, td in tensors.items():
        r = root(t)
        if r in acc and td["kind"] == "output":
            acc[r].add(END)   # interp: an output view keeps its root to the end too
    for n in graph["nodes"]:
        for t in n["inputs"]:
            if root(t) in acc:
                acc[root(t)].add(n["id"])
        for t in n["outputs"]:
            if t != root(t) and root(t) in acc:
                acc[root(t)].add(n["id"])   # a node that produces a view of X accesses X

    def exception(a: str, b: str) -> set[str]:
        """The nodes ``n`` whose in-place pair lets ``(n, n)`` pass for ``a`` = in's root and ``b`` = out's root:
        ``n`` produces ``b`` itself (interp) and writes nothing into ``a`` (interp)."""
        ok = set()
        for n in graph["nodes"]:
            for o, i in (n.get("inplace") or {}).items():
                if root(i) == a and root(o) == b and producer.get(b) == n["id"] \
                        and all(root(w) != a for w in n["outputs"]):
                    ok.add(n["id"])
        return ok

    def ordered(a: str, b: str) -> bool:
        """Every access of ``a`` happens-before every access of ``b``, but for one in-place pair (n, n)."""
        allowed = exception(a, b)
        for n in [None, *allowed]:
            if all(hb(x, y) or (x == y == n) for x in acc[a] for y in acc[b]):
                return True
        return False

    def overlap(a: str, b: str) -> bool:
        """Roots ``a`` and ``b`` share bytes of one arena ("Rule 3 applies to roots on the same device only")."""
        sa, sb = tensors[a]["size"], tensors[b]["size"]
        oa, ob = offset[a], offset[b]
        # interp: size 0 overlaps nothing
        return not (sa == 0 or sb == 0 or oa + sa <= ob or ob + sb <= oa or tensor_dev[a] != tensor_dev[b])

    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            sa, sb = tensors[a]["size"], tensors[b]["size"]
            oa, ob = offset[a], offset[b]
            if not overlap(a, b):
                continue
            if not (ordered(a, b) or ordered(b, a)):
                out.append((3, f"roots {a!r} [{oa}, {oa + sa}) and {b!r} [{ob}, {ob + sb}) overlap, unordered"))

    # ---- fused groups: a group of several nodes run as one kernel reads while it writes ----------------
    if not fused_groups:
        return
    for g, members in groups.items():
        if len(members) < 2:
            continue
        last = max(members, key=pos.__getitem__)
        # "a group one of whose members' events is waited on by a node issued no later than its last member cannot
        # run as one kernel and is judged node by node"
        if any(a in members and a != last and b in pos and pos[b] <= pos[last] for a, b in events):
            continue
        touched = sorted({root(t) for m in members for t in node_doc[m]["inputs"] + node_doc[m]["outputs"]
                          if root(t) in acc})
        for i, a in enumerate(touched):
            for b in touched[i + 1:]:
                if overlap(a, b):   # "no two roots that one group of several nodes touches may share bytes"
                    out.append((3, f"group {g!r} touches {a!r} and {b!r}, which share bytes"))
