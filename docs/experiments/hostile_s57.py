# ruff: noqa: B023  (every lambda here runs inside the loop that made it, under ``guarded``)
"""Session 57 (hostile57): a fuzz driver feeding mutated graphs, plans, CSVs and ONNX models to the library and CLI.

Why: memplan is checked on hostile inputs nobody shows us; each case here must end in a ``memplan.errors`` exception
(library) or one line and exit 2 (CLI), never a raw traceback, a hang, an unsafe plan passed as safe, or an input file
changed. Everything runs in one process (``cli.main(argv)`` with stdout/stderr captured), each case under a SIGALRM
watchdog, so thousands of inputs take minutes on a 2-core machine.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/hostile_s57.py [--quick] [--only graph,plan,cli,...]``.
It prints one line per defect (kind, case, exception) and a count per family; results: ``hostile_s57.txt``.
Checks made on what is accepted:
- a graph that loads plans, and its plan passes ``verify``; a serial plan is checked against an independent
  interval check written here (``serial_unsafe``: overlapping roots whose serial live ranges overlap);
- a mutated plan that ``verify`` accepts is checked the same way where it is serial;
- every CLI run: exit 0 or 2, on 2 exactly one stderr line starting ``memplan: error:``, no ``Traceback``, every
  input byte-identical afterwards, and an output, where written, parses as the document it claims to be.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import math
import os
import random
import signal
import stat
import tempfile
import time
import traceback
import warnings


class Hang(BaseException):
    """Raised by the watchdog: a case that ran past its time."""


def _alarm(_sig, _frame):
    raise Hang()


HOSTILE_VALUES = [None, True, False, 0, -1, -(2**63), 2**63, 2**64 + 1, 10**40, 1.5, 0.0, -0.0, float("nan"),
                  float("inf"), float("-inf"), 1e308, "", "x", "\u202e\x00\x1b[31m", "256", [], [1], {}, {"a": 1},
                  "\ud800", 3.0]


def paths(doc, prefix=(), limit_items=3):
    """Every (path, value) of a JSON document, lists cut to their first ``limit_items`` entries plus the last."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,), limit_items)
    elif isinstance(doc, list):
        idx = list(range(min(limit_items, len(doc))))
        if len(doc) > limit_items:
            idx.append(len(doc) - 1)
        for i in idx:
            yield from paths(doc[i], prefix + (i,), limit_items)


def get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def setp(doc, path, value):
    d = copy.deepcopy(doc)
    if not path:
        return value
    get(d, path[:-1])[path[-1]] = value
    return d


def delp(doc, path):
    d = copy.deepcopy(doc)
    parent = get(d, path[:-1])
    del parent[path[-1]]
    return d


def point_mutants(doc, rng, values=HOSTILE_VALUES, limit_items=3):
    """Deletion and every hostile value at every path (lists cut), plus renamed keys."""
    out = []
    for path, _v in paths(doc, limit_items=limit_items):
        if not path:
            continue
        out.append((f"del {path}", delp(doc, path)))
        for val in values:
            out.append((f"set {path}={val!r:.30}", setp(doc, path, val)))
        if isinstance(path[-1], str):
            parent = copy.deepcopy(doc)
            p = get(parent, path[:-1])
            p[path[-1] + "_"] = p.pop(path[-1])
            out.append((f"rename {path}", parent))
    return out


def graph_structural(doc, rng):
    """Graph-level mutations: duplicates, cycles, self-loops, views and in-place twisted, empty/unicode names."""
    out = []
    t, n = doc["tensors"], doc["nodes"]
    ids = [x["id"] for x in t]
    nids = [x["id"] for x in n]
    d = copy.deepcopy(doc); d["tensors"].append(copy.deepcopy(t[0])); out.append(("dup tensor", d))
    d = copy.deepcopy(doc); d["nodes"].append(copy.deepcopy(n[0])); out.append(("dup node", d))
    d = copy.deepcopy(doc); d["nodes"][0]["id"] = t[0]["id"]; out.append(("node id == tensor id", d))
    d = copy.deepcopy(doc); d["nodes"].reverse(); out.append(("reversed order", d))
    for i, node in enumerate(n[:4]):
        if node["outputs"]:
            d = copy.deepcopy(doc); d["nodes"][i]["inputs"] = list(node["inputs"]) + [node["outputs"][0]]
            out.append((f"self loop {node['id']}", d))
            d = copy.deepcopy(doc); d["nodes"][i]["outputs"] = list(node["outputs"]) * 2
            out.append((f"output twice {node['id']}", d))
            d = copy.deepcopy(doc); d["nodes"][i]["inputs"] = list(node["inputs"]) * 3
            out.append((f"input thrice {node['id']}", d))
    if len(n) >= 2 and n[-1]["outputs"]:
        d = copy.deepcopy(doc); d["nodes"][0]["inputs"] = list(n[0]["inputs"]) + [n[-1]["outputs"][0]]
        out.append(("cycle first<-last", d))
    for i, ten in enumerate(t[:6]):
        for kind in ("input", "weight", "output", "intermediate", "bogus", "INPUT"):
            d = copy.deepcopy(doc); d["tensors"][i]["kind"] = kind; out.append((f"kind {ten['id']}={kind}", d))
        d = copy.deepcopy(doc); d["tensors"][i]["view_of"] = ten["id"]; d["tensors"][i]["view_offset"] = 0
        out.append((f"view of self {ten['id']}", d))
        other = ids[(i + 1) % len(ids)]
        d = copy.deepcopy(doc); d["tensors"][i]["view_of"] = other; d["tensors"][i]["view_offset"] = 0
        out.append((f"view {ten['id']} of {other}", d))
        for off in (-1, 1, 2**62, ten.get("size", 0), 1.0, True, float("nan")):
            d = copy.deepcopy(doc); d["tensors"][i]["view_of"] = other; d["tensors"][i]["view_offset"] = off
            out.append((f"view {ten['id']} of {other} at {off!r}", d))
        for new in ("", " ", "\u00e9", "a" * 10000, "\x00", ids[(i + 1) % len(ids)], "../x", "-"):
            d = copy.deepcopy(doc); d["tensors"][i]["id"] = new; out.append((f"tensor id {ten['id']}->{new[:8]!r}", d))
    if len(ids) >= 2:   # a view cycle a->b->a
        d = copy.deepcopy(doc)
        d["tensors"][0]["view_of"], d["tensors"][0]["view_offset"] = ids[1], 0
        d["tensors"][1]["view_of"], d["tensors"][1]["view_offset"] = ids[0], 0
        out.append(("view cycle", d))
    for i, node in enumerate(n[:6]):
        for new in ("", "\u00e9", nids[(i + 1) % len(nids)], "a" * 5000):
            d = copy.deepcopy(doc); d["nodes"][i]["id"] = new; out.append((f"node id {node['id']}->{new[:8]!r}", d))
        if node["inputs"] and node["outputs"]:
            for ip in ({node["outputs"][0]: node["inputs"][0]}, {node["inputs"][0]: node["outputs"][0]},
                       {node["outputs"][0]: "nope"}, {node["outputs"][0]: node["outputs"][0]}, [], "x",
                       {node["outputs"][0]: ids[0]}, {"": ""}, {node["outputs"][0]: 1}):
                d = copy.deepcopy(doc); d["nodes"][i]["inplace"] = ip; out.append((f"inplace {node['id']}={ip!r:.40}", d))
        for g in ("g", "", 1, None, ["g"]):
            d = copy.deepcopy(doc); d["nodes"][i]["group"] = g; out.append((f"group {node['id']}={g!r}", d))
        for op in ("", None, 5, "SET_ROWS", "VIEW", "COPY", "MUL_MAT", "\u00e9"):
            d = copy.deepcopy(doc); d["nodes"][i]["op"] = op; out.append((f"op {node['id']}={op!r}", d))
        for attrs in ({"shape": [1e308, 1e308]}, {"shape": "x"}, {"shape": [[1]]}, {"shape": [-1, 2**70]}, 5,
                      {"device": 3}, {"device": -1}, {"stream": 99}):
            d = copy.deepcopy(doc); d["nodes"][i]["attrs"] = attrs; out.append((f"attrs {node['id']}={attrs!r:.40}", d))
    # groups spanning non-consecutive nodes
    if len(n) >= 3:
        d = copy.deepcopy(doc); d["nodes"][0]["group"] = "G"; d["nodes"][2]["group"] = "G"
        out.append(("group non-consecutive", d))
        d = copy.deepcopy(doc)
        for x in d["nodes"]:
            x["group"] = "ALL"
        out.append(("group all", d))
    for al in (0, 1, 3, 255, 2**40, 2**64, -256, 256.0, "256", True, None, float("nan")):
        d = copy.deepcopy(doc); d["alignment"] = al; out.append((f"alignment={al!r}", d))
    for fmt in ("memplan.graph/2", "memplan.plan/1", "", None, 1):
        d = copy.deepcopy(doc); d["format"] = fmt; out.append((f"format={fmt!r}", d))
    d = copy.deepcopy(doc); d["tensors"] = []; out.append(("no tensors", d))
    d = copy.deepcopy(doc); d["nodes"] = []; out.append(("no nodes", d))
    d = copy.deepcopy(doc); d["nodes"] = []; d["tensors"] = [x for x in t if x["kind"] in ("input", "weight")]
    out.append(("only inputs", d))
    d = copy.deepcopy(doc)
    for x in d["tensors"]:
        x["size"] = 0
    out.append(("all sizes 0", d))
    d = copy.deepcopy(doc)
    for x in d["tensors"]:
        x["size"] = 2**62 + rng.randrange(1000)
    out.append(("all sizes 2^62", d))
    d = copy.deepcopy(doc)
    for x in d["tensors"]:
        x["size"] = 2**53 + 1
    out.append(("all sizes 2^53+1", d))
    for x in (1, 7, 2**31 - 1, 2**63 - 1):
        d = copy.deepcopy(doc)
        for y in d["tensors"]:
            y["size"] = x
        out.append((f"all sizes {x}", d))
    d = copy.deepcopy(doc)
    for x in d["nodes"]:
        x["cost"] = rng.choice([0, 1e308, 1e-300, 5e-324, -1, float("nan"), float("inf"), 10**400 // 10**300])
    out.append(("costs hostile", d))
    # outputs never read / tensors never used
    d = copy.deepcopy(doc); d["tensors"].append({"id": "orphan", "size": 512, "kind": "intermediate"})
    out.append(("orphan intermediate", d))
    d = copy.deepcopy(doc); d["tensors"].append({"id": "orphan", "size": 512, "kind": "output"})
    out.append(("orphan output", d))
    d = copy.deepcopy(doc); d["tensors"].append({"id": "orphan", "size": 512, "kind": "input"})
    out.append(("orphan input", d))
    return out


def json_text_mutants(text, rng):
    """Mutations of the document's text: truncations, byte flips, huge numbers, deep nesting, BOMs, encodings."""
    out = []
    b = text.encode()
    for cut in (0, 1, len(b) // 3, len(b) // 2, len(b) - 1):
        out.append((f"truncate {cut}", b[:cut]))
    for _ in range(6):
        i = rng.randrange(len(b))
        out.append((f"flip byte {i}", b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]))
    out.append(("BOM utf8", b"\xef\xbb\xbf" + b))
    out.append(("utf16", text.encode("utf-16")))
    out.append(("NUL tail", b + b"\x00"))
    out.append(("two docs", b + b))
    out.append(("latin1 id", b.replace(b'"id": "', b'"id": "\xe9', 1)))
    out.append(("deep nest", b"[" * 200000 + b"]" * 200000))
    out.append(("deep nest in field", b.replace(b'"alignment": 256', b'"alignment": ' + b"[" * 100000 + b"]" * 100000, 1)))
    out.append(("huge int 5000 digits", b.replace(b'"alignment": 256', b'"alignment": 1' + b"0" * 5000, 1)))
    out.append(("huge size 100MB", None))   # made lazily (100 MB)
    out.append(("huge float", b.replace(b'"alignment": 256', b'"alignment": 1e999999', 1)))
    out.append(("NaN literal", b.replace(b'"alignment": 256', b'"alignment": NaN', 1)))
    out.append(("Infinity literal", b.replace(b'"alignment": 256', b'"alignment": -Infinity', 1)))
    out.append(("dup keys", b.replace(b'"alignment": 256', b'"alignment": 256, "alignment": 3', 1)))
    out.append(("empty", b""))
    out.append(("whitespace", b"  \n"))
    out.append(("null", b"null"))
    out.append(("list", b"[]"))
    out.append(("string", b'"memplan.graph/1"'))
    return out


def huge_size_text(text):
    return text.replace('"size": ', '"size": 1' + "0" * 100_000_000 + " + ", 0).encode().replace(
        b'"alignment": 256', b'"alignment": 1' + b"0" * 100_000_000, 1)


# ---------------------------------------------------------------- independent serial check

def serial_unsafe(gdoc, pdoc) -> str | None:
    """For a one-stream plan: two roots whose byte ranges overlap while their live ranges in ``order`` overlap
    (the contract's rule 3 on one stream; the in-place exception allowed), or an offset out of the arena. A
    checker written here, sharing nothing with verify.py."""
    if pdoc.get("streams") != 1:
        return None
    tensors = {t["id"]: t for t in gdoc["tensors"]}
    offs = {t["id"]: t["offset"] for t in pdoc["tensors"]}

    def root(x):
        seen = 0
        while tensors[x].get("view_of") is not None and seen < 10000:
            x = tensors[x]["view_of"]; seen += 1
        return x

    pos = {o["node"]: i for i, o in enumerate(pdoc["order"])}
    nodes = {n["id"]: n for n in gdoc["nodes"]}
    N = len(pos)
    first, last = {}, {}
    for tid in tensors:
        r = root(tid)
        if tensors[r]["kind"] == "input":
            first[r] = -1
            last.setdefault(r, -1)
        if tensors[r]["kind"] == "output":
            last[r] = N
            first.setdefault(r, N)
    for nid, i in pos.items():
        n = nodes[nid]
        for x in list(n.get("inputs", [])) + list(n.get("outputs", [])):
            r = root(x)
            first[r] = min(first.get(r, i), i)
            last[r] = max(last.get(r, i), i)
    inplace_pairs = set()
    for nid, n in nodes.items():
        for o, i_ in (n.get("inplace") or {}).items():
            inplace_pairs.add((root(o), root(i_), pos[nid]))
    roots = [r for r in tensors if root(r) == r and tensors[r]["kind"] != "weight" and r in first]
    arena = pdoc["arena_bytes"]
    for r in roots:
        o, s = offs[r], tensors[r]["size"]
        if o is None or o < 0 or o + s > arena:
            return f"{r} at {o}+{s} outside arena {arena}"
    for a_i, a in enumerate(roots):
        for b in roots[a_i + 1:]:
            sa, sb = tensors[a]["size"], tensors[b]["size"]
            if sa == 0 or sb == 0:
                continue
            oa, ob = offs[a], offs[b]
            if oa + sa <= ob or ob + sb <= oa:
                continue
            if last[a] < first[b] or last[b] < first[a]:
                continue
            if (last[a] == first[b] and (b, a, last[a]) in inplace_pairs) or \
               (last[b] == first[a] and (a, b, last[b]) in inplace_pairs):
                continue
            return f"{a} [{first[a]},{last[a]}] and {b} [{first[b]},{last[b]}] overlap in bytes and time"
    return None


def contract_unsafe(gdoc, pdoc) -> str | None:
    """The contract's four safety rules (CONTRACT.md, "when is a plan safe?") checked from the two documents alone,
    with happens-before as a transitive closure over bitsets: a second, independent verifier for small graphs (fusion
    groups not checked: ``verify`` checks them only with ``fused_groups``). None when safe, else the first rule broken."""
    tensors = {t["id"]: t for t in gdoc["tensors"]}
    nodes = {n["id"]: n for n in gdoc["nodes"]}
    order = [o["node"] for o in pdoc["order"]]
    stream = {o["node"]: o["stream"] for o in pdoc["order"]}
    if sorted(order) != sorted(nodes):
        return "order is not every node once"
    pos = {n: i for i, n in enumerate(order)}
    N = len(order)
    offs = {t["id"]: t["offset"] for t in pdoc["tensors"]}
    if set(offs) != set(tensors):
        return "plan tensors are not the graph's"

    def root(x):
        while tensors[x].get("view_of") is not None:
            x = tensors[x]["view_of"]
        return x

    producer = {}
    for n in nodes.values():
        for o in n["outputs"]:
            producer[o] = n["id"]
    # happens-before: bit j of hb[i] set when order[i] HB order[j]
    succ = [0] * N
    last_on = {}
    for i, n in enumerate(order):
        st = stream[n]
        if st in last_on:
            succ[last_on[st]] |= 1 << i
        last_on[st] = i
    for e in pdoc.get("events", []):
        a, b = pos[e["after"]], pos[e["before"]]
        if a >= b:
            return f"event {e} does not point forward"
        if stream[e["after"]] == stream[e["before"]]:
            return f"event {e} on one stream"
        succ[a] |= 1 << b
    hb = [0] * N
    for i in range(N - 1, -1, -1):
        m = succ[i]
        acc = m
        while m:
            j = (m & -m).bit_length() - 1
            acc |= hb[j]
            m &= m - 1
        hb[i] = acc

    def HB(a, b):   # a, b: positions, or -1 (start) / N (end)
        if a == -1:
            return b != -1
        if b == N:
            return a != N
        if a == N or b == -1:
            return False
        return bool(hb[a] >> b & 1)

    for n in order:
        for t in nodes[n]["inputs"]:
            for w in (producer.get(t), producer.get(root(t))):
                if w is not None and w != n and not HB(pos[w], pos[n]):
                    return f"rule 2: {n} reads {t} without waiting for {w}"
                if w is not None and pos[w] > pos[n]:
                    return f"rule 1: {n} before the producer {w} of {t}"
    access: dict[str, set[int]] = {}
    for tid in tensors:
        r = root(tid)
        acc = access.setdefault(r, set())
        if tensors[r]["kind"] == "input":
            acc.add(-1)
        if tensors[r]["kind"] == "output":
            acc.add(N)
    for n in order:
        for t in list(nodes[n]["inputs"]) + list(nodes[n]["outputs"]):
            access.setdefault(root(t), set()).add(pos[n])
    inplace = set()
    for n in order:
        for o, i_ in (nodes[n].get("inplace") or {}).items():
            inplace.add((root(i_), root(o), pos[n]))
    align = pdoc["alignment"]
    tdev = {t["id"]: t.get("device", 0) for t in pdoc["tensors"]}
    ndev = {o["node"]: o.get("device", 0) for o in pdoc["order"]}
    sdev: dict[int, int] = {}
    for o in pdoc["order"]:
        if sdev.setdefault(o["stream"], o.get("device", 0)) != o.get("device", 0):
            return f"rule 1: stream {o['stream']} on two devices"
    darena = pdoc.get("device_arena_bytes") or [pdoc["arena_bytes"]]
    for n in order:
        node = nodes[n]
        for t in list(node["inputs"]) + ([] if node.get("op") == "COPY" else list(node["outputs"])):
            if tdev[root(t)] != ndev[n] or tdev[t] != tdev[root(t)]:
                return f"rule 4: {n} on device {ndev[n]} touches {t} on device {tdev[t]}"
    for tid, t in tensors.items():
        r = root(tid)
        arena = darena[tdev[r]] if tdev[r] < len(darena) else -1
        if arena > pdoc["arena_bytes"] or arena < 0:
            return f"rule 4: device arena {arena} of {r}"
        if tensors[r]["kind"] == "weight":
            if offs[tid] is not None:
                return f"{tid} of a weight has an offset"
            continue
        if tid != r:
            if offs[tid] != offs[t["view_of"]] + t.get("view_offset", 0):
                return f"view {tid} not at its parent's offset + view_offset"
            continue
        if offs[r] is None or offs[r] % align or offs[r] < 0 or offs[r] + t["size"] > arena:
            return f"rule 4: {r} at {offs[r]} (size {t['size']}, alignment {align}, arena {arena})"
    roots = [r for r in access if tensors[r]["kind"] != "weight" and tensors[r]["size"] > 0]

    def before(A, B):
        return all(HB(a, b) or (a == b and (A, B, a) in inplace) for a in access[A] for b in access[B])

    for i, A in enumerate(roots):
        for B in roots[i + 1:]:
            oa, ob, sa, sb = offs[A], offs[B], tensors[A]["size"], tensors[B]["size"]
            if oa + sa <= ob or ob + sb <= oa or tdev[A] != tdev[B]:
                continue
            if not (before(A, B) or before(B, A)):
                return f"rule 3: {A} and {B} overlap in bytes with accesses unordered"
    return None


# ---------------------------------------------------------------- runners

class Recorder:
    def __init__(self):
        self.tried: dict[str, int] = {}
        self.defects: list[tuple[str, str, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.accepted: dict[str, int] = {}   # family -> cases that ran through (exit 0 / no refusal)

    def ok(self, family):
        self.accepted[family] = self.accepted.get(family, 0) + 1

    def count(self, family):
        self.tried[family] = self.tried.get(family, 0) + 1

    def defect(self, family, case, what):
        key = (family, what.splitlines()[0][:90] if what else "")
        if key in self.seen:
            return
        self.seen.add(key)
        self.defects.append((family, case, what))
        print(f"DEFECT [{family}] {case}: {what}", flush=True)


def guarded(rec, family, case, fn, seconds=30):
    """Run ``fn``; a MemplanError is an expected refusal; anything else (or a hang) is a defect."""
    from memplan.errors import MemplanError

    rec.count(family)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn()
        rec.ok(family)
        return result
    except MemplanError:
        return None
    except Hang:
        rec.defect(family, case, f"hang > {seconds}s")
    except RecursionError as exc:
        rec.defect(family, case, f"RecursionError {exc}")
    except Exception as exc:  # noqa: BLE001
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        rec.defect(family, case, f"{type(exc).__name__}: {str(exc)[:150]} at {os.path.basename(tb.filename)}:{tb.lineno}")
    finally:
        signal.alarm(0)
    return None


def lib_graph_case(rec, case, gdoc, streams_too=True):
    import memplan

    def run():
        g = memplan.graph_from_dict(gdoc)
        p = memplan.plan(g)
        memplan.verify(g, p)
        why = serial_unsafe(json.loads(json.dumps(gdoc)), p.to_dict() if hasattr(p, "to_dict") else json.loads(p.dumps()))
        if why:
            rec.defect("graph-silent", case, why)
        memplan.simulate(g, p)
        p.offsets()
        gd = json.loads(json.dumps(gdoc))
        tp = "/tmp/h57_rt.json"
        p.save(tp)   # the plan written reads back, equal, and verifies against the graph read back from its own JSON
        back = memplan.load_plan(tp)
        if back != p:
            rec.defect("graph-silent", case, "plan changed on a save/load round trip")
        memplan.save_graph(g, tp)
        memplan.verify(memplan.load_graph(tp), back)
        for pp in [p] + ([memplan.plan(g, streams=2), memplan.plan(g, streams="auto", memory_budget=p.arena_bytes)]
                         if streams_too and len(g.nodes) < 200 else []):
            memplan.verify(g, pp)
            why = contract_unsafe(gd, pp.to_dict())
            if why:
                rec.defect("graph-silent", case, why)
        return p
    return guarded(rec, "graph-lib", case, run)


def plan_dict(p):
    import memplan  # noqa: F401
    buf = io.StringIO()
    tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    tmp.close()
    p.save(tmp.name)
    with open(tmp.name) as f:
        d = json.load(f)
    os.unlink(tmp.name)
    del buf
    return d


def lib_plan_case(rec, case, g, gdoc, pdoc):
    import memplan

    def run():
        p = memplan.plan_from_dict(pdoc)
        ok = True
        try:
            memplan.verify(g, p)
        except memplan.UnsafePlan:
            ok = False
        except memplan.MemplanError:
            ok = False
        if ok:
            why = (serial_unsafe(gdoc, pdoc) or contract_unsafe(gdoc, pdoc)) if isinstance(pdoc, dict) else None
            if why:
                rec.defect("plan-silent", case, "verify accepted: " + why)
            memplan.simulate(g, p)
            p.offsets(); p.stream_of()
        return p
    return guarded(rec, "plan-lib", case, run)


def sha(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def cli_case(rec, case, argv, inputs=(), seconds=60, expect=None, family="cli"):
    """``cli.main(argv)`` in process; exit 0/2, one error line, inputs unchanged."""
    from memplan import cli

    before = {p: sha(p) for p in inputs}
    out, err = io.StringIO(), io.StringIO()
    rec.count(family)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    code = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except Hang:
        rec.defect(family, case, f"hang > {seconds}s: {' '.join(argv)[:200]}")
        return None
    except BaseException as exc:  # noqa: BLE001
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        rec.defect(family, case, f"escaped main: {type(exc).__name__}: {str(exc)[:150]} at "
                   f"{os.path.basename(tb.filename)}:{tb.lineno}")
        return None
    finally:
        signal.alarm(0)
    e = err.getvalue()
    if code == 0:
        rec.ok(family)
    if "Traceback" in e or "Traceback" in out.getvalue():
        rec.defect(family, case, f"traceback printed: {e[-300:]}")
    if code not in (0, 2):
        rec.defect(family, case, f"exit {code}: {e[-200:]}")
    if code == 2:
        lines = [x for x in e.splitlines() if x.startswith("memplan: error") or "error:" in x]
        if len(lines) != 1:
            rec.defect(family, case, f"exit 2 with {len(lines)} error lines: {e[-300:]!r}")
    for p, h in before.items():
        if sha(p) != h:
            rec.defect(family + "-file", case, f"input {p} changed (exit {code}): {' '.join(argv)[:200]}")
    if expect is not None and code != expect:
        rec.defect(family, case, f"exit {code}, expected {expect}: {' '.join(argv)[:200]} {e[-200:]}")
    return code, out.getvalue(), e


# ---------------------------------------------------------------- families

def fam_graph(rec, seeds, rng, quick):
    for name, gdoc in seeds.items():
        muts = point_mutants(gdoc, rng) + graph_structural(gdoc, rng)
        if quick:
            muts = rng.sample(muts, min(len(muts), 150))
        for label, d in muts:
            lib_graph_case(rec, f"{name}: {label}", d, streams_too=(rng.random() < 0.3))


def fam_text(rec, seeds, tmp, rng, quick):
    import memplan
    for name, gdoc in list(seeds.items())[:2]:
        text = json.dumps(gdoc, indent=1)
        for label, b in json_text_mutants(text, rng):
            if b is None:
                if quick:
                    continue
                b = huge_size_text(text)
            path = os.path.join(tmp, f"t_{name}.json")
            with open(path, "wb") as f:
                f.write(b)
            guarded(rec, "text-lib", f"{name}: {label}", lambda: memplan.load_graph(path), seconds=120)
            guarded(rec, "text-lib", f"{name}: {label} (as plan)", lambda: memplan.load_plan(path), seconds=120)
            cli_case(rec, f"{name}: {label}", ["plan", path, "-o", os.path.join(tmp, "tp.json"), "-q"], [path],
                     seconds=120, family="text-cli")
            cli_case(rec, f"{name}: {label} show", ["show", path], [path], seconds=120, family="text-cli")
            del b


def fam_plan(rec, seeds, plans, rng, quick):
    import memplan
    for name, pdoc in plans.items():
        gdoc = seeds[name]
        g = memplan.graph_from_dict(gdoc)
        muts = point_mutants(pdoc, rng, limit_items=4)
        # structural plan mutations
        t = pdoc["tensors"]
        for i in range(min(6, len(t))):
            for off in (0, 1, 256, -256, pdoc["arena_bytes"], 2**64, None, 2**53 + 256):
                muts.append((f"offset {t[i]['id']}={off}", setp(pdoc, ("tensors", i, "offset"), off)))
        muts.append(("order reversed", setp(pdoc, ("order",), pdoc["order"][::-1])))
        muts.append(("order dup", setp(pdoc, ("order",), pdoc["order"] + pdoc["order"][:1])))
        muts.append(("order missing", setp(pdoc, ("order",), pdoc["order"][1:])))
        muts.append(("tensors dup", setp(pdoc, ("tensors",), t + t[:1])))
        muts.append(("tensors missing", setp(pdoc, ("tensors",), t[1:])))
        muts.append(("all offsets 0", setp(pdoc, ("tensors",), [dict(x, offset=0 if x["offset"] is not None else None)
                                                                  for x in t])))
        muts.append(("arena 0", setp(pdoc, ("arena_bytes",), 0)))
        muts.append(("streams 2 all stream 1", setp(setp(pdoc, ("streams",), 2), ("order",),
                                                     [dict(o, stream=1) for o in pdoc["order"]])))
        muts.append(("streams alternate no events", setp(setp(pdoc, ("streams",), 2), ("order",),
                                                          [dict(o, stream=i % 2) for i, o in enumerate(pdoc["order"])])))
        nn = [o["node"] for o in pdoc["order"]]
        if len(nn) >= 2:
            muts.append(("event backwards", setp(pdoc, ("events",), [{"after": nn[-1], "before": nn[0]}])))
            muts.append(("event self", setp(pdoc, ("events",), [{"after": nn[0], "before": nn[0]}])))
            muts.append(("events many", setp(pdoc, ("events",), [{"after": nn[0], "before": nn[1]}] * 1000)))
        muts.append(("alignment 1", setp(pdoc, ("alignment",), 1)))
        muts.append(("alignment 2^20", setp(pdoc, ("alignment",), 2**20)))
        muts.append(("graph name other", setp(pdoc, ("graph",), "other")))
        if pdoc.get("devices"):
            for i in range(len(t)):
                muts.append((f"tensor {t[i]['id']} other device", setp(pdoc, ("tensors", i, "device"),
                                                                      1 - t[i].get("device", 0))))
            for i, o in enumerate(pdoc["order"]):
                muts.append((f"node {o['node']} other device", setp(pdoc, ("order", i, "device"), 1 - o.get("device", 0))))
                muts.append((f"node {o['node']} stream 0", setp(pdoc, ("order", i, "stream"), 0)))
            for i in range(len(pdoc.get("events", []))):
                muts.append((f"event {i} dropped", setp(pdoc, ("events",), pdoc["events"][:i] + pdoc["events"][i + 1:])))
            for d in range(2):
                for v in (0, pdoc["device_arena_bytes"][d] - 1, pdoc["arena_bytes"] + 256):
                    muts.append((f"device arena {d}={v}", setp(pdoc, ("device_arena_bytes", d), v)))
            for i in range(len(t)):
                if t[i]["offset"] is not None:
                    for v in (0, 256, t[i]["offset"] + 256):
                        muts.append((f"offset {t[i]['id']}={v}", setp(pdoc, ("tensors", i, "offset"), v)))
        if quick:
            muts = rng.sample(muts, min(len(muts), 150))
        for label, d in muts:
            lib_plan_case(rec, f"{name}: {label}", g, gdoc, d)


def fam_cli(rec, seeds, plans, tmp, rng, quick):
    """Each subcommand on good and mutated files, the file-path hazards, and options out of range."""
    gpath = os.path.join(tmp, "g.json")
    ppath = os.path.join(tmp, "p.json")
    name = "qkv"
    with open(gpath, "w") as f:
        json.dump(seeds[name], f)
    with open(ppath, "w") as f:
        json.dump(plans[name], f)
    out = os.path.join(tmp, "out.json")
    ro = os.path.join(tmp, "ro"); os.makedirs(ro, exist_ok=True); os.chmod(ro, 0o555)
    link = os.path.join(tmp, "link.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.symlink(gpath, link)
    hard = os.path.join(tmp, "hard.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(hard)
    os.link(gpath, hard)
    dangling = os.path.join(tmp, "dangling.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dangling)
    os.symlink(os.path.join(tmp, "nowhere", "x.json"), dangling)
    loop = os.path.join(tmp, "loop.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(loop)
    os.symlink(loop, loop)
    dirpath = os.path.join(tmp, "adir"); os.makedirs(dirpath, exist_ok=True)
    csvp = os.path.join(tmp, "p.csv")
    with open(csvp, "w") as f:
        f.write("id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n")
    trace = os.path.join(tmp, "trace.json")
    targets = [out, gpath, ppath, link, hard, dangling, loop, dirpath, os.path.join(tmp, "missing", "x.json"),
               os.path.join(ro, "x.json"), "/dev/full", "/dev/null", "-", "", os.path.join(tmp, "adir", ""),
               os.path.join(tmp, "g.json", "x"), tmp + "/./g.json", os.path.relpath(gpath), "\udcff.json"]
    def restore():
        for path_, doc in ((gpath, seeds[name]), (ppath, plans[name])):
            with open(path_, "w") as f:
                json.dump(doc, f)
        with open(csvp, "w") as f:
            f.write("id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n")

    for t in targets:
        for label, argv, ins in (
                ("plan -o", ["plan", gpath, "-o", t, "-q"], [gpath]),
                ("plan --graph-out", ["plan", gpath, "-o", out, "--graph-out", t, "-q"], [gpath]),
                ("trace -o", ["trace", gpath, ppath, "-o", t, "-q"], [gpath, ppath]),
                ("csv -o", ["csv", csvp, "-o", t, "-q"], [csvp]),
                ("example -o", ["example", "-o", t], []),
                ("import -o", ["import", gpath, "-o", t, "-q"], [gpath]),
                ("bench --json", ["bench", "planners", "--json", t], [])):
            restore()
            cli_case(rec, f"{label} {t!r}", argv, ins, seconds=120, family="cli-paths")
    restore()
    for t in [gpath, link, hard, dangling, loop, dirpath, "-", "", "/dev/null", "/dev/zero" if not quick else "",
              os.path.join(tmp, "missing.json")]:
        for cmd in (["plan", t, "-o", out, "-q"], ["verify", t, ppath], ["verify", gpath, t], ["show", t],
                    ["show", ppath, "--graph", t], ["simulate", t, ppath], ["simulate", gpath, t],
                    ["trace", t, ppath, "-o", trace, "-q"], ["csv", t, "-o", out, "-q"]):
            cli_case(rec, " ".join(cmd), cmd, [gpath, ppath], seconds=30, family="cli-inputs")
    opts = {
        "--streams": ["0", "-1", "1", "2", "auto", "1000000", "1e3", "nan", "", "2.5", "99999999999999999999"],
        "--memory-budget": ["0", "-1", "1", "1e30", "nan", "inf", "1KB", "", "9" * 400],
        "--max-events": ["0", "-1", "1e9", "x"],
        "--time-limit": ["0", "-1", "nan", "inf", "1e-300", "1e300", "x"],
        "--seed": ["-1", "2**70", str(2**70), "x", "1.5"],
        "--workers": ["0", "-1", "1000", "x"],
        "--event-us": ["0", "-1", "nan", "inf", "1e308", "x"],
        "--devices": ["0", "-1", "1", "2", "100", "x"],
        "--alignment": ["0", "1", "3", "255", "512", str(2**40), str(2**70), "-256", "x"],
        "--device-capacity": ["0", "-1", "1", str(2**70), "x"],
        "--solver": ["search", "cpsat", "ggml", "greedy", "size", "bogus"],
    }
    for opt, vals in opts.items():
        for v in vals:
            extra = [opt, v]
            if opt in ("--max-events",):
                extra += ["--streams", "2"]
            if opt == "--device-capacity":
                extra += ["--devices", "2"]
            for stream_extra in ([], ["--streams", "2"]) if opt in ("--memory-budget", "--devices", "--alignment") \
                    else ([],):
                cli_case(rec, f"plan {' '.join(extra + stream_extra)}", ["plan", gpath, "-o", out, "-q"] + extra
                         + stream_extra + (["--time-limit", "0.2"] if opt == "--solver" else []), [gpath, ppath],
                         seconds=60, family="cli-options")
    for v in ["0", "-1", "1e30", "x", "nan"]:
        cli_case(rec, f"csv --capacity {v}", ["csv", csvp, "-o", out, "-q", "--capacity", v], [csvp], family="cli-options")
        cli_case(rec, f"show --top {v}", ["show", ppath, "--top", v], [ppath], family="cli-options")
        cli_case(rec, f"simulate --event-us {v}", ["simulate", gpath, ppath, "--event-us", v], [ppath],
                 family="cli-options")
        cli_case(rec, f"import --batch {v}", ["import", gpath, "-o", out, "--batch", v], [gpath], family="cli-options")
    for argv in (["import", gpath, "-o", out, "--dim", "x"], ["import", gpath, "-o", out, "--dim", "=1"],
                 ["import", gpath, "-o", out, "--dim", "a=-1"], ["import", gpath, "-o", out, "--dim", "a=1e99"],
                 ["import", gpath, "-o", out, "--alignment", "3"], ["import", gpath, "-o", out, "--name", ""]):
        cli_case(rec, " ".join(argv), argv, [gpath], family="cli-options")


def fam_csv(rec, tmp, rng, quick):
    base = "id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n"
    cases = [base, "", "id,lower,upper,size\n", "a,b,c,d\n1,2,3,4\n", base + "3,0,1,-4\n", base + "3,1,0,4\n",
             base + "0,0,1,4\n", base + "3,0,1,nan\n", base + "3,0,1,1e3\n", base + "3,0,1,4,5\n", base + "3,0,1\n",
             base + "3,0," + "9" * 5000 + ",4\n", base + "3,0,1," + "9" * 30 + "\n", "\ufeff" + base,
             base.replace(",", ";"), base + "\x00\n", base + "3,-5,-1,4\n", base + "3,0,0,4\n",
             base + "\u00e9,0,1,4\n", base + ",0,1,4\n", base + "3, 0 ,1 , 4\n", "id,lower,upper,size,offset\n0,0,1,4,3\n",
             "lower,upper,size,id\n0,1,4,a\n", base + "3,0,1,0\n", base + "3,0,1,+4\n", base + "3,0,1,0x10\n",
             base + "3,0,1,4_0\n", base + "3,0,1,\u0664\n", "id,lower,upper,size\n" + "".join(
                 f"{i},{i},{i + 2},{rng.randrange(1, 100)}\n" for i in range(3000))]
    path = os.path.join(tmp, "m.csv")
    for i, text in enumerate(cases):
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        for solver in ("search", "greedy", "cpsat", "auto"):
            cli_case(rec, f"csv case {i} {solver} {text[-30:]!r}", ["csv", path, "-o", os.path.join(tmp, "m.out.csv"),
                     "-q", "--solver", solver, "--time-limit", "0.3"], [path], seconds=60, family="csv")
            cli_case(rec, f"csv case {i} {solver} cap", ["csv", path, "-o", os.path.join(tmp, "m.out.csv"),
                     "-q", "--solver", solver, "--time-limit", "0.3", "--capacity", "8"], [path], seconds=60,
                     family="csv")


def tiny_onnx():
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    import numpy as np
    from onnx import numpy_helper
    w = numpy_helper.from_array(np.zeros((4, 4), np.float32), "w")
    n1 = helper.make_node("MatMul", ["x", "w"], ["h"], name="mm")
    n2 = helper.make_node("Relu", ["h"], ["y"], name="relu")
    g = helper.make_graph([n1, n2], "tiny", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m, onnx


def fam_onnx(rec, tmp, rng, quick):
    from memplan.importers import import_onnx
    m, onnx = tiny_onnx()
    b = m.SerializeToString()
    muts = [("good", b)]
    for cut in (0, 1, 5, len(b) // 2, len(b) - 1):
        muts.append((f"truncate {cut}", b[:cut]))
    for _ in range(20 if quick else 80):
        i = rng.randrange(len(b))
        muts.append((f"flip {i}", b[:i] + bytes([b[i] ^ (1 << rng.randrange(8))]) + b[i + 1:]))
    muts.append(("text", b"hello"))
    muts.append(("json", b"{}"))
    # semantic mutations through the proto
    def mut(fn, label):
        mm = copy.deepcopy(m)
        fn(mm)
        muts.append((label, mm.SerializeToString()))
    mut(lambda mm: mm.graph.node[0].input.__setitem__(1, "nope"), "unknown input")
    mut(lambda mm: mm.graph.node[1].output.__setitem__(0, "h"), "output overwrites")
    mut(lambda mm: mm.graph.node[0].input.__setitem__(0, "y"), "cycle")
    mut(lambda mm: mm.graph.node.reverse(), "reversed")
    mut(lambda mm: setattr(mm.graph.node[0], "name", ""), "empty name")
    mut(lambda mm: setattr(mm.graph.node[1], "name", "mm"), "dup name")
    mut(lambda mm: setattr(mm.graph.node[0], "op_type", "Bogus"), "unknown op")
    mut(lambda mm: mm.graph.input[0].type.tensor_type.shape.dim[1].__setattr__("dim_value", 2**62), "huge dim")
    mut(lambda mm: mm.graph.input[0].type.tensor_type.shape.dim[1].__setattr__("dim_param", "N"), "sym dim")
    mut(lambda mm: mm.graph.input[0].type.tensor_type.shape.dim[1].__setattr__("dim_value", -3), "neg dim")
    mut(lambda mm: mm.graph.input[0].type.tensor_type.__setattr__("elem_type", 999), "bad dtype")
    mut(lambda mm: mm.opset_import[0].__setattr__("version", 99999), "opset huge")
    mut(lambda mm: mm.opset_import[0].__setattr__("version", 0), "opset 0")
    mut(lambda mm: mm.graph.initializer[0].dims.__setitem__(0, 5), "initializer dims wrong")
    mut(lambda mm: mm.graph.initializer[0].__setattr__("data_location", 1), "external without location")
    mut(lambda mm: mm.graph.output[0].__setattr__("name", "x"), "output is input")
    mut(lambda mm: mm.graph.ClearField("output"), "no outputs")
    mut(lambda mm: mm.graph.ClearField("node"), "no nodes")
    path = os.path.join(tmp, "m.onnx")
    for label, data in muts:
        with open(path, "wb") as f:
            f.write(data)
        guarded(rec, "onnx-lib", label, lambda: import_onnx(path), seconds=60)
        cli_case(rec, f"onnx {label}", ["import", path, "-o", os.path.join(tmp, "m.json"), "-q"], [path], seconds=60,
                 family="onnx-cli")
    # external data hazards
    import onnx.external_data_helper as edh
    mm = copy.deepcopy(m)
    ext = os.path.join(tmp, "ext"); os.makedirs(ext, exist_ok=True)
    onnx.save_model(mm, os.path.join(ext, "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    for label, fn in [("ok", lambda: None), ("data missing", lambda: os.unlink(os.path.join(ext, "w.bin"))),
                      ]:
        fn()
        cli_case(rec, f"onnx external {label}", ["import", os.path.join(ext, "m.onnx"), "-o", os.path.join(ext, "m.json"),
                 "-q"], [os.path.join(ext, "m.onnx")], family="onnx-cli")
    # external location pointing at the output and outside the folder
    for loc in ("m.json", "../g.json", "/etc/passwd", "w.bin/../../x", ""):
        mm = copy.deepcopy(m)
        edh.convert_model_to_external_data(mm, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
        for e in mm.graph.initializer[0].external_data:
            if e.key == "location":
                e.value = loc
        p = os.path.join(ext, "m2.onnx")
        with open(p, "wb") as f:
            f.write(mm.SerializeToString())
        with open(os.path.join(ext, "m.json"), "w") as f:
            f.write("{}")
        cli_case(rec, f"onnx location {loc!r}", ["import", p, "-o", os.path.join(ext, "m.json"), "-q"],
                 [p], family="onnx-cli")


def fam_api(rec, seeds, plans, rng, quick):
    """Library entry points with options out of range and hostile arguments (not documents)."""
    import memplan
    from memplan.io.minimalloc import read_csv  # noqa: F401
    g = memplan.graph_from_dict(seeds["qkv"])
    p = memplan.plan_from_dict(plans["qkv"])
    p2 = memplan.plan_from_dict(plans["qkv2"])
    bad = [None, True, False, 0, -1, 1, 2, 3, 2.0, 2.5, float("nan"), float("inf"), -float("inf"), 2**70, -(2**70),
           "2", "auto", "", "x", [], [2], {}, object(), b"2", 1e308, 10**400]
    opts = ["streams", "memory_budget", "max_events", "time_limit", "seed", "workers", "alignment", "devices",
            "device_capacity", "fused_groups", "progress", "check", "cost_model", "bogus_option"]
    for opt in opts:
        for v in bad:
            kw = {opt: v}
            if opt == "max_events":
                kw["streams"] = 2
            if opt == "device_capacity":
                kw["devices"] = 2
            guarded(rec, "api", f"plan({opt}={v!r:.30})", lambda: memplan.verify(g, memplan.plan(g, **kw)))
    for v in bad + ["search", "cpsat", "ggml", "greedy", "size", "AUTO"]:
        guarded(rec, "api", f"plan(solver={v!r:.30})", lambda: memplan.plan(g, solver=v, time_limit=0.2))
    for v in bad:
        guarded(rec, "api", f"graph_optimize(max_streams={v!r:.30})", lambda: memplan.graph_optimize(g, v))
        guarded(rec, "api", f"graph_optimize(max_events={v!r:.30})", lambda: memplan.graph_optimize(g, 2, max_events=v))
        guarded(rec, "api", f"plan_devices(n={v!r:.30})", lambda: memplan.plan_devices(g, v))
        guarded(rec, "api", f"split_devices(n={v!r:.30})", lambda: memplan.split_devices(g, v))
        for k in ("event_us", "hbm_bytes_per_us", "flop_per_us", "floor_us", "use_graph_costs"):
            guarded(rec, "api", f"CostModel({k}={v!r:.30})", lambda: memplan.simulate(g, p2, memplan.CostModel(**{k: v})))
            guarded(rec, "api", f"plan(cost_model=CostModel({k}={v!r:.30}))",
                    lambda: memplan.plan(g, streams=2, cost_model=memplan.CostModel(**{k: v})))
        guarded(rec, "api", f"simulate(cost_model={v!r:.30})", lambda: memplan.simulate(g, p2, v))
        guarded(rec, "api", f"verify(graph={v!r:.30})", lambda: memplan.verify(v, p))
        guarded(rec, "api", f"verify(plan={v!r:.30})", lambda: memplan.verify(g, v))
        guarded(rec, "api", f"simulate(plan={v!r:.30})", lambda: memplan.simulate(g, v))
        guarded(rec, "api", f"plan(graph={v!r:.30})", lambda: memplan.plan(v))
        guarded(rec, "api", f"plan(schedule={v!r:.30})", lambda: memplan.plan(g, v))
        guarded(rec, "api", f"reuse_table(tensors={v!r:.30})", lambda: memplan.reuse_table(g, p2, v))
        guarded(rec, "api", f"reuse_after(tensor={v!r:.30})", lambda: memplan.reuse_after(g, p2, v))
        guarded(rec, "api", f"ReuseIndex(plan={v!r:.30})", lambda: memplan.ReuseIndex(g, v))
        guarded(rec, "api", f"load_graph({v!r:.30})", lambda: memplan.load_graph(v))
        guarded(rec, "api", f"load_plan({v!r:.30})", lambda: memplan.load_plan(v))
        guarded(rec, "api", f"save_plan(path={v!r:.30})", lambda: memplan.save_plan(p, v))
        guarded(rec, "api", f"save_graph(path={v!r:.30})", lambda: memplan.save_graph(g, v))
        guarded(rec, "api", f"save_plan(plan={v!r:.30})", lambda: memplan.save_plan(v, "/tmp/h57_x.json"))
        guarded(rec, "api", f"save_graph(graph={v!r:.30})", lambda: memplan.save_graph(v, "/tmp/h57_x.json"))
        guarded(rec, "api", f"graph_from_dict(source={v!r:.30})", lambda: memplan.graph_from_dict({}, source=v))
        guarded(rec, "api", f"plan_from_dict(source={v!r:.30})", lambda: memplan.plan_from_dict({}, source=v))
        guarded(rec, "api", f"serial_schedule({v!r:.30})", lambda: memplan.serial_schedule(v))
        guarded(rec, "api", f"schedule_with_events(order={v!r:.30})",
                lambda: memplan.schedule_with_events(g, v, {n.id: 0 for n in g.nodes}))
        guarded(rec, "api", f"schedule_with_events(stream_of={v!r:.30})",
                lambda: memplan.schedule_with_events(g, [n.id for n in g.nodes], v))
        guarded(rec, "api", f"schedule_with_events(stream value={v!r:.30})",
                lambda: memplan.schedule_with_events(g, [n.id for n in g.nodes], {n.id: v for n in g.nodes}))
        guarded(rec, "api", f"Plan.save(timings={v!r:.30})", lambda: p.save("/tmp/h57_x.json", timings=v))
        guarded(rec, "api", f"verify(fused_groups={v!r:.30})", lambda: memplan.verify(g, p, fused_groups=v))
    # GraphBuilder with hostile arguments
    for v in bad:
        def build(v=v):
            b = memplan.GraphBuilder("t")
            b.input("x", v)
            b.node("a", "UNARY", ["x"], b.output("y", 256))
            return memplan.plan(b.build())
        guarded(rec, "api", f"GraphBuilder size={v!r:.30}", build)
        def build2(v=v):
            b = memplan.GraphBuilder(v)
            b.input(v, 256)
            b.node(v, v, [v], b.output("y", 256))
            return memplan.plan(b.build())
        guarded(rec, "api", f"GraphBuilder names={v!r:.30}", build2)
    # schedules: shuffled orders and random streams on every seed graph
    for name, gdoc in seeds.items():
        gg = memplan.graph_from_dict(gdoc)
        nodes = [n.id for n in gg.nodes]
        for _ in range(5 if quick else 20):
            order = nodes[:]
            if rng.random() < 0.5:
                rng.shuffle(order)
            so = {n: rng.randrange(4) for n in nodes}
            def sched(order=order, so=so, gg=gg):
                s_ = memplan.schedule_with_events(gg, order, so)
                pp = memplan.plan(gg, s_)
                memplan.verify(gg, pp)
                why = contract_unsafe(gdoc, pp.to_dict())
                if why:
                    rec.defect("api-silent", name, why)
                memplan.simulate(gg, pp)
                memplan.reuse_table(gg, pp)
            guarded(rec, "api-sched", f"{name} random schedule", sched)


def fam_bench(rec, seeds, tmp, rng, quick):
    """``bench`` suites with small, hostile and repeated option values, and mutated ``--graph`` files."""
    gpath = os.path.join(tmp, "bg.json")
    with open(gpath, "w") as f:
        json.dump(seeds["qkv"], f)
    out = os.path.join(tmp, "bench.json")
    base = ["bench", "planners", "--corpus", "examples", "--solvers", "greedy"]
    for opt, vals in {"--time-limit": ["0", "-1", "nan", "inf", "1e-300", "x"],
                      "--solvers": ["", ",", "greedy,greedy", "bogus", "greedy,,size", " greedy", "GREEDY"],
                      "--corpus": ["", ",", "bogus", "examples,examples", "random"],
                      "--sizes": ["", "0", "-1", "1", "x", "1,1", "1e3", "3"],
                      "--layers": ["0", "-1", "x", "1"],
                      "--streams": ["0", "-1", "x", "1", "1000", "auto"],
                      "--only": ["", "zzz", "A,A", ",", "\u00e9"],
                      "--minimalloc": [tmp, gpath, "/nonexistent", ""]}.items():
        for v in vals:
            argv = base + [opt, v] + (["--solvers", "search"] if opt == "--time-limit" else [])
            if opt == "--solvers":
                argv = ["bench", "planners", "--corpus", "examples", opt, v]
            if opt in ("--sizes",):
                argv = ["bench", "planners", "--corpus", "random", "--solvers", "greedy", opt, v]
            if opt == "--minimalloc":
                argv = ["bench", "planners", "--corpus", "minimalloc", "--solvers", "greedy", opt, v]
            cli_case(rec, " ".join(argv), argv, [gpath], seconds=90, family="bench")
    for label, d in rng.sample(point_mutants(seeds["chain"], rng), 40 if quick else 120):
        with open(gpath, "w") as f:
            json.dump(d, f)
        cli_case(rec, f"bench --graph chain: {label}", ["bench", "planners", "--graph", gpath,
                 "--solvers", "greedy,size", "--json", out], [gpath], seconds=60, family="bench")
    cli_case(rec, "bench --graph twice", ["bench", "planners", "--graph", gpath, "--graph", gpath, "--solvers",
             "greedy"], [gpath], seconds=60, family="bench")
    for fam_, vals in {"--nodes": ["0", "-1", "1", "2", "x", "3 3"], "--wide": ["0", "1", "-5"], "--chain": ["0", "1"],
                       "--chains": ["0", "1"], "--random": ["0", "1", "2"], "--layered": ["0", "1", "2"],
                       "--experts": ["0", "1"], "--io": ["0", "1"], "--inplace": ["0", "1"],
                       "--transformer": ["0", "1"], "--moe-blocks": ["0"]}.items():
        for v in vals:
            argv = ["bench", "scale", fam_] + v.split() + ["--mode", "serial", "auto", "natural", "--solver", "greedy"]
            cli_case(rec, " ".join(argv), argv, [], seconds=90, family="bench")
    for argv in (["bench", "scale", "--nodes", "10", "--streams", "0"], ["bench", "scale", "--nodes", "10", "--streams",
                 "-3"], ["bench", "scale", "--inplace", "3", "--inplace-shape", "views", "spread", "one"],
                 ["bench", "schedule", "--quick", "--layers", "0"], ["bench", "schedule", "--quick", "--layers", "-1"],
                 ["bench", "schedule", "--quick", "--streams", "0"], ["bench", "schedule", "--quick", "--event-us",
                 "nan"], ["bench", "schedule", "--quick", "--event-us", "-1"], ["bench", "schedule", "--quick",
                 "--budget", "0"], ["bench", "schedule", "--quick", "--budget", "x"], ["bench", "schedule", "--quick",
                 "--budget", "-1"], ["bench", "devices", "--models", "tiny", "--devices", "0"],
                 ["bench", "devices", "--models", "tiny", "--devices", "1"], ["bench", "devices", "--models", "tiny",
                 "--devices", "-1"], ["bench", "devices", "--models", "tiny", "--devices", "1000"],
                 ["bench", "devices", "--models", "tiny", "tiny"], ["bench", "devices", "--models", "tiny",
                 "--streams", "0"], ["bench", "devices", "--models", "tiny", "--streams", "x"]):
        cli_case(rec, " ".join(argv), argv, [], seconds=120, family="bench")


def fam_pt2(rec, tmp, rng, quick):
    """``import`` of a torch.export archive: truncated, flipped, members renamed, duplicated, JSON members mutated."""
    import zipfile

    import torch

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.relu(self.lin(x)) + 1

    path = os.path.join(tmp, "m.pt2")
    torch.export.save(torch.export.export(M(), (torch.zeros(2, 4),)), path)
    with open(path, "rb") as f:
        b = f.read()
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    muts = [("good", b)]
    for cut in (0, 4, 30, len(b) // 2, len(b) - 22, len(b) - 1):
        muts.append((f"truncate {cut}", b[:cut]))
    for _ in range(10 if quick else 40):
        i = rng.randrange(len(b))
        muts.append((f"flip {i}", b[:i] + bytes([b[i] ^ (1 << rng.randrange(8))]) + b[i + 1:]))

    def rezip(label, fn):
        bio = io.BytesIO()
        with zipfile.ZipFile(bio, "w", zipfile.ZIP_STORED) as z:
            for name, data in fn(dict(members)).items():
                z.writestr(name, data)
        muts.append((label, bio.getvalue()))

    for name, data in members.items():
        if name.endswith(".json") and len(data) < 200000:
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            pool = point_mutants(doc, rng, values=[None, -1, 2**70, "x", [], {}, float("nan")], limit_items=2)
            for label, d in rng.sample(pool, min(len(pool), 6 if quick else 25)):
                rezip(f"{name}: {label}", lambda m, name=name, d=d: {**m, name: json.dumps(d).encode()})
        rezip(f"drop {name}", lambda m, name=name: {k: v for k, v in m.items() if k != name})
    out = os.path.join(tmp, "pt2.json")
    mp = os.path.join(tmp, "mut.pt2")
    for label, data in muts:
        with open(mp, "wb") as f:
            f.write(data)
        cli_case(rec, f"pt2 {label}", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")


def random_graph_doc(rng, n_nodes):
    """A random graph document with views (of views, of inputs, outputs and weights, written by nodes), in-place
    pairs on any input/output (the loader refuses what the contract does not allow), zero sizes, several
    inputs/outputs and fusion groups: the planner's harder corners, for the independent checker."""
    tensors, nodes, avail = [], [], []
    for i in range(rng.randint(1, 3)):
        tensors.append({"id": f"in{i}", "size": rng.choice([0, 1, 100, 256, 4096]), "kind": "input"}); avail.append(f"in{i}")
    for i in range(rng.randint(0, 2)):
        tensors.append({"id": f"w{i}", "size": 4096, "kind": "weight"}); avail.append(f"w{i}")
    kinds = {t["id"]: t for t in tensors}
    group = None
    for k in range(n_nodes):
        ins = rng.sample(avail, min(len(avail), rng.randint(1, 3)))
        outs = []
        node = {"id": f"n{k}", "op": rng.choice(["OP", "OP", "VIEW", "SET_ROWS", "CPY"]), "inputs": ins,
                "outputs": outs, "cost": float(rng.randint(1, 30))}
        for j in range(rng.randint(1, 2)):
            tid = f"t{k}_{j}"
            r = rng.random()
            parent = rng.choice(avail)
            psize = kinds[parent]["size"]
            if r < 0.3 and psize > 0:
                size = rng.randint(0, psize)
                t = {"id": tid, "size": size, "kind": rng.choice(["intermediate", "intermediate", "output"]),
                     "view_of": parent, "view_offset": rng.randint(0, psize - size)}
            else:
                t = {"id": tid, "size": rng.choice([0, 1, 255, 256, 1000, 4096, 65536]),
                     "kind": "output" if rng.random() < 0.15 else "intermediate"}
            tensors.append(t); kinds[tid] = t; outs.append(tid)
        if rng.random() < 0.35:
            node["inplace"] = {rng.choice(outs): rng.choice(ins)}
        if rng.random() < 0.2:
            group = group or f"g{k}"
            node["group"] = group
        else:
            group = None
        nodes.append(node)
        avail.extend(outs)
    return {"format": "memplan.graph/1", "name": "rnd", "alignment": rng.choice([1, 64, 256]), "tensors": tensors,
            "nodes": nodes}


def fam_random(rec, rng, quick):
    """Random graphs planned under many options, every plan checked by ``contract_unsafe``."""
    import memplan
    runs = 0
    for k in range(60 if quick else 1500):
        gdoc = random_graph_doc(rng, rng.randint(1, 25))
        g = guarded(rec, "random-load", f"graph {k}", lambda: memplan.graph_from_dict(gdoc))
        if g is None:
            continue
        for kw in ({}, {"streams": 2}, {"streams": 3}, {"streams": "auto"}, {"streams": 2, "max_events": 1},
                   {"streams": "auto", "memory_budget": 1}, {"solver": "search", "time_limit": 0.2},
                   {"solver": "cpsat", "time_limit": 0.3, "streams": 2}, {"solver": "size", "streams": 2},
                   {"solver": "greedy", "streams": 3}, {"fused_groups": True, "streams": 2},
                   {"alignment": 512, "streams": 2}, {"devices": 2}):
            if rng.random() < 0.5:
                continue
            runs += 1

            def run(kw=kw):
                planned = memplan.plan_graph(g, **kw)
                pp = planned.plan
                memplan.verify(planned.graph, pp)
                gd = gdoc if planned.graph is g else json.loads(memplan.io.graph_text(planned.graph))
                why = contract_unsafe(gd, pp.to_dict())
                if why:
                    rec.defect("random-silent", f"graph {k} {kw}: {json.dumps(gdoc)[:3000]}", why)
            guarded(rec, "random-plan", f"graph {k} {kw}", run, seconds=60)


NAMES = ["", " ", "\ud800", "\udcff", "\x00", "\x1b[2J", "\u202e", "a\nb", "a\rb", "\t", "-", "--x", "-o", "@x",
         "\u00e9", "\u0130", "e\u0301", "\U0001f600", "\ufeff", "x" * 100000, "a,b", "a\"b", "a\\b", "null",
         "{}", "%s", "{0}", "/", "../../etc/passwd", "copy:x@dev1", "x@dev1", "0", "NaN", "__proto__", "\u2028",
         "\ufffe", "\uffff", "\x7f", "\u0085"]


def rename_everywhere(doc, old, new):
    """``doc`` with the id ``old`` renamed to ``new`` in every field that refers to it."""
    def walk(x):
        if isinstance(x, dict):
            return {(new if k == old else k): walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return new if x == old else x
    return walk(doc)


def fam_names(rec, seeds, tmp, rng, quick):
    """Every kind of hostile name given consistently (graph name, a node, a tensor, a view parent, a group) and
    run through the whole CLI: plan, verify, show, simulate, trace, csv-free; plus the library's round trip."""
    import memplan
    base = seeds["views"]
    targets = [("tensor", "m"), ("tensor", "x"), ("tensor", "y"), ("node", "act"), ("group", "f0"), ("graph", "views")]
    only_names = os.environ.get("H57_NAMES")
    for (what, old) in targets:
        for new in NAMES:
            if only_names is not None and new not in only_names.split("|"):
                continue
            if what == "graph":
                d = copy.deepcopy(base); d["name"] = new
            else:
                d = rename_everywhere(base, old, new)
            label = f"{what} {old}->{new[:10]!r}"
            gpath = os.path.join(tmp, "n.json"); ppath = os.path.join(tmp, "n.plan.json")
            with open(gpath, "w", encoding="utf-8", errors="surrogatepass") as f:
                f.write(json.dumps(d))
            for kw in ({}, {"streams": 2}, {"devices": 2}):
                def lib(kw=kw):
                    g = memplan.graph_from_dict(d)
                    pl = memplan.plan(g, **kw)
                    if "devices" not in kw:
                        memplan.verify(g, pl)
                        memplan.simulate(g, pl)
                        memplan.reuse_table(g, pl)
                    tp = os.path.join(tmp, "n.lib.json")
                    pl.save(tp)
                    back = memplan.load_plan(tp)
                    if back.to_dict() != pl.to_dict():
                        rec.defect("names-silent", label, "plan changed on a save/load round trip")
                    memplan.save_graph(g, tp)
                    g2 = memplan.load_graph(tp)
                    if [t.id for t in g2.tensors] != [t.id for t in g.tensors]:
                        rec.defect("names-silent", label, "graph ids changed on a save/load round trip")
                guarded(rec, "names-lib", f"{label} {kw}", lib)
            cli_case(rec, label + " plan", ["plan", gpath, "-o", ppath, "-q"], [gpath], family="names-cli")
            if os.path.exists(ppath):
                for argv in (["verify", gpath, ppath], ["show", ppath], ["show", ppath, "--graph", gpath],
                             ["simulate", gpath, ppath], ["trace", gpath, ppath, "-o", os.path.join(tmp, "n.trace.json"),
                                                          "-q"],
                             ["plan", gpath, "-o", "-", "-q"], ["plan", gpath, "-o", ppath + ".2", "--devices", "2",
                                                                "--graph-out", gpath + ".split", "-q"],
                             ["draw", gpath, ppath, "-o", os.path.join(tmp, "n.png"), "--time", "--title", new, "-q"],
                             ["draw", gpath, ppath, "-o", os.path.join(tmp, "n.svg"), "-q"]):
                    res = cli_case(rec, f"{label} {argv[0]}", argv, [gpath, ppath], family="names-cli")
                    if res and res[0] == 0 and argv[0] == "trace":
                        try:
                            with open(os.path.join(tmp, "n.trace.json"), encoding="utf-8") as f:
                                json.load(f)
                        except (ValueError, UnicodeDecodeError) as exc:
                            rec.defect("names-silent", label, f"trace written is not JSON: {exc}")
                    if res and res[0] == 0 and argv[0] == "plan" and argv[-3:] == ["-o", "-", "-q"]:
                        try:
                            memplan.plan_from_dict(json.loads(res[1]))
                        except (ValueError, memplan.MemplanError) as exc:
                            rec.defect("names-silent", label, f"plan -o - is not a plan: {exc}: stdout {res[1][:200]!r} "
                                                                      f"stderr {res[2][:200]!r}")
                os.unlink(ppath)


def fam_objects(rec, seeds, plans, rng, quick):
    """Plans and graphs built in code (``Plan(...)``, ``Graph(...)``, ``Tensor``/``Node``) with hostile field values,
    given to every reader: verify, simulate, save, to_json, show's describe, reuse_table, runtime.binding.bind."""
    import dataclasses

    import memplan
    from memplan.graph import Node, Tensor
    from memplan.show import describe
    try:
        from runtime.binding import bind
    except ImportError:
        bind = None
    g = memplan.graph_from_dict(seeds["qkv"])
    for name in ("qkv", "qkv2", "views", "diamond@2"):
        gg = memplan.graph_from_dict(seeds[name])
        p = memplan.plan_from_dict(plans[name])
        for f in dataclasses.fields(p):
            for v in HOSTILE_VALUES + [(), ((),), (("x", 0),), ((None, None),), ((1, 2, 3),), [[1]], (("a", "b", "c"),),
                                       ((p.order[0][0], 2**70),), tuple(reversed(getattr(p, f.name))) if
                                       isinstance(getattr(p, f.name), tuple) else None]:
                def run(f=f, v=v, gg=gg, p=p):
                    q = dataclasses.replace(p, **{f.name: v})
                    ok = True
                    for fn in (lambda: memplan.verify(gg, q), lambda: memplan.simulate(gg, q), lambda: q.to_json(),
                               lambda: describe(q), lambda: memplan.reuse_table(gg, q), lambda: q.offsets(),
                               lambda: q.stream_of(), lambda: q.save("/tmp/h57_obj.json"), lambda: hash(q),
                               lambda: q == p, lambda: bind(gg, q) if bind else None):
                        try:
                            fn()
                        except memplan.MemplanError:
                            ok = False
                        except TypeError as exc:
                            if "unhashable Plan" not in str(exc):
                                raise
                    return ok
                guarded(rec, "objects", f"{name} Plan({f.name}={v!r:.40})", run)
    t0, n0 = g.tensors[0], g.nodes[0]
    for cls, obj in ((Tensor, t0), (Node, n0)):
        for f in dataclasses.fields(obj):
            for v in HOSTILE_VALUES + [("x",), (("a", "b"),), ((1,),), ("",), [("y", "x")], {"k": float("nan")}]:
                def run(f=f, v=v, obj=obj, cls=cls):
                    new = dataclasses.replace(obj, **{f.name: v})
                    if cls is Tensor:
                        gg = memplan.Graph(g.name, (new,) + g.tensors[1:], g.nodes, g.alignment)
                    else:
                        gg = memplan.Graph(g.name, g.tensors, (new,) + g.nodes[1:], g.alignment)
                    pl = memplan.plan(gg, streams=2)
                    memplan.verify(gg, pl)
                    memplan.save_graph(gg, "/tmp/h57_obj.json")
                    back = memplan.load_graph("/tmp/h57_obj.json")
                    if back != gg:
                        rec.defect("objects-silent", f"{cls.__name__}({f.name}={v!r:.40})", "graph changed on a round trip")
                    return pl
                guarded(rec, "objects", f"{cls.__name__}({f.name}={v!r:.40})", run)
    import numpy as np
    sched = memplan.schedule_with_events(g, [n.id for n in g.nodes], {n.id: i % 2 for i, n in enumerate(g.nodes)})
    ids = [n.id for n in g.nodes]
    for f in ("order", "streams", "events"):
        for v in HOSTILE_VALUES + [np.array([0] * len(ids)), np.array(ids), np.zeros((2, 2)), tuple(range(len(ids))),
                                   (memplan.Event(ids[0], ids[0]),), (memplan.Event(ids[-1], ids[0]),),
                                   ((ids[0], ids[1]),), (memplan.Event(None, 3),), tuple(ids[::-1]),
                                   tuple([2**70] * len(ids)), tuple([-1] * len(ids)), tuple([True] * len(ids)),
                                   tuple([1.0] * len(ids))]:
            def srun(f=f, v=v):
                sc = dataclasses.replace(sched, **{f: v})
                for fn in (lambda: memplan.plan(g, sc), lambda: memplan.build_happens_before(g, sc),
                           lambda: memplan.simulate(g, sc), lambda: sc == sched, lambda: hash(sc),
                           lambda: memplan.plan(g, sc, streams=2, memory_budget=1 << 30, max_events=1)):
                    try:
                        out = fn()
                        if isinstance(out, memplan.Plan):
                            why = contract_unsafe(seeds["qkv"], out.to_dict())
                            if why:
                                rec.defect("objects-silent", f"Schedule({f}={v!r:.40})", why)
                    except memplan.MemplanError:
                        pass
            guarded(rec, "objects", f"Schedule({f}={v!r:.40})", srun)
    for v in HOSTILE_VALUES:
        guarded(rec, "objects", f"Graph(name={v!r:.30})", lambda: memplan.plan(memplan.Graph(v, g.tensors, g.nodes)))
        guarded(rec, "objects", f"Graph(alignment={v!r:.30})",
                lambda: memplan.plan(memplan.Graph(g.name, g.tensors, g.nodes, v)))
        guarded(rec, "objects", f"Graph(tensors={v!r:.30})", lambda: memplan.plan(memplan.Graph(g.name, v, g.nodes)))
        guarded(rec, "objects", f"Graph(nodes={v!r:.30})", lambda: memplan.plan(memplan.Graph(g.name, g.tensors, v)))


def fam_problem(rec, rng, quick):
    """``BufferProblem`` + ``solve`` (minimalloc-style problems, the solvers' own entry) with hostile columns and
    options; every packing returned is checked here: interval-overlapping buffers never share bytes, and the
    arena covers every buffer (and the capacity, where given, covers the arena)."""
    import numpy as np

    import memplan
    from memplan.solvers import SolveOptions, solve

    def check(prob, sol, case):
        off = np.asarray(sol.offsets, dtype=object)
        n = len(prob.sizes)
        for i in range(n):
            if int(off[i]) < 0 or int(off[i]) + int(prob.sizes[i]) > int(sol.arena):
                rec.defect("problem-silent", case, f"buffer {i} at {off[i]}+{prob.sizes[i]} outside arena {sol.arena}")
                return
            if prob.alignment > 1 and int(off[i]) % prob.alignment:
                rec.defect("problem-silent", case, f"buffer {i} at {off[i]} not aligned to {prob.alignment}")
                return
        for i in range(n):
            for j in range(i + 1, n):
                if prob.sizes[i] == 0 or prob.sizes[j] == 0:
                    continue
                if prob.lower[i] < prob.upper[j] and prob.lower[j] < prob.upper[i] and prob.order is None and \
                        not prob.compatible and not prob.inplace:
                    if int(off[i]) < int(off[j]) + int(prob.sizes[j]) and int(off[j]) < int(off[i]) + int(prob.sizes[i]):
                        rec.defect("problem-silent", case, f"buffers {i} and {j} overlap in time and bytes")
                        return
        if prob.capacity is not None and sol.arena > prob.capacity:
            rec.defect("problem-silent", case, f"arena {sol.arena} over capacity {prob.capacity}")

    base = dict(sizes=[4, 4, 8, 16], lower=[0, 1, 2, 0], upper=[2, 3, 4, 1])
    variants = []
    for col in ("sizes", "lower", "upper"):
        for v in ([-1, 4, 8, 16], [2**62, 2**62, 2**62, 1], [2**63 - 1, 1, 1, 1], [1.5, 4, 8, 16], [True, 4, 8, 16],
                  [float("nan"), 4, 8, 16], [None, 4, 8, 16], ["4", 4, 8, 16], [], [4], [[4], 4, 8, 16],
                  np.array([4, 4, 8, 16], dtype=np.uint64), np.array([2**63 - 1] * 4, dtype=np.int64),
                  np.array([4.0, 4, 8, 16]), np.array([4, 4, 8, 16], dtype=np.int8)):
            variants.append((f"{col}={v!r:.40}", dict(base, **{col: v})))
    variants.append(("upper<lower", dict(base, lower=[3, 1, 2, 0], upper=[2, 3, 4, 1])))
    variants.append(("lower==upper", dict(base, lower=[2, 1, 2, 0], upper=[2, 3, 4, 1])))
    variants.append(("negative times", dict(base, lower=[-5, -4, -3, -2], upper=[-1, -1, -1, -1])))
    for k, v in (("alignment", [0, 3, -1, 2**62, True, 1.0, None, 256]), ("capacity", [0, -1, 7, 16, 2**70, 1.5, True,
                 float("nan")]), ("lower_bound", [-1, 0, 10**9, 2**70, 1.5, True]),
                 ("compatible", [frozenset({(0, 9)}), frozenset({(0, 0)}), frozenset({(0, 1)}), {(0, 1)}, [(0, 1)],
                                 frozenset({("a", "b")})]), ("inplace", [((0, 9),), ((0, 0),), ((0, 1),), (("a", 1),)]),
                 ("names", [("a",), ("a", "a", "b", "c"), (1, 2, 3, 4), "abcd"])):
        for x in v:
            variants.append((f"{k}={x!r:.40}", dict(base, **{k: x})))
    for _ in range(20 if quick else 100):
        n = rng.randint(1, 30)
        lo = [rng.randint(0, 20) for _ in range(n)]
        variants.append(("random", dict(sizes=[rng.choice([0, 1, 7, 256, 4096]) for _ in range(n)], lower=lo,
                                          upper=[x + rng.randint(1, 10) for x in lo],
                                          capacity=rng.choice([None, None, 4096, 10**6]))))
    for label, kw in variants:
        for solver in ("auto", "greedy", "size", "search", "cpsat", "ggml"):
            def run(kw=kw, solver=solver, label=label):
                prob = memplan.BufferProblem(**{k: (np.asarray(v) if k in ("sizes", "lower", "upper") and
                                                    isinstance(v, list) and v and all(isinstance(e, int) for e in v)
                                                    else v) for k, v in kw.items()})
                opts = SolveOptions(time_limit=0.2) if solver in ("search", "cpsat") else SolveOptions()
                sol = solve(prob, solver, opts)
                if "lower_bound" not in kw:
                    check(prob, sol, f"{label} {solver}")
            guarded(rec, "problem", f"{label} {solver}", run, seconds=60)


def fam_onnx_ops(rec, tmp, rng, quick):
    """One-op ONNX models whose constant inputs and attributes are hostile (Reshape to -1/-1 or 2**62, Slice
    steps of 0 and int64 extremes, Range of delta 0 or 10**12 entries, ConstantOfShape/Tile/Expand to 2**62,
    Transpose perms, axes out of range, Split/Pad/Conv/MaxPool extremes, 2**40-sized inputs)."""
    import itertools

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from memplan.importers import import_onnx
    I64 = np.int64
    cases = []

    def model(op, inputs, consts, attrs=None, in_shape=(2, 3, 4), dtype=TensorProto.FLOAT, opset=17, domain=""):
        x = helper.make_tensor_value_info("x", dtype, list(in_shape))
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
        n = helper.make_node(op, inputs, ["y"], name="n", domain=domain, **(attrs or {}))
        n2 = helper.make_node("Identity", ["y"], ["z"], name="n2")
        z = helper.make_tensor_value_info("z", dtype, None)
        g = helper.make_graph([n, n2], "g", [x], [z], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    for sh in ([-1, -1], [0, -1], [2**62, 2**62], [-2], [0], [], [24, 0], [5], [2**63 - 1], [-1, 0]):
        cases.append((f"Reshape {sh}", model("Reshape", ["x", "s"], {"s": np.array(sh, I64)})))
        cases.append((f"Reshape allowzero {sh}", model("Reshape", ["x", "s"], {"s": np.array(sh, I64)}, {"allowzero": 1})))
    for st, en, ax, stp in itertools.product([0, -1, 2**62, -(2**62)], [0, 2**63 - 1, -(2**63)], [0, 5, -4], [0, 1, -1, -(2**63)]):
        cases.append((f"Slice {st} {en} {ax} {stp}", model("Slice", ["x", "a", "b", "c", "d"], {"a": np.array([st], I64), "b": np.array([en], I64), "c": np.array([ax], I64), "d": np.array([stp], I64)})))
    for start, limit, delta in ((0, 10, 0), (0, 10**12, 1), (0, 10, -1), (10, 0, -1), (0.0, 1.0, 1e-300), (0, float("nan"), 1), (0, float("inf"), 1)):
        dt = np.float64 if any(isinstance(v, float) for v in (start, limit, delta)) else I64
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        inits = [numpy_helper.from_array(np.array(v, dt), k) for k, v in (("a", start), ("b", limit), ("c", delta))]
        n = helper.make_node("Range", ["a", "b", "c"], ["r"], name="n")
        n2 = helper.make_node("Cast", ["r"], ["z"], name="n2", to=TensorProto.FLOAT)
        n3 = helper.make_node("Add", ["x", "x"], ["w"], name="n3")
        g = helper.make_graph([n, n2, n3], "g", [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None), helper.make_tensor_value_info("w", TensorProto.FLOAT, None)], inits)
        cases.append((f"Range {start} {limit} {delta}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
    for shp in ([2**62], [-1], [0], [2**31, 2**31], [10**6, 10**6], []):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        n = helper.make_node("ConstantOfShape", ["s"], ["z"], name="n")
        g = helper.make_graph([n, helper.make_node("Add", ["x", "x"], ["w"], name="n3")], "g", [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None), helper.make_tensor_value_info("w", TensorProto.FLOAT, None)], [numpy_helper.from_array(np.array(shp, I64), "s")])
        cases.append((f"ConstantOfShape {shp}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
    for rep in ([1, 1, 2**62], [-1, 1, 1], [0, 1, 1], [1, 1], [10**6, 10**6, 10**6]):
        cases.append((f"Tile {rep}", model("Tile", ["x", "r"], {"r": np.array(rep, I64)})))
    for shp in ([2**62, 3, 4], [-1, 3, 4], [0, 3, 4], [1], [5, 3, 4], [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]):
        cases.append((f"Expand {shp}", model("Expand", ["x", "s"], {"s": np.array(shp, I64)})))
    for perm in ([0, 0, 1], [3, 1, 0], [0, 1], [-1, 0, 1], [2, 1, 0]):
        cases.append((f"Transpose {perm}", model("Transpose", ["x"], {}, {"perm": perm})))
    for axis in (3, -4, 2**40):
        cases.append((f"Concat axis {axis}", model("Concat", ["x", "x"], {}, {"axis": axis})))
        cases.append((f"Softmax axis {axis}", model("Softmax", ["x"], {}, {"axis": axis})))
        cases.append((f"Gather axis {axis}", model("Gather", ["x", "i"], {"i": np.array([0], I64)}, {"axis": axis})))
    for idx in ([5], [-3], [2**62], []):
        cases.append((f"Gather idx {idx}", model("Gather", ["x", "i"], {"i": np.array(idx, I64)})))
    for sp in ([1, 1], [3, -1], [0, 3], [2**62, -(2**62) + 3], [1, 1, 1, 1]):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
        n = helper.make_node("Split", ["x", "s"], ["a", "b"], name="n", axis=0)
        g = helper.make_graph([n], "g", [x], [helper.make_tensor_value_info("a", TensorProto.FLOAT, None), helper.make_tensor_value_info("b", TensorProto.FLOAT, None)], [numpy_helper.from_array(np.array(sp, I64), "s")])
        cases.append((f"Split {sp}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
    for pads in ([0] * 6, [-5] * 6, [2**62] + [0] * 5, [1, 1], [-1, 0, 0, -1, 0, 0]):
        cases.append((f"Pad {pads}", model("Pad", ["x", "p"], {"p": np.array(pads, I64)})))
    for k, s_, d, p in ((3, 1, 1, 0), (0, 1, 1, 0), (3, 0, 1, 0), (3, 1, 0, 0), (100, 1, 1, 0), (3, 1, 1, -5), (3, 2**40, 1, 0), (3, 1, 2**40, 0)):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])
        w = numpy_helper.from_array(np.zeros((4, 2, max(k, 1), max(k, 1)), np.float32), "w")
        attrs = dict(kernel_shape=[k, k], strides=[s_, s_], dilations=[d, d], pads=[p] * 4)
        n = helper.make_node("Conv", ["x", "w"], ["z"], name="n", **attrs)
        g = helper.make_graph([n], "g", [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w])
        cases.append((f"Conv {k} {s_} {d} {p}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
        n = helper.make_node("MaxPool", ["x"], ["z"], name="n", **attrs)
        g = helper.make_graph([n], "g", [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [])
        cases.append((f"MaxPool {k} {s_} {d} {p}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
    for dims in ([2**40, 2**40], [2**31, 2**31, 2**31], [0, 5], [1] * 64):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["z"], name="n")], "g", [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [])
        cases.append((f"Relu dims {dims}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])))
    path = os.path.join(tmp, "ops.onnx")
    for label, m in cases:
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        guarded(rec, "onnx-ops", label, lambda: import_onnx(path), seconds=60)
        cli_case(rec, label, ["import", path, "-o", os.path.join(tmp, "ops.json"), "-q"], [path], seconds=60,
                 family="onnx-ops-cli")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="graph,text,plan,cli,csv,onnx,onnx_ops,api,bench,pt2,random,names,objects,problem")
    ap.add_argument("--seed", type=int, default=57)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    import memplan
    from memplan import examples
    tmp = tempfile.mkdtemp(prefix="hostile57_")
    os.chdir(tmp)   # (relative output targets land here, not in the checkout)
    ex = os.path.join(tmp, "ex")
    from memplan import cli
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["example", "-o", ex])
    seeds = {}
    for fn in sorted(os.listdir(ex)):
        if fn.startswith("llama-1b"):
            continue
        with open(os.path.join(ex, fn)) as f:
            seeds[fn[:-5]] = json.load(f)
    plans = {}
    for name in ("qkv", "views", "chain", "diamond"):
        g = memplan.graph_from_dict(seeds[name])
        plans[name] = plan_dict(memplan.plan(g))
    plans["qkv2"] = plan_dict(memplan.plan(memplan.graph_from_dict(seeds["qkv"]), streams=3))
    seeds["qkv2"] = seeds["qkv"]
    for name, kw in (("chain", {}), ("diamond", {"streams": 2}), ("views", {}), ("moe", {"streams": 2})):
        planned = memplan.plan_graph(memplan.graph_from_dict(seeds[name]), devices=2, **kw)
        gpath_ = os.path.join(tmp, f"split_{name}.json")
        memplan.save_graph(planned.graph, gpath_)
        with open(gpath_) as f:
            seeds[name + "@2"] = json.load(f)
        plans[name + "@2"] = plan_dict(planned.plan)
    del examples
    rec = Recorder()
    t0 = time.time()
    only = args.only.split(",")

    def progress(family):
        print(f"[{time.time() - t0:.0f}s] after {family}: tried " + ", ".join(f"{k} {v}" for k, v in
              sorted(rec.tried.items())) + f"; defects {len(rec.defects)}", flush=True)
    if "graph" in only:
        fam_graph(rec, seeds, rng, args.quick)
        progress("graph")
    if "text" in only:
        fam_text(rec, seeds, tmp, rng, args.quick)
        progress("text")
    if "plan" in only:
        fam_plan(rec, seeds, plans, rng, args.quick)
        progress("plan")
    if "cli" in only:
        fam_cli(rec, seeds, plans, tmp, rng, args.quick)
        progress("cli")
    if "csv" in only:
        fam_csv(rec, tmp, rng, args.quick)
        progress("csv")
    if "onnx" in only:
        fam_onnx(rec, tmp, rng, args.quick)
        progress("onnx")
    if "bench" in only:
        fam_bench(rec, seeds, tmp, rng, args.quick)
        progress("bench")
    if "pt2" in only:
        fam_pt2(rec, tmp, rng, args.quick)
        progress("pt2")
    if "random" in only:
        fam_random(rec, rng, args.quick)
        progress("random")
    if "names" in only:
        fam_names(rec, seeds, tmp, rng, args.quick)
        progress("names")
    if "objects" in only:
        fam_objects(rec, seeds, plans, rng, args.quick)
        progress("objects")
    if "problem" in only:
        fam_problem(rec, rng, args.quick)
        progress("problem")
    if "onnx_ops" in only:
        fam_onnx_ops(rec, tmp, rng, args.quick)
        progress("onnx_ops")
    if "api" in only:
        fam_api(rec, seeds, plans, rng, args.quick)
        progress("api")
    os.chmod(os.path.join(tmp, "ro"), stat.S_IRWXU) if os.path.exists(os.path.join(tmp, "ro")) else None
    print(f"tried {sum(rec.tried.values())} inputs in {time.time() - t0:.0f}s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(rec.tried.items())))
    print("accepted (ran through, exit 0): " + ", ".join(f"{k} {v}" for k, v in sorted(rec.accepted.items())))
    print(f"defects (distinct): {len(rec.defects)}")
    _ = math


if __name__ == "__main__":
    main()
