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
from .placement import best_fit, fits_at


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    n = len(problem)
    sizes = problem.sizes.tolist()
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    offsets = [0] * n
    inplace_of = {out: inp for out, inp in problem.inplace}
    ordered = problem.ordered_test()
    compatible = problem.compatible

    active: list[tuple[int, int]] = []
    live: dict[int, None] = {}
    for i in np.lexsort((np.arange(n), problem.lower)).tolist():
        if sizes[i] == 0:
            continue
        li = lower[i]
        while active and active[0][0] <= li:
            live.pop(heapq.heappop(active)[1], None)
        blocks = []
        for j in live:
            if ordered is not None and ordered(i, j):
                continue
            if compatible and (min(i, j), max(i, j)) in compatible:
                continue
            blocks.append((offsets[j], offsets[j] + sizes[j]))
        src = inplace_of.get(i)
        if src is not None and sizes[i] <= sizes[src] and fits_at(blocks, offsets[src], sizes[i]):
            offsets[i] = offsets[src]
        else:
            offsets[i] = best_fit(blocks, sizes[i], problem.alignment)
        live[i] = None
        heapq.heappush(active, (upper[i], i))
    off = np.asarray(offsets, dtype=np.int64)
    return Solution(off, arena_of(problem, off), "greedy", Status.HEURISTIC, int(problem.lower_bound or 0))
