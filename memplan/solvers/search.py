"""Exact branch-and-bound over canonical placements — the idea behind google/minimalloc, in Python.

Why a search and not only CP-SAT: a time x offset model (NoOverlap2D) spends its effort on
symmetric placements and cannot prove the minimalloc "challenging" packings in seconds; a search
that only ever builds *canonical* solutions can. In a solution pushed down as far as it goes, every
buffer rests at offset 0 or on the top of a buffer it conflicts with. Placing buffers in order of
offset, the next buffer's offset is therefore fixed: the highest top among the placed buffers it
conflicts with. The search only chooses *which* buffer comes next, and prunes with:

- canonical order: offsets never decrease, ties broken by a static preorder (no permutations of one
  packing are searched twice);
- dominance: a buffer is never placed at or above the top another unplaced buffer could still reach;
- section inference: a *section* is the set of buffers live just before some buffer ends; as they
  pairwise conflict (for interval problems; otherwise a clique grown inside each section), their
  unplaced sizes must stack above the section's floor within the capacity;
- hatless pruning: if a buffer with no unplaced neighbour failed, no sibling can do better;
- dynamic decomposition: once no unplaced buffer spans a time cut, both sides are solved apart;
- three static preorders searched side by side (interleaved deterministically), so one bad order
  cannot stall the others; the first to finish decides.

It works for any conflict relation (multi-stream HB-filtered problems, in-place pairs): canonical
placement only needs the conflict lists, and inference uses a clique of each section.

The arena is minimised in rounds. Each round first tries the proven bound itself with a node
budget that doubles every round: on real graphs and on most benchmark inputs the bound is reachable,
and one long enough try there both finds the packing and proves it optimal (a ladder that only gave
the bound an equal share kept finding slightly better packings and never reached it). The rest of the
round, twice the bound's nodes, improves the best arena: a ladder of capacities — one below the best
and rungs drawn from a seeded generator — each with a node budget that grows while nothing improves
(which capacity is quick to fill is erratic: heavy-tailed search times), then randomised restarts
one below the best with perturbed preorder scores. An exhausted search at capacity ``c`` proves
``c + 1`` a lower bound. ``problem.capacity`` is a hard cap; ``problem.meta["objective"] == "feasible"`` stops at the
first packing within it. Deterministic for a given seed, up to where the time limit cuts in.
"""

from __future__ import annotations

import copy
import random
import sys
import time

import numpy as np

from ..errors import BudgetError, SolverError
from ..problem import BufferProblem, Solution, arena_of, find_collision
from .options import SolveOptions

#: the static preorders tried in turn: W width, A area, T largest section total, Z size (descending)
PREORDERS = ("WAT", "TAW", "TWA")
#: random capacities tried per round of the ladder, besides the proven bound
LADDER_RUNGS = 8
#: node budget of one randomised restart (at least 4 per buffer) and how far scores are perturbed
RESTART_NODES = 3000
RESTART_JITTER = 0.3
#: time limit used when the caller gives none (the search is exact and could otherwise run long)
DEFAULT_TIME_LIMIT = 60.0
#: memory guard: buffers x sections they span (the section index is that big)
MAX_SECTION_ENTRIES = 5_000_000


class _Abort(Exception):
    """This preorder used up its node budget for this capacity."""


class _Timeout(Exception):
    """The deadline passed."""


class _Search:
    """State of one problem's search; ``feasible(cap, ...)`` runs one capacity."""

    def __init__(self, problem: BufferProblem):
        self.n = n = len(problem)
        self.size = problem.sizes.tolist()
        self.align = int(problem.alignment)
        self.active = [i for i in range(n) if self.size[i] > 0]
        lower, upper = problem.lower, problem.upper
        act = np.asarray(self.active, dtype=np.int64)
        ends = np.unique(upper[act]) if len(act) else np.zeros(0, dtype=np.int64)
        self.nsec = len(ends)
        slo = np.zeros(n, dtype=np.int64)
        shi = np.zeros(n, dtype=np.int64)
        if len(act):
            # section k is the slot just before time ends[k]: buffer i spans k iff lower < ends[k] <= upper
            slo[act] = np.searchsorted(ends, lower[act], side="right")
            shi[act] = np.searchsorted(ends, upper[act], side="right")
        self.slo, self.shi = slo.tolist(), shi.tolist()
        members_total = int((shi - slo).sum())
        if members_total > MAX_SECTION_ENTRIES:
            raise SolverError(f"search: problem too large ({len(act)} buffers spanning {members_total} "
                              f"section entries, limit {MAX_SECTION_ENTRIES}); use greedy, size or cpsat")
        cut = np.zeros(self.nsec + 1, dtype=np.int64)
        if len(act):
            # cut[k]: buffers spanning both section k and k + 1
            np.add.at(cut, slo[act], 1)
            np.add.at(cut, np.maximum(shi[act] - 1, slo[act]), -1)
        self.cuts0 = np.cumsum(cut)[: max(self.nsec - 1, 0)]
        self.adj = [list(a) for a in problem.conflict_lists()]
        self.adjn = [np.asarray(a, dtype=np.int64) for a in self.adj]
        self.maxnb = [max([self.size[j] for j in a], default=0) for a in self.adj]
        self.windows: dict[tuple[int, int, int], tuple] = {}  # (buffer, partition) -> sections to re-check
        self.sizes = problem.sizes.copy()
        self.width = (upper - lower).tolist()
        members: list[list[int]] = [[] for _ in range(self.nsec)]
        for i in self.active:
            for k in range(self.slo[i], self.shi[i]):
                members[k].append(i)
        # inference needs buffers that pairwise conflict: all of a section's for interval problems;
        # otherwise (HB order, in-place pairs) a clique grown greedily in it, largest buffer first
        self.interval = problem.is_interval
        if not self.interval:
            nbr = [set(a) for a in self.adj]
            size = self.size
            cliques = []
            for mem in members:
                clique: list[int] = []
                for i in sorted(mem, key=lambda x: (-size[x], x)):
                    if all(j in nbr[i] for j in clique):
                        clique.append(i)
                cliques.append(sorted(clique))
            members = cliques
            secs_of: list[list[int]] = [[] for _ in range(n)]
            for k, c in enumerate(members):
                for i in c:
                    secs_of[i].append(k)
            self.ins = [np.asarray(x, dtype=np.int64) for x in secs_of]
            first = [x[0] if x else -1 for x in secs_of]
            last = [x[-1] + 1 if x else -1 for x in secs_of]
            self.rlo, self.rhi = [], []
            for i in range(n):
                ks = [first[j] for j in [i] + self.adj[i] if first[j] >= 0]
                ke = [last[j] for j in [i] + self.adj[i] if last[j] >= 0]
                self.rlo.append(min(ks, default=0))
                self.rhi.append(max(ke, default=0))
        else:
            self.ins = [slice(a, z) for a, z in zip(self.slo, self.shi)]
            self.rlo = [min([self.slo[i]] + [self.slo[j] for j in self.adj[i]]) for i in range(n)]
            self.rhi = [max([self.shi[i]] + [self.shi[j] for j in self.adj[i]]) for i in range(n)]
        # with alignment every buffer below the top of a stack takes its size rounded up, so a
        # section needs its rounded sizes less the largest rounding slack among them
        al = self.align
        self.asize = [-(-x // al) * al for x in self.size]
        asz = self.asize
        self.total0 = np.asarray([sum(asz[i] for i in c) - max([asz[i] - self.size[i] for i in c], default=0)
                                  for c in members], dtype=np.int64)
        # members of every section, flattened (CSR): for the least minimum offset of unplaced ones
        flat: list[int] = []
        ptr = [0]
        for m in members:
            flat.extend(m)
            ptr.append(len(flat))
        self.flat = np.asarray(flat, dtype=np.int64)
        self.ptr = np.asarray(ptr, dtype=np.int64)
        self.nodes = 0
        self.backtracks = 0
        #: per-buffer multipliers of the preorder scores (None: the static preorder)
        self.noise: list[float] | None = None

    # -- one capacity ---------------------------------------------------------------------------
    def feasible(self, cap: int, preorder: str, node_limit: int, deadline: float) -> list[int] | None:
        """A packing within ``cap`` (offsets), or None when none exists; raises _Abort/_Timeout."""
        gen = self.feasible_steps(cap, preorder, node_limit, deadline)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    def feasible_steps(self, cap: int, preorder: str, node_limit: int, deadline: float):
        """``feasible`` as a generator that yields every 256 nodes (to interleave several orders)."""
        n = self.n
        self.cap = cap
        self.order_key = preorder
        self.deadline = deadline
        self.nodes_left = node_limit
        self.asg = [-1] * n
        self.placed = np.zeros(n, dtype=bool)
        self.sol = [0] * n
        self.moeff = np.zeros(n, dtype=np.int64)  # minimum offsets of unplaced buffers; cap once placed
        self.floor = np.zeros(self.nsec, dtype=np.int64)
        self.total = self.total0.copy()
        self.cuts = self.cuts0.copy()
        if any(self.size[i] > cap for i in self.active):
            return None
        ok = True
        for lo, hi, bufs in self._partitions():
            if not (yield from self._sub_solve(lo, hi, bufs)):
                ok = False
                break
        if not ok:
            return None
        return list(self.sol)

    def _partitions(self):
        """Initial partitions: runs of sections joined by at least one spanning buffer."""
        if self.nsec == 0:
            return []
        bounds = [0] + [k + 1 for k in np.flatnonzero(self.cuts0 == 0).tolist()] + [self.nsec]
        members: dict[int, list[int]] = {}
        starts = np.asarray(bounds[:-1])
        for i in self.active:
            p = int(np.searchsorted(starts, self.slo[i], side="right")) - 1
            members.setdefault(p, []).append(i)
        return [(bounds[p], bounds[p + 1], members[p]) for p in sorted(members)]

    def _keys(self, bufs: list[int]) -> list[int]:
        total, slo, shi, size, width = self.total, self.slo, self.shi, self.size, self.width
        tmax = {b: int(total[slo[b]:shi[b]].max()) for b in bufs}
        noise = self.noise

        def key(b: int):
            k = []
            for c in self.order_key:
                if c == "W":
                    k.append(-width[b])
                elif c == "A":
                    k.append(-width[b] * size[b])
                elif c == "T":
                    k.append(-tmax[b])
                elif c == "Z":
                    k.append(-size[b])
            if noise is not None:  # a restart: the same heuristic, its scores perturbed per buffer
                k = [x * noise[b] for x in k]
            k.append(b)
            return tuple(k)

        return sorted(bufs, key=key)

    def _sub_solve(self, lo: int, hi: int, bufs: list[int]) -> bool:
        pre = np.asarray(self._keys(bufs), dtype=np.int64)
        return (yield from self._search(lo, hi, bufs, (pre, np.arange(len(pre), dtype=np.int64)), 0, 0))

    def _search(self, lo, hi, bufs, ordering, min_offset, min_p) -> bool:
        self.nodes += 1
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise _Abort
        if (self.nodes & 255) == 0:
            if time.perf_counter() > self.deadline:
                raise _Timeout
            yield
        asg, size = self.asg, self.size
        moeff = self.moeff
        un_b, un_p = ordering  # unplaced buffers of this subproblem and their preorder positions
        if len(un_b) == 0:
            for b in bufs:
                self.sol[b] = asg[b]
            return True
        offs = moeff[un_b]
        min_height = int((offs + self.sizes[un_b]).min())
        srt = np.argsort(offs * (len(bufs) + 1) + un_p, kind="stable")
        cand = zip(offs[srt].tolist(), un_p[srt].tolist(), un_b[srt].tolist())
        cap, adjn, align, placed, sizes = self.cap, self.adjn, self.align, self.placed, self.sizes
        floor, total, flat, ptr = self.floor, self.total, self.flat, self.ptr
        rlo, rhi, slo, shi, maxnb, windows = self.rlo, self.rhi, self.slo, self.shi, self.maxnb, self.windows
        ins, interval, asize = self.ins, self.interval, self.asize
        # the fullest sections: a buffer placed at o fails unless o + their total fits or it spans them all
        seg = total[lo:hi]
        t1 = int(seg.max()) if hi > lo else 0
        if interval:
            fullest = np.flatnonzero(seg == t1)
            k_first, k_last = int(fullest[0]) + lo, int(fullest[-1]) + lo
        for o, p, b in cand:
            if o < min_offset or (o == min_offset and p < min_p):
                continue
            if o >= min_height:
                break  # candidates are sorted by offset: every later one leaves a gap too
            sb = size[b]
            top = o + sb
            if top > cap:
                continue
            spans_fullest = not interval or (slo[b] <= k_first and k_last < shi[b])
            if o + t1 > cap and not spans_fullest:
                continue
            asg[b] = o
            placed[b] = True
            moeff[b] = cap
            nb = adjn[b]
            un = nb[~placed[nb]]
            hat = len(un) > 0
            h = -(-top // align) * align
            old = moeff[un]
            new = np.maximum(old, h)
            moeff[un] = new
            sec = ins[b]
            asb = asize[b]
            old_floor = floor[sec].copy()
            floor[sec] = h  # the next buffer of b's sections starts at an aligned offset above b
            total[sec] -= asb
            found = False
            if hat and h + maxnb[b] > cap and (sizes[un].max() + h > cap):
                pass  # a neighbour no longer fits under the capacity
            elif spans_fullest and o + total[lo:hi].max() > cap:
                pass  # (not spanning them, the fullest sections still fit: checked above)
            else:
                # only sections near b or its neighbours changed floor or least minimum offset
                key = (b, lo, hi)
                near = windows.get(key)
                if near is None:
                    ra, rb = max(rlo[b], lo), min(rhi[b], hi)
                    near = windows[key] = (ra, rb, flat[ptr[ra]:ptr[rb]], ptr[ra:rb] - ptr[ra])
                ra, rb, fl, st = near
                if rb <= ra:
                    ok = True
                else:
                    least = np.minimum.reduceat(moeff[fl], st)
                    ok = (np.maximum(np.maximum(floor[ra:rb], least), o) + total[ra:rb]).max() <= cap
                if ok:
                    keep = un_b != b
                    found = yield from self._decompose(lo, hi, bufs, (un_b[keep], un_p[keep]), o, p, b)
            floor[sec] = old_floor
            total[sec] += asb
            moeff[un] = old
            asg[b] = -1
            placed[b] = False
            moeff[b] = o
            if found:
                return True
            if not hat:
                break
        self.backtracks += 1
        return False

    def _decompose(self, lo, hi, bufs, ordering, o, p, b) -> bool:
        self.sol[b] = o
        a, z = self.slo[b], self.shi[b]
        if z - a < 2:
            return (yield from self._search(lo, hi, bufs, ordering, o, p))
        cuts = self.cuts
        cuts[a:z - 1] -= 1
        zeros = np.flatnonzero(cuts[a:z - 1] == 0)
        try:
            if len(zeros) == 0:
                return (yield from self._search(lo, hi, bufs, ordering, o, p))
            points = [lo] + (zeros + a + 1).tolist() + [hi]
            asg, slo, shi = self.asg, self.slo, self.shi
            for r_lo, r_hi in zip(points, points[1:]):
                sub = [x for x in bufs if asg[x] < 0 and slo[x] < r_hi and r_lo < shi[x]]
                if sub and not (yield from self._sub_solve(r_lo, r_hi, sub)):
                    return False
            return True
        finally:
            cuts[a:z - 1] += 1


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    """Minimise the arena (or, with ``meta["objective"] == "feasible"``, fit ``capacity``)."""
    t0 = time.perf_counter()
    limit = options.time_limit if options.time_limit is not None else DEFAULT_TIME_LIMIT
    deadline = t0 + limit
    progress = options.progress
    n = len(problem)
    lb = int(problem.lower_bound or 0)
    if options.warm_start is not None:  # a bound another exact solver proved for this problem
        lb = max(lb, int(options.warm_start.info.get("bound", 0)))
    cap = problem.capacity
    feasible_only = problem.meta.get("objective") == "feasible" and cap is not None

    best_off, best = _start(problem, options)
    if cap is not None and best > cap:
        best_off, best = None, cap + 1  # heuristics do not fit: the search must find one
    status = "FEASIBLE"
    interrupted = False
    s = _Search(problem) if n else None
    searches = [s] + [copy.copy(s) for _ in PREORDERS[1:]] if s is not None else []
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 4 * n + 1000))
    # one state for the whole solve, updated as soon as anything improves (Ctrl-C keeps it)
    m = _Minimiser(searches, problem, deadline, random.Random(options.seed), lb, best, best_off)
    # nodes per preorder per try, both growing: the bound's doubles every round (a reachable bound
    # is the common case and is found by one long enough try), the ladder's when a round gained nothing
    proof_budget, ladder_budget = max(2000, 4 * n), max(500, 2 * n)
    restart_nodes = max(RESTART_NODES, 4 * n)
    try:
        while searches and not m.done() and not (feasible_only and m.best_off is not None):
            if time.perf_counter() >= deadline:
                break
            if m.best_off is None:
                # nothing fits yet: first any packing within the capacity, with all the time left
                m.try_capacity(cap, None)
                if m.best_off is None:
                    break
            else:
                # 1. the bound, with a budget that doubles every round: when the bound can be
                #    reached (the common case) one long enough try there finds it and proves it
                spent = m.nodes()
                if not m.try_capacity(m.proven, proof_budget):
                    proof_budget *= 2
                on_bound = m.nodes() - spent
                # 2. passes of the improvement phase until it has had twice the bound's nodes
                spent = m.nodes()
                while not m.done():
                    if not m.improve(ladder_budget, restart_nodes):
                        ladder_budget = ladder_budget * 3 // 2
                    if m.nodes() - spent >= 2 * on_bound:
                        break
            if progress is not None:
                progress(f"search: best arena {m.best if m.best_off is not None else '-'}, bound {m.proven}, "
                         f"{time.perf_counter() - t0:.1f}s, {m.nodes()} nodes")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        sys.setrecursionlimit(old_limit)
    proven, best, best_off = m.proven, m.best, m.best_off
    if best_off is None:
        raise BudgetError(f"search: no packing within capacity {cap} found"
                          + (" (none exists)" if proven > (cap or 0) else f" in {limit:g}s")
                          + f"; lower bound {proven}")
    if find_collision(problem, best_off) is not None:  # pragma: no cover - a solver bug
        raise AssertionError("search produced overlapping buffers")
    if best <= proven:
        status = "OPTIMAL"
    proven = min(proven, best)
    info = {"bound": proven, "gap": round((best - proven) / max(best, 1), 6),
            "nodes": sum(x.nodes for x in searches), "backtracks": sum(x.backtracks for x in searches)}
    if interrupted:
        info["interrupted"] = True
    return Solution(best_off, best, "search", status, proven, info)


def _start(problem: BufferProblem, options: SolveOptions) -> tuple[np.ndarray, int]:
    """The best heuristic plan (or the caller's warm start): the upper bound to beat."""
    from . import size as size_solver
    from .greedy import solve as greedy

    cands = [greedy(problem, options), size_solver.solve(problem, options)]
    if options.warm_start is not None and len(options.warm_start.offsets) == len(problem):
        cands.append(options.warm_start)
    best = min(cands, key=lambda c: c.arena)
    return np.asarray(best.offsets, dtype=np.int64), int(best.arena)


class _Minimiser:
    """The proven bound and the best packing so far, and the tries that tighten them."""

    def __init__(self, searches: list[_Search], problem: BufferProblem, deadline: float,
                 rng: random.Random, proven: int, best: int, best_off: np.ndarray | None):
        self.searches, self.problem, self.deadline, self.rng = searches, problem, deadline, rng
        self.proven, self.best, self.best_off = proven, best, best_off
        self.timed_out = False

    def done(self) -> bool:
        return self.timed_out or self.proven >= self.best

    def nodes(self) -> int:
        return sum(s.nodes for s in self.searches)

    def _found(self, res: list[int]) -> None:
        off = np.asarray(res, dtype=np.int64)
        self.best_off, self.best = off, arena_of(self.problem, off)

    def try_capacity(self, cap: int, node_limit: int | None) -> bool:
        """The three static preorders at ``cap``; True if that found a packing or a proof."""
        if self.done() or not self.proven <= cap < self.best:
            return False
        res = _round_robin(self.searches, cap, self.deadline, node_limit)
        if res == "timeout":
            self.timed_out = True
        elif res is None:  # exhausted: nothing fits in cap
            self.proven = max(self.proven, cap + 1)
            return True
        elif res != "abort":
            self._found(res)
            return True
        return False

    def improve(self, ladder_budget: int, restart_nodes: int) -> bool:
        """One pass at capacities between the bound and the best arena; True if it gained.

        First a ladder of capacities (one below the best, the rest seeded random draws), each with
        a node budget: exact searches have heavy tails, so many short tries at several capacities
        beat one long try at one, and which capacity is quick to fill is erratic. Then as many nodes
        again on randomised restarts one below the best: the static preorders tie-break alike every
        time and stall in the same corner of the tree; perturbing their scores samples others.
        """
        before = (self.proven, self.best)
        spent = self.nodes()
        rungs = sorted({self.best - 1} | {self.rng.randint(self.proven, max(self.proven, self.best - 1))
                                          for _ in range(LADDER_RUNGS)})
        for c in rungs:
            if self.try_capacity(c, ladder_budget) and self.best <= c:
                break  # a packing: the rungs above it are moot
        budget = self.nodes() - spent
        spent = self.nodes()
        while not self.done() and self.nodes() - spent < budget:
            if not self.restart(restart_nodes):
                break
        return (self.proven, self.best) != before

    def restart(self, node_limit: int) -> bool:
        """One randomised restart one below the best arena; False once the deadline passed."""
        s = self.searches[0]
        s.noise = [1.0 + RESTART_JITTER * self.rng.random() for _ in range(s.n)]
        try:
            res = s.feasible(self.best - 1, self.rng.choice(PREORDERS), node_limit, self.deadline)
        except _Abort:
            return True
        except _Timeout:
            self.timed_out = True
            return False
        finally:
            s.noise = None
        if res is None:  # exhausted: the search is complete whatever the order, so a proof
            self.proven = self.best
        else:
            self._found(res)
        return True


def _round_robin(searches: list[_Search], cap: int, deadline: float, node_limit: int | None):
    """Offsets within ``cap``, None (proven infeasible), "abort" (every preorder used up its
    ``node_limit``) or "timeout" (the time limit passed).

    One search per static preorder, interleaved 256 nodes at a time (deterministic: the switch
    points are node counts, not clock ticks); the first to finish decides — a packing, or a proof
    that none exists.
    """
    limit = node_limit if node_limit is not None else 1 << 62
    gens = [s.feasible_steps(cap, key, limit, deadline) for s, key in zip(searches, PREORDERS)]
    live = list(gens)
    try:
        while live:
            for g in list(live):
                try:
                    next(g)
                except StopIteration as stop:
                    return stop.value
                except _Abort:
                    live.remove(g)
        return "abort"
    except _Timeout:
        return "timeout"
    finally:
        for g in gens:
            g.close()
