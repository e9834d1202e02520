"""Plans and the library's frozen values, round 30 leftovers: hashing consistent with equality, and a Plan built in
code refused by ``to_dict`` (naming the field) wherever ``load_plan`` would refuse the document it wrote."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import memplan
from memplan import examples as E
from memplan.errors import PlanFormatError
from memplan.graph import Graph, Node, Tensor
from memplan.planfile import _HASHED, Plan, plan_from_dict
from memplan.schedule import Event, Schedule


@pytest.fixture(scope="module")
def plan():
    return memplan.plan(E.diamond())


@pytest.fixture(scope="module")
def split_plan():
    return memplan.plan_devices(E.llama(E.LLAMA_TINY), 2)[1]


# ---- hashing ------------------------------------------------------------------------------------------------

def test_a_plan_hashes_consistently_with_equality(plan):
    """hash(plan) was "unhashable type: 'dict'" (the solver block). Equal plans hash equal, built any way: read back
    from its own JSON, rebuilt from lists, with another object for the solver block or other extra fields."""
    back = plan_from_dict(json.loads(plan.to_json(timings=True)))
    assert back == plan and hash(back) == hash(plan)
    rebuilt = Plan(plan.graph, np.int64(plan.alignment), plan.arena_bytes, plan.lower_bound_bytes, plan.streams,
                   [list(e) for e in plan.order], [list(e) for e in plan.events], [list(e) for e in plan.tensors],
                   solver=dict(reversed(list(plan.solver.items()))), extra={"note": "x"})
    assert rebuilt == plan and hash(rebuilt) == hash(plan)
    assert {plan: 1}[rebuilt] == 1 and len({plan, back, rebuilt}) == 1
    moved = dataclasses.replace(plan, arena_bytes=plan.arena_bytes + 256)
    assert moved != plan and len({plan, moved}) == 2


def test_plans_differing_only_in_the_solver_block_stay_unequal(plan):
    """Left out of the hash (a dict), the block is still compared: a shared hash, two set members."""
    other = dataclasses.replace(plan, solver={**plan.solver, "name": "other"})
    assert other != plan and hash(other) == hash(plan) and len({plan, other}) == 2


def test_the_hash_covers_every_compared_field_but_the_solver_block():
    """A field added to Plan and compared is hashed too (or equal plans could hash apart if it were left out...
    and unequal ones collide needlessly); this pins the list."""
    compared = [f.name for f in dataclasses.fields(Plan) if f.compare]
    assert sorted(_HASHED) == sorted(k for k in compared if k != "solver")


def test_a_multi_device_plan_hashes(split_plan):
    back = plan_from_dict(json.loads(split_plan.to_json(timings=True)))
    assert back == split_plan and hash(back) == hash(split_plan)


def test_an_unhashable_plan_field_hashes_by_value(plan):
    """A Plan built in code whose entry is a dict hashes by its plain value (round 58: it was a TypeError, which the
    brief for public dataclasses rules out); equal such plans hash equal."""
    bad = dataclasses.replace(plan, tensors=({"id": "x"},))
    again = dataclasses.replace(plan, tensors=({"id": "x"},))
    assert bad == again and hash(bad) == hash(again)


def test_graph_schedule_event_tensor_node_hash_consistently_with_equality():
    """Pinned as they are: equal values (built from lists) hash equal; a Tensor's or Node's attrs are not compared, a
    Graph's are (round 75: the cost model reads them, and equal graphs got different schedules) and not hashed."""
    g = E.diamond()
    doc = g.to_dict()
    for t in doc["tensors"]:
        t.setdefault("attrs", {})["note"] = [1, 2]
    g2 = memplan.graph_from_dict(doc)
    assert g2 != g and hash(g2) == hash(g) and g2.tensors == g.tensors
    rebuilt = Graph(g.name, tuple(Tensor(t.id, t.size, t.kind, t.view_of, t.view_offset) for t in g.tensors),
                    tuple(Node(n.id, n.op, list(n.inputs), list(n.outputs), n.cost, list(n.inplace), n.group)
                          for n in g.nodes), g.alignment)
    assert rebuilt == g and hash(rebuilt) == hash(g) and len({g, rebuilt}) == 1
    assert hash(Tensor("x", 4, attrs={"shape": [1]})) == hash(Tensor("x", 4))
    assert hash(Node("n", "ADD", ("a",), ("b",), attrs={"k": [1]})) == hash(Node("n", "ADD", ("a",), ("b",)))
    s = Schedule(("a", "b"), (0, 1), (Event("a", "b"),))
    t = Schedule(["a", "b"], np.array([0, 1]), [Event("a", "b")])
    assert s == t and hash(s) == hash(t) and hash(Event("a", "b")) == hash(Event("a", "b"))


# ---- to_dict writes only what load_plan reads back -------------------------------------------------------------

_BAD = [
    ("order", ("ab",), r"order\[0\] is not a \(node, stream\) tuple"),   # unpacked into node 'a' on stream 'b'
    ("order", (("n", "0"),), r"order\[0\] \('n'\): 'stream' is not an integer"),
    ("events", ("ab",), r"events\[0\] is not a \(after, before\) tuple"),   # written as the event a -> b
    ("tensors", ("abc",), r"tensors\[0\] is not a \(id, offset, size\) tuple"),
    ("tensors", (("x", 1.0, 4),), r"tensors\[0\] \('x'\): 'offset' is not an integer"),
    ("graph", None, "field 'graph' is not a string"),
    ("alignment", 0, "field 'alignment' is not an integer in 1.."),
    ("arena_bytes", -1, "field 'arena_bytes' is not an integer in 0.."),
    ("lower_bound_bytes", 1.5, "field 'lower_bound_bytes' is not an integer"),
    ("streams", 0, "field 'streams' is not an integer in 1..1024"),
    ("devices", 0, "field 'devices' is not an integer in 1..1024"),   # written as a one-device plan
    ("node_devices", "01", "field 'node_devices' is not a tuple"),
    ("tensor_devices", None, "field 'tensor_devices' is not a tuple"),
    ("device_arena_bytes", "1", "field 'device_arena_bytes' is not a tuple"),
]


@pytest.mark.parametrize("key, value, words", _BAD, ids=[f"{k}={v!r}" for k, v, _ in _BAD])
def test_to_dict_refuses_a_field_load_plan_would_refuse(plan, tmp_path, key, value, words):
    """Each was written (to_dict, to_json) into a document that load_plan refused or read as another plan."""
    bad = dataclasses.replace(plan, **{key: value})
    for write in (bad.to_dict, bad.to_json, lambda: bad.save(str(tmp_path / "p.json"))):
        with pytest.raises(PlanFormatError, match=words):
            write()
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("change, words", [
    (lambda p: {"device_arena_bytes": p.device_arena_bytes[:1]}, "'device_arena_bytes' lists 1 byte count for 2"),
    (lambda p: {"device_arena_bytes": p.device_arena_bytes + (0,)}, "'device_arena_bytes' lists 3 byte counts for 2"),
    (lambda p: {"devices": 3}, "'device_arena_bytes' lists 2 byte counts for 3 devices"),
    (lambda p: {"node_devices": p.node_devices + (0,)}, "'node_devices' lists .* devices for .* order entries"),
    (lambda p: {"tensor_devices": p.tensor_devices + (0,)}, "'tensor_devices' lists .* devices for .* tensors"),
])
def test_to_dict_refuses_device_lists_a_plan_file_cannot_hold(split_plan, change, words):
    """An arena count other than the devices' was written and refused by load_plan; devices past the entries were
    dropped unsaid. (A list shorter than its entries is still written with -1, which verify refuses.)"""
    with pytest.raises(PlanFormatError, match=words):
        dataclasses.replace(split_plan, **change(split_plan)).to_dict()


def test_every_plan_to_dict_writes_loads_back_equal(plan, split_plan):
    """The plans plan() makes, and numpy integers in a Plan built in code, still write and read back equal."""
    for p in (plan, split_plan, dataclasses.replace(plan, streams=np.int64(plan.streams),
                                                    tensors=tuple((t, o, np.int64(s)) for t, o, s in plan.tensors))):
        back = plan_from_dict(json.loads(p.to_json(timings=True)))
        assert back == p
