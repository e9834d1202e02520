"""ggml's graph allocator (``ggml_gallocr`` of llama.cpp), re-implemented as a baseline.

Why: llama.cpp users get exactly this planner today, so ``memplan bench planners`` compares against
it. It walks time once: at each step the buffers whose last access is over are freed (merged into a
sorted free list), then the new ones are allocated — best fit among interior free blocks (ties to
the later block), else cut from the growing tail; an in-place output takes its input's block and
returns any tail it does not need when the input is over. Sizes are rounded up to the alignment, as ggml does.

It only knows a serial order, so it is only valid for problems whose conflicts are interval overlap
(serial schedules, with in-place pairs); a multi-stream (HB-filtered) problem raises SolverError —
that its frees are unsafe across streams is the point of the comparison.
"""

from __future__ import annotations

import bisect

import numpy as np

from ..errors import SolverError
from ..problem import BufferProblem, Solution, Status, align_up, arena_of
from .options import SolveOptions


class _FreeList:
    """ggml_dyn_tallocr with one chunk: sorted free blocks, the last one the unbounded tail."""

    def __init__(self) -> None:
        self.starts: list[int] = [0]
        self.sizes: list[int] = [-1]  # the tail: -1 means unbounded
        self.high = 0

    def alloc(self, size: int) -> int:
        best, best_size = -1, -1
        for k in range(len(self.starts) - 1):  # interior blocks; ties go to the later one
            s = self.sizes[k]
            if s >= size and (best < 0 or s <= best_size):
                best, best_size = k, s
        if best < 0:
            best = len(self.starts) - 1
        off = self.starts[best]
        if self.sizes[best] < 0:
            self.starts[best] += size
        else:
            self.starts[best] += size
            self.sizes[best] -= size
            if self.sizes[best] == 0:
                del self.starts[best], self.sizes[best]
        self.high = max(self.high, off + size)
        return off

    def free(self, off: int, size: int) -> None:
        if size <= 0:
            return
        k = bisect.bisect_left(self.starts, off)
        merged_prev = k > 0 and self.starts[k - 1] + self.sizes[k - 1] == off
        if merged_prev:
            self.sizes[k - 1] += size
            k -= 1
        else:
            self.starts.insert(k, off)
            self.sizes.insert(k, size)
        # merge with the next block (the tail absorbs it and stays unbounded)
        if k + 1 < len(self.starts) and self.starts[k] + self.sizes[k] == self.starts[k + 1]:
            nxt = self.sizes[k + 1]
            self.sizes[k] = -1 if nxt < 0 else self.sizes[k] + nxt
            del self.starts[k + 1], self.sizes[k + 1]


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    if problem.order is not None:
        raise SolverError("solver 'ggml' plans a serial order only; this problem has several streams "
                          "(use greedy, size, search or cpsat)")
    n = len(problem)
    align = int(problem.alignment)
    sizes = [align_up(int(s), align) for s in problem.sizes.tolist()]
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    # only pairs the problem lets overlap (``compatible``): an ``inplace`` pair listed without it (a BufferProblem made
    # in code) was taken in place all the same, and the check blamed the overlap on this solver ("a solver bug")
    inplace_src = {out: src for out, src in problem.inplace if (min(out, src), max(out, src)) in problem.compatible}
    offsets = [0] * n
    owned = [0] * n      # bytes a buffer holds in the free list's view (0: none / handed on)
    fl = _FreeList()
    tails: dict[int, list[tuple[int, int]]] = {}  # time -> in-place inputs' unused tails, freed with them
    events: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(n):
        if sizes[i] == 0:
            continue
        events.setdefault(lower[i], ([], []))[1].append(i)
        events.setdefault(upper[i], ([], []))[0].append(i)
    for t in sorted(events):
        frees, allocs = events[t]
        for off_, size_ in tails.pop(t, ()):
            fl.free(off_, size_)
        for i in frees:
            fl.free(offsets[i], owned[i])
            owned[i] = 0
        for i in allocs:
            src = inplace_src.get(i)
            if src is not None and owned[src] >= sizes[i] and upper[src] <= lower[i] + 1:
                # in place: take the input's block; what the output does not need goes back when the
                # input's last access is over (this node still reads it: another output may not take it)
                offsets[i] = offsets[src]
                tails.setdefault(upper[src], []).append((offsets[src] + sizes[i], owned[src] - sizes[i]))
                owned[src] = 0
                owned[i] = sizes[i]
            else:
                offsets[i] = fl.alloc(sizes[i])
                owned[i] = sizes[i]
    off = np.asarray(offsets, dtype=np.int64)
    return Solution(off, arena_of(problem, off), "ggml", Status.HEURISTIC, int(problem.lower_bound or 0),
                    {"high_water": fl.high})
