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

#: Buffers x pairs left apart above which the pass is skipped where it scans (``_Scan``): each pair scans every
#: buffer once (a vectorised sweep, its candidates' conflicts one array test), so this bounds the pass at a few
#: seconds (measured: 10,000 buffers in one HB chain, 5,000 pairs, every buffer a candidate: 2.8 s; typical: 0.1 s).
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
    blocked = _Neighbours(problem, offsets, sizes) if _lists_pairs(problem) else _Scan(problem, offsets, sizes)
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
        if blocked(o, target):
            continue
        offsets[o] = target
        joined += 1
    if not joined:
        return None
    return replace(sol, offsets=offsets, info={**sol.info, "rejoined": joined})


def _lists_pairs(problem: BufferProblem) -> bool:
    """Whether the problem's conflicting pairs are listed anyway, or cost no more than the solvers' listing: where
    ``size`` plans by pairs (``size.dense_route``), it has listed them already (``conflict_pairs`` keeps them)."""
    from .size import dense_route

    return dense_route(problem) == "pairs"


class _Neighbours:
    """Whether a buffer that conflicts with ``o`` holds a byte of ``[target, target + size[o])``, from ``o``'s
    conflict list (``problem.conflict_csr``): a pair costs its output's conflicts, not a scan of every buffer.

    Why: ``_Scan`` scanned all n buffers per pair left apart, n x pairs in all; a 96-layer transformer of 10,000
    nodes (1,476 pairs apart) spent 0.26 s there, and the ``REJOIN_WORK`` bound that kept that in check gave up
    the pass altogether from about 20,000 nodes. The same relation: ``conflict_pairs`` lists exactly the pairs of
    non-empty, time-overlapping buffers that ``_conflict_mask`` keeps, as the scan tests them."""

    def __init__(self, problem: BufferProblem, offsets: np.ndarray, sizes: np.ndarray):
        self.bounds, self.flat = problem.conflict_csr(as_lists=False)
        self.offsets, self.sizes = offsets, sizes

    def __call__(self, o: int, target: int) -> bool:
        nb = self.flat[self.bounds[o]:self.bounds[o + 1]]
        at = self.offsets[nb]
        return bool(((at < target + int(self.sizes[o])) & (at + self.sizes[nb] > target)).any())


class _Scan:
    """``_Neighbours``' answer from one vectorised scan of every buffer: for problems whose conflicting pairs are
    too many to list (``size`` plans them by windows)."""

    def __init__(self, problem: BufferProblem, offsets: np.ndarray, sizes: np.ndarray):
        self.problem, self.offsets, self.sizes = problem, offsets, sizes

    def __call__(self, o: int, target: int) -> bool:
        problem, offsets, sizes = self.problem, self.offsets, self.sizes
        end = target + int(sizes[o])
        cand = np.nonzero((offsets < end) & (offsets + sizes > target) & (sizes > 0)
                          & (problem.lower < problem.upper[o]) & (problem.lower[o] < problem.upper))[0]
        cand = cand[cand != o]
        # one array test, not a Python conflicts() per candidate: under HB order a time-overlapping byte sharer need
        # not conflict, so a long HB chain of wide intervals made every pair scan them all (quadratic)
        return bool(problem._conflict_mask(np.full(len(cand), o, dtype=np.int64), cand).any())
