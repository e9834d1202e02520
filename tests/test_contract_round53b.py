"""Round 53b: graph fields that were silently ignored or normalised where CONTRACT.md gives them no meaning.

Each case is refused with a ``GraphError`` naming the tensor or node and the field; the cases the contract does give a
meaning (a ``view_offset`` of 0 or null beside no ``view_of``: no offset, tests/test_hostile_round18.py) still load.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan


def test_builder_view_with_no_parent_is_refused():
    # view("v", None, ...) built a root tensor of its own (view_of None, offset 0), without a word: the node writing
    # "v" then wrote a buffer apart from the tensor the caller meant it to alias (a KV-cache slot never updated)
    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    with pytest.raises(memplan.GraphError, match=r"view 'v': parent \(view_of\) is None"):
        b.view("v", None, 256, 0)


def test_builder_view_with_a_parent_still_builds():
    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    b.view("v", "x", 128, 128, kind="input")
    b.node("m", "OP", ["v"], b.output("y", 256))
    g = b.build()
    assert (g.tensor("v").view_of, g.tensor("v").view_offset) == ("x", 128)


def _branches(group):
    """Two independent branches x -> a -> y1 and x -> b -> y2, every node given ``group``."""
    doc = {"format": "memplan.graph/1", "name": "g", "tensors": [
        {"id": "x", "size": 256, "kind": "input"},
        {"id": "y1", "size": 256, "kind": "output"}, {"id": "y2", "size": 256, "kind": "output"}],
        "nodes": [{"id": "a", "op": "A", "inputs": ["x"], "outputs": ["y1"], "cost": 100.0},
                  {"id": "b", "op": "B", "inputs": ["x"], "outputs": ["y2"], "cost": 100.0}]}
    for n in doc["nodes"]:
        n["group"] = group
    return doc


def test_an_empty_group_is_a_group_as_the_contract_words_it():
    # CONTRACT.md: "group (optional string): nodes with the same group are fused" -- "" is a string like any other,
    # so nodes all given "" are one fusion group, consecutive on one stream (not refused, not read as no group)
    p = memplan.plan(memplan.graph_from_dict(_branches("")), streams=2)
    assert {s for _, s in p.order} == {0} and memplan.verify(memplan.graph_from_dict(_branches("")), p) is None


def test_no_group_spelt_null_still_runs_the_branches_apart():
    p = memplan.plan(memplan.graph_from_dict(_branches(None)), streams=2)
    assert {s for _, s in p.order} == {0, 1}


def _with_views(*views):
    doc = {"format": "memplan.graph/1", "name": "g", "tensors": [{"id": "x", "size": 256, "kind": "input"}],
           "nodes": [{"id": "n", "op": "OP", "inputs": ["x"], "outputs": ["y"]}]}
    doc["tensors"] += [{"id": v, "size": 8, "kind": "intermediate", "view_of": p} for v, p in views]
    doc["tensors"].append({"id": "y", "size": 256, "kind": "output"})
    return doc


def test_a_tensor_viewing_itself_names_the_field():
    # it said "view cycle through tensor 'me'", naming no field
    with pytest.raises(memplan.GraphError, match=r"tensor 'me': its view_of names itself"):
        memplan.graph_from_dict(_with_views(("me", "me")))


def test_a_view_cycle_names_its_tensors_in_view_of_order():
    with pytest.raises(memplan.GraphError, match=r"tensor 'c1': view_of 'c1' -> 'c2' -> 'c3' -> 'c1' "):
        memplan.graph_from_dict(_with_views(("c1", "c2"), ("c2", "c3"), ("c3", "c1")))
    # a view hanging off the cycle: the cycle alone is named, not the way in
    with pytest.raises(memplan.GraphError, match=r"tensor 'c2': view_of 'c2' -> 'c3' -> 'c2' "):
        memplan.graph_from_dict(_with_views(("v", "c2"), ("c2", "c3"), ("c3", "c2")))
    # a long loop: its first 8 ids, then "..."
    with pytest.raises(memplan.GraphError, match=r"view_of 't0' -> 't1' .* -> 't7' -> \.\.\. \("):
        memplan.graph_from_dict(_with_views(*((f"t{i}", f"t{(i + 1) % 9}") for i in range(9))))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_a_view_cycle_message_is_a_real_loop_of_view_of_edges(parents):
    """Tensor t{i} views t{parents[i]}: every such graph has a cycle (each tensor is a view), and the loop the message
    names follows view_of edges of the graph and closes on the tensor it starts from."""
    n = len(parents)
    views = [(f"t{i}", f"t{p % n}") for i, p in enumerate(parents)]
    with pytest.raises(memplan.GraphError) as exc:
        memplan.graph_from_dict(_with_views(*views))
    msg = str(exc.value)
    edge = dict(views)
    if "names itself" in msg:
        tid = re.search(r"tensor '(t\d+)'", msg).group(1)
        assert edge[tid] == tid, msg
        return
    loop = re.findall(r"'(t\d+)'", msg.split("view_of ", 1)[1].split(" (", 1)[0])
    assert len(loop) >= 3 and (loop[0] == loop[-1] or (len(loop) == 8 and msg.count("-> ...") == 1)), msg
    assert all(edge[a] == b for a, b in zip(loop, loop[1:])), msg
