"""Round 59 (hostile59): defects found by docs/experiments/hostile_s59.py, each pinned by a test that failed before.

Index accessors on hot paths given a negative, past-the-end or non-integer index: a negative one wrapped around and
answered for another node or tensor, the others raised raw TypeError/IndexError; ``BufferProblem.conflict_pairs``
asked twice with different chunks raised "'tuple' object is not callable" (its cache hid the method)."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan.errors import GraphError, ScheduleError, SolverError
from memplan.examples import diamond


def _hb():
    g = diamond()
    p = memplan.plan(g, streams=2)
    sched = memplan.Schedule(tuple(n for n, _ in p.order), tuple(s for _, s in p.order),
                             tuple(memplan.Event(a, b) for a, b in p.events))
    return g, memplan.build_happens_before(g, sched)


@pytest.mark.parametrize("bad", [-1, -4, 4, 10**20, 1.5, "x", None, [0], np.float64(1.0)])
def test_happens_before_hb_refuses_what_is_no_node_index(bad):
    g, hb = _hb()
    with pytest.raises(ScheduleError, match=r"HappensBefore.hb: node a must be an integer index in 0..3"):
        hb.hb(bad, 0)
    with pytest.raises(ScheduleError, match=r"HappensBefore.hb: node b must be an integer index in 0..3"):
        hb.hb(0, bad)


def test_happens_before_hb_answers_as_before_for_indices():
    g, hb = _hb()
    n = len(g.nodes)
    got = {(a, b): hb.hb(a, b) for a in range(n) for b in range(n)}
    assert got[(0, n - 1)] and not got[(n - 1, 0)] and not got[(0, 0)]
    assert hb.hb(np.int64(0), np.int64(n - 1))   # numpy integers are indices too


@pytest.mark.parametrize("bad", [-1, 2, 1.5, "0", None])
def test_first_at_least_refuses_what_is_no_stream(bad):
    _, hb = _hb()
    with pytest.raises(ScheduleError, match=r"first_at_least: stream s0 must be an integer index in 0..1"):
        hb.first_at_least(bad, 0, np.array([1]))
    with pytest.raises(ScheduleError, match=r"first_at_least: stream s must be an integer index in 0..1"):
        hb.first_at_least(0, bad, np.array([1]))


@pytest.mark.parametrize("method", ["in_arena", "is_root", "offset_in_root", "writers"])
@pytest.mark.parametrize("bad", [-1, 10**6, 10**20, 1.5, "t", None])
def test_graph_index_accessors_refuse_what_is_no_tensor_index(method, bad):
    g = diamond()
    with pytest.raises(GraphError, match=rf"Graph.{method}: tensor must be an integer index in 0..{len(g.tensors) - 1}"):
        getattr(g, method)(bad)


def test_graph_index_accessors_answer_as_before():
    g = diamond()
    for t in range(len(g.tensors)):
        assert g.in_arena(t) and g.is_root(t) and g.offset_in_root(t) == 0
    assert g.writers(len(g.tensors) - 1) == [len(g.nodes) - 1]


@pytest.mark.parametrize("bad", [-1, 3, 1.5, "0", None])
def test_buffer_problem_conflicts_refuses_what_is_no_buffer(bad):
    prob = memplan.BufferProblem(np.array([8, 8, 8]), np.array([0, 1, 2]), np.array([2, 3, 4]))
    with pytest.raises(SolverError, match=r"conflicts: buffer i must be an integer index in 0..2"):
        prob.conflicts(bad, 0)
    with pytest.raises(SolverError, match=r"conflicts: buffer j must be an integer index in 0..2"):
        prob.conflicts(0, bad)
    assert prob.conflicts(0, 1) and not prob.conflicts(0, 2)


def test_conflict_pairs_asked_again_with_another_chunk():
    prob = memplan.BufferProblem(np.array([8, 8, 8]), np.array([0, 1, 2]), np.array([2, 3, 4]))
    a, b = prob.conflict_pairs()
    a2, b2 = prob.conflict_pairs(1)   # raised "'tuple' object is not callable"
    assert sorted(zip(a.tolist(), b.tolist())) == sorted(zip(a2.tolist(), b2.tolist())) == [(0, 1), (1, 2)]


@pytest.mark.parametrize("bad", [0, -5, 1.5, "x", None])
def test_conflict_pairs_refuses_a_chunk_that_is_no_count(bad):
    prob = memplan.BufferProblem(np.array([8, 8]), np.array([0, 1]), np.array([2, 3]))
    with pytest.raises(SolverError, match="chunk must be an integer of at least 1"):
        prob.conflict_pairs(bad)


@pytest.mark.parametrize("bad", [-1, 4, 1.5, "n", None])
def test_cost_model_node_us_refuses_what_is_no_node(bad):
    g = diamond()
    with pytest.raises(ScheduleError, match=r"CostModel.node_us: node must be an integer index in 0..3"):
        memplan.CostModel().node_us(g, bad)
    with pytest.raises(ScheduleError, match="needs a memplan Graph, not NoneType"):
        memplan.CostModel().node_us(None, 0)


@pytest.mark.parametrize("names", [None, ("a", "b", "c")])
@pytest.mark.parametrize("bad", [-1, 3, 1.5, "x", None])
def test_buffer_problem_name_refuses_what_is_no_buffer(names, bad):
    """``name(-1)`` named the last buffer and ``name("x")`` (no names given) answered "x"."""
    prob = memplan.BufferProblem(np.array([8, 8, 8]), np.array([0, 1, 2]), np.array([2, 3, 4]), names=names)
    with pytest.raises(SolverError, match=r"BufferProblem.name: buffer must be an integer index in 0..2"):
        prob.name(bad)
    assert prob.name(np.int64(1)) == ("1" if names is None else "b")
