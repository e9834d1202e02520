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
from fractions import Fraction

import numpy as np

from ..errors import SolverError
from ..problem import BufferProblem, Solution, Status, arena_of
from .placement import ArenaOver

#: the tie-break keys walked, in this order (the first of the smallest arena wins): among buffers of the same floor,
#: the earliest start first (then the largest, then the longest-lived), or the latest end first (the same, mirrored in
#: time), or by start then end, or the longest-lived first. Why these: on the eleven public inputs each is the best on
#: at least one, and seeded random tie-breaks (8 tried) were never better than the best of them
KEYS = ("start", "end", "start_life", "end_life", "start_end", "life")
#: keys walked after the promotion walks (``solve``'s ``extra``), never promoted from: the largest buffer first among
#: those of one floor, then the latest end. Why: on graphs' own problems (random and layered DAGs) it orders as size
#: does (largest first) but rests each buffer on its floor, the lowest first, rather than in the first gap, and ends
#: below every other walk and below greedy and size: layered graphs of 300 / 1,000 / 3,000 nodes 0.0% / 2.1% / 0.3% above the bound (size 2.8% / 4.5% / 0.6%), a
#: random DAG of 300 nodes 2.0% (5.2%); promotion walks from it found nothing smaller (16 rounds), and on the public
#: inputs it ends 27-41% above the bound, where the six keys' promotions end 2.5-17%, so it comes after them
EXTRA_KEYS = ("size_end", "area")
#: ``repaired``: the keys the top of a walk is walked again with, and the share of the buffers (those of the highest
#: offsets, ``REPAIR_SHARES[k][0]`` / ``[1]`` of them) walked again, smallest first. Why: on session 62's corpus
#: (44 problems the default walks, docs/experiments/quality_s62.txt) half of them ended lower with the top of the
#: best or the runner-up walk walked again, ``start`` or ``end`` nearly always, a fifth of the buffers most often
#: (tried: 1% to 90%, ten keys, the three best walks); these two keys and four shares kept most of what all of them
#: found in a fifth of their work (sum of gaps 107.5% -> 79.4%)
REPAIR_KEYS = ("start", "end")
REPAIR_SHARES = ((1, 10), (1, 5), (7, 20), (7, 10))
#: ``repaired``'s rounds at most: a round walks again from the plan the round before ended lower
REPAIR_ROUNDS = 6
#: ``solve``'s ``start`` (size's packing) is repaired with its top walked again with this key (``repaired``), not
#: ``REPAIR_KEYS``. Why: on multi-stream problems of 1,000-2,000 nodes every walk ended above size's arena
#: (layered 1,000 on 3 streams: ``size_end`` 3.26% above the bound, size 2.00%; random DAG 1,000 on
#: ``streams="auto"``: 5.24%, size 3.68%), and neither the walks' repair nor their promotions reached it; size's
#: packing with its top walked again largest first ends at 1.83% / 2.93% (``start``/``end`` keys: 2.00% / 3.68%,
#: nothing; docs/experiments/skyline_narrow_s63.txt)
START_KEYS = ("size_end",)
#: a placed buffer's floor in ``walk``: above every aligned end (a problem's aligned total stays below 2**63)
PLACED = 1 << 64


def key_ranks(name: str, sizes: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Each buffer's position in the order of the tie-break key ``name`` (one of ``KEYS``): integers, the index last
    (unique). One ``np.lexsort`` (a Python sort by tuples of keys took a fifth of a walk on 10,000 buffers)."""
    life = lower - upper
    columns = {"start": (lower, -sizes), "end": (-upper, -sizes), "start_life": (lower, life),
               "end_life": (-upper, life), "start_end": (lower, upper), "life": (life, -sizes),
               "size_end": (-sizes, -upper),
               # (the area in floats: bytes x time steps passes int64, and wrapped, on a CSV counting nanoseconds;
               # exact below 2**53, as on every graph's own problem)
               "area": (sizes.astype(np.float64) * life.astype(np.float64), -upper)}.get(name)
    if columns is None:
        raise SolverError(f"skyline: unknown tie-break key {name!r} (choose from {', '.join(KEYS + EXTRA_KEYS)})")
    return ranks_of(*columns)


def ranks_of(*columns: np.ndarray) -> np.ndarray:
    """Each buffer's position in the order of ``columns`` (the first decides, then the next, ..., then the index)."""
    n = len(columns[0])
    order = np.lexsort((np.arange(n),) + tuple(reversed(columns)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def neighbours(problem: BufferProblem) -> list[list[int]]:
    """The conflict graph as one list of neighbours a buffer, with each in-place pair (``compatible``) a conflict too
    (kept apart). Lists, not CSR slices: a walk reads each buffer's once, and slicing them again in every walk cost a
    third of a walk on 10,000 buffers (they are made once a solve). Made row by row with one int object a buffer
    (``BufferProblem.conflict_lists``), not sliced out of one flat list of new ints: a fifth of the memory."""
    lists = problem._conflict_rows()
    if not problem.compatible:
        return lists
    sizes = problem.sizes
    for a, b in sorted(problem.compatible):
        if sizes[a] and sizes[b]:   # (a zero-size buffer conflicts with nothing: it sits at 0)
            lists[a].append(b)
            lists[b].append(a)
    return [sorted(set(row)) for row in lists]


def walk(sizes: list[int], nbrs: list[list[int]], alignment: int, rank: list[int],
         over: int | None = None) -> tuple[list[int], int]:
    """Offsets and arena (the highest end) of one lowest-floor walk: the unplaced buffer of the lowest floor (ties to
    the lowest ``rank``, a permutation) goes at its floor, and raises its unplaced neighbours' floors to its aligned
    end. With ``over``: ``ArenaOver`` as soon as a buffer ends past it (the arena only grows).

    A heap of single integers ``floor * n + rank`` (tuples of keys compared several times slower), one entry an
    unplaced buffer, at most its floor: a raise only writes the floor, and an entry found below its buffer's floor
    when it comes up is pushed again at that floor (an entry at its floor is the least of all buffers' floors and
    ranks: every other entry is at most its own). Why: pushing an entry at every raise pushed once a conflicting
    pair, and most of them came up stale (half the pops of a chain of 10,000 nodes with long skips). Every buffer
    starts at floor 0 and a raised floor is at least the alignment, so the buffers still at floor 0 go first, in
    rank order, with no heap (a scan). A placed buffer's floor is ``PLACED``, above every floor: one comparison skips
    it as a neighbour. O(pairs + n log n) for the walk's raises and heap; deterministic."""
    n = len(sizes)
    floor = [0] * n
    off = [0] * n
    by_rank = [0] * n
    for i, r in enumerate(rank):
        by_rank[r] = i
    heap: list[int] = []
    top = 0
    pop, push = heapq.heappop, heapq.heappush

    def place(i: int, f: int) -> None:
        nonlocal top
        floor[i] = PLACED
        off[i] = f
        end = f + sizes[i]
        if end > top:
            top = end
            if over is not None and top > over:
                raise ArenaOver(i)
        up = -(-end // alignment) * alignment
        for j in nbrs[i]:
            if floor[j] < up:
                floor[j] = up

    for i in by_rank:   # (zero-size buffers conflict with nothing, ``neighbours``: they stay at 0)
        if sizes[i]:
            if floor[i]:
                push(heap, floor[i] * n + rank[i])
            else:
                place(i, 0)
    while heap:
        f, r = divmod(pop(heap), n)
        i = by_rank[r]
        g = floor[i]
        if f == g:
            place(i, f)
        else:
            push(heap, g * n + r)
    return off, top


def solve(problem: BufferProblem, *, over: int | None = None, keys: tuple[str, ...] = KEYS,
          rounds: int = 0, extra: tuple[str, ...] = (), repair: int | Fraction = 0,
          start: tuple[list[int], int] | None = None, start_repair: int | Fraction = 0) -> Solution:
    """The smallest arena of the lowest-floor walks over ``keys`` (the first on ties), then of ``rounds`` walks more
    from the best key that each take first, among buffers of one floor, those that ended at the top of the walk
    before (``promoted``), then of the walks over ``extra`` (``EXTRA_KEYS``: not promoted from, so a plan of the
    keys and their promotions stays what it was wherever these do not end lower). With ``over``: ``ArenaOver`` where
    every walk ends past it (as the heuristics' ``over``: ``solvers.heuristics_over``).

    With ``rounds`` the key walks go to their end whatever ``over`` is (each still stops once it passes the best
    key so far), and the promotion walks follow from the best of them. Why: ``auto`` asks for a plan below
    greedy's and size's arena, and a key walk stopped there left no walk to promote from: on a layered graph of 300
    nodes (315 buffers) every key ended 7.1% or more above the bound, size at 2.8%, and the default stayed at size's
    where the promotions from the best key end at 0.8% (docs/experiments/quality_s61.txt).

    With ``repair`` (walks' worth of work each, ``repaired``; a ``Fraction`` where the caller's total cap leaves less
    than whole walks: ``auto.skyline_repair``) the top of the best walk and of the runner-up (the
    smallest walk after it) is walked again last, the smaller kept (the best's on ties). Every walk then goes to its
    end whatever ``over`` is (each still stops once it passes the runner-up so far): the plan repaired does not
    depend on ``over``, so ``auto.skyline_within`` answers for any budget what ``auto``'s solve ends at. Why the
    runner-up: on a chain with long skips of 2,000 nodes the best walk (``end``, 3.85% above the bound) repaired
    found nothing, the runner-up (``area``, a tie) repaired 1.92% (docs/experiments/quality_s62.txt).

    With ``start`` (offsets and arena of a packing no walk made: ``auto`` hands size's) and ``start_repair`` (walks'
    worth) that packing is repaired last too, its top walked again with ``START_KEYS`` (``repaired``), and kept
    where it ends below every walk (its info says ``skyline_start``), only where size's arena is at most the best
    walk's. Why: where every walk ends above size's arena nothing of the walks is kept; its top walked again is
    (``START_KEYS``). Why not where a walk ends below size: there the repair never reached the walks (a chain with
    long skips of 10,000 nodes: size 8,323,072 B, repaired 8,257,536, the best walk 7,995,392; 0.08 s a plan for
    nothing, round 64), and a packing at most the best walk's is what it repairs where it wins."""
    sizes = problem.sizes.tolist()
    columns = (problem.sizes.astype(np.int64), problem.lower.astype(np.int64), problem.upper.astype(np.int64))
    nbrs = neighbours(problem)
    # (what the walks stop at: with promotions or a repair to follow, only the best so far)
    stop = None if rounds or repair else over
    best: tuple[int, list[int], dict] | None = None     # (arena, offsets, info)
    runner: tuple[int, list[int], dict] | None = None   # with ``repair``: the smallest walk after ``best``

    def keep(found: tuple[int, list[int], dict]) -> None:
        nonlocal best, runner
        if best is None or found[0] < best[0]:
            runner, best = (best if repair else None), found
        elif repair and (runner is None or found[0] < runner[0]):
            runner = found

    def lower(name: str, limit: int | None) -> tuple[int, list[int], dict] | None:
        """Walk ``name`` to a plan below the best so far (with ``repair``: below the runner-up, the second plan
        repaired) and ``limit``; None where it passes them (a walk that cannot beat them stops there: a tie would
        not be kept either)."""
        bar = runner if repair else best
        cap = limit if bar is None else bar[0] - 1 if limit is None else min(limit, bar[0] - 1)
        try:
            off, top = walk(sizes, nbrs, problem.alignment, key_ranks(name, *columns).tolist(), cap)
        except ArenaOver:
            return None
        return top, off, {"skyline_key": name}

    for name in keys:
        found = lower(name, stop)
        if found is not None:
            keep(found)
    if best is None and not extra:
        raise ArenaOver(-1)
    if best is not None and rounds:
        key = best[2]["skyline_key"]
        made = promoted(sizes, nbrs, problem.alignment, key_ranks(key, *columns), best[1], rounds)
        if made is not None and made[0] < best[0]:
            keep((made[0], made[1], {"skyline_key": key, "skyline_rounds": made[2]}))
    for name in extra:
        found = lower(name, None if repair else over)
        if found is not None:
            keep(found)
    bound = int(problem.lower_bound or 0)
    if repair and best is not None:
        mended = best
        for base in (best, runner):
            if base is None or mended[0] <= bound:   # (at the bound: nothing ends lower)
                continue
            found = repaired(sizes, nbrs, problem.alignment, columns, base[1], base[0], repair, bound)
            if found is not None and found[0] < mended[0]:
                mended = (found[0], found[1], {**base[2], "skyline_repair": found[2]})
        best = mended
    if start is not None and start_repair and (best is None or bound < best[0] >= start[1]):
        found = repaired(sizes, nbrs, problem.alignment, columns, start[0], start[1], start_repair, bound,
                         START_KEYS)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], found[1], {"skyline_start": "size", "skyline_repair": found[2]})
    if best is None or (over is not None and best[0] > over):
        raise ArenaOver(-1)
    info = best[2]
    offsets = np.asarray(best[1], dtype=np.int64)
    return Solution(offsets, arena_of(problem, offsets), "skyline", Status.HEURISTIC, int(problem.lower_bound or 0),
                    info)


def promoted(sizes: list[int], nbrs: list[list[int]], alignment: int, base: np.ndarray,
             offsets: list[int], rounds: int) -> tuple[int, list[int], int] | None:
    """The smallest arena (first on ties), its offsets and the round that made it, of ``rounds`` walks, each after
    the buffers that ended at the top of the walk before (``offsets`` first) moved up one rank: a walk takes, among
    buffers of one floor, the one of the lowest rank, then of ``base`` (the key's ranks). None where none ends below
    ``offsets``' arena.

    Why: a buffer that ends at the top was placed late, on a floor that others reached first; taken earlier it
    rests lower and those others go on top of it or elsewhere. On the public inputs this took the best key's walk
    from 16.0% to 7.2% above the bound on E, from 19.8% to 15.9% on K (16 rounds; none worse, it only keeps a
    smaller arena). A fixed number of walks: deterministic, and the caller bounds their work."""
    n = len(sizes)
    promo = np.zeros(n, dtype=np.int64)
    size = np.asarray(sizes, dtype=np.int64)
    best_top = max((offsets[i] + sizes[i] for i in range(n)), default=0)
    found = None
    off = offsets
    for r in range(1, rounds + 1):
        ends = np.asarray(off, dtype=np.int64) + size
        promo[(size > 0) & (ends == (ends.max() if n else 0))] -= 1
        off, top = walk(sizes, nbrs, alignment, ranks_of(promo, base).tolist())
        if top < best_top:
            best_top, found = top, (top, off, r)
    return found


def rewalk(sizes: list[int], nbrs: list[list[int]], alignment: int, rank: list[int], by_rank: list[int],
           offsets: list[int], free: list[int]) -> tuple[list[int], int]:
    """Offsets and arena of ``offsets`` with the buffers ``free`` walked again (lowest floor first, ties to the lowest
    ``rank``; ``by_rank`` its inverse) over the others, which stay where they are.

    Why it is a walk's tail: a walk places buffers in the order of their offsets (the floor it takes next is the
    lowest, and floors only rise), so with ``free`` the buffers of the highest offsets, the others are a walk's state
    once it reached them, and each free buffer's floor is the highest aligned end of its fixed neighbours, all below
    it in ``offsets`` (two conflicting buffers never overlap: the lower one ends below the other). Any packing, a
    walk's or not, stays legal: a buffer goes above every neighbour placed before it. Costs the free buffers'
    neighbours, not the whole problem's pairs."""
    n = len(sizes)
    off = list(offsets)
    floor = [PLACED] * n
    for i in free:
        floor[i] = 0
    heap: list[int] = []
    for i in free:
        if not sizes[i]:
            off[i] = 0
            floor[i] = PLACED
            continue
        f = 0
        for j in nbrs[i]:
            if floor[j] == PLACED:
                end = off[j] + sizes[j]
                if end > f:
                    f = end
        f = floor[i] = -(-f // alignment) * alignment
        heap.append(f * n + rank[i])
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        f, r = divmod(pop(heap), n)
        i = by_rank[r]
        g = floor[i]
        if f != g:
            push(heap, g * n + r)
            continue
        floor[i] = PLACED
        off[i] = f
        up = -(-(f + sizes[i]) // alignment) * alignment
        for j in nbrs[i]:
            if floor[j] < up:
                floor[j] = up
    return off, max((o + s for o, s in zip(off, sizes)), default=0)


def repaired(sizes: list[int], nbrs: list[list[int]], alignment: int, columns: tuple[np.ndarray, ...],
             offsets: list[int], top: int, walks: int | Fraction, bound: int = 0,
             keys: tuple[str, ...] = REPAIR_KEYS) -> tuple[int, list[int], int] | None:
    """A smaller arena (its offsets and the rounds that made it) from ``offsets`` (arena ``top``) with the buffers of
    the highest offsets walked again (``rewalk``) over the others, else None: in each round, for each share of the
    buffers (``REPAIR_SHARES``, smallest first) each of ``REPAIR_KEYS``; the first share that ends lower ends the
    round, which starts the next from there; a round that finds nothing, or ``walks`` walks' worth of neighbours
    visited (the whole problem's once a walk), or a plan at ``bound`` (the problem's lower bound: no packing ends
    below it, and a tie is not kept), ends it all.

    Why: the arena is the top of the skyline, set by the buffers placed last, on floors that the earlier ones left:
    the walk's tail decides it and costs a fraction of a walk to try again. A promotion walk (``promoted``) walks the
    whole problem again for one change of order; here the tail is walked with another key over the same base. On
    session 62's corpus: chains with long skips of 2,000 / 10,000 nodes 3.85% / 5.08% -> 1.92% / 3.39% above the
    bound, a layered graph of 1,000 nodes 2.07% -> 0.32% (docs/experiments/quality_s62.txt). Only smaller arenas are
    kept, a fixed order of tries and a budget of neighbours visited, not of time: deterministic.

    ``keys``: the keys walked with (``solve``'s ``start``, size's packing: ``START_KEYS``). Any packing stays legal,
    a walk's or not: a free buffer goes above every fixed neighbour."""
    n = len(sizes)
    degree = [len(row) for row in nbrs]
    budget = int(walks * max(sum(degree), 1))   # (a Fraction's floor: exact, the same on every machine)
    ranks = {}
    for name in keys:
        rank = key_ranks(name, *columns).tolist()
        by_rank = [0] * n
        for i, r in enumerate(rank):
            by_rank[r] = i
        ranks[name] = (rank, by_rank)
    best, off, used, made = top, offsets, 0, 0
    for _round in range(REPAIR_ROUNDS):
        if best <= bound:
            break
        order = sorted(range(n), key=lambda i: (off[i], i))
        lower = False
        for num, den in REPAIR_SHARES:
            m = max(1, n * num // den)
            free = order[n - m:]
            fixed_top = max((off[i] + sizes[i] for i in order[:n - m]), default=0)
            if fixed_top >= best:   # (a buffer left where it is ends at the top: no walk of the rest ends lower)
                continue
            cost = m + sum(degree[i] for i in free)
            for name in keys:
                if used + cost > budget:
                    return (best, off, made + (1 if lower else 0)) if best < top else None
                used += cost
                walked, walked_top = rewalk(sizes, nbrs, alignment, *ranks[name], off, free)
                if walked_top < best:
                    best, off, lower = walked_top, walked, True
            if lower:
                break
        if not lower:
            break
        made += 1
    return (best, off, made) if best < top else None
