"""An in-place output shares its input's root only exactly over the input tensor itself (round 51).

Why: the contract lets a node with ``inplace {out: in}`` write ``out`` over any byte of ``in``'s root, and the
solvers took that literally: for ``n`` reading the two halves ``xa = X[8, 16)`` and ``xb = X[0, 8)`` with
``inplace {Y: xa}``, every solver put ``Y`` at offset 0, over ``xb``, which ``n`` still reads (a kernel writing ``Y``
over ``xa`` element by element races there; the ATen executor's copy path even copied ``xa`` over ``xb`` first). And
an exact pair's output could land shifted over its input. The plan is still one the contract calls safe (the
verifier is unchanged); the planner keeps such pairs apart (``solvers.exact_pairs``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import graphs

import memplan
from memplan.plan import plan_graph
from memplan.problem import BufferProblem, Solution
from memplan.solvers import SolveOptions, solve
from memplan.solvers.exact_pairs import shifted_pairs, strict_pairs
from memplan.solvers.rejoin import rejoin_inplace

SOLVERS = ("auto", "greedy", "size", "ggml", "search", "cpsat")


def xa_xb(alignment: int = 1) -> memplan.Graph:
    """X = [xb | xa]; n reads both and writes Y in place over xa."""
    b = memplan.GraphBuilder("xaxb", alignment=alignment)
    b.input("X", 16)
    b.view("xb", "X", 8, 0, kind="input")
    b.view("xa", "X", 8, 8, kind="input")
    b.node("n", "ADD", ["xa", "xb"], [b.output("Y", 8)], inplace={"Y": "xa"})
    return b.build()


def inplace_faults(graph: memplan.Graph, plan) -> list[str]:
    """Each in-place pair whose roots share bytes anywhere but the output's own, lying on the input from its first
    byte (the same size, or smaller)."""
    off = plan.offsets()
    dev = dict(zip((t.id for t in graph.tensors), plan.tensor_devices)) if plan.devices > 1 else None
    root = {t.id: graph.tensors[graph.root[k]].id for k, t in enumerate(graph.tensors)}
    size = {t.id: t.size for t in graph.tensors}
    bad = []
    for node in graph.nodes:
        for o, i in node.inplace:
            ro, ri = root[o], root[i]
            if ro == ri or off[ro] is None or off[ri] is None or not size[ro] or not size[ri]:
                continue
            if dev is not None and dev[ro] != dev[ri]:
                continue   # arenas of two devices
            lo, hi = max(off[ro], off[ri]), min(off[ro] + size[ro], off[ri] + size[ri])
            if lo >= hi:
                continue   # apart
            inside = off[o] <= lo and hi <= off[o] + size[o]          # the roots meet in the output's bytes only
            exact = off[o] == off[i] and size[o] <= size[i]            # which lie at the input's first byte, in it
            if not (inside and exact):
                bad.append(f"{node.id}: {o}@{off[o]}+{size[o]} (root {ro}) over {i}@{off[i]}+{size[i]} "
                           f"(root {ri}@{off[ri]}+{size[ri]})")
    return bad


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_output_never_lands_on_the_other_view_the_node_reads(solver):
    g = xa_xb()
    kw = {"time_limit": 2} if solver in ("search", "cpsat") else {}
    p = memplan.plan(g, solver=solver, **kw)
    off = p.offsets()
    assert not inplace_faults(g, p), off
    assert off["Y"] == off["xa"] == 8 and p.arena_bytes == 16   # Y over xb (offset 0) was the old plan
    memplan.verify(g, p)


def test_an_exact_pair_is_still_joined():
    b = memplan.GraphBuilder("exact", alignment=1)
    b.input("x", 8)
    b.node("n", "RELU", ["x"], [b.output("y", 8)], inplace={"y": "x"})
    g = b.build()
    for solver in SOLVERS:
        p = memplan.plan(g, solver=solver)
        assert p.offsets()["y"] == p.offsets()["x"] == 0 and p.arena_bytes == 8, solver


def test_views_of_larger_roots_at_one_offset_are_not_joined():
    # o = B[0, 8) of 16, i = A[0, 8) of 16: roots joined at one offset would put B[8, 16) (written by n) over A[8, 16),
    # which n reads as ``a2``
    b = memplan.GraphBuilder("wide", alignment=1)
    b.input("A", 16)
    b.view("a1", "A", 8, 0, kind="input")
    b.view("a2", "A", 8, 8, kind="input")
    b.tensor("B", 16, "output")
    b.view("b1", "B", 8, 0, kind="output")
    b.node("n", "OP", ["a1", "a2"], ["B", "b1"], inplace={"b1": "a1"})
    g = b.build()
    for solver in SOLVERS:
        p = memplan.plan(g, solver=solver)
        assert not inplace_faults(g, p), (solver, p.offsets())


def test_shifted_partners_are_solved_again_apart():
    # two 16-byte partners (in [0, 2), out [1, 3)) whose packing overlaps them 8 bytes off: found and kept apart
    p = BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 1]), upper=np.array([2, 3]),
                      compatible=frozenset({(0, 1)}), inplace=((1, 0),))
    assert shifted_pairs(p, [0, 8]) == [(0, 1)]
    assert shifted_pairs(p, [0, 0]) == shifted_pairs(p, [0, 16]) == []
    for solver in SOLVERS:
        sol = solve(p, solver, SolveOptions(time_limit=1) if solver in ("search", "cpsat") else SolveOptions())
        assert not shifted_pairs(p, sol.offsets), solver


@pytest.mark.parametrize("solver, sizes, lower, upper, pair", [
    # found by a seeded hunt: size's packing put the 16-byte partners 5 and 7 at 32 and 24 (8 bytes over each other),
    # auto's the partners 0 and 7 at 64 and 56
    ("size", [8, 8, 24, 8, 8, 16, 8, 16, 32], [6, 5, 3, 2, 0, 1, 1, 4, 1], [10, 9, 6, 3, 4, 5, 3, 8, 2], (7, 5)),
    ("auto", [16, 24, 32, 16, 32, 32, 16, 16, 32], [4, 1, 1, 5, 3, 3, 6, 3, 5], [7, 5, 3, 8, 7, 4, 9, 5, 9], (0, 7)),
])
def test_a_packing_that_shifts_an_exact_pair_is_solved_again(solver, sizes, lower, upper, pair):
    o, i = pair
    p = BufferProblem(sizes=np.array(sizes), lower=np.array(lower), upper=np.array(upper),
                      compatible=frozenset({(min(pair), max(pair))}), inplace=((o, i),))
    sol = solve(p, solver)
    assert not shifted_pairs(p, sol.offsets), sol.offsets


def test_inexact_pairs_become_conflicts_for_the_solvers():
    p = BufferProblem(sizes=np.array([16, 8]), lower=np.array([0, 1]), upper=np.array([2, 3]),
                      compatible=frozenset({(0, 1)}), inplace=((1, 0),), meta={"inplace_inexact": frozenset({(1, 0)})})
    s = strict_pairs(p)
    assert not s.compatible and not s.inplace and s.conflicts(0, 1)
    sol = solve(p, "auto")
    assert sol.arena == 24


def test_a_warm_start_of_the_contract_problem_is_not_refused():
    # the caller's packing overlaps an inexact pair (the contract allows it): the solve starts without it
    p = BufferProblem(sizes=np.array([16, 8]), lower=np.array([0, 1]), upper=np.array([2, 3]),
                      compatible=frozenset({(0, 1)}), inplace=((1, 0),), meta={"inplace_inexact": frozenset({(1, 0)})})
    warm = Solution(np.array([0, 4]), 16, "caller")
    for solver in ("search", "cpsat"):
        sol = solve(p, solver, SolveOptions(time_limit=1, warm_start=warm))
        assert sol.arena == 24


@st.composite
def views_inplace(draw) -> memplan.Graph:
    """Roots split into views at offsets; nodes read several views and write outputs (roots, or views of a larger
    root) in place over one of them, of the same size or not."""
    align = draw(st.sampled_from([1, 4, 8]))
    b = memplan.GraphBuilder("g", alignment=align)
    readable: list[tuple[str, int]] = []
    for k in range(draw(st.integers(1, 3))):
        size = draw(st.sampled_from([8, 16, 24, 32]))
        x = b.input(f"in{k}", size)
        readable.append((x, size))
        for j in range(draw(st.integers(0, 3))):
            vs = draw(st.sampled_from([4, 8, 16]).filter(lambda v, s=size: v <= s))
            vo = draw(st.integers(0, size - vs))
            readable.append((b.view(f"in{k}v{j}", x, vs, vo, kind="input"), vs))
    for n in range(draw(st.integers(1, 7))):
        ins = sorted(set(draw(st.lists(st.sampled_from(readable), min_size=1, max_size=3))))
        target = draw(st.sampled_from(ins))
        size = draw(st.sampled_from([target[1], target[1], 4, 8, 16]))
        kind = "output" if draw(st.integers(0, 3)) == 0 else "intermediate"
        if draw(st.booleans()):
            out = b.tensor(f"t{n}", size, kind)
            outs = [out]
        else:   # a view of a larger root the node produces whole
            extra = draw(st.sampled_from([4, 8]))
            at = draw(st.sampled_from([0, extra]))
            b.tensor(f"r{n}", size + extra, kind)
            out = b.view(f"t{n}", f"r{n}", size, at, kind=kind)
            outs = [f"r{n}", out]
            readable.append((f"r{n}", size + extra))
        b.node(f"n{n}", "OP", [t for t, _ in ins], outs, inplace={out: target[0]} if draw(st.booleans()) else None)
        readable.append((out, size))
    return b.build()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=st.one_of(views_inplace(), graphs()))
def test_every_plan_puts_in_place_outputs_exactly_over_their_inputs_or_apart(g):
    for solver in SOLVERS:
        for streams in [None] if solver == "ggml" else [None, "auto"]:   # (ggml: serial only)
            kw = {"time_limit": 0.3} if solver in ("search", "cpsat") else {}
            p = memplan.plan(g, solver=solver, streams=streams, **kw)
            assert not inplace_faults(g, p), (solver, streams, p.offsets())
            memplan.verify(g, p)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=views_inplace())
def test_split_plans_keep_in_place_outputs_exact_too(g):
    try:
        planned = plan_graph(g, devices=2)
    except memplan.errors.ScheduleError:   # too few stages for two devices
        assume(False)
    assert not inplace_faults(planned.graph, planned.plan), planned.plan.offsets()


def test_rejoin_does_not_shift_a_pair_over_another_partner():
    # i -> o -> q in place, r beside q only; q sits at 8, o apart at 24: moving o onto i (0) put it 8 bytes under q,
    # and q could not follow (r holds [0, 8))
    p = BufferProblem(sizes=np.array([16, 16, 16, 8]), lower=np.array([0, 1, 2, 3]), upper=np.array([2, 3, 4, 4]),
                      compatible=frozenset({(0, 1), (1, 2)}), inplace=((1, 0), (2, 1)))
    sol = Solution(np.array([0, 24, 8, 0]), 40, "size")
    assert not shifted_pairs(p, sol.offsets)
    got = rejoin_inplace(p, sol)
    assert got is not None and not shifted_pairs(p, got.offsets), got.offsets
    assert got.offsets.tolist() == [0, 24, 24, 0]


def test_the_llama_8b_step_keeps_its_arena_with_its_residual_outputs_moved_off_their_inputs():
    # size's packing put each layer's residual ADD output (``lN.out``) a few bytes into its input; 31 of them were
    # moved into free bytes afterwards (a re-solve gave another heuristic's packing). Since round 53 size places them
    # clear of their inputs itself (``exact_pairs.ExactOrApart``): no repair, the same arena and the same 161 pairs
    # joined exactly
    from runtime.models import llama as L

    g = L.build_graph(L.config("8b"), "runtime")
    p = memplan.plan(g)
    assert p.arena_bytes == 529408 and p.solver["name"] == "size" and "separated" not in p.solver
    assert not inplace_faults(g, p)
    off = p.offsets()
    assert sum(off[o] == off[i] for n in g.nodes for o, i in n.inplace) == 161


@pytest.mark.parametrize("solver", ["auto", "greedy", "size"])
def test_a_split_over_views_of_one_root_puts_each_output_exactly_on_its_view(solver):
    # ``bench scale --inplace views``: one node writes o_k in place over a_k = a[sum of sizes before k, ...); greedy
    # and size packed o_k a few bytes off a_k (o2, 1 KiB, went into x's freed bytes and shifted every later one)
    from memplan.benchmarks.scale import inplace_graph

    g = inplace_graph(40, "views")
    p = memplan.plan(g, solver=solver)
    assert not inplace_faults(g, p)
    off = p.offsets()
    assert all(off[o] == off[i] for n in g.nodes for o, i in n.inplace)
    assert p.arena_bytes == p.lower_bound_bytes
