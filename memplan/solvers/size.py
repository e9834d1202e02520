"""Greedy by size — TFLite's planner generalised from time intervals to any conflict relation.

Largest buffers first, each at the lowest aligned offset that collides with no already-placed
buffer it conflicts with. Big tensors placed early leave small ones to fill the holes, which often
beats issue-order best-fit on graphs with a few dominant activations.
"""

from __future__ import annotations

import numpy as np

from ..problem import BufferProblem, Solution, Status, arena_of
from .options import SolveOptions
from .placement import first_fit


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    n = len(problem)
    sizes = problem.sizes.tolist()
    adj = problem.conflict_lists()
    offsets = [0] * n
    placed = [False] * n
    for i in np.lexsort((np.arange(n), problem.lower, -problem.sizes)).tolist():
        if sizes[i] == 0:
            placed[i] = True
            continue
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in adj[i] if placed[j]]
        offsets[i] = first_fit(blocks, sizes[i], problem.alignment)
        placed[i] = True
    off = np.asarray(offsets, dtype=np.int64)
    return Solution(off, arena_of(problem, off), "size", Status.HEURISTIC, int(problem.lower_bound or 0))
