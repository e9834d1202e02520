"""Round 52 (verify52): the verifier's finding count of missing nodes, and hostile plan shapes against the oracle.

* ``order is missing node 'a' and 999 more`` was one finding in ``Findings.total`` (and ``UnsafePlan``'s "and N
  more"), the same as a plan missing one node; each missing node now counts, as the message counts them.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import random

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, run_captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings
from oracle_fuzz import MUTATIONS, corrupt, dags
from strategies import fit_devices, graphs, view_chains
from test_verify import safe_doc

import memplan
from memplan import GraphBuilder
from memplan.errors import UnsafePlan
from memplan.verify import check

V = importlib.import_module("memplan.verify")   # (``memplan.verify`` is the function)


def test_missing_nodes_count_one_finding_each():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    two = copy.deepcopy(doc)
    two["order"] = two["order"][:-2]
    found = check(g, two)
    assert found == [(1, "order is missing 2 nodes: 'op2', 'op3'")]
    assert found.total == 2 and found.exact
    err = UnsafePlan(found, total=found.total, total_exact=found.exact)
    assert str(err).endswith("; and 1 more"), str(err)
    one = copy.deepcopy(doc)
    one["order"] = one["order"][:-1]
    assert check(g, one).total == 1
    # with other rule-1 findings ahead of it (the foreign-plan note, the unknown node): 2 + 3 missing
    odd = copy.deepcopy(doc)
    odd["order"] = odd["order"][:-3] + [{"node": "ghost", "stream": 0}]
    found = check(g, odd)
    assert found[-1] == (1, "order is missing 3 nodes: 'op1', 'op2', 'op3'") and len(found) == 3 and found.total == 5


# ---- hostile plans: the verifier against the oracle on shapes the corruptions of test_oracle.py do not make ----------

#: (name, edit) pairs, each editing a plan dict in place (or returning False where it does not apply); stacked 1-3 at a
#: time on top of test_oracle's MUTATIONS, so an event waited on the same stream, a wait before its record and a
#: reused event meet duplicated nodes, offsets at a view's edges, zero sizes and offsets near 2**63 in one plan
def _h_record_wait_same_stream(g, p, rnd):   # an event from a node to a later node of its own stream, or to itself
    same = [(x["node"], y["node"]) for k, x in enumerate(p["order"]) for y in p["order"][k:]
            if x["stream"] == y["stream"]]
    a, b = rnd.choice(same)
    p["events"].append({"after": a, "before": b})


def _h_wait_before_record(g, p, rnd):   # one event's wait moved to a node issued before its record
    if not p["events"]:
        return False
    e = rnd.choice(p["events"])
    names = [x["node"] for x in p["order"]]
    if e["after"] not in names:   # (its node dropped from order by an earlier edit)
        return False
    e["before"] = rnd.choice(names[:names.index(e["after"]) + 1])


def _h_reuse_event(g, p, rnd):   # one node's record waited on by many later nodes (every other one), or k copies
    names = [x["node"] for x in p["order"]]
    i = rnd.randrange(len(names))
    if rnd.random() < 0.5:
        p["events"] += [{"after": names[i], "before": b} for b in names[i + 1::2]]
    else:
        p["events"] += [{"after": names[i], "before": rnd.choice(names)}] * rnd.randint(2, 4)


def _h_event_cycle(g, p, rnd):
    names = [x["node"] for x in p["order"]]
    a, b = rnd.sample(names, 2) if len(names) > 1 else (names[0], names[0])
    p["events"] += [{"after": a, "before": b}, {"after": b, "before": a}]


def _h_dup_node(g, p, rnd):   # a node listed twice: on its stream or another, before or after its first place
    e = dict(rnd.choice(p["order"]))
    if rnd.random() < 0.5:
        e["stream"] = rnd.randrange(p["streams"])
    p["order"].insert(rnd.randrange(len(p["order"]) + 1), e)


def _h_drop_node(g, p, rnd):
    del p["order"][rnd.randrange(len(p["order"]))]


def _h_view_edge(g, p, rnd):   # a view moved to its parent's first or last byte edge (or one past it), plan only
    parent = {t["id"]: t.get("view_of") for t in g["tensors"]}
    offs = {e["id"]: e for e in p["tensors"]}
    views = [e for e in p["tensors"] if parent[e["id"]] and e["offset"] is not None
             and offs[parent[e["id"]]]["offset"] is not None]
    if not views:
        return False
    e = rnd.choice(views)
    par = offs[parent[e["id"]]]
    e["offset"] = rnd.choice([par["offset"], par["offset"] + par["size"] - e["size"],
                              par["offset"] + par["size"], par["offset"] - 1])


def _h_zero_size(g, p, rnd):   # a tensor of size 0 in the plan, anywhere (even past the arena's end)
    e = rnd.choice(p["tensors"])
    e["size"] = 0
    if e["offset"] is not None and rnd.random() < 0.5:
        e["offset"] = p["arena_bytes"] + rnd.choice([0, 256])


def _h_near_2_63(g, p, rnd):   # one root at the largest aligned offset below 2**63, arena grown to end there or past
    placed = [e for e in p["tensors"] if e["offset"] is not None]
    if not placed:
        return False
    e = rnd.choice(placed)
    unit = max(p["alignment"], g.get("alignment", 256))
    e["offset"] = ((1 << 63) - 1 - e["size"]) // unit * unit
    p["arena_bytes"] = max(p["arena_bytes"], e["offset"] + e["size"])
    if "device_arena_bytes" in p:
        p["device_arena_bytes"] = [p["arena_bytes"]] * len(p["device_arena_bytes"])


def _h_all_one_stream(g, p, rnd):   # every node on stream 0, the events kept (now all inside one stream)
    for e in p["order"]:
        e["stream"] = 0


HOSTILE = [_h_record_wait_same_stream, _h_wait_before_record, _h_reuse_event, _h_event_cycle, _h_dup_node,
           _h_drop_node, _h_view_edge, _h_zero_size, _h_near_2_63, _h_all_one_stream]

#: plan options: one and several streams, event caps, two and three devices
FUZZ_OPTIONS = [dict(), dict(streams=2), dict(streams=3, max_events=1), dict(streams="auto"), dict(devices=2),
                dict(devices=3, streams=2), dict(streams=2, fused_groups=True)]


@settings(max_examples=60 * int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_verify_agrees_with_the_oracle_on_stacked_hostile_edits(data):
    g = data.draw(st.one_of(dags(8), graphs(8), view_chains(8)), label="graph")
    opts = fit_devices(g, dict(data.draw(st.sampled_from(FUZZ_OPTIONS), label="options")))
    planned = memplan.plan_graph(g, **opts)
    gd, pd = planned.graph.to_dict(), planned.plan.to_dict()
    fused = opts.get("fused_groups", False)
    rnd = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    for _ in range(6):
        q = copy.deepcopy(pd)
        done = []
        for _k in range(rnd.randint(1, 3)):
            if rnd.random() < 0.3:
                how = rnd.choice(MUTATIONS)
                r = corrupt(gd, q, how, rnd)
                if r is not None:
                    q = r
                    done.append(how)
            else:
                edit = rnd.choice(HOSTILE)
                if q["order"] and q["tensors"] and edit(gd, q, rnd) is not False:
                    done.append(edit.__name__)
        want = findings(gd, q, fused_groups=fused) == []
        try:
            memplan.verify(planned.graph, q, fused_groups=fused)
            got = True
        except memplan.MemplanError:
            got = False
        assert got == want, (done, findings(gd, q, fused_groups=fused))


# ---- memplan verify GRAPH PLAN: one line, exit 2, on each malformed plan ------------------------------------------

def _o(p, key, value):
    p["order"][0][key] = value


def _t(p, tid, key, value):
    next(e for e in p["tensors"] if e["id"] == tid)[key] = value


#: (edit of a plan of the graph below, words its one line must hold)
MALFORMED = {
    "stream_true": (lambda p: _o(p, "stream", True), ["order[0]", "'stream'"]),
    "stream_str": (lambda p: _o(p, "stream", "0"), ["order[0]", "'stream'"]),
    "stream_float": (lambda p: _o(p, "stream", 1.5), ["order[0]", "'stream'"]),
    "stream_negative": (lambda p: _o(p, "stream", -1), ["rule 1", "stream -1"]),
    "stream_missing": (lambda p: p["order"][0].pop("stream"), ["order[0]", "'stream'"]),
    "node_int": (lambda p: _o(p, "node", 7), ["order[0]", "'node'"]),
    "order_dict": (lambda p: p.__setitem__("order", {}), ["'order'"]),
    "order_entry_list": (lambda p: p["order"].__setitem__(0, ["a", 0, 1]), ["order[0]"]),
    "node_twice": (lambda p: p["order"].append(dict(p["order"][0])), ["rule 1", "'a'", "twice"]),
    "node_dropped": (lambda p: p["order"].pop(), ["rule 1", "node 'c'"]),
    "offset_2_63": (lambda p: _t(p, "t", "offset", 2**63), ["tensors[1]", "'offset'"]),
    "offset_below_2_63": (lambda p: (_t(p, "t", "offset", 2**63 - 512), _t(p, "tv", "offset", 2**63 - 256),
                                     p.__setitem__("arena_bytes", 2**63 - 1)), ["rule 4", "'t'", "arena_bytes"]),
    "offset_float": (lambda p: _t(p, "t", "offset", 256.0), ["tensors[1]", "'offset'"]),
    "offset_below_minus_2_63": (lambda p: _t(p, "t", "offset", -2**63 - 1), ["tensors[1]", "'offset'"]),
    "size_str": (lambda p: _t(p, "t", "size", "512"), ["tensors[1]", "'size'"]),
    "size_zero": (lambda p: _t(p, "t", "size", 0), ["rule 4", "'t'", "size 0"]),
    "arena_2_64": (lambda p: p.__setitem__("arena_bytes", 2**64), ["'arena_bytes'"]),
    "streams_zero": (lambda p: p.__setitem__("streams", 0), ["'streams'"]),
    "alignment_zero": (lambda p: p.__setitem__("alignment", 0), ["'alignment'"]),
    "event_no_before": (lambda p: p["events"].append({"after": "a"}), ["events[0]", "'before'"]),
    "event_int": (lambda p: p["events"].append({"after": 5, "before": "c"}), ["events[0]", "'after'"]),
    "event_to_itself": (lambda p: p["events"].append({"after": "a", "before": "a"}), ["rule 1", "'a'->'a'"]),
    "event_backward": (lambda p: p["events"].append({"after": "c", "before": "a"}), ["rule 1", "'c'->'a'"]),
    "events_null": (lambda p: p.__setitem__("events", None), ["'events'"]),
    "tensor_twice": (lambda p: p["tensors"].append(dict(p["tensors"][0])), ["rule 4", "'x'", "twice"]),
    "devices_without_fields": (lambda p: p.__setitem__("devices", 2), ["'device_arena_bytes'"]),
    "view_past_parent": (lambda p: _t(p, "tv", "offset", 768), ["rule 4", "'tv'"]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_cli_verify_refuses_each_malformed_plan_in_one_line(tmp_path, name):
    b = GraphBuilder("g2", alignment=256)
    b.input("x", 256)
    b.node("a", "OP", ["x"], b.intermediate("t", 512))
    b.node("v", "VIEW", ["t"], b.view("tv", "t", 256, 256))
    b.node("c", "OP", ["tv"], b.output("y", 256))
    g = b.build()
    plan = {"format": "memplan.plan/1", "graph": "g2", "alignment": 256, "arena_bytes": 1024,
            "lower_bound_bytes": 0, "streams": 1, "events": [],
            "order": [{"node": n, "stream": 0} for n in ("a", "v", "c")],
            "tensors": [{"id": "x", "offset": 0, "size": 256}, {"id": "t", "offset": 256, "size": 512},
                        {"id": "tv", "offset": 512, "size": 256}, {"id": "y", "offset": 768, "size": 256}]}
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    gp.write_text(json.dumps(g.to_dict()))
    pp.write_text(json.dumps(plan))
    assert run_captured("verify", gp, pp)[0] == 0
    edit, words = MALFORMED[name]
    edit(plan)
    pp.write_text(json.dumps(plan))
    code, out, err = run_captured("verify", gp, pp)
    assert out == ""
    assert_bad_input(code, err, *words)


# ---- a read missing one stream's writers of a long chain written concurrently ------------------------------------

def _concurrent_chain(k: int, streams: int, missing: int) -> tuple[memplan.Graph, dict]:
    """``v0`` by ``p`` (stream 0), views ``v1 .. v{k-1}`` each of the one above, each written by ``n{i}`` on stream
    ``i % streams`` with no event between writers, and ``r`` (stream 0) reading the last, waiting for the last writer
    of every stream but ``missing`` (docs/experiments/verify_chain_s52.py at any size)."""
    b = GraphBuilder("concurrent", alignment=1)
    b.input("x", 8)
    b.node("p", "OP", ["x"], b.intermediate("v0", 8))
    for i in range(1, k):
        b.node(f"n{i}", "SET", [], b.view(f"v{i}", f"v{i - 1}", 8, 0))
    b.node("r", "OP", [f"v{k - 1}"], b.output("o", 8))
    g = b.build()
    order = ([{"node": "p", "stream": 0}] + [{"node": f"n{i}", "stream": i % streams} for i in range(1, k)]
             + [{"node": "r", "stream": 0}])
    last = {e["stream"]: e["node"] for e in order[:-1]}
    offsets = {t.id: 8 for t in g.tensors} | {"x": 0, "o": 16}
    return g, {"format": "memplan.plan/1", "graph": "concurrent", "alignment": 1, "arena_bytes": 24,
               "lower_bound_bytes": 0, "streams": streams, "order": order,
               "events": [{"after": n, "before": "r"} for s, n in sorted(last.items()) if s not in (0, missing)],
               "tensors": [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]}


def test_a_read_missing_a_stream_of_a_concurrently_written_chain_asks_few_views(monkeypatch):
    """The walk naming the writers a read misses asked every view it passed whether all writers above were seen,
    each view written on 64 streams making (and keeping) an array pair: a clock copy per view walked, 2,000 here
    (20,000 views on 1,024 streams: 310 MB and 13 s of 17); now the first such view is found in a few questions."""
    k, streams = 2000, 64
    g, pd = _concurrent_chain(k, streams, missing=1)
    calls = [0]
    real = V._materialize

    def counting(r):
        calls[0] += 1
        return real(r)

    monkeypatch.setattr(V, "_materialize", counting)
    found = check(g, pd)
    # every writer on stream 1 is missed (the reader waits for none of them), named nearest first
    assert [m for _r, m in found] == [
        f"node 'r' reads 'v{k - 1}' but its writer 'n{i}' does not happen-before it (missing event?)"
        for i in range(k - 1, 0, -1) if i % streams == 1]
    # (k: one clock copy per view written on many streams, as its latest writers are made; a few for the walk)
    assert calls[0] < k + 100, calls[0]


def test_failing_writers_are_named_alike_anywhere_on_a_small_chain():
    """Against the oracle: each of a chain's streams left unwaited in turn, and the missing stream's writers all named."""
    k, streams = 40, 20
    for missing in range(1, streams):
        g, pd = _concurrent_chain(k, streams, missing)
        want = [i for i in range(k - 1, 0, -1) if i % streams == missing]
        found = check(g, pd)
        assert [m for _r, m in found] == [
            f"node 'r' reads 'v{k - 1}' but its writer 'n{i}' does not happen-before it (missing event?)" for i in want]
        assert bool(findings(g.to_dict(), pd)) == bool(found)
