"""The list scheduler as it was before its candidate index (session 16): every stream in use tried for
every unit, dense clocks. Kept as the reference ``list_schedule`` must agree with exactly."""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def reference_list_schedule(U, k: int, event_us: float, *, mode: str = "eft",
                  fixed: Sequence[int] | None = None, chain_pred: Sequence[int] | None = None,
                  listed: bool = False) -> tuple[list[int], list[int]]:
    """Critical-path list scheduling of units onto ``k`` streams.

    ``fixed[u]`` pins unit ``u`` to a stream; ``chain_pred[u]`` (a unit or -1) pins ``u`` to the
    stream of its chain predecessor; ``listed`` takes ready units in listed order instead of by
    priority (depth-first like the author's order: frugal with memory). Returns (units in issue
    order, stream per unit).
    """
    n = len(U.members)
    indeg = [len(d) for d in U.deps]
    prio = [float(u) for u in range(n)] if listed else [-r for r in U.rank[:n]]
    heap = [(prio[u], u) for u in range(n) if indeg[u] == 0]
    heapq.heapify(heap)
    free = [0.0] * k
    know = [[0] * k for _ in range(k)]
    count = [0] * k
    end = [0.0] * n
    stream = [-1] * n
    seq = [0] * n
    clock: list[list[int] | None] = [None] * n
    order: list[int] = []
    # a written view's node, once done: {stream: its latest-placed unit} over the view's writers
    last_on: dict[int, dict[int, int]] = {}
    # streams 0 .. used - 1 have units; the others are all alike (free at 0, knowing nothing), so only
    # the lowest of them, which wins their tie, is tried; and a unit's clock ends at ``used`` (the rest
    # are zeros): streams the graph gives no work cost nothing per unit
    used = 0

    def latest_per_stream(ds: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for d in ds:
            for sd, w in ({stream[d]: d} if d < n else last_on[d]).items():
                if sd not in out or seq[w] > seq[out[sd]]:
                    out[sd] = w
        return out

    while heap:
        _, u = heapq.heappop(heap)
        if fixed is not None:
            cands: Sequence[int] = (fixed[u],)
        elif chain_pred is not None and chain_pred[u] >= 0:
            cands = (stream[chain_pred[u]],)
        else:
            cands = range(min(k, used + 1))
        # Reading views, u waits for all their writers, but only each stream's latest one matters:
        # an earlier one on that stream ends no later and is known wherever the latest is, so the
        # start time, the streams to wait for and the clock are the same as over all of them.
        ds = U.deps[u]
        if ds and ds[-1] >= n:
            ds = tuple(latest_per_stream(ds).values())
        best = None
        for s in cands:
            t = free[s]
            ks = know[s]
            latest: dict[int, int] = {}
            for d in ds:
                sd = stream[d]
                if sd == s or ks[sd] > seq[d]:
                    if end[d] > t:
                        t = end[d]
                    continue
                if end[d] + event_us > t:
                    t = end[d] + event_us
                if sd not in latest or seq[d] > seq[latest[sd]]:
                    latest[sd] = d
            key = (t + U.cost[u] if mode == "eft" else t, len(latest), free[s], s)
            if best is None or key < best[0]:
                best = (key, s, t, latest)
        assert best is not None
        _, s, t, latest = best
        newk = list(know[s])
        for d in latest.values():
            cd = clock[d]
            assert cd is not None
            newk[:len(cd)] = map(max, newk, cd)
        count[s] += 1
        newk[s] = count[s]
        know[s] = newk
        used = max(used, s + 1)
        clock[u] = newk if used == k else newk[:used]
        stream[u], seq[u] = s, count[s] - 1
        end[u] = t + U.cost[u]
        free[s] = end[u]
        order.append(u)
        done = [u]
        while done:  # a view is done once its writers are: on to its readers and the views below
            for v in U.succs[done.pop()]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    if v < n:
                        heapq.heappush(heap, (prio[v], v))
                    else:
                        last_on[v] = latest_per_stream(U.deps[v])
                        done.append(v)
    return order, stream
