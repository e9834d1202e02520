"""Which stream count an event cap is spent on: a search over stream counts under ``max_events``.

Why: the optimizer schedules at a fixed ladder of stream counts (2..8, 12, 16, 24, 32, 48, 64 and ``max_streams``),
and ``cap_streams`` added ``max_events // 2 + 1``, which is the right count only for one fork-join (two events per
side stream). Two things decide the best schedule under a cap on a general DAG:

* ``E(k)``, the events the scheduler's own schedule at ``k`` streams needs, which grows with ``k`` (a fork-join pays
  2 per side stream, ``b`` fork-joins in sequence ``2 b`` per side stream, a random DAG hundreds already at 2 streams).
  The most streams whose own schedule fits the cap lie between the ladder's last count that fits and its first
  that does not; ``bisect_streams`` finds it by interpolation on ``k`` between them (bisection where a probe did
  not halve the gap), per scheduler (``eft``, ``listed``): only where the ladder left a gap above 8 and an event to
  spend, and at most ``PROBE_UNITS`` units scheduled in all (round 56: the search cost up to 2x the capped optimize).
* Where even 2 streams need more events than the cap (a random or layered DAG: 107 events on 2 streams for
  ``random_dag(400)``), the cap is met by giving forks back. Giving back the forks of a many-stream schedule keeps
  few streams busy (``random_dag(400)`` under ``max_events=60`` with ``event_us=0``: 10 streams, 50 events, 7,494 us),
  while thinning a 2-stream schedule's forks to the cap keeps more of its concurrency (59 events, 6,349 us).
  ``thin_streams`` thins the fastest schedule at each of ``THIN_STREAMS`` streams whose events are over the cap and
  keeps the fastest, where it beats the pool's best.

``E(k)`` is not monotone in general (a scheduler may leave streams unused, or place units differently): bisection is
a heuristic that never drops a candidate the pool had, and every schedule is kept only when strictly faster, ties to
the one found first, so the result is deterministic and never slower than the ladder's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .streams import Optimized, list_schedule, scored_schedule

if TYPE_CHECKING:
    from ..graph import Graph
    from ..schedule import Schedule

#: ``budget.thinned``'s answer for one base schedule: (schedule, makespan, forks given back, forks), or None
Thinner = Callable[["Schedule"], "tuple[Schedule, float, int, int] | None"]

#: the stream counts whose fastest schedule is thinned to the cap (``thin_streams``): fewer streams need fewer events
#: per fork kept; on the session-55 benchmark the best thinned base was 2, 3 or 4 streams
THIN_STREAMS = (2, 3, 4)
#: the two schedulers ``cap_streams`` and ``bisect_streams`` run (name prefix, ``listed``)
SCHEDULERS = (("list-eft", False), ("listed", True))

#: ``bisect_streams``'s probes of both schedulers place at most this many units in all (and at least one probe each):
#: a probe is a list schedule of every unit, as costly as the optimizer's own run at ``max_streams``, which alone is
#: all it runs above ``streams.LARGE_UNITS`` units
PROBE_UNITS = 200_000

_LADDER_NAME = re.compile(r"^(list-eft|listed)(?:-cap)?-k(\d+)$")


def known_events(names_events: list[tuple[str, int]]) -> dict[str, dict[int, int]]:
    """{scheduler: {k: events}} of the candidates named ``list-eft-k{k}`` / ``listed-k{k}`` (and ``-cap-``)."""
    out: dict[str, dict[int, int]] = {}
    for name, events in names_events:
        m = _LADDER_NAME.match(name)
        if m:
            out.setdefault(m.group(1), {})[int(m.group(2))] = events
    return out


def bracket(known: dict[int, int], cap: int) -> tuple[int, int] | None:
    """(lo, hi): the most streams known to fit ``cap`` and the fewest above it known not to, where a count lies
    between them; None otherwise (no count fits, every count above fits, or they are neighbours)."""
    fits = [k for k, e in known.items() if e <= cap]
    if not fits:
        return None
    lo = max(fits)
    over = [k for k, e in known.items() if k > lo and e > cap]
    if not over:
        return None
    hi = min(over)
    return (lo, hi) if hi - lo > 1 else None


def next_probe(lo: int, e_lo: int, hi: int, e_hi: int, cap: int, halve: bool) -> int:
    """The stream count ``bisect_streams`` probes next between ``lo`` (``e_lo`` events, within ``cap``) and ``hi``
    (``e_hi``, over it): where the cap falls on the line through the two (``E(k)`` grows about linearly in ``k``: two
    events per side stream of a fork-join, ``2 b`` of ``b`` in sequence), or the middle where ``halve``; always
    strictly between them."""
    mid = (lo + hi) // 2 if halve else lo + (cap - e_lo) * (hi - lo) // (e_hi - e_lo)
    return min(max(mid, lo + 1), hi - 1)


def bisect_streams(graph: Graph, opt: Optimized, max_events: int, names_events: list[tuple[str, int]],
                   stats: dict[str, int] | None = None) -> list[tuple[str, Schedule, float]]:
    """(name, schedule, makespan) of each scheduler's probes while searching ``k`` for the most streams whose own
    schedule has at most ``max_events`` events, between the counts ``names_events`` (candidate names and events)
    bracket it. Each probe is one list schedule and its events (``scored_schedule``).

    Each probe interpolates the cap between the bracket's two counts (``next_probe``), and bisects after a probe that
    did not halve the bracket: plain bisection probed every count of ``ceil(log2(gap))`` halvings, each a list schedule
    at hundreds of streams, where a line through the bracket lands on the answer at once (``wide_graph(21000)`` on
    1,024 streams under ``max_events=1000``: 18 probes between 501 and 1,024 streams, all over the cap, 7 s of a
    16 s search). No probe is made where the bracket's lower count spends the cap already (no event is left for
    another stream), and a scheduler makes at most ``max(1, PROBE_UNITS // (2 * units))`` probes, so that their
    work is bounded by the graph's size. ``stats`` (tests): "probes" is increased by the probes made."""
    known = known_events(names_events)
    per_scheduler = max(1, PROBE_UNITS // (len(SCHEDULERS) * max(len(opt.units.members), 1)))
    out: list[tuple[str, Schedule, float]] = []
    for prefix, listed in SCHEDULERS:
        ks = known.get(prefix, {})
        b = bracket(ks, max_events)
        if b is None:
            continue
        lo, hi = b
        e_lo, e_hi = ks[lo], ks[hi]
        halve = False
        left = per_scheduler
        while hi - lo > 1 and e_lo < max_events and left > 0:
            mid = next_probe(lo, e_lo, hi, e_hi, max_events, halve)
            left -= 1
            order, ustream = list_schedule(opt.units, mid, opt.event_us, listed=listed)
            s, ms = scored_schedule(graph, opt.units, order, ustream, opt.cost, opt.event_us)
            if stats is not None:
                stats["probes"] = stats.get("probes", 0) + 1
            out.append((f"{prefix}-bisect-k{mid}", s, ms))
            width = hi - lo
            if len(s.events) <= max_events:
                lo, e_lo = mid, len(s.events)
            else:
                hi, e_hi = mid, len(s.events)
            halve = not halve and 2 * (hi - lo) > width
    return out


def thin_streams(opt: Optimized, max_events: int, bar_us: float, thin: Thinner,
                 extra: list[tuple[str, Schedule, float]]) -> tuple[str, Schedule, float, int, int] | None:
    """(name, schedule, makespan, forks given back, forks): the fastest of the fastest schedule at each of
    ``THIN_STREAMS`` streams (among the optimizer's candidates and ``extra``) thinned to ``max_events`` by ``thin``
    (``budget.thinned``, handed in so that this module never imports ``budget``, which calls it), where it is
    strictly faster than ``bar_us``; else None. A base within the cap is skipped (the pool had it as it is), and so
    is one no faster than the bar (thinning only slows it)."""
    cands = [(c.makespan_us, c.name, c.schedule) for c in opt.pool] + [(ms, name, s) for name, s, ms in extra]
    found: tuple[str, Schedule, float, int, int] | None = None
    for k in THIN_STREAMS:
        bases = [c for c in cands if c[2].num_streams == k and len(c[2].events) > max_events]
        if not bases:
            continue
        base_ms, base_name, base = min(bases, key=lambda x: (round(x[0], 6), x[1]))
        bar = found[2] if found is not None else bar_us
        if round(base_ms, 6) >= round(bar, 6):
            continue
        got = thin(base)
        if got is None or len(got[0].events) > max_events or round(got[1], 6) >= round(bar, 6):
            continue
        s, ms, m, f = got
        found = (f"{base_name}-thinned-{m}", s, ms, m, f)
    return found
