"""In-place pairs a plan left apart, put back over their inputs where those bytes are free.

Why: an in-place pair (``problem.inplace``: an output its node may write over its input) that a solver
placed apart costs a runtime a copy on every call — the input moved to the output's bytes before an
in-place kernel runs, or an out-of-place twin launched instead (the ATen executor counts them as
``copies``). The solvers minimise the arena and are indifferent between an arena-equal packing that
joins a pair and one that does not (``size`` and the exact solvers do not look at pairs at all). So, after
the arena is settled, each pair left apart is tried once, in the problem's order (a chain of in-place
ops is joined link by link): its output moves onto its input's offset when no buffer it conflicts with
holds any of those bytes and it ends within the arena. A move that would split a pair already joined on
that output is not made, so the number of joined pairs only grows; the arena never changes. A pair whose
tensors sit at different offsets in their roots (``problem.meta["inplace_inexact"]``: a view at an offset)
or of different sizes is left alone: the roots joined would put the output shifted over its input, or over
a smaller or larger one, which a GPU runtime stages (a copy per call) or refuses (an f16 output over f32).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..problem import BufferProblem, Solution

#: Buffers x pairs left apart above which the pass is skipped: each pair scans every buffer once (a
#: vectorised sweep, its candidates' conflicts one array test), so this bounds the pass at a few seconds
#: (measured: 10,000 buffers in one HB chain, 5,000 pairs, every buffer a candidate: 2.8 s; typical: 0.1 s).
REJOIN_WORK = 50_000_000


def rejoin_inplace(problem: BufferProblem, sol: Solution) -> Solution | None:
    """``sol`` with in-place pairs joined where their input's bytes are free for the output; None if none is."""
    offsets = np.asarray(sol.offsets, dtype=np.int64).copy()
    shifted = problem.meta.get("inplace_inexact", frozenset())
    apart = [(o, i) for o, i in problem.inplace
             if offsets[o] != offsets[i] and problem.sizes[o] > 0 and (o, i) not in shifted]
    if not apart or len(problem) * len(apart) > REJOIN_WORK:
        return None
    sizes = problem.sizes.astype(np.int64)
    partners: dict[int, list[int]] = {}
    for o, i in problem.inplace:
        partners.setdefault(o, []).append(i)
        partners.setdefault(i, []).append(o)
    joined = 0
    for o, i in apart:
        target = int(offsets[i])
        if offsets[o] == target or target + int(sizes[o]) > sol.arena:
            continue
        if any(offsets[p] == offsets[o] and p != i for p in partners[o]):
            continue   # o already shares its offset with another partner: moving it would split that pair
        if _blocked(problem, offsets, sizes, o, target):
            continue
        offsets[o] = target
        joined += 1
    if not joined:
        return None
    return replace(sol, offsets=offsets, info={**sol.info, "rejoined": joined})


def _blocked(problem: BufferProblem, offsets: np.ndarray, sizes: np.ndarray, o: int, target: int) -> bool:
    """Whether a buffer that conflicts with ``o`` holds a byte of ``[target, target + size[o])``."""
    end = target + int(sizes[o])
    cand = np.nonzero((offsets < end) & (offsets + sizes > target) & (sizes > 0)
                      & (problem.lower < problem.upper[o]) & (problem.lower[o] < problem.upper))[0]
    cand = cand[cand != o]
    # one array test, not a Python conflicts() per candidate: under HB order a time-overlapping byte sharer need
    # not conflict, so a long HB chain of wide intervals made every pair scan them all (quadratic)
    return bool(problem._conflict_mask(np.full(len(cand), o, dtype=np.int64), cand).any())
