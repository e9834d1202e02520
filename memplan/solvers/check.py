"""The one check every solver's output passes before anything uses it.

A solver bug must never become a plan: offsets are checked here once, whichever solver made them and
whoever called it (plans, device splits, CSV problems, benchmarks). For graph plans the independent
verifier checks again; for minimalloc CSV problems, which have no graph, this is the whole check.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from ..errors import SolverError
from ..problem import BufferProblem, Solution, arena_of, find_collision

#: general (multi-stream, in-place) problems are checked pairwise up to this many buffers; larger ones
#: are left to ``memplan.verify`` (graph plans only ever reach this with a graph behind them)
PAIRWISE_LIMIT = 5000


def check_solution(problem: BufferProblem, sol: Solution) -> None:
    """Raise SolverError naming the buffers if ``sol`` is not a packing of ``problem``. (Whether a
    packing fits ``problem.capacity`` is the caller's question: heuristics do not try to.)"""
    off = np.asarray(sol.offsets, dtype=np.int64)
    n = len(problem)
    if off.shape != (n,):
        raise SolverError(f"solver {sol.solver!r} returned {off.size} offsets for {n} buffers (a solver bug)")
    if n and (off < 0).any():
        i = int(np.flatnonzero(off < 0)[0])
        raise SolverError(f"solver {sol.solver!r} placed {problem.name(i)!r} at negative offset {int(off[i])}")
    if n and (off % problem.alignment).any():
        i = int(np.flatnonzero(off % problem.alignment)[0])
        raise SolverError(f"solver {sol.solver!r} placed {problem.name(i)!r} at offset {int(off[i])}, not a "
                          f"multiple of the alignment {problem.alignment}")
    if arena_of(problem, off) != sol.arena:
        raise SolverError(f"solver {sol.solver!r} reported arena {sol.arena}, but its offsets span "
                          f"{arena_of(problem, off)} (a solver bug)")
    clash = overlap(problem, off)
    if clash is not None:
        a, b = clash
        raise SolverError(f"solver {sol.solver!r} overlapped conflicting buffers {problem.name(a)!r} and "
                          f"{problem.name(b)!r} (a solver bug)")
    if sol.arena < int(problem.lower_bound or 0):   # (a hand-made problem's bound: it then read OPTIMAL)
        raise SolverError(f"solver {sol.solver!r} packed the buffers in {sol.arena} bytes, below the problem's "
                          f"proven lower bound of {problem.lower_bound} bytes: the bound or the packing is wrong")


def overlap(problem: BufferProblem, off: np.ndarray) -> tuple[int, int] | None:
    """Two conflicting buffers whose bytes ``off`` overlaps, or None: by a sweep for interval problems, pairwise
    for general ones up to ``PAIRWISE_LIMIT`` buffers (None above it: ``memplan.verify`` checks graph plans)."""
    if problem.is_interval:
        return _interval_collision(problem, off)
    return find_collision(problem, off) if len(problem) <= PAIRWISE_LIMIT else None


def _interval_collision(problem: BufferProblem, off: np.ndarray) -> tuple[int, int] | None:
    """Two time-overlapping buffers whose bytes overlap, by one sweep over time (O(n log n) searches).

    The live buffers never overlap each other (else the sweep has already stopped), so a new buffer
    can only collide with its neighbours in offset order.
    """
    sizes, lower, upper = problem.sizes, problem.lower, problem.upper
    live = np.flatnonzero((sizes > 0) & (upper > lower))
    if len(live) < 2:
        return None
    # events: ends before starts at equal times (intervals are half-open)
    times = np.concatenate([upper[live], lower[live]])
    kinds = np.concatenate([np.zeros(len(live), np.int64), np.ones(len(live), np.int64)])
    who = np.concatenate([live, live])
    order = np.lexsort((who, kinds, times))
    starts: list[int] = []   # offsets of live buffers, sorted
    owners: list[int] = []
    offs, ends = off.tolist(), (off + sizes).tolist()
    for k, i in zip(kinds[order].tolist(), who[order].tolist()):
        o = offs[i]
        p = bisect_left(starts, o)
        if k == 0:
            assert owners[p] == i, "live buffers never share an offset"
            del starts[p], owners[p]
            continue
        if p > 0 and ends[owners[p - 1]] > o:
            return tuple(sorted((owners[p - 1], i)))
        if p < len(starts) and starts[p] < ends[i]:
            return tuple(sorted((owners[p], i)))
        starts.insert(p, o)
        owners.insert(p, i)
    return None
