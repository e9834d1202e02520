"""The one check every solver's output passes before anything uses it.

A solver bug must never become a plan: offsets are checked here once, whichever solver made them and
whoever called it (plans, device splits, CSV problems, benchmarks). For graph plans the independent
verifier checks again; for minimalloc CSV problems, which have no graph, this is the whole check.
"""

from __future__ import annotations

import numpy as np
from sortedcontainers import SortedList

from ..errors import SolverError
from ..problem import BufferProblem, Solution, arena_of, find_collision

#: general (multi-stream, in-place) problems are checked pairwise up to this many buffers; larger ones
#: are left to ``memplan.verify`` (graph plans only ever reach this with a graph behind them)
PAIRWISE_LIMIT = 5000
#: the largest offset + size a packing may reach (int64, what offsets are held in)
INT64_MAX = (1 << 63) - 1


class InvalidPacking(SolverError):
    """``check_solution``'s refusal: offsets that are no packing of the problem (a solver bug, or a caller's start).
    A SolverError, as before; its own class so that a caller can tell a wrong packing from a solver that refused to
    run (no OR-Tools, a problem past its size limit): ``memplan bench planners`` called every SolverError of a
    minimalloc row INVALID, "a solver bug: an invalid packing"."""


def check_solution(problem: BufferProblem, sol: Solution, *, blame: str = " (a solver bug)") -> None:
    """Raise SolverError naming the buffers if ``sol`` is not a packing of ``problem``. (Whether a
    packing fits ``problem.capacity`` is the caller's question: heuristics do not try to.) ``blame`` ends the
    messages that name a solver's fault: ``""`` for a packing the caller made (a warm start), which no solver did."""
    off = np.asarray(sol.offsets, dtype=np.int64)
    n = len(problem)
    if off.shape != (n,):
        raise InvalidPacking(f"solver {sol.solver!r} returned {off.size} offsets for {n} buffers{blame}")
    if n and (off < 0).any():
        i = int(np.flatnonzero(off < 0)[0])
        raise InvalidPacking(f"solver {sol.solver!r} placed {problem.name(i)!r} at negative offset {int(off[i])}")
    if n and (off % problem.alignment).any():
        i = int(np.flatnonzero(off % problem.alignment)[0])
        raise InvalidPacking(f"solver {sol.solver!r} placed {problem.name(i)!r} at offset {int(off[i])}, not a "
                          f"multiple of the alignment {problem.alignment}")
    if n and (off > INT64_MAX - problem.sizes).any():
        # (``arena_of`` and the overlap sweeps add offsets and sizes in int64: such an end wrapped around to a
        # negative number, so a buffer placed at 2**63 - 4 passed with an arena of 8 bytes and overlapping nothing)
        i = int(np.flatnonzero(off > INT64_MAX - problem.sizes)[0])
        raise InvalidPacking(f"solver {sol.solver!r} placed {problem.name(i)!r} at offset {int(off[i])}, its end past "
                             f"2**63 - 1{blame}")
    if arena_of(problem, off) != sol.arena:
        raise InvalidPacking(f"solver {sol.solver!r} reported arena {sol.arena}, but its offsets span "
                          f"{arena_of(problem, off)}{blame}")
    clash = overlap(problem, off)
    if clash is not None:
        a, b = clash
        raise InvalidPacking(f"solver {sol.solver!r} overlapped conflicting buffers {problem.name(a)!r} and "
                          f"{problem.name(b)!r}{blame}")
    if sol.arena < int(problem.lower_bound or 0):   # (a hand-made problem's bound: it then read OPTIMAL)
        raise InvalidPacking(f"solver {sol.solver!r} packed the buffers in {sol.arena} bytes, below the problem's "
                          f"proven lower bound of {problem.lower_bound} bytes: the bound or the packing is wrong")


def overlap(problem: BufferProblem, off: np.ndarray) -> tuple[int, int] | None:
    """Two conflicting buffers whose bytes ``off`` overlaps, or None: by a sweep for interval problems, pairwise
    for general ones up to ``PAIRWISE_LIMIT`` buffers (None above it: ``memplan.verify`` checks graph plans)."""
    if problem.is_interval:
        return interval_collision(problem.sizes, problem.lower, problem.upper, off)
    return find_collision(problem, off) if len(problem) <= PAIRWISE_LIMIT else None


def interval_collision(sizes: np.ndarray, lower: np.ndarray, upper: np.ndarray, off: np.ndarray
                       ) -> tuple[int, int] | None:
    """Two time-overlapping buffers (``sizes`` live over ``[lower, upper)``, int64 arrays) whose bytes at ``off``
    overlap, by one sweep over time (O(n log n) searches); of arrays, not a problem, for the live spans of a minimalloc
    CSV's buffers (``io.minimalloc._clash``), whose sizes counted once a span may pass a problem's limit.

    The live buffers never overlap each other (else the sweep has already stopped), so a new buffer
    can only collide with its neighbours in offset order, and no two share an offset. Their offsets
    are a ``SortedList``: a plain sorted list moved every later offset on each insert and delete,
    quadratic when most buffers are live at once (100,000 inputs and outputs: 23 s of a 48 s plan).
    """
    live = np.flatnonzero((sizes > 0) & (upper > lower))
    if len(live) < 2:
        return None
    # events: ends before starts at equal times (intervals are half-open)
    times = np.concatenate([upper[live], lower[live]])
    kinds = np.concatenate([np.zeros(len(live), np.int64), np.ones(len(live), np.int64)])
    who = np.concatenate([live, live])
    order = np.lexsort((who, kinds, times))
    starts = SortedList()    # offsets of live buffers
    owner: dict[int, int] = {}   # the live buffer at each of them
    offs, ends = off.tolist(), (off + sizes).tolist()
    for k, i in zip(kinds[order].tolist(), who[order].tolist()):
        o = offs[i]
        if k == 0:
            ended = owner.pop(o)
            assert ended == i, "live buffers never share an offset"
            starts.remove(o)
            continue
        p = starts.bisect_left(o)
        if p > 0 and ends[owner[starts[p - 1]]] > o:
            return tuple(sorted((owner[starts[p - 1]], i)))
        if p < len(starts) and starts[p] < ends[i]:
            return tuple(sorted((owner[starts[p]], i)))
        starts.add(o)
        owner[o] = i
    return None


def packs(problem: BufferProblem, sol: Solution) -> bool:
    """Whether ``sol`` is a packing of ``problem`` (``check_solution`` passes), as a yes or no: where a candidate
    plan (a start given, a repaired packing, a fallback) is only weighed, not returned, its failure is no error."""
    try:
        check_solution(problem, sol, blame="")
    except (SolverError, TypeError, ValueError, AttributeError):
        return False
    return True
