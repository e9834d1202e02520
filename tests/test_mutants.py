"""Regression tests from mutation testing of the safety core (verify, lifetimes, solvers' check).

Each test kills a small, plausible mutation of the library that the rest of the suite let pass (or
killed only by chance, in a randomised property test): a one-token slip in the verifier, the
lifetimes or the solvers' own check that would let an unsafe plan through, or quietly stop an allowed
in-place reuse, with no other test noticing. The mutation each one guards is named in its docstring,
so a test that can no longer fail is easy to spot.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import expect_unsafe
from oracle import findings

import memplan
from memplan import GraphBuilder
from memplan.lifetimes import compute_lifetimes
from memplan.problem import BufferProblem, Solution
from memplan.solvers.check import check_solution


def _inplace_into_a_view_of_a_later_root() -> memplan.Graph:
    """``n`` writes ``v``, a view of ``B``, in place over ``A``; ``B`` itself is produced later by ``m``."""
    b = GraphBuilder("inplace_view_out")
    b.input("x", 256)
    b.node("p", "UNARY", ["x"], b.intermediate("A", 256))
    b.intermediate("B", 512)
    b.view("v", "B", 256)
    b.node("n", "RELU", ["A"], "v", inplace={"v": "A"})
    b.node("m", "FILL", [], "B")
    b.node("q", "UNARY", ["B"], b.output("y", 256))
    return b.build()


def test_inplace_exception_needs_the_producer_of_outs_root():
    """Rule 3's exception is for the node that produces out's *root*: ``n`` writes only a view of ``B``
    (whose producer ``m`` runs later), so ``A`` and ``B`` may not share bytes. (Mutant: verify's
    in-place pairs taken from any node that lists the pair.)"""
    g = _inplace_into_a_view_of_a_later_root()
    doc = memplan.plan(g, memplan.serial_schedule(g), solver="greedy").to_dict()
    memplan.verify(g, doc)
    doc = copy.deepcopy(doc)
    e = {t["id"]: t for t in doc["tensors"]}
    e["B"]["offset"] = e["v"]["offset"] = e["A"]["offset"]
    assert [r for r, _ in findings(g.to_dict(), doc)] == [3]
    expect_unsafe(g, doc, 3, "A", "B")


def test_lifetimes_offer_no_inplace_pair_to_a_node_that_writes_only_a_view_of_outs_root():
    """The planner's side of the same rule: ``compute_lifetimes`` offers ``(A, B)`` for sharing only when
    the in-place node produces ``B`` itself, and no solver puts them together. (Mutant: lifetimes'
    in-place pairs taken from any node that lists the pair: plan() then failed verification.)"""
    g = _inplace_into_a_view_of_a_later_root()
    hb = memplan.build_happens_before(g, memplan.serial_schedule(g))
    assert compute_lifetimes(g, hb).compatible == ()
    for solver in ("greedy", "size", "ggml", "auto"):
        offs = memplan.plan(g, solver=solver).offsets()
        assert offs["A"] + 256 <= offs["B"] or offs["B"] + 512 <= offs["A"], solver


def test_inplace_through_a_view_of_the_input_is_honoured_and_verified():
    """``n`` writes ``B`` in place over ``av``, a view of all of ``A``: the pair is one of roots, so every
    solver puts ``B`` on ``A`` (arena = bound = 768, where 1024 without the pair) and the verifier accepts
    it. (Mutants: the pair's input taken per tensor, not per root, in lifetimes (never shares, bound 1024;
    otherwise only a randomised property test noticed) or in verify (refuses the plan).)"""
    b = GraphBuilder("inplace_through_view")
    b.input("x", 256)
    b.node("p", "UNARY", ["x"], b.intermediate("A", 512))
    b.view("av", "A", 512)
    b.node("n", "RELU", ["av"], b.intermediate("B", 512), inplace={"B": "av"})
    b.node("q", "UNARY", ["B"], b.output("y", 256))
    g = b.build()
    for solver in ("greedy", "size", "ggml", "auto"):
        plan = memplan.plan(g, solver=solver)
        doc = plan.to_dict()
        assert plan.offsets()["B"] == plan.offsets()["A"], solver
        assert doc["arena_bytes"] == doc["lower_bound_bytes"] == 768, solver
        assert findings(g.to_dict(), doc) == []


@pytest.mark.parametrize("last", ["reads", "writes"])
def test_a_view_access_is_an_access_of_its_root(last):
    """``X``'s last access is a node that only reads (or only writes) ``xv``, a view of ``X``: that access is
    one of ``X``'s root, so ``Y``, used between ``X``'s producer and it, may not take ``X``'s bytes. (Mutants:
    verify's rule 3 mapping view reads, or view writes, to the view instead of its root; only randomised
    oracle comparisons noticed, and not on every run.)"""
    b = GraphBuilder(f"view_{last}")
    b.input("x", 256)
    b.node("p", "UNARY", ["x"], b.intermediate("X", 512))
    b.view("xv", "X", 256, 256)
    b.node("q", "UNARY", ["x"], b.intermediate("Y", 256))
    b.node("r", "UNARY", ["Y"], b.output("y", 256))
    if last == "reads":
        b.node("s", "UNARY", ["xv"], b.output("z", 256))
    else:
        b.node("s", "SET_ROWS", ["x"], "xv")
    g = b.build()
    doc = memplan.plan(g, memplan.serial_schedule(g), solver="greedy").to_dict()
    memplan.verify(g, doc)
    e = {t["id"]: t for t in doc["tensors"]}
    e["Y"]["offset"] = e["X"]["offset"]
    assert [r for r, _ in findings(g.to_dict(), doc)] == [3]
    expect_unsafe(g, doc, 3, "X", "Y")


@pytest.mark.parametrize("offsets", [[0, 1], [1, 0]], ids=["after", "before"])
def test_check_solution_refuses_a_one_byte_overlap_of_live_buffers(offsets):
    """Two buffers live at once overlapping by one byte: the interval sweep must see it whichever of them
    it meets first. (Mutants: ``>`` / ``<`` in ``interval_collision`` off by one byte; the random sweep
    test in test_solver_budgets missed the first and caught the second only by chance.)"""
    def problem(lower, upper):
        return BufferProblem(sizes=np.array([2, 2]), lower=np.array(lower), upper=np.array(upper))

    def solution(offs):
        return Solution(np.array(offs, dtype=np.int64), max(offs) + 2, "hand")

    with pytest.raises(memplan.SolverError, match="overlapped conflicting buffers"):
        check_solution(problem([0, 0], [2, 2]), solution(offsets))
    check_solution(problem([0, 0], [2, 2]), solution([0, 2]))   # touching is no overlap
    check_solution(problem([0, 1], [1, 2]), solution([0, 0]))   # nor is sharing in turn
