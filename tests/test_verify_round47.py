"""Round 47: ``memplan.verify`` against a brute-force oracle of CONTRACT.md's safe plan, on every solver's plans and
on mutants of them; and hostile plans (deadlocks, unknown ids, duplicated or missing nodes) refused by name.

The oracle below is written for this file from the contract and docs/format.md's "documented interpretations"
alone: it reads the graph and plan as JSON dicts, builds happens-before as the explicit transitive closure of a
small graph (stream edges and forward events, plus the virtual start and end accesses), and checks the four rules
pair by pair, access by access. It shares nothing with ``memplan.verify`` (vector clocks, painting, per-stream
summaries), so where the two disagree one of them is wrong.
"""

from __future__ import annotations

import copy
import json
import sys
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import closure
from refusals import REFUSALS, skip_refusal
from strategies import data_deps, graphs, schedules, view_chains

import memplan
from memplan import GraphBuilder, graph_from_dict, schedule_with_events
from memplan.errors import GraphError, PlanFormatError, UnsafePlan
from memplan.solvers import SOLVER_NAMES
from memplan.verify import check

START, END = "\0start", "\0end"


# ---------------------------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------------------------

def oracle(g: dict, p: dict, fused: bool = False) -> set[int]:
    """The contract's rules a plan (dict) breaks for a graph (dict): {} when safe; a multi-device plan by
    docs/format.md's "Multi-device plans" (per-device arenas, streams and tensors on one device, COPY a push).
    ``fused``: rule 3 as ``verify(fused_groups=True)`` states it, every group run as one kernel."""
    broken: set[int] = set()
    tens = {t["id"]: t for t in g["tensors"]}
    nodes = [n["id"] for n in g["nodes"]]
    nodeset = set(nodes)
    nd = {n["id"]: n for n in g["nodes"]}

    def root(t: str) -> str:
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
        return t

    def chain(t: str) -> list[str]:
        out = [t]
        while tens[t].get("view_of") is not None:
            t = tens[t]["view_of"]
            out.append(t)
        return out

    producer = {o: n["id"] for n in g["nodes"] for o in n["outputs"]}
    # ---- rule 1: order is every node once, streams in range ----
    order = [(e["node"], e["stream"]) for e in p["order"]]
    names = [n for n, _ in order]
    if sorted(names) != sorted(nodes) or len(set(names)) != len(names):
        return {1}     # nothing else is meaningful without a complete order
    pos = {n: i for i, n in enumerate(names)}
    stream = dict(order)
    for _n, s in order:
        if not (isinstance(s, int) and 0 <= s < p["streams"]):
            broken.add(1)
    D = p.get("devices", 1)
    ndev = {e["node"]: e.get("device", 0) for e in p["order"]}
    tdev = {e["id"]: e.get("device", 0) for e in p["tensors"]}
    stream_dev: dict[int, set[int]] = {}
    for e in p["order"]:
        stream_dev.setdefault(e["stream"], set()).add(ndev[e["node"]])
        if not 0 <= ndev[e["node"]] < D:
            broken.add(1)
    if any(len(ds) > 1 for ds in stream_dev.values()):
        broken.add(1)     # a stream belongs to one device
    # ---- happens-before: explicit transitive closure ----
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    succ[START] = set(nodes) | {END}
    succ[END] = set()
    for n in nodes:
        succ[n].add(END)
    for a in nodes:
        for b in nodes:
            if stream[a] == stream[b] and pos[a] < pos[b]:
                succ[a].add(b)
    for e in p["events"]:
        a, b = e["after"], e["before"]
        if a not in nodeset or b not in nodeset:
            broken.add(1)
            continue
        if stream[a] == stream[b]:
            broken.add(1)
        if pos[a] >= pos[b]:
            broken.add(1)     # a wait before its record orders nothing
            continue
        succ[a].add(b)
    reach = closure(succ)

    def hb(a: str, b: str) -> bool:
        return b in reach[a]

    # ---- rules 1 and 2: every writer along a read's view chain is issued first and happens-before ----
    for n in nodes:
        for t in nd[n]["inputs"]:
            for c in chain(t):
                w = producer.get(c)
                if w is None:
                    continue
                if pos[w] > pos[n]:
                    broken.add(1)
                if not hb(w, n):
                    broken.add(2)
    # fusion groups: one stream, listed order, nothing else of that stream in between
    groups: dict[str, list[str]] = {}
    for n in g["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for members in groups.values():
        if len({stream[m] for m in members}) > 1:
            broken.add(1)
            continue
        ps = [pos[m] for m in members]
        if ps != sorted(ps):
            broken.add(1)
        s = stream[members[0]]
        if any(stream[x] == s and x not in members and min(ps) < pos[x] < max(ps) for x in nodes):
            broken.add(1)
    # ---- rule 4: every tensor placed once, at its size; offsets aligned, in the arena, views at parent + offset ----
    # (round 70: rule 3 is then asked of every root with one offset on a device in range, however misplaced)
    placed: dict[str, object] = {}
    repeated: set[str] = set()
    for e in p["tensors"]:
        if e["id"] not in tens or e["id"] in placed:
            broken.add(4)
            repeated.add(e["id"])
            continue
        if e["size"] != tens[e["id"]]["size"]:
            broken.add(4)
        placed[e["id"]] = e["offset"]
    if set(placed) != set(tens):
        broken.add(4)
    align = g.get("alignment", 256)
    for t, td in tens.items():
        if t not in placed:
            continue
        off = placed[t]
        if tens[root(t)]["kind"] == "weight":
            if off is not None:
                broken.add(4)
            continue
        if off is None:
            broken.add(4)
            continue
        if td.get("view_of") is not None:
            poff = placed.get(td["view_of"])
            if poff is not None and off != poff + td.get("view_offset", 0):
                broken.add(4)
            continue
        if off < 0 or off % align or off % p["alignment"] or off + td["size"] > p["arena_bytes"]:
            broken.add(4)
    bound_false = p["lower_bound_bytes"] > p["arena_bytes"]   # (no misplacement: rule 3 still asked, session 65)
    if D > 1:   # docs/format.md, "Multi-device plans": one arena per device, nodes touch their own device's tensors
        arenas = p["device_arena_bytes"]
        if any(not 0 <= a <= p["arena_bytes"] for a in arenas) or any(not 0 <= d < D for d in tdev.values()):
            broken.add(4)
        known = lambda t: t in tdev and 0 <= tdev[t] < D   # noqa: E731   (a device out of range: judged above)
        for t, td in tens.items():
            if known(t) and known(root(t)) and tdev[t] != tdev[root(t)]:
                broken.add(4)
            if known(t) and placed.get(t) is not None and td.get("view_of") is None \
                    and placed[t] + td["size"] > arenas[tdev[t]]:
                broken.add(4)
        for n in g["nodes"]:
            if n["op"] == "COPY":
                touched = n["inputs"]   # a push: it reads its own device's bytes, writes another's
            else:
                touched = n["inputs"] + n["outputs"]
            if 0 <= ndev[n["id"]] < D and any(known(root(t)) and tdev[root(t)] != ndev[n["id"]] for t in touched):
                broken.add(4)
    if bound_false:
        broken.add(4)
    # ---- rule 3: overlapping roots, every access of one before every access of the other ----
    acc: dict[str, set[str]] = {}
    for t, td in tens.items():
        r = root(t)
        if td["kind"] == "input" and t == r:
            acc.setdefault(r, set()).add(START)
        if td["kind"] == "output":
            acc.setdefault(r, set()).add(END)   # interp: an output view keeps its root to the end
    for n in g["nodes"]:
        for t in n["inputs"] + n["outputs"]:
            acc.setdefault(root(t), set()).add(n["id"])
    if fused:   # verify(fused_groups=True): an access by a group member is an access by every member
        for r in acc:
            acc[r] = set().union(*(groups.get(nd[x].get("group"), [x]) if x in nd else [x] for x in acc[r]))
    exception: dict[tuple[str, str], set[str]] = {}
    for n in g["nodes"]:
        wrote = {root(o) for o in n["outputs"]}
        for o, i in (n.get("inplace") or {}).items():
            a, b = root(i), root(o)
            if producer.get(b) == n["id"] and a not in wrote:   # interp: n produces out's root, writes not in's
                exception.setdefault((a, b), set()).add(n["id"])
    roots = [t for t in tens if root(t) == t and tens[t]["kind"] != "weight" and tens[t]["size"] > 0
             and isinstance(placed.get(t), int) and t not in repeated and (D == 1 or 0 <= tdev.get(t, -1) < D)]

    def ordered(a: str, b: str) -> bool:
        ok = exception.get((a, b), set())
        return all(hb(x, y) or (x == y and x in ok) for x in acc.get(a, ()) for y in acc.get(b, ()))

    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            a0, a1 = placed[a], placed[a] + tens[a]["size"]
            b0, b1 = placed[b], placed[b] + tens[b]["size"]
            if a0 < b1 and b0 < a1 and tdev[a] == tdev[b] and not (ordered(a, b) or ordered(b, a)):
                broken.add(3)
    return broken


# ---------------------------------------------------------------------------------------------------------------
# plans and mutants
# ---------------------------------------------------------------------------------------------------------------

def verdict(g: dict, p: dict) -> set[int] | str:
    """The rules ``memplan.verify.check`` reports, or "refused" where the plan document is not read at all."""
    try:
        return {r for r, _ in check(graph_from_dict(g), p)}
    except PlanFormatError:
        return "refused"


def agree(g: dict, p: dict) -> None:
    """verify's verdict equals the oracle's: safe for both, or unsafe for both with every rule verify names broken."""
    want = oracle(g, p)
    got = verdict(g, p)
    if got == "refused":   # a document check_plan_fields refuses (e.g. a negative offset): unsafe by the oracle too
        assert want, (json.dumps(g), json.dumps(p))
        return
    assert bool(got) == bool(want), (got, want, json.dumps(g), json.dumps(p))
    # and rule by rule: verify reports every rule the oracle finds broken, but those it documents skipping (rules 2
    # and 3 when the order lacks a node, where this oracle stops at rule 1 and verify still judges rule 4; since round
    # 70 neither a rule-4 finding nor a few stray stream ids stop it)
    names = [e["node"] for e in p["order"]]
    complete = set(names) >= {n["id"] for n in g["nodes"]}
    assert (got if complete else got - {4}) <= want, (got, want, json.dumps(g), json.dumps(p))
    expected = want if complete else want & {1}
    assert expected <= got, (got, want, json.dumps(g), json.dumps(p))
    ids = [repr(t["id"]) for t in g["tensors"]] + [repr(n["id"]) for n in g["nodes"]]
    ids += [repr(e["node"]) for e in p["order"]] + [repr(e["id"]) for e in p["tensors"]]
    for _rule, msg in check(graph_from_dict(g), p):
        # every finding names what it is about: a node, tensor or event, or the plan field at fault
        assert (any(i in msg for i in ids) or "lower_bound_bytes" in msg or "device" in msg
                or "field 'alignment'" in msg), msg


@st.composite
def mutants(draw, g: dict, p: dict) -> tuple[dict, dict, str]:
    """(graph, plan, what) with one random change: the mutations a planner bug or a hand edit would make."""
    g, p = copy.deepcopy(g), copy.deepcopy(p)
    kinds = ["offset", "share", "drop_event", "flip_event", "add_event", "swap", "move", "restream", "shrink",
             "inplace", "align", "view_offset", "lower_bound", "place", "place", "place", "kind", "device", "device",
             "overwrite", "overwrite"]
    what = draw(st.sampled_from(kinds))
    order, events, tensors = p["order"], p["events"], p["tensors"]
    arena = [e for e in tensors if e["offset"] is not None]
    if not order and what in ("restream", "inplace", "overwrite", "device"):
        return g, p, "noop"   # (a graph of views alone has no node to change)
    if what == "offset" and arena:
        e = draw(st.sampled_from(arena))
        e["offset"] += draw(st.sampled_from([-256, -64, -8, -1, 1, 8, 64, 256, 512, g.get("alignment", 256)]))
    elif what == "share" and len(arena) > 1:
        # one root moved onto another's first byte (views along): safe only where their accesses are ordered
        roots = [e for e in arena if g_tensor(g, e["id"]).get("view_of") is None]
        if len(roots) < 2:
            return g, p, "noop"
        a, b = draw(st.lists(st.sampled_from(roots), min_size=2, max_size=2, unique_by=lambda e: e["id"]))
        _move_root(g, p, b["id"], a["offset"] - b["offset"])
        p["arena_bytes"] = max(p["arena_bytes"], max(o["offset"] + o["size"] for o in arena))
    elif what == "drop_event" and events:
        events.pop(draw(st.integers(0, len(events) - 1)))
    elif what == "flip_event" and events:
        e = draw(st.sampled_from(events))
        e["after"], e["before"] = e["before"], e["after"]
    elif what == "add_event" and len(order) > 1:
        i, j = draw(st.lists(st.integers(0, len(order) - 1), min_size=2, max_size=2, unique=True))
        events.append({"after": order[i]["node"], "before": order[j]["node"]})
    elif what == "swap" and len(order) > 1:
        i, j = draw(st.lists(st.integers(0, len(order) - 1), min_size=2, max_size=2, unique=True))
        order[i], order[j] = order[j], order[i]
    elif what == "move" and len(order) > 1:
        e = order.pop(draw(st.integers(0, len(order) - 1)))
        order.insert(draw(st.integers(0, len(order))), e)
    elif what == "restream":
        e = draw(st.sampled_from(order))
        e["stream"] = draw(st.integers(0, p["streams"]))   # one past the last: out of range
    elif what == "shrink":
        p["arena_bytes"] = max(0, p["arena_bytes"] - draw(st.sampled_from([1, 8, 256, 1024])))
        p["lower_bound_bytes"] = min(p["lower_bound_bytes"], p["arena_bytes"])
    elif what == "inplace":
        n = draw(st.sampled_from(g["nodes"]))
        if not n["inputs"] or not n["outputs"]:
            return g, p, "noop"
        ip = n.get("inplace") or {}
        ip[draw(st.sampled_from(n["outputs"]))] = draw(st.sampled_from(n["inputs"]))
        n["inplace"] = ip
    elif what == "overwrite":
        # an output of a node marked in place over one of its inputs and moved onto that input's root: safe exactly
        # where the contract's one exception holds (the node is the input's last access, the output's first)
        n = draw(st.sampled_from(g["nodes"]))
        parent = {t["id"]: t.get("view_of") for t in g["tensors"]}
        placed = {e["id"]: e for e in arena if parent[e["id"]] is None}

        def root_of(t):
            while parent[t] is not None:
                t = parent[t]
            return t

        outs = [o for o in n["outputs"] if root_of(o) in placed]
        ins = [i for i in n["inputs"] if root_of(i) in placed]
        if not outs or not ins:
            return g, p, "noop"
        o, i = draw(st.sampled_from(outs)), draw(st.sampled_from(ins))
        n["inplace"] = dict(n.get("inplace") or {}, **{o: i})
        ro, ri = placed[root_of(o)], placed[root_of(i)]
        _move_root(g, p, ro["id"], ri["offset"] - ro["offset"])
        p["arena_bytes"] = max(p["arena_bytes"], max(e["offset"] + e["size"] for e in arena))
    elif what == "align":
        p["alignment"] = draw(st.sampled_from([1, 2, 8, 512, 4096]))
    elif what == "view_offset":
        views = [e for e in arena if g_tensor(g, e["id"]).get("view_of") is not None]
        if not views:
            return g, p, "noop"
        draw(st.sampled_from(views))["offset"] += draw(st.sampled_from([-1, 1, 256]))
    elif what == "lower_bound":
        p["lower_bound_bytes"] = p["arena_bytes"] + 1
    elif what == "place" and arena:
        # a root moved to another aligned place (its views with it), the arena grown to hold it: rule 3 alone
        roots = [e for e in arena if g_tensor(g, e["id"]).get("view_of") is None]
        if not roots:
            return g, p, "noop"
        e = draw(st.sampled_from(roots))
        step = max(g.get("alignment", 256), p["alignment"])
        to = step * draw(st.integers(0, max(1, p["arena_bytes"] // step)))
        _move_root(g, p, e["id"], to - e["offset"])
        p["arena_bytes"] = max(p["arena_bytes"], max(o["offset"] + o["size"] for o in arena))
    elif what == "device" and p.get("devices", 1) > 1:
        # a node, a tensor (a root with its views, or one view alone) or a device's arena changed
        D = p["devices"]
        where = draw(st.sampled_from(["node", "root", "view", "arena"]))
        if where == "node":
            draw(st.sampled_from(order))["device"] = draw(st.integers(0, D - 1))
        elif where == "arena":
            d = draw(st.integers(0, D - 1))
            p["device_arena_bytes"][d] = max(0, p["device_arena_bytes"][d] - draw(st.sampled_from([1, 256, 1024])))
        else:
            e = draw(st.sampled_from(tensors))
            d = draw(st.integers(0, D - 1))
            if where == "view":
                e["device"] = d
            else:
                parent = {t["id"]: t.get("view_of") for t in g["tensors"]}
                r = e["id"]
                while parent[r] is not None:
                    r = parent[r]
                for o in tensors:
                    x = o["id"]
                    while parent[x] is not None:
                        x = parent[x]
                    if x == r:
                        o["device"] = d
    elif what == "kind":
        t = draw(st.sampled_from(g["tensors"]))
        if t["kind"] not in ("intermediate", "output"):
            return g, p, "noop"
        t["kind"] = "output" if t["kind"] == "intermediate" else "intermediate"
    else:
        return g, p, "noop"
    return g, p, what


@st.composite
def multi_mutants(draw, g: dict, p: dict) -> tuple[dict, dict, str]:
    """One to three mutations in a row (an in-place mark and a shared offset together, a moved node and a dropped
    event, ...)."""
    done = []
    for _ in range(draw(st.integers(1, 3))):
        g, p, what = draw(mutants(g, p))
        done.append(what)
    return g, p, "+".join(done)


def agree_on_mutants(data, g: dict, p: dict, n: int) -> None:
    """``agree`` on ``n`` drawn mutants of (g, p), skipping those whose graph itself is refused (no plan to judge)."""
    for _ in range(n):
        mg, mp, _what = data.draw(multi_mutants(g, p))
        try:
            graph_from_dict(mg)
        except GraphError:
            continue
        agree(mg, mp)


def _move_root(g: dict, p: dict, rid: str, by: int) -> None:
    """Shift root ``rid`` and every view under it by ``by`` bytes (so only where the root lies changes)."""
    parent = {t["id"]: t.get("view_of") for t in g["tensors"]}

    def root(t):
        while parent[t] is not None:
            t = parent[t]
        return t

    for e in p["tensors"]:
        if e["offset"] is not None and root(e["id"]) == rid:
            e["offset"] += by


def g_tensor(g: dict, tid: str) -> dict:
    return next(t for t in g["tensors"] if t["id"] == tid)


def planned(graph, sched, solver: str, **kw) -> dict:
    if solver in ("search", "cpsat"):
        kw["time_limit"] = 0.5   # (a deterministic work budget)
    return memplan.plan(graph, sched, solver=solver, **kw).to_dict()


FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@FAST
@given(st.data())
def test_every_solvers_plan_and_its_mutants_agree_with_the_oracle(data):
    """Every solver's plan of a random graph, under a random given schedule or the scheduler's own (``streams``, a
    ``memory_budget``), is safe by the oracle; and verify judges 6 mutants of each as the oracle does."""
    graph = data.draw(st.one_of(graphs(max_nodes=7), view_chains(max_nodes=8)))
    source = data.draw(st.sampled_from(["given", "given", "streams", "auto", "budget"]))
    sched, kw = None, {}
    if source == "given":
        order, stream_of = data.draw(schedules(graph))
        sched = schedule_with_events(graph, order, stream_of)
    elif source == "streams":
        kw["streams"] = data.draw(st.integers(2, 4))
    elif source == "auto":
        kw["streams"] = "auto"
    else:
        serial = memplan.plan(graph, solver="greedy").arena_bytes
        kw.update(streams=3, memory_budget=serial + data.draw(st.sampled_from([0, 256, 4096])))
    g = graph.to_dict()
    for solver in data.draw(st.lists(st.sampled_from(SOLVER_NAMES), min_size=1, max_size=2, unique=True)):
        try:
            p = planned(graph, sched, solver, **kw)
        except REFUSALS as exc:
            skip_refusal(exc)
            continue   # (ggml on several streams; a budget no order fits)
        assert oracle(g, p) == set(), (solver, json.dumps(g), json.dumps(p))
        agree(g, p)
        agree_on_mutants(data, g, p, 6)


@FAST
@given(st.data())
def test_random_schedules_with_random_events_agree(data):
    """Schedules the planner never makes: a random order and streams, events a random subset of all forward pairs,
    offsets from a plan of the serial schedule (reuse that a concurrent schedule may break)."""
    graph = data.draw(graphs(max_nodes=6))
    order, stream_of = data.draw(schedules(graph))
    serial = memplan.plan(graph, solver=data.draw(st.sampled_from(["greedy", "size"]))).to_dict()
    g = graph.to_dict()
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:] if stream_of[a] != stream_of[b]]
    events = data.draw(st.lists(st.sampled_from(pairs), max_size=6, unique=True)) if pairs else []
    p = dict(serial, streams=max(stream_of.values()) + 1,
             order=[{"node": n, "stream": stream_of[n]} for n in order],
             events=[{"after": a, "before": b} for a, b in events])
    agree(g, p)


@contextmanager
def _small_verifier_blocks(on: bool):
    """The verifier's arena painting split into blocks of two segments, and a clock kept as a shared array plus
    differences wherever one stream differs: the paths that otherwise start at 1,024 segments and 16 streams,
    which small graphs never reach."""
    v = sys.modules["memplan.verify"]
    saved = v._Painting._BLOCK, v._SHARE_SLACK
    if on:
        v._Painting._BLOCK, v._SHARE_SLACK = 1, 1
    try:
        yield
    finally:
        v._Painting._BLOCK, v._SHARE_SLACK = saved


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(st.data())
def test_random_placements_on_many_streams_agree(data):
    """Roots dealt over a few 1 KiB slots (so some share bytes), a random issue order over up to 20 streams, the
    events its data needs less a few, plus random extra ones (a backward one now and then): rule 3's every case,
    decided by the oracle pair by pair."""
    graph = data.draw(st.one_of(graphs(max_nodes=8), view_chains(max_nodes=10)))
    order, _ = data.draw(schedules(graph))
    S = data.draw(st.integers(1, 20))
    stream_of = {n: data.draw(st.integers(0, S - 1)) for n in order}
    deps = data_deps(graph)
    events = [(d, n) for n in order for d in sorted(deps[n]) if stream_of[d] != stream_of[n]]
    events = [e for e in events if not data.draw(st.integers(0, 9)) == 0]
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:] if stream_of[a] != stream_of[b]]
    if pairs:
        events += data.draw(st.lists(st.sampled_from(pairs), max_size=4))
        if data.draw(st.integers(0, 19)) == 0:
            a, b = data.draw(st.sampled_from(pairs))
            events.append((b, a))
    g = graph.to_dict()
    step = g.get("alignment", 256)
    slots = data.draw(st.integers(1, 6))
    tens = {t["id"]: t for t in g["tensors"]}
    at: dict[str, int | None] = {}
    for t in g["tensors"]:   # parents are listed before their views
        if t.get("view_of") is None:
            at[t["id"]] = None if t["kind"] == "weight" else (
                1024 * data.draw(st.integers(0, slots)) + step * data.draw(st.sampled_from([0, 0, 0, 1])))
        else:
            po = at[t["view_of"]]
            at[t["id"]] = None if po is None else po + t.get("view_offset", 0)
    p = {"format": "memplan.plan/1", "graph": g["name"], "alignment": step, "lower_bound_bytes": 0,
         "streams": S, "order": [{"node": n, "stream": stream_of[n]} for n in order],
         "events": [{"after": a, "before": b} for a, b in events],
         "tensors": [{"id": t, "offset": at[t], "size": tens[t]["size"]} for t in tens], "solver": {}}
    p["arena_bytes"] = max([o + tens[t]["size"] for t, o in at.items() if o is not None] + [0])
    with _small_verifier_blocks(data.draw(st.booleans())):
        agree(g, p)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(st.data())
def test_multi_device_plans_and_their_mutants_agree(data):
    """Split plans (one arena per device, COPY nodes) by every heuristic, and mutants that move a node, a tensor or
    a root to another device or shrink a device's arena."""
    graph = data.draw(graphs(max_nodes=7))
    streams = data.draw(st.sampled_from([None, 2]))
    solver = data.draw(st.sampled_from(["auto", "greedy", "size"]))
    try:
        made = memplan.plan_graph(graph, solver=solver, devices=2, streams=streams)
    except REFUSALS as exc:
        skip_refusal(exc)
        return   # (a graph that cannot be cut in two)
    g, p = made.graph.to_dict(), made.plan.to_dict()
    assert oracle(g, p) == set(), (json.dumps(g), json.dumps(p))
    agree(g, p)
    agree_on_mutants(data, g, p, 8)


@FAST
@given(st.data())
def test_fused_group_plans_and_their_mutants_agree(data):
    """``verify(fused_groups=True)`` against the oracle with each group's accesses made by all its members, on
    ``plan(fused_groups=True)``'s plans (safe both ways) and on mutants."""
    graph = data.draw(st.one_of(graphs(max_nodes=7), view_chains(max_nodes=8)))
    assume(graph.groups())
    try:
        p = memplan.plan(graph, fused_groups=True, streams=data.draw(st.sampled_from([None, 2]))).to_dict()
    except REFUSALS as exc:
        skip_refusal(exc)
        return
    g = graph.to_dict()
    assert oracle(g, p, fused=True) == set() == oracle(g, p)
    for _ in range(6):
        mg, mp, _what = data.draw(multi_mutants(g, p))
        try:
            mgraph = graph_from_dict(mg)
        except GraphError:
            continue
        want = oracle(mg, mp, fused=True)
        try:
            got = {r for r, _ in check(mgraph, mp, fused_groups=True)}
        except PlanFormatError:
            assert want
            continue
        assert bool(got) == bool(want) and got <= want, (got, want, json.dumps(mg), json.dumps(mp))


_BUNDLED: dict = {}


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(st.data())
def test_bundled_graphs_plans_and_mutants_agree(data):
    """The bundled graphs of real shapes (a mixture of experts, a tiny Llama step with its KV-cache views and fused
    norms, view chains) on 1, 2 or 4 streams: planned safe by the oracle, and each mutant judged alike."""
    from memplan.examples import bundled

    name = data.draw(st.sampled_from(["moe", "llama-tiny", "views", "qkv", "fanout15"]))
    streams = data.draw(st.sampled_from([None, 2, 4]))
    if (name, streams) not in _BUNDLED:
        graph = bundled()[name]
        _BUNDLED[name, streams] = graph.to_dict(), memplan.plan(graph, streams=streams).to_dict()
    g, p = _BUNDLED[name, streams]
    assert oracle(g, p) == set()
    agree_on_mutants(data, g, p, 1)


def test_the_oracle_rejects_what_the_contract_forbids():
    """The oracle itself on hand-made cases (so the property tests compare against something right)."""
    g = _two_branch().to_dict()
    p = memplan.plan(_two_branch(), streams=2).to_dict()
    assert oracle(g, p) == set()
    for e in p["events"]:
        q = copy.deepcopy(p)
        q["events"].remove(e)
        assert 2 in oracle(g, q), e


# ---------------------------------------------------------------------------------------------------------------
# hostile plans
# ---------------------------------------------------------------------------------------------------------------

def _two_branch():
    b = GraphBuilder("two", alignment=256)
    b.input("x", 256)
    b.tensor("a", 256)
    b.tensor("c", 256)
    b.tensor("y", 256, "output")
    b.node("na", "OP", ["x"], ["a"])
    b.node("nc", "OP", ["x"], ["c"])
    b.node("ny", "OP", ["a", "c"], ["y"])
    return b.build()


def _base_plan() -> tuple[memplan.Graph, dict]:
    graph = _two_branch()
    order = ["na", "nc", "ny"]
    p = memplan.plan(graph, schedule_with_events(graph, order, {"na": 0, "nc": 1, "ny": 0})).to_dict()
    assert p["events"] == [{"after": "nc", "before": "ny"}]
    return graph, p


def _findings(graph, p) -> str:
    with pytest.raises(UnsafePlan) as e:
        memplan.verify(graph, p)
    return str(e.value)


def test_a_wait_on_a_record_issued_later_is_refused_by_name():
    graph, p = _base_plan()
    p["order"] = [{"node": "na", "stream": 0}, {"node": "ny", "stream": 0}, {"node": "nc", "stream": 1}]
    msg = _findings(graph, p)
    assert "'nc'->'ny'" in msg and "wait comes before the record" in msg
    assert oracle(graph.to_dict(), p)


def test_a_wait_on_a_later_node_of_the_same_stream_is_refused_by_name():
    graph, p = _base_plan()
    # na waits for ny, issued after it on its own stream: a stream waiting on its own future (a deadlock, or in CUDA a
    # wait on an event not yet recorded: a no-op, a silent race)
    p["events"].append({"after": "ny", "before": "na"})
    msg = _findings(graph, p)
    assert "'ny'->'na'" in msg
    assert oracle(graph.to_dict(), p)


def test_an_event_cycle_across_streams_is_refused_by_name():
    b = GraphBuilder("cyc", alignment=256)
    b.input("x", 256)
    for k in ("p", "q", "r", "s"):
        b.tensor(k, 256, "output")
    b.node("a1", "OP", ["x"], ["p"])
    b.node("a2", "OP", ["x"], ["q"])
    b.node("b1", "OP", ["x"], ["r"])
    b.node("b2", "OP", ["x"], ["s"])
    graph = b.build()
    p = memplan.plan(graph).to_dict()
    p["streams"] = 2
    p["order"] = [{"node": "a1", "stream": 0}, {"node": "b1", "stream": 1},
                  {"node": "a2", "stream": 0}, {"node": "b2", "stream": 1}]
    # a2 waits for b2 and b2 waits for a2 (through a1 -> b2, b1 -> a2 it would be fine): one of the two waits comes
    # before its record in issue order, whichever way they are issued
    p["events"] = [{"after": "b2", "before": "a2"}, {"after": "a2", "before": "b2"}]
    msg = _findings(graph, p)
    assert "'b2'->'a2'" in msg and "wait comes before the record" in msg
    assert 1 in oracle(graph.to_dict(), p)


@FAST
@given(st.data())
def test_any_event_cycle_is_refused_naming_a_backward_event(data):
    """Events drawn among any two nodes of different streams, backward ones too: whenever the waits and the streams'
    own order form a cycle (a deadlock were every wait honoured), verify refuses the plan under rule 1, naming an
    event of that cycle whose wait is issued before its record."""
    graph = data.draw(graphs(max_nodes=7))
    order, stream_of = data.draw(schedules(graph))
    pairs = [(a, b) for a in order for b in order if stream_of[a] != stream_of[b]]
    assume(pairs)
    events = data.draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=6, unique=True))
    p = memplan.plan(graph, schedule_with_events(graph, order, stream_of), solver="greedy").to_dict()
    p["events"] = [{"after": a, "before": b} for a, b in events]
    succ: dict[str, set[str]] = {n: set() for n in order}
    for i, a in enumerate(order):
        later = [b for b in order[i + 1:] if stream_of[b] == stream_of[a]]
        if later:
            succ[a].add(later[0])
    for a, b in events:
        succ[a].add(b)
    on_cycle = set()
    for a, b in events:   # an event on a cycle: its `before` reaches its `after`
        seen, todo = set(), [b]
        while todo:
            x = todo.pop()
            if x not in seen:
                seen.add(x)
                todo.extend(succ[x])
        if a in seen:
            on_cycle.add((a, b))
    findings = [m for r, m in check(graph, p) if r == 1]
    backward = {(a, b) for a, b in on_cycle if order.index(a) > order.index(b)}
    assert bool(on_cycle) <= bool(backward)   # (a cycle has a backward edge, and only events go backward)
    for a, b in backward:
        assert f"event {a!r}->{b!r}: the wait comes before the record in issue order" in findings, findings


@pytest.mark.parametrize("field,entry,word", [
    ("order", {"node": "ghost", "stream": 0}, "'ghost'"),
    ("events", {"after": "ghost", "before": "ny"}, "'ghost'"),
    ("events", {"after": "na", "before": "ghost"}, "'ghost'"),
    ("tensors", {"id": "ghost", "offset": 0, "size": 256}, "'ghost'"),
])
def test_unknown_ids_are_named(field, entry, word):
    graph, p = _base_plan()
    p[field].append(entry)
    msg = _findings(graph, p)
    assert word in msg
    assert oracle(graph.to_dict(), p)


def test_a_stream_past_the_declared_count_is_named():
    graph, p = _base_plan()
    p["order"][1]["stream"] = 7
    assert "'nc'" in _findings(graph, p) and "stream 7" in _findings(graph, p)
    assert 1 in oracle(graph.to_dict(), p)


def test_a_node_listed_twice_or_never_is_named():
    graph, p = _base_plan()
    q = copy.deepcopy(p)
    q["order"].insert(1, {"node": "na", "stream": 1})
    assert "'na' appears twice" in _findings(graph, q)
    q = copy.deepcopy(p)
    del q["order"][1]
    assert "missing node 'nc'" in _findings(graph, q)
    assert oracle(graph.to_dict(), q) == {1}


def test_a_fusion_group_issued_out_of_its_listed_order_names_the_members():
    """It named the group alone: in a long order the user had to find which member came too early."""
    b = GraphBuilder("grp", alignment=256)
    b.input("x", 256)
    b.tensor("a", 256)
    b.tensor("c", 256)
    b.tensor("y", 256, "output")
    b.node("m0", "OP", ["x"], ["a"], group="g")
    b.node("m1", "OP", ["x"], ["c"], group="g")
    b.node("m2", "OP", ["a", "c"], ["y"], group="g")
    graph = b.build()
    p = memplan.plan(graph).to_dict()
    p["order"] = [{"node": "m1", "stream": 0}, {"node": "m0", "stream": 0}, {"node": "m2", "stream": 0}]
    msg = _findings(graph, p)
    assert "fusion group 'g' is not issued in its listed order: its member 'm1' is issued before 'm0'" in msg
    assert oracle(graph.to_dict(), p) == {1}


def test_findings_name_the_tensor_node_and_event():
    graph, p = _base_plan()
    q = copy.deepcopy(p)
    q["events"] = []
    msg = _findings(graph, q)
    assert "node 'ny' reads 'c' but its writer 'nc'" in msg
    q = copy.deepcopy(p)
    offs = {e["id"]: e["offset"] for e in q["tensors"]}
    for e in q["tensors"]:
        if e["id"] == "c":
            e["offset"] = offs["a"]
    msg = _findings(graph, q)
    assert "'a' and 'c'" in msg or "'c' and 'a'" in msg
    q = copy.deepcopy(p)
    q["tensors"][0]["offset"] = 3
    msg = _findings(graph, q)
    assert repr(q["tensors"][0]["id"]) in msg and "alignment" in msg
