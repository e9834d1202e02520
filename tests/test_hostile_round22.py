"""Hostile input, round 22: the library API from Python.

A cost model's constructor given a misspelt keyword, numpy integers wherever the library takes an integer
(sizes, alignments, shapes, options, plan documents built in Python), and a user's cost callback that
raises. Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import dataclasses
import enum
import json

import handgraphs as H
import numpy as np
import pytest

import memplan
from memplan import BufferProblem, GraphBuilder, examples
from memplan.solvers import SolveOptions, solve


def test_cost_model_unknown_keyword_is_an_option_error():
    """``CostModel(even_us=3)`` was Python's TypeError ("__init__() got an unexpected keyword argument"),
    where every planner entry point names the option and the nearest valid one."""
    with pytest.raises(memplan.OptionError, match=r"CostModel\(\) got an unknown option 'even_us' \(did you mean "
                                                  r"'event_us'\?\)"):
        memplan.CostModel(even_us=3)
    with pytest.raises(TypeError):   # still the TypeError Python raised
        memplan.CostModel(bogus=1)
    with pytest.raises(memplan.OptionError, match="SolveOptions.*'seeed'.*'seed'"):
        SolveOptions(seeed=1)
    with pytest.raises(memplan.OptionError, match="LlamaConfig.*'layer'.*'layers'"):
        examples.LlamaConfig(layer=2)
    assert memplan.CostModel(event_us=3).event_us == 3   # the valid keywords still work


@pytest.mark.parametrize("value,expected", [
    (np.int64(8), 8), (np.uint8(8), 8), (np.array(8), 8), (8, 8),
    (True, None), (np.bool_(True), None), (np.array(True), None), (1.5, None), (2.0, None), (np.float64(2.0), None), ("10", None),
    (None, None), (np.array([8]), None),
])
def test_as_int_takes_what_operator_index_takes_but_bools(value, expected):
    from memplan.errors import as_int

    v = as_int(value)
    assert v == expected and (v is None or type(v) is int)


def _numpy_graph(i=np.int64):
    """The graph ``_plain_graph`` builds, every integer given as ``i``."""
    b = GraphBuilder("np", alignment=i(64))
    b.input("x", i(1024), shape=[i(16), i(16)], dtype="f32")
    b.view("xv", "x", i(512), i(256))
    b.node("a", "RELU", ["xv"], b.intermediate("h", i(512)), cost=i(3))
    b.node("b", "RELU", ["h"], b.intermediate("h2", i(512)))
    b.node("c", "ADD", ["h", "h2"], b.output("y", i(512)))
    return b.build()


def test_numpy_integers_build_the_same_graph_and_plan(tmp_path):
    """Sizes, alignments and view offsets given as numpy integers were refused ("size np.int64(1024) is not an
    integer") while numpy stream ids were taken; a shape attr of numpy integers built, then could not be
    saved. All are taken now and stored as plain ints: the graph and its plan have the very same JSON."""
    plain, numpy = _numpy_graph(int), _numpy_graph()
    assert all(type(t.size) is int and type(t.view_offset) is int for t in numpy.tensors)
    assert type(numpy.alignment) is int and type(numpy.node("a").cost) is int
    memplan.save_graph(plain, str(tmp_path / "a.json"))
    memplan.save_graph(numpy, str(tmp_path / "b.json"))
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    assert memplan.plan(numpy).to_json() == memplan.plan(plain).to_json()
    doc = plain.to_dict()
    for t in doc["tensors"]:
        t["size"] = np.int32(t["size"])
    assert memplan.graph_from_dict(doc) == plain


def test_numpy_integer_options_give_the_same_plan():
    """``plan(g, streams=np.int64(2), memory_budget=np.int64(...), seed=..., workers=..., time_limit=...)``,
    ``devices``, ``device_capacity``, ``graph_optimize(g, np.int64(2))`` and ``split_devices(g, np.int64(2))``
    were each refused naming the option. They mean what the plain ints mean, byte for byte."""
    g, i = H.qkv(), np.int64
    kw = dict(streams=2, memory_budget=1 << 30, max_events=3, seed=1, workers=1, time_limit=1)
    want = memplan.plan(g, **kw).to_json()
    assert memplan.plan(g, **{k: i(v) for k, v in kw.items()}).to_json() == want
    assert memplan.plan(g, devices=i(2), device_capacity=i(1 << 40)).to_json() == \
        memplan.plan(g, devices=2, device_capacity=1 << 40).to_json()
    assert memplan.graph_optimize(g, i(2)) == memplan.graph_optimize(g, 2)
    assert memplan.split_devices(g, i(2)).node_device == memplan.split_devices(g, 2).node_device
    assert memplan.plan_devices(g, np.uint16(2))[1].to_json() == memplan.plan_devices(g, 2)[1].to_json()
    assert SolveOptions(seed=i(3), workers=np.array(2)) == SolveOptions(seed=3, workers=2)


class _Two(enum.IntEnum):
    TWO = 2


@pytest.mark.parametrize("bad,words", [(2.0, "streams must be an integer"), ("2", "streams must be an integer"),
                                       (True, "streams must be an integer"), (np.float64(2), "streams must be")])
def test_integers_only_no_floats_strings_or_bools(bad, words):
    """Taking numpy integers must not take what only looks like an integer: 2.0, "2", True stay refused."""
    with pytest.raises(memplan.ScheduleError, match=words):
        memplan.plan(H.qkv(), streams=bad)
    with pytest.raises(memplan.GraphError, match="tensor 'x': size"):
        memplan.Graph("g", (memplan.Tensor("x", bad, "input"),), ())
    with pytest.raises(memplan.GraphError, match="alignment"):
        memplan.Graph("g", (), (), alignment=bad)
    assert memplan.plan(H.qkv(), streams=_Two.TWO).to_json() == memplan.plan(H.qkv(), streams=2).to_json()


def test_numpy_integers_in_plan_documents_and_plans_built_in_python():
    """A plan document built in Python with numpy offsets, or a ``Plan`` whose fields are numpy integers,
    was refused by ``verify`` and ``plan_from_dict`` ("'offset' is not an integer within ±2**63"). Both are
    verified now, stored as plain ints (no int64 wrap-around in the verifier's sums), and write the same
    JSON as the plan they equal."""
    g = H.qkv()
    p = memplan.plan(g)
    doc = json.loads(p.to_json())
    for e in doc["tensors"]:
        e["size"] = np.int64(e["size"])
        e["offset"] = None if e["offset"] is None else np.int64(e["offset"])
    for e in doc["order"]:
        e["stream"] = np.int8(e["stream"])
    doc["arena_bytes"], doc["streams"] = np.uint64(doc["arena_bytes"]), np.int64(doc["streams"])
    memplan.verify(g, doc)
    assert memplan.plan_from_dict(doc).to_json() == p.to_json()
    q = dataclasses.replace(p, arena_bytes=np.int64(p.arena_bytes),
                            tensors=tuple((t, None if o is None else np.int64(o), np.int64(s)) for t, o, s in p.tensors),
                            order=tuple((n, np.int64(s)) for n, s in p.order))
    memplan.verify(g, q)
    assert type(q.arena_bytes) is int and all(type(s) is int for _t, _o, s in q.tensors)
    assert q.to_json() == p.to_json()
    with pytest.raises(memplan.PlanFormatError, match="'offset' is not an integer"):
        memplan.verify(g, dataclasses.replace(p, tensors=((p.tensors[0][0], 1.5, p.tensors[0][2]),) + p.tensors[1:]))


def test_numpy_integers_in_buffer_problems_and_llama_configs():
    """A 0-d numpy array as a BufferProblem's alignment or capacity, and numpy integers in a LlamaConfig,
    were refused; they are the integers they hold."""
    prob = BufferProblem(sizes=[8, 8], lower=[0, 0], upper=[2, 2], alignment=np.array(8), capacity=np.int64(64))
    assert solve(prob, "greedy").offsets.tolist() in ([0, 8], [8, 0])
    assert type(prob.alignment) is int and type(prob.capacity) is int
    cfg = examples.LlamaConfig(layers=np.int64(1), hidden=np.int32(64), heads=4, kv_heads=2, ffn=128, vocab=100, ctx=8)
    assert cfg == examples.LlamaConfig(layers=1, hidden=64, heads=4, kv_heads=2, ffn=128, vocab=100, ctx=8)


class _Raising:
    event_us = 1.0

    def __init__(self, exc):
        self.exc = exc

    def node_us(self, graph, n):
        if graph.nodes[n].id == "mm_k":
            raise self.exc
        return 1.0


@pytest.mark.parametrize("exc", [KeyError("missing"), ZeroDivisionError("division by zero"),
                                 memplan.GraphError("own")])
def test_an_exception_in_a_cost_callback_names_the_node(exc):
    """An exception raised in a user's ``node_us`` came out bare: nothing said which node was being costed.
    It is still the same exception (the caller's ``except`` clauses catch it, its traceback is its own), with a
    note naming the node, the cost model and the graph."""
    g = H.qkv()
    for call in (lambda: memplan.plan(g, streams=2, cost_model=_Raising(exc)),
                 lambda: memplan.simulate(g, memplan.plan(g), _Raising(exc)),
                 lambda: memplan.graph_optimize(g, 2, cost_model=_Raising(exc))):
        with pytest.raises(type(exc)) as info:
            call()
        assert info.value is exc
        assert any("_Raising.node_us costing node 'mm_k'" in n and "'qkv'" in n for n in info.value.__notes__)
        exc.__notes__.clear()


def _deep(n):
    x = 0
    for _ in range(n):
        x = [x]
    return x


@pytest.mark.parametrize("call,error,words", [
    (lambda g: memplan.plan(g, memory_budget=10 ** 5000), memplan.BudgetError, "integer of 16610 bits"),
    (lambda g: memplan.Graph("g", (), (), alignment=2 ** 20000), memplan.GraphError, "alignment <an integer"),
    (lambda g: memplan.plan(g, seed=-(10 ** 5000)), memplan.SolverError, "seed must be"),
    (lambda g: memplan.plan(g, streams=_deep(5000)), memplan.ScheduleError, r"not \[\[\["),
    (lambda g: memplan.split_devices(g, _deep(5000)), memplan.ScheduleError, "devices must be"),
    (lambda g: memplan.verify(g, memplan.plan(g), fused_groups=_deep(5000)), memplan.PlanFormatError, "fused_groups"),
    (lambda g: memplan.graph_from_dict({**g.to_dict(), "format": _deep(5000)}), memplan.GraphError, "unknown format"),
    (lambda g: memplan.graph_from_dict({**g.to_dict(), "format": np.array([1, 2])}), memplan.GraphError, "format"),
    (lambda g: memplan.plan_from_dict({**memplan.plan(g).to_dict(), "format": np.array([1, 2])}),
     memplan.PlanFormatError, "unknown format"),
    (lambda g: memplan.graph_from_dict({**g.to_dict(), "tensors": [{"id": "x", "size": _deep(5000), "kind": "input"}]}),
     memplan.GraphError, "tensor 'x': size"),
])
def test_messages_about_hostile_python_values(call, error, words):
    """The message naming a bad value failed to be made: ``repr`` of an integer over 4300 digits is a
    ValueError, of a list nested thousands deep a RecursionError (a Python caller's values: files are refused
    at 64 levels), and a numpy array compared with the format string is ambiguous (ValueError). Each is the
    memplan error it was meant to be, the value shown short."""
    with pytest.raises(error, match=words) as info:
        call(H.qkv())
    assert len(str(info.value)) < 400


def _problem():
    return BufferProblem(sizes=[8, 8], lower=[0, 1], upper=[2, 3], alignment=8)


@pytest.mark.parametrize("call,error,words", [
    (lambda g: memplan.plan(g, solver=np.array(["a", "b"])), memplan.SolverError, "unknown solver"),
    (lambda g: memplan.plan(g, solver=10 ** 5000), memplan.SolverError, "unknown solver <an integer"),
    (lambda g: memplan.plan(g, streams=np.array([1, 2])), memplan.ScheduleError, "streams must be an integer"),
    (lambda g: solve(dataclasses.replace(_problem(), compatible=None)), memplan.SolverError, "compatible must be"),
    (lambda g: solve(dataclasses.replace(_problem(), inplace=3)), memplan.SolverError, "inplace must be"),
    (lambda g: solve(dataclasses.replace(_problem(), inplace=np.array(3))), memplan.SolverError, "inplace must be"),
    (lambda g: memplan.plan(g, memplan.Schedule(tuple(n.id for n in g.nodes), (0,) * len(g.nodes), np.array(3))),
     memplan.ScheduleError, "must be tuples"),
])
def test_hostile_options_and_fields_found_by_fuzzing(call, error, words):
    """A numpy array as ``solver`` or ``streams`` was compared with a name elementwise (ValueError: "truth value
    of an array ... is ambiguous"), a 4301-digit solver name could not be shown (ValueError); a BufferProblem's
    ``compatible``/``inplace`` of None, 3 or a 0-d array, and a Schedule's events as a 0-d array, were
    TypeErrors from iterating them. Each is the memplan error naming the option or field."""
    with pytest.raises(error, match=words):
        call(H.qkv())


def test_schedule_stream_ids_are_any_integer():
    """``Schedule`` made numpy stream ids plain ints but not a 0-d array or an IntEnum, which the plan then
    carried into its JSON (and refused at the end)."""
    g = H.qkv()
    order = tuple(n.id for n in g.nodes)
    s = memplan.Schedule(order, tuple([np.array(0)] * (len(order) - 1) + [_Two.TWO - 2]))
    assert all(type(x) is int for x in s.streams)
    assert memplan.plan(g, s).to_json() == memplan.plan(g, memplan.Schedule(order, (0,) * len(order))).to_json()


class _BytesPath:
    def __fspath__(self):
        return b"/tmp/x.json"


@pytest.mark.parametrize("path", [10 ** 5000, _deep(5000), "g\ud800.json", _BytesPath()],
                         ids=["huge-int", "deep-list", "surrogate", "bytes-pathlike"])
def test_hostile_paths_from_python(tmp_path, path):
    """A path argument whose message could not be made (a 4301-digit int: ValueError; a deeply nested list:
    RecursionError), a str with a lone surrogate (UnicodeEncodeError from every os call) and a PathLike giving
    bytes: each is refused by the loaders and savers with memplan's error, and nothing is written."""
    g = H.qkv()
    p = memplan.plan(g)
    for call in (lambda: memplan.load_graph(path), lambda: memplan.load_plan(path),
                 lambda: memplan.save_graph(g, path), lambda: memplan.save_plan(p, path)):
        with pytest.raises(memplan.MemplanError, match="expected a file path|a file path cannot hold"):
            call()


@pytest.mark.parametrize("call,error,words", [
    (lambda: memplan.CostModel(floor_us=10 ** 400), memplan.ScheduleError, "floor_us"),
    (lambda: memplan.CostModel(hbm_bytes_per_us=10 ** 400), memplan.ScheduleError, "hbm_bytes_per_us"),
    (lambda: memplan.graph_optimize(H.qkv(), 2, cost_model=memplan.CostModel(event_us=-(10 ** 400))),
     memplan.ScheduleError, "event_us"),
    (lambda: memplan.graph_from_dict({}, source=10 ** 5000), memplan.GraphError, "source must be a string"),
    (lambda: memplan.plan_from_dict({}, source=_deep(5000)), memplan.PlanFormatError, "source must be a string"),
])
def test_cost_model_numbers_too_large_for_a_float_and_hostile_sources(call, error, words):
    """``CostModel(floor_us=10**400)`` (or such an ``event_us``) raised OverflowError converting it to a float;
    a ``source`` label that is no string failed while the message naming the document was being made."""
    with pytest.raises(error, match=words):
        call()
