"""Round 50 (verify50): the claims a plan makes, against brute force, and split plans' claims checked.

* A plan split over several devices says, per device, ``status`` OPTIMAL / FEASIBLE / HEURISTIC and a ``gap``
  against that device's bound. An exact solver's search proves optima above the live bytes (alignment,
  fragmentation); a one-device block records that proof as ``bound``, a split plan's device did not: it said
  OPTIMAL at an arena above its ``lower_bound_bytes`` with nothing to show for it, and ``show``/``verify`` did not
  check split plans' claims at all (a hand-edited OPTIMAL passed without a word). Each device now records the
  ``bound`` its status rests on, and ``show.solver_claim_warnings`` checks every device's claim and the block's.
* Against brute force (``tests/oracle.py``'s optimum of each device's arena, ``tests/reference.py``'s contract
  checker): every OPTIMAL a plan claims, one device or per device of a split, is the optimum; every bound it
  reports is at most the optimum; every gap is the arena's distance to the bound reported beside it.
* The verifier accepts exactly the plans the brute-force contract checker calls safe, on hazards planted by hand
  (an overlap of tensors read on two streams with no event between, an event recorded after its wait, an in-place
  overwrite across streams, a view read after its base's bytes are reused, an off-by-one end, a misaligned offset,
  an offset past the arena).
"""

from __future__ import annotations

import copy
import importlib.util
import json

import oracle
import pytest
import reference as ref
from cli_contract import run_captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fit_devices, graphs, schedules

import memplan
from memplan import GraphBuilder
from memplan.problem import gap_of
from memplan.show import describe, solver_claim_warnings
from memplan.verify import check

HAS_ORTOOLS = importlib.util.find_spec("ortools") is not None
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: one block's nodes: (inputs by index, -1 the block's input), output size; a search of random graphs found it
BLOCK = [((-1,), 91), ((0, -1), 138), ((1, -1, 0), 211), ((1,), 264), ((3, 2), 279)]


def _two_blocks(alignment: int = 64) -> memplan.Graph:
    """``BLOCK`` twice, the second reading the first's last tensor: over 2 devices each gets one, and at alignment
    64 an exact search proves device 1's optimum (851 B) above its live bytes (842 B)."""
    b = GraphBuilder("twice", alignment=alignment)
    b.input("x", 1)
    prev = "x"
    for rep in range(2):
        for i, (ins, size) in enumerate(BLOCK):
            out = (b.output if rep == 1 and i == len(BLOCK) - 1 else b.intermediate)(f"t{rep}_{i}", size)
            b.node(f"n{rep}_{i}", "OP", [prev if k < 0 else f"t{rep}_{k}" for k in ins], out, cost=1)
        prev = f"t{rep}_{len(BLOCK) - 1}"
    return b.build()


def _split():
    return memplan.plan_graph(_two_blocks(), devices=2, solver="search")


def _optimal_devices(planned) -> dict[int, int]:
    return oracle.optimal_arenas(planned.graph.to_dict(), planned.plan.to_dict(), max_roots=9)


# ---- split plans: each device's OPTIMAL is backed by the bound it rests on ------------------------------------------

def test_split_device_optimal_above_its_live_bytes_records_the_proven_bound():
    planned = _split()
    dev = planned.plan.solver["per_device"]
    opt = _optimal_devices(planned)
    above = [d for d in dev if d["arena_bytes"] > d["lower_bound_bytes"]]
    assert above, dev   # the case this test is about: an optimum above the device's live bytes
    for d in above:
        assert d["status"] == "OPTIMAL" and d["gap"] == 0.0
        assert d["arena_bytes"] == opt[d["device"]]       # the claim is true (brute force) ...
        assert d["bound"] == d["arena_bytes"]              # ... and now says what proves it
    for d in dev:
        if d["arena_bytes"] == d["lower_bound_bytes"]:
            assert "bound" not in d   # entries that need no proof stay as they were
    # the block states it too: the largest device's bound, here the arena (every device OPTIMAL)
    assert planned.plan.solver["bound"] == planned.plan.arena_bytes == 851 > planned.plan.lower_bound_bytes
    assert solver_claim_warnings(planned.plan) == []
    line = next(x for x in describe(planned.plan).splitlines() if x.startswith("solver"))
    assert "status=OPTIMAL" in line and "bound=851" in line, line


def _edited(plan: memplan.Plan, edit) -> memplan.Plan:
    doc = plan.to_dict()
    edit(doc["solver"])
    return memplan.plan_from_dict(doc)


def _device_above(block: dict) -> dict:
    return next(d for d in block["per_device"] if d["arena_bytes"] > d["lower_bound_bytes"])


@pytest.mark.parametrize("edit, words", [
    (lambda b: _device_above(b).pop("bound"), "no proven bound equals it"),
    (lambda b: _device_above(b).update(bound=_device_above(b)["arena_bytes"] + 1), "is above arena_bytes"),
    (lambda b: b["per_device"][0].update(status="FEASIBLE", gap=0.01), "its weakest device's"),
    (lambda b: b["per_device"][0].update(gap=0.5), "its largest device's"),
    (lambda b: b["per_device"][1].update(arena_bytes=1), "device_arena_bytes"),
    (lambda b: b["per_device"][0].update(lower_bound_bytes=10**9), "above its arena_bytes"),
    (lambda b: b.update(bound=10**9), "the solver block's bound 1000000000 is above arena_bytes"),
    (lambda b: b.pop("per_device"), "no per_device entries"),
    (lambda b: b.update(per_device=[]), "per_device list is empty"),
])
def test_edited_split_claims_are_flagged(edit, words):
    """Each of these passed ``show`` and ``verify`` without a word: a split plan's claims were not checked."""
    plan = _edited(_split().plan, edit)
    memplan.verify(_split().graph, plan)   # still safe: the solver block is free-form
    found = solver_claim_warnings(plan)
    assert any(words in w for w in found), found


def test_verify_cli_warns_of_an_edited_split_claim(tmp_path):
    planned = _split()
    graph, plan = tmp_path / "split.json", tmp_path / "plan.json"
    memplan.save_graph(planned.graph, str(graph))
    doc = planned.plan.to_dict()
    _device_above(doc["solver"]).pop("bound")
    plan.write_text(json.dumps(doc))
    code, out, err = run_captured("verify", graph, plan)
    assert code == 0 and "safe" in out
    assert "memplan: warning:" in err and "per_device[1] (device 1) claims status OPTIMAL" in err, err
    code, out, err = run_captured("show", plan)
    assert code == 0 and "warning" in out and "unsupported" in out, out


def test_one_device_plans_are_unchanged():
    """The one-device block keeps its shape and the plan its bytes where nothing needed a bound."""
    p = memplan.plan(_two_blocks(), solver="search")
    assert "per_device" not in p.solver and solver_claim_warnings(p) == []


# ---- brute force: claims of plans of random graphs, one device and split -------------------------------------------

def _assert_claims(where: str, block: dict, arena: int, low: int, opt: int) -> None:
    """``block``'s status, bound and gap against the true optimum ``opt`` of the ``arena`` it describes."""
    bound = block.get("bound", low)
    assert low <= opt and bound <= opt, (where, block, opt)
    assert arena >= opt, (where, arena, opt)
    if block.get("status") == "OPTIMAL":
        assert arena == opt and block.get("gap") == 0.0, (where, block, opt)
    else:
        assert arena > max(bound, low), (where, block)
    assert block.get("gap") == gap_of(arena, max(bound, low)), (where, block)


@SETTINGS
@given(data=st.data())
def test_claims_against_brute_force(data):
    g = data.draw(graphs(max_nodes=7), label="graph")
    opts = data.draw(st.sampled_from([{}, {"streams": 2}, {"devices": 2}, {"devices": 2, "streams": 2},
                                      {"devices": 3}]), label="opts")
    opts = fit_devices(g, opts)
    solver = data.draw(st.sampled_from(["search", "auto", "greedy"] + (["cpsat"] * HAS_ORTOOLS)), label="solver")
    limit = {"time_limit": 0.05} if solver == "cpsat" else {}
    planned = memplan.plan_graph(g, solver=solver, **opts, **limit)
    plan = planned.plan
    assert solver_claim_warnings(plan) == [], plan.solver
    per = oracle.optimal_arenas(planned.graph.to_dict(), plan.to_dict(), max_roots=7)
    if per is None:
        return
    if plan.devices == 1:
        opt = per.get(0, 0)
        if "fused_groups" not in plan.solver:
            _assert_claims("plan", plan.solver, plan.arena_bytes, plan.lower_bound_bytes, opt)
        return
    for d in plan.solver["per_device"]:
        _assert_claims(f"device {d['device']}", d, d["arena_bytes"], d["lower_bound_bytes"], per.get(d["device"], 0))
    assert max(plan.lower_bound_bytes, plan.solver.get("bound", 0)) <= max(per.values(), default=0) <= plan.arena_bytes
    statuses = {d["status"] for d in plan.solver["per_device"]}
    assert (plan.solver["status"] == "OPTIMAL") == (statuses == {"OPTIMAL"})
    assert plan.solver["gap"] == max(d["gap"] for d in plan.solver["per_device"])


# ---- the verifier against planted hazards -------------------------------------------------------------------------

def _two_streams(alignment: int) -> memplan.Graph:
    """``a`` (stream 0) writes ``t``; ``b`` (stream 1) reads its view ``tv`` into ``u``, which ``f`` (stream 1) reads into
    ``z``; ``c`` (stream 0) writes ``v``; ``e`` overwrites ``u`` in place with ``w``; ``d`` joins them into ``y``."""
    b = GraphBuilder("planted", alignment=alignment)
    b.input("x", 64)
    b.node("a", "OP", ["x"], b.intermediate("t", 128))
    b.view("tv", "t", 64, 64)
    b.node("b", "OP", ["tv"], b.intermediate("u", 64))
    b.node("f", "OP", ["u"], b.intermediate("z", 64))
    b.node("c", "OP", ["x"], b.intermediate("v", 128))
    b.node("e", "OP", ["u"], b.intermediate("w", 64), inplace={"w": "u"})
    b.node("d", "OP", ["w", "v", "z"], b.output("y", 64))
    return b.build()


ORDER = [("a", 0), ("b", 1), ("f", 1), ("c", 0), ("e", 1), ("d", 0)]
#: x [0, 64), t [64, 192) (its view tv [128, 192)), u and w [192, 256), v [256, 384), z [384, 448); y over x
OFFSETS = {"x": 0, "t": 64, "tv": 128, "u": 192, "w": 192, "v": 256, "z": 384, "y": 0}


def _safe_doc(g) -> dict:
    return _doc(g, ORDER, [("a", "b"), ("e", "d")], OFFSETS)


def _doc(g, order, events, offsets, arena=None) -> dict:
    tensors = [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]
    top = max([offsets[t.id] + t.size for t in g.tensors if offsets[t.id] is not None] + [0])
    return {"format": "memplan.plan/1", "graph": g.name, "alignment": g.alignment,
            "arena_bytes": top if arena is None else arena, "lower_bound_bytes": 0, "streams": 2,
            "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events], "tensors": tensors,
            "solver": {"name": "hand"}}


def _move(doc: dict, tid: str, off: int) -> dict:
    out = copy.deepcopy(doc)
    for e in out["tensors"]:
        if e["id"] == tid:
            e["offset"] = off
    return out


def _hazards(safe: dict):
    """(name, plan dict) of plans with one hazard planted into ``safe`` (and one safe variant)."""
    yield "safe", safe
    # v (c, stream 0) over u (b and f on stream 1): their accesses are not ordered
    yield "overlap across streams", _move(safe, "v", 192)
    # the event a->b recorded after its wait: b issued before a
    d = copy.deepcopy(safe)
    d["order"] = [d["order"][1], d["order"][0], *d["order"][2:]]
    yield "event recorded after the wait", d
    # no event from e (stream 1) to d: d reads w, and y's bytes, unordered
    d = copy.deepcopy(safe)
    d["events"] = d["events"][:1]
    yield "missing event", d
    # e on stream 0 overwrites u in place after an event from b, but f (stream 1) still reads u: e is not u's last access
    d = copy.deepcopy(safe)
    d["order"][4]["stream"] = 0
    d["events"] = [{"after": "a", "before": "b"}, {"after": "b", "before": "e"}, {"after": "f", "before": "d"}]
    yield "in-place across streams", d
    # the same with the event from f instead: every reader of u happens-before e, the in-place overwrite is safe
    d = copy.deepcopy(d)
    d["events"] = [{"after": "a", "before": "b"}, {"after": "f", "before": "e"}]
    yield "in-place after every reader", d
    # y (d) over t, whose view b read: b happens-before d through e's event, so t is dead by then
    yield "output over a view's base, after its reader", _move(safe, "y", 64)
    # v (c, stream 0) over t while b (stream 1) still reads t's view tv
    yield "base reused while its view is read", _move(safe, "v", 64)
    yield "one byte over u", _move(safe, "v", 255)
    yield "misaligned", _move(safe, "v", 257)
    d = copy.deepcopy(safe)
    d["arena_bytes"] -= 1
    yield "past the arena", d
    yield "an offset past the arena", _move(safe, "y", safe["arena_bytes"])


@pytest.mark.parametrize("alignment", [1, 64])
def test_planted_hazards_match_the_brute_force_checker(alignment):
    g = _two_streams(alignment)
    safe = _safe_doc(g)
    verdicts = {}
    for name, doc in _hazards(safe):
        want = ref.check_plan(g, doc)
        got = {r for r, _ in check(g, doc)}
        verdicts[name] = sorted(got)
        assert got == want, (name, got, want, check(g, doc))
    assert {k for k, v in verdicts.items() if not v} == {
        "safe", "in-place after every reader", "output over a view's base, after its reader"}, verdicts
    # the hazards are found for the reason planted
    assert verdicts["overlap across streams"] == verdicts["in-place across streams"] == [3], verdicts
    assert verdicts["base reused while its view is read"] == [3]
    assert verdicts["one byte over u"] == ([3] if alignment == 1 else [3, 4])   # (rule 3 beside rule 4: round 70)
    assert verdicts["past the arena"] == verdicts["an offset past the arena"] == [4]
    assert 1 in verdicts["event recorded after the wait"] and 2 in verdicts["missing event"]


# ---- random plans, not mutations of verified ones: the verifier's verdict is the brute-force checker's -------------

@st.composite
def _random_plans(draw):
    """A random graph, a random topological order on 1-3 streams, the events a node needs from each other stream's
    writers of what it reads (each dropped or issued too late at times, and stray ones added), and every root at a
    random aligned offset of a small arena, so that roots overlap often; views at their parent's offset (now and
    then off it), the arena their top (now and then one byte short)."""
    g = draw(graphs(max_nodes=6), label="graph")
    order, stream_of = draw(schedules(g), label="schedule")
    pos = {n: i for i, n in enumerate(order)}
    events = []
    for n in g.nodes:
        for t in n.inputs:
            for w in ref.writers(g, t):
                if stream_of[w] != stream_of[n.id] and draw(st.integers(0, 5)):
                    events.append((w, n.id))
    for _ in range(draw(st.integers(0, 2))):
        a, b = draw(st.sampled_from(order)), draw(st.sampled_from(order))
        if stream_of[a] != stream_of[b]:
            events.append((a, b) if pos[a] < pos[b] or draw(st.booleans()) else (b, a))
    a = g.alignment
    roots = [t for t in g.tensors if t.view_of is None and t.kind != "weight"]
    span = max(sum(-(-t.size // a) * a for t in roots) // 2, a)
    offsets = {t.id: draw(st.integers(0, span // a), label=f"off {t.id}") * a for t in roots}
    for t in g.tensors:   # views in listed order: a parent is listed before its views
        if t.view_of is not None:
            parent = offsets.get(t.view_of)
            offsets[t.id] = None if parent is None else parent + t.view_offset + (
                a if draw(st.integers(0, 19)) == 0 else 0)
        elif t.kind == "weight":
            offsets[t.id] = None
    for t in g.tensors:   # a view of a view listed before its parent: fill in (no skew)
        if t.view_of is not None and offsets[t.id] is None and offsets.get(ref.root_of(g, t.id)) is not None:
            offsets[t.id] = offsets[ref.root_of(g, t.id)] + ref.abs_view_offset(g, t.id)
    top = max([offsets[t.id] + t.size for t in g.tensors if offsets[t.id] is not None] + [0])
    doc = _doc(g, [(n, stream_of[n]) for n in order], events, offsets,
               arena=top - (1 if top and draw(st.integers(0, 9)) == 0 else 0))
    doc["streams"] = max(stream_of.values()) + 1
    return g, doc


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(_random_plans())
def test_random_plans_verdicts_match_brute_force(case):
    g, doc = case
    want = ref.check_plan(g, doc)
    got = {r for r, _ in check(g, doc)}
    assert got == want, (got, want, check(g, doc))


@pytest.mark.parametrize("kind", ["output", "intermediate"])
@pytest.mark.parametrize("q", [128, 192, 256])
def test_an_output_view_keeps_its_base_to_the_end(kind, q):
    """``rv`` views the upper half of ``r``; ``q`` is written after ``r``'s last access. Where ``rv`` is an output, it
    is read after the run, so no byte of ``r`` (its root) may be reused: ``q`` over either half is unsafe, beside it
    safe; an intermediate view ends with its last access, and ``q`` may reuse ``r``."""
    doc = {"format": "memplan.graph/1", "name": "alias", "alignment": 64,
           "tensors": [{"id": "x", "size": 64, "kind": "input"}, {"id": "r", "size": 128, "kind": "intermediate"},
                       {"id": "rv", "size": 64, "kind": kind, "view_of": "r", "view_offset": 64},
                       {"id": "q", "size": 64, "kind": "intermediate"}, {"id": "y", "size": 64, "kind": "output"}],
           "nodes": [{"id": "a", "op": "OP", "inputs": ["x"], "outputs": ["r"]},
                     {"id": "v", "op": "VIEW", "inputs": ["r"], "outputs": ["rv"]},
                     {"id": "b", "op": "OP", "inputs": ["x"], "outputs": ["q"]},
                     {"id": "c", "op": "OP", "inputs": ["q"], "outputs": ["y"]}]}
    g = memplan.graph_from_dict(doc)
    plan = _doc(g, [("a", 0), ("v", 0), ("b", 0), ("c", 0)], [],
                {"x": 0, "r": 128, "rv": 192, "q": q, "y": 64 if q != 256 else 320})
    want = {3} if kind == "output" and q < 256 else set()
    assert ref.check_plan(g, plan) == want
    assert {r for r, _ in check(g, plan)} == want
