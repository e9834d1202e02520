"""Review of session 28's core changes (rev28a): attrs read at build, ``Replay.branch``, pickled graphs."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping
from enum import Enum, IntEnum

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs

import memplan
from memplan import Graph, GraphBuilder, Node, Tensor, graph_from_dict
from memplan.errors import GraphError
from memplan.optimize.events import Replay


class _ItemsRaise(Mapping):
    def __getitem__(self, k):
        raise RuntimeError("boom")

    def __iter__(self):
        return iter(["a"])

    def __len__(self):
        return 1

    def items(self):
        raise RuntimeError("boom items")


class _ItemsNotIterable(dict):
    def items(self):
        return 5


class _IterRaises(list):
    def __iter__(self):
        raise RuntimeError("list iter")


@pytest.mark.parametrize("value", [_ItemsRaise(), {"x": _ItemsRaise()}, [_ItemsNotIterable(a=1)], _IterRaises([1])],
                         ids=["mapping-items-raise", "nested", "dict-items-not-iterable", "list-iter-raises"])
def test_unreadable_attrs_are_named_at_build(value):
    """Attrs are copied to plain JSON at build (``plain_json``), which asks the caller's objects for their items: a
    Mapping whose ``items()`` raised, or a dict subclass whose ``items()`` is no iterable, was a raw RuntimeError or
    TypeError from ``build()`` / ``Graph(...)`` / ``graph_from_dict`` naming no tensor or node (before session 28
    such a graph built and planned, and ``save_graph`` named the tensor)."""
    b = GraphBuilder("g")
    b.input("x", 10, v=value)
    b.output("y", 10)
    b.node("n0", "OP", ["x"], ["y"])
    with pytest.raises(GraphError, match=r"tensor 'x': attrs cannot be read as JSON \((RuntimeError|TypeError)"):
        b.build()
    with pytest.raises(GraphError, match=r"node 'n0': attrs cannot be read as JSON"):
        Graph("g", (Tensor("x", 10, "input"), Tensor("y", 10, "output")),
              (Node("n0", "OP", ("x",), ("y",), attrs={"v": value}),))
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "x", "size": 10, "kind": "input", "attrs": {"v": value}},
                       {"id": "y", "size": 10, "kind": "output"}],
           "nodes": [{"id": "n0", "op": "OP", "inputs": ["x"], "outputs": ["y"]}]}
    with pytest.raises(GraphError, match=r"tensor 'x': attrs cannot be read as JSON"):
        graph_from_dict(doc)


class _Dt(str, Enum):
    F32 = "f32"


class _Rank(IntEnum):
    TWO = 2


def test_graph_in_code_pickled_copied_and_reloaded_plan_alike(tmp_path):
    """A graph built in code (attrs with a tuple, a str-mixin enum, an IntEnum key, numpy numbers), its pickle,
    deep and shallow copies and the graph read back from its own file are equal and plan to the same bytes; the
    copies' indexes stay read-only."""
    b = GraphBuilder("g", alignment=64)
    b.input("x", 100, shape=(1, np.int64(2)), dtype=_Dt.F32, nested={_Rank.TWO: [np.float32(1.5), (3,)]})
    b.input("unread", 700)
    b.tensor("y", 300, "intermediate", z=1, a=np.bool_(True))
    b.output("z", 50)
    b.node("n0", "OP", ["x"], ["y"], k=np.int32(3))
    b.node("n1", "OP", ["y", "x"], ["z"])
    g = b.build()
    want = memplan.plan(g, solver="greedy").to_json()
    path = tmp_path / "g.json"
    memplan.save_graph(g, str(path))
    for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), copy.copy(g), memplan.load_graph(str(path))):
        assert h == g and hash(h) == hash(g)
        assert memplan.plan(h, solver="greedy").to_json() == want
        with pytest.raises(TypeError):
            h.tensor_index["x"] = 0   # type: ignore[index]
    assert g.tensor("x").attrs == {"shape": [1, 2], "dtype": "f32", "nested": {"2": [1.5, [3]]}}
    assert memplan.plan(g, solver="greedy").lower_bound_bytes >= 704 + 100   # (the unread input counts)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs(max_nodes=20), st.data())
def test_replay_branch_chains_equal_full_replays(g, data):
    """A chain of ``Replay.branch`` calls (each at a mark of the run it branches off, with marks of its own that may
    lie before its start, as ``budget.candidate_pool`` chains them) gives the events, event pairs and makespan of a
    full ``Replay`` of its streams, and ``rerun``'s (events, makespan), on random graphs with views, in-place pairs
    and fusion groups (the node order is topological and keeps groups whole)."""
    n = len(g.nodes)
    order = list(range(n))
    cost = data.draw(st.lists(st.floats(0, 10, allow_nan=False), min_size=n, max_size=n))
    event_us = data.draw(st.sampled_from([0.0, 0.5, 3.0]))
    k = data.draw(st.integers(1, 4))
    stream = st.integers(0, 3)
    streams = data.draw(st.lists(stream, min_size=n, max_size=n))
    points = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=k))
    run = Replay(g, order, streams, cost, event_us, points, record=True)
    for i, p in enumerate(points):
        new = streams[:p] + data.draw(st.lists(stream, min_size=n - p, max_size=n - p))
        expected = run.rerun(p, new)
        run = run.branch(p, new, points[i + 1:])
        streams = new
        full = Replay(g, order, streams, cost, event_us, record=True)
        assert (run.events, run.makespan, run.pairs) == (full.events, full.makespan, full.pairs)
        assert (run.events, run.makespan) == expected


@pytest.mark.parametrize("key", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_attr_keys_are_still_refused_by_save_graph(tmp_path, key):
    """plain_json turns keys into the text json writes; json refuses NaN/inf keys (allow_nan=False), so the graph
    must keep them for save_graph to name the tensor, as before attrs were normalised (they were saved as "nan")."""
    b = GraphBuilder("g")
    b.input("x", 64, meta={key: 1})
    b.node("n", "RELU", ["x"], "y")
    b.output("y", 64)
    g = b.build()
    with pytest.raises(GraphError, match="tensor 'x'"):
        memplan.save_graph(g, str(tmp_path / "g.json"))
    assert not (tmp_path / "g.json").exists()
