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
tensors sit at different offsets in their roots (``problem.meta["inplace_shift"]``: a view at an offset)
or differ in size (``inplace_resized``) is left alone by this pass: a GPU runtime may stage an output over a
larger input (a copy per call) or refuse it (an f16 output over f32); the pairs no placement makes exact
(``inplace_inexact``) are conflicts, and a pair the solver overlapped off its place is put right by
``exact_pairs.separate``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..problem import BufferProblem, Solution
from .size import dense_route

#: The pass's work above which it is skipped: where it scans (``_Scan``) buffers x pairs left apart, each
#: pair scanning every buffer once (a vectorised sweep, its candidates' conflicts one array test), so this bounds the
#: pass at a few seconds (measured: 10,000 buffers in one HB chain, 5,000 pairs, every buffer a candidate: 2.8 s;
#: typical: 0.1 s); by conflict lists (``_Neighbours``) the conflicts read, at most twice the conflicting pairs
#: (``_blocked_test``).
REJOIN_WORK = 50_000_000


def rejoin_inplace(problem: BufferProblem, sol: Solution) -> Solution | None:
    """``sol`` with in-place pairs joined where their input's bytes are free for the output; None if none is."""
    offsets = np.asarray(sol.offsets, dtype=np.int64).copy()
    shift = problem.meta.get("inplace_shift") or {}
    skip = problem.meta.get("inplace_inexact", frozenset()) | problem.meta.get("inplace_resized", frozenset())
    pairs = [(o, i) for o, i in problem.inplace if (o, i) not in skip and not shift.get((o, i))]
    apart = [(o, i) for o, i in pairs if offsets[o] != offsets[i] + shift.get((o, i), 0) and problem.sizes[o] > 0]
    if not apart:
        return None
    sizes = problem.sizes.astype(np.int64)
    blocked = _blocked_test(problem, offsets, sizes, len(apart))
    if blocked is None:
        return None
    partners: dict[int, list[tuple[int, int]]] = {}   # buffer -> (partner, partner's offset less its own when joined)
    for o, i in problem.inplace:
        d = int(shift.get((o, i), 0))
        partners.setdefault(o, []).append((i, -d))
        partners.setdefault(i, []).append((o, d))
    joined = 0
    for o, i in apart:
        target = int(offsets[i]) + int(shift.get((o, i), 0))
        if offsets[o] == target or target < 0 or target + int(sizes[o]) > sol.arena:
            continue
        if any(offsets[p] == offsets[o] + d and p != i for p, d in partners[o]):
            continue   # o already joined with another partner: moving it would split that pair
        if blocked(o, target) or any(p != i and offsets[p] != target + d and offsets[p] < target + int(sizes[o])
                                     and target < offsets[p] + sizes[p] and sizes[p] > 0 for p, d in partners[o]):
            continue   # (another partner there, not joined to it: the move would overlap that pair off its place)
        offsets[o] = target
        joined += 1
    if not joined:
        return None
    return replace(sol, offsets=offsets, info={**sol.info, "rejoined": int(sol.info.get("rejoined", 0)) + joined})


def _blocked_test(problem: BufferProblem, offsets: np.ndarray, sizes: np.ndarray, apart: int):
    """The conflict lists' test where its work is within ``REJOIN_WORK``, else the scan's where its work is, else None
    (the pass is skipped). By conflict
    lists (``_Neighbours``) the work is each conflict read at most twice, plus a look per pair apart, and only where
    they are listed anyway (``size`` lists them where it plans by pairs); the scan (``_Scan``) reads every buffer
    per pair apart. Both give the same answers, so the plan depends only on whether either fits: a 50,000-node
    transformer's 9,952 pairs apart were over the scan's bound, none was joined; by lists 2,410 are (0.5 s)."""
    # (counted, not listed: exact up to the most pairs that pass, so the test is the exact one)
    if dense_route(problem) == "pairs" and (
            2 * problem.conflict_count(stop_above=max(0, (REJOIN_WORK - apart) // 2)) + apart <= REJOIN_WORK):
        return _Neighbours(problem, offsets, sizes)
    if len(problem) * apart <= REJOIN_WORK:
        return _Scan(problem, offsets, sizes)
    return None


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
