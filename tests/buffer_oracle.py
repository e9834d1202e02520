"""A brute-force optimum for tiny buffer problems of any conflict relation, sharing no code with the solvers.

Why: round 37's oracle (tests/test_solver_round37.py) read conflicts off the intervals alone; multi-stream problems
(an ``HBOrder``) and in-place pairs (``compatible``) are not interval graphs, and their bounds come from elsewhere
(a search's exhausted capacities, CP-SAT). Here the conflict relation is read from the raw fields by the rules
``BufferProblem``'s docstrings state, and the optimum is found by depth-first search over every order of canonical
placements: any packing pushed down as far as it goes puts each buffer at the aligned top of the highest buffer below
it that it conflicts with (or 0), so placing the buffers in every order, each on the aligned top of the placed ones it
conflicts with, reaches the optimum. Branches at or above the best arena so far are cut (sound: tops only grow).
"""

from __future__ import annotations

from collections.abc import Sequence


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def precedes(order: dict, i: int, j: int) -> bool:
    """``i`` may hand its bytes to ``j``: ``i`` not live to the end, ``j`` not live from the start, and on every
    stream ``j``'s first access at or after the point from which all of ``i``'s accesses are visible."""
    if order["has_end"][i] or order["has_start"][j]:
        return False
    return all(f >= v for f, v in zip(order["first"][j], order["visible"][i]))


def conflict_matrix(sizes: Sequence[int], lower: Sequence[int], upper: Sequence[int], *,
                    compatible: set[tuple[int, int]] = frozenset(), order: dict | None = None) -> list[list[bool]]:
    """Whether each pair of buffers must not share a byte: both have bytes and a non-empty interval, the
    half-open intervals overlap, the pair is not in-place compatible and not ordered by happens-before."""
    n = len(sizes)
    out = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            c = (sizes[i] > 0 and sizes[j] > 0 and lower[i] < upper[i] and lower[j] < upper[j]
                 and lower[i] < upper[j] and lower[j] < upper[i] and (i, j) not in compatible
                 and not (order is not None and (precedes(order, i, j) or precedes(order, j, i))))
            out[i][j] = out[j][i] = c
    return out


def optimum(sizes: Sequence[int], conflict: list[list[bool]], alignment: int, cap: int | None = None) -> int:
    """The smallest arena of any packing (``max(offset + size)`` over every buffer, aligned offsets).
    ``cap``: an arena known to be reachable (prunes from the start; None: the sum of the aligned sizes)."""
    n = len(sizes)
    live = [i for i in range(n) if any(conflict[i])]
    floor = max([0] + list(sizes))   # every buffer's bytes lie in the arena, live or not; alone, at offset 0
    best = [cap if cap is not None else sum(_align(s, alignment) for s in sizes) + 1]
    off = [0] * n
    placed = [False] * n

    def dfs(count: int, top: int) -> None:
        if top >= best[0]:
            return
        if count == len(live):
            best[0] = top
            return
        for i in live:
            if placed[i]:
                continue
            o = _align(max([off[j] + sizes[j] for j in live if placed[j] and conflict[i][j]] + [0]), alignment)
            t = max(top, o + sizes[i])
            if t >= best[0]:
                continue
            placed[i], off[i] = True, o
            dfs(count + 1, t)
            placed[i] = False

    dfs(0, 0)
    return max(floor, best[0] if live else 0)


def tiny_problem(data, most: int) -> tuple[list[int], list[int], list[int], int, set[tuple[int, int]]]:
    """A hypothesis draw (``data``) of a problem small enough for ``optimum``: 1 to ``most`` buffers (sizes off and on
    the alignment's multiples), lifetimes over 5 steps, any alignment the solvers meet and any set of in-place pairs
    (``compatible``): ``(sizes, lower, upper, alignment, compatible)``."""
    from hypothesis import strategies as st

    n = data.draw(st.integers(1, most))
    alignment = data.draw(st.sampled_from([1, 8, 64, 256]))
    sizes = data.draw(st.lists(st.one_of(st.integers(0, 700), st.sampled_from([256, 512])), min_size=n, max_size=n))
    lower = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    upper = [lo + data.draw(st.integers(1, 4)) for lo in lower]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    compatible = set(data.draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))) if pairs else set()
    return sizes, lower, upper, alignment, compatible
