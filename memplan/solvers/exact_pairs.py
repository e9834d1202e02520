"""In-place pairs a plan may overlap only exactly: an output over its input at the same offset, or apart.

Why: the contract (rule 3) lets an in-place output share any byte of its input's root, and a problem's
``compatible`` pairs say just that, so the solvers took a partner's bytes as free anywhere: ``memplan.plan`` put a
node's output ``y`` (``inplace {y: xa}``) over ``xb``, another view of ``xa``'s root the node still reads, or an
output shifted a few bytes over its own input. A kernel writes an in-place output over its input element by element;
written anywhere else over bytes the node reads it races (or a runtime stages the inputs with a copy per call, or
refuses the op). So the solve step keeps the pairs a runtime can run in place and nothing else:

- ``strict_pairs``: the pairs ``meta["inplace_inexact"]`` lists (``lifetimes.inexact_inplace``: roots joined would
  not put the output exactly over the input alone) are conflicts, not partners;
- ``shifted_pairs``: the partners a packing overlaps anywhere but with the output exactly on its input (the same
  offset, or ``meta["inplace_shift"]`` apart where the input is a view at an offset in its root: ``y`` over the second
  half ``xa`` of ``X``); ``solvers._solve`` moves each such output onto its input where those bytes are free
  (``rejoin``), else solves again with those pairs as conflicts, until none is left (each round removes at least one
  pair, so it ends). Every partner is joined exactly or disjoint in every plan;
- ``ExactOrApart``: greedy's and size's packings (and auto's lift to the top) keep every pair exact or apart as they
  place, so theirs need none of that repair.

The problem's ``lower_bound`` stays the contract's (a bound on every safe plan: fewer partners only raise the
arena); a bound a solver proved for the stricter problem is no bound on the contract's plans, so the solution claims
only the problem's (``contract_claim``). The verifier keeps the contract's rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from ..problem import BufferProblem, Solution, Status, gap_of
from .placement import best_fit, first_fit, fits_at

#: ``separate``'s work (pairs x buffers: each pair scans every buffer once, vectorised) above which the problem is
#: solved again instead (the same bound as ``rejoin.REJOIN_WORK``: a few seconds)
SEPARATE_WORK = 50_000_000


def strict_pairs(problem: BufferProblem) -> BufferProblem:
    """``problem`` with its inexact in-place pairs (``meta["inplace_inexact"]``) as conflicts; ``problem`` itself
    where it lists none."""
    shifted = problem.meta.get("inplace_inexact")
    if not shifted:
        return problem
    return without_pairs(problem, shifted)


def without_pairs(problem: BufferProblem, pairs: Iterable[tuple[int, int]]) -> BufferProblem:
    """``problem`` where the buffers of each of ``pairs`` conflict as any two others do: gone from ``compatible``,
    ``inplace`` and ``meta["inplace_inexact"]`` (every in-place entry between the two roots: one node's several
    pairs over one root pair share one answer)."""
    drop = {(min(a, b), max(a, b)) for a, b in pairs}
    if not drop:
        return problem
    meta = dict(problem.meta)
    for name in ("inplace_inexact", "inplace_resized"):
        if name in meta:
            meta[name] = frozenset(p for p in meta[name] if (min(p), max(p)) not in drop)
    if "inplace_shift" in meta:
        meta["inplace_shift"] = {p: d for p, d in meta["inplace_shift"].items() if (min(p), max(p)) not in drop}
    return replace(problem, compatible=frozenset(problem.compatible - drop),
                   inplace=tuple(p for p in problem.inplace if (min(p), max(p)) not in drop), meta=meta)


def pair_shifts(problem: BufferProblem) -> dict[tuple[int, int], int]:
    """Each ``compatible`` pair ``(a, b)`` (``a < b``) with the offset of ``b`` less ``a``'s that puts its output
    exactly on its input: ``meta["inplace_shift"]`` (keyed ``(out, in)``: a view's first byte off its root's), else
    0."""
    shift = problem.meta.get("inplace_shift") or {}
    out = {}
    for o, i in problem.inplace:
        key = (min(o, i), max(o, i))
        if key in problem.compatible:
            d = int(shift.get((o, i), 0))
            out[key] = d if o == key[1] else -d
    return out


def inplace_targets(problem: BufferProblem) -> dict[int, tuple[int, int]]:
    """Each in-place output buffer's input buffer (the last ``problem.inplace`` entry of the output, as the greedy
    solvers always took it) and the offset of the output less the input's that puts the output exactly on its
    input: ``meta["inplace_shift"]``, else 0.

    Why the shift: a heuristic that put every in-place output at its input's own offset put the output of a pair
    over a view at an offset in its root (``y`` over ``X[4096:]``) at ``X``'s first byte, off its place; the solve
    moved it afterwards or, past ``SEPARATE_WORK``, solved again with every such pair apart (``bench scale --inplace
    20000 --inplace-shape views``: an arena of twice the bound)."""
    shift = problem.meta.get("inplace_shift") or {}
    return {o: (i, int(shift.get((o, i), 0))) for o, i in problem.inplace}


def over_input(src: tuple[int, int] | None, size: int, sizes, offsets) -> int | None:
    """The offset that puts an in-place output root of ``size`` bytes exactly on its placed input (``src``: the input
    and the shift, ``inplace_targets``), where it starts at 0 or after; else None. The caller still tests those bytes
    free.

    Why not only within the input's root (the rule the greedy solvers kept until round 53): an output that is a view
    of a larger root (``O[64:192]`` over a 128-byte input, or ``O[0:128]`` of 192 bytes over one) has a root reaching
    past its input's on one side, and the pair is exact all the same (``lifetimes._exact_shift``: the roots share the
    output's bytes only); refused its place, the output went to the best fit among every block but its input's, so
    over its input off its place (``separate``, or a second solve with the pair apart) or, at best, apart."""
    if src is None:
        return None
    j, d = src
    at = offsets[j] + d
    return at if at >= 0 else None


class ExactOrApart:
    """A packing's guard, buffer by buffer, that every in-place partner lies exactly on its partner or apart.

    Why: greedy and size take an in-place partner's bytes as free (``compatible``), and where the exact place was
    taken (a buffer placed earlier holds it), lay before the arena's first byte, or was never tried (size's outputs
    of shift 0, an input placed after its larger output), the fit among the other blocks put the output over its
    input off its place: the solve then moved it afterwards (``separate``) or solved the whole problem again with the
    pair apart (about 1 random in-place graph in 12 on 1-4 streams, ``tests/test_inplace_round53.py``). Here a place
    that overlaps a placed partner off its place (``clash``) is replaced (``mend``) by the buffer's exact place on a
    placed partner where those bytes are free, else by the fit with its placed partners blocking too. A place that
    clashes with nothing is kept as it was: the packings (and plans) that never needed the repair stay the same.

    ``order``: the sweep's placement order (a buffer is placed once every buffer before it is); the fallback lists the
    placed buffers the buffer conflicts with itself (``BufferProblem._conflicts_of``), so every sweep of a solver
    gets the same offset however it finds its blocks."""

    __slots__ = ("problem", "mates", "rank", "ranks", "sizes", "best")

    def __init__(self, problem: BufferProblem, order, *, best: bool) -> None:
        self.problem = problem
        shifts = pair_shifts(problem)
        self.mates: dict[int, list[tuple[int, int]]] = {}   # buffer -> (partner, own offset less the partner's)
        for a, b in sorted(problem.compatible):
            d = shifts.get((a, b), 0)
            self.mates.setdefault(a, []).append((b, -d))
            self.mates.setdefault(b, []).append((a, d))
        self.ranks = np.full(len(problem), len(problem), dtype=np.int64)   # (a buffer not in ``order``: never placed)
        self.ranks[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        self.rank = self.ranks.tolist()   # (plain ints: the per-buffer test reads them one at a time)
        self.sizes = problem.sizes.tolist()
        self.best = best

    @classmethod
    def of(cls, problem: BufferProblem, order, *, best: bool) -> ExactOrApart | None:
        """The guard of a problem with in-place pairs (``problem.inplace``: only they must be exact, as in
        ``solvers._solve``); None for any other."""
        return cls(problem, order, best=best) if problem.inplace and problem.compatible else None

    def _placed(self, i: int) -> list[tuple[int, int]]:
        rank, sizes, ri = self.rank, self.sizes, self.rank[i]
        return [(p, rel) for p, rel in self.mates[i] if rank[p] < ri and sizes[p]]

    def clash(self, i: int, at: int, offsets) -> bool:
        """Whether buffer ``i`` at ``at`` overlaps a placed partner anywhere but exactly."""
        rank, sizes, ri = self.rank, self.sizes, self.rank[i]
        end = at + sizes[i]
        for p, rel in self.mates[i]:
            if rank[p] < ri and sizes[p]:
                op = offsets[p]
                if op < end and at < op + sizes[p] and at - op != rel:
                    return True
        return False

    def mend(self, i: int, at: int, offsets) -> int:
        """``at`` where ``i`` has no partner or clashes with none; else its exact place on a placed partner (in the
        problem's pair order) where that is free, else the best (greedy) or first (size) fit clear of every placed
        partner too."""
        if i not in self.mates or not self.sizes[i] or not self.clash(i, at, offsets):
            return at
        p_ = self.problem
        size = self.sizes[i]
        near = np.flatnonzero((self.ranks < self.rank[i]) & (p_.sizes > 0) & (p_.lower < p_.upper[i])
                              & (p_.lower[i] < p_.upper))
        near = near[p_._conflicts_of(i, near)].tolist()
        blocks = [(int(offsets[j]), int(offsets[j]) + self.sizes[j]) for j in near]
        align = max(int(p_.alignment), 1)
        placed = self._placed(i)
        for p, rel in placed:
            cand = int(offsets[p]) + rel
            if cand >= 0 and cand % align == 0 and fits_at(blocks, cand, size) and not self.clash(i, cand, offsets):
                return cand
        blocks += [(int(offsets[p]), int(offsets[p]) + self.sizes[p]) for p, _rel in placed]
        return (best_fit if self.best else first_fit)(blocks, size, align)


def shifted_pairs(problem: BufferProblem, offsets) -> list[tuple[int, int]]:
    """The ``compatible`` pairs that ``offsets`` overlaps (a byte in common) anywhere but with the output exactly on
    its input (``pair_shifts``; the same offset for a pair listed without an in-place entry), sorted."""
    if not problem.compatible:
        return []
    off = np.asarray(offsets, dtype=np.int64)
    sizes = np.asarray(problem.sizes, dtype=np.int64)
    keys = sorted(problem.compatible)
    shifts = pair_shifts(problem)
    a, b = np.array(keys, dtype=np.int64).reshape(-1, 2).T
    d = np.array([shifts.get(k, 0) for k in keys], dtype=np.int64)
    bad = (off[b] - off[a] != d) & (off[a] < off[b] + sizes[b]) & (off[b] < off[a] + sizes[a]) & (sizes[a] > 0) & (
        sizes[b] > 0)
    return [(int(x), int(y)) for x, y in zip(a[bad], b[bad])]


def contract_claim(problem: BufferProblem, sol: Solution) -> Solution:
    """``sol`` of ``problem`` made stricter (``strict_pairs``, ``without_pairs``), claiming only what holds for
    ``problem`` itself: a bound no higher than ``problem.lower_bound`` and OPTIMAL only where the arena meets it (else
    FEASIBLE). Why: the oracle's optimum of the contract's plans was below the arena an exact solver called OPTIMAL,
    having proved it for the stricter problem."""
    lb = int(problem.lower_bound or 0)
    if int(sol.lower_bound) <= lb and (sol.status != Status.OPTIMAL or sol.arena <= lb):
        return sol
    bound = min(int(sol.lower_bound), lb)
    status = sol.status if sol.status == Status.HEURISTIC or sol.arena <= bound else Status.FEASIBLE
    info = dict(sol.info)
    if "bound" in info:
        info.update({"bound": bound, "gap": gap_of(sol.arena, bound)})
    return replace(sol, status=status, lower_bound=bound, info=info)


def separate(problem: BufferProblem, sol: Solution, pairs: Iterable[tuple[int, int]]) -> Solution | None:
    """``sol`` with the output of each of ``pairs`` (``compatible`` pairs it overlaps off their place:
    ``shifted_pairs``) put right within the arena: all of them lifted out, then each put exactly on its input where
    those bytes hold no partner it would not lie exactly on (buffers it conflicts with there, with no partners of their
    own, are moved into the lowest free bytes), the rest into the lowest free bytes; None where one finds no room
    (then the problem is solved again with them apart).

    Why lifted together: one node's outputs over the views of one root (a SPLIT, ``bench scale --inplace views``)
    were packed over each other's views, so each one's place was held by a sibling still to move. Why a move before
    solving again: solved again, the whole packing changed (``auto`` chose another heuristic's plan for a llama step
    whose residual pairs were shifted, and one attention group stopped fusing)."""
    pairs = list(pairs)
    n = len(problem)
    if len(pairs) * n > SEPARATE_WORK:
        return None
    off = np.asarray(sol.offsets, dtype=np.int64).copy()
    sizes = np.asarray(problem.sizes, dtype=np.int64)
    shifts = pair_shifts(problem)
    outs = {(min(o, i), max(o, i)): (o, i) for o, i in problem.inplace}
    partners: dict[int, list[tuple[int, int]]] = {}   # buffer -> (partner, partner's offset less its own, joined)
    for (a, b), d in shifts.items():
        partners.setdefault(a, []).append((b, d))
        partners.setdefault(b, []).append((a, -d))
    # the outputs of the shifted pairs and their siblings (every output over the same input: the views of one root)
    ins = {outs.get(p, (p[1], p[0]))[1] for p in pairs}
    lifted = sorted({outs.get(p, (p[1], p[0]))[0] for p in pairs} | {o for o, i in problem.inplace if i in ins})
    if len(lifted) * n > SEPARATE_WORK:
        return None
    away = int(sol.arena) + int(sizes.max(initial=0)) + 1   # past every byte: a lifted buffer holds none
    off[lifted] = away
    align = max(int(problem.alignment), 1)

    def near(o: int) -> tuple[np.ndarray, np.ndarray]:
        """The placed buffers that conflict with ``o``, and its placed partners with their offset less ``o``'s
        when joined."""
        cand = np.nonzero((sizes > 0) & (off < away) & (problem.lower < problem.upper[o])
                          & (problem.lower[o] < problem.upper))[0]
        cand = cand[cand != o]
        hit = cand[problem._conflict_mask(np.full(len(cand), o, dtype=np.int64), cand)]
        mates = [(p, d) for p, d in partners.get(o, ()) if off[p] < away and sizes[p] > 0]
        return hit, np.array(mates, dtype=np.int64).reshape(-1, 2)

    def free_at(o: int) -> int:
        hit, mates = near(o)
        spans = [(int(off[j]), int(off[j] + sizes[j])) for j in hit]
        spans += [(int(off[p]), int(off[p] + sizes[p])) for p, _d in mates]
        return first_fit(sorted(spans), int(sizes[o]), align)

    left: list[int] = []
    moved_too: list[int] = []
    for o in lifted:
        o_in = [(i, -d) for i, d in partners.get(o, ()) if outs.get((min(o, i), max(o, i)), (None,))[0] == o]
        placed = False
        for i, rel in o_in:   # rel: o's offset less i's when o lies exactly on i
            if off[i] >= away:
                continue
            target = int(off[i]) + rel
            end = target + int(sizes[o])
            if target < 0 or end > sol.arena:
                continue
            hit, mates = near(o)
            if any(off[p] < end and target < off[p] + sizes[p] and off[p] - target != d for p, d in mates):
                continue
            blockers = [int(j) for j in hit if off[j] < end and target < off[j] + sizes[j]]
            if any(j in partners for j in blockers):
                continue   # (a blocker with partners of its own stays: moving it could shift those)
            off[blockers] = away   # plain buffers in the way: placed again below, into free bytes
            moved_too.extend(blockers)
            off[o] = target
            placed = True
            break
        if not placed:
            left.append(o)
    for o in left + moved_too:
        at = free_at(o)
        if at + int(sizes[o]) > sol.arena:
            return None
        off[o] = at
    if shifted_pairs(problem, off):
        return None
    return replace(sol, offsets=off, info={**sol.info, "separated": len(lifted)})
