"""An independent, deliberately slow safety oracle for plans: CONTRACT.md's four rules, by brute force.

Why it exists: ``memplan.verify`` is fast (vector clocks, interval sweeps) and so has room for bugs; this
checker shares no code with the library (it reads only the graph and plan *JSON dicts*) and computes
happens-before as an explicit transitive closure and rule 3 over every pair of overlapping roots, so a
disagreement between the two points at a bug in one of them. Where the contract leaves room it follows
docs/format.md "memplan's documented interpretations" and "Multi-device plans" (each such place is
marked ``# interp``).

``findings(graph, plan)`` lists every broken rule as ``(rule, message)``; ``rule`` is 0 for a plan that
does not belong to the graph or is malformed (wrong ids, sizes, stream ids, device fields).
``per_node_bound(graph, plan)`` is the contract's live-at-one-node lower bound (per device).
"""

from __future__ import annotations

from typing import Any

from reference import closure

START, END = "<start>", "<end>"   # the virtual accesses of inputs (before all) and outputs (after all)


class _Model:
    """The graph and plan as plain dicts and sets, with the happens-before closure."""

    def __init__(self, graph: dict[str, Any], plan: dict[str, Any]):
        self.tensors = {t["id"]: t for t in graph["tensors"]}
        self.nodes = {n["id"]: n for n in graph["nodes"]}
        self.listed = [n["id"] for n in graph["nodes"]]
        self.producer: dict[str, str] = {}
        for n in graph["nodes"]:
            for o in n["outputs"]:
                self.producer[o] = n["id"]
        self.graph_alignment = graph.get("alignment", 256)
        self.order = [e["node"] for e in plan["order"]]
        self.pos = {n: i for i, n in enumerate(self.order)}
        self.stream = {e["node"]: e["stream"] for e in plan["order"]}
        self.devices = plan.get("devices", 1)
        self.node_device = {e["node"]: e.get("device", 0) for e in plan["order"]}
        self.tensor_device = {e["id"]: e.get("device", 0) for e in plan["tensors"]}
        self.offset = {e["id"]: e["offset"] for e in plan["tensors"]}
        self.events = [(e["after"], e["before"]) for e in plan["events"]]
        # happens-before: direct edges, then the transitive closure by a search from every node
        succ: dict[str, set[str]] = {n: set() for n in self.order}
        by_stream: dict[int, list[str]] = {}
        for n in self.order:
            by_stream.setdefault(self.stream[n], []).append(n)
        self.by_stream = by_stream
        for seq in by_stream.values():
            for a, b in zip(seq, seq[1:]):
                succ[a].add(b)
        for a, b in self.events:
            # interp: a wait issued before its record orders nothing (and breaks rule 1)
            if a in self.pos and b in self.pos and self.pos[a] < self.pos[b]:
                succ[a].add(b)
        self.reach: dict[str, set[str]] = closure(succ)

    def hb(self, a: str, b: str) -> bool:
        if a == b or a == END or b == START:
            return False
        if a == START or b == END:
            return True
        return b in self.reach[a]

    def chain(self, t: str) -> list[str]:
        """``t``, its parent, ..., its root."""
        out = [t]
        while self.tensors[out[-1]].get("view_of") is not None:
            out.append(self.tensors[out[-1]]["view_of"])
        return out

    def root(self, t: str) -> str:
        return self.chain(t)[-1]

    def in_root(self, t: str) -> int:
        return sum(self.tensors[v].get("view_offset", 0) for v in self.chain(t)[:-1])

    def writers(self, t: str) -> list[str]:
        """interp: the producers along the whole view chain (the contract names ``t``'s and its root's)."""
        return [self.producer[v] for v in self.chain(t) if v in self.producer]

    def accesses(self, root: str, fused: bool) -> set[str]:
        acc: set[str] = set()
        if root in self.producer:
            acc.add(self.producer[root])
        if self.tensors[root]["kind"] == "input":
            acc.add(START)
        for n in self.order:
            node = self.nodes[n]
            if any(self.root(t) == root for t in node["inputs"]):
                acc.add(n)
            if any(self.root(t) == root and t != root for t in node["outputs"]):
                acc.add(n)   # produces a view of the root
        # interp: a view whose kind is output keeps its root to the end
        if any(self.root(t) == root and t2["kind"] == "output" for t, t2 in self.tensors.items()):
            acc.add(END)
        if fused:   # a fusion group runs as one kernel: an access by one member is one by all
            for n in list(acc):
                g = self.nodes[n].get("group") if n in self.nodes else None
                if g is not None:
                    acc.update(m for m in self.order if self.nodes[m].get("group") == g)
        return acc

    def inplace_nodes(self, a: str, b: str) -> list[str]:
        """Nodes ``n`` with ``inplace {out: in}``, ``in``'s root ``a``, that produce ``b`` itself (interp:
        the producer of out's root, not of a view into it; and interp: n writes no view of ``a``, which would
        land on out's bytes)."""
        out = []
        for n in self.order:
            if any(self.root(o) == a for o in self.nodes[n]["outputs"]):
                continue
            for o, i in (self.nodes[n].get("inplace") or {}).items():
                if self.root(i) == a and self.root(o) == b and self.producer.get(b) == n:
                    out.append(n)
        return out

    def arena_of(self, plan: dict[str, Any], t: str) -> int:
        if self.devices > 1:
            return plan["device_arena_bytes"][self.tensor_device[t]]
        return plan["arena_bytes"]


def _structure(graph: dict[str, Any], plan: dict[str, Any]) -> list[tuple[int, str]]:
    """Rule 0: the plan must be a plan of this graph, with well-formed fields (else nothing else is checked)."""
    out = []
    gnodes = [n["id"] for n in graph["nodes"]]
    pnodes = [e["node"] for e in plan["order"]]
    if sorted(gnodes) != sorted(pnodes):
        out.append((0, "order is not every node exactly once"))
    gt = sorted((t["id"], t["size"]) for t in graph["tensors"])
    pt = sorted((t["id"], t["size"]) for t in plan["tensors"])
    if gt != pt:
        out.append((0, "tensors are not the graph's (ids and sizes)"))
    for a, b in ((e["after"], e["before"]) for e in plan["events"]):
        if a not in gnodes or b not in gnodes:
            out.append((0, f"event {a}->{b} names an unknown node"))
    for e in plan["order"]:
        if not (isinstance(e["stream"], int) and 0 <= e["stream"] < plan["streams"]):
            out.append((0, f"stream of {e['node']} outside 0..streams-1"))
    if not (isinstance(plan["alignment"], int) and plan["alignment"] >= 1):
        out.append((0, "alignment below 1"))
    devices = plan.get("devices", 1)
    if devices > 1:
        if len(plan.get("device_arena_bytes", [])) != devices:
            out.append((0, "device_arena_bytes does not list every device"))
        for e in plan["order"] + plan["tensors"]:
            if not (isinstance(e.get("device"), int) and 0 <= e["device"] < devices):
                out.append((0, f"device of {e.get('node', e.get('id'))} outside 0..devices-1"))
    return out


def findings(graph: dict[str, Any], plan: dict[str, Any], *, fused_groups: bool = False) -> list[tuple[int, str]]:
    """Every rule ``plan`` breaks for ``graph`` (both as JSON dicts); empty when the plan is safe."""
    out = _structure(graph, plan)
    if out:
        return out
    m = _Model(graph, plan)
    pos, stream, hb = m.pos, m.stream, m.hb

    # ---- rule 1: topological order, forward events between streams, fusion groups -----------------
    for n in m.order:
        for t in m.nodes[n]["inputs"]:
            for w in m.writers(t):
                if w != n and pos[w] > pos[n]:
                    out.append((1, f"{n} issued before {w}, which writes its input {t}"))
    for a, b in m.events:
        if stream[a] == stream[b]:
            out.append((1, f"event {a}->{b} within one stream"))
        if pos[a] >= pos[b]:
            out.append((1, f"event {a}->{b} waits before it is recorded"))
    groups: dict[str, list[str]] = {}
    for n in m.listed:
        if m.nodes[n].get("group") is not None:
            groups.setdefault(m.nodes[n]["group"], []).append(n)
    for g, members in groups.items():
        if len({stream[n] for n in members}) != 1:
            out.append((1, f"group {g} spans streams"))
            continue
        seq = m.by_stream[stream[members[0]]]
        i = seq.index(members[0])
        if seq[i:i + len(members)] != members:
            out.append((1, f"group {g} is not consecutive on its stream in listed order"))

    # ---- rule 2: every read sees its data -----------------------------------------------------------
    for n in m.order:
        for t in m.nodes[n]["inputs"]:
            for w in m.writers(t):
                if w != n and not hb(w, n):
                    out.append((2, f"{n} reads {t} but writer {w} does not happen-before it"))

    # ---- rule 4 (and the offsets' form): alignment, bounds, nulls, views -----------------------------
    arena_roots = [t for t, d in m.tensors.items() if d.get("view_of") is None and d["kind"] != "weight"]
    for t, d in m.tensors.items():
        r = m.root(t)
        off = m.offset[t]
        if m.devices > 1 and m.tensor_device[t] != m.tensor_device[r]:
            out.append((4, f"view {t} is not on its root's device"))
        if m.tensors[r]["kind"] == "weight":
            if off is not None:
                out.append((4, f"{t}: offset {off} for a tensor outside the arena"))
            continue
        if off is None:
            out.append((4, f"{t}: null offset in the arena"))
            continue
        if d.get("view_of") is not None:
            if m.offset[r] is not None and off != m.offset[r] + m.in_root(t):
                out.append((4, f"view {t}: offset {off} is not its parent's plus view_offset"))
            continue
        if off < 0:
            out.append((4, f"{t}: negative offset"))
        for al in {plan["alignment"], m.graph_alignment}:
            if off % al:
                out.append((4, f"{t}: offset {off} not a multiple of {al}"))
        if off + d["size"] > m.arena_of(plan, t) or off + d["size"] > plan["arena_bytes"]:
            out.append((4, f"{t}: ends past the arena"))
    # interp (verify's, not written in the contract): a plan whose proven bound exceeds its own arena
    # contradicts itself; each device's arena is at most arena_bytes (docs/format.md: the largest of them)
    if plan["lower_bound_bytes"] > plan["arena_bytes"]:
        out.append((4, "lower_bound_bytes exceeds arena_bytes"))
    if m.devices > 1 and max(plan["device_arena_bytes"]) > plan["arena_bytes"]:
        out.append((4, "a device arena exceeds arena_bytes"))
    if m.devices > 1 and min(plan["device_arena_bytes"]) < 0:   # interp: a byte count, as arena_bytes is
        out.append((4, "a device arena is negative"))
    if m.devices > 1:   # interp (multi-device): one device per stream, nodes touch their own device only
        dev_of_stream: dict[int, set[int]] = {}
        for n in m.order:
            dev_of_stream.setdefault(stream[n], set()).add(m.node_device[n])
        for s, ds in dev_of_stream.items():
            if len(ds) > 1:
                out.append((1, f"stream {s} runs on devices {sorted(ds)}"))
        for n in m.order:
            # (session 41, docs/format.md: a COPY is a push, run on its source's device: it reads only tensors
            # of its own device, and its output may be on another)
            touched = m.nodes[n]["inputs"] if m.nodes[n].get("op") == "COPY" else (
                list(m.nodes[n]["inputs"]) + list(m.nodes[n]["outputs"]))
            for t in touched:
                if m.tensor_device[m.root(t)] != m.node_device[n]:
                    out.append((4, f"{n} on device {m.node_device[n]} touches {t} of another device"))

    # ---- rule 3: overlapping roots are ordered by happens-before --------------------------------------
    # (node by node also with fused_groups: a backend runs a group it cannot fuse node by node; the fused
    # groups' kernels are judged apart below, by ``_fused_units``)
    acc = {r: m.accesses(r, False) for r in arena_roots}
    if fused_groups:
        out += _fused_units(m, groups, arena_roots)
    for a, b in _unordered_overlaps(m, arena_roots, acc, hb):
        if _inplace_ok(m, a, b, acc) or _inplace_ok(m, b, a, acc):
            continue
        out.append((3, f"roots {a} and {b} overlap without happens-before between their accesses"))
    return out


def _fused_units(m: _Model, groups: dict[str, list[str]], arena_roots: list[str]) -> list[tuple[int, str]]:
    """Rule 3 of the plan with each fusion group of several nodes as one kernel (interp: ``fused_groups``, round 49,
    as ``runtime.step`` issues it): the kernel is one unit at its last member's place, after every member's waits,
    recording every member's events after it. A group whose member's event is waited on by a node issued no later
    than its last member cannot run so (the wait would come before the record) and stays node by node. Units'
    happens-before is its own closure (stream order of units, events between units); a unit is an access of every
    root any of its members touches; the in-place exception holds only for a unit of one node."""
    unit = {n: n for n in m.order}
    last = {g: max(ms, key=m.pos.__getitem__) for g, ms in groups.items() if len(ms) > 1}
    early = {g for g in last for a, b in m.events
             if m.nodes[a].get("group") == g and a != last[g] and m.pos[b] <= m.pos[last[g]]}
    for g, ms in groups.items():
        if g in last and g not in early:
            for n in ms:
                unit[n] = "<group>" + g
    succ: dict[str, set[str]] = {u: set() for u in unit.values()}
    for seq in m.by_stream.values():
        us = [unit[n] for n in seq]
        for a, b in zip(us, us[1:]):
            if a != b:
                succ[a].add(b)
    for a, b in m.events:
        if unit[a] != unit[b] and m.pos[a] < m.pos[b]:
            succ[unit[a]].add(unit[b])
    reach = closure(succ)

    def hb(x: str, y: str) -> bool:
        if x == y or x == END or y == START:
            return False
        return x == START or y == END or y in reach[x]

    acc = {r: {unit.get(x, x) for x in m.accesses(r, False)} for r in arena_roots}
    out = []
    for a, b in _unordered_overlaps(m, arena_roots, acc, hb):
        if any(all(hb(x, y) or x == y == n for x in acc[p] for y in acc[q])
               for p, q in ((a, b), (b, a)) for n in m.inplace_nodes(p, q) if unit[n] == n):
            continue
        out.append((3, f"roots {a} and {b} overlap without happens-before between their accesses, fusion "
                       "groups run as one kernel each"))
    return out


def _unordered_overlaps(m, arena_roots, acc, hb):
    """The pairs of arena roots on one device whose non-empty byte ranges overlap and whose accesses (``acc``) are
    not all ordered one way by ``hb``: rule 3's candidates, before its in-place exception."""
    for i, a in enumerate(arena_roots):
        for b in arena_roots[i + 1:]:
            oa, ob = m.offset[a], m.offset[b]
            if oa is None or ob is None or m.tensor_device[a] != m.tensor_device[b]:
                continue
            sa, sb = m.tensors[a]["size"], m.tensors[b]["size"]
            if not (sa > 0 and sb > 0 and oa < ob + sb and ob < oa + sa):   # empty ranges overlap nothing
                continue
            if not (all(hb(x, y) for x in acc[a] for y in acc[b]) or all(hb(y, x) for x in acc[a] for y in acc[b])):
                yield a, b


def _inplace_ok(m: _Model, a: str, b: str, acc: dict[str, set[str]]) -> bool:
    """The one exception of rule 3: ``a`` (in's root) overwritten by ``b`` (out's root) at node ``n``."""
    return any(all(m.hb(x, y) or x == y == n for x in acc[a] for y in acc[b]) for n in m.inplace_nodes(a, b))


def per_node_bound(graph: dict[str, Any], plan: dict[str, Any]) -> int:
    """The largest total size of roots live at one node (per device), the contract's lower bound. An ``in``
    counts as overwritten in place at ``n`` whenever every other access of its root happens-before ``n``
    (the loosest reading, so a library bound below this one is a bug however the exception is read)."""
    m = _Model(graph, plan)
    roots = [t for t, d in m.tensors.items() if d.get("view_of") is None and d["kind"] != "weight"]
    acc = {r: m.accesses(r, False) for r in roots}
    best = 0
    for n in m.order:
        dropped = set()
        for o, i in (m.nodes[n].get("inplace") or {}).items():
            a, b = m.root(i), m.root(o)
            if a != b and a in acc and m.producer.get(b) == n and all(m.hb(x, n) for x in acc[a] if x != n):
                dropped.add(a)
        totals: dict[int, int] = {}
        for r in roots:
            if r in dropped:
                continue
            if any(x == n or m.hb(x, n) for x in acc[r]) and any(not m.hb(x, n) for x in acc[r]):
                d = m.tensor_device[r]
                totals[d] = totals.get(d, 0) + m.tensors[r]["size"]
        best = max([best, *totals.values()])
    return best


def optimal_arena(graph: dict[str, Any], plan: dict[str, Any], *, fused_groups: bool = False,
                  max_roots: int = 7) -> int | None:
    """The smallest ``arena_bytes`` of any safe placement under ``plan``'s schedule (the largest device's
    optimum, see ``optimal_arenas``), or None when a device has too many roots to try."""
    per = optimal_arenas(graph, plan, fused_groups=fused_groups, max_roots=max_roots)
    return None if per is None else max(per.values(), default=0)


def optimal_arenas(graph: dict[str, Any], plan: dict[str, Any], *, fused_groups: bool = False,
                   max_roots: int = 7) -> dict[int, int] | None:
    """Per device, the smallest arena of any safe placement under ``plan``'s schedule (order, streams,
    events), by brute force; None above ``max_roots`` arena roots of nonzero size on one device.

    Two roots may share bytes exactly when rule 3 lets them (``findings`` decides, on the pair alone). Any
    placement can be pushed down, root by root, to the lowest aligned offset clear of the roots it may not
    share with, without breaking another rule; so some order of the roots placed first-fit is optimal, and
    trying every order finds the optimum."""
    m = _Model(graph, plan)
    roots = [t for t, d in m.tensors.items() if d.get("view_of") is None and d["kind"] != "weight"
             and d["size"] > 0]
    acc = {r: m.accesses(r, fused_groups) for r in roots}

    def may_share(a: str, b: str) -> bool:
        if m.tensor_device[a] != m.tensor_device[b]:
            return True
        return (all(m.hb(x, y) for x in acc[a] for y in acc[b]) or all(m.hb(y, x) for x in acc[a] for y in acc[b])
                or _inplace_ok(m, a, b, acc) or _inplace_ok(m, b, a, acc))

    align = max(plan["alignment"], m.graph_alignment)
    if align % min(plan["alignment"], m.graph_alignment):
        return None   # two alignments that do not divide: first-fit on their lcm would be a guess
    per: dict[int, int] = {}
    for dev in sorted({m.tensor_device[r] for r in roots}):
        rs = [r for r in roots if m.tensor_device[r] == dev]
        if len(rs) > max_roots:
            return None
        apart = {(a, b) for a in rs for b in rs if a != b and not may_share(a, b)}
        per[dev] = least_first_fit({r: m.tensors[r]["size"] for r in rs}, apart, align)
    return per


def least_first_fit(sizes: dict, apart: set, align: int) -> int:
    """The smallest arena over every order of placing ``sizes`` (key -> bytes) first-fit at ``align``-aligned
    offsets, keys in ``apart`` pairs never sharing bytes. Why every order: any packing can be pushed down, item
    by item, to the lowest aligned offset clear of the items it may not share with, so some first-fit order is
    optimal. 0 for no items."""
    from itertools import permutations

    best: int | None = None
    for perm in permutations(sizes):
        placed: list[tuple[int, int, Any]] = []
        top = 0
        for r in perm:
            size, off = sizes[r], 0
            for lo, hi, _o in sorted((p for p in placed if (p[2], r) in apart), key=lambda p: (p[0], p[1])):
                if off + size <= lo:
                    break
                off = max(off, -(-hi // align) * align)
            placed.append((off, off + size, r))
            top = max(top, off + size)
            if best is not None and top >= best:
                break
        best = top if best is None else min(best, top)
    return best or 0
