"""The default: every fast heuristic first; with a time limit, the exact solvers after them.

Without ``options.time_limit`` this is the heuristics (greedy, size; the smallest arena wins, ties to the first
listed; on 65-20,000 buffers they leave 1% or more above the bound, ``skyline``'s walks too), then ``slack_on_top`` may lift a buffer or two to the top, then, on a problem of at most
``POLISH_BUFFERS`` buffers still above its bound, ``polish`` runs the ``search`` solver with a small node budget
— fast and deterministic. With a time limit, and only while the best plan
is above the proven bound, the exact solvers follow, each warm-started with the best plan so far:
on interval problems the minimalloc-style ``search`` first (90% of the time; it proves interval
packings that CP-SAT cannot) and CP-SAT on what is left; on multi-stream or in-place problems
CP-SAT first (60%; it states HB-filtered conflicts as they are and proves bounds), then the search.
So the result is never worse than the best heuristic, and the proven bound is the largest any of
them proved. The wall-clock safety stop (``wall_limit``, default four times ``time_limit`` plus ten seconds) is
one for the exact phase, shared by both solvers (``wall_left``), not one each (scaled to the work asked: several
CP-SAT workers run two phases of cpsat's share, ``cpsat.work_phases``). Asked only to fit a capacity
(``Objective.FIT``), it returns as soon as a packing fits.
Whatever ran, in-place pairs the chosen plan left apart are joined last where their bytes are free
(``rejoin.rejoin_inplace``: the arena stays, a runtime saves a copy per pair).
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction

import numpy as np

from ..errors import BudgetError, SolverError, from_callback
from ..problem import BufferProblem, Solution, Status, align_up, arena_of, gap_of
from .check import packs
from .exact_pairs import ExactOrApart, separate, shifted_pairs
from .options import MAX_SECONDS, Objective, SolveOptions, limit_share, share_seconds
from .placement import ArenaOver, first_fit
from .rejoin import rejoin_inplace

HEURISTICS = ("greedy", "size")
#: With at least this many in-place pairs ``size`` is skipped once an earlier heuristic's arena meets the proven
#: bound: it could only tie, and a tie keeps the earlier plan. (Added when size scanned every placed buffer
#: beside each pair, 7 s for one node overwriting 8,000 inputs; that placement is now near-linear, and the skip
#: stays so that plans, whose solver block lists the heuristics tried, read as before.)
SIZE_SKIP_PAIRS = 4096
#: ``slack_on_top`` re-packs every buffer against its conflicting ones, about a second ``size`` run, to save under
#: one alignment: above this many conflicting pairs it is skipped. (Unbounded, it doubled the default solve of an
#: interval problem of 100,000 buffers and 3 million pairs, 3 s to 6 s, for no byte; at this many it costs about
#: 15 ms. The misses it mends were on graphs of a few dozen nodes.)
SLACK_PAIRS = 1 << 14
#: Without a time limit ``slack_on_top`` tries the ``LIFT_CANDIDATES`` buffers of most slack on top, alone and in
#: ordered pairs (4 + 12 re-packs), as many as keep its work within one re-pack at ``SLACK_PAIRS`` pairs (all of
#: them up to 1,024 pairs, one alone above 8,192). Why pairs: session 32 found 28 defaults above the optimum that
#: one buffer on top could not mend; the buffer of most slack alone was the wrong one on 10 (another one is),
#: 11 more needed two on top (seeded sample, docs/benchmarks.md). With a time limit too: the exact solvers start
#: from the default's plan, so a short limit never ends above it (from one lift it did, up to 13%).
LIFT_CANDIDATES = 4
#: ``polish``: problems of at most this many buffers that the heuristics leave above their bound get the exact
#: ``search`` with ``POLISH_WORK // buffers`` nodes (1,024 at 16 buffers, 256 at 64: a node costs more on more
#: buffers). Why: on small graphs the heuristics' orders miss packings that a few hundred nodes of search find and
#: prove (session 33: all 53 defaults the lifts left above the exhaustive optimum in three seeded samples, and on
#: graphs of up to 30 nodes 78 of 149 defaults above a proven optimum before, 5 after; docs/benchmarks.md). On
#: random interval problems it cannot prove it added 5-55 ms a solve here (several times that on a loaded
#: machine); above ``POLISH_BUFFERS`` the default stays heuristic (a time limit buys the full search).
POLISH_BUFFERS = 64
POLISH_WORK = 1 << 14
#: Above ``POLISH_BUFFERS``, up to ``POLISH_WIDE_BUFFERS`` buffers, ``polish`` runs only where the heuristics end at
#: least ``POLISH_WIDE_GAP`` (1/20: 5%) above the bound, with the same ``POLISH_WORK // buffers`` nodes (81 at 200).
#: Why: session 59's corpus (docs/experiments/quality_s59.txt) found NASNet-like cells of 76-114 buffers (each cell's
#: output read by the next two) planned 11-14% above their bound, which that search reached in 40-150 nodes, and a
#: layered graph of 80 nodes on 2 streams 9.4% above it; small gaps (1-3% on random graphs of that size) rarely
#: repay the search's 0.1-0.3 s a solve on a loaded machine, so they stay the heuristics'.
POLISH_WIDE_BUFFERS = 200
POLISH_WIDE_GAP = (1, 20)
#: ``skyline`` (lowest-floor walks, ``skyline.KEYS``) runs after greedy and size on problems of at least
#: ``SKYLINE_MIN_BUFFERS`` (``POLISH_BUFFERS`` + 1: a constant of its own) and at most ``SKYLINE_BUFFERS`` buffers that they leave at least ``SKYLINE_GAP`` (1/100: 1%)
#: above the bound, where its walks fit in ``SKYLINE_NARROW_WORK`` overlapping pairs visited; its plan is kept where its
#: arena is smaller. Why: on the public TelaMalloc/MiniMalloc inputs (154-454 buffers) greedy and size ended 23-41%
#: above the bound and the default stayed there (above 200 buffers no polish runs); the walks end 2.5-17% above it
#: (docs/experiments/quality_s60.txt), and they close NASNet-like cells on 2 streams (10% -> 0) and chains with long
#: skips (7.7% -> 3.8%). Why the limits: a walk costs about a heap step per conflicting pair (some 75 ms for 60,000
#: pairs on a loaded 2-core machine, and one that cannot beat greedy and size stops only once it passes them), so
#: the default of large graphs stays what it was, and gaps under 1% (random DAGs of 1,000 nodes: 0.7%, which no walk
#: closed) do not pay for it; small problems have ``polish``.
#: (Round 61: up to ``SKYLINE_BUFFERS`` = 20,000 buffers; where the narrow tier's walks do not fit in ``SKYLINE_NARROW_WORK``,
#: the two ``SKYLINE_WIDE_KEYS`` within ``SKYLINE_WIDE_WORK``, no promotion walk after them. Why: deep chains with long skips
#: of 5,000 and 10,000 nodes (165,000 and 370,000 pairs) and a chain of 10,000 tiny buffers stayed 5.5%, 7.6% and
#: 4.8% above the bound; those two walks end 3.7%, 5.1% and 2.9% above it (docs/experiments/quality_s61.txt). The
#: graphs of 10,000-100,000 buffers of ``benchmarks.scale`` end within 1% of their bound, or above this work, and
#: walk nothing.)
SKYLINE_MIN_BUFFERS = 65
SKYLINE_BUFFERS = 20000
SKYLINE_GAP = (1, 100)
#: the narrow tier's total work, in pairs visited (a walk visits each overlapping pair, ``_walk_work``): its
#: ``SKYLINE_NARROW_WALKS`` walks (every key of ``skyline.KEYS``, then ``skyline.EXTRA_KEYS``), each counted whole, and
#: what they leave shared (``_narrow_shares``) by up to ``SKYLINE_ROUNDS`` promotion walks (``skyline.promoted``,
#: where the keys' best beat greedy and size: buffers that ended on top go first) and the repair of the best walk and
#: of the runner-up, each up to ``SKYLINE_REPAIR`` walks' worth: 16 promotion walks up to 11,650 pairs a walk, none
#: from 34,953; the repair whole up to 18,395 pairs, none at 43,690. The tier runs where its walks fit: up to 43,690
#: pairs a walk, as in rounds 60-62 (where the six keys fitted in 1 << 18). Why one total: rounds 60-62 counted the
#: keys and promotions against 1 << 18 but ran the extra walks and the repair beyond it, up to 14 walks' work
#: (611,660 pairs at 43,690 a walk) against a cap that counted 6 (docs/experiments/skyline_narrow_s63.txt).
#: (Round 60: at 1 << 19 for the keys and promotions the eleven public inputs ended the same, J in 1.0 s instead of
#: 0.2 s on a loaded machine.)
SKYLINE_NARROW_WORK = 8 * 43690
#: the walks of the narrow tier, counted whole against ``SKYLINE_NARROW_WORK``: the six keys and the two extra keys.
SKYLINE_NARROW_WALKS = 6 + 2   # (len(skyline.KEYS) + len(skyline.EXTRA_KEYS): a test holds them equal)
SKYLINE_ROUNDS = 16
#: where the narrow tier's walks do not fit in ``SKYLINE_NARROW_WORK``: these two alone, and after them
#: ``skyline.EXTRA_KEYS`` (walked after the keys in both tiers) and the repair (``SKYLINE_REPAIR``), all of it within
#: ``SKYLINE_WIDE_WORK`` pairs visited: the wide tier's one total cap. Why these two: on the graphs
#: above (and chains with skips of 2,000 nodes, layered graphs of 300) ``end`` is the best of the six keys or within
#: 0.3% of it, and ``life`` where it is not (10,000-node chain: 5.1% against ``end``'s 7.6%; layered 1,000: 11.6%
#: against 16.1%); two walks, the second stopped once it passes the first or greedy's and size's arena, cost about
#: a third of greedy's and size's time, six of them as much again (CPU, docs/experiments/quality_s61.txt)
SKYLINE_WIDE_KEYS = ("end", "life")
#: the wide tier's total work, in pairs visited (a walk visits each overlapping pair, ``_walk_work``): its
#: ``SKYLINE_WIDE_WALKS`` walks, each counted whole (a walk stopped early costs less), and the repair of the best walk
#: and of the runner-up, each ``SKYLINE_REPAIR`` walks' worth or what the walks left of this cap halved
#: (``skyline_repair``), whichever is less, and then the repair of size's packing with what they leave, at most
#: ``SKYLINE_REPAIR`` walks' worth (``skyline_start_repair``, round 63). The tier runs where its walks fit (up to
#: 1,048,576 pairs a walk, as in round 61; a random DAG of 50,000 nodes has 3.7 million); the repair runs whole up to
#: 419,430 pairs a walk, less above, none at 1,048,576; size's whole up to 322,638, none from 419,431. Why one
#: total: round 62 counted 3 walks against a cap of 3 << 20 but ran 4 walks and up to 6 walks' worth of repair, up
#: to 10 walks in all: the cap bounded a third of the tier's time (docs/experiments/skyline_cap_s62.txt).
SKYLINE_WIDE_WORK = 4 << 20
#: the walks of the wide tier, counted whole against ``SKYLINE_WIDE_WORK``: the two keys and the two extra keys.
SKYLINE_WIDE_WALKS = len(SKYLINE_WIDE_KEYS) + 2   # (+ len(skyline.EXTRA_KEYS): a test holds them equal)
#: ``skyline.repaired``'s work: this many walks' worth of neighbours visited walking again the top of the best walk,
#: and as many for the runner-up's (in both tiers, after every walk; at most half of what the tier's total cap,
#: ``SKYLINE_NARROW_WORK`` or ``SKYLINE_WIDE_WORK``, leaves after its walks, ``skyline_repair``; the walks then stop
#: only once they pass the runner-up). Why: on session 62's corpus it took chains with long skips of 2,000 / 10,000 nodes from 3.85% / 5.08%
#: to 1.92% / 3.39% above the bound, a layered graph of 1,000 nodes from 2.07% to 0.32%, a random DAG of 1,000 from
#: 1.39% (size) to 0.50% (docs/experiments/quality_s62.txt: 18 of 104 plans smaller, none larger); the graphs it
#: runs on plan in 10-70% more CPU (deep chain of 10,000 nodes 0.54 -> 0.84 s), ``benchmarks.scale``'s 10,000- and
#: 50,000-node graphs walk nothing and plan as before. Its plan does not depend on the ``over`` it is asked for
#: (``skyline.solve``), so ``skyline_within`` answers for any memory budget what ``solve`` ends at.
SKYLINE_REPAIR = 3
#: the polish's wall-clock safety stop (seconds): far above what its node budget takes, so that it never decides
#: the plan (a polish it stopped is dropped whole, the plan is the heuristics' and its ``info`` says ``stopped``)
POLISH_WALL = 60.0


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions(), *,
          keep_interrupt: bool | None = None) -> Solution:
    """``keep_interrupt``: whether a Ctrl-C in ``polish`` (or in ``skyline``'s walks) comes back as the plan so far, marked ``interrupted``
    (None: only with a time limit, as the exact solvers keep theirs). ``named.default_plan`` asks for it: the
    exact solver named by its caller starts from this plan, and a Ctrl-C there must end with a plan, as one in
    that solver's own search does."""
    from . import get_solver

    best: Solution | None = None
    tried: dict[str, int] = {}
    made: dict[str, Solution] = {}
    for name in HEURISTICS:
        if (name == "size" and best is not None and best.arena <= int(problem.lower_bound or 0)
                and len(problem.compatible) >= SIZE_SKIP_PAIRS):
            continue
        sol = made[name] = get_solver(name)(problem, options)
        tried[name] = sol.arena
        if best is None or (sol.arena < best.arena and keeps_pairs(problem, best, sol)):
            best = sol
    assert best is not None
    lb = int(problem.lower_bound or 0)
    cap = problem.capacity
    fit = options.objective == Objective.FIT and cap is not None
    keep = options.time_limit is not None if keep_interrupt is None else keep_interrupt
    info: dict = {}
    if skyline_gap(best.arena, lb) and skyline_runs(problem) and not (fit and best.arena <= cap):
        try:
            walked = skyline_below(problem, best.arena - 1, made.get("size"))
        except KeyboardInterrupt:
            # as a Ctrl-C in ``polish``: raised on, or (``keep``) the heuristics' plan comes back marked, nothing after
            if not keep:
                raise
            walked, info["interrupted"] = None, True
        if walked is not None and keeps_pairs(problem, best, walked):
            best, tried["skyline"] = walked, walked.arena
    if best.arena > lb and not info.get("interrupted"):
        lifted = slack_on_top(problem, best, tries=LIFT_CANDIDATES ** 2)
        if lifted is not None and keeps_pairs(problem, best, lifted):
            best = lifted
    bound = lb
    # with a time limit too: the exact solvers then start from the default's plan, so more time never ends above it
    # (from round 32's one lift, a short limit left 7 of 20 small graphs up to 13% above the default's arena)
    # greedy's and size's plans go on to the searches, which start from them and made both again; always a pair
    # (greedy's twice where size was skipped): an exact solver handed none runs the default (``start.best_start``),
    # this very solve, again
    pair = (made["greedy"], made.get("size", made["greedy"]))
    if worth_polish(problem, best.arena, lb) and not (fit and best.arena <= cap) and not info.get("interrupted"):
        polished = polish(problem, best, pair, lb, info, keep_interrupt=keep)
        if polished is not None:
            # its bound holds whether or not it packed smaller: a search that proved the heuristics' arena optimal
            # made it OPTIMAL (the default said HEURISTIC, gap against the weaker bound, in 53 of 68 such solves)
            bound = max(bound, int(polished.info.get("bound", polished.lower_bound)))
            if polished.arena < best.arena and keeps_pairs(problem, best, polished):
                best, tried["search"] = polished, polished.arena

    def done() -> bool:
        return best.arena <= bound or (fit and best.arena <= cap)

    handed = {"heuristics": pair}
    spent = 0.0   # seconds of the time limit the exact solvers' counted work took (``exact_spent``)
    if options.time_limit is not None and not done() and not info.get("interrupted"):
        parts = exact_parts(problem)   # (fixed parts of the work budget, not what the clock left: it repeats)
        # (one stop for the work asked: several CP-SAT workers run two phases of work on cpsat's share,
        # ``cpsat.work_phases``)
        from .cpsat import work_phases

        cpsat_part = dict(parts)["cpsat"]
        work = options.time_limit * (1.0 + cpsat_part * (work_phases(problem, options) - 1.0))
        deadline = time.perf_counter() + options.wall_seconds(work)
        for name, part in parts:
            if done():
                break
            share = share_seconds(options.time_limit * part, 1)
            wall = wall_left(deadline)
            if wall is None:   # the one stop fired in the solver before: the next gets no second stop of its own
                info["stopped"] = "wall_clock"
                break
            try:
                # the largest bound an exact solver proved so far goes on as ``proven`` (the library's own, passed
                # beside the warm start: a warm start's bound is never read, it may be a caller's claim) -- also
                # when that solver found no better plan (``best.info`` then had no bound, and 0 was handed on)
                with limit_share(name, options.time_limit, share):
                    sol = get_solver(name)(problem, replace(options, time_limit=share, warm_start=best,
                                                            wall_limit=wall),
                                           proven=int(bound), deadline=deadline, **handed)
            except (BudgetError, SolverError) as exc:
                if from_callback(exc):   # the caller's progress callback raised it: theirs, not the solver's
                    raise
                info[f"{name}_error"] = str(exc)
                spent += share   # (what it spent before it refused is not known: its whole share)
                continue
            spent += exact_spent(problem, name, replace(options, time_limit=share), sol)
            tried[name] = sol.arena
            bound = max(bound, int(sol.info.get("bound", sol.lower_bound)))
            if sol.arena < best.arena and keeps_pairs(problem, best, sol):
                best = sol
            if sol.info.get("stopped"):
                info["stopped"] = sol.info["stopped"]
            if sol.info.get("interrupted"):
                info["interrupted"] = True
                break
    bound = min(bound, best.arena)
    ran_exact = any(k in tried for k in ("search", "cpsat"))
    status = Status.OPTIMAL if best.arena <= bound else (Status.FEASIBLE if ran_exact else best.status)
    if status == Status.OPTIMAL or "bound" in best.info or options.time_limit is not None or bound > lb:
        info.update({"bound": int(bound), "gap": gap_of(best.arena, bound)})
    if options.time_limit is not None:
        info["spent"] = spent   # (``solvers._solve`` solves again with what is left: ``exact_spent``)
    best = rejoin_inplace(problem, best) or best   # the arena is settled: join in-place pairs it left apart
    extra = {k: v for k, v in best.info.items() if k not in ("bound", "gap", "spent")}
    return Solution(best.offsets, best.arena, best.solver, status, int(bound), {**extra, **info, "tried": tried})


def exact_parts(problem: BufferProblem) -> tuple[tuple[str, float], ...]:
    """The exact solvers ``solve`` runs with a time limit, in order, each with its part of the limit. Interval
    problems: the search first (section inference is exact there), CP-SAT on what is left; otherwise CP-SAT first
    (it states the HB-filtered conflicts as they are and proves bounds), the search after it. Fixed parts (not what
    the clock left), so the result repeats."""
    first = 0.9 if problem.is_interval else 0.6
    order = ("search", "cpsat") if problem.is_interval else ("cpsat", "search")
    return ((order[0], first), (order[1], 1.0 - first))


def exact_spent(problem: BufferProblem, solver: str, options: SolveOptions, sol: Solution) -> float:
    """The seconds of ``options.time_limit`` that ``sol``, ``solver``'s solve of ``problem`` with ``options``, spent,
    by its own deterministic count (``search.spent_seconds``, ``cpsat.spent_seconds``; ``auto``'s exact solvers'
    together, ``info["spent"]``); 0 for a heuristic. Why: ``solvers._solve`` solves a problem again with its shifted
    in-place pairs apart, and each such round got the whole limit again."""
    if solver == "search":
        from .search import spent_seconds

        return spent_seconds(problem, options, sol)
    if solver in ("cpsat", "auto"):
        return float(sol.info.get("spent", 0.0))
    return 0.0


def skyline_runs(problem: BufferProblem) -> bool:
    """Whether ``solve`` walks ``skyline`` after greedy and size where they end ``SKYLINE_GAP`` or more above the bound
    (sizes only: the same verdict on every machine)."""
    return SKYLINE_MIN_BUFFERS <= len(problem) <= SKYLINE_BUFFERS and bool(skyline_keys(problem))


def skyline_keys(problem: BufferProblem) -> tuple[str, ...]:
    """The tie-break keys ``solve`` walks: all of ``skyline.KEYS`` where they and ``skyline.EXTRA_KEYS``
    (``SKYLINE_NARROW_WALKS`` walks) fit in ``SKYLINE_NARROW_WORK``, else ``SKYLINE_WIDE_KEYS`` where they and the
    extra keys (``SKYLINE_WIDE_WALKS`` walks) fit in ``SKYLINE_WIDE_WORK``, else none (the extra keys are walked after
    either: ``skyline_below``)."""
    from .skyline import KEYS

    if _narrow(problem):
        return KEYS
    return SKYLINE_WIDE_KEYS if _tier_work(problem) * SKYLINE_WIDE_WALKS <= SKYLINE_WIDE_WORK else ()


def skyline_repair(problem: BufferProblem) -> int | Fraction:
    """The walks' worth of work ``skyline.repaired`` gets for each of its two bases: ``SKYLINE_REPAIR``, or less where
    the tier's total cap leaves less (exact: a ``Fraction``, so the budget of neighbours visited is the same on every
    machine): in the wide tier half of what ``SKYLINE_WIDE_WORK`` leaves after its walks, in the narrow tier its share
    of what ``SKYLINE_NARROW_WORK`` leaves (``_narrow_shares``). Why: each cap is its tier's whole time, repair
    included."""
    if _narrow(problem):
        return _narrow_shares(problem)[1]
    work = _walk_work(problem)
    left = Fraction(max(0, SKYLINE_WIDE_WORK - work * SKYLINE_WIDE_WALKS), 2 * work)
    return SKYLINE_REPAIR if left >= SKYLINE_REPAIR else left


def _narrow_shares(problem: BufferProblem) -> tuple[int, int | Fraction]:
    """The narrow tier's promotion walks and repair (walks' worth a base) out of what ``SKYLINE_NARROW_WORK`` leaves
    after its walks: half to the promotions (whole walks, at most ``SKYLINE_ROUNDS``), the rest to the repair of both
    bases (at most ``SKYLINE_REPAIR`` each), then to the promotions what the repair leaves. Why shared: where the cap
    is short (20,000-43,690 pairs a walk) both win plans: the repair first left the public input J (28,740 pairs a
    walk) at 12.42% above its bound, which its second promotion walk and a repair take to 10.97%; the promotions
    first lost the repair's wins (a chain with long skips of 2,000 nodes 1.92% -> 3.85%; 53 problems of 8,000-43,690
    pairs: sum of gaps 143.8% as in round 62, 144.5% shared, 145.9% repair first, 153.6% promotions first;
    docs/experiments/skyline_narrow_s63.txt)."""
    work = _walk_work(problem)
    left = Fraction(max(0, SKYLINE_NARROW_WORK - work * SKYLINE_NARROW_WALKS), work)
    repair = min(Fraction(SKYLINE_REPAIR), (left - min(SKYLINE_ROUNDS, int(left / 2))) / 2)
    rounds = min(SKYLINE_ROUNDS, int(left - 2 * repair))
    return rounds, (SKYLINE_REPAIR if repair >= SKYLINE_REPAIR else repair)


def _narrow(problem: BufferProblem) -> bool:
    """Whether the narrow tier's walks (``SKYLINE_NARROW_WALKS``, each counted whole) fit in ``SKYLINE_NARROW_WORK``,
    counted in overlapping intervals (``_tier_work``)."""
    return _tier_work(problem) * SKYLINE_NARROW_WALKS <= SKYLINE_NARROW_WORK


def _tier_work(problem: BufferProblem) -> int:
    """A walk's work as the tiers' gates count it (``_narrow``, ``skyline_keys``): overlapping intervals, as in rounds
    60-63. Why not ``_walk_work``: the tiers are the problems' sizes, tuned on this count; counted in conflicts a
    multi-stream problem moved from the wide tier to the narrow one, which does not repair size's packing
    (``skyline_start_repair``), and lost that win (a random DAG of 600 nodes, seed 6, on 3 streams: 47,501
    overlapping, 31,164 conflicting pairs, 1.69% -> 1.98% above the bound), and problems past the wide tier stay
    unwalked (no plan slower). The caps (what the tiers share out) count what the walks visit."""
    return max(problem.overlap_count(), len(problem), 1)


def _walk_work(problem: BufferProblem) -> int:
    """What one walk visits, the unit of both tiers' caps (the shares of ``_narrow_shares``, ``skyline_repair`` and
    ``skyline_start_repair``; the tiers' gates count ``_tier_work``): each conflicting pair (and in-place pair, kept
    apart by the walks: ``skyline.neighbours``) once, read off the problem's conflicting pairs (``conflict_count``, up to the wide
    tier's largest walk, ``SKYLINE_WIDE_WORK // SKYLINE_WIDE_WALKS``; past it no walk runs, and the count stops
    there), at least a buffer's worth. Why: rounds 60-63 counted overlapping intervals, which on a multi-stream
    problem are up to several times the conflicts a walk visits, so the caps cut those problems' promotions and repair
    short for work their walks never did (round 63: 4 of 33 extra seeds' walks ended larger under the narrow cap,
    all of them multi-stream). On an interval problem the two are one count (``overlap_count``, nothing listed);
    where size plans against the intervals alone (``size.dense_route``: overlaps past the pairs it lists) they stay
    the intervals', so no problem lists pairs here that no solver listed."""
    from .size import dense_route

    overlaps = problem.overlap_count()
    if problem.is_interval or dense_route(problem) != "pairs":
        return max(overlaps, len(problem), 1)
    biggest = SKYLINE_WIDE_WORK // SKYLINE_WIDE_WALKS
    pairs = problem.conflict_count(stop_above=biggest) + len(problem.compatible)
    return max(min(pairs, overlaps + len(problem.compatible)), len(problem), 1)


def skyline_gap(arena: int, lb: int) -> bool:
    """Whether greedy's and size's best ``arena`` is ``SKYLINE_GAP`` or more above the bound ``lb`` (integers)."""
    return arena > lb and _gap_at_least(arena, lb, SKYLINE_GAP)


def _gap_at_least(arena: int, lb: int, fraction: tuple[int, int]) -> bool:
    """Whether ``arena`` is at least ``fraction`` (numerator, denominator) of the bound ``lb`` above it: integers, so
    the same verdict on every machine (the gates of ``skyline`` and of the wide ``polish``)."""
    num, den = fraction
    return (arena - lb) * den >= lb * num


def skyline_rounds(problem: BufferProblem) -> int:
    """How many promotion walks ``skyline`` adds after its keys (``skyline.promoted``): in the narrow tier their share
    of what ``SKYLINE_NARROW_WORK`` leaves after its walks (``_narrow_shares``), at most ``SKYLINE_ROUNDS``; none in
    the wide tier."""
    return _narrow_shares(problem)[0] if _narrow(problem) else 0


def skyline_below(problem: BufferProblem, over: int, size: Solution | None = None) -> Solution | None:
    """``skyline``'s smallest walk where it ends within ``over`` bytes, else None; with ``size`` (size's packing of
    ``problem``), that packing's top walked again too where ``skyline_start_repair`` gives it work."""
    from . import skyline

    start = skyline_start_repair(problem)
    try:
        return skyline.solve(problem, over=over, keys=skyline_keys(problem), rounds=skyline_rounds(problem),
                             extra=skyline.EXTRA_KEYS, repair=skyline_repair(problem),
                             start=(size.offsets.tolist(), size.arena) if start and size is not None else None,
                             start_repair=start)
    except ArenaOver:
        return None


def skyline_start_repair(problem: BufferProblem) -> int | Fraction:
    """The walks' worth of work ``skyline.solve`` repairs size's packing with (its ``start``): in the wide tier
    what ``SKYLINE_WIDE_WORK`` leaves after the walks and the repair of both bases, at most ``SKYLINE_REPAIR``;
    none in the narrow tier (its cap is shared out already: ``_narrow_shares``) nor on a problem with in-place
    pairs (size may overlap a pair that the walks keep apart). Why the wide tier: there the walks of multi-stream
    problems of 1,000-2,000 nodes ended above size's arena (``skyline.START_KEYS``), and the cap had room left."""
    if _narrow(problem) or problem.compatible or problem.inplace or not skyline_keys(problem):
        return 0
    work = _walk_work(problem)
    left = Fraction(max(0, SKYLINE_WIDE_WORK - work * SKYLINE_WIDE_WALKS - 2 * skyline_repair(problem) * work), work)
    return SKYLINE_REPAIR if left >= SKYLINE_REPAIR else left


def skyline_within(problem: BufferProblem, over: int, walked: dict[str, int] | None = None) -> bool:
    """Whether ``solve``'s ``skyline`` walks may end within ``over`` bytes (False: they surely end above it, or do
    not run): ``skyline_below``, whose walks go to their end where a repair follows (``skyline.solve``, with
    ``skyline_repair``), so its arena does not depend on ``over``. ``walked`` keeps that arena for a second verdict on the
    same problem (``solve`` runs no walk where that key's arena is not below greedy's and size's: True then only
    costs the caller a whole solve, which it checks)."""
    from . import get_solver, skyline

    rounds = skyline_rounds(problem)
    if walked is None or "arena" not in walked:
        start = skyline_start_repair(problem)
        size = get_solver("size")(problem) if start else None   # (its full packing: ``skyline_below``'s start)
        arena = skyline.solve(problem, keys=skyline_keys(problem), rounds=rounds, extra=skyline.EXTRA_KEYS,
                              repair=skyline_repair(problem),
                              start=(size.offsets.tolist(), size.arena) if size is not None else None,
                              start_repair=start).arena
        if walked is None:
            return arena <= over
        walked["arena"] = arena
    return walked["arena"] <= over


def keeps_pairs(problem: BufferProblem, best: Solution, sol: Solution) -> bool:
    """Whether ``sol`` may replace ``best``, judged on in-place pairs alone: not where ``best`` puts every in-place
    output exactly on its input (or apart) while ``sol`` overlaps one off its place and no move puts it right
    (``exact_pairs.separate``). Why: the exact solvers pack a compatible pair anywhere, and a heuristic or
    ``slack_on_top``'s first-fit re-pack may put an output beside its input, so a smaller arena may hold such a pair, and ``solvers.solve`` then solves the whole problem again with the pair apart, where every
    solver does worse: the ``moe`` example's low-memory order got 40,960 B from ``auto`` (its polish found 28,672 B
    with 4 pairs shifted) against 32,768 B from ``greedy`` or ``size`` alone, and ``memplan plan moe.json
    --memory-budget 36000`` was refused though ``--solver size`` met it. The bound ``sol`` proved stands either way
    (pairs apart can only need more)."""
    if not problem.inplace:
        return True
    shifted = shifted_pairs(problem, sol.offsets)
    if not shifted or shifted_pairs(problem, best.offsets):
        return True
    moved = separate(problem, sol, shifted)
    return moved is not None and packs(problem, moved)


def wall_left(deadline: float) -> float | None:
    """Seconds left before ``deadline`` (``time.perf_counter``), or None once it has passed.

    Why: ``auto`` runs two exact solvers, and each took the whole wall-clock safety stop of its own
    (``wall_limit``, or four times its share plus ten seconds), so a solve could run for about twice the
    stop the caller set. There is one stop for auto's exact phase, counted from its start (after the
    heuristics, whose work is bounded and repeats); each solver gets what is left of it, as its ``wall_limit`` and
    as the ``deadline`` itself, which its own stop never passes (a solver's stop otherwise starts after its setup,
    and so ran past this one by that setup's time: ``WorkBudget.start_clock``)."""
    left = deadline - time.perf_counter()
    return min(left, MAX_SECONDS) if left > 0 else None


def slack_on_top(problem: BufferProblem, sol: Solution, tries: int = 1) -> Solution | None:
    """``sol`` with a buffer of much alignment slack moved to the top, when that ends the arena lower; else None.

    Why: offsets are aligned, so a buffer whose size is not a multiple of the alignment leaves its slack
    (``align_up(size) - size``) unused below whatever sits above it, and the arena ends where its top buffer
    ends. Greedy and size put the largest buffers lowest: a 1110-byte output under a 256-byte one at
    alignment 256 ends at 1536 where 256 + 1110 = 1366 bytes do (session 32 measured every default plan of
    small random graphs against the exhaustive optimum: most misses were only this). The other buffers are
    packed again first-fit in the order of their offsets (no offset rises), then the lifted one(s) first-fit.
    ``tries`` re-packs at most: the buffer of most slack first (the one lift of ``tries=1``), then the others
    of the ``LIFT_CANDIDATES`` of most slack, then ordered pairs of them (the second ends on top), fewer where
    the problem has more conflicting pairs (``_lift_tries``). The smallest arena wins, the first tried on ties.
    Kept only when the arena shrinks and stays within the same aligned top (``align_up(arena)``), so the
    result ends within one alignment of ``sol``'s: ``heuristics_over`` relies on it. Deterministic; nothing is
    done where no buffer has more slack than the top one wastes, or listing the conflicting pairs
    would cost more than the heuristics did (``size.dense_route``), or more than the alignment it can save is
    worth (over ``SLACK_PAIRS`` conflicting pairs)."""
    from .size import dense_route

    n, align = len(problem), problem.alignment
    sizes = problem.sizes.astype(np.int64)
    slack = align_up(sizes, align) - sizes
    top = align_up(sol.arena, align)
    if n == 0 or int(slack.max()) <= top - sol.arena or dense_route(problem) != "pairs":
        return None
    pairs = problem.conflict_count(stop_above=SLACK_PAIRS)   # (exact up to SLACK_PAIRS: not listed only to count)
    if pairs > SLACK_PAIRS:
        return None
    # only a buffer of more slack than the top one wastes can end the arena lower; most slack first, then index
    ranked = [i for i in np.lexsort((np.arange(n), -slack)).tolist() if slack[i] > top - sol.arena]
    lifts = _lift_sets(ranked[:LIFT_CANDIDATES])[:_lift_tries(tries, pairs)]
    offsets = np.asarray(sol.offsets, dtype=np.int64)
    by_offset = np.lexsort((np.arange(n), offsets)).tolist()
    bounds, flat = problem.conflict_csr()
    size_list = sizes.tolist()
    best: tuple[int, np.ndarray] | None = None
    for lifted in lifts:
        packed = _repack(by_offset, lifted, size_list, bounds, flat, align, problem)
        arena = arena_of(problem, packed)
        if arena < (best[0] if best else sol.arena) and align_up(arena, align) == top:
            best = (arena, packed)
    if best is None:
        return None
    return replace(sol, offsets=best[1], arena=best[0], info={**sol.info, "slack_top": int(sol.arena)})


def _lift_tries(tries: int, pairs: int) -> int:
    """At most ``tries`` re-packs, and beyond the first no more than keep their work within one re-pack of a
    problem of ``SLACK_PAIRS`` conflicting pairs (each re-pack visits every pair)."""
    return max(1, min(tries, SLACK_PAIRS // max(pairs, 1)))


def _lift_sets(ranked: list[int]) -> list[tuple[int, ...]]:
    """What to lift, in the order tried: each candidate alone, then each ordered pair (the second on top)."""
    return [(i,) for i in ranked] + [(i, j) for i in ranked for j in ranked if i != j]


def _repack(by_offset: list[int], lifted: tuple[int, ...], sizes: list[int], bounds, flat, align: int,
            problem: BufferProblem) -> np.ndarray:
    """Offsets packed first-fit: every buffer but ``lifted`` in ``by_offset`` order, then ``lifted`` in its order; an
    in-place partner exactly on its partner or clear of it (``exact_pairs.ExactOrApart``: the first fit among the
    conflicting blocks alone put a lifted output over its input off its place, and the solve repaired it afterwards)."""
    # plain lists: indexing numpy arrays element by element in this loop cost several times the loop itself
    n = len(sizes)
    new = [0] * n
    placed = [False] * n
    order = [i for i in by_offset if i not in lifted and sizes[i] > 0] + list(lifted)
    guard = ExactOrApart.of(problem, order, best=False)
    for i in order:
        blocks = [(new[j], new[j] + sizes[j]) for j in flat[bounds[i]:bounds[i + 1]] if placed[j]]
        new[i] = first_fit(blocks, sizes[i], align)
        if guard is not None:
            new[i] = guard.mend(i, new[i], new)
        placed[i] = True
    return np.asarray(new, dtype=np.int64)


def polishes(problem: BufferProblem, options: SolveOptions) -> bool:
    """Whether ``solve(problem, options)``, running no exact solver after it (no time limit), may end with ``polish``
    (its result then rests on the problem's lower bound, where the search stops, and may end more than one
    alignment below the heuristics'). With a time limit the polish runs too, but the exact solvers follow: no
    caller asks this of such a solve (``heuristics_of`` is None for it). Up to ``POLISH_WIDE_BUFFERS``: whether the
    polish runs there depends on the heuristics' gap, known only once they ran, so such a problem may polish."""
    return options.time_limit is None and 0 < len(problem) <= POLISH_WIDE_BUFFERS


def small(problem: BufferProblem) -> bool:
    """Whether ``problem`` is small enough for ``polish`` whatever the heuristics' gap (``POLISH_BUFFERS``)."""
    return 0 < len(problem) <= POLISH_BUFFERS


def worth_polish(problem: BufferProblem, arena: int, lb: int) -> bool:
    """Whether ``polish`` runs after heuristics that ended at ``arena`` over the bound ``lb``: above the bound, on a
    ``small`` problem, or on one of up to ``POLISH_WIDE_BUFFERS`` buffers at least ``POLISH_WIDE_GAP`` above it
    (integers: the same verdict on every machine)."""
    if arena <= lb:
        return False
    if small(problem):
        return True
    return len(problem) <= POLISH_WIDE_BUFFERS and _gap_at_least(arena, lb, POLISH_WIDE_GAP)


def polish(problem: BufferProblem, best: Solution, heuristics: tuple[Solution, Solution] | None, lb: int,
           info: dict | None = None, keep_interrupt: bool = False) -> Solution | None:
    """The ``search`` solver's solution from ``best`` with ``POLISH_WORK // len(problem)`` nodes (None where it found
    nothing within the capacity or its wall-clock safety stop cut it): the caller keeps its plan only where it is
    smaller, and its proven bound either way.

    Why: what the heuristics miss on small problems beyond the alignment tail is the packing itself (a buffer
    that fits in a gap no first-fit order leaves: up to 1.22x the optimum on graphs of a dozen nodes); the
    exact search, warm-started from ``best`` and stopping at the bound ``lb``, finds and proves those packings in
    a few hundred nodes. The budget is nodes (deterministic), never the clock: a run its wall-clock safety stop
    cut is dropped, and ``info`` (the solve's) gets ``stopped: wall_clock``, as any solve the wall clock stopped
    says: the plan is then the heuristics', which a run not paused or starved for ``POLISH_WALL`` would not give.
    Ctrl-C inside it is raised on, as anywhere else in a default solve; with ``keep_interrupt`` (a time-limited
    solve, whose exact solvers keep their best plan on Ctrl-C) ``info`` gets ``interrupted`` and the better plan
    comes back, as from those solvers."""
    from .options import SearchParams
    from .search import solve as search

    nodes = POLISH_WORK // len(problem)
    # the default seed, not the caller's: without a time limit ``seed`` is documented to change nothing (the CLI
    # warns that it has no effect), so this search draws the same rungs whatever it is
    opts = SolveOptions(time_limit=nodes / SearchParams().nodes_per_second, wall_limit=POLISH_WALL, warm_start=best)
    # the problem less its capacity: the search minimises from ``best`` as it does without one, and the capacity is
    # checked on what it found (``solvers._check_fits``). Why: with the capacity, a hard cap to the search, heuristics
    # above it left the search no start, and its nodes went to shots at the capacity alone: 18 buffers (alignment 8)
    # that ``auto`` packs in 397 B were refused at capacity 397 ("no packing ... found by the auto heuristics; best
    # arena 440"), a capacity its own plan fits
    free = problem if problem.capacity is None else replace(problem, capacity=None)
    try:
        # (a budget of nodes, not of the search's estimated work, which charges a node by what it scans: default
        # plans stay the same whatever that estimate's calibration)
        sol = search(free, opts, proven=lb, heuristics=heuristics, nodes=nodes)
    except (BudgetError, SolverError):   # (a refusal of the search's own: the heuristics' plan stands)
        return None
    if sol.info.get("interrupted"):
        if not keep_interrupt or info is None:
            raise KeyboardInterrupt
        info["interrupted"] = True
        return sol
    if sol.info.get("stopped") and info is not None:
        info["stopped"] = sol.info["stopped"]
    return None if sol.info.get("stopped") else sol
