"""Trading concurrency for memory (and for events): give back the forks that buy the least.

Why: concurrency lengthens lifetimes. A tensor read on a side stream stays live until the join
event tells the main stream it is done, and a side stream's outputs are live while the main stream
runs — so the concurrent arena can exceed the serial one. When a memory budget (or an event cap) is
set, concurrency is given back: fewer streams, depth-first order, or single forks moved home.

A *fork* (segment) is a maximal run of units on a non-main stream that begins where the stream waits
on an event: llama's K branch after the attention norm, its up-projection beside the gate. Giving a
fork back moves its units to the stream it forked from (the stream of the event it waits on) and
re-runs the list scheduler with every stream assignment fixed; the fewest events are recomputed.

Each fork is scored once against the concurrent schedule: the time it saves (the simulated makespan
with only it serialised, minus the concurrent makespan), the events it costs, and its memory: the
bytes of the arena tensors it touches (its working set, which concurrency keeps live beside the main
stream). Forks are then serialised in order of most memory per microsecond saved (for a budget) or
fewest microseconds per event saved (for an event cap). Every prefix of those lists is a candidate,
next to the optimizer's own candidates for fewer streams ("merging streams"), the serial order, and (a memory budget
only) the low-memory serial order spread over a few stream counts (``low_memory_streams``).
The candidates are tried fastest first (simulated makespan) and the first whose real plan fits wins,
so the result is the fastest known schedule within the budget, and never slower than serial. If not
even the serial plan fits, ``BudgetError`` names both numbers. Under an event cap, the fastest schedules at a few
stream counts are thinned to the cap (``thinned``, ``capsearch.thin_streams``) and taken where they are faster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import short_repr as _short
from ..graph import Graph
from ..schedule import Event, Schedule, serial_schedule
from .capsearch import bisect_streams, thin_streams
from .events import Replay
from .memorder import memory_unit_order
from .streams import Optimized, expand, list_schedule, schedule_makespan, scored_schedule

#: at most this many prefix lengths of the fork list become candidates
MAX_PREFIXES = 48
#: above ``streams.LARGE_UNITS`` units the optimizer schedules at ``max_streams`` only; a memory budget or an event
#: cap also gets its priority (``eft``) and depth-first (``listed``) schedulers at these fewer streams
#: (``fewer_streams``)
FEWER_STREAMS = (2, 8, 64)
#: ``score_forks`` replays every fork's give-back exactly while all of them together replay at most this many
#: nodes (each from the fork's first unit to the end: quadratic in the nodes, as forks grow with them); past it,
#: each replays a window of ``REPLAY_WINDOW`` positions after its last moved unit (``Replay.rerun_window``)
MAX_REPLAY_STEPS = 2_000_000
REPLAY_WINDOW = 128
#: the stream counts of a memory budget's concurrent schedules in the low-memory order (``low_memory_streams``), up to
#: the optimizer's ``max_streams``
LOW_MEMORY_STREAMS = (2, 3, 4, 6, 8)


@dataclass(frozen=True)
class Fork:
    units: tuple[int, ...]
    source: int          # the unit whose event the fork's first unit waits on
    saves_us: float      # makespan increase when only this fork is given back
    events: int          # events removed when only this fork is given back
    bytes: int           # arena bytes the fork touches


@dataclass(frozen=True)
class Reduced:
    schedule: Schedule
    makespan_us: float
    forks_serialised: int
    forks_total: int
    name: str = ""


def unit_streams(opt: Optimized, schedule: Schedule, graph: Graph) -> tuple[list[int], list[int]]:
    """(units in issue order, stream per unit) of a schedule built from ``opt.units``."""
    U = opt.units
    stream_of = schedule.stream_of()
    order: list[int] = []
    seen: set[int] = set()
    for nid in schedule.order:
        u = U.unit_of[graph.node_index[nid]]
        if u not in seen:
            seen.add(u)
            order.append(u)
    ustream = [stream_of[graph.nodes[ms[0]].id] for ms in U.members]
    return order, ustream


def find_forks(graph: Graph, opt: Optimized, schedule: Schedule) -> list[tuple[tuple[int, ...], int]]:
    """Side-stream runs that start with an event wait: (units, source unit), in issue order."""
    U = opt.units
    order, ustream = unit_streams(opt, schedule, graph)
    waits: dict[int, list[int]] = {}
    for e in schedule.events:
        waits.setdefault(U.unit_of[graph.node_index[e.before]], []).append(
            U.unit_of[graph.node_index[e.after]])
    forks: list[tuple[list[int], int]] = []
    open_fork: dict[int, int] = {}  # stream -> index in forks
    for u in order:
        s = ustream[u]
        if s == 0:
            continue
        if u in waits or s not in open_fork:
            src = min(waits.get(u, [u]), key=lambda a: (ustream[a] != 0, a))
            open_fork[s] = len(forks)
            forks.append(([u], src))
        else:
            forks[open_fork[s]][0].append(u)
    return [(tuple(us), src) for us, src in forks]


def give_back(graph: Graph, opt: Optimized, schedule: Schedule,
              forks: list[tuple[tuple[int, ...], int]]) -> Schedule:
    """``schedule`` with every listed fork moved onto the stream it forked from."""
    return _give_back(graph, opt, unit_streams(opt, schedule, graph)[1], forks, scored=False)[0]


def _give_back(graph: Graph, opt: Optimized, ustream: list[int], forks: list[tuple[tuple[int, ...], int]],
               scored: bool = True, event_cache: dict | None = None) -> tuple[Schedule, float]:
    """``give_back`` from the schedule's stream per unit, with its simulated makespan if ``scored``.

    The list scheduler with every stream fixed issues units in the same order whatever the streams
    (``streams.fixed_order``), so that order is made once for all forks."""
    U = opt.units
    assign = _assign(ustream, forks)   # (issue order: a fork's source is already where it will stay)
    return scored_schedule(graph, U, U.fixed_order, assign, opt.cost if scored else None, opt.event_us, event_cache)


def score_forks(graph: Graph, opt: Optimized, schedule: Schedule, *, deadline: float | None = None
                ) -> list[Fork] | None:
    """Each fork of ``schedule`` scored against it: time saved, events saved, bytes touched; None once
    ``time.perf_counter()`` passes ``deadline`` (a memory budget's wall-clock safety stop, ``plan._budget_wall``).

    Giving back one fork keeps every unit before its first one in the fixed-stream order where it was,
    with the same events and times (``events.Replay``): each give-back is run from there, not from the
    start, and scored without building its Schedule (the events' number and the makespan are the same
    as ``give_back``'s schedule has)."""
    base = schedule_makespan(graph, schedule, opt.cost, opt.event_us)
    arena_root = [graph.root[t] for t in range(len(graph.tensors))]
    U = opt.units
    ustream = unit_streams(opt, schedule, graph)[1]
    node_order: list[int] = []
    first: list[int] = [0] * len(U.members)   # a unit's first position in node_order
    for u in U.fixed_order:
        first[u] = len(node_order)
        node_order.extend(U.members[u])
    node_unit = [U.unit_of[m] for m in node_order]
    node_streams = [ustream[u] for u in node_unit]
    forks = find_forks(graph, opt, schedule)
    moved: list[tuple[int, int]] = []   # (first position of a moved unit or len(node_order), target)
    for units, src in forks:
        target = ustream[src] if src not in units else 0
        moved.append((min((first[u] for u in units if ustream[u] != target), default=len(node_order)), target))
    # (``rescore``: no marks; its index reads the run's events, recorded here rather than by a second whole run)
    replay = Replay(graph, node_order, node_streams, opt.cost, opt.event_us, record=True, windows=True)
    N = len(node_order)
    exact = sum(N - p for p, _ in moved) <= MAX_REPLAY_STEPS
    out = []
    for (units, src), (p, target) in zip(forks, moved):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        if p == N:   # nothing moves
            n_events, ms = replay.events, replay.makespan
        else:   # (a window: the scores only rank forks for the candidates, whose schedules are then planned in full)
            stop = N if exact else min(N, max(first[u] + len(U.members[u]) for u in units) + REPLAY_WINDOW)
            n_events, ms = replay.rescore(p, stop, {m: target for u in units if ustream[u] != target
                                                    for m in U.members[u]})
        roots = {arena_root[t] for u in units for m in opt.units.members[u]
                 for t in graph.node_inputs[m] + graph.node_outputs[m] if graph.in_arena(t)}
        out.append(Fork(units, src, max(ms - base, 0.0), len(schedule.events) - n_events,
                        sum(graph.tensors[r].size for r in roots)))
    return out


def pool_rank(makespan_us: float, s: Schedule) -> tuple[float, int, int]:
    """A candidate's place in ``candidate_pool``'s order (before its arrival among equals): fastest first, then fewer
    events, then fewer streams; one key for the pool and for ``without_forks``, which places the serial order in it."""
    return round(makespan_us, 6), len(s.events), s.num_streams


def candidate_pool(graph: Graph, opt: Optimized, max_events: int | None = None, *, forks: bool = True,
                   fewer: list[tuple[str, Schedule, float]] | None = None) -> list[Reduced]:
    """Every schedule worth trying, fastest first (ties: fewer events, fewer streams).

    The optimizer's candidates (each stream count and strategy, the serial order included: fewer
    streams is "merging streams") and, for the chosen schedule, every prefix of its forks given back
    in order of most memory per microsecond saved and in order of least time per event saved.
    ``forks=False`` leaves the give-backs out (nothing is scored or replayed for them): every give-back has
    the issue order ``give_back_order``, and a memory budget below that order's bound rejects them all.
    ``fewer``: ``fewer_streams(graph, opt)`` where the caller has it already (``limit_events``).
    """
    pool, seen, add = _own_pool(graph, opt, max_events, fewer)
    if not forks:
        add(serial_schedule(graph), None, 0, 0, "serial")   # (as below: the optimizer's serial candidate already)
        pool.sort(key=lambda x: x[0])
        return [r for _, r in pool]
    forks = score_forks(graph, opt, opt.schedule)
    F = len(forks)
    prefixes = _prefixes(F)
    ustream = unit_streams(opt, opt.schedule, graph)[1]
    made: dict = {}   # the give-backs' Event objects, shared (``scored_schedule``)
    U = opt.units
    ids = [nd.id for nd in graph.nodes]
    node_order = expand(U, U.fixed_order, ustream)[0]   # (the fixed-stream order: every give-back's)
    sizes = _unit_sizes(U)
    order_ids = tuple(ids[m] for m in node_order)
    for tag, order in _fork_orders(forks):
        # each prefix scored by a Replay branched off the previous prefix's where their streams first differ
        # (``Replay.branch``), its Schedule made only if it is planned (``_LazyReduced``): making all of them
        # (96 at 50,000 nodes, each a full replay, 50,000 ids and 30,000 events) was most of the pool's time
        forks_of = _prefix_forks(order, prefixes)
        streams_of = [_node_streams(U, _assign(ustream, fs), sizes) for fs in forks_of]
        # where each prefix's streams first differ from the next one's: every later branch starts at one of them
        starts = [_first_difference(a, b) for a, b in zip(streams_of, streams_of[1:])]
        streams_of = [a.tolist() for a in streams_of]
        # under ``max_events`` a replay stops at the cap, and a prefix whose streams are ``prev``'s before a position
        # where ``prev`` is over the cap already is dropped unreplayed (``Replay.over_cap``): with max_events=3
        # nearly every prefix was replayed to the end for thousands of events, then dropped
        prev: Replay | None = None
        agree = 0   # the streams of the prefix before are ``prev``'s before this position (``prev``'s own: the end)
        for k, (m, forks_m, node_streams) in enumerate(zip(prefixes, forks_of, streams_of)):
            name = f"{opt.chosen}-give-back-{m}-by-{tag}"
            mark = starts[k:]
            if not node_streams or max(node_streams) == 0:   # one stream: ``scored_schedule``'s own simulation
                add(*_give_back(graph, opt, ustream, forks_m, event_cache=made), m, F, name)
                prev = None
                continue
            if prev is None:
                prev = Replay(graph, node_order, node_streams, opt.cost, opt.event_us, mark, record=True, windows=False,
                              cap=max_events)
            else:
                at = min(starts[k - 1], agree)   # (a mark of ``prev``: every later start is one)
                if prev.over_cap(at):   # (false only where ``at`` is starts[k - 1]: ``agree`` was over the cap)
                    agree = at
                    continue
                prev = prev.branch(at, node_streams, mark)
            agree = len(node_order)
            key = (order_ids, tuple(node_streams))
            if key in seen or (max_events is not None and prev.events > max_events):
                continue
            seen.add(key)
            ms = prev.makespan
            waits = np.array(prev.pairs, dtype=np.int64).reshape(-1, 2)   # (kept compact: 30,000 pairs each)
            pool.append(((round(ms, 6), prev.events, max(node_streams) + 1, len(pool)),
                         _LazyReduced(partial(_schedule_of, key, waits, ids, made), ms, m, F, name)))
    add(serial_schedule(graph), None, F, F, "serial")
    pool.sort(key=lambda x: x[0])
    return [r for _, r in pool]


def _own_pool(graph: Graph, opt: Optimized, max_events: int | None,
              fewer: list[tuple[str, Schedule, float]] | None) -> tuple[list[tuple[tuple, Reduced]], set[tuple], Callable]:
    """``candidate_pool``'s start: the optimizer's candidates, ``fewer_streams``' and ``cap_streams``' (rank keys and
    all), the keys seen, and the ``add`` that puts one more schedule in (where its key is new and within the cap)."""
    pool: list[tuple[tuple, Reduced]] = []
    seen: set[tuple] = set()

    def add(s: Schedule, ms: float | None, given_back: int, total: int, name: str) -> None:
        key = (s.order, s.streams)
        if key in seen or (max_events is not None and len(s.events) > max_events):
            return
        seen.add(key)
        if ms is None or math.isnan(ms):  # simulated only when kept
            ms = schedule_makespan(graph, s, opt.cost, opt.event_us)
        pool.append(((*pool_rank(ms, s), len(pool)), Reduced(s, ms, given_back, total, name)))

    for c in opt.pool:
        add(c.schedule, c.makespan_us, 0, 0, c.name)
    if fewer is None:
        fewer = fewer_streams(graph, opt)
    for name, s, ms in fewer:
        add(s, ms, 0, 0, name)
    for name, s, ms in cap_streams(graph, opt, max_events, fewer):
        add(s, ms, 0, 0, name)
    return pool, seen, add


def _prefixes(F: int) -> list[int]:
    """The prefix lengths of a list of ``F`` forks that become candidates (at most ``MAX_PREFIXES``)."""
    return list(range(1, F + 1)) if F <= MAX_PREFIXES else sorted(
        {min(F, round(F * i / MAX_PREFIXES)) for i in range(1, MAX_PREFIXES + 1)} - {0})


def _fork_orders(forks: list[Fork]) -> tuple[tuple[str, list[Fork]], tuple[str, list[Fork]]]:
    """The two orders forks are given back in: most memory per microsecond saved, least time per event saved."""
    by_memory = sorted(forks, key=lambda f: (-(f.bytes / max(f.saves_us, 1e-9)), min(f.units)))
    by_events = sorted(forks, key=lambda f: (f.saves_us / f.events if f.events > 0 else float("inf"),
                                             min(f.units)))
    return ("memory", by_memory), ("events", by_events)


def _prefix_forks(order: list[Fork], prefixes: list[int]) -> list[list[tuple[tuple[int, ...], int]]]:
    """Each prefix's forks of ``order`` as (units, source), in the order ``_assign`` takes them (by first unit)."""
    firsts = [min(f.units) for f in order]   # (forks are disjoint: each first unit is its own)
    return [[(f.units, f.source) for f in (order[k] for k in sorted(range(m), key=firsts.__getitem__))]
            for m in prefixes]


def own_and_give_backs(graph: Graph, opt: Optimized, *, deadline: float | None = None
                       ) -> tuple[list[Reduced], int | None]:
    """``candidate_pool(graph, opt)``'s own candidates (``forks_total == 0``, in its order) and the number of its fork
    give-backs, without replaying any give-back (nor making its Schedule): the forks are scored (their order decides
    which prefixes are the same schedule), each prefix's streams made and its key looked up as ``candidate_pool``
    does. Why: a memory budget with an exact solver hands each probe an equal part of the limit by this number
    (``plan.PROBE_SHARE``), while the give-backs themselves cannot fit where their one issue order's bound is over
    the budget: replaying every prefix for a makespan nothing reads was half of the pool's time
    (``random_dag(10000)``, ``streams="auto"``: 4 of 8.3 s CPU). No event cap (``max_events`` drops prefixes by
    their replayed events). The number is None where the forks' scoring passed ``deadline`` (``score_forks``): past
    the budget's wall-clock stop no probe takes a share, so the count is read by nothing."""
    pool, seen, _ = _own_pool(graph, opt, None, None)
    own = [r for _, r in sorted(pool, key=lambda x: x[0])]
    forks = score_forks(graph, opt, opt.schedule) if deadline is None else score_forks(graph, opt, opt.schedule,
                                                                                       deadline=deadline)
    if forks is None:
        return own, None
    ustream = unit_streams(opt, opt.schedule, graph)[1]
    U = opt.units
    ids = [nd.id for nd in graph.nodes]
    order_ids = tuple(ids[m] for m in expand(U, U.fixed_order, ustream)[0])
    sizes = _unit_sizes(U)
    count = 0
    prefixes = _prefixes(len(forks))
    for _, order in _fork_orders(forks):
        for forks_m in _prefix_forks(order, prefixes):
            node_streams = _node_streams(U, _assign(ustream, forks_m), sizes)
            if not len(node_streams) or int(node_streams.max()) == 0:   # (``candidate_pool``'s ``add`` of its Schedule)
                s = _give_back(graph, opt, ustream, forks_m, scored=False)[0]
                key = (s.order, s.streams)
            else:
                key = (order_ids, tuple(node_streams.tolist()))
            if key not in seen:
                seen.add(key)
                count += 1
    return own, count


def thinned(graph: Graph, opt: Optimized, base: Schedule, max_events: int, stats: dict[str, int] | None = None
            ) -> tuple[Schedule, float, int, int] | None:
    """(schedule, makespan, forks given back, forks) of ``base`` (a two-stream schedule) with the fewest of its
    forks given back, least time saved per event first, that leave at most ``max_events`` events; None where it
    has no forks or all of them given back are over the cap.

    Why: the give-backs of ``candidate_pool`` start from the chosen schedule (up to 1,024 streams), whose forks given
    back land on the side streams they forked from, and take prefixes of at most ``MAX_PREFIXES`` lengths: on
    ``random_dag(3000)`` with ``streams=1024, max_events=50`` the last prefix short of all 2,515 forks kept 259
    events, so the plan fell back to the serial order (63,040 us) where two streams with 46 events take 61,947 us.
    Merging to two streams first, then thinning that schedule's forks (a galloping search down from all of them on
    the prefix length, each probe a replay stopped at the cap) finds such a schedule. The number of events is not monotone in the prefix, so
    this is a greedy answer, not the best one; the caller keeps it only where it is faster than every other.

    Every fork given back (the first probe) does not depend on the forks' scores, so it is probed before they are
    made: where it is over the cap, so is the answer (None), and scoring the forks (a replay of the rest of the order
    per fork) was most of the thinning's time for nothing. On ``layered_graph(2000)`` the 3- and 4-stream bases
    (267 and 393 forks) were scored then dropped so, under every cap of ``docs/experiments/events_s57.py``: ``forks_of``
    gives forks back in order of their first unit's index, not in issue order, so a fork whose source's fork comes
    later in it lands on that source's old side stream (377 of those units stay off stream 0 with all given back).
    ``stats`` (tests: operation counts): "bases" and "scored" (forks scored) are increased."""
    U = opt.units
    ustream = unit_streams(opt, base, graph)[1]
    node_order = expand(U, U.fixed_order, ustream)[0]
    sizes = _unit_sizes(U)
    runs: dict[int, tuple[list[int], Replay]] = {}   # the runs that fit, by forks given back

    def fits_forks(m: int, given: list[tuple[tuple[int, ...], int]]) -> bool:
        streams = _node_streams(U, _assign(ustream, given), sizes).tolist()
        if not any(streams):   # one stream: no events (not replayed)
            return True
        run = Replay(graph, node_order, streams, opt.cost, opt.event_us, record=True, cap=max_events)
        if run.events > max_events:
            return False
        runs[m] = (streams, run)
        return True

    if stats is not None:
        stats["bases"] = stats.get("bases", 0) + 1
    # every fork given back, in ``forks_of``'s order (by first unit): what ``fits(F)`` gives back, whatever the scores
    every = sorted(find_forks(graph, opt, base), key=lambda f: min(f[0]))
    F = len(every)
    if not F:
        return None
    hi = F   # every fork given back: a two-stream schedule's forks all return to stream 0, no events
    if not fits_forks(hi, every):
        return None
    forks = score_forks(graph, opt, base)
    if stats is not None:
        stats["scored"] = stats.get("scored", 0) + len(forks)
    by_events = sorted(forks, key=lambda f: (f.saves_us / f.events if f.events > 0 else float("inf"),
                                             min(f.units)))
    firsts = [min(f.units) for f in by_events]

    def forks_of(m: int) -> list[tuple[tuple[int, ...], int]]:
        return [(by_events[k].units, by_events[k].source) for k in sorted(range(m), key=firsts.__getitem__)]

    def fits(m: int) -> bool:
        return fits_forks(m, forks_of(m))

    step = 1   # galloping down from F: a low cap fits only near F, and every probe that fits is a whole replay
    while hi - step >= 0 and fits(hi - step):
        hi -= step
        step *= 2
    lo = max(hi - step + 1, 0)   # hi - step did not fit (or is below 0)
    while lo < hi:   # the fewest given back that fit between, were the count monotone
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    if hi not in runs:   # one stream: the serial order's own
        return None
    streams, run = runs[hi]   # (its schedule as ``candidate_pool`` makes a give-back's from its replay)
    ids = [nd.id for nd in graph.nodes]
    waits = np.array(run.pairs, dtype=np.int64).reshape(-1, 2)
    key = (tuple(ids[m] for m in node_order), tuple(streams))
    return _schedule_of(key, waits, ids, {}), run.makespan, hi, F


def low_memory_streams(graph: Graph, opt: Optimized, max_events: int | None = None
                       ) -> list[tuple[str, Schedule, float]]:
    """(name, schedule, makespan) of the low-memory serial order (``memorder``) spread over each of
    ``LOW_MEMORY_STREAMS`` streams (at most ``opt.max_streams``; the issue order kept, each unit on the stream where it
    starts first: ``ordered_streams``), those with at most ``max_events`` events; a count whose schedule left a
    stream unused ends the list (more streams give the same schedule).

    Why: every other candidate of a memory budget issues in the optimizer's orders (highest bottom level first), which
    run every branch's first step before any branch's last: the give-backs only move forks home, in that order. So
    ``plan(examples.moe(8), streams="auto", memory_budget=61440)`` fell back to the serial plan (49,152 B, 363 us
    simulated) while the low-memory order with its experts spread over two streams needs 53,248 B and runs in 187 us.
    The stream count is the concurrency given back: the budget tries these beside the others, fastest first."""
    U = opt.units
    if opt.max_streams < 2 or len(U.members) < 2:
        return []
    order = memory_unit_order(graph, U)
    out = []
    for k in LOW_MEMORY_STREAMS:
        if k > opt.max_streams:
            break
        ustream = ordered_streams(U, order, k, opt.event_us)
        s, ms = scored_schedule(graph, U, order, ustream, opt.cost, opt.event_us)
        if s.num_streams > 1 and (max_events is None or len(s.events) <= max_events):
            out.append((f"{LOW_MEMORY_NAME}-k{k}", s, ms))
        if max(ustream, default=0) < k - 1:
            break
    return out


#: the name of ``low_memory_streams``' candidates (with ``-k<streams>``)
LOW_MEMORY_NAME = "low-memory"


def ordered_streams(U, order: list[int], k: int, event_us: float) -> list[int]:
    """The stream (of ``k``) per unit of ``U`` when the units are issued in ``order`` and each goes to the stream where
    it can start first (an event's latency added where a dependency ran on another stream; ties to the lowest):
    the earliest-finish list scheduler with the issue order fixed. A written view's node counts as its latest
    dependency (its finish and stream), found once. Linear in the units and dependencies times ``k``."""
    n = len(U.members)
    finish = [0.0] * len(U.deps)
    stream = [0] * len(U.deps)
    view_done = [False] * (len(U.deps) - n)

    def latest(v: int) -> None:   # a view node's latest dependency, its dependencies' first (iterative: deep chains)
        todo = [v]
        while todo:
            x = todo[-1]
            pending = [d for d in U.deps[x] if d >= n and not view_done[d - n]]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            if not view_done[x - n]:
                view_done[x - n] = True
                d = max(U.deps[x], key=finish.__getitem__, default=None)
                if d is not None:
                    finish[x], stream[x] = finish[d], stream[d]

    free = [0.0] * k
    for u in order:
        for d in U.deps[u]:
            if d >= n and not view_done[d - n]:
                latest(d)
        best_t, best_s = math.inf, 0
        for s in range(k):
            t = max([free[s]] + [finish[d] + (event_us if stream[d] != s else 0.0) for d in U.deps[u]])
            if t < best_t:
                best_t, best_s = t, s
        stream[u], finish[u] = best_s, best_t + U.cost[u]
        free[best_s] = finish[u]
    return stream[:n]


def give_back_order(graph: Graph, opt: Optimized) -> tuple[str, ...]:
    """The issue order (node ids) of every fork give-back of ``opt``: the list scheduler with every stream fixed
    issues units in ``opt.units.fixed_order`` whatever the streams (``streams.fixed_order``)."""
    ids = [nd.id for nd in graph.nodes]
    return tuple(ids[m] for u in opt.units.fixed_order for m in opt.units.members[u])


def fewer_streams(graph: Graph, opt: Optimized) -> list[tuple[str, Schedule, float]]:
    """(name, schedule, makespan) of the ``eft`` and ``listed`` schedulers at each of ``FEWER_STREAMS`` below
    ``opt.max_streams``, where the optimizer's candidate set shrank to ``max_streams`` alone (above
    ``LARGE_UNITS`` units); none otherwise (it had every stream count).

    Why: giving forks back moves them onto the stream they forked from and never onto fewer side streams, so a
    20,000-branch fan-out and join on 1,024 streams under ``max_events=10`` was given back to the serial order
    (200,020 us simulated), while on 8 streams it kept 6 of them (75,020 us); with ``max_events=1000``, 101,830 us
    where 64 streams take 3,154 us. A budget or a cap wants these fewer-stream schedules ("merging streams"), as
    the optimizer's own candidates give them below ``LARGE_UNITS`` units."""
    U = opt.units
    if not opt.large:
        return []
    out = []
    for k in FEWER_STREAMS:
        if k >= opt.max_streams:
            break
        for name, listed in ((f"list-eft-k{k}", False), (f"listed-k{k}", True)):
            order, ustream = list_schedule(U, k, opt.event_us, listed=listed)
            s, ms = scored_schedule(graph, U, order, ustream, opt.cost, opt.event_us)
            out.append((name, s, ms))
    return out


def cap_streams(graph: Graph, opt: Optimized, max_events: int | None,
                fewer: list[tuple[str, Schedule, float]] = ()) -> list[tuple[str, Schedule, float]]:
    """(name, schedule, makespan) of the ``eft`` and ``listed`` schedulers at ``max_events // 2 + 1`` streams, where
    the optimizer tried no such stream count (it tries 2..8, 12, 16, 24, 32, 48, 64 and ``max_streams``), then at
    the stream counts ``capsearch.bisect_streams`` probes for the most streams whose own schedule fits the cap.

    Why: a fork and join spends two events per side stream, so ``max_events`` pays for ``max_events // 2`` side
    streams; the nearest count tried below it left events unspent. ``wide_graph(5000)`` on 1,024 streams with
    ``event_us=0`` under ``max_events=100`` took the 48-stream schedule (94 events, 2,200 us simulated) while 51
    streams fit the cap exactly (100 events, 2,072 us). Other graphs pay otherwise (``b`` fork-joins in sequence pay
    ``2 b`` per side stream), which the bisection on the events each count needs finds; ``fewer`` (``fewer_streams``)
    are more known counts for it."""
    if max_events is None:
        return []
    out = []
    k = max_events // 2 + 1
    tried = {c.schedule.num_streams for c in opt.pool}
    if 2 < k < opt.max_streams and k not in tried and not (opt.large and k in FEWER_STREAMS):
        for name, listed in ((f"list-eft-cap-k{k}", False), (f"listed-cap-k{k}", True)):
            order, ustream = list_schedule(opt.units, k, opt.event_us, listed=listed)
            s, ms = scored_schedule(graph, opt.units, order, ustream, opt.cost, opt.event_us)
            out.append((name, s, ms))
    names_events = [(c.name, len(c.schedule.events)) for c in opt.pool]
    names_events += [(name, len(s.events)) for name, s, _ in list(fewer) + out]
    return out + bisect_streams(graph, opt, max_events, names_events)


def _schedule_of(key: tuple[tuple[str, ...], tuple[int, ...]], waits: np.ndarray, ids: list[str],
                 made: dict[tuple[int, int], Event]) -> Schedule:
    """The Schedule of issue order and streams ``key`` with the events ``waits`` ((after, before) node indices, as
    ``Replay`` takes them): what ``scored_schedule`` makes of the same replay, its ``Event`` objects shared."""
    evs = []
    for ab in map(tuple, waits.tolist()):
        e = made.get(ab)
        if e is None:
            e = made[ab] = Event(ids[ab[0]], ids[ab[1]])
        evs.append(e)
    return Schedule(key[0], key[1], tuple(evs))


class _LazyReduced(Reduced):
    """A fork give-back whose ``schedule`` is made when first asked for: a memory budget plans only the fastest of
    them (``MAX_GIVE_BACK_PLANS``), so the rest need only the makespan and the number of events, which
    ``candidate_pool`` has from its replay. The schedule made is the one ``candidate_pool`` built for every
    give-back before (the same order, streams and events, from the same replay)."""

    def __init__(self, make: Callable[[], Schedule], makespan_us: float, forks_serialised: int,
                 forks_total: int, name: str = ""):
        for key, value in (("_make", make), ("makespan_us", makespan_us), ("forks_serialised", forks_serialised),
                           ("forks_total", forks_total), ("name", name)):
            object.__setattr__(self, key, value)

    @property
    def schedule(self) -> Schedule:   # type: ignore[override]
        made = self.__dict__.get("_schedule")
        if made is None:
            made = self._make()
            object.__setattr__(self, "_schedule", made)
        return made


def _assign(ustream: list[int], forks: list[tuple[tuple[int, ...], int]]) -> list[int]:
    """The stream of each unit with ``forks`` (in issue order) given back: ``_give_back``'s assignment."""
    assign = list(ustream)
    for units, src in forks:
        target = assign[src] if src not in units else 0
        for u in units:
            assign[u] = target
    return assign


def _first_difference(a: np.ndarray, b: np.ndarray) -> int:
    """The first position where ``a`` and ``b`` (of one length) differ, or their length."""
    diff = np.flatnonzero(a != b)
    return int(diff[0]) if len(diff) else len(a)


def _node_streams(U, assign: list[int], sizes: np.ndarray | None = None) -> np.ndarray:
    """``expand(U, U.fixed_order, assign)``'s streams (each node its unit's stream, renumbered by first use in
    that order), in numpy: ``candidate_pool`` makes them for every prefix of two fork lists, 96 lists of every
    node, and the loop over nodes was a tenth of a budgeted plan's pool. ``sizes``: each unit's node count in
    ``U.fixed_order`` (``_unit_sizes``), made once for the 96 lists (made here if not given)."""
    if sizes is None:
        sizes = _unit_sizes(U)
    units = np.asarray(U.fixed_order, dtype=np.int64)
    per_unit = np.asarray(assign, dtype=np.int64)[units] if len(units) else np.zeros(0, dtype=np.int64)
    if not len(per_unit):
        return per_unit
    ids, first = np.unique(per_unit, return_index=True)
    renum = np.empty(int(ids[-1]) + 1, dtype=np.int64)
    renum[ids[np.argsort(first)]] = np.arange(len(ids))
    return np.repeat(renum[per_unit], sizes)


def _unit_sizes(U) -> np.ndarray:
    """The number of nodes of each unit of ``U.fixed_order``, in that order (``_node_streams``'s repeats)."""
    return np.fromiter((len(U.members[u]) for u in U.fixed_order), dtype=np.int64, count=len(U.fixed_order))


def check_max_events(max_events) -> None:
    """ScheduleError naming ``max_events`` unless it is a non-negative integer below 2**63 (not a bool, a float or a
    string): checked by ``graph_optimize`` before it schedules anything, and by ``limit_events`` for its other
    callers."""
    from ..errors import ScheduleError
    from ..planfile import INT64

    # below 2**63 as plan(max_events=...) and --max-events take it (graph_optimize took 2**63 where plan refused it)
    if isinstance(max_events, bool) or not isinstance(max_events, int) or not 0 <= max_events < INT64:
        raise ScheduleError(f"max_events must be a non-negative integer below 2**63 (the most events the schedule may "
                            f"have), not {_short(max_events)}")


def limit_events(graph: Graph, opt: Optimized, max_events: int) -> Reduced:
    """The fastest candidate with at most ``max_events`` events (the serial order has none), or the fastest schedule
    at a few stream counts thinned to the cap where that is faster (``capsearch.thin_streams``)."""
    return limit_events_pool(graph, opt, max_events)[0]


def limit_events_pool(graph: Graph, opt: Optimized, max_events: int
                      ) -> tuple[Reduced, tuple[Reduced, ...] | None]:
    """``limit_events``' answer and the ``candidate_pool`` it chose from (``forks=True``; None where the chosen
    schedule fits the cap and no pool was built). Why: a memory budget beside the cap (``plan(max_events=N,
    memory_budget=B)``) tries that very pool when the first plan is over the budget (``budget_tiers``), which built
    it again: every candidate's events found, every fork scored and every prefix replayed twice."""
    check_max_events(max_events)
    if len(opt.schedule.events) <= max_events:
        return Reduced(opt.schedule, opt.makespan_us, 0, 0, opt.chosen), None
    fewer = fewer_streams(graph, opt)
    pool = tuple(candidate_pool(graph, opt, max_events, fewer=fewer))
    best = pool[0]
    found = thin_streams(opt, max_events, best.makespan_us, lambda base: thinned(graph, opt, base, max_events), fewer)
    if found is None:
        return best, pool
    name, s, ms, m, f = found
    return Reduced(s, ms, m, f, name), pool


def without_forks(graph: Graph, opt: Optimized, pool: tuple[Reduced, ...]) -> tuple[Reduced, ...]:
    """``candidate_pool(graph, opt, max_events, forks=False)`` made from the same call's ``forks=True`` ``pool``: its
    candidates without fork give-backs, and the serial order (as no give-back) where the pool had it only as the
    last of the give-backs, or as a give-back of every fork: at the place the sort gives it, last among equals."""
    own = [r for r in pool if r.forks_total == 0]
    serial = serial_schedule(graph)
    if any(r.schedule.order == serial.order and r.schedule.streams == serial.streams for r in own):
        return tuple(own)
    ms = schedule_makespan(graph, serial, opt.cost, opt.event_us)
    key = pool_rank(ms, serial)
    at = sum(1 for r in own if pool_rank(r.makespan_us, r.schedule) <= key)
    return tuple(own[:at]) + (Reduced(serial, ms, 0, 0, "serial"),) + tuple(own[at:])
