"""Round 38 scale: the pair sweeps of greedy and size fit a buffer with many placed neighbours in bulk.

Why: on a multi-stream problem listed pair by pair (below the solvers' pair caps), each buffer's blocks were
sorted and walked in Python (``placement.gaps``), ~1 us a pair: ``wide_graph(600)`` on two streams handed
1.26M blocks to ``gaps`` (79,200 at 150: quadratic), most of such a plan's time. Pinned by counting the
blocks ``gaps`` walks (no timing), and the plans are checked to be the same bytes with the bulk path off.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import memplan
from memplan.benchmarks.scale import chains_graph, wide_graph
from memplan.solvers import greedy, placement, size


def test_fit_arrays_is_the_python_fit():
    """``fit_arrays`` gives ``best_fit`` / ``first_fit``'s offset on random blocks (overlapping, touching, unaligned
    ends, blocks of no bytes, ties in start)."""
    rng = random.Random(38)
    for _ in range(3000):
        al = rng.choice([1, 2, 16, 256])
        blocks = []
        for _ in range(rng.randint(0, 30)):
            s = rng.randrange(0, 3000) // al * al if rng.random() < 0.7 else rng.randrange(0, 3000)
            blocks.append((s, s + rng.randint(0, 500)))
        need = rng.randint(1, 400)
        starts = np.array([b[0] for b in blocks], dtype=np.int64)
        ends = np.array([b[1] for b in blocks], dtype=np.int64)
        assert placement.fit_arrays(starts, ends, need, al, best=True) == placement.best_fit(list(blocks), need, al)
        assert placement.fit_arrays(starts, ends, need, al, best=False) == placement.first_fit(list(blocks), need, al)


def _walked(monkeypatch, graph, **options) -> list[int]:
    """The length of every block list ``placement.gaps`` walked while planning ``graph``."""
    lengths: list[int] = []
    walk = placement.gaps

    def counted(blocks, alignment):
        lengths.append(len(blocks))
        return walk(blocks, alignment)

    monkeypatch.setattr(placement, "gaps", counted)
    memplan.plan(graph, **options)
    return lengths


@pytest.mark.parametrize("solver", ["greedy", "size"])
def test_dense_pair_sweep_is_linear_in_blocks_walked(monkeypatch, solver):
    """Quadrupling the wide node's outputs (all live together, on two streams) leaves the blocks walked in
    Python at most ~4x (they were 16x: every buffer walked every placed neighbour), and no buffer walks
    ``BULK_BLOCKS`` or more of them."""
    small = _walked(monkeypatch, wide_graph(150), streams=2, solver=solver)
    large = _walked(monkeypatch, wide_graph(600), streams=2, solver=solver)
    assert max(small + large, default=0) < getattr(placement, "BULK_BLOCKS", 96)
    assert sum(large) <= 4.5 * max(sum(small), 100)


@pytest.mark.parametrize("graph, options", [
    (lambda: wide_graph(200), {"streams": 2}),
    (lambda: wide_graph(200), {"streams": 2, "solver": "size"}),
    (lambda: wide_graph(200), {"streams": 2, "solver": "greedy"}),
    (lambda: chains_graph(150), {"devices": 2}),
])
def test_bulk_fit_keeps_the_plan(monkeypatch, tmp_path, graph, options):
    """The same plan file, byte for byte, with the bulk path and with it off (every buffer walked in Python)."""
    g = graph()
    memplan.save_plan(memplan.plan(g, **options), str(tmp_path / "bulk.json"))
    for module in (greedy, size):
        monkeypatch.setattr(module, "BULK_BLOCKS", 1 << 60)
    memplan.save_plan(memplan.plan(g, **options), str(tmp_path / "python.json"))
    assert (tmp_path / "bulk.json").read_bytes() == (tmp_path / "python.json").read_bytes()


def test_bulk_arrays_refuses_sizes_past_int64():
    """Sizes near int64's range keep the Python walk (numpy's rounding of ends could overflow there)."""
    assert placement.bulk_arrays(np.array([1, 2], dtype=np.int64)) is not None
    assert placement.bulk_arrays(np.array([1, 1 << 62], dtype=object)) is None
    assert placement.bulk_arrays(np.array([1, 1 << 70], dtype=object)) is None
