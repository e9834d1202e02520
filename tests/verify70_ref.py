"""The reference checker of rounds 69 and 70, ``ref_md``, and the helpers their verifier tests share.

``ref_md`` is written from /work/shared/CONTRACT.md and docs/format.md (its "Multi-device plans" section among them)
alone, to judge ``memplan.verify`` by. Why another checker: the verifier is the product's last line of defence; a plan
it accepts is run. Its speed comes from summaries (vector clocks, painting the arena, per-stream and per-view folds)
in which a missed case is a silently unsafe plan, and a checker that shares its summaries shares their misses.
``ref_md`` summarises nothing: happens-before is an explicit transitive closure (each node's full set of
predecessors, from the stream order and every event, cross-device copies' events among them), rule 3 compares every
pair of overlapping roots of one device and, for them, every pair of accesses (the virtual start and end accesses
included), rule 4 is judged per device. It reads only the two JSON documents.

One checker for one device and for several: round 69's ``ref_findings`` (one device only) was a copy of it less the
device checks; on every plan and mutant round 69's tests and hypothesis strategies make, the two returned the same set
of findings (17,698 plans: the file's run and 20 more hypothesis seeds; 0 differences), so round 69 uses this one.
The older oracles (``reference``, ``verify41_oracle``, ``verify45_oracle``, ``verify54_ref``, ``oracle65``) stay apart
by design: each is an independent reading of the contract.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import memplan
from memplan.cli import main as cli_main
from memplan.errors import PlanFormatError
from memplan.verify import check

START, END = "<start>", "<end>"   # the virtual accesses of an input (before every node) and an output (after every node)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def ref_md(g: dict[str, Any], p: dict[str, Any]) -> set[tuple]:
    """Why plan document ``p`` is unsafe for graph document ``g`` (empty: safe), each finding a tuple naming what it is
    about: ``(1, "order"|"stream"|"device", node)``, ``(1, "topo", reader, writer)``, ``(1, "event", after, before)``,
    ``(1, "group", name)``, ``(1, "stream_devices", stream)``, ``(2, reader, tensor, writer)``, ``(3, a, b)`` (a < b),
    ``(4, what, ...)``. Every rule is judged whatever the others find; only an order missing a node leaves
    happens-before (rules 2 and 3) unjudged."""
    out: set[tuple] = set()
    tens = {t["id"]: t for t in g["tensors"]}
    nodes = {n["id"]: n for n in g["nodes"]}
    D = p.get("devices", 1)

    def chain(t: str) -> list[str]:
        c = [t]
        while tens[c[-1]].get("view_of") is not None:
            c.append(tens[c[-1]]["view_of"])
        return c

    def root(t: str) -> str:
        return chain(t)[-1]

    producer = {o: n["id"] for n in g["nodes"] for o in n["outputs"]}

    def writers(t: str) -> list[str]:   # interp: rule 2 (and rule 1's dependencies) along the whole view chain
        return [producer[c] for c in chain(t) if c in producer]

    # ---- rule 1: the order
    pos: dict[str, int] = {}
    stream: dict[str, Any] = {}
    ndev: dict[str, int | None] = {}
    for i, e in enumerate(p["order"]):
        n, s = e["node"], e["stream"]
        if n not in nodes or n in pos:
            out.add((1, "order", n))
            continue
        pos[n], stream[n] = i, s
        if not (_is_int(s) and 0 <= s < p["streams"]):
            out.add((1, "stream", n))   # (judged on as the stream it names: verify goes on too)
    # "each stream must run on one device" (rule 1); a node's device out of range is rule 1 too
    on_device: dict[int, int] = {}
    for e in p["order"]:
        d = e.get("device", 0)
        if not 0 <= d < D:
            out.add((1, "device", e["node"]))
            if e["node"] in nodes:
                ndev.setdefault(e["node"], None)
            continue
        if e["node"] in nodes:
            ndev.setdefault(e["node"], d)
        if on_device.setdefault(e["stream"], d) != d:
            out.add((1, "stream_devices", e["stream"]))
    missing = [n for n in nodes if n not in pos]
    for n in missing:
        out.add((1, "order", n))

    # ---- rule 4: placement, per device ("rule 4 checks each tensor against its own device's arena")
    tdev: dict[str, int | None] = {}
    off: dict[str, Any] = {}
    twice: set[str] = set()
    for e in p["tensors"]:
        t = e["id"]
        if t not in tens:
            out.add((4, "unknown", t))
            continue
        if t in off:
            out.add((4, "twice", t))
            twice.add(t)
        off[t] = e["offset"]
        d = e.get("device", 0)
        tdev[t] = d if 0 <= d < D else None
        if tdev[t] is None:
            out.add((4, "device", t))
        if e["size"] != tens[t]["size"]:
            out.add((4, "size", t))
    arenas = p.get("device_arena_bytes", [p["arena_bytes"]])
    for d, a in enumerate(p.get("device_arena_bytes", [])):   # (none listed: one arena, arena_bytes)
        if not 0 <= a <= p["arena_bytes"]:
            out.add((4, "device_arena", d))
    for t in tens:
        if t not in off:
            out.add((4, "missing", t))
            continue
        if D > 1 and tdev.get(t) is not None and tdev.get(root(t)) is not None and tdev[t] != tdev[root(t)]:
            out.add((4, "view_device", t))   # "a view is on its root's device"
        if tens[root(t)]["kind"] == "weight":
            if off[t] is not None:
                out.add((4, "weight", t))
            continue
        if not _is_int(off[t]):
            out.add((4, "offset", t))
            continue
        parent = tens[t].get("view_of")
        if parent is not None:
            if _is_int(off.get(parent)) and off[t] != off[parent] + tens[t].get("view_offset", 0):
                out.add((4, "view", t))
            continue
        o, size = off[t], tens[t]["size"]
        if o < 0 or o % g.get("alignment", 256) or o % p["alignment"] or o + size > p["arena_bytes"]:
            out.add((4, "place", t))
        elif D > 1 and tdev[t] is not None and o + size > arenas[tdev[t]]:
            out.add((4, "device_place", t))
    if D > 1:   # a node other than COPY touches only its own device's tensors; a COPY reads only its own device's
        for n in g["nodes"]:
            d = ndev.get(n["id"])
            if d is None:
                continue
            touched = n["inputs"] if n["op"] == "COPY" else n["inputs"] + n["outputs"]
            for t in touched:
                if tdev.get(root(t)) is not None and tdev[root(t)] != d:
                    out.add((4, "touch", n["id"], t))
    if p["lower_bound_bytes"] > p["arena_bytes"]:
        out.add((4, "bound", ""))
    if missing:
        return out

    # ---- rule 1: topological, events, groups
    for n in nodes.values():
        for t in n["inputs"]:
            for w in writers(t):
                if pos[w] >= pos[n["id"]]:
                    out.add((1, "topo", n["id"], w))
    preds: dict[str, set[str]] = {n: set() for n in nodes}
    for e in p["events"]:
        a, b = e["after"], e["before"]
        if a not in nodes or b not in nodes:
            out.add((1, "event", a, b))
            continue
        if stream[a] == stream[b]:
            out.add((1, "event", a, b))
        if pos[a] >= pos[b]:
            out.add((1, "event", a, b))   # interp: a wait issued before its record orders nothing
            continue
        preds[b].add(a)   # events may join streams of different devices and count like any other
    groups: dict[str, list[str]] = {}
    for n in g["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for name, members in groups.items():
        if len({stream[m] for m in members}) > 1 or [pos[m] for m in members] != sorted(pos[m] for m in members):
            out.add((1, "group", name))
            continue
        lo, hi = pos[members[0]], pos[members[-1]]
        if any(stream[m] == stream[members[0]] and m not in members and lo < pos[m] < hi for m in nodes):
            out.add((1, "group", name))

    # ---- happens-before: each node's full set of predecessors (stream order and events), transitive by construction
    by_pos = sorted(nodes, key=pos.__getitem__)
    last_on: dict[Any, str] = {}
    for n in by_pos:
        if stream[n] in last_on:
            preds[n].add(last_on[stream[n]])
        last_on[stream[n]] = n
    anc: dict[str, set[str]] = {}
    for n in by_pos:
        anc[n] = set()
        for q in preds[n]:
            anc[n] |= anc[q] | {q}

    def hb(a: str, b: str) -> bool:
        if a == START:
            return b != START
        if b == END:
            return a != END
        if a == END or b == START:
            return False
        return a in anc[b]

    # ---- rule 2
    for n in nodes.values():
        for t in n["inputs"]:
            for w in writers(t):
                if not hb(w, n["id"]):
                    out.add((2, n["id"], t, w))

    # ---- rule 3: roots of one device whose bytes overlap; every pair of their accesses
    acc: dict[str, set[str]] = {}
    for r in tens:
        if root(r) == r and tens[r]["kind"] != "weight":
            acc[r] = {START} if tens[r]["kind"] == "input" else set()
    for t in tens:
        if tens[t]["kind"] == "output" and root(t) in acc:
            acc[root(t)].add(END)   # interp: an output view keeps its root to the end
    for n in nodes.values():
        for t in n["inputs"] + n["outputs"]:
            if root(t) in acc:
                acc[root(t)].add(n["id"])

    def ordered(a: str, b: str) -> bool:
        return all(hb(x, y) for x in acc[a] for y in acc[b])

    def in_place(a: str, b: str) -> bool:
        """Some node n with {out: in}, in's root a, producing out's root b and writing nothing into a (interp), is
        a's last access and b's first: the pair (n, n) is the one not ordered."""
        for n in nodes.values():
            if producer.get(b) != n["id"] or any(root(o) == a for o in n["outputs"]):
                continue
            for o, i in (n.get("inplace") or {}).items():
                if root(i) == a and root(o) == b:
                    nid = n["id"]
                    if all(x == nid or hb(x, nid) for x in acc[a]) and all(y == nid or hb(nid, y) for y in acc[b]):
                        return True
        return False

    # interp: a zero-size root overlaps nothing; a root placed twice or with no offset is left out
    live = sorted(r for r in acc if tens[r]["size"] > 0 and _is_int(off.get(r)) and r not in twice
                  and tdev.get(r) is not None)
    for i, a in enumerate(live):
        for b in live[i + 1:]:
            if tdev[a] != tdev[b]:
                continue   # "tensors on different devices never conflict"
            if off[a] < off[b] + tens[b]["size"] and off[b] < off[a] + tens[a]["size"]:
                if not (ordered(a, b) or ordered(b, a) or in_place(a, b) or in_place(b, a)):
                    out.add((3, a, b))
    return out



NAMED2 = re.compile(r"node '([^']*)' reads '([^']*)' but its writer '([^']*)'")
NAMED3 = re.compile(r"tensors '([^']*)' and '([^']*)' overlap")


def findings(g: dict[str, Any], p: dict[str, Any]) -> list[tuple[int, str]] | None:
    """``check``'s findings, None where the plan's fields are refused outright (``PlanFormatError``)."""
    try:
        return list(check(memplan.graph_from_dict(copy.deepcopy(g)), copy.deepcopy(p)))
    except PlanFormatError:
        return None


def compare(g: dict[str, Any], p: dict[str, Any]) -> bool:
    """``check`` and ``ref_md`` agree: the verdict, the rules broken (unless the order misses a node), and each rule-2 /
    rule-3 finding ``check`` names is one the reference makes. Returns whether the plan is safe."""
    ref = ref_md(g, p)
    found = findings(g, p)
    if found is None:
        assert ref, "verify refused the fields of a plan the reference finds safe"
        return False
    assert bool(found) == bool(ref), (found, sorted(ref, key=str))
    for rule, msg in found:
        if rule == 2:
            n, t, w = NAMED2.search(msg).groups()
            assert (2, n, t, w) in ref, (msg, sorted(ref, key=str))
        elif rule == 3:
            a, b = NAMED3.search(msg).groups()
            assert (3, min(a, b), max(a, b)) in ref, (msg, sorted(ref, key=str))
    if not any(f[:2] == (1, "order") for f in ref):
        assert {f[0] for f in ref} == {r for r, _m in found}, (found, sorted(ref, key=str))
    return not ref


def verify_cli(tmp_path: Path, capsys, g: dict[str, Any], p: dict[str, Any] | str) -> tuple[int, str, str]:
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    gp.write_text(json.dumps(g))
    pp.write_text(p if isinstance(p, str) else json.dumps(p))
    capsys.readouterr()
    rc = cli_main(["verify", str(gp), str(pp)])
    o = capsys.readouterr()
    return rc, o.out, o.err



def roots(g: dict[str, Any]) -> dict[str, str]:
    tens = {t["id"]: t for t in g["tensors"]}

    def root(t):
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
        return t
    return {t: root(t) for t in tens}


def move_root(g, p, r: str, new: int, device: int | None = None) -> None:
    """Root ``r`` to ``new`` (and to ``device``), its views with it."""
    entries = {e["id"]: e for e in p["tensors"]}
    old = entries[r]["offset"]
    for t, rt in roots(g).items():
        if rt == r and entries.get(t, {}).get("offset") is not None:
            entries[t]["offset"] += new - old
            if device is not None:
                entries[t]["device"] = device

