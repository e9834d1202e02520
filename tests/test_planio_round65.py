"""Round 65 (planio): a plan file is validated once on its way through ``memplan verify``, and a count is said once.

* ``memplan verify graph.json plan.json`` validated every entry four times: the JSON hook, ``plan_from_dict``
  (a check pass, then a read pass converting each integer again), ``check_plan_fields`` in the pairing check and
  again in the verifier. ``plan_from_dict`` now reads each list column by column once (``_read_entries``) and marks
  the plan checked; ``check_plan_fields`` skips a plan whose fields are the objects that passed.
* An empty ``order`` read "plan has no entry for graph node 'norm' and 5 more; and 5 more": ``UnsafePlan`` counted
  the five in the finding's own "and 5 more" once more.

Structural tests (call counts), not timings.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest
from cli_contract import assert_bad_input, run_captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import errors, examples
from memplan import planfile as P
from memplan.errors import PlanFormatError, UnsafePlan
from memplan.io import load_safe_pair


def _chain_files(tmp_path, n: int):
    """A chain graph of ``n`` nodes and its serial plan, as files."""
    b = memplan.GraphBuilder("chain", alignment=256)
    b.input("x", 256)
    for i in range(n):
        (b.output if i == n - 1 else b.intermediate)(f"t{i}", 256)
        b.node(f"n{i}", "ADD", ["x" if i == 0 else f"t{i - 1}"], f"t{i}")
    g = b.build()
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, str(gp))
    memplan.plan(g, solver="greedy").save(str(pp))
    return g, str(gp), str(pp)


class _Counter:
    def __init__(self, monkeypatch, module, name):
        self.calls = 0
        real = getattr(module, name)

        def counted(*a, **k):
            self.calls += 1
            return real(*a, **k)
        monkeypatch.setattr(module, name, counted)


@pytest.mark.parametrize("n", [50, 2000])
def test_verify_reads_each_entry_once(tmp_path, monkeypatch, n):
    """On ``memplan verify``'s path (``load_safe_pair``: load both, pairing check, verifier) the plan's entries are
    judged column by column once per list, never entry by entry, and ``as_int`` (each integer's check, which the
    old reader called two or three times per entry) a fixed number of times whatever the plan's size."""
    _g, gp, pp = _chain_files(tmp_path, n)
    as_int = _Counter(monkeypatch, P, "as_int")
    columns = _Counter(monkeypatch, P, "_columns_ok")
    named = _Counter(monkeypatch, P, "_entries_named")
    rows = _Counter(monkeypatch, P, "_entries_ok")   # check_plan_fields' own test of a plan's entries
    load_safe_pair(gp, pp)
    assert columns.calls == 3, columns.calls      # order, events, tensors: once each, in plan_from_dict
    assert named.calls == 0 and rows.calls == 0, (named.calls, rows.calls)
    assert as_int.calls < 40, as_int.calls


def test_a_checked_plan_is_not_checked_again_but_a_changed_one_is():
    g = examples.diamond()
    p = P.plan_from_dict(memplan.plan(g, streams=2).to_dict())
    assert P._fields_checked(p)
    P.check_plan_fields(p)
    # a field set anew after it passed (object.__setattr__ past the frozen dataclass): checked again, and refused
    object.__setattr__(p, "tensors", p.tensors[:-1] + ((p.tensors[-1][0], 1.5, p.tensors[-1][2]),))
    assert not P._fields_checked(p)
    with pytest.raises(PlanFormatError, match="'offset' is not an integer"):
        P.check_plan_fields(p)
    with pytest.raises(PlanFormatError, match=r"'offset' is not an integer in ±2\*\*63 \(float 1\.5\)"):
        memplan.verify(g, p)
    # a Plan built in code: checked (and refused) every time it is asked, never marked
    bad = dataclasses.replace(memplan.plan(g), streams="2")
    for _ in range(2):
        with pytest.raises(PlanFormatError, match="'streams'"):
            P.check_plan_fields(bad)
    # the mark is no field: a plan copied or pickled is equal and its __dict__ holds the fields alone
    q = pickle.loads(pickle.dumps(p := P.plan_from_dict(memplan.plan(g).to_dict())))
    assert q == p and set(p.__dict__) == {f.name for f in dataclasses.fields(P.Plan)}


#: values a hand-edited or hostile plan file may hold in an entry's field
_ODD = [True, False, None, 1.0, -1, 0, 2 ** 63, 2 ** 63 - 1, -2 ** 63, -2 ** 63 - 1, "1", "", [], {}, "é"]


@settings(max_examples=150, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.data())
def test_what_plan_from_dict_reads_passes_check_plan_fields(data):
    """Sound to skip: every plan ``plan_from_dict`` returns passes ``check_plan_fields`` when made to check it (its
    mark dropped), and a document it refuses is refused with a message naming the list and the entry's index."""
    g = examples.qkv_attention()
    doc = memplan.plan(g, streams=2).to_dict()
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(st.sampled_from(["order", "events", "tensors"]))
        if not doc[key]:
            continue
        i = data.draw(st.integers(0, len(doc[key]) - 1))
        what = data.draw(st.sampled_from(["value", "drop_key", "not_object", "extra_key"]))
        e = doc[key][i]
        if what in ("value", "drop_key") and (not isinstance(e, dict) or not e):
            continue
        if what == "value":
            e[data.draw(st.sampled_from(sorted(e)))] = copy.deepcopy(data.draw(st.sampled_from(_ODD)))
        elif what == "drop_key":
            del e[data.draw(st.sampled_from(sorted(e)))]
        elif what == "not_object":
            doc[key][i] = data.draw(st.sampled_from([[], "x", 1, None]))
        elif isinstance(e, dict):
            e["note"] = 1
    try:
        p = P.plan_from_dict(doc)
    except PlanFormatError as exc:
        assert any(f"{k}[" in str(exc) for k in ("order", "events", "tensors")), str(exc)
        return
    P._CHECKED.pop(id(p))
    P.check_plan_fields(p)
    assert P._fields_checked(p)


def _empty_order(tmp_path):
    g = examples.qkv_attention()
    doc = memplan.plan(g).to_dict()
    doc["order"], doc["events"] = [], []
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, str(gp))
    pp.write_text(json.dumps(doc))
    return g, doc, str(gp), str(pp)


def test_an_empty_order_says_its_count_once(tmp_path):
    """"plan has no entry for graph node 'x' and 5 more; and 5 more": the five were counted twice."""
    g, doc, gp, pp = _empty_order(tmp_path)
    code, _out, err = run_captured("verify", gp, pp)
    first = g.nodes[0].id
    assert_bad_input(code, err, f"rule 1: plan has no entry for 6 graph nodes: '{first}', ", "and 1 more")
    assert err.count("more") == 1, err
    # the verifier's own finding (a plan naming no graph skips the pairing check)
    doc["graph"] = ""
    with pytest.raises(UnsafePlan) as info:
        memplan.verify(g, doc)
    text = str(info.value)
    assert text.endswith("rule 1: order is missing 6 nodes: 'norm', 'mm_q', 'mm_k', 'mm_v', 'attn' and 1 more"), text
    assert first == "norm" and info.value.total == 6
    for again in (pickle.loads(pickle.dumps(info.value)), info.value.at("p.json")):
        assert str(again).endswith(text.split(": ", 1)[1]) and again.total == 6


def test_a_count_past_the_shown_findings_is_still_said():
    """Findings that name themselves alone keep "and N more" for those not shown; a finding that counts itself
    ("... and 3 more": 4) and another one not shown leave "and 1 more"."""
    five = [(1, f"f{i}") for i in range(7)]
    assert str(UnsafePlan(five, total=7)).endswith("; and 2 more")
    err = UnsafePlan([(1, "x and 3 more"), (4, "y")], total=6, named={0: 4})
    assert str(err).endswith("rule 1: x and 3 more; rule 4: y; and 1 more"), str(err)
    # a total below what the findings count themselves is no total
    assert UnsafePlan([(1, "x and 3 more")], total=1, named={0: 4}).total == 4
    assert errors.UnsafePlan([(1, "x")], named={5: 9, 0: "a"}).named == {}
