"""Offset problems for the solver tests: random intervals (the same for the same seed) and hand-made shapes."""

from __future__ import annotations

import itertools

import numpy as np

from memplan.problem import BufferProblem, HBOrder, Solution


def random_intervals(seed: int = 5, n: int = 250, *, horizon: int = 400, max_size: int = 64, unit: int = 16,
                     max_length: int = 60) -> BufferProblem:
    """``n`` buffers, each starting at a step in ``[0, horizon)``, live for ``1..max_length - 1`` steps and
    ``unit * (1..max_size - 1)`` bytes."""
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, horizon, n)
    return BufferProblem(sizes=rng.integers(1, max_size, n) * unit, lower=lower,
                         upper=lower + rng.integers(1, max_length, n))


def ordered_inplace_chain(n: int) -> tuple[BufferProblem, Solution]:
    """``n`` buffers of one stream, each happening-before the next, all live to the end (wide intervals, as a
    stream that never syncs again leaves them): every buffer overlaps every other in time, none conflicts.
    In-place pairs ``(2k+1, 2k)``, each left apart by the returned solution and free to join (each output's
    candidates are all ``n/2`` inputs): the in-place rejoin pass's worst case for work."""
    first = np.arange(n).reshape(n, 1)
    none = np.zeros(n, dtype=bool)
    order = HBOrder(first, first + 1, none, none, np.arange(n) + 1, (np.arange(n) + 1,))
    p = BufferProblem(sizes=np.full(n, 1000), lower=np.arange(n) + 1, upper=np.full(n, n + 1), order=order,
                      compatible=frozenset((2 * k, 2 * k + 1) for k in range(n // 2)),
                      inplace=tuple((2 * k + 1, 2 * k) for k in range(n // 2)))
    off = np.zeros(n, dtype=np.int64)
    off[0::2] = 1000
    return p, Solution(off, 2000, "size")


def exhaustive(p: BufferProblem) -> int:
    """Smallest arena over every order of lowest aligned-fit placement (every compacted packing is one of these, so
    an optimal packing's offset order is one): the optimum the exact solvers are held to on problems of a few
    buffers (``n!`` orders)."""
    n, sizes, a, adj = len(p), p.sizes.tolist(), p.alignment, p.conflict_lists()
    best = 1 << 62
    for perm in itertools.permutations(range(n)):
        off: list[int | None] = [None] * n
        for i in perm:
            o = 0
            for lo, hi in sorted((off[j], off[j] + sizes[j]) for j in adj[i] if off[j] is not None):
                if lo >= o + sizes[i]:
                    break
                o = max(o, -(-hi // a) * a)
            off[i] = o
        best = min(best, max(o + sizes[i] for i, o in enumerate(off)))
    return best


def least_stacked_arena(sizes: list[int], nbrs: list[list[int]], align: int) -> int:
    """The least arena of any packing, by every order of placement, each buffer on top of the earlier ones among its
    neighbours ``nbrs[i]`` (every packing pushed down is one of them). Orders are tried placement by placement, and
    an order is left as soon as its arena so far reaches the least found: its arena only grows, so the least is
    exactly that of every order (``n!`` at worst; the prune makes 7 buffers cheap)."""
    n = len(sizes)
    best = None
    off = [-1] * n   # (-1: not placed yet)

    def place(k: int, arena: int) -> None:
        nonlocal best
        if best is not None and arena >= best:
            return
        if k == n:
            best = arena
            return
        for i in range(n):
            if off[i] < 0:
                o = 0
                for j in nbrs[i]:
                    if off[j] >= 0:
                        o = max(o, -(-(off[j] + sizes[j]) // align) * align)
                off[i] = o
                place(k + 1, max(arena, o + sizes[i]))
                off[i] = -1

    place(0, 0)
    return best


def problems_auto_solves(run) -> list[BufferProblem]:
    """Every problem ``memplan.solvers.auto.solve`` is handed while ``run()`` plans, in order (``auto.solve`` wrapped
    for the call and put back). Why: the skyline and quality tests hold ``auto``'s choices against the very problem a
    plan solves, which only the planner builds."""
    from memplan.solvers import auto

    seen: list[BufferProblem] = []
    real = auto.solve

    def spy(problem, *args, **kwargs):
        seen.append(problem)
        return real(problem, *args, **kwargs)
    auto.solve = spy
    try:
        run()
    finally:
        auto.solve = real
    return seen
