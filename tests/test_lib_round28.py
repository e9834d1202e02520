"""Library leftovers, round 28: a Graph's attrs and indexes are its own, ``plan_step`` checks its batch, a faster
``memory_budget`` (same plans), and what Ctrl-C does to a CP-SAT solve off the main thread.

Each test below failed before its fix (the docstring says how).
"""

from __future__ import annotations

import json
from enum import Enum, IntEnum

import numpy as np
import pytest

import memplan
from memplan import Graph, GraphBuilder, Node, Tensor, graph_from_dict
from memplan.errors import GraphError


class Dim(IntEnum):
    D = 4096


class Colour(str, Enum):
    RED = "red"


class Loud(int):
    """An int whose ``int()`` is another number: ``json`` writes its value (``int.__repr__``), the cost model read
    ``int(s)``."""

    def __int__(self) -> int:
        return 7

    def __index__(self) -> int:
        return 7


class Label(str):
    pass


def _matmul_graph(a_shape, o_shape, **more) -> Graph:
    b = GraphBuilder("mm")
    a = b.input("a", 1 << 20, shape=a_shape, **more)
    w = b.weight("w", 1 << 20)
    t = b.node("mm0", "MUL_MAT", [w, a], b.intermediate("t", 1 << 20, shape=o_shape))
    b.node("mm1", "MUL_MAT", [w, t], b.output("o", 1 << 20, shape=o_shape))
    return b.build()


def _plan_json(g: Graph) -> str:
    return memplan.plan(g, streams="auto").to_json()


def _round_trip(g: Graph) -> Graph:
    return graph_from_dict(json.loads(json.dumps(g.to_dict())))


# ---- attrs: plain JSON, the graph's own ------------------------------------------------------------------------


def test_attrs_a_caller_edits_after_build_do_not_change_the_graph():
    """The graph kept the caller's attrs objects: appending to the shape list passed to the builder after
    ``build()`` changed the validated graph, its JSON and its plan (the MUL_MAT cost model reads the shape)."""
    shape, meta = [512, 512], {"nested": ([1, 2], {"k": [3]})}
    g = _matmul_graph(shape, shape, meta=meta)
    before_doc, before_plan = g.to_dict(), _plan_json(g)
    shape.append(64)
    meta["nested"][0].append(9)
    meta["nested"][1]["k"].clear()
    meta["new"] = 1
    assert g.to_dict() == before_doc
    assert _plan_json(g) == before_plan
    # a Tensor made by hand: its attrs dict too
    attrs = {"shape": [4, 4]}
    g2 = Graph("g", (Tensor("x", 64, "input", attrs=attrs), Tensor("y", 64, "output")),
                (Node("n", "RELU", ("x",), ("y",), attrs=attrs),))
    attrs["shape"].append(4)
    attrs["dtype"] = "f32"
    assert g2.tensor("x").attrs == {"shape": [4, 4]} and g2.node("n").attrs == {"shape": [4, 4]}


def test_attrs_values_are_plain_json_so_the_graph_equals_its_json():
    """Tuples, an IntEnum, a str-mixin enum, a str subclass, numpy numbers and non-string keys stayed as given: the
    graph was unequal to the graph read back from its JSON (a tuple is not a list), and its attrs values kept
    their classes' behaviour (an ``int()`` override, a custom ``__eq__``)."""
    attrs = {"dims": (Dim.D, np.int64(2)), "dtype": Colour.RED, "name": Label("q"), "scale": np.float64(0.5),
             "flag": np.bool_(True), "nested": [(1, (2.5, Label("x")))], 1: "one", Label("k"): {Dim.D: (None,)}}
    g = _matmul_graph([Dim.D, 8], (Dim.D, 8), **{k: v for k, v in attrs.items() if isinstance(k, str)})
    x = g.tensor("a").attrs
    assert x["shape"] == [4096, 8] and x["dims"] == [4096, 2] and x["dtype"] == "red" and x["nested"] == [[1, [2.5, "x"]]]
    assert x["k"] == {"4096": [None]} and x["flag"] is True
    types = set()
    stack = [x]
    while stack:
        v = stack.pop()
        types.add(type(v))
        if isinstance(v, dict):
            types |= set(map(type, v))
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    assert types <= {dict, list, str, int, float, bool, type(None)}, types
    assert _round_trip(g).to_dict() == g.to_dict()
    t = Graph("g", (Tensor("x", 64, "input", attrs={1: "one", Label("s"): (1,)}), Tensor("y", 64, "output")),
              (Node("n", "RELU", ("x",), ("y",)),))
    assert t.tensor("x").attrs == {"1": "one", "s": [1]}


def test_attrs_of_an_int_subclass_plan_as_their_json():
    """A shape entry of an int subclass whose ``int()`` differs from its value: the graph planned with the
    cost model's ``int(s)`` (7), its JSON said 4096, so the graph and its round trip gave other plan bytes."""
    g = _matmul_graph([Loud(4096), Loud(4096)], [Loud(4096), Loud(4096)])
    assert g.tensor("a").attrs["shape"] == [4096, 4096] and type(g.tensor("a").attrs["shape"][0]) is int
    assert _plan_json(_round_trip(g)) == _plan_json(g)


def test_numpy_float_attrs_save_and_load(tmp_path):
    """An attrs value ``np.float32(0.5)`` (not a Python float) made ``save_graph`` refuse a graph ``plan`` took; it
    is kept as its Python float now, and the file reads back as the same graph."""
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, scale=np.float32(0.5), eps=np.float16(0.25))], b.output("y", 64))
    g = b.build()
    path = str(tmp_path / "g.json")
    memplan.save_graph(g, path)
    assert memplan.load_graph(path).to_dict() == g.to_dict()
    assert g.tensor("x").attrs == {"scale": 0.5, "eps": 0.25}


def test_attrs_json_cannot_hold_are_still_refused_by_save(tmp_path):
    """What JSON cannot hold stays as given (a set, NaN, keys JSON writes alike), for ``save_graph`` to name."""
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, meta={1: "a", "1": "b"}, s={1})], b.output("y", 64))
    g = b.build()
    assert g.tensor("x").attrs["s"] == {1} and g.tensor("x").attrs["meta"] == {1: "a", "1": "b"}
    with pytest.raises(GraphError, match="tensor 'x'"):
        memplan.save_graph(g, str(tmp_path / "g.json"))


def test_cyclic_and_deep_attrs_are_copied_without_recursion():
    """A cyclic attrs value stays a cycle (of the graph's own copy); nesting past the recursion limit is copied."""
    loop: list = []
    loop.append(loop)
    deep: list = []
    d = deep
    for _ in range(5000):
        d.append([])
        d = d[0]
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, loop=loop, deep=(deep,))], b.output("y", 64))
    a = b.build().tensor("x").attrs
    assert a["loop"] is not loop and a["loop"][0] is a["loop"]
    assert a["deep"][0] is not deep


# ---- the indexes: read-only ------------------------------------------------------------------------------------


def test_graph_indexes_are_read_only_and_still_pickle():
    """``tensor_index`` / ``node_index`` were the graph's plain dicts: ``g.tensor_index["y"] = 0`` made ``g.tensor("y")``
    the input and every later plan or check of the "immutable" graph wrong. They are read-only views now, and the
    graph still pickles and copies (a ``MappingProxyType`` alone does neither)."""
    import copy
    import pickle

    g = _matmul_graph([8, 8], [8, 8])
    for index, key in ((g.tensor_index, "o"), (g.node_index, "mm1")):
        with pytest.raises(TypeError):
            index[key] = 0
        with pytest.raises((TypeError, AttributeError)):
            index.clear()
        with pytest.raises(TypeError):
            del index[key]
    assert g.tensor("o").id == "o" and g.node("mm1").id == "mm1"
    for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), copy.copy(g)):
        assert h == g and dict(h.tensor_index) == dict(g.tensor_index) and dict(h.node_index) == dict(g.node_index)
        with pytest.raises(TypeError):
            h.tensor_index["o"] = 0
        assert _plan_json(h) == _plan_json(g)


# ---- runtime.step.plan_step: the batch is the graph's -------------------------------------------------------------


@pytest.mark.parametrize("graph_batch, asked", [(4, 1), (1, 4), (4, 16)])
def test_plan_step_refuses_a_batch_that_is_not_the_graphs(graph_batch, asked):
    """``plan_step(graph, batch=...)`` took the batch on trust: a 4-row step planned as ``batch=1`` came back as the
    ordinary plan (its fused add+norm groups then stage copies every step), a 1-row step as ``batch=4`` was planned
    twice. A batch other than the rows the graph's weight products multiply is refused, naming both."""
    from runtime.models import llama as L
    from runtime.step import plan_step

    g = L.build_graph(L.config("tiny", batch=graph_batch))
    with pytest.raises(ValueError, match=rf"batch={asked} .* step of {graph_batch} rows"):
        plan_step(g, batch=asked)
    assert plan_step(g, batch=graph_batch).to_json() == plan_step(g, batch=np.int64(graph_batch)).to_json()
    with pytest.raises(GraphError, match="plan_step needs a memplan Graph"):
        plan_step(g.to_dict(), batch=graph_batch)
