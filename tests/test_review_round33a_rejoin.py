"""Review round 33a: the in-place rejoin pass (``solvers.rejoin``) joins a pair only where its *tensors* would then
share an address.

An in-place pair whose input (or output) is a view at an offset inside its root is a pair of root buffers to the
solver. Moving the output's root onto the input's root does not put the output over its input: it overlaps it
shifted (or not at all), which a runtime must stage (a copy per call: runtime.kernels.registry's
``_stage_shifted_inplace``) where the plan had none before: the pass made the plan worse while counting a join.
"""

from __future__ import annotations

import numpy as np
from problems import ordered_inplace_chain

import memplan
from memplan.lifetimes import buffer_problem
from memplan.problem import BufferProblem, Solution, find_collision
from memplan.solvers.decompose import subproblem
from memplan.solvers.rejoin import rejoin_inplace


def _view_inplace_graph() -> memplan.Graph:
    """``t`` (256 bytes) may be written over ``v``: the upper half of input ``x`` (512 bytes)."""
    b = memplan.GraphBuilder("g", alignment=8)
    b.input("x", 512)
    b.view("v", "x", 256, 256)
    b.node("n0", "OP", ["v"], [b.tensor("t", 256, kind="output")], inplace={"t": "v"})
    return b.build()


def _problem(g: memplan.Graph):
    return buffer_problem(g, memplan.build_happens_before(g, memplan.serial_schedule(g)))


def test_a_pair_over_a_view_at_an_offset_is_not_moved_onto_its_root():
    g = _view_inplace_graph()
    p = _problem(g)
    x, t = p.names.index("x"), p.names.index("t")
    assert (t, x) in p.inplace   # the pair is a root pair to the solver
    off = np.zeros(2, dtype=np.int64)
    off[x], off[t] = 0, 512      # apart; x's bytes are free for t
    got = rejoin_inplace(p, Solution(off, 768, "size"))
    # before the fix: t moved to 0, [0, 256), beside v at [256, 512): "rejoined", not in place at all
    assert got is None


def test_a_pair_at_offset_zero_is_still_joined():
    b = memplan.GraphBuilder("g", alignment=8)
    b.input("x", 512)
    b.view("v", "x", 256, 0)
    b.node("n0", "OP", ["v"], [b.tensor("t", 256, kind="output")], inplace={"t": "v"})
    p = _problem(b.build())
    x, t = p.names.index("x"), p.names.index("t")
    off = np.zeros(2, dtype=np.int64)
    off[x], off[t] = 0, 512
    got = rejoin_inplace(p, Solution(off, 768, "size"))
    assert got is not None and got.offsets[t] == got.offsets[x] == 0


def test_the_shifted_pairs_follow_a_subproblem():
    p = _problem(_view_inplace_graph())
    sub = subproblem(p, np.array([1, 0]))
    x, t = sub.names.index("x"), sub.names.index("t")
    # (round 51: t lies exactly on v with x's root 256 bytes before t's: a pair with a shift, no longer inexact)
    assert sub.meta["inplace_shift"] == {(t, x): 256} and not sub.meta["inplace_inexact"]


def test_the_default_plan_never_puts_the_output_at_its_root_but_beside_its_view():
    g = _view_inplace_graph()
    off = memplan.plan(g).offsets()
    o, v = off["t"], off["v"]
    assert o == v or o + 256 <= v or v + 256 <= o


def test_a_pair_of_different_sizes_is_not_joined():
    """An ADD's output [B, H] over its repeated operand b [H]: joined, the GPU runtime must copy b to scratch
    first (threads j + k*nb read b[j] after thread j wrote y[j]); apart it costs nothing."""
    b = memplan.GraphBuilder("g", alignment=8)
    b.input("x", 1024)
    b.input("b", 256)
    b.node("add", "ADD", ["x", "b"], [b.tensor("y", 1024, kind="output")], inplace={"y": "b"})
    p = _problem(b.build())
    assert p.meta["inplace_inexact"] == frozenset({(p.names.index("y"), p.names.index("b"))})
    assert p.names == ("x", "b", "y")
    off = np.array([0, 1024, 1280], dtype=np.int64)   # y apart; b's bytes free for it once the ADD reads them
    assert rejoin_inplace(p, Solution(off, 2304, "size")) is None




def test_the_pass_tests_its_candidates_as_arrays(monkeypatch):
    """Each candidate was one Python ``conflicts`` call: quadratic in a problem REJOIN_WORK lets through
    (2,000 buffers: 8 s; 10,000: minutes), where the bound promised a tenth of a second."""
    p, sol = ordered_inplace_chain(200)
    calls = []
    real = BufferProblem.conflicts
    monkeypatch.setattr(BufferProblem, "conflicts", lambda self, i, j: calls.append(1) or real(self, i, j))
    got = rejoin_inplace(p, sol)
    assert got is not None and got.info["rejoined"] == 100
    assert find_collision(p, got.offsets) is None
    assert len(calls) == 0

