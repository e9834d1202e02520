"""Round 52b (verify52b): the pairing check's finding count (``planfile.plan_mismatches``, ``PlanMismatch``).

* "plan has no entry for graph node 'v' and 999 more" (and "plan does not place graph tensor X and N more") was one
  finding in ``PlanMismatch.total``, so ``memplan verify``'s line added no "and N more"; the verifier's own count
  (``verify.Findings.total``, round 52) counts each missing node. Each item a message names now counts, and so does
  each finding past the limit (they were neither listed nor counted).
* A plan of this graph with one order entry dropped (an edited file) was told "(wrong graph?)": the plan names this
  graph and every id it lists is the graph's. The guess is now made only where the plan names another graph or an
  id the graph does not have.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import handgraphs as H
from cli_contract import assert_bad_input, run_captured
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan.errors import PlanMismatch
from memplan.planfile import check_plan_for, plan_mismatches
from memplan.verify import check

G = H.chain(40)
P = memplan.plan(G, H.serial(G))


def _mismatch(graph, plan) -> PlanMismatch:
    try:
        check_plan_for(graph, plan)
    except PlanMismatch as e:
        return e
    raise AssertionError("check_plan_for took the plan")


def test_every_missing_node_and_tensor_counts():
    nodes = dataclasses.replace(P, order=P.order[:10])   # 30 of 40 nodes dropped
    found = plan_mismatches(G, nodes)
    assert found == [(1, "plan has no entry for graph node 'op10' and 29 more")]
    assert found.total == 30 == check(G, nodes).total   # (the verifier's count of the same plan)
    err = _mismatch(G, nodes)
    assert err.total == 30 and str(err).endswith("; and 29 more"), str(err)
    tensors = dataclasses.replace(P, tensors=P.tensors[:5])
    found = plan_mismatches(G, tensors)
    assert found == [(4, f"plan does not place graph tensor 't4' and {len(P.tensors) - 6} more")]
    assert found.total == len(P.tensors) - 5
    one = dataclasses.replace(P, order=P.order[1:])
    assert plan_mismatches(G, one).total == 1 and _mismatch(G, one).total == 1
    assert str(_mismatch(G, one)).endswith("plan has no entry for graph node 'op0'")


def test_findings_past_the_limit_are_counted():
    """25 unknown nodes (limit 20) and the 5 of the graph's they replace: 30 rule-1 findings, 20 listed; three events
    naming unknown nodes: 3 findings, 1 message; 25 unknown tensors: 25 rule-4 findings, 20 listed."""
    order = P.order[:35] + tuple((f"u{i}", 0) for i in range(25))
    found = plan_mismatches(G, dataclasses.replace(P, order=order))
    assert len(found) == 20 and found.total == 30
    events = (("op0", "x1"), ("x2", "op3"), ("op0", "x1"), ("x3", "x4"))
    found = plan_mismatches(G, dataclasses.replace(P, events=events))
    assert found == [(1, "event 'op0'->'x1' names a node the graph does not have (wrong graph?)")]
    assert found.total == 3   # (each distinct one, as the verifier counts them)
    extra = P.tensors + tuple((f"w{i}", 0, 1) for i in range(25))
    found = plan_mismatches(G, dataclasses.replace(P, tensors=extra))
    assert len(found) == 20 and found.total == 25
    both = dataclasses.replace(P, order=order, tensors=extra)
    found = plan_mismatches(G, both)
    assert [r for r, _ in found] == [1] * 20 + [4] * 20 and found.total == 55
    assert _mismatch(G, both).total == 55


def test_an_unknown_node_beside_a_missing_one_lists_both():
    """A plan with a node renamed (one unknown, one missing, the same count as the graph's nodes) listed the unknown
    one alone: the missing node was found by counting the ids read, the unknown one among them."""
    order = (("ghost", 0),) + P.order[1:]
    found = plan_mismatches(G, dataclasses.replace(P, order=order))
    assert [m for _, m in found] == ["plan names node 'ghost', which graph 'chain40' does not have (wrong graph?)",
                                     "plan has no entry for graph node 'op0' (wrong graph?)"]
    assert found.total == 2


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(0, 39), min_size=1, max_size=40), st.sets(st.integers(0, 40), max_size=41))
def test_the_pairing_count_is_the_verifiers(drop_nodes, drop_tensors):
    """Dropping any order entries and tensor entries: the pairing check counts as many findings as there are
    entries dropped, and for the order the verifier counts the same (it stops at an incomplete order)."""
    drop_tensors = {k for k in drop_tensors if k < len(P.tensors)}
    plan = dataclasses.replace(P, order=tuple(e for k, e in enumerate(P.order) if k not in drop_nodes),
                               tensors=tuple(e for k, e in enumerate(P.tensors) if k not in drop_tensors))
    found = plan_mismatches(G, plan)
    assert found.total == len(drop_nodes) + len(drop_tensors)
    assert check(G, plan).total == len(drop_nodes)
    assert not any("wrong graph" in m for _, m in found)


def test_memplan_verify_of_a_plan_with_a_node_dropped(tmp_path):
    """One line, exit 2, naming the node, on both paths (``memplan verify``'s pairing check and the verifier's own
    "order is missing node"); "(wrong graph?)" only for a plan that names another graph."""
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    gp.write_text(json.dumps(G.to_dict()))
    doc = P.to_dict()
    dropped = copy.deepcopy(doc)
    del dropped["order"][3]
    pp.write_text(json.dumps(dropped))
    code, out, err = run_captured("verify", gp, pp)
    assert out == ""
    assert_bad_input(code, err, "p.json", "rule 1", "plan has no entry for graph node 'op3'")
    assert "wrong graph" not in err and "more" not in err
    assert check(G, dropped) == [(1, "order is missing node 'op3'")]
    dropped["graph"] = "other"
    pp.write_text(json.dumps(dropped))
    code, out, err = run_captured("verify", gp, pp)
    assert_bad_input(code, err, "plan was made for graph 'other'", "no entry for graph node 'op3' (wrong graph?)")
