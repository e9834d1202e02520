"""Hostile input, round 26: the library's Python surface (values built in code, copies, pickles, worker processes).

Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import json
import multiprocessing
import pickle

import numpy as np
import pytest

import memplan
from memplan import Graph, Node, Tensor, examples
from memplan.errors import PlanMismatch, UnsafePlan, add_note

# ---- nodes and tensors built in code: lists and None where the JSON path gives tuples and mappings ------------


def _chain(inputs, outputs, attrs=None) -> Graph:
    return Graph("g", (Tensor("x", 256, "input", attrs=attrs), Tensor("w", 256, "weight", attrs=attrs),
                       Tensor("y", 256, "output", attrs=attrs)),
                 (Node("mm", "MUL_MAT", inputs, outputs, attrs=attrs),))


def test_a_node_list_given_in_code_is_not_the_graphs():
    """``Node("n", "OP", ins, outs)`` with lists: the Graph kept the caller's lists, so appending to one after the
    graph was built changed the "validated, immutable" graph under its indices (``node.inputs`` named a tensor
    ``node_inputs`` did not, ``save_graph`` wrote a graph that did not load) and ``hash(graph)`` was a TypeError.
    The graph now holds tuples of its own."""
    ins, outs = ["x", "w"], ["y"]
    g = _chain(ins, outs)
    ins.append("nosuch")
    outs.append("nosuch")
    assert g.nodes[0].inputs == ("x", "w") and g.nodes[0].outputs == ("y",)
    assert type(g.nodes[0].inputs) is tuple and type(g.nodes[0].outputs) is tuple
    hash(g)
    again = memplan.graph_from_dict(json.loads(json.dumps(g.to_dict())))
    assert again == g
    inplace = [("y", "x")]
    g = Graph("g", (Tensor("x", 256, "input"), Tensor("y", 256, "output")),
              (Node("n", "OP", ("x",), ("y",), inplace=inplace),))
    inplace.append(("y", "nosuch"))
    assert g.nodes[0].inplace == (("y", "x"),)


def test_what_is_no_tuple_or_list_is_still_refused():
    """The control: only lists (and tuple subclasses) become tuples; a string or a set is still named."""
    with pytest.raises(memplan.GraphError, match="not the string"):
        _chain("x", ("y",))
    with pytest.raises(memplan.GraphError, match="must be a tuple"):
        _chain({"x"}, ("y",))


@pytest.mark.parametrize("options", [{}, {"streams": "auto"}, {"devices": 2}])
def test_attrs_none_given_in_code_is_no_attrs(options):
    """``Tensor(..., attrs=None)`` / ``Node(..., attrs=None)`` passed the graph check, then ``plan()`` of a
    ``MUL_MAT`` failed with an AttributeError (``'NoneType' object has no attribute 'get'``) where the cost
    model read the shape. None is now no attrs, as it is in a file."""
    tensors = [Tensor("x", 256, "input", attrs=None), Tensor("w", 256, "weight", attrs=None)]
    nodes = []
    last = "x"
    for i in range(3):
        tensors.append(Tensor(f"t{i}", 256, "output" if i == 2 else "intermediate", attrs=None))
        nodes.append(Node(f"n{i}", "MUL_MAT", (last, "w"), (f"t{i}",), attrs=None))
        last = f"t{i}"
    g = Graph("g", tuple(tensors), tuple(nodes))
    planned = memplan.plan_graph(g, **options)
    memplan.simulate(planned.graph, planned.plan)
    assert all(t.attrs == {} for t in g.tensors) and all(n.attrs == {} for n in g.nodes)


# ---- copies and pickles ---------------------------------------------------------------------------------------


def test_graphs_tensors_and_nodes_pickle_and_deep_copy():
    """Every tensor and node without attrs shares one empty read-only mapping, a ``MappingProxyType``, which
    neither ``pickle`` nor ``copy.deepcopy`` takes: no graph from ``load_graph``, the builder or a document could
    be sent to a worker process or deep-copied ("cannot pickle 'mappingproxy' object"). It is now a mapping of
    its own that pickles as itself."""
    g = examples.bundled()["qkv"]
    assert any(not t.attrs for t in g.tensors)
    for clone in (copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))):
        for part in (g, g.tensors[0], g.nodes[0]):
            assert clone(part) == part
        g2 = clone(g)
        assert g2.tensors[0].attrs is g.tensors[0].attrs or g2.tensors[0].attrs == g.tensors[0].attrs
        assert memplan.plan(g2, streams=2).to_json() == memplan.plan(g, streams=2).to_json()
    empty = g.tensors[[bool(t.attrs) for t in g.tensors].index(False)].attrs
    assert empty == {} and dict(empty) == {} and not empty and "shape" not in empty
    assert pickle.loads(pickle.dumps(empty)) is empty and copy.deepcopy(empty) is empty
    assert empty.copy() == {} and empty | {"a": 1} == {"a": 1} == {"a": 1} | empty   # as a mappingproxy answers


def _unsafe_findings() -> UnsafePlan:
    g = examples.bundled()["qkv"]
    doc = json.loads(memplan.plan(g, streams=2).to_json())
    doc["events"] = []
    with pytest.raises(UnsafePlan) as info:
        memplan.verify(g, doc)
    return info.value


def test_an_unsafe_plan_error_pickles_with_its_findings():
    """``UnsafePlan`` (and ``PlanMismatch``) pickled as their message and were rebuilt by calling the class with
    it, which read the message as findings: "not enough values to unpack". Each now pickles and copies as its
    findings, its place and its notes."""
    exc = _unsafe_findings().at("p.json")
    add_note(exc, "a note")   # (memplan's: BaseException.add_note is 3.11+)
    for clone in (copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))):
        again = clone(exc)
        assert type(again) is UnsafePlan and str(again) == str(exc)
        assert again.violations == exc.violations and again.where == "p.json" and again.__notes__ == ["a note"]
    mismatch = PlanMismatch([(1, "order names unknown node 'z'")], "p.json")
    again = pickle.loads(pickle.dumps(mismatch))
    assert type(again) is PlanMismatch and str(again) == str(mismatch)


def _verify_without_events(_: int) -> None:
    g = examples.bundled()["qkv"]
    doc = json.loads(memplan.plan(g, streams=2).to_json())
    doc["events"] = []
    memplan.verify(g, doc)


def test_a_plan_judged_unsafe_in_a_worker_process_reaches_the_caller():
    """The case that made it matter: ``verify`` raising ``UnsafePlan`` in a ``ProcessPoolExecutor`` broke the
    pool (``BrokenProcessPool``, the findings lost); in a ``multiprocessing.Pool`` the result thread died
    unpickling it and ``get()`` waited for ever."""
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        with pytest.raises(UnsafePlan, match="rule 2"):
            pool.submit(_verify_without_events, 0).result(timeout=60)


# ---- plans that share their free-form blocks with a caller's document ---------------------------------------


def test_a_plan_keeps_its_own_solver_block_and_extra_fields():
    """``plan_from_dict(doc)`` kept ``doc``'s solver block and extra fields themselves, and ``to_dict()`` handed
    out the plan's nested objects: editing either document afterwards (to write a variant) changed the plan and
    its JSON. Each now has its own copies."""
    g = examples.bundled()["moe"]
    made = memplan.plan(g, streams="auto")
    before = made.to_json()
    made.to_dict()["solver"]["schedule"]["method"] = "edited"
    assert made.to_json() == before
    doc = json.loads(before)
    doc["tool"] = {"runs": [1, 2]}
    loaded = memplan.plan_from_dict(doc)
    text = loaded.to_json()
    doc["solver"]["name"] = "edited"
    doc["tool"]["runs"].append(3)
    loaded.to_dict()["tool"]["runs"].append(4)
    assert loaded.to_json() == text and loaded.extra == {"tool": {"runs": [1, 2]}}
    solver, extra = {"name": "mine", "notes": ["a"]}, {"tool": {"runs": [1]}}
    built = memplan.Plan("g", 1, 0, 0, 1, (), (), (), solver=solver, extra=extra)   # a Plan made in code
    solver["notes"].append("b")
    extra["tool"]["runs"].append(2)
    assert built.solver == {"name": "mine", "notes": ["a"]} and built.extra == {"tool": {"runs": [1]}}


def test_a_shared_or_cyclic_extra_value_is_copied_as_it_is():
    """The copy keeps the shape of what it copies: a list twice inside stays one list, a cycle stays a cycle (and
    is refused when saved, as before), and nesting past the recursion limit is copied without recursing."""
    from memplan.planfile import own_json

    shared = [1]
    cyclic: list = []
    cyclic.append(cyclic)
    out = own_json({"a": shared, "b": shared, "c": cyclic})
    assert out["a"] is out["b"] and out["a"] is not shared and out["c"][0] is out["c"]
    deep: list = []
    cur = deep
    for _ in range(100_000):
        cur.append([])
        cur = cur[0]
    assert own_json(deep) is not deep


# ---- attrs from code that the cost model reads ----------------------------------------------------------------


@pytest.mark.parametrize("shape, known", [(np.array([8, 8]), True), (np.array(5), False), (np.array([]), False),
                                          ([8, 8], True), ((8, np.int64(8)), True), ("8x8", False), (None, False)])
def test_a_shape_attr_that_is_a_numpy_array_is_read_as_a_shape(shape, known):
    """``b.input("x", n, shape=np.array([8, 8]))`` beside a ``MUL_MAT``: ``plan()`` (any schedule) and
    ``simulate`` failed with numpy's "The truth value of an array with more than one element is ambiguous",
    where the cost model asked whether the shape was empty. It reads the array as the shape it is; what is no
    shape still costs the node by its bytes, as before."""
    b = memplan.GraphBuilder("g")
    b.input("x", 256, shape=shape)
    b.weight("w", 256, shape=shape)
    b.node("mm", "MUL_MAT", ["x", "w"], b.output("y", 256, shape=shape))
    b.node("mm2", "MUL_MAT", ["x", "w"], b.output("y2", 256, shape=shape))
    g = b.build()
    for options in ({}, {"streams": "auto"}):
        memplan.simulate(g, memplan.plan(g, **options))
    cost = memplan.CostModel(flop_per_us=1.0, floor_us=0.0, hbm_bytes_per_us=1e9).node_us(g, 0)
    assert cost == (2.0 * 64 * 8 if known else 768 / 1e9)   # 2*M*N*K flops, else the bytes it touches


# ---- plan files that flood the verifier with events -----------------------------------------------------------


def _one_node_per_stream(n: int) -> Graph:
    b = memplan.GraphBuilder("flood")
    b.input("x", 256)
    for i in range(n):
        b.node(f"n{i}", "OP", ["x"], b.output(f"y{i}", 256))
    return b.build()


def _flood_plan(n: int, events: tuple) -> memplan.Plan:
    return memplan.Plan("flood", 256, 256 * (n + 1), 0, n, tuple((f"n{i}", i) for i in range(n)), events,
                        (("x", 0, 256),) + tuple((f"y{i}", 256 * (i + 1), 256) for i in range(n)))


@pytest.mark.parametrize("events", ["one event a million times", "every node waits on every earlier one"])
def test_a_flood_of_events_is_verified_in_linear_time(events):
    """The verifier joined the waiting node's vector clock with the recorder's for every event, O(streams) each:
    a plan on 1024 streams repeating one event a million times (a 35 MB file) took 44 s to verify (every command
    that reads a plan verifies it), and one where each node waits on all earlier ones (half a million events,
    19 MB) 24 s. Now a node joins only the last node it waits on per stream, latest first, skipping what the
    joined clocks count already: well under a second each. The findings are the same (tests/test_oracle.py)."""
    from test_hostile_api import no_hang

    n = 1024
    g = _one_node_per_stream(n)
    if events.startswith("one"):
        plan = _flood_plan(n, (("n0", "n1"),) * 1_000_000)
    else:
        plan = _flood_plan(n, tuple((f"n{i}", f"n{j}") for j in range(n) for i in range(j)))
    with no_hang(15):
        memplan.verify(g, plan)
    broken = dataclasses.replace(plan, events=plan.events + (("n5", "n3"),))   # a backward event is still found
    with no_hang(15), pytest.raises(UnsafePlan, match="'n5'->'n3': the wait comes before the record"):
        memplan.verify(g, broken)


def test_many_in_place_overwrites_of_one_input_verify_in_linear_time():
    """20,000 nodes each read input ``a`` and write a one-byte output over a slice of it in place, every output
    placed inside ``a`` (unsafe: only the last reader may overwrite it). For each overlapping output the verifier
    walked ``a``'s readers to test the in-place exception: quadratic, 27 s here (100,000 nodes: minutes). It now
    reads the per-stream summaries it keeps for every root: well under a second, the same findings."""
    from test_hostile_api import no_hang

    n = 20_000
    b = memplan.GraphBuilder("inplace", alignment=1)
    b.input("a", n)
    for i in range(n):
        b.node(f"n{i}", "OP", ["a"], b.output(f"b{i}", 1), inplace={f"b{i}": "a"})
    g = b.build()
    tensors = (("a", 0, n),) + tuple((f"b{i}", i, 1) for i in range(n))
    plan = memplan.Plan("inplace", 1, n, 0, 1, tuple((f"n{i}", 0) for i in range(n)), (), tensors)
    with no_hang(10), pytest.raises(UnsafePlan, match="'a' and 'b0' overlap"):
        memplan.verify(g, plan)
    last = dataclasses.replace(plan, tensors=(("a", 0, n),) + tuple(
        (f"b{i}", n + i if i < n - 1 else 0, 1) for i in range(n)), arena_bytes=2 * n)
    with no_hang(10):
        memplan.verify(g, last)   # the last reader's output alone over ``a``: the exception holds


@pytest.mark.parametrize("key", [5, True, None])
def test_an_inplace_key_from_code_that_is_no_string_is_refused(key):
    """``graph_from_dict`` of a document built in Python with ``"inplace": {5: "x"}`` took the key through
    ``str()``: the pair of tensor "5" (True: "True"), where ``"outputs": [5]`` is refused as no tensor id. The key
    is now checked as it is, and named."""
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "x", "size": 256, "kind": "input"}, {"id": str(key), "size": 256, "kind": "output"}],
           "nodes": [{"id": "n", "op": "OP", "inputs": ["x"], "outputs": [str(key)], "inplace": {key: "x"}}]}
    with pytest.raises(memplan.GraphError, match=r"node 'n': malformed inplace entry \(" + str(key)):
        memplan.graph_from_dict(doc)
    doc["nodes"][0]["inplace"] = {str(key): "x"}
    assert memplan.graph_from_dict(doc).nodes[0].inplace == ((str(key), "x"),)
