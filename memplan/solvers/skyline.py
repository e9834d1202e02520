"""Lowest-floor ("skyline") placement: MiniMalloc's canonical placement order, walked once per tie-break key.

Why: greedy (issue-order best fit) and size (largest first, first fit) place each buffer where the buffers placed
before it leave room, so the order decides everything, and on the public TelaMalloc/MiniMalloc inputs (154-454
buffers whose optimum is the lower bound) both end 23-40% above it (E: 1,435,648 B against 1,048,576). MiniMalloc
(Moffitt, ASPLOS 2023, ``src/solver.cc``) only ever places a buffer at its *floor*, the highest aligned end of its
placed conflicting buffers, and takes next a buffer of the lowest floor: each buffer then rests on another (or on
0), and every packing has such an order. Its search branches over the buffers of that lowest floor; here one greedy
path follows a fixed tie-break key, and a few keys (by start, by end, each then by size or lifetime: the strip is
filled from either end of time) are walked and the smallest arena kept. On those inputs the best of them ends
2.5-20% above the bound (E: 1,216,512 B) in a few milliseconds a key.

Deterministic: the keys are tuples of integers ending in the buffer's index. In-place pairs (``compatible``) are
kept apart here, as conflicts (the caller joins them afterwards where their bytes are free: ``rejoin``); zero-size
buffers sit at 0.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from ..errors import SolverError
from ..problem import BufferProblem, Solution, Status, align_up, arena_of
from .placement import ArenaOver

#: the tie-break keys walked, in this order (the first of the smallest arena wins): among buffers of the same floor,
#: the earliest start first (then the largest, then the longest-lived), or the latest end first (the same, mirrored in
#: time), or by start then end, or the longest-lived first. Why these: on the eleven public inputs each is the best on
#: at least one, and seeded random tie-breaks (8 tried) were never better than the best of them
KEYS = ("start", "end", "start_life", "end_life", "start_end", "life")


def _key(name: str, sizes: list[int], lower: list[int], upper: list[int]) -> Callable[[int], tuple[int, ...]]:
    """The tie-break key ``name`` (one of ``KEYS``) as a function of a buffer's index: integers, the index last."""
    if name == "start":
        return lambda i: (lower[i], -sizes[i], i)
    if name == "end":
        return lambda i: (-upper[i], -sizes[i], i)
    if name == "start_life":
        return lambda i: (lower[i], lower[i] - upper[i], i)
    if name == "end_life":
        return lambda i: (-upper[i], lower[i] - upper[i], i)
    if name == "start_end":
        return lambda i: (lower[i], upper[i], i)
    if name == "life":
        return lambda i: (lower[i] - upper[i], -sizes[i], i)
    raise SolverError(f"skyline: unknown tie-break key {name!r} (choose from {', '.join(KEYS)})")


def neighbours(problem: BufferProblem) -> tuple[list[int], list[int]]:
    """The conflict graph as CSR lists, with each in-place pair (``compatible``) a conflict too (kept apart)."""
    bounds, flat = problem.conflict_csr()
    if not problem.compatible:
        return bounds, flat
    n = len(problem)
    lists = [flat[bounds[i]:bounds[i + 1]] for i in range(n)]
    for a, b in sorted(problem.compatible):
        lists[a].append(b)
        lists[b].append(a)
    out_bounds, out_flat = [0], []
    for row in lists:
        out_flat.extend(sorted(set(row)))
        out_bounds.append(len(out_flat))
    return out_bounds, out_flat


def ranks(n: int, key: Callable[[int], tuple]) -> list[int]:
    """Each buffer's position in the order of ``key`` (unique: keys end in the index)."""
    rank = [0] * n
    for r, i in enumerate(sorted(range(n), key=key)):
        rank[i] = r
    return rank


def walk(sizes: list[int], bounds: list[int], flat: list[int], alignment: int, rank: list[int],
         over: int | None = None) -> tuple[list[int], int]:
    """Offsets and arena (the highest end) of one lowest-floor walk: the unplaced buffer of the lowest floor (ties to
    the lowest ``rank``, a permutation) goes at its floor, and raises its unplaced neighbours' floors to its aligned
    end. With ``over``: ``ArenaOver`` as soon as a buffer ends past it (the arena only grows). O(pairs log n): a heap
    of single integers ``floor * n + rank`` (tuples of keys compared several times slower)."""
    n = len(sizes)
    floor = [0] * n
    off = [0] * n
    done = [False] * n
    by_rank = [0] * n
    for i, r in enumerate(rank):
        by_rank[r] = i
    heap = sorted(rank[i] for i in range(n) if sizes[i])   # (floor 0: the entry is the rank; sorted is a heap)
    top = 0
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        f, r = divmod(pop(heap), n)
        i = by_rank[r]
        if done[i] or f != floor[i]:
            continue
        off[i] = f
        done[i] = True
        end = f + sizes[i]
        if end > top:
            top = end
            if over is not None and top > over:
                raise ArenaOver(i)
        up = align_up(end, alignment)
        base = up * n
        for j in flat[bounds[i]:bounds[i + 1]]:
            if floor[j] < up and not done[j]:
                floor[j] = up
                push(heap, base + rank[j])
    return off, top


def solve(problem: BufferProblem, *, over: int | None = None, keys: tuple[str, ...] = KEYS,
          rounds: int = 0) -> Solution:
    """The smallest arena of the lowest-floor walks over ``keys`` (the first on ties), then of ``rounds`` walks more
    from the best key that each take first, among buffers of one floor, those that ended at the top of the walk
    before (``promoted``). With ``over``: ``ArenaOver`` where every walk ends past it (as the heuristics' ``over``:
    ``solvers.heuristics_over``)."""
    sizes = problem.sizes.tolist()
    lower, upper = problem.lower.tolist(), problem.upper.tolist()
    bounds, flat = neighbours(problem)
    best: tuple[int, list[int], str] | None = None
    for name in keys:
        # (a walk that cannot beat the best so far stops where it passes it: a tie would not be kept either)
        cap = over if best is None else best[0] - 1 if over is None else min(over, best[0] - 1)
        try:
            off, top = walk(sizes, bounds, flat, problem.alignment, ranks(len(sizes), _key(name, sizes, lower, upper)),
                            cap)
        except ArenaOver:
            continue
        if best is None or top < best[0]:
            best = (top, off, name)
    if best is None:
        raise ArenaOver(-1)
    info = {"skyline_key": best[2]}
    if rounds:
        found = promoted(sizes, bounds, flat, problem.alignment, _key(best[2], sizes, lower, upper), best[1], rounds)
        if found is not None and found[0] < best[0]:
            best = (found[0], found[1], best[2])
            info["skyline_rounds"] = found[2]
    offsets = np.asarray(best[1], dtype=np.int64)
    return Solution(offsets, arena_of(problem, offsets), "skyline", Status.HEURISTIC, int(problem.lower_bound or 0),
                    info)


def promoted(sizes: list[int], bounds: list[int], flat: list[int], alignment: int, key: Callable[[int], tuple],
             offsets: list[int], rounds: int) -> tuple[int, list[int], int] | None:
    """The smallest arena (first on ties), its offsets and the round that made it, of ``rounds`` walks, each after
    the buffers that ended at the top of the walk before (``offsets`` first) moved up one rank: a walk takes, among
    buffers of one floor, the one of the lowest rank, then ``key``'s. None where none ends below ``offsets``' arena.

    Why: a buffer that ends at the top was placed late, on a floor that others reached first; taken earlier it
    rests lower and those others go on top of it or elsewhere. On the public inputs this took the best key's walk
    from 16.0% to 7.2% above the bound on E, from 19.8% to 15.9% on K (16 rounds; none worse, it only keeps a
    smaller arena). A fixed number of walks: deterministic, and the caller bounds their work."""
    n = len(sizes)
    promo = [0] * n
    base = ranks(n, key)
    best_top = max((offsets[i] + sizes[i] for i in range(n)), default=0)
    found = None
    off = offsets
    for r in range(1, rounds + 1):
        top = max((off[i] + sizes[i] for i in range(n)), default=0)
        for i in range(n):
            if sizes[i] and off[i] + sizes[i] == top:
                promo[i] -= 1
        off, top = walk(sizes, bounds, flat, alignment, ranks(n, lambda i: (promo[i], base[i])))
        if top < best_top:
            best_top, found = top, (top, off, r)
    return found
