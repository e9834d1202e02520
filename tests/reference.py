"""A brute-force reading of CONTRACT.md, written for the tests and sharing no code with memplan.

Everything here is deliberately naive (O(n^2) and worse): happens-before is the explicit transitive
closure of "same stream, earlier in order" plus the events; accesses, overlaps and the lower bound
are computed pair by pair straight from the contract's sentences. It only reads ``Graph`` fields
(the validated input) and plain plan dicts, so a bug in memplan's schedule, lifetimes, problem,
solvers or verifier cannot leak into it.

memplan's documented interpretations are applied here too, so that the two can be compared:
rule 2 (and the data dependencies of rule 1) follow the whole view chain; a view whose kind is
``output`` keeps its root to the end; the in-place exception needs the node to produce ``out``'s root.
"""

from __future__ import annotations

from dataclasses import dataclass

START = "<start>"
END = "<end>"


def writers(graph, tid: str) -> list[str]:
    """Node ids that produce ``tid`` or any tensor on its view chain up to the root."""
    producer = {}
    for n in graph.nodes:
        for o in n.outputs:
            producer[o] = n.id
    out = []
    cur = tid
    tensors = {t.id: t for t in graph.tensors}
    while cur is not None:
        if cur in producer:
            out.append(producer[cur])
        cur = tensors[cur].view_of
    return out


def root_of(graph, tid: str) -> str:
    tensors = {t.id: t for t in graph.tensors}
    while tensors[tid].view_of is not None:
        tid = tensors[tid].view_of
    return tid


def abs_view_offset(graph, tid: str) -> int:
    tensors = {t.id: t for t in graph.tensors}
    off = 0
    while tensors[tid].view_of is not None:
        off += tensors[tid].view_offset
        tid = tensors[tid].view_of
    return off


@dataclass
class HB:
    """Explicit happens-before: ``rel[a]`` is the set of nodes that ``a`` happens-before."""

    rel: dict[str, set[str]]

    def __call__(self, a: str, b: str) -> bool:
        if a == START:
            return b != START
        if b == END:
            return a != END
        if a == END or b == START:
            return False
        return b in self.rel[a]


def happens_before(order: list[tuple[str, int]], events: list[tuple[str, str]]) -> HB:
    """The smallest transitive relation containing same-stream program order and the events."""
    succ: dict[str, set[str]] = {n: set() for n, _ in order}
    for i, (a, sa) in enumerate(order):
        for b, sb in order[i + 1:]:
            if sa == sb:
                succ[a].add(b)
    for a, b in events:
        if a in succ and b in succ:
            succ[a].add(b)
    return HB(closure(succ))


def closure(succ: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every node's reachable set: a DFS from each node, the transitive closure with no cleverness (the test oracles
    share it, so that each stays independent of the library, not of each other)."""
    rel: dict[str, set[str]] = {}
    for a in succ:
        seen: set[str] = set()
        stack = list(succ[a])
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack.extend(succ[x])
        rel[a] = seen
    return rel


def arena_roots(graph) -> list[str]:
    return [t.id for t in graph.tensors if t.view_of is None and t.kind != "weight"]


def accesses(graph) -> dict[str, list[str]]:
    """Contract rule 3: producer (START for inputs), readers of it or a view, view producers, END."""
    acc: dict[str, list[str]] = {r: [] for r in arena_roots(graph)}
    kinds = {t.id: t.kind for t in graph.tensors}
    for r in acc:
        if kinds[r] == "input":
            acc[r].append(START)
    for n in graph.nodes:
        for t in list(n.inputs) + list(n.outputs):
            r = root_of(graph, t)
            if r in acc and n.id not in acc[r]:
                acc[r].append(n.id)
    for t in graph.tensors:
        if t.kind == "output":
            r = root_of(graph, t.id)
            if r in acc and END not in acc[r]:
                acc[r].append(END)
    return acc


def all_before(hb: HB, acc_a: list[str], acc_b: list[str]) -> bool:
    return all(hb(x, y) for x in acc_a for y in acc_b)


def inplace_nodes(graph, a: str, b: str) -> list[str]:
    """Nodes with ``inplace {out: in}``, root(in) == a, root(out) == b, producing root b and writing no
    view of root a."""
    producer = {o: n.id for n in graph.nodes for o in n.outputs}
    out = []
    for n in graph.nodes:
        if any(root_of(graph, o) == a for o in n.outputs):
            continue
        for o, i in n.inplace:
            if root_of(graph, i) == a and root_of(graph, o) == b and producer.get(b) == n.id:
                out.append(n.id)
    return out


def inplace_exception(graph, hb: HB, acc: dict[str, list[str]], a: str, b: str) -> bool:
    """``a`` (in's root) and ``b`` (out's root) may overlap thanks to an in-place node ``n``: every
    access pair is ordered except the pair (n, n) itself."""
    for n in inplace_nodes(graph, a, b):
        if all(hb(x, y) or (x == n and y == n) for x in acc[a] for y in acc[b]):
            return True
    return False


def may_overlap(graph, hb: HB, acc: dict[str, list[str]], a: str, b: str) -> bool:
    """Whether roots ``a`` and ``b`` may share bytes under rule 3."""
    return (all_before(hb, acc[a], acc[b]) or all_before(hb, acc[b], acc[a])
            or inplace_exception(graph, hb, acc, a, b) or inplace_exception(graph, hb, acc, b, a))


def live_at(graph, hb: HB, acc: dict[str, list[str]], n: str) -> set[str]:
    """Roots live at node ``n`` (contract's lower-bound paragraph)."""
    node = next(x for x in graph.nodes if x.id == n)
    left_out = set()
    for o, i in node.inplace:  # an in that n overwrites in place as its last access
        a, b = root_of(graph, i), root_of(graph, o)
        if a in acc and b in acc and a != b and inplace_exception(graph, hb, acc, a, b):
            left_out.add(a)
    live = set()
    for r, xs in acc.items():
        if r in left_out:
            continue
        if any(x == n or hb(x, n) for x in xs) and any(not hb(x, n) for x in xs):
            live.add(r)
    return live


def lower_bound(graph, order, events) -> int:
    hb = happens_before(order, events)
    acc = accesses(graph)
    size = {t.id: t.size for t in graph.tensors}
    return max([sum(size[r] for r in live_at(graph, hb, acc, n)) for n, _ in order] + [0])


def check_plan(graph, doc: dict) -> set[int]:
    """The rule numbers a plan dict breaks (empty: safe), decided by brute force."""
    broken: set[int] = set()
    order = [(e["node"], e["stream"]) for e in doc["order"]]
    events = [(e["after"], e["before"]) for e in doc["events"]]
    ids = [n for n, _ in order]
    node_ids = [n.id for n in graph.nodes]
    if sorted(ids) != sorted(node_ids) or len(set(ids)) != len(ids):
        # no order of every node once: no happens-before (rules 2 and 3); rule 4 is still judged (round 70)
        return {1} | _placement(graph, doc, set())[0]
    pos = {n: i for i, n in enumerate(ids)}
    stream = dict(order)
    if any(not isinstance(s, int) or s < 0 or s >= doc["streams"] for s in stream.values()):
        broken.add(1)
    # rule 1: topological, events forward between streams, fusion groups
    for n in graph.nodes:
        for t in n.inputs:
            for w in writers(graph, t):
                if pos[w] > pos[n.id]:
                    broken.add(1)
    for a, b in events:
        if a not in pos or b not in pos or stream[a] == stream[b] or pos[a] >= pos[b]:
            broken.add(1)
    groups: dict[str, list[str]] = {}
    for n in graph.nodes:
        if n.group is not None:
            groups.setdefault(n.group, []).append(n.id)
    for members in groups.values():
        ss = {stream[m] for m in members}
        ps = [pos[m] for m in members]
        if len(ss) != 1 or ps != sorted(ps):
            broken.add(1)
            continue
        s = ss.pop()
        if any(stream[x] == s and x not in members for x in ids[ps[0]:ps[-1] + 1]):
            broken.add(1)
    # a wait issued before its record is a no-op in CUDA: such an event orders nothing
    hb = happens_before(order, [(a, b) for a, b in events if a in pos and b in pos and pos[a] < pos[b]])
    # rule 2
    for n in graph.nodes:
        for t in n.inputs:
            for w in writers(graph, t):
                if not hb(w, n.id):
                    broken.add(2)
    broken, placed, twice = _placement(graph, doc, broken)
    tensors = {t.id: t for t in graph.tensors}
    # rule 3: every pair of overlapping roots, by brute force
    acc = accesses(graph)
    # round 70: every root with one offset, however misplaced (its bytes are definite); the others are left out
    roots = [r for r in arena_roots(graph) if r not in twice and isinstance(placed.get(r, (None,))[0], int)]
    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            oa, ob = placed[a][0], placed[b][0]
            sa, sb = tensors[a].size, tensors[b].size
            if sa and sb and oa < ob + sb and ob < oa + sa:  # non-empty byte ranges overlap
                if not may_overlap(graph, hb, acc, a, b):
                    broken.add(3)
    return broken


def _placement(graph, doc: dict, broken: set[int]) -> tuple[set[int], dict, set]:
    """Rule 4 (and the plan's offsets agreeing with the graph), added to ``broken``; the plan's ``{id: (offset,
    size)}`` (the last entry of an id) and the ids placed twice."""
    # rule 4 (and the plan's offsets agreeing with the graph)
    placed = {}
    twice = set()
    for e in doc["tensors"]:
        if e["id"] in placed:
            broken.add(4)
            twice.add(e["id"])
        placed[e["id"]] = (e["offset"], e["size"])
    tensors = {t.id: t for t in graph.tensors}
    if set(placed) != set(tensors):
        broken.add(4)
    arena, align = doc["arena_bytes"], graph.alignment
    for t in graph.tensors:
        if t.id not in placed:
            continue
        off, size = placed[t.id]
        if size != t.size:
            broken.add(4)
        r = root_of(graph, t.id)
        if tensors[r].kind == "weight":
            if off is not None:
                broken.add(4)
            continue
        if off is None:
            broken.add(4)
            continue
        if t.view_of is not None:
            poff = placed.get(t.view_of, (None,))[0]
            if poff is None or off != poff + t.view_offset:
                broken.add(4)
            continue
        if off < 0 or off % align or off % doc["alignment"] or off + t.size > arena:
            broken.add(4)
    if doc["lower_bound_bytes"] > arena:   # (a false bound is no misplacement: rule 3 is still asked, session 65)
        broken.add(4)
    return broken, placed, twice


def max_clique_bound(graph, order, events) -> int:
    """The heaviest set of roots that pairwise may not overlap (an exact, exponential search).

    Such roots need disjoint bytes, so their total is a proven lower bound too; it dominates the
    per-node bound whenever concurrent branches each hold memory the other cannot reuse. Roots start
    at aligned offsets, so all but the highest of them take their size rounded up to the alignment:
    a clique proves (sum of rounded sizes) - (its largest rounding). Adding a member never lowers
    that, so maximal cliques are the ones to score.
    """
    hb = happens_before(order, events)
    acc = accesses(graph)
    a = graph.alignment
    size = {t.id: t.size for t in graph.tensors}
    rounded = {t: -(-s // a) * a for t, s in size.items()}
    roots = [r for r in arena_roots(graph) if size[r] > 0]
    nbr = {r: {s for s in roots if s != r and not may_overlap(graph, hb, acc, r, s)} for r in roots}
    best = 0

    def grow(members: list[str], cand: set[str], excluded: set[str]) -> None:  # Bron-Kerbosch, no pivot
        nonlocal best
        if not cand and not excluded:
            value = sum(rounded[m] for m in members) - max((rounded[m] - size[m] for m in members), default=0)
            best = max(best, value)
            return
        if sum(rounded[m] for m in members) + sum(rounded[c] for c in cand) <= best:
            return
        for v in sorted(cand):
            grow(members + [v], cand & nbr[v], excluded & nbr[v])
            cand = cand - {v}
            excluded = excluded | {v}

    grow([], set(roots), set())
    return best
