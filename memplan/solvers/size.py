"""Greedy by size — TFLite's planner generalised from time intervals to any conflict relation.

Largest buffers first, each at the lowest aligned offset that collides with no already-placed
buffer it conflicts with. Big tensors placed early leave small ones to fill the holes, which often
beats issue-order best-fit on graphs with a few dominant activations.

The blocks come from the conflicting pairs, listed in bulk; on interval problems with many buffers
live at once from a ``WindowFit`` (the same placements, without listing pairs); on multi-stream
problems too dense to list, from the intervals alone (``dense_route``).
"""

from __future__ import annotations

import numpy as np

from .._gc import paused
from ..problem import BufferProblem, Solution, Status, arena_of
from .exact_pairs import ExactOrApart, inplace_targets, over_input
from .options import SolveOptions
from .placement import (
    BULK_BLOCKS,
    ArenaOver,
    CappedOffsets,
    WindowFit,
    bulk_arrays,
    bulk_ok,
    first_fit,
    fit_arrays,
    fits_at,
    fits_at_arrays,
)

#: interval problems with more overlapping pairs than this per buffer use ``WindowFit``
DENSE_OVERLAPS = 64
#: multi-stream problems with more overlapping pairs than this (and 64 per buffer) plan against the
#: intervals alone
MAX_HB_PAIRS = 4_000_000
#: above this many conflicting pairs the adjacency stays in numpy arrays
LIST_PAIRS = 4_000_000


def dense_route(problem: BufferProblem) -> str:
    """How greedy-by-size finds each buffer's blocks: ``"pairs"`` (the conflicting pairs, listed in
    bulk), ``"windows"`` (interval problems with many buffers live at once: ``WindowFit``, the same
    placements) or ``"superset"`` (multi-stream problems whose overlapping pairs would not fit in
    memory: ``WindowFit`` over the intervals alone, which contain every conflict, so the packing is
    safe but may be larger than the HB-filtered one)."""
    n = len(problem)
    if n == 0 or not bool((problem.upper > problem.lower).all()):
        return "pairs"
    pairs = problem.overlap_count()
    if problem.order is None and pairs > DENSE_OVERLAPS * n:
        return "windows"
    if problem.order is not None and pairs > max(MAX_HB_PAIRS, DENSE_OVERLAPS * n):
        return "superset"
    return "pairs"


@paused
def solve(problem: BufferProblem, options: SolveOptions = SolveOptions(), *, over: int | None = None) -> Solution:
    """``over``: raise ``placement.ArenaOver`` once the arena is known to exceed that many bytes (for
    ``solvers.heuristics_over``: the same placements, stopped at the first buffer that ends past it)."""
    n = len(problem)
    sizes = problem.sizes.tolist()
    offsets = [0] * n if over is None else CappedOffsets(n, sizes, over)
    order = np.lexsort((np.arange(n), problem.lower, -problem.sizes)).tolist()
    if dense_route(problem) != "pairs":
        _place_windows(problem, order, sizes, offsets)
    else:
        _place_pairs(problem, order, sizes, offsets)
    off = np.asarray(offsets, dtype=np.int64)
    arena = arena_of(problem, off)
    if over is not None and arena > over:
        raise ArenaOver(-1)
    return Solution(off, arena, "size", Status.HEURISTIC, int(problem.lower_bound or 0))


def shifted_targets(problem: BufferProblem) -> dict[int, tuple[int, int]]:
    """The in-place outputs whose exact place lies off their input root's offset (``exact_pairs.inplace_targets``
    with a shift: an output over a view at an offset in its root), with their input and shift. A first fit that
    may overlap its partner anywhere put such an output at the lowest free bytes, over its input's root off its
    place, for the solve to move it or solve again with the pair apart (``bench scale --inplace 20000
    --inplace-shape views``: twice the bound), and ``rejoin`` never joins these pairs afterwards: each is tried at its
    exact place first (once its input is placed), else placed clear of its partners; the others are placed as ever
    (``rejoin`` joins them where the arena allows)."""
    return {o: t for o, t in inplace_targets(problem).items() if t[1]}


def _partners(problem: BufferProblem, targets: dict[int, tuple[int, int]]) -> dict[int, list[int]]:
    """The ``compatible`` partners of each output of ``targets``."""
    out: dict[int, list[int]] = {}
    for a, b in sorted(problem.compatible):
        if a in targets:
            out.setdefault(a, []).append(b)
        if b in targets:
            out.setdefault(b, []).append(a)
    return out


def _exact_at(targets: dict[int, tuple[int, int]], i: int, placed, sizes: list[int], offsets: list[int]) -> int | None:
    """``i``'s exact place over its placed input (``shifted_targets``), where it lies within that input's root."""
    src = targets.get(i)
    if src is None or not placed[src[0]]:
        return None
    return over_input(src, sizes[i], sizes, offsets)


def _place_pairs(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int]) -> None:
    """First fit of each buffer among its placed conflicting buffers, listed from the conflict graph; a buffer with
    ``BULK_BLOCKS`` or more neighbours in numpy (``fit_arrays``: the same offset, without a Python step per
    neighbour, which made a dense multi-stream problem below the pair caps cost ~1 us a pair)."""
    n = len(sizes)
    bounds_arr, flat_arr = problem.conflict_csr(as_lists=False)   # (the lists from the arrays: not back again)
    # (counted off the CSR, each pair in it twice: the pairs listed first to take their length were listed again for
    # the CSR where the ledger could not keep them, over 5 million pairs)
    many = len(flat_arr) > 2 * LIST_PAIRS
    bounds, flat = bounds_arr.tolist(), flat_arr if many else flat_arr.tolist()
    bulk = bulk_arrays(problem.sizes)
    placed = [False] * n
    placed_arr = np.zeros(n, dtype=bool)
    targets = shifted_targets(problem)
    mates = _partners(problem, targets)
    guard = ExactOrApart.of(problem, order, best=False)
    for i in order:
        if sizes[i] == 0:
            placed[i] = placed_arr[i] = True
            continue
        at = _exact_at(targets, i, placed, sizes, offsets) if targets else None
        lo, hi = bounds[i], bounds[i + 1]
        if bulk is not None and hi - lo >= BULK_BLOCKS:
            off_arr, size_arr = bulk
            nbrs = flat_arr[lo:hi]
            nbrs = nbrs[placed_arr[nbrs]]
            starts = off_arr[nbrs]
            ends = starts + size_arr[nbrs]
            if bulk_ok(ends):
                if at is None or not fits_at_arrays(starts, ends, at, sizes[i]):
                    if i in mates:   # (off its exact place its partners block it too)
                        js = np.asarray([j for j in mates[i] if placed[j]], dtype=np.int64)
                        starts = np.concatenate([starts, off_arr[js]])
                        ends = np.concatenate([ends, off_arr[js] + size_arr[js]])
                    at = fit_arrays(starts, ends, sizes[i], problem.alignment, best=False)
                offsets[i] = off_arr[i] = at if guard is None else guard.mend(i, at, offsets)
                placed[i] = placed_arr[i] = True
                continue
        nbrs = flat[lo:hi]
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in (nbrs.tolist() if many else nbrs) if placed[j]]
        if at is None or not fits_at(blocks, at, sizes[i]):
            blocks += [(offsets[j], offsets[j] + sizes[j]) for j in mates.get(i, ()) if placed[j]]
            at = first_fit(blocks, sizes[i], problem.alignment)
        offsets[i] = at if guard is None else guard.mend(i, at, offsets)
        if bulk is not None:
            bulk[0][i] = offsets[i]
        placed[i] = placed_arr[i] = True


def _place_windows(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int]) -> None:
    """The same placements on interval problems with many buffers live at once: a ``WindowFit``
    finds the first fit among the placed buffers overlapping each one without listing them; a buffer
    with in-place partners (which it may overlap) leaves their blocks out of the query."""
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    partners: dict[int, list[int]] = {}
    for a, b in sorted(problem.compatible):
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    fit = WindowFit(lower + upper, problem.alignment, counted=bool(partners))
    placed = [False] * len(sizes)
    targets = shifted_targets(problem)
    guard = ExactOrApart.of(problem, order, best=False)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        li, ui = lower[i], upper[i]
        if i in partners:
            without = [(lower[j], upper[j], offsets[j], offsets[j] + sizes[j]) for j in partners[i] if placed[j]]
            at = _exact_at(targets, i, placed, sizes, offsets) if targets else None
            if at is not None and fit.first_fit(li, ui, size, without, start=at) == at:   # (clear from ``at`` on)
                offsets[i] = at
            elif i in targets:   # off its exact place its partners block it (``shifted_targets``)
                offsets[i] = fit.first_fit(li, ui, size)
            else:
                offsets[i] = fit.first_fit(li, ui, size, without)
        else:
            offsets[i] = fit.first_fit(li, ui, size)
        if guard is not None:
            offsets[i] = guard.mend(i, offsets[i], offsets)
        fit.add(li, ui, offsets[i], offsets[i] + size)
        placed[i] = True
