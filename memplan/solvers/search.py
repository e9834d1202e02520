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
- failed states: a node whose state (its subproblem's unplaced buffers and their minimum offsets) a failed subtree
  searched from the same or a lower (offset, position) fails at once (a try's table, ``SearchParams.memo``: different
  placements below can leave the same state above, and minimalloc A's packing tree met 262 of them);
- side proofs (interval problems): a node whose child's subtree failed at length searches the sections beyond that
  child's buffer apart, with the placed buffers there fixed; a side without a packing fails the node, and each
  ancestor whose own buffer lies outside that side (``SearchParams.side_proofs``, ``search_tree.PROBE_AFTER_NODES``:
  a wrong placement on one side was refuted once per combination the search tried on the other); on HB-filtered
  problems too with ``SearchParams.hb_side_proofs`` (a side then keeps exactly its buffers' conflicts); none in a try
  whose first ``search_tree.PROBE_TRIAL`` proved nothing, nor in a bound tree (``BoundTrees``) until its work affords
  ``search_tree.PROBE_MIN_DESCENTS`` descents;
- chases (``SearchParams.chase``): after a try of the three preorders packs, the preorder whose tree packed shoots alone
  one below the new best with the work that packing took, for as long as it packs (``_Minimiser.chase``);
- three static preorders searched side by side (interleaved deterministically), so one bad order
  cannot stall the others; the first to finish decides. Where nothing fits the capacity yet, the tree with the most
  area placed at once gets more turns once each has searched a few descents (``SearchParams.focus``).

It works for any conflict relation (multi-stream HB-filtered problems, in-place pairs): canonical
placement only needs the conflict lists, and inference uses a clique of each section.

Where the work budget affords only a few descents (``FEW_DESCENTS``), the solve is instead a chain of shots of one
preorder at a time (``_Minimiser.opening``): the rounds' interleaved tries could not finish one descent there. On large
problems whose budget affords under ``BELOW_FIRST_DESCENTS`` descents, each shoots below the best arena before the bound.
On large problems (``search_tree.FRONT_MIN_BUFFERS`` buffers) the opening first repairs the best packing: its buffers
around the peak searched again, the rest kept (``search_repair``), tries of a fraction of a descent that prove nothing.

Otherwise the arena is minimised in rounds. Each round first tries the proven bound itself with a node
budget that doubles every round: on real graphs and on most benchmark inputs the bound is reachable,
and one long enough try there both finds the packing and proves it optimal (a ladder that only gave
the bound an equal share kept finding slightly better packings and never reached it). Under a budget of work the
bound's trees are not begun again each round but go on where the last round paused them (``BoundTrees``), and the rest
of the round gets as much work again (``IMPROVE_SHARE``); under a budget of nodes (``auto.polish``) as before. The rest
of the round, twice the bound's nodes, improves the best arena: a ladder of capacities — one below the best
and rungs drawn from a seeded generator — each with a node budget that grows while nothing improves
(which capacity is quick to fill is erratic: heavy-tailed search times), then randomised restarts
one below the best with perturbed preorder scores. An exhausted search at capacity ``c`` proves
``c + 1`` a lower bound. ``problem.capacity`` is a hard cap; ``options.objective == Objective.FIT`` stops at the first packing
within it. The time limit is a work budget (``SearchParams.nodes_per_second`` units a second, each
``search_tree.WORK_NS_PER_UNIT`` estimated nanoseconds, charged by what the search scans: ``search_tree.WORK_NODE`` ...),
so a solve is deterministic for a given seed; only the wall-clock safety stop, reported when it fires, is not.
"""

from __future__ import annotations

import copy
import random
import time
from enum import Enum

import numpy as np

from ..errors import SolverError, report_progress
from ..problem import BufferProblem, Solution, Status, arena_of, gap_of
from . import search_repair, search_tree
from .capacity import OverCapacity, alone_over
from .options import PAIR_BYTES, Objective, SearchParams, SolveOptions, gib
from .search_tree import NO_CAPACITY, Abort, OutOfWork, PackingSearch, WorkBudget
from .start import best_start, known_bound, started_interrupted, started_stopped

#: work budget (in seconds of ``time_limit``) when the caller gives none: the search is exact and
#: could otherwise run long
DEFAULT_TIME_LIMIT = 60.0
#: the most overlapping buffer pairs the search takes on: it keeps Python lists per conflicting pair
#: (about 150 bytes each), so 8000 buffers live at once took 5 GB and 30000 more memory than a machine
#: has; greedy and size handle such problems in bulk (CP-SAT up to its own ``cpsat.MAX_PAIRS``)
MAX_PAIRS = 5_000_000


#: The estimated seconds of the search's setup (``PackingSearch``'s tables: the conflict graph, its sections and, on
#: HB-filtered problems, their cliques) per buffer and per overlapping pair, fitted on the 2-core machine (process
#: time, where ``SearchParams.nodes_per_second`` was calibrated) to interval problems of 1,000-20,000 buffers (tiled
#: minimalloc, random, dense: up to 4.1M pairs, 1.3 s) and ``layered_graph`` / ``random_dag`` on 2 and 4 streams
#: (up to 4.5M pairs, 1.4 s). A function of the problem's size alone: the budget it leaves repeats on any machine.
SETUP_PER_BUFFER = 2e-6
SETUP_PER_PAIR = 3e-7
#: setup seconds the search takes on top of its time limit (its overrun stays below them); beyond, the setup is
#: counted in the limit (``search_seconds``). Why a floor: the plans of every problem whose setup is estimated
#: below it (up to 1.6M overlapping pairs: the minimalloc set, graphs of a few thousand buffers) stay what they were
SETUP_FREE_SECONDS = 0.5
#: under a budget of work, the first try at the bound, each ladder rung's first try and each restart get at most
#: these shares of the solve's whole budget (per preorder; the bound's and the ladder's still grow from there). Why:
#: the limits grow with the problem (4 nodes a buffer at the bound), so on 3,000 buffers one try at the bound took the
#: whole of ``time_limit=1`` and the ladder and the restarts never ran; capped, every solve gets tries at several
#: capacities (the preorders of a try share its share: more than 3 leaves room for another try). The minimalloc
#: set's limits (150-455 buffers) are not capped from ``time_limit=1`` up (``docs/experiments/search_tries_s54.py``).
TRY_SHARES = (4, 8, 4)
#: under a budget of work, the try at the bound gets this many units a node of its limit (capped as above). Why: one
#: long try there finds a reachable bound (minimalloc G: 1,100 nodes of one preorder, ~330 us each); at one unit a
#: node it fell short at ``time_limit=1`` (arena 1277952 for 1048576) where the ladder's many short tries gained
PROOF_SCALE = 3
#: a node's estimated work in units for ``descent_units``: 82 buffers took 105 nodes in 92 units without a packing,
#: and 3,000 random intervals ~4 units a node (3,048 nodes, 12,000 units), which at 2 a node lost their bound at
#: ``time_limit=2`` (arena 23,570,944 for 22,198,528: the try at the bound stopped halfway)
DESCENT_UNITS_PER_NODE = 4
#: a node's estimated work in units where the problem has ``search_tree.FRONT_MIN_BUFFERS`` buffers or more (a node
#: reads its candidates off a ``search_tree._Front``: 5,000 random intervals 1.8 units a node in a descent without a
#: backtrack, 2.5 with the rescans), for ``BELOW_FIRST_DESCENTS`` alone: the shots' limits and ``FEW_DESCENTS`` keep
#: ``DESCENT_UNITS_PER_NODE`` (a shot's limit is a descent with its backtracks: 3,000 random intervals pack their bound
#: in 3,716 nodes, past a limit of 2 units a node)
DESCENT_UNITS_PER_FRONT_NODE = 2
#: under a budget of work that affords fewer than this many descents (``descent_units``), the solve opens with shots of
#: one preorder at a time, each of at most ``OPENING_DESCENTS`` descents' work (``_Minimiser.opening``): at the bound
#: (a reachable bound mostly packs without a backtrack), then one below the best arena for as long as they pack, then
#: the next preorder; the limit doubles once every preorder stopped short. Why: there the three preorders' first try at
#: the bound shared the whole budget, none finished its descent, and the start came back (3,000 random intervals at
#: ``time_limit=1``: 5,205 nodes, ~1,700 a preorder, arena 23,570,944; opened, the bound 22,198,528 in 3,716 nodes).
#: Opens minimalloc F-J at ``time_limit=0.5`` (3.6-5 descents), none of A-J from ``time_limit=1`` up
#: (``docs/experiments/search_s55.txt``, ``search_s56.txt``).
FEW_DESCENTS = 6
OPENING_DESCENTS = 1
#: under a budget of fewer than this many descents (``descent_units`` at ``DESCENT_UNITS_PER_FRONT_NODE``), on problems of
#: ``search_tree.FRONT_MIN_BUFFERS`` buffers or more, each preorder of the opening shoots below the best arena before it
#: shoots at the bound. Why: there the shot at the bound took the whole budget and stopped short, and the start came
#: back, where a shot below the best mostly packs in one descent without a backtrack (5,000 random intervals at
#: ``time_limit=1``: 4,657 nodes at the bound, arena 25,297,664 as started). 3,000 random intervals at ``time_limit=1``
#: (1.9 descents) still shoot at the bound first and pack it (in 1.2 descents). Smaller problems shoot as before (300
#: random intervals at ``time_limit=0.1`` prove their weak bound unreachable in a node first: ``test_search_round56``).
BELOW_FIRST_DESCENTS = 1.5
#: the opening shoots again at a bound its shot proved unreachable while that proof raised it by at least this share of
#: the gap to the best arena (1 / ``PROOF_STEP``). Why: a proof mostly takes a node and raises the bound well above the
#: capacity tried (``PackingSearch.above``): ``random_dag(3000)`` on 8 streams, its bound 3,766,272 raised to 3,923,968,
#: 3,973,120 and 3,984,384 in 1 node each (the interleaved rounds' rungs had reached 3,988,480); but shots at bounds
#: raised a few KB each (a weak ``lower_bound`` given: 26 proofs, 0.2-1% of the gap each) took the budget of the shot
#: below the best that gained (300 intervals at ``time_limit=0.1``: 20,799,744 bytes for 20,423,168)
PROOF_STEP = 8
#: while some preorder has yet to make its opening shot at the bound, a preorder's shot below the best that packed less
#: than 1 / ``SMALL_STEP`` of the gap to the bound hands over to the next preorder (``SearchParams.handover``). Why:
#: from a start near the bound, the shots below the best pack small steps, each a descent, and take the budget before
#: the next preorder's shot at the bound (``random_dag(1000)`` serial at ``time_limit=1`` from skyline's repaired start,
#: 2,067,456: the first preorder's steps of 1,024 bytes, 10% of the gap each, ended at 2,064,384 where the second
#: preorder packs the bound 2,057,216 in one descent); a step that lands far below goes on (minimalloc J at
#: ``time_limit=0.5``: 1,303,552 -> 1,137,664, 65% of the gap)
SMALL_STEP = 8
#: ... and only where the best arena before the step was within 1 / ``NEAR_BOUND`` of itself above the bound. Why: a
#: bound that near mostly packs (random_dag(1000) 0.5% above, layered_graph(1000, seed=1) 0.9%: both pack it at
#: ``time_limit=1``), where a bound far below (minimalloc A-K, 5-15%) mostly does not, and each preorder's shot at it
#: then took a descent from the steps: minimalloc B, D, H, K at ``time_limit=0.25-0.5`` ended 0.3-1.4% higher
NEAR_BOUND = 64


#: where nothing fits the capacity yet, the three preorders' trees search it side by side for this many descents' nodes
#: each (a node a buffer), then the tree furthest into a packing takes ``FOCUS_TURNS`` turns of 256 nodes to each other
#: tree's one (``_round_robin``'s ``focus``; ``SearchParams.focus``). Why 6 descents: the trees that pack within them
#: (minimalloc G-K: 410-1,938 nodes, at most 6 descents of H's 317 nodes) search as before, side by side; why 4 turns:
#: B's TAW tree, 28,440 units (13,395 nodes) to its packing, got ~17,000 of ``time_limit=5``'s 60,000 side by side (its
#: nodes the cheapest of the three), and needs half of the work after the 6 descents (4 turns give it 0.62 of it). E's
#: TWA tree (39,899 units) places the least area of the three and still does not get there (``docs/experiments/
#: search_s62.txt``)
FOCUS_AFTER_DESCENTS = 6
FOCUS_TURNS = 4

#: the least limit of a chase's shots (``_Minimiser.chase``), in units: a packing try's share of the work
CHASE_MIN_UNITS = 500

#: the improvement phase of a round (ladder and restarts) gets this many times the nodes its try at the bound took
IMPROVE_SHARE = 1

#: the bound's trees (``BoundTrees``) take turns of at most this many units each. Why turns of work, not of 256 nodes:
#: a tree's nodes cost 1-20 units (failed section tests), so where the budget ran out the trees had had 4-11k units of
#: a round's 22k (minimalloc A at ``time_limit=5``: its TWA tree, which packs the bound at 11.1k, had 10.3k in all)
BOUND_SLICE_UNITS = 200

#: the estimated work of ``search_repair.pushed_down`` (a Python step per buffer, a gather per conflicting pair)
REPAIR_PER_BUFFER = 7_000
REPAIR_PER_PAIR = 5
#: and of ``search_repair.free_part``: per buffer taken (a heap step, a gather, its new neighbours pushed), per neighbour
#: it reads (a mask). Measured on the loaded machine: 64-1,024 buffers taken in 0.7-12 ms (layered_graph(3000) serial,
#: random_dag(3000) on 8 streams: 22,000-344,000 neighbours read), ~10 us a buffer and ~20 ns a neighbour. (3,000 and
#: 400 at first: 4,526 of layered_graph(3000)'s 7,172 units at ``time_limit=0.5``, charged after the fact: 1,172 over)
REPAIR_PER_FREE = 8_000
REPAIR_PER_SCANNED = 20
#: the buffers the first repair (``_Minimiser.repairs``) searches again; each that fails frees twice as many. Why 64:
#: a repair's start (the try's arrays, the kept buffers placed) is a few hundred units on 3,000-5,000 buffers, so
#: tries of a few nodes a buffer freed are what a budget of less than a descent affords several of; 32-256 measured
#: alike on random intervals (3,000 and 5,000 at ``time_limit`` 0.25-1), 64 the best of them by a little
REPAIR_MIN_FREE = 64


#: the opening's first shots at the bound on a large problem, where the budget is under ``BELOW_FIRST_DESCENTS``
#: descents, get at most this many nodes each (``PackingSearch.feasible_steps``' ``nodes``): a proof mostly takes one
#: node, however much work its failed tests take (``random_dag(3000)`` on 8 streams: its bound raised from 3,766,272 to
#: 3,984,384 in three shots of a node, 800-1,160 units each), and a bound the descent could pack is not reached in a
#: fraction of the budget (5,000 random intervals at ``time_limit=0.5``: 274 nodes of the shot at the bound found nothing)
PROBE_NODES = 16


def repair_units(s: PackingSearch, free: int) -> int:
    """A repair's limit in units: a descent of its ``free`` buffers (``DESCENT_UNITS_PER_NODE`` a node), the try's
    start and the placement of the rest (``PackingSearch._place_fixed``)."""
    st = search_tree
    start = (st.WORK_TRY_START + st.WORK_TRY_START_PER_ENTRY * (s.n + s.nsec) + st.WORK_FIXED_PER_BUFFER * s.n
             + st.WORK_FIXED_PER_ENTRY * len(s.flat) + st.WORK_FIXED_PER_PAIR * len(s.csr[1]))
    return DESCENT_UNITS_PER_NODE * (free + 1) + -(-start // st.TRY_NS_PER_NODE)


def descent_units(s: PackingSearch, per_node: int = DESCENT_UNITS_PER_NODE) -> int:
    """The least work units a try of ``s`` that places every buffer takes: ``DESCENT_UNITS_PER_NODE`` a node (one a
    buffer, one the root) and the try's start (``search_tree.WORK_TRY_START``), the floor of the tries' capped
    limits."""
    start = search_tree.WORK_TRY_START + search_tree.WORK_TRY_START_PER_ENTRY * (s.n + s.nsec)
    return per_node * (s.n + 1) + -(-start // search_tree.TRY_NS_PER_NODE)


def setup_seconds(problem: BufferProblem) -> float:
    """The estimated seconds of the search's setup of ``problem`` (``SETUP_PER_BUFFER``, ``SETUP_PER_PAIR``); cheap
    (the pairs are counted, not built) and read from the problem's size alone, so it repeats on any machine."""
    return SETUP_PER_BUFFER * len(problem) + SETUP_PER_PAIR * problem.overlap_count()


def search_seconds(problem: BufferProblem, limit: float) -> float:
    """The seconds of ``limit`` left to the search's nodes once its setup is counted: the setup's estimate beyond
    ``SETUP_FREE_SECONDS`` comes off the limit (at most 0 left: no search). Why: the setup ran outside the work
    budget, 5 s of a ``time_limit=1`` on ``layered_graph(3000)`` on 4 streams (2.1M pairs) before its tables were
    built in bulk, so a limit bounded the search alone, not the solve."""
    return limit - max(0.0, setup_seconds(problem) - SETUP_FREE_SECONDS)


def spent_seconds(problem: BufferProblem, options: SolveOptions, sol: Solution) -> float:
    """The seconds of ``options``' time limit that ``sol``, this solver's solve of ``problem``, spent: its setup as
    counted in the limit (``search_seconds``, whether or not it built its tables) and the work units its budget took
    (``info["work"]``); 0 where it had no budget of work (``nodes``: no ``info["work"]``). Deterministic, as the budget
    is: for a caller that solves again and must keep the one limit (``solvers._solve``'s rounds with in-place pairs
    apart)."""
    if "work" not in sol.info:
        return 0.0
    limit = options.time_limit if options.time_limit is not None else DEFAULT_TIME_LIMIT
    return limit - search_seconds(problem, limit) + int(sol.info["work"]) / options.search.nodes_per_second


def _warn_no_search(options: SolveOptions, limit: float, problem: BufferProblem) -> None:
    """An ``UnusedOption`` warning that the search's setup of ``problem`` alone would take longer than its time limit,
    so the start is returned unsearched (``info["skipped"] == "setup"``)."""
    import warnings

    from ..errors import UnusedOption, caller_stacklevel
    from .options import limit_field

    named, value = limit_field(limit)
    warnings.warn(UnusedOption.of(named + " had no effect: the search's setup of "
                                  f"{len(problem)} buffers with {problem.overlap_count()} overlapping pairs takes "
                                  f"about {setup_seconds(problem):.2g}s, more than the time limit leaves; the start "
                                  "(the default solve's plan) is returned unsearched (a longer time limit searches)",
                                  time_limit=value), stacklevel=caller_stacklevel())


def check_size(problem: BufferProblem) -> None:
    """SolverError naming the pairs and the limit where ``problem`` has more overlapping pairs than the search takes
    on (``MAX_PAIRS``); cheap (no pairs built), so that a caller refuses before any work (``named.started``: the
    default solve it starts from took seconds on such a problem, then the search refused it)."""
    pairs = problem.overlap_count()
    if pairs > MAX_PAIRS:
        from .cpsat import MAX_PAIRS as CPSAT_PAIRS  # (no ortools import: cpsat loads it when it solves)

        also = " or cpsat" if pairs <= CPSAT_PAIRS else ""   # (past its own limit cpsat refuses too)
        raise SolverError(f"search: {len(problem)} buffers with {pairs} overlapping pairs, over the search's limit "
                          f"of {MAX_PAIRS} (it would need about {gib(pairs * PAIR_BYTES)}); use greedy, size{also}")


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions(), *, proven: int = 0,
          heuristics: tuple[Solution, Solution] | None = None, deadline: float | None = None,
          nodes: int | None = None) -> Solution:
    """Minimise the arena (or, with ``options.objective == Objective.FIT``, fit ``capacity``). ``heuristics``:
    greedy's and size's solutions of this problem, where the caller has them (``best_start``). ``deadline``: a
    ``time.perf_counter`` instant the wall-clock safety stop never passes, counted before the setup
    (``WorkBudget.start_clock``; ``auto``'s one stop for its exact solvers). ``nodes``: a budget of that many search
    nodes instead of the time limit's estimated work (``WorkBudget.by_nodes``: ``auto.polish``'s fixed budget)."""
    check_size(problem)
    t0 = time.perf_counter()
    limit = options.time_limit if options.time_limit is not None else DEFAULT_TIME_LIMIT
    params = options.search
    work = search_seconds(problem, limit)   # (the setup counted in the limit: ``search_seconds``)
    budget = (WorkBudget(nodes, options.wall_seconds(limit), by_nodes=True) if nodes is not None
              else WorkBudget(int(max(work, 0.0) * params.nodes_per_second), options.wall_seconds(limit)))
    progress = options.progress
    n = len(problem)
    lb = known_bound(problem, proven)
    cap = problem.capacity
    feasible_only = options.objective == Objective.FIT and cap is not None

    start = best_start(problem, options, heuristics)
    best_off, best = np.asarray(start.offsets, dtype=np.int64), int(start.arena)
    if cap is not None and best > cap:
        best_off, best = None, cap + 1  # heuristics do not fit: the search must find one
    status = Status.FEASIBLE
    interrupted = started_interrupted(start, options, heuristics)   # a Ctrl-C in the default's run that made the start: no search
    # no tree when the start already meets the bound: it would search nothing, and its tables took seconds to
    # build on large problems (2 s at 10,000 buffers)
    # (nor when asked only to fit a capacity the start fits: the loop below would search nothing)
    tree = bool(n) and not interrupted and not (best_off is not None and (best <= lb or feasible_only))
    # no tree either when its setup alone takes the whole limit (``search_seconds``): said, not spent
    no_time = tree and work <= 0
    s = PackingSearch(problem, params, budget) if tree and not no_time else None
    budget.start_clock(deadline)
    searches = [s] + [copy.copy(s) for _ in params.preorders[1:]] if s is not None else []
    # one state for the whole solve, updated as soon as anything improves (Ctrl-C keeps it)
    m = _Minimiser(searches, problem, params, random.Random(options.seed), lb, best, best_off)
    # (not under ``auto.polish``'s budget of nodes, nor where a packing within the capacity is all that is asked)
    m.chasing = params.chase and nodes is None and not feasible_only
    # nodes per preorder per try, both growing: the bound's doubles every round (a reachable bound
    # is the common case and is found by one long enough try), the ladder's when a round gained nothing
    proof_budget, ladder_budget = max(2000, 4 * n), max(500, 2 * n)
    restart_nodes = max(params.restart_nodes, 4 * n)
    if nodes is None:   # a budget of work: the tries' limits are work too (``TRY_NS_PER_NODE``), capped at its shares
        units = budget.left // search_tree.TRY_NS_PER_NODE   # (the whole budget, in a try's nodes)
        proof_budget *= PROOF_SCALE
        # (never below one descent: a packing takes a node a buffer, and a try that cannot finish one is wasted; 82
        # buffers at ``time_limit=0.011`` (one schedule's share of a memory budget's solve: ``wide_graph(40)``) found
        # no packing at a quarter of their budget, where the whole of it found the bound in 83 nodes)
        floor = descent_units(s) if s is not None else 1
        proof_budget, ladder_budget, restart_nodes = (min(limit_, max(units // share, floor)) for limit_, share in
                                                      zip((proof_budget, ladder_budget, restart_nodes), TRY_SHARES))
    # a budget of few descents opens with shots of one preorder at a time, each of one descent (``FEW_DESCENTS``)
    opening = (OPENING_DESCENTS * descent_units(s) if nodes is None and s is not None and not feasible_only
               and params.opening
               and budget.left // search_tree.TRY_NS_PER_NODE < FEW_DESCENTS * descent_units(s) else None)
    below_first = (opening is not None and s.n >= search_tree.FRONT_MIN_BUFFERS
                   and budget.left // search_tree.TRY_NS_PER_NODE
                   < BELOW_FIRST_DESCENTS * descent_units(s, DESCENT_UNITS_PER_FRONT_NODE))
    # under a budget of work, the rounds' tries at the bound go on where the last round's stopped (``BoundTrees``)
    bound_trees = BoundTrees(searches) if nodes is None and searches and params.bound_first else None
    try:
        if opening is not None and m.best_off is not None and not budget.exhausted():
            m.opened = m.opening(opening, below_first=below_first,
                                 repair=params.repair and s.n >= search_tree.FRONT_MIN_BUFFERS)
        while searches and not m.done() and not (feasible_only and m.best_off is not None):
            if budget.exhausted():
                break
            if m.best_off is None:
                # nothing fits yet: first any packing within the capacity, with all the time left
                m.try_capacity(cap, None, FOCUS_AFTER_DESCENTS * (s.n + 1) if nodes is None and params.focus else None)
                if m.best_off is None:
                    break
            else:
                # 1. the bound, with a budget that doubles every round: when the bound can be
                #    reached (the common case) one long enough try there finds it and proves it
                spent, taken = m.nodes(), budget.taken
                if params.bound_first and not (m.resume_bound(bound_trees, proof_budget) if bound_trees is not None
                                               else m.try_capacity(m.proven, proof_budget)):
                    proof_budget *= 2
                on_bound = max(m.nodes() - spent, proof_budget if not params.bound_first else 0)
                # 2. passes of the improvement phase until it has had twice the bound's nodes (under a budget of work
                #    where the bound's trees go on: ``IMPROVE_SHARE`` times the bound's work, and no more)
                spent = m.nodes()
                until = (budget.taken + IMPROVE_SHARE * (budget.taken - taken) if bound_trees is not None else None)
                while not m.done():
                    if not m.improve(ladder_budget, restart_nodes, until):
                        ladder_budget = ladder_budget * 3 // 2
                    if (m.nodes() - spent >= 2 * on_bound if until is None else budget.taken >= until):
                        break
            if progress is not None:
                report_progress(progress, f"search: best arena {m.best if m.best_off is not None else '-'}, "
                                f"bound {m.proven}, {time.perf_counter() - t0:.1f}s, {m.nodes()} nodes",
                                caller="the search solver")
    except KeyboardInterrupt:
        interrupted = True
    proven, best, best_off = m.bound(), m.best, m.best_off
    if best_off is None and interrupted:   # Ctrl-C before anything fitted: the caller's stop, not "no packing found"
        raise KeyboardInterrupt            # (a BudgetError was caught as one by auto, and the Ctrl-C was lost)
    if no_time:
        _warn_no_search(options, limit, problem)
    if best_off is None:
        # the start (above the capacity) comes with the refusal, as every other solver's best does (``OverCapacity``):
        # a plain BudgetError left ``bench planners``' search rows without an arena ("-", status "BudgetError")
        # where cpsat's said how far above the capacity the best packing ended, and its message named no arena
        over = _over(start, proven)
        raise OverCapacity(f"search: no packing within capacity {cap} found"
                           + (" (none exists)" + alone_over(problem, cap or 0) if proven > (cap or 0) else f" within a work budget of {limit:g}s")
                           + f"; best arena {over.arena}, lower bound {over.lower_bound}", over)
    if best <= proven:
        status = Status.OPTIMAL
    proven = min(proven, best)
    if bound_trees is not None:
        bound_trees.close()
    every = searches + (bound_trees.searches if bound_trees is not None else [])
    info = {"bound": proven, "gap": gap_of(best, proven),
            "nodes": sum(x.nodes for x in every), "backtracks": sum(x.backtracks for x in every)}
    if nodes is None:   # (under a budget of work: the units it took, never more than it had; a node budget's info as it was)
        info["work"] = budget.taken // search_tree.WORK_NS_PER_UNIT
    if m.tries:   # (said where the search tried: a plan whose start met the bound reads as it did)
        info["tries"] = m.tries
    if m.opened is not None:   # (only where the budget was few descents: ``FEW_DESCENTS``)
        info["opening"] = m.opened
    if interrupted:
        info["interrupted"] = True
    if no_time:
        info["skipped"] = "setup"
    if budget.wall_fired or started_stopped(start, options, heuristics):
        info["stopped"] = "wall_clock"
    return Solution(best_off, best, "search", status, proven, info)


def _over(start: Solution, proven: int) -> Solution:
    """The search's best packing where none fits the capacity: its start (the default solve's plan or the caller's
    warm start, checked), with the bound the search proved."""
    arena = int(start.arena)
    bound = min(int(proven), arena)
    return Solution(np.asarray(start.offsets, dtype=np.int64), arena, "search",
                    Status.OPTIMAL if arena <= bound else Status.FEASIBLE, bound,
                    {"bound": bound, "gap": gap_of(arena, bound)})


class _Minimiser:
    """The proven bound and the best packing so far, and the tries that tighten them."""

    def __init__(self, searches: list[PackingSearch], problem: BufferProblem, params: SearchParams,
                 rng: random.Random, proven: int, best: int, best_off: np.ndarray | None):
        self.searches, self.problem, self.params, self.rng = searches, problem, params, rng
        self.proven, self.best, self.best_off = proven, best, best_off
        # a bound the exhausted tries proved beyond ``proven`` (``PackingSearch.above``): it ends the solve where it
        # reaches the best arena and is the bound reported, but ``proven`` alone steers the tries (the capacities
        # tried, the rungs drawn), so that the packings found, and the plan returned, are those found without it
        self.proof = proven
        self.timed_out = False
        self.tries = 0   # tries at one capacity (all preorders of one count once) and restarts: ``info["tries"]``
        self.opened: str | None = None   # what the opening's shots did (``opening``), None where none was made
        # whether ``best_off`` is the search's own packing: each buffer then rests on 0 or on the aligned top of one it
        # conflicts with (placed at its minimum offset), so ``search_repair.pushed_down`` would leave it as it is
        self.settled = False
        # ``(packing, pushed down)``: the start pushed down for the repairs, kept while it is the best packing. Why: each
        # repair that found nothing pushed the same start down again (``REPAIR_PER_*``: ~300 units a time on
        # ``random_dag(3000)`` on 8 streams, 13% of ``time_limit=1``), then freed twice the buffers
        self.down: tuple[np.ndarray, np.ndarray] | None = None
        self.bound_nodes = 0   # nodes of the bound's own trees (``resume_bound``)
        #: a packing try's preorder chases below it (``chase``): set by ``solve`` (under a budget of work, minimising)
        self.chasing = False

    def bound(self) -> int:
        return max(self.proven, self.proof)

    def done(self) -> bool:
        return self.timed_out or self.bound() >= self.best

    def nodes(self) -> int:
        return sum(s.nodes for s in self.searches) + self.bound_nodes

    def resume_bound(self, trees: BoundTrees, units: int) -> bool:
        """The bound's trees (``BoundTrees``) at the bound, each given ``units`` more work; True if that found a
        packing or a proof (as ``try_capacity``)."""
        if self.done() or not self.proven < self.best:
            return False
        self.tries += 1
        before = trees.nodes()
        try:
            res = trees.resume(self.proven, units)
        finally:
            self.bound_nodes += trees.nodes() - before
        return self._outcome(res)

    def _outcome(self, res: object, cap: int | None = None) -> bool:
        """What one try at ``cap`` (None: the capacity a resumed tree reports) gave, taken in: a stop, a proof that
        nothing fits in it (nor below what the failed tests needed), or a packing; True for the last two."""
        if res is _Stop.OUT_OF_WORK:
            self.timed_out = True
        elif isinstance(res, _Exhausted):
            self.proven = max(self.proven, (res.cap if cap is None else cap) + 1)
            self.proof = max(self.proof, res.above)
            return True
        elif res is not _Stop.ABORT:
            self._found(res)
            return True
        return False

    def _found(self, res: list[int]) -> None:
        off = np.asarray(res, dtype=np.int64)
        self.best_off, self.best = off, arena_of(self.problem, off)
        self.settled = True

    def try_capacity(self, cap: int, node_limit: int | None, focus: int | None = None) -> bool:
        """The three static preorders at ``cap``; True if that found a packing or a proof. ``focus``: as
        ``_round_robin``'s."""
        if self.done() or not self.proven <= cap < self.best:
            return False
        self.tries += 1
        work = self.searches[0].budget
        taken = work.taken
        out = self._outcome(_round_robin(self.searches, self.params.preorders, cap, node_limit, focus), cap)
        packer = [k for k, s in enumerate(self.searches) if s.packed]
        if packer and self.chasing:
            self.chase(packer[0], max(-(-(work.taken - taken) // search_tree.TRY_NS_PER_NODE), CHASE_MIN_UNITS))
        return out

    def chase(self, k: int, units: int) -> None:
        """Shots of preorder ``k`` (whose tree just packed) alone one below the best arena, each of at most ``units``
        (the work the packing try took), for as long as they pack (``SearchParams.chase``).

        Why: a tree that packed at ``c`` mostly packs a byte less in about as much work (the same tree, each test a
        byte tighter), but the rounds never gave it that: minimalloc D's WAT tree packs 1,048,575 in 6,342 units, J's
        TWA tree 1,044,479 in 858, where ``time_limit=5`` tried those capacities only as ladder rungs of 500 and 818
        units a preorder and spent the rest (36,000 of 60,000 units) on the bound's trees at a bound 6% below, which
        neither pack nor exhaust. Sound as every try is: a packing is checked as any, and an exhausted shot proves
        its capacity as ``shot`` says (one preorder's tree is complete). Deterministic: limits are work counts."""
        while not self.done():
            before = self.best
            out = self.shot(k, self.best - 1, units)
            if out != "packed" or self.best >= before:
                break

    def improve(self, ladder_budget: int, restart_nodes: int, until: int | None = None) -> bool:
        """One pass at capacities between the bound and the best arena; True if it gained.

        First a ladder of capacities (one below the best, the rest seeded random draws), each with
        a node budget: exact searches have heavy tails, so many short tries at several capacities
        beat one long try at one, and which capacity is quick to fill is erratic. Then as many nodes
        again on randomised restarts one below the best: the static preorders tie-break alike every
        time and stall in the same corner of the tree; perturbing their scores samples others.

        ``until``: no try starts once the solve's budget has taken that much (``WorkBudget.taken``).
        """
        before = (self.proven, self.best)
        spent = self.nodes()
        work = self.searches[0].budget

        def over() -> bool:
            return until is not None and work.taken >= until
        rungs = sorted({self.best - 1} | {self.rng.randint(self.proven, max(self.proven, self.best - 1))
                                          for _ in range(self.params.ladder_rungs)})
        for c in rungs:
            if over():
                break
            if self.try_capacity(c, ladder_budget) and self.best <= c:
                break  # a packing: the rungs above it are moot
        budget = self.nodes() - spent
        spent = self.nodes()
        while self.params.restarts and not self.done() and self.nodes() - spent < budget and not over():
            if not self.restart(restart_nodes):
                break
        return (self.proven, self.best) != before

    def opening(self, node_limit: int, *, below_first: bool = False, repair: bool = False) -> str:
        """Shots of one preorder at a time (``shot``), each of at most ``node_limit``: with each preorder in turn, one
        at the bound (``SearchParams.bound_first``; a reachable bound mostly packs without a backtrack), then one
        below the best for as long as they pack; a preorder whose shot below the best stops short hands over to the
        next, as does one whose shot packed a small step near the bound while another preorder's shot at the bound is
        to come (``SMALL_STEP``, ``NEAR_BOUND``). Once every preorder has stopped short with nothing gained since, the
        limit doubles (the same shots again would search the same trees). Runs until the solve is done or out of work: the rounds' interleaved
        tries are what failed here.

        Why shots of several preorders: with one preorder's two shots (round 55), what was left went to the three
        preorders' interleaved try at the bound, where none finished its descent: ``random_dag(1000)`` serial at
        ``time_limit=1`` (2.9 descents) got the start, 2,085,888, where the second preorder alone packs its bound
        2,057,216 in one descent. Why on below the best: a shot that packs there mostly takes a fraction of its limit
        and lands far below (minimalloc J at ``time_limit=0.5``: 1,303,552 -> 1,137,664 in 0.4 of a descent), and
        the rest of the budget went to that same interleaved try, which found nothing on F-J.

        Returns what the shots did, for ``info["opening"]``: the outcomes among ``bound-unreachable`` (a shot
        exhausted its tree: nothing fits in the capacity it tried, the bound is raised), ``gained`` (a shot packed
        below the start, above the bound) and ``bound`` (a shot packed the bound: the plan is optimal), comma-joined
        in the order they first happened, or ``none``."""
        seen: list[str] = []
        tried: set[tuple] = set()   # (preorder, bound, limit, nodes) shots made: each searches one tree
        if repair:   # (large problems: a descent is most of the budget)
            s = self.searches[0]
            # proofs first: a shot at the bound mostly proves it unreachable in a node or packs it in one descent
            self._shots_at_bound(0, node_limit, seen, tried, PROBE_NODES if below_first else None)
            free = min(len(s.active), REPAIR_MIN_FREE)
            self.repairs(free, repair_units(s, free), seen)
        k, stalled = 0, 0   # the preorder shooting; preorders in a row whose shots gained nothing
        while not self.done():
            if stalled == len(self.searches):   # every preorder stopped short: the same shots would too
                node_limit, stalled = node_limit * 2, 0
            # (a small step below the best hands over while another preorder has its shot at the bound to come:
            # ``SMALL_STEP``; not where each preorder shoots below the best first)
            waiting = (self.params.handover and self.params.bound_first and not below_first
                       and len({j for j, *_ in tried} | {k}) < len(self.searches))
            if below_first:   # (``BELOW_FIRST_DESCENTS``: a budget too short for both shots)
                gained = self._shots_below(k, node_limit, seen)
                self._shots_at_bound(k, node_limit, seen, tried)
            else:
                self._shots_at_bound(k, node_limit, seen, tried)
                gained = self._shots_below(k, node_limit, seen, waiting)
            stalled = 0 if gained else stalled + 1
            k = (k + 1) % len(self.searches)
        return ",".join(dict.fromkeys(seen)) or "none"

    def _shots_at_bound(self, k: int, node_limit: int, seen: list[str], tried: set[tuple], nodes: int | None = None) -> None:
        """The opening's shots of preorder ``k`` at the bound, and again at the raised one while a proof raises it far
        (``PROOF_STEP``), each (preorder, bound, limit, nodes) once; ``nodes``: at most that many nodes each."""
        while self.params.bound_first and not self.done() and (k, self.bound(), node_limit, nodes) not in tried:
            tried.add((k, self.bound(), node_limit, nodes))
            cap = self.bound()
            out = self.shot(k, cap, node_limit, nodes)
            if out == "packed":
                seen.append("bound")
                break
            if out != "proved":
                break
            seen.append("bound-unreachable")
            if (self.bound() - cap) * PROOF_STEP < self.best - cap:
                break

    def _shots_below(self, k: int, node_limit: int, seen: list[str], hand_over: bool = False) -> bool:
        """The opening's shots of preorder ``k`` one below the best arena for as long as they pack; True if one did.
        ``hand_over``: stop after a shot that packed a small step (under 1 / ``SMALL_STEP`` of the gap to the bound) from
        a best arena near the bound (``NEAR_BOUND``), for the next preorder's shot at the bound."""
        gained = False
        while not self.done():
            before = self.best
            out = self.shot(k, self.best - 1, node_limit)
            if out != "packed":
                if out == "proved":   # (nothing fits below the best: it is optimal)
                    seen.append("bound-unreachable")
                break
            gained = True
            seen.append("bound" if self.best <= self.bound() else "gained")
            gap = before - self.bound()
            if hand_over and (before - self.best) * SMALL_STEP < gap and gap * NEAR_BOUND < before:
                break
        return gained

    def shot(self, k: int, cap: int, node_limit: int, nodes: int | None = None) -> str | None:
        """One try at ``cap`` with the ``k``-th static preorder alone (``FEW_DESCENTS``): ``"packed"``, ``"proved"``
        (its tree exhausted: nothing fits in ``cap``, nor below what its failed tests needed: ``PackingSearch.above``)
        or None (it stopped short; ``timed_out`` once the solve's work is spent). Why one preorder: the three of
        ``try_capacity`` interleaved share its work, so each got a third of it, and none finished its descent where
        the budget was a few descents (3,000 random intervals at ``time_limit=1``: 5,205 nodes, about 1,700 a
        preorder, for a descent of 3,000)."""
        if self.done() or not self.proven <= cap < self.best:
            return None
        self.tries += 1
        s = self.searches[k]
        try:
            res = s.feasible(cap, self.params.preorders[k], node_limit, nodes=nodes)
        except Abort:
            return None
        except OutOfWork:
            self.timed_out = True
            return None
        if res is None:   # exhausted: nothing fits in ``cap`` (a complete tree, whatever the order)
            self.proven = max(self.proven, cap + 1)
            self.proof = max(self.proof, s.above if s.above < NO_CAPACITY else cap + 1)
            return "proved"
        self._found(res)
        return "packed"

    def repairs(self, free: int, node_limit: int, seen: list[str]) -> None:
        """Repairs of the best packing (``repair``) one below it for as long as they pack; where one does not, with
        twice the free buffers and twice the limit, until every active buffer would be free (a shot, not a repair)."""
        s = self.searches[0]
        active = len(s.active)
        if search_tree.wide_keys(self.best + s.align + 1, s.n + 1):   # (offsets near 2**63 / buffers: int64 tops)
            return
        while not self.done() and free < active:
            out = self.repair(free, node_limit)
            if out == "packed":
                seen.append("bound" if self.best <= self.bound() else "repaired")
                continue
            if self.timed_out:
                break
            free, node_limit = free * 2, node_limit * 2

    def repair(self, free: int, node_limit: int) -> str | None:
        """One try one below the best arena with the first preorder, its ``free`` highest buffers searched and the
        rest kept where the best packing, pushed down, has them (``search_repair``): ``"packed"``, or None (it stopped
        short, or searched its part of the tree without a packing: no proof; ``timed_out`` once the solve's work is
        spent)."""
        if self.done() or self.best_off is None:
            return None
        self.tries += 1
        s = self.searches[0]
        act = np.asarray(s.active, dtype=np.int64)
        bounds, adj = s.csr
        try:
            down = self.best_off
            if self.down is not None and self.down[0] is self.best_off:
                down = self.down[1]
            elif not self.settled:   # (a packing the search made rests as pushed down: the start may not)
                s.budget.spend(REPAIR_PER_BUFFER * s.n + REPAIR_PER_PAIR * len(adj))   # (``pushed_down``'s work)
                down = search_repair.pushed_down(bounds, adj, s.sizes, s.align, self.best_off, act)
                self.down = (self.best_off, down)
            taken, scanned = search_repair.free_part(down, s.sizes, s.adjn, act, free, self.best - 1)
            s.budget.spend(REPAIR_PER_FREE * len(taken) + REPAIR_PER_SCANNED * scanned)
            fixed = search_repair.fixed_part(down, act, taken)
            res = s.feasible(self.best - 1, self.params.preorders[0], node_limit, fixed)
        except Abort:
            return None
        except OutOfWork:
            self.timed_out = True
            return None
        if res is None:   # (its part of the tree only: nothing proven)
            return None
        self._found(res)
        return "packed"

    def restart(self, node_limit: int) -> bool:
        """One randomised restart one below the best arena; False once the work budget is spent."""
        s = self.searches[0]
        self.tries += 1
        s.noise = [1.0 + self.params.restart_jitter * self.rng.random() for _ in range(s.n)]
        try:
            res = s.feasible(self.best - 1, self.rng.choice(self.params.preorders), node_limit)
        except Abort:
            return True
        except OutOfWork:
            self.timed_out = True
            return False
        finally:
            s.noise = None
        if res is None:  # exhausted: the search is complete whatever the order, so a proof
            self.proven = self.best
        else:
            self._found(res)
        return True


def _exhausted(search: PackingSearch, cap: int) -> _Exhausted:
    """The proof of ``search``'s whole tree at ``cap``: nothing fits below its failed tests' least need (``above``),
    nor in ``cap`` (no failed test at all would be a complete tree at any capacity: only ``cap + 1`` is said)."""
    return _Exhausted(max(cap + 1, search.above) if search.above < NO_CAPACITY else cap + 1, cap)


class _Exhausted:
    """A try that searched its whole tree: nothing fits below ``above`` bytes (``PackingSearch.above``); ``cap``:
    the capacity it searched, where known."""

    def __init__(self, above: int, cap: int = 0):
        self.above, self.cap = above, cap


class BoundTrees:
    """The rounds' tries at the bound as trees that live across rounds: one per static preorder, each on its own copy
    of the search's tables, suspended where its round's share of work ran out and resumed by the next round with more.

    Why: each round tried the bound again from the root with twice the work, so its first half searched the very
    nodes the round before had; and minimalloc's inputs pack their bound only deep in one preorder's tree (A: TWA's
    4,920 nodes, 11,100 units; its other two preorders find nothing in 40,000), which a restart at each round's share
    (6,000 units at ``time_limit=5``) never reached. A tree goes on while the bound it searches stays the bound; a
    raised bound starts new ones. Interleaved 256 nodes at a time (``_round_robin``'s steps), each tree until it has
    taken its share: deterministic (work counts, never the clock)."""

    def __init__(self, searches: list[PackingSearch]):
        """Trees for each of ``searches``' preorders (made at the first ``resume``)."""
        self.base = searches
        self.searches = [copy.copy(s) for s in searches]   # (each its own mutable state: ``feasible_steps``)
        self.cap: int | None = None
        self.gens: list = []
        self.taken: list[int] = []   # work each tree took so far (budget units of ``WORK_NS_PER_UNIT``)
        self.allowed = 0             # work each tree may take in all

    def nodes(self) -> int:
        return sum(s.nodes for s in self.searches)

    def close(self) -> None:
        for g in self.gens:
            if g is not None:
                g.close()
        self.gens = []

    def reset(self) -> None:
        """Closed, searching no capacity: the next ``resume`` starts new trees (after a packing, a proof or the end
        of the budget)."""
        self.close()
        self.cap = None

    def resume(self, cap: int, units: int):
        """Offsets within ``cap``, ``_Exhausted`` (with ``cap``), or a ``_Stop``: the trees at ``cap`` (new ones where
        ``cap`` is not the one they search) each run until it has taken ``units`` more work."""
        if cap != self.cap:
            self.close()
            self.cap, self.allowed = cap, 0
            params = self.base[0].params
            # (no per-try limit that would end a tree: ``resume`` shares the work out itself)
            self.gens = [s.feasible_steps(cap, key, 1 << 40) for s, key in zip(self.searches, params.preorders)]
            self.taken = [0] * len(self.gens)
        self.allowed += units
        budget = self.searches[0].budget
        try:
            while True:
                ran = False
                for k, g in enumerate(self.gens):
                    if g is None or self.taken[k] >= self.allowed:
                        continue
                    ran = True
                    before = budget.taken
                    share = min(self.allowed - self.taken[k], BOUND_SLICE_UNITS)
                    s = self.searches[k]
                    s.pause_at = before + share * search_tree.WORK_NS_PER_UNIT
                    # (no side proofs while the tree's shares so far afford fewer than two descents: ``probe_hold``)
                    s.probe_hold = self.allowed < search_tree.probe_min_units(s.n)
                    try:
                        next(g)
                    except StopIteration as stop:
                        self.gens[k] = None
                        self.reset()
                        return _exhausted(self.searches[k], cap) if stop.value is None else stop.value
                    except Abort:
                        self.gens[k] = None
                    finally:
                        self.taken[k] += -(-(budget.taken - before) // search_tree.WORK_NS_PER_UNIT)
                if not ran:
                    return _Stop.ABORT
        except OutOfWork:
            self.reset()
            return _Stop.OUT_OF_WORK


class _Stop(Enum):
    ABORT = "every preorder used up its node limit"
    OUT_OF_WORK = "the solve's work budget ran out"


def _round_robin(searches: list[PackingSearch], preorders: tuple[str, ...], cap: int, node_limit: int | None,
                 focus: int | None = None):
    """Offsets within ``cap``, ``_Exhausted`` (proven infeasible), or a ``_Stop``.

    One search per static preorder, interleaved 256 nodes at a time (deterministic: the switch
    points are node counts, not clock ticks); the first to finish decides — a packing (that search's ``packed`` set),
    or a proof that none exists.

    ``focus`` (nodes): once every live tree has searched that many, each round gives the tree that has placed the most
    area at once (``PackingSearch.packed_area``; ties: the first preorder) ``FOCUS_TURNS`` turns, the others one each.
    Why: a tree's work to its packing is heavy-tailed, one wrong early choice refuted at length, and an equal share
    starves the one tree that gets there (minimalloc B at its capacity: TAW packs in 28,440 units, a third of
    ``time_limit=5`` is 20,000; its placed area led from the start, 0.42 of the problem's against 0.26).
    """
    limit = node_limit if node_limit is not None else 1 << 62
    for s in searches:
        s.track_area = focus is not None
        s.packed = False   # (the tree that packs says so: ``_Minimiser.chase`` shoots with its preorder)
    gens = [s.feasible_steps(cap, key, limit) for s, key in zip(searches, preorders)]
    first = [s.nodes for s in searches]
    live = list(range(len(gens)))
    try:
        while live:
            lead = None
            if focus is not None and len(live) > 1 and all(searches[k].nodes - first[k] >= focus for k in live):
                lead = max(live, key=lambda k: (searches[k].packed_area, -k))
            for k in list(live):
                for _ in range(FOCUS_TURNS if k == lead else 1):
                    try:
                        next(gens[k])
                    except StopIteration as stop:
                        if stop.value is None:
                            return _exhausted(searches[k], cap)
                        searches[k].packed = True
                        return stop.value
                    except Abort:
                        live.remove(k)
                        break
        return _Stop.ABORT
    except OutOfWork:
        return _Stop.OUT_OF_WORK
    finally:
        for g in gens:
            g.close()
        for s in searches:
            s.track_area = False
