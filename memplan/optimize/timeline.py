"""The timeline core shared by the scheduler and ``memplan.simulate``: one pass over issue order.

Kept apart from ``memplan.simulate`` (the user-facing, id-keyed API) so the optimizer can score many
candidate schedules on integer indices without import cycles. See ``memplan.simulate`` for the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ScheduleError


def simulate_indices(order: Sequence[int], streams: Sequence[int], waits: Sequence[tuple[int, int]],
                     cost: Sequence[float], event_us: float) -> tuple[list[float], list[float]]:
    """The core loop on node indices: ``waits`` are ``(after, before)`` pairs; returns (start, end)."""
    n = len(cost)
    waits_of: dict[int, list[int]] = {}
    for a, b in waits:
        waits_of.setdefault(b, []).append(a)
    start = [0.0] * n
    end = [0.0] * n
    done = [False] * n
    free: dict[int, float] = {}
    for v, s in zip(order, streams):
        t = free.get(s, 0.0)
        for a in waits_of.get(v, ()):
            if not done[a]:
                raise ScheduleError("simulate: an event is waited before it is recorded")
            t = max(t, end[a] + event_us)
        start[v] = t
        end[v] = t + cost[v]
        free[s] = end[v]
        done[v] = True
    return start, end
