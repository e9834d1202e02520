"""A repair of the best packing: its lower buffers kept where they are, its top ones searched again.

Why: on large problems a budget of less than a descent or two (5,000 random intervals at ``time_limit=0.5``: ~0.65 of
one; ``random_dag(3000)`` on 8 streams at 0.5 and 1) bought no improvement at all: every try of the search places
every buffer, so none finished and the start came back. Where a packing is above its bound, what decides the arena is
its top: a try that keeps the buffers lowest in the packing (``fixed``) and places only the ``free`` highest ones,
around them, below the best arena takes a fraction of a descent.

Such a try searches a part of the tree (the kept buffers could have moved): its packing is a packing, checked as any
other, but its failure proves nothing; the caller never reads a bound from it.
"""

from __future__ import annotations

import heapq

import numpy as np


def pushed_down(bounds: np.ndarray, adj: np.ndarray, sizes: np.ndarray, align: int, offsets: np.ndarray,
                active: np.ndarray) -> np.ndarray:
    """``offsets`` with every active buffer pushed down as far as it goes, in order of offset (ties by index): each
    at the highest aligned top among its conflicting buffers below it (0 if none). Never higher than before, so the
    arena never grows; a buffer then rests on 0 or on a conflicting buffer's top, which is the state the search's
    canonical placements reach (its minimum offset), so ``fixed`` buffers are a state the search could have made.
    Conflicting buffers keep their order (the one below stays below)."""
    out = np.asarray(offsets, dtype=np.int64).copy()
    order = active[np.lexsort((active, out[active]))].tolist()
    done = np.zeros(len(out), dtype=bool)
    top = np.zeros(len(out), dtype=np.int64)
    starts = bounds.tolist()
    for b in order:
        nb = adj[starts[b]:starts[b + 1]]
        below = top[nb[done[nb]]]
        o = int(below.max()) if len(below) else 0
        out[b] = o
        top[b] = -(-(o + int(sizes[b])) // align) * align
        done[b] = True
    return out


def free_part(offsets: np.ndarray, sizes: np.ndarray, adjn: list[np.ndarray], active: np.ndarray, free: int,
              cap: int) -> tuple[np.ndarray, int]:
    """``(buffers, scanned)``: about ``free`` active buffers to search again, grown from the peak (those whose top is
    above ``cap``) through conflicts, highest top first, and on until every conflicting buffer left out lies below
    every one taken (so none taken must go above one kept); ``scanned``: the neighbours read (its work).

    Why from the peak: only there must the packing change to fit ``cap``; the highest buffers elsewhere already fit.
    Why closed upward: a buffer taken is placed again above every kept one it conflicts with, so one kept above it
    blocked it, and a repair that took a buffer without those above it failed in its first node."""
    top = offsets + sizes
    act = np.zeros(len(offsets), dtype=bool)
    act[active] = True
    seen = np.zeros(len(offsets), dtype=bool)
    heap = [(-int(top[b]), int(b)) for b in active[top[active] > cap].tolist()]
    heapq.heapify(heap)
    seen[[b for _, b in heap]] = True
    taken: list[int] = []
    low = None   # the lowest top taken
    scanned = 0
    while heap and (len(taken) < free or -heap[0][0] >= low):
        t, b = heapq.heappop(heap)
        taken.append(b)
        low = -t if low is None else min(low, -t)
        nb = adjn[b]
        scanned += len(nb)
        new = nb[~seen[nb] & act[nb]]
        seen[new] = True
        for u, tu in zip(new.tolist(), top[new].tolist()):
            heapq.heappush(heap, (-tu, u))
    return np.asarray(sorted(taken), dtype=np.int64), scanned


def fixed_part(offsets: np.ndarray, active: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(buffers, offsets)``: the active buffers not in ``free``, kept where they are."""
    keep = np.setdiff1d(active, free)
    return keep, offsets[keep]
