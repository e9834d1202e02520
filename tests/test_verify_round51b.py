"""Round 51b (verify51b): the verifier's finding counts and its cost on hostile but valid-size plans.

* Counts: ``UnsafePlan``'s "and N more" counted the findings kept (at most ``MAX_REPORTED`` of each rule), so a plan
  with 10,000 racy reads said "and 195 more". Now ``check`` returns a ``Findings`` list whose ``total`` counts every
  finding (a lower bound, said "at least", where counting all would cost more than the check), and the exception,
  its message, its pickle and the ``memplan verify`` line carry it.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import tempfile

from cli_contract import run_captured

import memplan
from memplan import GraphBuilder
from memplan.errors import UnsafePlan
from memplan.verify import check

V = importlib.import_module("memplan.verify")   # (``memplan.verify`` is the function)


def _racy_reads(n: int) -> tuple[memplan.Graph, dict]:
    """``p`` writes ``x`` on stream 0; ``n`` readers on stream 1 with no event: ``n`` rule-2 findings, one each."""
    b = GraphBuilder("racy", alignment=1)
    b.input("i", 8)
    b.node("p", "OP", ["i"], b.intermediate("x", 8))
    for j in range(n):
        b.node(f"r{j}", "OP", ["x"], b.output(f"o{j}", 8))
    g = b.build()
    order = [{"node": "p", "stream": 0}] + [{"node": f"r{j}", "stream": 1} for j in range(n)]
    offsets = {"i": 0, "x": 8, **{f"o{j}": 16 + 8 * j for j in range(n)}}
    return g, {"format": "memplan.plan/1", "graph": "racy", "alignment": 1, "arena_bytes": 16 + 8 * n,
               "lower_bound_bytes": 0, "streams": 2, "order": order, "events": [],
               "tensors": [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]}


def test_thousands_of_racy_reads_are_counted_in_full():
    g, pd = _racy_reads(5000)
    found = check(g, pd)
    assert len(found) == V.MAX_REPORTED and found.total == 5000 and found.exact
    try:
        memplan.verify(g, pd)
    except UnsafePlan as e:
        err = e
    assert err.total == 5000 and err.total_exact and len(err.violations) == V.MAX_REPORTED
    assert str(err).endswith("; and 4995 more"), str(err)[-80:]
    again = pickle.loads(pickle.dumps(err.at("p.json")))
    assert again.total == 5000 and str(again).startswith("p.json: ") and str(again).endswith("; and 4995 more")


def test_a_small_unsafe_plan_counts_what_it_keeps():
    g, pd = _racy_reads(7)
    found = check(g, pd)
    assert len(found) == found.total == 7 and found.exact
    assert str(UnsafePlan(found, total=found.total)).endswith("; and 2 more")
    # a plain message, or a total below the kept findings, counts the kept ones
    assert UnsafePlan("boom").total == 1 and str(UnsafePlan("boom")) == "unsafe plan: boom"
    assert UnsafePlan(found, total=3).total == 7


def test_overlaps_past_the_cap_are_counted_exactly():
    """300 outputs all at offset 0, each live to the end: each meets the one painted before it (rule 3), 299 in all."""
    n = 300
    b = GraphBuilder("pile", alignment=1)
    b.input("i", 8)
    for j in range(n):
        b.node(f"w{j}", "OP", ["i"], b.output(f"o{j}", 8))
    g = b.build()
    pd = {"format": "memplan.plan/1", "graph": "pile", "alignment": 1, "arena_bytes": 16, "lower_bound_bytes": 0,
          "streams": 1, "order": [{"node": f"w{j}", "stream": 0} for j in range(n)], "events": [],
          "tensors": [{"id": t.id, "offset": 0 if t.id != "i" else 8, "size": t.size} for t in g.tensors]}
    found = check(g, pd)
    r3 = sum(1 for r, _m in found if r == 3)
    assert r3 == V.MAX_REPORTED and found.exact and found.total == n - 1, (r3, found.total)


def test_reads_past_the_cap_in_a_view_chain_are_a_lower_bound_said_so():
    """Readers of a view whose chain has writers above: past the cap a read is counted once ("at least")."""
    b = GraphBuilder("vc", alignment=1)
    b.input("i", 8)
    b.node("p", "OP", ["i"], b.intermediate("v0", 8))
    b.node("q", "SET", ["v0"], b.view("v1", "v0", 8, 0))
    n = 300
    for j in range(n):
        b.node(f"r{j}", "OP", ["v1"], b.output(f"o{j}", 8))
    g = b.build()
    order = ([{"node": "p", "stream": 0}, {"node": "q", "stream": 0}]
             + [{"node": f"r{j}", "stream": 1} for j in range(n)])
    offsets = {"i": 0, "v0": 8, "v1": 8, **{f"o{j}": 16 + 8 * j for j in range(n)}}
    pd = {"format": "memplan.plan/1", "graph": "vc", "alignment": 1, "arena_bytes": 16 + 8 * n,
          "lower_bound_bytes": 0, "streams": 2, "order": order, "events": [],
          "tensors": [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]}
    found = check(g, pd)
    assert not found.exact and V.MAX_REPORTED < found.total <= 2 * n
    assert " and at least " in str(UnsafePlan(found, total=found.total, total_exact=found.exact))


def test_cli_verify_line_says_the_true_count():
    g, pd = _racy_reads(3000)
    d = tempfile.mkdtemp()
    gp, pp = os.path.join(d, "g.json"), os.path.join(d, "p.json")
    with open(gp, "w") as f:
        json.dump(g.to_dict(), f)
    with open(pp, "w") as f:
        json.dump(pd, f)
    rc, out, err = run_captured("verify", gp, pp)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.strip().endswith("; and 2995 more"), err[-200:]
