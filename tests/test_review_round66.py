"""Round-66 review: the GC pause and ``graph._validate``'s new fast paths must not change an outcome.

Why: ``_gc.paused`` switches a process-wide setting; a read that raises must not leave the user's process with
the cyclic collector off (memory then grows without a word). The fast paths in ``_validate`` skip the full checks
for exact plain types; any value the slow path refused must still be refused, with the same ``GraphError``.
"""

from __future__ import annotations

import gc
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memplan.errors import GraphError, MemplanError
from memplan.graph import MAX_COST_US, MAX_TENSOR_BYTES, Graph, Node, Tensor, graph_from_dict
from memplan.io import load_graph


def _doc(size=16, cost=1.0) -> dict:
    return {"format": "memplan.graph/1", "name": "g",
            "tensors": [{"id": "a", "size": 16, "kind": "input"}, {"id": "b", "size": size, "kind": "output"}],
            "nodes": [{"id": "n", "op": "f", "inputs": ["a"], "outputs": ["b"], "cost": cost}]}


@pytest.fixture
def gc_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_gc_back_on_after_a_graph_error(gc_on):
    with pytest.raises(GraphError, match=r"tensor 'b': size True \(a bool\) is not an integer"):
        graph_from_dict(_doc(size=True))
    assert gc.isenabled()


def test_gc_back_on_after_a_bad_file(gc_on, tmp_path):
    p = tmp_path / "g.json"
    p.write_text('{"format": "memplan.graph/1", "tensors": [')   # cut off mid-file
    with pytest.raises(MemplanError, match=r"g\.json: not valid JSON"):
        load_graph(str(p))
    assert gc.isenabled()
    p.write_text(json.dumps(_doc(cost=float("nan"))).replace("NaN", "-1"))
    with pytest.raises(GraphError, match="node 'n': cost -1 is not a finite non-negative number"):
        load_graph(str(p))
    assert gc.isenabled()


def test_gc_left_off_when_the_user_had_it_off(gc_on):
    gc.disable()
    graph_from_dict(_doc())
    with pytest.raises(GraphError, match="tensor 'b': negative size -1"):
        graph_from_dict(_doc(size=-1))
    assert not gc.isenabled()


class _Int(int):
    pass


_SIZES = st.one_of(st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=True),
                   st.integers(0, 64).map(_Int), st.just(MAX_TENSOR_BYTES), st.just(MAX_TENSOR_BYTES + 1))
_COSTS = st.one_of(st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
                   st.just(-0.0), st.just(float(MAX_COST_US)), st.just(MAX_COST_US + 1), st.none())


def _size_ok(s) -> bool:
    """The slow path's rule, written out: a non-bool int in [0, MAX_TENSOR_BYTES] (a view-free output of 16 bytes
    read by nobody: any such size is a valid graph)."""
    return isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_TENSOR_BYTES


def _cost_ok(c) -> bool:
    return c is None or (isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= MAX_COST_US)


@settings(max_examples=300, deadline=None)
@given(_SIZES)
def test_size_fast_path_agrees_with_the_rule(size):
    if _size_ok(size):
        assert graph_from_dict(_doc(size=size)).tensors[1].size == size
    else:
        with pytest.raises(GraphError, match="tensor 'b'"):
            graph_from_dict(_doc(size=size))


@settings(max_examples=300, deadline=None)
@given(_COSTS)
def test_cost_fast_path_agrees_with_the_rule(cost):
    if _cost_ok(cost):
        got = graph_from_dict(_doc(cost=cost)).nodes[0].cost
        assert got == cost and type(got) is type(cost)
    else:
        assert not (isinstance(cost, float) and math.isfinite(cost) and 0 <= cost <= MAX_COST_US)
        with pytest.raises(GraphError, match="node 'n': cost"):
            graph_from_dict(_doc(cost=cost))


@pytest.mark.parametrize("inputs", [(x for x in ["a"]), {"a": 1}, "a", None, 5])
def test_code_built_inputs_that_are_no_tuple_refused(inputs):
    # ``plain_ids`` iterates every node's inputs before the per-node type check: a generator is consumed there, and
    # must still be refused by name rather than read as a node with no inputs
    with pytest.raises(GraphError, match="node 'n': inputs must be a tuple"):
        Graph("g", (Tensor("a", 16, "input"), Tensor("b", 16, "output")), (Node("n", "f", inputs, ("b",)),))


def test_hold_registers_the_end_at_exit_once_a_process(monkeypatch):
    """A wrapper calling ``cli.main`` twice in the command's process: ``hold`` registered ``_end_at_exit`` at each
    call, and the second registration saw the first as a callback registered before memplan, so the process never
    ended through ``os._exit`` (review 66). Once a process now, as the first call found it."""
    from memplan import _interrupt

    registered = []
    monkeypatch.setattr(_interrupt, "command_process", lambda: True)
    monkeypatch.setattr(_interrupt, "_set", lambda *a: None)
    monkeypatch.setattr(_interrupt.atexit, "register", registered.append)
    monkeypatch.setattr(_interrupt.atexit, "_ncallbacks", lambda: len(registered))
    monkeypatch.setattr(_interrupt, "_first", [])
    _interrupt.hold()
    _interrupt.hold()
    assert registered == [_interrupt._end_at_exit] and _interrupt._first == [True]
