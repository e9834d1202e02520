"""Greedy best-fit in issue order — ggml's graph allocator, made safe for several streams.

ggml frees a block right after its last reader *in the serial order*. Here a block returns to the
pool for buffer ``i`` only if its owner does not conflict with ``i``: for multi-stream problems that
means every access of the owner happens-before every access of ``i`` (the problem's HB order), so a
reader still running on another stream keeps its bytes. In-place pairs (``problem.inplace``) take
the input's offset when the input is free for them and large enough.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..problem import BufferProblem, Solution, Status, arena_of
from .options import SolveOptions
from .placement import Occupancy, best_fit, fits_at


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    n = len(problem)
    sizes = problem.sizes.tolist()
    offsets = [0] * n
    inplace_of = {out: inp for out, inp in problem.inplace}
    order = problem.sweep_order().tolist()
    if problem.order is None:
        _sweep_intervals(problem, order, sizes, offsets, inplace_of)
    else:
        _sweep_conflicts(problem, order, sizes, offsets, inplace_of)
    off = np.asarray(offsets, dtype=np.int64)
    return Solution(off, arena_of(problem, off), "greedy", Status.HEURISTIC, int(problem.lower_bound or 0))


def _sweep_intervals(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                     inplace_of: dict[int, int]) -> None:
    """Interval conflicts: every live buffer blocks, so the live blocks are one ``Occupancy``.

    Blocks enter when placed and leave when their interval ends; an in-place partner (a compatible
    pair) leaves for the one query it may overlap. O(n log n) however many buffers are live at once.
    """
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = Occupancy(problem.alignment)
    active: list[tuple[int, int]] = []  # heap of (upper, i)
    live: set[int] = set()
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        li = lower[i]
        while active and active[0][0] <= li:
            j = heapq.heappop(active)[1]
            live.discard(j)
            occ.remove(offsets[j], offsets[j] + sizes[j])
        away = [j for j in partners.get(i, ()) if j in live]
        for j in away:
            occ.remove(offsets[j], offsets[j] + sizes[j])
        src = inplace_of.get(i)
        if src is not None and size <= sizes[src] and occ.fits_at(offsets[src], size):
            offsets[i] = offsets[src]
        else:
            offsets[i] = occ.best_fit(size)
        for j in away:
            occ.add(offsets[j], offsets[j] + sizes[j])
        occ.add(offsets[i], offsets[i] + size)
        live.add(i)
        heapq.heappush(active, (upper[i], i))


def _sweep_conflicts(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                     inplace_of: dict[int, int]) -> None:
    """HB-filtered conflicts: the blocks of each buffer are its conflicting buffers placed before it,
    which ``conflict_pairs`` lists in bulk (the live buffers its accesses are ordered with drop out)."""
    a, b = problem.conflict_pairs()  # a placed before b
    o = np.argsort(b, kind="stable")
    a, b = a[o], b[o]
    bounds = np.searchsorted(b, np.arange(len(sizes) + 1), side="left").tolist()
    earlier = a.tolist()
    alignment = problem.alignment
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in earlier[bounds[i]:bounds[i + 1]]]
        src = inplace_of.get(i)
        if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
            offsets[i] = offsets[src]
        else:
            offsets[i] = best_fit(blocks, size, alignment)
