"""Round 42: the verifier on plans of another graph, and its hazards against tests/oracle.py."""

from __future__ import annotations

import dataclasses

import pytest

import memplan
from memplan import examples
from memplan.verify import check


def test_a_plan_of_another_graph_is_said_to_belong_to_it_first():
    """``verify(diamond, plan of chain4)`` said "order names unknown node 'op0'" and "order is missing node 'a' and 3
    more", as if a node had been dropped from a plan of the diamond. The first finding now says the plan does not
    belong to the graph, naming the graph it was made for and the first id that differs; every other finding is kept."""
    diamond, chain = examples.diamond(), examples.chain(4)
    found = check(diamond, memplan.plan(chain))
    assert found[0] == (1, "the plan does not belong to graph 'diamond' (it was made for graph 'chain4'): its order "
                           "names node 'op0', which the graph does not have")
    assert (1, "order names unknown node 'op0'") in found
    assert (1, "order is missing 4 nodes: 'a', 'l', 'r', 'j'") in found


def test_a_foreign_plan_of_a_part_of_the_graph_is_named_by_its_first_missing_node():
    g = examples.diamond()
    p = memplan.plan(g, streams=2)
    subset = dataclasses.replace(p, graph="other", order=p.order[:-1])
    assert check(g, subset)[0] == (1, "the plan does not belong to graph 'diamond' (it was made for graph 'other'): "
                                      "its order has no node 'j' of the graph")


def test_a_plan_of_this_graph_renamed_or_edited_gets_no_note():
    """The note is for plans of another graph: a renamed graph with the same ids verifies as before, and a plan of
    this graph with a node dropped, or an extra node, event or tensor, has that finding alone."""
    g = examples.diamond()
    p = memplan.plan(g, streams=2)
    a, _b = p.events[0]
    assert check(g, dataclasses.replace(p, graph="renamed")) == []
    assert check(g, dataclasses.replace(p, order=p.order[:-1])) == [(1, "order is missing node 'j'")]
    assert check(g, dataclasses.replace(p, order=(*p.order, ("zz", 0)))) == [(1, "order names unknown node 'zz'")]
    assert check(g, dataclasses.replace(p, events=((a, "zz"), *p.events))) == [(1, f"event {a!r}->'zz' names an unknown node")]
    assert check(g, dataclasses.replace(p, tensors=(*p.tensors, ("zz", 0, 0)))) == [(4, "plan places unknown tensor 'zz'")]


@pytest.mark.parametrize("fields, words", [
    ({"node_devices": (0, 5, 0, 0)}, r"field 'node_devices' puts node 'l' on device 5, outside 0..0 \(the plan spans 1 device\)"),
    ({"tensor_devices": (0, 1, 0, 0, 0)}, "field 'tensor_devices' puts tensor 'ta' on device 1, outside 0..0"),
    ({"device_arena_bytes": (5,)}, r"field 'device_arena_bytes' is \(5,\) in a plan of 1 device"),
])
def test_a_one_device_plan_from_code_with_other_devices_is_refused(fields, words):
    """A one-device Plan built in code whose device fields name another device (or another arena) verified "safe":
    ``verify`` reads them only in a plan of several devices, while ``runtime.binding.bind`` refused the plan,
    ``simulate`` counted a COPY between its "devices" as a transfer, and ``save`` dropped them (a file with them is
    refused). ``check_plan_fields`` now refuses them as a file's reader does; zeros and ``(arena_bytes,)`` pass."""
    g = examples.diamond()
    p = memplan.plan(g, streams=2)
    with pytest.raises(memplan.PlanFormatError, match=words):
        memplan.verify(g, dataclasses.replace(p, **fields))
    with pytest.raises(memplan.PlanFormatError, match=words):   # (save wrote the plan without them)
        dataclasses.replace(p, **fields).to_json()
    memplan.verify(g, dataclasses.replace(p, node_devices=(0,) * 4, tensor_devices=(0,) * 5,
                                          device_arena_bytes=(p.arena_bytes,)))


def test_verify_and_the_oracle_agree_on_the_round_42_mutations():
    """tests/oracle_fuzz.py's mutations added this round, on library plans of random multi-stream graphs (one device
    and split): offsets moved by one alignment unit, events duplicated or moved to other nodes, the arena exactly the
    largest end, and every offset shifted to just below 2**63. The two judges agree, and the mutations that can break a
    plan do break some and leave others safe (a vacuous pair would agree on anything)."""
    import random

    from oracle import findings
    from oracle_fuzz import corrupt, multistream_graph

    verdicts: set[tuple[str, bool]] = set()
    for seed in range(16):
        rnd = random.Random(seed)
        g = memplan.graph_from_dict(multistream_graph(rnd, 8))
        try:
            planned = memplan.plan_graph(g, streams=3, devices=1 + seed % 2)
        except memplan.MemplanError:   # (a graph of one stage: too few to split)
            planned = memplan.plan_graph(g, streams=3)
        gd, pd = planned.graph.to_dict(), planned.plan.to_dict()
        for how in ("align_unit", "dup_event", "move_event", "arena_exact", "near_2_63"):
            q = corrupt(gd, pd, how, rnd)
            if q is None:
                continue
            safe = not findings(gd, q)
            assert (check(planned.graph, q) == []) == safe, (seed, how, findings(gd, q))
            verdicts.add((how, safe))
    assert {("align_unit", False), ("align_unit", True), ("move_event", False), ("move_event", True),
            ("dup_event", True), ("arena_exact", True), ("near_2_63", True)} <= verdicts
