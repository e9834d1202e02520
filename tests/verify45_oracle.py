"""A brute-force oracle for CONTRACT.md's four safety rules, read line by line (session 45), for comparing with
``memplan.verify`` rule by rule and finding by finding, not only by verdict.

It reads the graph and the plan as JSON documents only (no ``memplan`` import): happens-before is the transitive
closure (bitsets) of stream order and *every* event naming two known nodes, overlap is checked for every pair of
roots, and each finding is a tuple naming what it is about:

- ``(1, "order", node)``: unknown, repeated, missing node, or a stream outside ``0..streams-1``
- ``(1, "topo", reader, writer)``: ``reader`` is issued before ``writer`` of something it reads
- ``(1, "event", after, before)``: an event naming an unknown node, on one stream, or not pointing forward
- ``(1, "group", name)``: a fusion group on several streams or not consecutive in its listed order on its stream
- ``(2, reader, tensor, writer)``: the writer of ``tensor`` (on its view chain) does not happen-before ``reader``
- ``(3, a, b)``: roots ``a`` and ``b`` (in the graph's tensor order) overlap while neither side of every pair of
  accesses is ordered
- ``(4, what, tensor)``: an entry unknown, repeated, missing, of another size, a weight-rooted tensor with an
  offset, an arena tensor without one, a view off its parent, a root misaligned or past the arena; and
  ``(4, "bound", "")`` for a lower bound above the arena

Two readings where the contract's words are short, both the project's (tests/oracle.py, tests/verify41_oracle.py):
an ``output`` *view* keeps its root to the end too (its bytes must survive the run), and every writer on a read
tensor's view chain counts for rules 1 and 2, not only its own and its root's (the reader reads bytes each wrote).
The in-place exception is the contract's: node ``n`` with ``{out: in}`` that produces ``out``'s root may be the last
access of ``in``'s root and the first of ``out``'s, unless ``n`` also writes into ``in``'s root (a view output: two
of its own outputs would then share bytes).
"""

from __future__ import annotations

from typing import Any

START, END = -1, -2   # the virtual accesses before and after every node


def _chain(tensors: dict[str, dict[str, Any]], tid: str) -> list[str]:
    out = [tid]
    while tensors[out[-1]].get("view_of") is not None:
        out.append(tensors[out[-1]]["view_of"])
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def findings(graph: dict[str, Any], plan: dict[str, Any], may_share: set[tuple[str, str]] | None = None,
             internals: dict[str, Any] | None = None) -> set[tuple]:
    """Every finding (module docstring) of ``plan`` for ``graph``; empty when the plan is safe. ``may_share``, when
    given (and the order is complete), receives every pair of roots (both ways) that rule 3 lets overlap under this
    schedule, wherever they are placed: what a generator needs to place roots tightly and still safely.
    ``internals``, when given (and the order is complete), receives ``hb`` (a function of two node ids, or START and
    END), ``acc`` (root id -> its accesses) and ``exempt`` ((node, in root, out root) of the in-place exception)."""
    out: set[tuple] = set()
    tensors = {t["id"]: t for t in graph["tensors"]}
    nodes = graph["nodes"]
    nid = [n["id"] for n in nodes]
    known = set(nid)
    producer = {o: n["id"] for n in nodes for o in n["outputs"]}
    root = {t: _chain(tensors, t)[-1] for t in tensors}

    # ---- rule 1: the order -------------------------------------------------------------------------------
    pos: dict[str, int] = {}
    stream: dict[str, Any] = {}
    for p, e in enumerate(plan["order"]):
        n, s = e["node"], e["stream"]
        if n not in known or n in pos:
            out.add((1, "order", n))
            continue
        if not _is_int(s) or not 0 <= s < plan["streams"]:
            out.add((1, "order", n))
        pos[n], stream[n] = p, s
    for n in nid:
        if n not in pos:
            out.add((1, "order", n))
    complete = len(pos) == len(nid)
    if not complete:
        return out
    for n in nodes:
        for t in n["inputs"]:
            for v in _chain(tensors, t):
                w = producer.get(v)
                if w is not None and pos[w] > pos[n["id"]]:
                    out.add((1, "topo", n["id"], w))
    hb_events = []
    for e in plan["events"]:
        a, b = e["after"], e["before"]
        if a not in known or b not in known:
            out.add((1, "event", a, b))
            continue
        if stream[a] == stream[b] or pos[a] >= pos[b]:
            out.add((1, "event", a, b))
        hb_events.append((a, b))
    groups: dict[str, list[str]] = {}
    for n in nodes:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    by_pos = sorted(nid, key=pos.__getitem__)
    for g, members in groups.items():
        if len({stream[m] for m in members}) > 1:
            out.add((1, "group", g))
            continue
        on_s = [m for m in by_pos if stream[m] == stream[members[0]]]
        i = on_s.index(members[0])
        if on_s[i:i + len(members)] != members:
            out.add((1, "group", g))

    # ---- happens-before: the transitive closure of stream order and every event -------------------------
    idx = {n: i for i, n in enumerate(by_pos)}
    succ = [0] * len(by_pos)
    last: dict[Any, int] = {}
    for n in by_pos:
        s = stream[n]
        if s in last:
            succ[last[s]] |= 1 << idx[n]
        last[s] = idx[n]
    for a, b in hb_events:
        succ[idx[a]] |= 1 << idx[b]
    reach = list(succ)
    for k in range(len(reach)):   # Warshall: events may point backwards, so no sweep in issue order suffices
        for i in range(len(reach)):
            if reach[i] >> k & 1:
                reach[i] |= reach[k]

    def hb(a: Any, b: Any) -> bool:
        if a == START:
            return b != START
        if b == END:
            return a != END
        if a == END or b == START:
            return False
        return bool(reach[idx[a]] >> idx[b] & 1)

    # ---- rule 2: every read sees its data ---------------------------------------------------------------------
    for n in nodes:
        for t in n["inputs"]:
            for v in _chain(tensors, t):
                w = producer.get(v)
                if w is not None and not hb(w, n["id"]):
                    out.add((2, n["id"], t, w))

    # ---- rule 4 -----------------------------------------------------------------------------------------------
    entry: dict[str, tuple] = {}
    for e in plan["tensors"]:
        t = e["id"]
        if t not in tensors:
            out.add((4, "unknown", t))
            continue
        if t in entry:
            out.add((4, "twice", t))
        entry[t] = (e["offset"], e["size"])
        if e["size"] != tensors[t]["size"]:
            out.add((4, "size", t))
    galign = graph.get("alignment", 256)
    for t, td in tensors.items():
        if t not in entry:
            out.add((4, "missing", t))
            continue
        off = entry[t][0]
        if tensors[root[t]]["kind"] == "weight":
            if off is not None:
                out.add((4, "weight", t))
            continue
        if off is None:
            out.add((4, "nooffset", t))
            continue
        if td.get("view_of") is not None:
            parent = entry.get(td["view_of"], (None,))[0]
            if parent is not None and off != parent + td.get("view_offset", 0):
                out.add((4, "view", t))
            continue
        if off < 0 or off % galign or off % plan["alignment"]:
            out.add((4, "align", t))
        if off + td["size"] > plan["arena_bytes"]:
            out.add((4, "arena", t))
    if plan["lower_bound_bytes"] > plan["arena_bytes"]:
        out.add((4, "bound", ""))

    # ---- rule 3: every pair of overlapping roots ----------------------------------------------------------------
    acc: dict[str, set] = {t: set() for t in tensors if t == root[t]}
    for t, td in tensors.items():
        if t == root[t] and td["kind"] == "input":
            acc[t].add(START)
        if td["kind"] == "output":
            acc[root[t]].add(END)
    for n in nodes:
        for t in n["inputs"] + n["outputs"]:
            acc[root[t]].add(n["id"])
    exempt = set()
    for n in nodes:
        writes = {root[o] for o in n["outputs"]}
        for o, i in (n.get("inplace") or {}).items():
            if producer.get(root[o]) == n["id"] and root[i] not in writes:
                exempt.add((n["id"], root[i], root[o]))

    if internals is not None:
        internals.update(hb=hb, acc=acc, exempt=exempt)

    def all_before(a: str, b: str) -> bool:
        return all(hb(x, y) or (x == y and (x, a, b) in exempt) for x in acc[a] for y in acc[b])

    if may_share is not None:
        arena_roots = [t for t in acc if tensors[t]["kind"] != "weight"]
        may_share.update((a, b) for a in arena_roots for b in arena_roots
                         if a != b and (all_before(a, b) or all_before(b, a)))
    roots = [t for t in tensors if t == root[t] and tensors[t]["kind"] != "weight" and tensors[t]["size"] > 0
             and t in entry and _is_int(entry[t][0])]
    for i, a in enumerate(roots):
        oa, sa = entry[a][0], tensors[a]["size"]
        for b in roots[i + 1:]:
            ob, sb = entry[b][0], tensors[b]["size"]
            if oa < ob + sb and ob < oa + sa and not (all_before(a, b) or all_before(b, a)):
                out.add((3, a, b))
    return out
