"""Session 45: ``memplan.verify`` against a brute-force oracle written from CONTRACT.md's safety rules line by line
(tests/verify45_oracle.py), compared rule by rule and finding by finding, not only by verdict.

The other oracle fuzzers (tests/oracle.py, verify_fuzz30/38, verify41_oracle) compare verdicts: a plan that
breaks rules 2 and 3 and is reported for rule 3 alone, or whose race is pinned on the wrong writer, passes them.
Here every rule the oracle finds must be reported (rule 1 and 4 always; rule 2 with the exact reader, tensor and
writer once the order is sound; rule 3 once the offsets are sound, each reported pair one the oracle finds) on
random graphs and plans (tests/verify45_gen.py): orders topological or not, events needed, missing, redundant,
duplicated, onto one stream, onto the node itself, backwards, in cross-stream cycles, naming unknown nodes;
roots packed tightly by the oracle's own happens-before, or at random slots, a byte off, at or past the arena's
end, negative; weights given offsets.
"""

from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify45_gen import graph_doc, parsed, plan_doc
from verify45_oracle import findings

import memplan
from memplan import examples
from memplan.cli import main
from memplan.verify import check

SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))


def _compare(gd: dict, pd: dict) -> None:
    g = memplan.graph_from_dict(gd)
    got = parsed(check(g, pd))
    seen: dict = {}
    want = findings(gd, pd, internals=seen)
    if not any(f[0] == 1 for f in want):   # (with rule 1 broken, happens-before is the verifier's own)
        _witnesses_hold(gd, {f for f in got if str(f[0]).startswith("3why")}, seen)
    got = {f for f in got if not str(f[0]).startswith("3why")}
    rules_got, rules_want = {f[0] for f in got}, {f[0] for f in want}
    why = (sorted(got, key=str), sorted(want, key=str), pd)
    assert bool(got) == bool(want), why
    assert (1 in rules_got) == (1 in rules_want), why
    if any(f[:2] == (1, "order") for f in want):
        return   # an order that is not a permutation: the verifier stops at rule 1
    assert {f for f in got if f[:2] == (1, "topo")} == {f for f in want if f[:2] == (1, "topo")}, why
    assert (4 in rules_got) == (4 in rules_want), why
    if 1 in rules_want:
        return   # events that point backwards (or cycle): happens-before is the verifier's, not the contract's
    assert {f for f in got if f[0] == 2} == {f for f in want if f[0] == 2}, why
    if 4 in rules_want:
        return   # offsets unsound: the verifier does not look at overlaps
    pairs_got = {(3, *sorted(f[1:], key=lambda t: int(t[1:]))) for f in got if f[0] == 3}
    pairs_want = {f for f in want if f[0] == 3}
    assert bool(pairs_got) == bool(pairs_want) and pairs_got <= pairs_want, why


def _witnesses_hold(gd: dict, whys: set, seen: dict) -> None:
    """Each rule-3 finding's named accesses are what it says (tests/verify45_gen.parsed): an access of the first root
    that does not happen-before an access of the second, or the same node accessing both outside the in-place
    exception, or an output kept to the end / an input written before the run."""
    kinds = {t["id"]: t["kind"] for t in gd["tensors"]}
    tensors = {t["id"]: t for t in gd["tensors"]}
    for why in whys:
        assert why[0] == "3why", why
        if len(why) == 3:   # an output kept to the end, or an input written from the start
            _, root, kind = why
            if kind == "input":
                assert kinds[root] == "input" and tensors[root].get("view_of") is None, why
            else:
                assert any(t["kind"] == "output" and _root(tensors, t["id"]) == root for t in gd["tensors"]), why
            continue
        _, a, x, b, y = why
        hb, acc, exempt = seen["hb"], seen["acc"], seen["exempt"]
        assert x in acc[a] and y in acc[b], why
        assert not hb(x, y), why
        if x == y:
            assert (x, a, b) not in exempt, why


def _root(tensors: dict, tid: str) -> str:
    while tensors[tid].get("view_of") is not None:
        tid = tensors[tid]["view_of"]
    return tid


@SETTINGS
@given(st.integers(0, 2**64))
def test_verify_reports_what_the_oracle_finds_rule_by_rule(seed):
    rnd = random.Random(seed)
    gd = graph_doc(rnd)
    _compare(gd, plan_doc(gd, rnd))


def test_the_generator_makes_safe_and_unsafe_plans_of_every_rule():
    """The property above means something: its plans are safe often, and break each rule alone now and then."""
    seen = set()
    safe = 0
    for seed in range(400):
        rnd = random.Random(seed)
        gd = graph_doc(rnd)
        rules = frozenset(f[0] for f in findings(gd, plan_doc(gd, rnd)))
        safe += not rules
        seen.add(rules)
    assert safe > 50
    assert {frozenset({r}) for r in (1, 2, 3, 4)} <= seen


def _diamond() -> dict:
    return {"format": "memplan.graph/1", "name": "d", "alignment": 1,
            "tensors": [{"id": "x", "size": 4, "kind": "input"}, {"id": "a", "size": 4, "kind": "intermediate"},
                        {"id": "b", "size": 4, "kind": "intermediate"}, {"id": "y", "size": 4, "kind": "output"}],
            "nodes": [{"id": "p", "op": "A", "inputs": ["x"], "outputs": ["a"]},
                      {"id": "q", "op": "A", "inputs": ["x"], "outputs": ["b"]},
                      {"id": "r", "op": "A", "inputs": ["a", "b"], "outputs": ["y"]}]}


def _plan(order, events, offsets, arena=16) -> dict:
    return {"format": "memplan.plan/1", "graph": "d", "alignment": 1, "arena_bytes": arena, "lower_bound_bytes": 0,
            "streams": 2, "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events],
            "tensors": [{"id": t, "offset": o, "size": 4} for t, o in offsets.items()], "solver": {}}


def test_the_oracle_knows_each_rule():
    """The oracle itself, on a diamond p, q -> r with q on stream 1: each finding it must make, and none more."""
    gd = _diamond()
    apart = {"x": 0, "a": 4, "b": 8, "y": 12}
    order = [("p", 0), ("q", 1), ("r", 0)]
    assert findings(gd, _plan(order, [("q", "r")], apart)) == set()
    assert findings(gd, _plan(order, [], apart)) == {(2, "r", "b", "q")}
    assert findings(gd, _plan(order, [("q", "r"), ("r", "q")], apart)) == {(1, "event", "r", "q")}
    assert findings(gd, _plan(order, [("q", "r"), ("q", "q")], apart)) == {(1, "event", "q", "q")}
    assert findings(gd, _plan(order, [("q", "r"), ("q", "zz")], apart)) == {(1, "event", "q", "zz")}
    # a over x: x is read by q on the other stream, which p's write does not wait for
    assert findings(gd, _plan(order, [("q", "r")], {**apart, "a": 0})) == {(3, "x", "a")}
    # one byte of overlap between b and y; y ends one byte past the arena
    assert findings(gd, _plan(order, [("q", "r")], {**apart, "y": 11}, arena=15)) == {(3, "b", "y")}
    assert findings(gd, _plan(order, [("q", "r")], apart, arena=15)) == {(4, "arena", "y")}
    assert findings(gd, _plan([("r", 0), ("p", 0), ("q", 1)], [("q", "r")], apart)) >= {
        (1, "topo", "r", "p"), (1, "topo", "r", "q"), (1, "event", "q", "r")}


# ---- a rule-3 finding names the accesses it leaves unordered ---------------------------------------------------

def _rule3(gd: dict, pd: dict) -> list[str]:
    return [m for r, m in check(memplan.graph_from_dict(gd), pd) if r == 3]


def test_a_rule_3_finding_names_the_access_that_does_not_happen_before_the_other():
    gd = _diamond()
    # a (written by p on stream 0) over x, which q reads on stream 1 with nothing ordering q before p
    [msg] = _rule3(gd, _plan([("p", 0), ("q", 1), ("r", 0)], [("q", "r")], {"x": 0, "a": 0, "b": 8, "y": 12}))
    assert msg.endswith(": node 'q', which accesses 'x', does not happen-before node 'p', which accesses 'a'"), msg


def test_a_rule_3_finding_names_a_node_accessing_both_an_output_and_two_inputs():
    gd = {"format": "memplan.graph/1", "name": "d", "alignment": 1,
          "tensors": [{"id": "x", "size": 4, "kind": "input"}, {"id": "w", "size": 4, "kind": "input"},
                      {"id": "o", "size": 4, "kind": "output"}, {"id": "t", "size": 4, "kind": "intermediate"},
                      {"id": "y", "size": 4, "kind": "output"}],
          "nodes": [{"id": "p", "op": "A", "inputs": ["x", "w"], "outputs": ["o"]},
                    {"id": "q", "op": "A", "inputs": ["o"], "outputs": ["t"]},
                    {"id": "r", "op": "A", "inputs": ["t"], "outputs": ["y"]}]}
    order = [("p", 0), ("q", 0), ("r", 0)]
    apart = {"x": 0, "w": 4, "o": 8, "t": 12, "y": 16}
    assert _rule3(gd, {**_plan(order, [], apart, 20), "graph": "d"}) == []
    # p reads x and writes o over it, with no in-place pair that allows it
    [msg] = _rule3(gd, _plan(order, [], {**apart, "o": 0}, 20))
    assert msg.endswith(": node 'p' accesses both (not as an in-place overwrite of 'x' by 'o' that the contract "
                        "allows)"), msg
    # the output o lives to the end: t, made after it, may not take its bytes
    [msg] = _rule3(gd, _plan(order, [], {**apart, "t": 8}, 20))
    assert msg.endswith(": 'o' holds an output, kept to the end of the run, and 't' is accessed during the run"), msg
    [msg] = _rule3(gd, _plan(order, [], {**apart, "w": 0}, 20))
    assert msg.endswith(": both are inputs, written before the run"), msg


def test_the_fan_out_example_of_the_docs_names_the_missing_event_on_the_cli(tmp_path, capsys):
    """docs/format.md's 1 -> 3 fan-out with the serial offsets on three streams: the finding names b3 and j15."""
    g = examples.fanout_join15()
    doc = memplan.plan(g, streams=1).to_dict()
    doc["streams"] = 3
    for e in doc["order"]:
        e["stream"] = {"b2": 1, "b3": 2}.get(e["node"], 0)
    doc["events"] = [{"after": a, "before": b} for a, b in (("src", "b2"), ("src", "b3"), ("b2", "j15"), ("b3", "j"))]
    memplan.save_graph(g, str(tmp_path / "g.json"))
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert main(["verify", str(tmp_path / "g.json"), str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith(
        "rule 3: tensors 's' and 't15' overlap in the arena but not every access of one happens-before every access "
        "of the other: node 'b3', which accesses 's', does not happen-before node 'j15', which accesses 't15'"), err
