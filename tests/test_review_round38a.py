"""Review of round 38's library merges (hostile, verifier, scale, docs): what the authors' tests left open.

- ``size``'s pair sweep listed the conflict graph as Python lists and, for its bulk fit, turned the whole list
  back into an array (``np.asarray(flat)``: up to 8M ints, ~0.7 s on a loaded 2-core VM at the pair cap), work
  ``conflict_csr(as_lists=False)`` had already done.
- A warm start of ragged rows as a numpy *object* array (``[0, 16]`` and ``[32]`` for three buffers) was still
  taken by its length (2 rows) and silently ignored; the same rows as a list are refused.
- docs/aten.md's list of ``compile``'s options had a sentence on ``torch.Size`` outputs spliced into it, between
  ``device=`` and ``return_views=True``.
- The bulk fits of greedy and size against the Python walk on random multi-stream graphs with in-place pairs,
  views and fused groups (the authors compared wide graphs without in-place pairs only); the verifier's early
  stop on stray stream ids never hides an unsafe plan.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need
from strategies import fit_devices, graphs

import memplan
from memplan.solvers import greedy, placement, size

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _NoListToArray:
    """numpy, but ``asarray`` of a long Python list fails: the sweep must not turn its lists back into arrays."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def asarray(a, *args, **kwargs):
        if isinstance(a, list) and len(a) > 1000:
            raise AssertionError(f"np.asarray of a Python list of {len(a)} items")
        return np.asarray(a, *args, **kwargs)


def test_size_pair_sweep_lists_the_conflicts_once(monkeypatch):
    """``plan(wide_graph(200), streams=2, solver="size")``: the conflict lists are made from the arrays, not the
    arrays from the lists; the plan is the same."""
    from memplan.benchmarks.scale import wide_graph

    g = wide_graph(200)
    want = memplan.plan(g, streams=2, solver="size").to_dict()
    monkeypatch.setattr(size, "np", _NoListToArray())
    assert memplan.plan(g, streams=2, solver="size").to_dict() == want


def _three_buffers():
    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16, 8]), lower=np.array([0, 0, 0]), upper=np.array([3, 3, 1]),
                         alignment=8)


def _object_rows(*rows):
    out = np.empty(len(rows), dtype=object)
    for k, r in enumerate(rows):
        out[k] = r
    return out


@pytest.mark.parametrize("offsets", [_object_rows([0, 16], [32]), _object_rows(np.array([0, 16]), np.array([32])),
                                     _object_rows((0, 16, 32),)], ids=["lists", "arrays", "one-tuple"])
def test_a_warm_start_of_object_rows_is_refused(offsets):
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    with pytest.raises(memplan.SolverError, match="^warm_start is no packing of this problem: its offsets "):
        solve(_three_buffers(), "search", SolveOptions(warm_start=Solution(offsets, 40, "mine"), time_limit=0.5))


def test_a_flat_object_warm_start_is_still_taken():
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    warm = Solution(np.array([0, 16, 32], dtype=object), 40, "mine")
    assert solve(_three_buffers(), "search", SolveOptions(warm_start=warm, time_limit=0.5)).arena == 40


def test_aten_docs_option_list_is_one_list():
    """``compile``'s options are listed in one sentence: ``device=``, then ``return_views=True``."""
    text = " ".join((ROOT / "docs" / "aten.md").read_text().split())
    assert "`device=`, `return_views=True` (outputs are the arena's own views" in text
    assert re.search(r"An output `x\.shape` .* is a `torch\.Size`", text)


_OPTIONS = [{"streams": 2}, {"streams": 3, "solver": "greedy"}, {"streams": 2, "solver": "size"},
            {"streams": "auto"}, {"streams": 2, "fused_groups": True}, {"devices": 2, "streams": 2}]


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(graphs(max_nodes=24), st.sampled_from(_OPTIONS))
def test_bulk_fit_is_the_python_walk_on_random_graphs(g, options):
    """Every buffer with a neighbour placed in bulk (``BULK_BLOCKS`` 1) against none (the Python walk): the same
    plan, in-place pairs (greedy's ``fits_at_arrays``), views and fused groups included."""
    options = fit_devices(g, options)
    mp = pytest.MonkeyPatch()
    try:
        for module in (greedy, size):
            mp.setattr(module, "BULK_BLOCKS", 1)
        bulk = memplan.plan(g, **options).to_dict()
        for module in (greedy, size):
            mp.setattr(module, "BULK_BLOCKS", 1 << 60)
        walked = memplan.plan(g, **options).to_dict()
    finally:
        mp.undo()
    assert bulk == walked


@pytest.mark.parametrize("best", [True, False])
def test_fit_arrays_on_blocks_past_the_arena_and_large_alignment(best):
    """Blocks far apart, ends rounded by a 2**40 alignment, a buffer bigger than every gap: the Python fit."""
    rng = np.random.default_rng(38)
    for _ in range(300):
        al = int(rng.choice([1, 1 << 12, 1 << 40]))
        k = int(rng.integers(1, 12))
        starts = (rng.integers(0, 1 << 20, k) * al).astype(np.int64)
        ends = starts + rng.integers(0, 1 << 41, k)
        need = int(rng.integers(1, 1 << 42))
        fit = placement.best_fit if best else placement.first_fit
        blocks = list(zip(starts.tolist(), ends.tolist()))
        assert placement.fit_arrays(starts, ends, need, al, best=best) == fit(blocks, need, al)


def test_stray_streams_never_pass_the_verifier():
    """A plan whose order uses more stream ids than it declares is refused with a finding per stray id, here for a
    plan that also reads before its writer: since round 70 the other rules are judged beside the stray ids (each
    stray stream a stream of its own), so the reads before their writers are reported too."""
    from memplan import examples
    from memplan.verify import check

    g = examples.diamond()
    p = memplan.plan(g)
    doc = dataclasses.replace(p, order=tuple((nid, k) for k, (nid, _) in enumerate(reversed(p.order))))
    found = check(g, doc)   # (issued backwards, each node on a stream of its own: 4 ids, 1 declared)
    assert sum("outside 0..0" in msg for rule, msg in found if rule == 1) == 3
    assert any(rule == 2 and "reads 'ta' but its writer 'a' does not happen-before it" in msg for rule, msg in found)
    with pytest.raises(memplan.UnsafePlan, match=r"rule 1: node '[^']+' runs on stream \d, outside 0\.\.0"):
        memplan.verify(g, doc)


def test_weights_sharing_storage_are_found_without_comparing_every_pair(monkeypatch):
    """``from_torch`` of a module with many buffers compared each one's storage with every earlier one's
    (``_shared_weight``: 4,000 buffers took 2.8 s of a 4.1 s import, quadratic); a view of another is still one."""
    torch = need("torch")
    from torch.multiprocessing.reductions import StorageWeakRef

    k = 100   # (every pair compared: k(k-1)/2 = 4,950, 5x the bound; 300 took 3x the export time)

    class Many(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i in range(k):
                self.register_buffer(f"b{i}", torch.randn(4))
            self.register_buffer("v", self.b7[1:])

        def forward(self, x):
            for i in range(k):
                x = x + getattr(self, f"b{i}")
            return x[1:] * self.v

    ep = torch.export.export(Many(), (torch.randn(4),))
    compared = [0]
    eq = StorageWeakRef.__eq__

    def counted(self, other):
        compared[0] += 1
        return eq(self, other)

    monkeypatch.setattr(StorageWeakRef, "__eq__", counted)
    g = memplan.from_torch(ep)
    monkeypatch.undo()
    assert (g.tensor("b_v").view_of, g.tensor("b_v").view_offset) == ("b_b7", 4)
    assert compared[0] < 10 * k
