"""One capacity of the exact search: the tree of canonical placements and its pruning.

``search.py`` minimises the arena by asking this tree, capacity after capacity, for a packing. The
tree's frames are generators run by ``trampoline`` on an explicit stack, so a problem of any number of
buffers searches at a constant Python recursion depth (no process-wide recursion limit is touched),
and several trees can be interleaved a few hundred nodes at a time, deterministically.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator

import numpy as np

from ..errors import SolverError
from ..problem import BufferProblem, align_up
from .options import SearchParams

#: memory guard: buffers x sections they span (the section index is that big)
MAX_SECTION_ENTRIES = 5_000_000
#: (Since session 53 the three charges below count against a try's node limit, and against a ``WorkBudget.by_nodes``
#: budget, as before; the solve's work budget is the estimate of ``WORK_NS_PER_UNIT``'s charges, which price the same
#: scans from the first entry.)
#: a node sorts its subproblem's unplaced buffers: each this many of them cost one more node of the solve's
#: work budget. Why: a node's time grows with them (0.13 ms at 150, 1.1 ms at 8,000 here), so a budget of
#: plain nodes ran 2 s of ``time_limit`` 18 s on 8,500 buffers, into the wall-clock stop (a plan that need not
#: repeat); counted so, the budget is work whatever the problem's size, and still deterministic
UNPLACED_PER_NODE = 1000
#: a failed section test (``_search``'s window test, then ``_sections_pass_at``) costs this many of those units,
#: plus ``FAILED_SECTION_WORK_PER_SECTION`` per section of its window. Why: failed tests make no node, so they
#: were free; a search whose candidates mostly failed there (600 buffers over 300 steps, the window 300
#: sections wide) ran 11 s of CPU at ``time_limit=0.3``. Measured here: ~10 us a test, ~0.3 us a section.
FAILED_SECTION_WORK = 100
FAILED_SECTION_WORK_PER_SECTION = 3
#: a section test (``_search``'s window of sections near a candidate) reading more than ``WINDOW_FREE_ENTRIES`` section
#: entries costs one of those units per ``WINDOW_ENTRIES_PER_UNIT`` entries beyond them (twice that for a failed one,
#: whose passing capacity reads them again: ``_sections_pass_at``). Why: a test reads every entry of its window (a
#: gather, a ``reduceat`` and the bookkeeping around them: 2-4 ns an entry here), and where buffers live long the
#: window is most of the problem: 3,000 buffers each live over half the timeline or more (2.8M entries a window) made
#: 28 nodes of a ``time_limit=1`` in 6.5 s of CPU, into the wall-clock stop (a plan that need not repeat). The floor
#: leaves every window of the minimalloc set (at most 14,515 entries) and of graphs of a few thousand short-lived
#: buffers uncharged: their plans are as before.
WINDOW_FREE_ENTRIES = 50_000
WINDOW_ENTRIES_PER_UNIT = 40
#: The solve's work budget counts estimated nanoseconds of this machine's CPU (process time, 2-core machine under the
#: load of a shared CI box), charged where the search does the work, in proportion to what it scans: a budget of
#: plain nodes (each ~100 us assumed) ran minimalloc's A at ``time_limit=0.5`` in 1.0-1.2 CPU s, as its nodes cost
#: 200-500 us (more candidates tried, failing section tests, deeper windows) where ``rand300``'s cost 100 us. Fitted
#: (least squares, non-negative) on the CPU time of 16-node stretches of searches over minimalloc A-K (fit and
#: minimise, ``time_limit`` 0.5 and 2), tiled A/D/K (1,800-6,400 buffers, one with an in-place pair), random interval
#: problems (300-6,000 buffers, some living over half the timeline) and ``layered_graph`` / ``random_dag`` on 1, 2 and
#: 4 streams: the estimate of a whole solve within 0.65-1.3x of its CPU. Counts, never the clock: deterministic.
#: ``SearchParams.nodes_per_second`` units of ``WORK_NS_PER_UNIT`` are one second of ``time_limit``.
WORK_NS_PER_UNIT = 100_000
#: a node: its frame, its fullest sections, its decomposition; plus per buffer of its subproblem (the placed mask)
WORK_NODE = 37_000
WORK_NODE_PER_BUFFER = 12
#: a batch of candidates (``_candidates``), plus per buffer of the subproblem (its keys made and partitioned:
#: 130-200 us a batch at 6,000 buffers, 45 at 150), plus per candidate listed; a candidate refused before placing
#: it (its top or the fullest sections)
WORK_BATCH = 37_000
WORK_BATCH_PER_BUFFER = 10
#: a node's and a batch's work per buffer of the subproblem where it keeps a ``_Front`` (its unplaced buffers' candidate
#: keys and tops, updated by each placement and its undo: ``WORK_FRONT_TRY``) instead of rescanning them (a gather, a
#: mask and a compaction of every buffer, then the keys made again, each batch). Measured side by side on the loaded
#: 2-core machine (where the rescans' batch took 117-215 ns a buffer, charged 10): a front's batch 10-16 ns a buffer,
#: its lowest top 0.2-1; a try's updates and undo (six small gathers and scatters) a few us
WORK_FRONT_NODE_PER_BUFFER = 1
WORK_FRONT_BATCH_PER_BUFFER = 3
WORK_FRONT_TRY = 5_000
#: where a subproblem's preorder keys (``_keys``) are made in bulk (``KEYS_BULK_BUFFERS``), per buffer (measured as
#: above: 1.9-2.3 us a buffer against 10-25 us in Python, charged 3,000); where it keeps a ``_Front``, its candidates
#: charged as they are taken, not as listed (a node mostly takes its first of a batch of 32: the
#: rest cost a ``tolist``). (Up to session 57 the keys were still charged ``WORK_SUBPROBLEM_PER_BUFFER``: 3,000 ns a
#: buffer for bulk keys measured at 0.4 us a buffer on 3,000-5,000 buffers on the loaded machine, 22% of the work of
#: 3,000 random intervals at ``time_limit=0.5``, whose every try sorts the whole problem first.)
WORK_FRONT_SUBPROBLEM_PER_BUFFER = 300
#: the least buffers of a subproblem that keeps a ``_Front``. Why a floor: below it the rescans cost little (22 ns a
#: buffer: 9 us of a ~150 us node at minimalloc's 409), and the plans of every problem whose subproblems are all smaller
#: (the minimalloc set, ``random_dag(1000)``) stayed byte-identical
FRONT_MIN_BUFFERS = 2000
#: the least buffers of a subproblem whose preorder's keys are made in bulk (``_bulk_keys``: the same order) and charged
#: ``WORK_FRONT_SUBPROBLEM_PER_BUFFER``. (``FRONT_MIN_BUFFERS`` up to session 58: measured on the loaded 2-core machine,
#: Python's keys take 2-2.7 us a buffer at any size, bulk keys 80-210 us at 128 buffers, 110-230 at 256 and 0.3-0.5 us a
#: buffer from 1,000 on; a descent of ``random_dag(3000)`` on 8 streams sorts hundreds of parts of 100-2,000 buffers)
KEYS_BULK_BUFFERS = 128
WORK_CANDIDATE = 800
#: a batch's scan for the candidates the fullest sections refuse (``_candidates``' ``thin``: a mask and a compaction),
#: and where it finds some (their least key kept: a few gathers and masks)
WORK_THIN = 5_000
WORK_THIN_REFUSED = 12_000
WORK_REJECT = 200
#: a candidate placed and tested (its neighbours' minimum offsets, its sections' floors, undone after), plus per
#: section entry its window test reads
WORK_TRY = 14_000
WORK_TRY_PER_ENTRY = 2
#: a failed window test (its need off its own terms: ``_need_of``), plus per section of its window, and per entry where
#: ``_sections_pass_at`` reads them again. (35,000 up to session 61, when every failed test read its entries again:
#: measured side by side on minimalloc A, D, H and J, the estimate of a search stays the same share of its CPU at 18,000)
WORK_FAILED = 18_000
WORK_FAILED_PER_SECTION = 200
WORK_FAILED_PER_ENTRY = 2
#: per buffer a dynamic decomposition sorts into one of its parts (``_decompose``), per part, in Python (below
#: ``SPLIT_BULK_BUFFERS``). (1,050 up to session 58, a least-squares fit on the minimalloc set, where few nodes split:
#: measured on the loaded 2-core machine 50-110 ns a buffer a part, and where splits are many, ``random_dag(3000)`` on 8
#: streams, they were 20-32% of the work at ``time_limit`` 0.5 and 1, charged ~10 times what they took)
WORK_SPLIT_PER_BUFFER = 150
#: a decomposition of ``SPLIT_BULK_BUFFERS`` buffers or more sorts them into parts in bulk (``_split_parts``): a fixed
#: charge and one per buffer, whatever the number of parts (measured: 25-30 us at 256 buffers, 145 at 2,000 in 10 parts,
#: 435 at 5,000 in 20). Python's filter is the quicker below (64 buffers: ~55 ns a buffer a part against ~230 in bulk)
SPLIT_BULK_BUFFERS = 256
WORK_SPLIT_BULK = 30_000
WORK_SPLIT_BULK_PER_BUFFER = 80
#: a subproblem's preorder (``_sub_solve``: every buffer's key, 2.5-4.5 us each), plus per buffer
WORK_SUBPROBLEM = 100_000
WORK_SUBPROBLEM_PER_BUFFER = 3_000
#: a try at one capacity (``feasible_steps``: every mutable array rebuilt), plus per buffer and section. (2,900 a
#: buffer and section up to session 58, when every try found the time partitions again, a ``searchsorted`` per buffer in
#: Python: 1.7-2.6 us an entry measured, 10-14 ms a try on 3,000-5,000 buffers; made once now, ``_time_partitions``,
#: the arrays take ~10 ns an entry)
WORK_TRY_START = 400_000
WORK_TRY_START_PER_ENTRY = 40
#: buffers placed at once before a repair's try (``PackingSearch._place_fixed``): per buffer, per conflicting pair of
#: one and per section entry (a few numpy steps over each)
WORK_FIXED_PER_BUFFER = 300
WORK_FIXED_PER_PAIR = 15
WORK_FIXED_PER_ENTRY = 20
#: pending work is handed to the solve's budget once it reaches this (and every 256 nodes): where the budget stops
#: the search is a matter of counts only
WORK_FLUSH = 1_000_000
#: a try's node limit, where the solve's budget is estimated work (not ``WorkBudget.by_nodes``), is that many units of
#: the budget (``WORK_NS_PER_UNIT`` estimated nanoseconds each: a nominal node), counted as the budget is (``_flush``).
#: Why: the tries' limits (the bound's, the ladder's, the restarts') were set when a node was the budget's unit;
#: counted in plain nodes under a budget of work, a try got 3.3x its share where nodes cost 330 us (minimalloc) and
#: on 3,000 buffers (4 nodes a buffer at the bound, ~400 us each) one try outlasted a ``time_limit=1``: no ladder, no
#: restart. In units, the tries are the share of the budget they were tuned as (the search also caps the first
#: tries' limits at shares of the budget: ``search.TRY_SHARES``)
TRY_NS_PER_NODE = WORK_NS_PER_UNIT
#: a node of a subproblem searched without a ``_Front`` looks its state up among the states whose subtrees failed
#: (``PackingSearch._search``: a transposition table): its key made (a mask, a gather, a copy: ~3-5 us at 150-450
#: buffers) and looked up, plus per buffer of the subproblem
WORK_MEMO = 5_000
WORK_MEMO_PER_BUFFER = 4
#: the most bytes a try's tables of failed states keep (then they stop adding: deterministic, a count): each entry's key,
#: 4 or 8 bytes a buffer of its subproblem, plus ``MEMO_ENTRY_BYTES``: minimalloc's E fails ~20,000 states of 215
#: buffers (17 MB of keys, 22 MB in all) to its packing
MEMO_MAX_BYTES = 32 << 20
#: what an entry of a table of failed states holds beside its key's bytes, counted against ``MEMO_MAX_BYTES``: the
#: bytes object's header, the (offset, position) tuple and its two ints, the dict's slot (CPython, 64-bit; a
#: table's own: its key tuple and empty dict). Why: only the keys' bytes were counted (round 61 review): on minimalloc
#: E at its bound the tables held twice the bytes counted, and a small subproblem's 8-40 byte keys 6 to 27 times
MEMO_ENTRY_BYTES = 224
MEMO_TABLE_BYTES = 400
#: a node whose child's subtree failed after this many nodes or more looks for a side proof (``PackingSearch._side_proof``,
#: ``SearchParams.side_proofs``), once per node. Why: a wrong placement on one side of the timeline is refuted only
#: after the search has tried the other side's combinations below it, each again (minimalloc E's TWA tree at 1,048,576:
#: a buffer at 117,760 leaves sections 31-48 without a packing, and the 17,664 nodes below it placed buffers of sections
#: 0-30 before each refutation; the side alone fails in 11 nodes). A probe costs up to a few descents of its side, so
#: only subtrees that already took many nodes pay for one
PROBE_AFTER_NODES = 256
#: a try's side proofs take at most 1 / ``PROBE_SHARE`` of its work so far (asked while they have taken less). Why:
#: where no side lacks a packing (minimalloc A, D, F at 1,048,576) the proofs only cost: F's TWA tree asked 41, 4,600
#: units on its 11,300 (with ``PROBE_MOST_NUM``: at a quarter 3,400, at an eighth 1,600; E's TWA tree packs in 5,762
#: either way, 39,895 without side proofs; at a sixteenth E's first proofs took the share: 27,880)
PROBE_SHARE = 8
#: a side of more than ``PROBE_MOST_NUM / PROBE_MOST_DEN`` of the subproblem's unplaced buffers is not asked (nothing
#: proven). Why: such a side is nearly the subproblem itself, whose subtree just failed slowly, and its search mostly
#: runs to its limit: minimalloc K's trees asked one of 43 of the subproblem's 45 sections, 205 units each time for
#: nothing, and E's first proofs (67 of its 72 sections) proved nothing for 440 (E's TWA tree: 6,196 units to its
#: packing, 5,762 with the rule; K's 3,447 and 3,037, 2,933 without side proofs; at 3/4, E's needed 11,400)
PROBE_MOST_NUM, PROBE_MOST_DEN = 7, 8
#: a try whose limit affords fewer than this many descents (``PROBE_DESCENT_UNITS`` units a buffer each: the search's
#: ``DESCENT_UNITS_PER_NODE``) asks no side proofs. Why: a short try (the opening's shots of one descent, ``search.
#: FEW_DESCENTS``; the ladder's first tries) has no work to spare for them, and stopped short where it packed: minimalloc
#: J at ``time_limit=0.5``, whose opening shot below the start packed without them, ended 1 KB higher. Nor does a bound
#: tree (``search.BoundTrees``, whose limit is its rounds' shares) while its shares so far afford fewer (``probe_hold``):
#: minimalloc K without a capacity at ``time_limit=1`` gives its trees 3,000 units in the first round, two descents
#: are 3,640, and K's TWA tree packs in 2,933 without side proofs, 3,037 with (two proofs, neither proving): the round
#: ended without it and the solve at 1,207,296 for 1,048,576
PROBE_MIN_DESCENTS = 2
PROBE_DESCENT_UNITS = 4


#: a node asks side proofs only while its try's proofs have proven a side without a packing or fewer than this many were
#: asked. Why: proofs pay in a tree early or not at all; in minimalloc A-K's 33 trees at their bound (20,000 units each)
#: every tree whose proofs proved one had its first among its first six asked, and the packing trees whose proofs
#: never proved asked up to 18 for nothing (F's TWA tree 1,590 units on its 12,876, A's TWA 13 for 1,047 on 8,396): F
#: without its capacity at ``time_limit=5`` ended at 1,107,968 where side proofs off pack 1,048,576 (``docs/
#: experiments/search_s64b.txt``)
PROBE_TRIAL = 8


def probe_min_units(n: int) -> int:
    """The least work (units) of a try of ``n`` buffers that asks side proofs: ``PROBE_MIN_DESCENTS`` descents."""
    return PROBE_MIN_DESCENTS * PROBE_DESCENT_UNITS * (n + 1)


#: a side proof's search gets this many work units a buffer it places (at least ``PROBE_MIN_UNITS``), then gives up
#: (nothing proven): a side that packs takes about a descent, 1-3 units a node; one without a packing mostly fails
#: in a few nodes (its section tests)
PROBE_UNITS_PER_BUFFER = 4
PROBE_MIN_UNITS = 64
#: a side proof's setup (its problem, cut to the side, and that problem's tables: ``PackingSearch.__init__``), plus per
#: buffer of it
WORK_PROBE = 1_000_000
WORK_PROBE_PER_BUFFER = 12_000
#: a side proof's setup per pair of its buffers that overlap in time, on an HB-filtered problem (``_side_compatible``:
#: the pairs that do not conflict listed, then checked and indexed again by the side problem, in Python)
WORK_PROBE_PER_PAIR = 3_000
#: the most side proofs a try keeps the answers of (``PackingSearch._side_proof``: the same side asked again, after a
#: sibling placed a buffer elsewhere, is looked up)
PROBE_CACHE_MAX = 4096
#: ``PackingSearch.above`` before any test failed (no capacity reached yet)
NO_CAPACITY = (1 << 63) - 1


#: the largest int64
INT64_MAX = (1 << 63) - 1


def wide_keys(min_height: int, stride: int) -> bool:
    """Whether a candidate's key ``offset x stride + position`` (an offset below ``min_height``, a position below
    ``stride``) could pass int64: ``PackingSearch._candidates`` then orders by ``(offset, position)`` pairs."""
    return min_height > INT64_MAX // stride


class WorkBudget:
    """The work a whole solve may spend (estimated nanoseconds, ``WORK_NS_PER_UNIT``; or nodes, ``by_nodes``), shared
    by all its trees, and the wall-clock safety stop. The work is counted in the same steps whatever the machine, so a
    solve stopped by its budget repeats exactly; one stopped by the wall clock says so (``wall_fired``)."""

    def __init__(self, units: int, wall_seconds: float, *, by_nodes: bool = False):
        """``units`` of ``WORK_NS_PER_UNIT`` estimated nanoseconds; with ``by_nodes``, ``units`` search nodes instead
        (as every budget was counted up to session 53, its plans unchanged: ``auto.polish``'s fixed node budget)."""
        self.by_nodes = by_nodes
        self.left = int(units) if by_nodes else int(units) * WORK_NS_PER_UNIT
        #: the estimated nanoseconds taken off the budget so far: never more than it had (``spend``)
        self.taken = 0
        self.wall_seconds = wall_seconds
        self.deadline = time.perf_counter() + wall_seconds
        self.wall_fired = False

    def start_clock(self, until: float | None = None) -> None:
        """Start the wall-clock safety stop now: after the solve's setup (its heuristic start, the search's tables),
        which is bounded work of its own and repeats exactly. Counted in, a setup slowed by the machine's load
        took the search's wall time, and the stop fired on a search that had used a fraction of its node budget
        (20,000 buffers at ``time_limit=2`` on a loaded machine: a plan that need not repeat).

        ``until`` (a ``time.perf_counter`` instant): a deadline the caller set before this solve began, which the
        stop never passes (``auto``'s one stop for its exact phase, ``auto.wall_left``). Why: restarted here, the
        stop ran the seconds left of that deadline again after the setup, so ``auto`` ran past its own stop by the
        search's setup time (seconds on large problems)."""
        self.deadline = time.perf_counter() + self.wall_seconds
        if until is not None:
            self.deadline = min(self.deadline, until)

    def spend(self, work: int) -> None:
        """Take ``work`` estimated nanoseconds (``WORK_NS_PER_UNIT``) off the budget; OutOfWork once it is spent or
        the wall-clock safety stop passed.

        A charge larger than what is left takes only what is left (``taken``) and stops the solve: a step charged
        before its work (a try's start, a repair's ``search.REPAIR_PER_*``) is then not done, and one charged after
        it (a flush of ``WORK_FLUSH``) overran the budget by less than that flush. Why: the whole charge was taken,
        so a solve's work read above its budget (6,347 units of 6,000: a repair's 445 taken with 98 left)."""
        if not self.by_nodes:
            self.taken += min(work, max(self.left, 0))
            self.left -= work
        if self.left < 0:
            raise OutOfWork
        if time.perf_counter() > self.deadline:
            self.wall_fired = True
            raise OutOfWork

    def spend_nodes(self, nodes: int) -> None:
        """Take ``nodes`` search nodes (and the ``UNPLACED_PER_NODE``-ths of one charged for scans and failed tests)
        off a ``by_nodes`` budget; nothing off one of estimated work."""
        if self.by_nodes:
            self.left -= nodes
            if self.left < 0:
                raise OutOfWork

    def exhausted(self) -> bool:
        if self.left < 0:
            return True
        if time.perf_counter() > self.deadline:
            self.wall_fired = True
        return self.wall_fired


def trampoline(root: Generator) -> Generator[None, None, object]:
    """Run a tree of generator frames on an explicit stack.

    A frame yields a child generator to descend into it (and receives the child's return value), or
    None to pause: the pause is passed outward, so a round robin can interleave several searches.
    Exceptions raised in a frame are thrown into its parent, so ``finally`` blocks undo their state
    in order. Closing the trampoline closes every frame, innermost first.
    """
    stack = [root]
    value: object = None
    error: BaseException | None = None
    try:
        while stack:
            top = stack[-1]
            try:
                if error is not None:
                    exc, error = error, None
                    req = top.throw(exc)
                else:
                    req = top.send(value)
                value = None
            except StopIteration as stop:
                stack.pop()
                value = stop.value
                continue
            except BaseException as exc:  # noqa: BLE001 - rethrown into the parent frame, or out
                stack.pop()
                if not stack:
                    raise
                error = exc
                continue
            if req is None:
                yield
            else:
                stack.append(req)
        return value
    finally:
        while stack:
            stack.pop().close()


class Abort(Exception):
    """This preorder used up its node budget for this capacity."""


class OutOfWork(Exception):
    """The solve's work budget (or its wall-clock safety stop) ran out."""


class PackingSearch:
    """State of one problem's search; ``feasible(cap, ...)`` runs one capacity.

    ``_search`` undoes its placement after the child returns, not in a ``finally``: when Abort or
    OutOfWork unwinds the frames, the per-capacity state is left dirty, and that is safe only because
    ``feasible_steps`` rebuilds every mutable array at the start of each capacity (and each
    ``copy.copy`` of a search is given its own there). Keep it so.
    """

    def __init__(self, problem: BufferProblem, params: SearchParams, budget: WorkBudget):
        """The search's tables of ``problem``, built in bulk (numpy over the conflict graph's CSR arrays).

        Why in bulk: built in Python (a list of every buffer's neighbours, copied again as arrays, their largest
        sizes and section ranges one buffer at a time, and the cliques of HB-filtered sections grown with one set
        lookup per pair tested) this setup took 5 s of ``layered_graph(3000)`` on 4 streams (3,150 buffers, 2.1M
        overlapping pairs) before the first node, outside any budget. The tables are the same (``tests/
        test_solvers_round51.py`` holds them against the former construction), so the search and its plans are too.
        """
        self.params, self.budget = params, budget
        self.n = n = len(problem)
        sizes = problem.sizes   # (an immutable problem's column: read, never written, so not copied)
        self.sizes = sizes
        self.size = sizes.tolist()
        self.align = al = int(problem.alignment)
        lower, upper = problem.lower, problem.upper
        # a buffer with no bytes or an empty interval conflicts with nothing: it rests at offset 0 and spans
        # no section (one with lower == upper had an empty section range, a ValueError in ``_keys``)
        act = np.flatnonzero((sizes > 0) & (upper > lower))
        self.active = act.tolist()
        self.largest = max(self.size, default=0)   # every buffer's top counts in the arena, active or not
        ends = np.unique(upper[act]) if len(act) else np.zeros(0, dtype=np.int64)
        self.ends = ends   # (each section's end: a side proof cuts buffers to its sections, ``_side_proof``)
        self.nsec = nsec = len(ends)
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
        cut = np.zeros(nsec + 1, dtype=np.int64)
        if len(act):
            # cut[k]: buffers spanning both section k and k + 1
            np.add.at(cut, slo[act], 1)
            np.add.at(cut, np.maximum(shi[act] - 1, slo[act]), -1)
        self.cuts0 = np.cumsum(cut)[: max(nsec - 1, 0)]
        self.parts = _time_partitions(self.cuts0, act, slo, nsec)
        # the conflict graph once, as CSR arrays: buffer i's neighbours are adj[bounds[i]:bounds[i + 1]]
        bounds, adj = problem.conflict_csr(as_lists=False)
        adj = adj.astype(np.int64, copy=False)
        starts = bounds.tolist()
        self.adjn = [adj[a:z] for a, z in zip(starts, starts[1:])]   # (views of one array)
        self.csr = (bounds, adj)   # (the same arrays, for ``_place_fixed``'s bulk steps)
        self.maxnb = _rows_reduce(np.maximum, sizes[adj], bounds, 0, own=None).tolist()
        self.windows: dict[tuple[int, int, int], tuple] = {}  # (buffer, partition) -> sections to re-check
        self.width = (upper - lower).tolist()
        self.width_a = (upper - lower).astype(np.int64)
        self.slo_a, self.shi_a = slo, shi
        # every key column of ``_bulk_keys`` fits int64 (an area is the widest): else the Python keys
        self.key_bulk = n == 0 or int(self.width_a.max(initial=0)) * int(sizes.max(initial=0)) < INT64_MAX
        # every section's buffers, flattened (CSR over sections, each in index order): section k holds
        # ``sec_buf[sec_ptr[k]:sec_ptr[k + 1]]``
        sec_buf, sec_of = _section_entries(act, slo[act], shi[act])
        # inference needs buffers that pairwise conflict: all of a section's for interval problems;
        # otherwise (HB order, in-place pairs) a clique grown greedily in it, largest buffer first
        self.interval = problem.is_interval
        if not self.interval:
            sec_buf, sec_of = _section_cliques(sec_buf, sec_of, nsec, sizes, bounds, adj)
            # each buffer's sections (ascending), and the first and one past the last of them (-1: none)
            by_buf = np.argsort(sec_buf, kind="stable")
            owned = np.searchsorted(sec_buf[by_buf], np.arange(n + 1)).tolist()
            secs = sec_of[by_buf]
            self.ins = [secs[a:z] for a, z in zip(owned, owned[1:])]
            at = np.asarray(owned, dtype=np.int64)
            has = np.flatnonzero(at[1:] > at[:-1])
            first = np.full(n, -1, dtype=np.int64)
            last = np.full(n, -1, dtype=np.int64)
            first[has] = secs[at[has]]
            last[has] = secs[at[has + 1] - 1] + 1
            never = np.iinfo(np.int64).max
            lo_all = _rows_reduce(np.minimum, np.where(first >= 0, first, never)[adj], bounds, never,
                                  own=np.where(first >= 0, first, never))
            self.rlo = np.where(lo_all == never, 0, lo_all).tolist()
            self.rhi = np.maximum(_rows_reduce(np.maximum, last[adj], bounds, -1, own=last), 0).tolist()
        else:
            self.ins = [slice(a, z) for a, z in zip(self.slo, self.shi)]
            self.rlo = _rows_reduce(np.minimum, slo[adj], bounds, 0, own=slo).tolist()
            self.rhi = _rows_reduce(np.maximum, shi[adj], bounds, 0, own=shi).tolist()
        # with alignment every buffer below the top of a stack takes its size rounded up, so a
        # section needs its rounded sizes less the largest rounding slack among them
        self.asize = asz = [align_up(x, al) for x in self.size]
        sec_ptr = np.searchsorted(sec_of, np.arange(nsec + 1))
        self.total0 = _section_totals(sec_buf, sec_ptr, sizes, asz)
        # members of every section, flattened (CSR): for the least minimum offset of unplaced ones
        self.flat = sec_buf
        self.ptr = sec_ptr.astype(np.int64)
        self.nodes = 0
        #: a try's placed area now and at most (``packed_area``; each buffer's, ``area_of``): how far into its
        #: packing a try got, comparable between preorders (the buffers' count is not: W and T place long buffers
        #: first, Z and A large ones)
        self._area_cols = (sizes, lower, upper)   # (the immutable problem's columns: ``area_of`` reads them)
        self._area_of: list[int] | None = None
        self.placed_area = 0
        #: the most area a try had placed at once (``search._round_robin``'s focus: the tree furthest into a packing),
        #: kept only while ``track_area`` (a solved part's sum is a Python step per buffer, not charged as work)
        self.packed_area = 0
        self.track_area = False
        #: whether this search's tree found the packing of ``search._round_robin``'s last try (``_Minimiser.chase``)
        self.packed = False
        self.backtracks = 0
        # a try's table of failed states (``feasible_steps`` makes it, ``_search`` reads and fills it)
        self.memo: dict[tuple[bytes, int, int], dict[bytes, tuple[int, int]]] = {}
        self.memo_bytes = self.memo_hits = 0
        self.memo_on, self.memo_narrow = False, True
        self.nodes_stop = INT64_MAX   # the node count a try stops at (``feasible_steps``' ``nodes``)
        #: a try's side proofs: on (``feasible_steps``), their answers, the side a failed subtree's proof names (``_search``)
        self.probe_on = False
        self.probes: dict[tuple, bool] = {}
        #: side proofs held back for now (``search.BoundTrees``: a tree whose shares so far afford fewer than
        #: ``PROBE_MIN_DESCENTS`` descents), read at each node
        self.probe_hold = False
        self.probe_work = 0   # estimated ns a try's side proofs took (``PROBE_SHARE``)
        self.try_limit: int | None = None
        self.nogood: tuple[int, int] | None = None
        self.side_proofs = self.side_hits = self.sides_proven = 0
        self.work_left: int | None = None   # estimated ns left to this try, under a budget of work (``TRY_NS_PER_NODE``)
        self.scanned = 0   # unplaced buffers the nodes since the last 256 sorted (``_charge``: a try's node limit)
        self.work = 0      # estimated nanoseconds not yet handed to the budget (``WORK_NODE`` ...)
        #: a node pauses (yields) once the budget's ``taken`` reaches this (None: at the 256-node steps alone)
        self.pause_at: int | None = None
        #: per-buffer multipliers of the preorder scores (None: the static preorder)
        self.noise: list[float] | None = None

    # -- one capacity ---------------------------------------------------------------------------
    def feasible(self, cap: int, preorder: str, node_limit: int,
                 fixed: tuple[np.ndarray, np.ndarray] | None = None, nodes: int | None = None) -> list[int] | None:
        """A packing within ``cap`` (offsets), or None when none exists; raises Abort/OutOfWork. ``fixed``: buffers
        placed before the search starts; ``nodes``: at most that many nodes too (``feasible_steps``)."""
        gen = self.feasible_steps(cap, preorder, node_limit, fixed, nodes)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    def feasible_steps(self, cap: int, preorder: str, node_limit: int,
                       fixed: tuple[np.ndarray, np.ndarray] | None = None, nodes: int | None = None):
        """``feasible`` as a generator that yields every 256 nodes (to interleave several orders).

        ``fixed``: ``(buffers, offsets)`` placed first, all at once (``_place_fixed``), and never moved: the search
        then places the others around them (``search_repair``). Such a try searches a part of the tree only, so
        None from it proves nothing (nor does ``above``): the caller must not read a bound from it. ``nodes`` (under a
        budget of work): Abort after that many nodes, whatever work they took (``search.PROBE_NODES``: a shot that
        looks for a proof in its first nodes, however long their failed tests take)."""
        n = self.n
        self.cap = cap
        self.order_key = preorder
        # a budget of work: the limit is work too (``TRY_NS_PER_NODE``, counted in ``_flush``), no node count
        self.work_left = None if self.budget.by_nodes else node_limit * TRY_NS_PER_NODE
        self.nodes_left = node_limit if self.budget.by_nodes else 1 << 62
        self.nodes_stop = self.nodes + nodes if nodes is not None else INT64_MAX   # (``nodes``: the node count to stop at)
        self._work(WORK_TRY_START + WORK_TRY_START_PER_ENTRY * (n + self.nsec))
        self.asg = [-1] * n
        self.placed = np.zeros(n, dtype=bool)
        self.sol = [0] * n
        self.moeff = np.zeros(n, dtype=np.int64)  # minimum offsets of unplaced buffers; cap once placed
        self.floor = np.zeros(self.nsec, dtype=np.int64)
        self.total = self.total0.copy()
        self.cuts = self.cuts0.copy()
        self.pos_of = np.zeros(n, dtype=np.int64)   # each buffer's position in its subproblem (``_sub_solve``)
        # the states whose subtrees failed, per subproblem (``_sub_solve``: its preorder and sections), each with the
        # least (offset, position) it was searched from (``_search``); their bytes (``MEMO_MAX_BYTES``)
        self.memo = {}
        self.memo_bytes = self.memo_hits = 0
        # (keys of int32 offsets where they fit: an unplaced buffer's minimum offset is at most an aligned top)
        self.memo_narrow = cap + self.align < (1 << 31)
        # only at an aligned capacity: there every aligned top is within it, so a section's floor (what a failed
        # subtree's states leave out) changes no test (``_search``); at an unaligned one, a section with nothing
        # unplaced fails while its highest aligned top, less its slack, passes the capacity
        # (and under a budget of work: a budget of nodes, ``auto.polish``'s, keeps its plans as they were)
        self.memo_on = self.params.memo and not self.budget.by_nodes and cap % max(self.align, 1) == 0
        # side proofs (``_side_proof``): interval problems (a side's conflicts are its cut intervals' overlaps), under a
        # budget of work (``auto.polish``'s budget of nodes keeps its plans), never in a repair (its kept buffers may lie
        # above the buffers searched around them: a side's relaxation assumes every placed buffer below)
        # and in a try whose limit affords ``PROBE_MIN_DESCENTS`` descents (``PROBE_DESCENT_UNITS`` a buffer) or more
        # (on HB-filtered problems too with ``SearchParams.hb_side_proofs``: a side then keeps its buffers' conflicts)
        self.probe_on = (self.params.side_proofs and (self.interval or self.params.hb_side_proofs)
                         and not self.budget.by_nodes and fixed is None
                         and node_limit >= probe_min_units(n))
        self.probes = {}
        self.nogood = None
        self.side_proofs = self.side_hits = self.sides_proven = 0
        self.probe_work = 0
        self.try_limit = self.work_left
        # the least capacity above ``cap`` at which some test this try failed would pass (see ``_over``)
        self.above = NO_CAPACITY
        self.placed_area = self.packed_area = 0
        if self.largest > cap:
            self.above = self.largest
            return None
        if fixed is not None:
            self._place_fixed(*fixed)
        ok = True
        for lo, hi, bufs in self._partitions():
            if not (yield from trampoline(self._sub_solve(lo, hi, bufs))):
                ok = False
                break
            self._solved(bufs)
        if not ok:
            return None
        return list(self.sol)

    def _place_fixed(self, bufs: np.ndarray, offsets: np.ndarray) -> None:
        """Place active ``bufs`` at ``offsets`` (aligned, pairwise clear of each other, tops within the capacity) in
        bulk: the state ``_search``'s placements of them one by one in order of offset would leave (each unplaced
        neighbour's minimum offset raised to their aligned tops, each of their sections' floor the highest aligned top
        in it, its total less their rounded sizes, the cuts they span one fewer). Why in bulk: one placement is a few
        numpy steps (~50 us), and a repair (``search_repair``) fixes most of a large problem's buffers every try."""
        n, al = self.n, self.align
        bufs = np.asarray(bufs, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        self._work(WORK_FIXED_PER_BUFFER * len(bufs) + WORK_FIXED_PER_ENTRY * len(self.flat))
        for b, o in zip(bufs.tolist(), offsets.tolist()):
            self.asg[b] = o
            self.sol[b] = o
        self.placed[bufs] = True
        if self.track_area:
            self.placed_area = self.packed_area = sum(self.area_of[b] for b in bufs.tolist())
        h = np.zeros(n, dtype=np.int64)
        h[bufs] = -(-(offsets + self.sizes[bufs]) // al) * al
        bounds, adj = self.csr
        lens = bounds[bufs + 1] - bounds[bufs]
        self._work(WORK_FIXED_PER_PAIR * int(lens.sum()))
        if len(bufs) and int(lens.sum()):
            at = np.repeat(bounds[bufs] - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()), dtype=np.int64)
            nb, hv = adj[at], np.repeat(h[bufs], lens)
            keep = ~self.placed[nb]
            np.maximum.at(self.moeff, nb[keep], hv[keep])
        self.moeff[bufs] = self.cap
        flat = self.flat
        ent = np.flatnonzero(self.placed[flat])
        if len(ent):
            sec = np.searchsorted(self.ptr, ent, side="right") - 1
            np.maximum.at(self.floor, sec, h[flat[ent]])
            np.subtract.at(self.total, sec, np.asarray(self.asize, dtype=np.int64)[flat[ent]])
        if self.params.dynamic_decomposition and self.nsec > 1:
            a, z = self.slo_a[bufs], self.shi_a[bufs]
            two = z - a >= 2
            d = np.zeros(self.nsec, dtype=np.int64)
            np.add.at(d, a[two], 1)
            np.add.at(d, z[two] - 1, -1)
            self.cuts -= np.cumsum(d)[: self.nsec - 1]

    def _partitions(self) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
        """Initial partitions: runs of sections joined by at least one spanning buffer, each with its active buffers
        in index order (``_time_partitions``, made once in ``__init__``: they depend on the problem alone)."""
        return self.parts

    def _keys(self, bufs: list[int]) -> list[int]:
        if len(bufs) >= KEYS_BULK_BUFFERS and self.key_bulk:
            return self._bulk_keys(bufs)
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

    def _bulk_keys(self, bufs: list[int]) -> list[int]:
        """``_keys`` in numpy: the same tuples' columns (int64, each below 2**63: ``key_bulk``; floats with ``noise``,
        each the same product as Python's ``int * float``) sorted by ``np.lexsort``, the buffer last. Why: a key per
        buffer in Python (its sections' fullest total a slice's ``max``) took ~3 us a buffer, and a descent of 5,000
        random intervals sorts ~10 times its buffers again (each decomposition's remainder)."""
        b = np.asarray(bufs, dtype=np.int64)
        tmax = _range_max(self.total, self.slo_a[b], self.shi_a[b])
        width, size = self.width_a[b], self.sizes[b]
        cols = {"W": -width, "A": -(width * size), "T": -tmax, "Z": -size}
        keys = [cols[c] for c in self.order_key if c in cols]
        if self.noise is not None:
            nz = np.asarray(self.noise, dtype=np.float64)[b]
            keys = [k * nz for k in keys]
        return b[np.lexsort([b] + keys[::-1])].tolist()

    def _work(self, ns: int) -> None:
        """Count ``ns`` estimated nanoseconds of work, handed to the solve's budget ``WORK_FLUSH`` at a time (raises
        OutOfWork once it is spent)."""
        self.work += ns
        if self.work >= WORK_FLUSH:
            self._flush()

    def try_work(self) -> int:
        """The estimated ns of work this try took so far (under a budget of work; 0 under one of nodes)."""
        if self.work_left is None or self.try_limit is None:
            return 0
        return self.try_limit - self.work_left + self.work

    def _flush(self) -> None:
        work, self.work = self.work, 0
        self.budget.spend(work)
        if self.work_left is not None:
            self.work_left -= work
            if self.work_left < 0:
                raise Abort

    def _sub_solve(self, lo: int, hi: int, bufs: list[int]) -> bool:
        bulk = len(bufs) >= KEYS_BULK_BUFFERS and self.key_bulk   # (``_keys`` makes them in bulk: ``_bulk_keys``)
        self._work(WORK_SUBPROBLEM + (WORK_FRONT_SUBPROBLEM_PER_BUFFER if bulk else WORK_SUBPROBLEM_PER_BUFFER) * len(bufs))
        pre = np.asarray(self._keys(bufs), dtype=np.int64)
        pos = np.arange(len(pre), dtype=np.int64)
        stride = len(bufs) + 1
        if len(bufs) < FRONT_MIN_BUFFERS or wide_keys(self.cap + self.align + 1, stride):
            # (small, or offsets near 2**63 / buffers: the scans, as ``_candidates`` makes pairs there)
            table = self._table(pre, lo, hi) if self.memo_on else None
            return (yield self._search(lo, hi, bufs, (pre, pos, None, table), 0, 0))
        # the subproblem's positions of its buffers (a part's own are set here and put back when it ends: a frame of
        # the subproblem around it reads its own again)
        pos_of = self.pos_of
        saved = pos_of[pre]
        pos_of[pre] = pos
        try:
            return (yield self._search(lo, hi, bufs, (pre, pos, _Front(self, pre, stride), None), 0, 0))
        finally:
            pos_of[pre] = saved

    def _table(self, pre: np.ndarray, lo: int, hi: int) -> dict[bytes, tuple[int, int]] | None:
        """The failed states of the subproblem of ``pre`` (its preorder) over sections ``lo..hi - 1``, kept across its
        every start in this try; None once the try's tables hold ``MEMO_MAX_BYTES`` (their subproblems' keys counted
        too: a descent of a multi-stream graph starts hundreds of parts)."""
        key = (pre.tobytes(), lo, hi)
        table = self.memo.get(key)
        if table is None and self.memo_bytes < MEMO_MAX_BYTES:
            table = self.memo[key] = {}
            self.memo_bytes += len(key[0]) + MEMO_TABLE_BYTES
        return table

    def _search(self, lo, hi, bufs, ordering, min_offset, min_p) -> bool:
        self.nodes += 1
        self.nodes_left -= 1
        if self.nodes_left < 0 or self.nodes > self.nodes_stop:
            raise Abort
        # the subproblem's buffers in preorder and their positions, shared by all its frames: the unplaced ones
        # are those not ``placed`` (a frame's own copy of them kept O(depth x buffers) memory on the stack)
        pre_b, pre_p, front, table = ordering
        if front is not None:   # (its keys and tops kept by every placement and undo: no rescan)
            left_count = front.left
            self.work += WORK_NODE + WORK_FRONT_NODE_PER_BUFFER * len(pre_b)
        else:
            left = ~self.placed[pre_b]
            un_b, un_p = pre_b[left], pre_p[left]
            left_count = len(un_b)
            self.work += WORK_NODE + WORK_NODE_PER_BUFFER * len(pre_b)
        self.scanned += left_count
        if (self.nodes & 255) == 0:
            extra, self.scanned = divmod(self.scanned, UNPLACED_PER_NODE)
            self.budget.spend_nodes(256 + extra)
            self._flush()
            yield
        elif self.work >= WORK_FLUSH:
            self._flush()
        if self.pause_at is not None and self.budget.taken + self.work >= self.pause_at:
            self._flush()   # (its work taken: the caller reads its share off the budget, ``search.BoundTrees``)
            yield
        asg, size = self.asg, self.size
        moeff = self.moeff
        if left_count == 0:
            for b in bufs:
                self.sol[b] = asg[b]
            return True
        if table is not None:
            # the state a subtree searches: which buffers are unplaced and their minimum offsets (a placed buffer's
            # floors and tops reach the rest only through them), searched from (offset, position) on
            state = np.where(left, moeff[pre_b], -1)
            mkey = (state.astype(np.int32) if self.memo_narrow else state).tobytes()
            del state
            self.work += WORK_MEMO + WORK_MEMO_PER_BUFFER * len(pre_b)
            seen = table.get(mkey)
            if seen is not None and seen <= (min_offset, min_p):
                self.memo_hits += 1
                self.backtracks += 1
                return False
        if front is not None:
            min_height = int(front.top.min())
        else:
            min_height = int((moeff[un_b] + self.sizes[un_b]).min())
            del left, un_b, un_p  # not kept in the frame while its children run
        cap, adjn, align, placed, sizes = self.cap, self.adjn, self.align, self.placed, self.sizes
        floor, total, flat, ptr = self.floor, self.total, self.flat, self.ptr
        rlo, rhi, slo, shi, maxnb, windows = self.rlo, self.rhi, self.slo, self.shi, self.maxnb, self.windows
        ins, interval, asize, track = self.ins, self.interval, self.asize, self.track_area
        area_of = self.area_of if track else None
        # the fullest sections: a buffer placed at o fails unless o + their total fits or it spans them all
        seg = total[lo:hi]
        t1 = int(seg.max()) if hi > lo else 0
        if interval:
            fullest = np.flatnonzero(seg == t1)
            k_first, k_last = int(fullest[0]) + lo, int(fullest[-1]) + lo
        # (the scans leave out the buffers the fullest sections' test below refuses, all but the first: ``_candidates``)
        thin = (cap - t1, k_first, k_last) if interval and front is None and cap - t1 < min_height else None
        cand = self._candidates(ordering, len(bufs) + 1, min_offset, min_p, min_height, thin)
        probe = self.probe_on and not self.probe_hold and front is None   # (side proofs: ``_side_proof``)
        probed, failed_side = False, None
        for o, p, b in cand:
            sb = size[b]
            top = o + sb
            if top > cap:
                self._over(top)
                self.work += WORK_REJECT
                continue
            spans_fullest = not interval or (slo[b] <= k_first and k_last < shi[b])
            if o + t1 > cap and not spans_fullest:
                self._over(o + t1)
                self.work += WORK_REJECT
                continue
            asg[b] = o
            placed[b] = True
            moeff[b] = cap
            if track:
                self.placed_area += area_of[b]
                if self.placed_area > self.packed_area:
                    self.packed_area = self.placed_area
            nb = adjn[b]
            un = nb[~placed[nb]]
            hat = len(un) > 0
            h = align_up(top, align)
            old = moeff[un]
            new = np.maximum(old, h)
            moeff[un] = new
            if front is not None:
                fkey, ftop, fs = front.key, front.top, front.stride
                fkey[p] = ftop[p] = KEY_NONE
                front.left -= 1
                pu = self.pos_of[un]
                mine = pre_b.take(pu, mode="clip") == un   # (a neighbour of no section is in no subproblem)
                if mine.all():
                    un_f, old_f, new_f = un, old, new
                else:
                    pu, un_f, old_f, new_f = pu[mine], un[mine], old[mine], new[mine]
                fkey[pu] = new_f * fs + pu
                ftop[pu] = new_f + sizes[un_f]
                self.work += WORK_FRONT_TRY
            sec = ins[b]
            asb = asize[b]
            old_floor = floor[sec].copy()
            floor[sec] = h  # the next buffer of b's sections starts at an aligned offset above b
            total[sec] -= asb
            found, side, grew = False, None, 0
            self._work(WORK_TRY)
            if hat and h + maxnb[b] > cap and (sizes[un].max() + h > cap):
                self._over(min(h + maxnb[b], int(sizes[un].max()) + h))  # a neighbour no longer fits under the capacity
            elif spans_fullest and o + total[lo:hi].max() > cap:
                self._over(o + int(total[lo:hi].max()))  # (not spanning them, the fullest sections still fit: checked above)
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
                    self.work += WORK_TRY_PER_ENTRY * len(fl)
                    least = np.minimum.reduceat(moeff[fl], st)
                    need = np.maximum(np.maximum(floor[ra:rb], least), o) + total[ra:rb]
                    ok = need.max() <= cap
                    if not ok:
                        at = _need_of(need, least, floor[ra:rb], total[ra:rb], o, cap)
                        if at is None:   # (a section whose unplaced buffers all reach the capacity: read again)
                            self._over(_sections_pass_at(floor[ra:rb], moeff[fl], placed[fl], st, o, total[ra:rb]))
                            self.work += WORK_FAILED_PER_ENTRY * len(fl)
                        else:
                            self._over(at)
                        self._charge(FAILED_SECTION_WORK + FAILED_SECTION_WORK_PER_SECTION * (rb - ra))
                        self.work += WORK_FAILED + WORK_FAILED_PER_SECTION * (rb - ra)
                    del need
                    if len(fl) > WINDOW_FREE_ENTRIES:   # (a wide window's entries: ``WINDOW_ENTRIES_PER_UNIT``,
                        # twice where it failed: ``_sections_pass_at`` reads them again)
                        self._charge((len(fl) - WINDOW_FREE_ENTRIES) * (1 if ok else 2) // WINDOW_ENTRIES_PER_UNIT)
                if ok:
                    start = self.nodes
                    found = yield self._decompose(lo, hi, bufs, ordering, o, p, b)
                    side, self.nogood = self.nogood, None   # (the side a proof found its subtree without a packing in)
                    grew = self.nodes - start
            floor[sec] = old_floor
            total[sec] += asb
            moeff[un] = old
            if front is not None:
                fkey[p] = o * fs + p
                ftop[p] = top
                front.left += 1
                fkey[pu] = old_f * fs + pu
                ftop[pu] = old_f + sizes[un_f]
            asg[b] = -1
            placed[b] = False
            moeff[b] = o
            if track:
                self.placed_area -= area_of[b]
            if found:
                return True
            if probe and side is not None and (shi[b] <= side[0] or side[1] <= slo[b]):
                failed_side = side   # (``b`` lies outside the side: this node's side is its child's, without a packing)
                break
            if (probe and not probed and (side is not None or grew >= PROBE_AFTER_NODES)
                    and self.probe_work * PROBE_SHARE <= self.try_work()
                    and (self.sides_proven or self.side_proofs < PROBE_TRIAL)):
                probed = True
                failed_side = self._side_proofs_at(lo, hi, slo[b], shi[b], side, left_count)
                if failed_side is not None:
                    break
            if not hat and self.params.hatless_pruning:
                break
        self.backtracks += 1
        self.nogood = failed_side
        if table is not None:
            seen = table.get(mkey)
            if seen is not None:
                table[mkey] = min(seen, (min_offset, min_p))
            elif self.memo_bytes < MEMO_MAX_BYTES:
                table[mkey] = (min_offset, min_p)
                self.memo_bytes += len(mkey) + MEMO_ENTRY_BYTES
        return False

    def _side_proofs_at(self, lo: int, hi: int, b_lo: int, b_hi: int, side: tuple[int, int] | None,
                        unplaced: int) -> tuple[int, int] | None:
        """The side of sections ``lo..hi - 1`` beyond a failed child's buffer (its sections ``b_lo..b_hi - 1``) that this
        node's state leaves without a packing (``_side_proof``), or None. ``side``: the side the child's subtree failed
        on, which holds the buffer: only that side's part beyond it is asked (the same direction); else both parts, the
        one of fewer sections first."""
        sides = [(b_hi, hi), (lo, b_lo)]
        if side is not None:
            sides = [sides[0] if side[1] == hi else sides[1]]
        else:
            sides.sort(key=lambda s: s[1] - s[0])
        for a, z in sides:
            if a < z and self._side_proof(a, z, unplaced * PROBE_MOST_NUM // PROBE_MOST_DEN):
                return (a, z)
        return None

    def _side_proof(self, a: int, z: int, most: int = INT64_MAX) -> bool:
        """Whether the buffers of sections ``a..z - 1``, each cut to them, have no packing within the capacity that keeps
        the placed ones where they are and the unplaced ones above their placed neighbours: then no packing extends this
        node's placements (interval problems, ``SearchParams.side_proofs``; HB-filtered ones with ``hb_side_proofs``,
        whose side holds every active buffer live in it, its pairs conflicting exactly as here: ``_side_compatible``).

        Why sound: in a packing the search builds from here, every unplaced buffer lies above its placed neighbours (it
        is placed after them, at or above their offsets, and overlaps none of them). The side's buffers keep those
        offsets, within the capacity, and cut to the side they overlap in time exactly where they did (two intervals
        that overlap and each meet the side's span overlap within it: Helly's theorem on a line; the cut only keeps the
        side problem's sections to the side): a packing of the side problem. Nothing here needs conflicts to be
        overlaps: on an HB-filtered problem the side problem's pairs conflict exactly where they do here, so the same
        holds. So a side problem without one (its own search exhausted: canonical packings around buffers fixed below
        the rest, ``feasible``'s ``fixed``) leaves this node none. It reads the placed
        buffers of the side and the unplaced ones alone, not the node's order (offset, position) nor the buffers
        outside it: an ancestor whose placement lies outside the side had the same side problem, so it fails too
        (``_search``'s ``nogood``).

        Deterministic: the side's search has a work limit (``PROBE_UNITS_PER_BUFFER``), charged to this try's work with
        its setup (``WORK_PROBE``); its failed tests' needs count in ``above`` as this try's own do (a capacity below
        them searches the same side tree)."""
        if self.interval:
            members = np.unique(self.flat[self.ptr[a]:self.ptr[z]])
        else:   # (a section's entries are a clique of it: every active buffer live in the side instead)
            members = np.flatnonzero((self.slo_a < z) & (self.shi_a > a))
        placed = self.placed[members]
        if placed.all():
            return False   # (nothing left to place there: the placed buffers are a packing of it)
        fx = np.flatnonzero(placed)
        if len(members) - len(fx) > most:
            return False   # (nearly the whole subproblem: ``PROBE_MOST_NUM``)
        offs = np.asarray([self.asg[i] for i in members[fx].tolist()], dtype=np.int64)
        key = (a, z, members.tobytes(), placed.tobytes(), offs.tobytes())
        known = self.probes.get(key)
        if known is not None:
            self.side_hits += 1
            return known
        self.side_proofs += 1
        sizes, lower, upper = self._area_cols
        lower, upper = lower[members], upper[members]
        if a > 0:   # (section k is the slot just before ``ends[k]``: cut to sections a..z - 1)
            lower = np.maximum(lower, self.ends[a - 1])
        upper = np.minimum(upper, self.ends[z - 1])
        compatible, pairs = frozenset(), 0
        if not self.interval:
            compatible, pairs = self._side_compatible(members, lower, upper)
        side = BufferProblem(sizes[members], lower, upper, alignment=self.align, compatible=compatible)
        units = max(PROBE_MIN_UNITS, PROBE_UNITS_PER_BUFFER * int(len(members) - len(fx)))
        budget = WorkBudget(2 * units, self.budget.wall_seconds)
        budget.deadline = self.budget.deadline
        setup = WORK_PROBE + WORK_PROBE_PER_BUFFER * len(members) + WORK_PROBE_PER_PAIR * pairs
        self.probe_work += setup
        self._work(setup)
        probe = PackingSearch(side, dataclasses.replace(self.params, side_proofs=False), budget)
        proven = False
        try:
            proven = probe.feasible(self.cap, self.order_key, units, (fx, offs)) is None
        except Abort:
            pass
        except OutOfWork:   # (only the wall clock: its work budget is twice its limit)
            self.budget.wall_fired = True
            raise
        finally:
            self.probe_work += budget.taken + probe.work
            self._work(budget.taken + probe.work)
        if probe.above < NO_CAPACITY:
            self._over(probe.above)
        if len(self.probes) < PROBE_CACHE_MAX:
            self.probes[key] = proven
        self.sides_proven += proven
        return proven

    def _side_compatible(self, members: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[frozenset, int]:
        """The side problem's pairs (its own indices ``i < j``) of ``members`` whose cut intervals ``lower..upper``
        overlap but which do not conflict here (HB-ordered, in place): its ``compatible``, so that its conflicts are
        exactly theirs here; and the overlapping pairs read (``WORK_PROBE_PER_PAIR``). Why exactly: two intervals that
        overlap and each meet the side overlap within it (``_side_proof``), so the cut changes no pair's overlap, and
        the pairs left out of ``compatible`` conflict in the side problem as here. A side problem with a conflict
        this problem lacks would not be a relaxation (its failure would prove nothing)."""
        m = len(members)
        order = np.argsort(lower, kind="stable")
        lo_s = lower[order]
        ends = np.searchsorted(lo_s, upper[order], side="left")
        cnt = np.maximum(ends - np.arange(m) - 1, 0)
        total = int(cnt.sum())
        if total == 0:
            return frozenset(), 0
        rows = np.repeat(np.arange(m, dtype=np.int64), cnt)
        offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        x, y = order[rows], order[rows + 1 + offs]
        over = np.minimum(x, y) * m + np.maximum(x, y)
        # this problem's conflicts among the members, in the side's indices
        loc = np.full(self.n, -1, dtype=np.int64)
        loc[members] = np.arange(m, dtype=np.int64)
        bounds, adj = self.csr
        lens = bounds[members + 1] - bounds[members]
        src = np.repeat(np.arange(m, dtype=np.int64), lens)
        at = np.repeat(bounds[members] - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()), dtype=np.int64)
        dst = loc[adj[at]]
        keep = dst > src
        conflict = src[keep] * m + dst[keep]
        free = np.setdiff1d(over, conflict, assume_unique=False)
        return frozenset(zip((free // m).tolist(), (free % m).tolist())), total

    @property
    def area_of(self) -> list[int]:
        """Each buffer's area (size x lifetime, exact Python ints), built on first use. Why lazy: only a search with
        ``focus`` tracks area (``track_area``), and the list is a Python step per buffer (an object multiply of the
        columns) that every other ``PackingSearch`` of a large problem paid for nothing."""
        if self._area_of is None:
            sizes, lower, upper = self._area_cols
            self._area_of = [int(x) for x in (sizes.astype(object) * (upper - lower).astype(object))]
        return self._area_of

    def _solved(self, bufs) -> None:
        """Count a solved part's buffers (``bufs``: each placed, then undone as its frames returned) as placed area
        until the frame that solved it returns (``packed_area``: how far into a packing the try got)."""
        if not self.track_area:
            return
        area_of = self.area_of
        self.placed_area += sum(area_of[b] for b in bufs)
        if self.placed_area > self.packed_area:
            self.packed_area = self.placed_area

    def _charge(self, units: int) -> None:
        """Count ``units`` of work that made no node (in ``UNPLACED_PER_NODE``-ths of a node) against the budget,
        a whole node's worth at a time: a node whose candidates keep failing spends its work budget there too,
        in the same steps on every machine (deterministic)."""
        self.scanned += units
        if self.scanned >= UNPLACED_PER_NODE:
            spent, self.scanned = divmod(self.scanned, UNPLACED_PER_NODE)
            self.nodes_left -= spent
            if self.nodes_left < 0:
                raise Abort
            self.budget.spend_nodes(spent)

    def _over(self, need: int) -> None:
        """Note a test that failed at ``self.cap`` and passes at ``need`` bytes and above (``above``: their least).

        Why: every test of a try compares a value the capacity does not change with the capacity (a top, a
        section's floor plus what is left in it: fails while it exceeds it), so a try at any capacity below the
        least of the failed tests' values makes every test as this one did and searches the very same tree. An
        exhausted try at ``cap`` thus proves that bound, not just ``cap + 1``: one byte a try took a proof on
        buffers of 2**40 bytes forever (the search's ``_Minimiser.proof``)."""
        if need < self.above:
            self.above = need

    def _candidates(self, ordering, stride: int, min_offset: int, min_p: int, min_height: int,
                    thin: tuple[int, int, int] | None = None):
        """The buffers ``_search`` tries at a node, ``(offset, position, buffer)`` by offset then preorder
        position: only those at or above the node's offset (canonical order) and below the lowest top (one
        at or above it leaves a gap), made in batches that double, each the next smallest keys.

        Why batches: a node mostly succeeds with its first candidates, and a frame that listed every one
        kept O(depth x unplaced) Python ints on the stack of a deep search (10,000 buffers in a chain:
        6 GB, most of the time in ``tolist``). Each batch after the first is made when the one before is
        used up, that is when the node has undone its last try: the state is the node's own again, so
        the batches continue the one order of the node's state.

        The order is that of the keys ``offset x stride + position``, one int64 each, where every candidate's key
        fits (offsets below ``min_height``); past that (``wide_keys``: offsets near 2**63 / buffers) the same order
        by ``(offset, position)`` pairs. Why: the keys wrapped around there, so candidates were skipped or tried out
        of order, and a capacity the search had not exhausted was "proven" infeasible: four buffers of 5-7 x 2**58
        bytes, two pairs of them in place, packed in 16 x 2**58 bytes, were called OPTIMAL at 18 x 2**58.

        ``thin`` (``(limit, k_first, k_last)``, interval problems): ``_search`` refuses a candidate above ``limit`` that
        does not span sections ``k_first..k_last`` (the fullest: its offset plus their total passes the capacity), each
        (whose top is within the capacity) noting its offset plus that total as a need (``_over``); the scans list
        only the first of them (the least need: the order is by offset), the same candidates tried in the same order. Why: minimalloc's H had 200,254
        of its 206,070 candidates refused there to its packing (1,291 nodes), each batch of them listed and
        looped over in Python: 46% of its work units (D at its bound: 97,333 of 120,859)."""
        pre_b, pre_p, front, _ = ordering
        wide = wide_keys(min_height, stride)
        last, k = (-1, -1) if wide else -1, 32
        if front is not None and not wide:
            yield from self._front_candidates(front, pre_b, min_offset * stride + min_p, min_height * stride, k)
            return
        while True:
            left = ~self.placed[pre_b]
            un_b, un_p = pre_b[left], pre_p[left]
            offs = self.moeff[un_b]
            canonical = (offs < min_height) & ((offs > min_offset) | ((offs == min_offset) & (un_p >= min_p)))
            if thin is not None and not wide:
                limit, k_first, k_last = thin
                over = np.flatnonzero(canonical & (offs > limit))
                self.work += WORK_THIN
                if len(over):
                    ob = un_b[over]
                    # (one whose top passes the capacity is refused before, its need its top: listed as ever)
                    refused = over[((self.slo_a[ob] > k_first) | (self.shi_a[ob] <= k_last))
                                   & (offs[over] + self.sizes[ob] <= self.cap)]
                    if len(refused):   # (all but the least key: every batch the same, the node's state)
                        rk = offs[refused] * stride + un_p[refused]
                        canonical[refused] = rk == rk.min()
                        self.work += WORK_THIN_REFUSED
                    del ob, refused
                del over
            if wide:
                at = np.flatnonzero(canonical & ((offs > last[0]) | ((offs == last[0]) & (un_p > last[1]))))
                at = at[np.lexsort((un_p[at], offs[at]))]
                more = len(at) > k
                at, key = at[:k], None
            else:
                key = offs * stride + un_p
                at = np.flatnonzero(canonical & (key > last))
                more = len(at) > k
                if more:
                    at = at[np.argpartition(key[at], k - 1)[:k]]
                at = at[np.argsort(key[at])]
            batch = list(zip(offs[at].tolist(), un_p[at].tolist(), un_b[at].tolist()))
            self.work += WORK_BATCH + WORK_BATCH_PER_BUFFER * len(pre_b) + WORK_CANDIDATE * len(batch)
            if more:
                last = (batch[-1][0], batch[-1][1]) if wide else int(key[at[-1]])
            del left, un_b, un_p, offs, canonical, key, at
            yield from batch
            if not more:
                return
            k *= 2

    def _front_candidates(self, front: _Front, pre_b: np.ndarray, first: int, below: int, k: int):
        """``_candidates`` read off a ``_Front``: the keys at or above ``first`` (the node's offset and position) and
        below ``below`` (its lowest top), in batches of the ``k``, ``2k``, ... smallest, the same candidates in the
        same order. Why: each batch there masked and compacted every buffer of the subproblem and made its keys again
        (with the node's own scan, ~100 us a node at 5,000 buffers, most of a node); the front's keys are those keys,
        a placed buffer's above every bound."""
        key, stride = front.key, front.stride
        lo = first
        while True:
            at = np.flatnonzero((key >= lo) & (key < below))
            more = len(at) > k
            if more:
                at = at[np.argpartition(key[at], k - 1)[:k]]
            at = at[np.argsort(key[at])]
            keys = key[at]
            batch = list(zip((keys // stride).tolist(), at.tolist(), pre_b[at].tolist()))
            self.work += WORK_BATCH + WORK_FRONT_BATCH_PER_BUFFER * len(key)
            if more:
                lo = int(keys[-1]) + 1
            del at, keys
            for c in batch:
                self.work += WORK_CANDIDATE
                yield c
            if not more:
                return
            k *= 2

    def _decompose(self, lo, hi, bufs, ordering, o, p, b) -> bool:
        self.sol[b] = o
        a, z = self.slo[b], self.shi[b]
        if z - a < 2 or not self.params.dynamic_decomposition:
            return (yield self._search(lo, hi, bufs, ordering, o, p))
        cuts = self.cuts
        cuts[a:z - 1] -= 1
        zeros = np.flatnonzero(cuts[a:z - 1] == 0)
        try:
            if len(zeros) == 0:
                return (yield self._search(lo, hi, bufs, ordering, o, p))
            points = [lo] + (zeros + a + 1).tolist() + [hi]
            if len(bufs) >= SPLIT_BULK_BUFFERS:   # (in bulk: the same parts, each in ``bufs``' order)
                self.work += WORK_SPLIT_BULK + WORK_SPLIT_BULK_PER_BUFFER * len(bufs)
                parts = _split_parts(np.asarray(bufs, dtype=np.int64), self.placed, self.slo_a, points)
            else:
                asg, slo, shi = self.asg, self.slo, self.shi
                self.work += WORK_SPLIT_PER_BUFFER * len(bufs) * (len(points) - 1)
                parts = ((r_lo, r_hi, [x for x in bufs if asg[x] < 0 and slo[x] < r_hi and r_lo < shi[x]])
                         for r_lo, r_hi in zip(points, points[1:]))
            solved = self.placed_area
            try:
                for r_lo, r_hi, sub in parts:
                    if sub and not (yield self._sub_solve(r_lo, r_hi, sub)):
                        self.nogood = None   # (a part's side: its buffers alone, not this subproblem's)
                        return False
                    self._solved(sub)
                return True
            finally:
                self.placed_area = solved   # (the parts solved undone: their placements were, each as it returned)
        finally:
            cuts[a:z - 1] += 1


#: a ``_Front``'s key and top of a placed buffer: above every candidate's and every top
KEY_NONE = INT64_MAX


class _Front:
    """A subproblem's unplaced buffers as ``_candidates`` orders them, by position in its preorder: ``key`` their
    ``minimum offset x stride + position`` and ``top`` their minimum offset plus size (``KEY_NONE`` once placed),
    ``left`` how many are unplaced. Each placement in the subproblem updates the buffer's and its unplaced
    neighbours' entries and its undo puts them back (``PackingSearch._search``), so a node reads its candidates and
    lowest top off two arrays instead of rescanning the subproblem. Only where every key fits int64 (``wide_keys``)."""

    __slots__ = ("key", "top", "left", "stride")

    def __init__(self, s: PackingSearch, pre: np.ndarray, stride: int):
        moeff = s.moeff[pre]
        unplaced = ~s.placed[pre]
        self.stride = stride
        self.key = np.where(unplaced, moeff * stride + np.arange(len(pre), dtype=np.int64), KEY_NONE)
        self.top = np.where(unplaced, moeff + s.sizes[pre], KEY_NONE)
        self.left = int(unplaced.sum())


def _split_parts(bufs: np.ndarray, placed: np.ndarray, slo: np.ndarray,
                 points: list[int]) -> list[tuple[int, int, list[int]]]:
    """``PackingSearch._decompose``'s parts in bulk: per run ``points[k]..points[k + 1] - 1`` of sections, the unplaced
    ``bufs`` in it, in ``bufs``' order (an unplaced buffer spans no cut between runs, so its first section says its
    run). Why: the Python filter read every buffer once a part (10 parts of 1,500 buffers: 15,000 steps, ~1.5 ms), and
    the per-part masks of the former bulk path did the same in numpy; one ``searchsorted`` and a stable sort read each
    buffer once (``WORK_SPLIT_BULK``)."""
    left = bufs[~placed[bufs]]
    run = np.searchsorted(np.asarray(points[1:-1], dtype=np.int64), slo[left], side="right")
    order = np.argsort(run, kind="stable")
    run, left = run[order], left[order]
    cuts = np.searchsorted(run, np.arange(len(points), dtype=np.int64)).tolist()
    left = left.tolist()
    return [(points[k], points[k + 1], left[cuts[k]:cuts[k + 1]]) for k in range(len(points) - 1)]


def _time_partitions(cuts0: np.ndarray, act: np.ndarray, slo: np.ndarray,
                     nsec: int) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """``(lo, hi, buffers)`` per run of sections ``lo..hi - 1`` joined by buffers spanning their cuts (``cuts0``: a
    cut no buffer spans ends a run), each with the active buffers ``act`` (ascending) that start in it, in index
    order; runs with none left out. Why once, in bulk: made again by every try (a ``searchsorted`` per buffer in
    Python: 1.7-2.6 us a buffer, 10-14 ms a try on 3,000-5,000 buffers), they were most of a try's start, which a
    repair (``search_repair``) of a large problem pays for a few nodes' search; they depend on the problem alone."""
    if nsec == 0 or len(act) == 0:
        return ()
    bounds = np.concatenate(([0], np.flatnonzero(cuts0 == 0) + 1, [nsec])).astype(np.int64)
    part = np.searchsorted(bounds[:-1], slo[act], side="right") - 1
    order = np.argsort(part, kind="stable")   # (``act`` ascending: each run's buffers stay in index order)
    part, members = part[order], act[order]
    heads = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    ends = np.r_[heads[1:], len(part)]
    lo, hi = bounds[part[heads]].tolist(), bounds[part[heads] + 1].tolist()
    members = members.tolist()
    return tuple((a, z, tuple(members[h:e])) for a, z, h, e in zip(lo, hi, heads.tolist(), ends.tolist()))


def _need_of(need: np.ndarray, least: np.ndarray, floor: np.ndarray, total: np.ndarray, o: int, cap: int) -> int | None:
    """``_sections_pass_at``'s capacity off the failed window test's own terms (``need``: ``max(floor, least, o) +
    total`` per section, ``least`` the section's lowest minimum offset, a placed buffer's the capacity): a section with
    bytes left and an unplaced buffer below the capacity needs its term, one with none left ``max(floor, o)``; None
    where a section with bytes left has every unplaced buffer at or above the capacity (its term there is the
    capacity's, not theirs: ``_sections_pass_at`` reads its entries again). Why: that re-read (a gather of the window's
    entries, a mask and a ``reduceat``, then a loop or eight array steps) was most of a failed test's cost, and failed
    tests 40-52% of the work of minimalloc A and D at their bound. (None too at capacities from 2**62: there
    ``_sections_pass_at`` sums in uint64, where an int64 term could wrap.)"""
    left = total > 0
    if cap >= 1 << 62 or (left & (least >= cap)).any():
        return None
    return int(np.where(left, need, np.maximum(floor, o)).max())


#: ``_sections_pass_at`` loops over a window of at most this many sections in Python, in bulk above
PASS_AT_LOOP_SECTIONS = 12


def _sections_pass_at(floor: np.ndarray, moeff: np.ndarray, placed: np.ndarray, starts: np.ndarray, o: int,
                      total: np.ndarray) -> int:
    """A capacity below which ``_search``'s section test fails, as it did (``max(floor, least, o) + total <= cap`` on
    each section, ``least`` the section's lowest minimum offset, a placed buffer's counting as the capacity itself).
    A section with bytes left passes from ``max(floor, lowest unplaced minimum offset, o) + total`` on (while that
    offset is above the capacity, ``least`` is the capacity and ``cap + total`` fails); one with none left passes
    from ``max(floor, o)`` on at the latest (a lower bound is all ``PackingSearch.above`` needs). In uint64: offsets
    near 2**63 plus a total wrap in int64, and every term is below 2**63, so each sum is below 2**64.

    Why in bulk past ``PASS_AT_LOOP_SECTIONS`` sections: a Python loop over the window's sections took 7 ms a failed
    test on 3,000 buffers that each live over half the timeline (3,000 sections), several times what the test is
    charged; below, the loop (in Python ints) is the quicker, the arrays' calls costing more than a few sections' steps
    (measured: 11 us against 18 at 4 sections, 21 against 16 at 16). The same values either way."""
    unplaced = np.minimum.reduceat(np.where(placed, NO_CAPACITY, moeff), starts)
    if len(starts) <= PASS_AT_LOOP_SECTIONS:
        need = 0
        for f, u, t in zip(floor.tolist(), unplaced.tolist(), total.tolist()):
            need = max(need, max(f, u, o) + t if t > 0 else max(f, o))
        return need
    base = np.maximum(floor, o)
    left = total > 0
    top = np.maximum(base, unplaced).astype(np.uint64) + np.where(left, total, 0).astype(np.uint64)
    need = np.where(left, top, base.astype(np.uint64))
    return max(0, int(need.max())) if len(need) else 0


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].max()`` for every ``i`` (each range non-empty), off a sparse table of ``values``: one
    numpy step per power of two. Why not ``np.maximum.reduceat`` over the ranges' interleaved ends: between one range's
    end and the next one's start it reduces the gap too, all of ``values`` a range where they come unsorted (5,000
    buffers: 15 ms, as slow as a Python ``max`` a buffer)."""
    levels = [values]
    width = 1
    while 2 * width <= int((hi - lo).max(initial=1)):
        last = levels[-1]
        levels.append(np.maximum(last[:-width], last[width:]))
        width *= 2
    span = hi - lo
    k = np.zeros(len(lo), dtype=np.int64) if len(lo) == 0 else np.floor(np.log2(span)).astype(np.int64)
    k = np.minimum(k, len(levels) - 1)
    out = np.empty(len(lo), dtype=values.dtype)
    for j in np.unique(k).tolist():
        at = np.flatnonzero(k == j)
        table = levels[j]
        out[at] = np.maximum(table[lo[at]], table[hi[at] - (1 << j)])
    return out


def _rows_reduce(ufunc: np.ufunc, values: np.ndarray, bounds: np.ndarray, empty: int,
                 own: np.ndarray | None) -> np.ndarray:
    """Per row of a CSR (``values[bounds[i]:bounds[i + 1]]``) its ``ufunc`` reduction, combined with ``own[i]`` where
    given; ``empty`` for a row with no values and no ``own``."""
    n = len(bounds) - 1
    out = np.full(n, empty, dtype=np.int64) if own is None else np.asarray(own, dtype=np.int64).copy()
    rows = np.flatnonzero(np.diff(bounds) > 0)
    if len(rows):
        red = ufunc.reduceat(values, bounds[:-1][rows])
        out[rows] = red if own is None else ufunc(out[rows], red)
    return out


def _section_entries(act: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(buffers, sections)``: every (section, buffer) entry of the active buffers ``act`` (buffer ``act[j]`` spans
    sections ``lo[j]..hi[j] - 1``), by section, each section's buffers in index order."""
    cnt = hi - lo
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    run_start = np.cumsum(cnt) - cnt
    bufs = np.repeat(act, cnt)
    secs = np.arange(total, dtype=np.int64) - np.repeat(run_start, cnt) + np.repeat(lo, cnt)
    order = np.argsort(secs, kind="stable")   # (``act`` ascending: each section's buffers stay in index order)
    return bufs[order].astype(np.int64), secs[order]


#: the search keeps each buffer's neighbours as the bits of one int (n^2 / 8 bytes) up to this many buffers, for the
#: cliques of HB-filtered sections (``_section_cliques``); sets above it (the same cliques)
CLIQUE_BITSET_BUFFERS = 16384


def _section_cliques(sec_buf: np.ndarray, sec_of: np.ndarray, nsec: int, sizes: np.ndarray, bounds: np.ndarray,
                     adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each section's clique grown greedily (its buffers by size, largest first, ties by index; a buffer joins when it
    conflicts with every member so far), as ``(buffers, sections)`` entries by section, each clique in index order."""
    n = len(sizes)
    if len(sec_buf) == 0:
        return sec_buf, sec_of
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), -sizes))] = np.arange(n)
    order = np.lexsort((rank[sec_buf], sec_of))
    cand, ptr = sec_buf[order].tolist(), np.searchsorted(sec_of[order], np.arange(nsec + 1)).tolist()
    out_b: list[int] = []
    out_s: list[int] = []
    if n <= CLIQUE_BITSET_BUFFERS:
        nbr = _neighbour_bits(bounds, adj, n)
        for k in range(nsec):
            bits, clique = 0, []
            for i in cand[ptr[k]:ptr[k + 1]]:
                if bits & nbr[i] == bits:
                    bits |= 1 << i
                    clique.append(i)
            clique.sort()
            out_b.extend(clique)
            out_s.extend([k] * len(clique))
    else:
        starts = bounds.tolist()
        sets = {}
        for k in range(nsec):
            clique = []
            for i in cand[ptr[k]:ptr[k + 1]]:
                if clique:
                    nb = sets.get(i)
                    if nb is None:
                        nb = sets[i] = set(adj[starts[i]:starts[i + 1]].tolist())
                    if not all(j in nb for j in clique):
                        continue
                clique.append(i)
            clique.sort()
            out_b.extend(clique)
            out_s.extend([k] * len(clique))
    return np.asarray(out_b, dtype=np.int64), np.asarray(out_s, dtype=np.int64)


def _neighbour_bits(bounds: np.ndarray, adj: np.ndarray, n: int) -> list[int]:
    """Each buffer's neighbours as the set bits of one int (bit ``u`` for buffer ``u``), from the CSR arrays in bulk."""
    return _row_bits(bounds, adj, n, n)


def _row_bits(bounds: np.ndarray, cols: np.ndarray, rows: int, width: int) -> list[int]:
    """Each CSR row's entries (``cols[bounds[r]:bounds[r + 1]]``, ascending, below ``width``) as the set bits of one
    int: each row's 64-bit words OR-reduced (a row's entries are sorted, so a word's bits are consecutive entries)."""
    words = max(1, (width + 63) >> 6)
    mat = np.zeros((rows, words), dtype=np.uint64)
    if len(cols):
        src = np.repeat(np.arange(rows, dtype=np.int64), np.diff(bounds))
        key = src * words + (cols >> 6)
        bits = np.left_shift(np.uint64(1), (cols & 63).astype(np.uint64))
        heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        mat.reshape(-1)[key[heads]] = np.bitwise_or.reduceat(bits, heads)
    raw = mat.astype("<u8", copy=False).tobytes()
    step = words * 8
    return [int.from_bytes(raw[r * step:(r + 1) * step], "little") for r in range(rows)]


def _section_totals(sec_buf: np.ndarray, sec_ptr: np.ndarray, sizes: np.ndarray, asz: list[int]) -> np.ndarray:
    """Each section's rounded sizes less the largest rounding slack among them (0 for an empty section), as int64."""
    nsec = len(sec_ptr) - 1
    if len(sec_buf) == 0:
        return np.zeros(nsec, dtype=np.int64)
    if sum(asz) >= 1 << 63:   # (no int64 sum then: in Python ints, as the check below reads them)
        flat = sec_buf.tolist()
        ptr = sec_ptr.tolist()
        size = sizes.tolist()
        return np.asarray([sum(asz[i] for i in flat[a:z]) - max([asz[i] - size[i] for i in flat[a:z]], default=0)
                           for a, z in zip(ptr, ptr[1:])], dtype=np.int64)
    a = np.asarray(asz, dtype=np.int64)[sec_buf]
    slack = a - sizes[sec_buf]
    out = np.zeros(nsec, dtype=np.int64)
    rows = np.flatnonzero(np.diff(sec_ptr) > 0)
    out[rows] = np.add.reduceat(a, sec_ptr[:-1][rows]) - np.maximum.reduceat(slack, sec_ptr[:-1][rows])
    return out
