"""Contiguous stages of a list of units: the pure algorithm behind the device split.

It sees unit costs, weight bytes, where a stage may end and the bytes each cut would copy, never a
graph, so it can be tested exhaustively against brute force on small lists.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from ..errors import BudgetError, ScheduleError
from ..errors import short_repr as _short


def partition(cost: Sequence[float], weight: Sequence[int], allowed_end: Sequence[bool], n: int,
              capacity: int | Sequence[int] | None = None, cut_bytes: Sequence[int] | None = None,
              slack: float | None = None,
              shared: Sequence[tuple[int, Sequence[int]]] = ()) -> tuple[tuple[int, int], ...]:
    """Split units ``0..U-1`` into ``n`` contiguous stages ``(start, stop)``.

    Minimises the largest stage cost, then the largest stage weight, subject to every stage's weight
    being at most ``capacity`` (one number for every stage, or one per stage: stage ``d`` runs on device ``d``);
    a stage may end after unit ``i`` only where ``allowed_end[i]`` (the last unit always may). Stages are
    non-empty where the allowed ends permit; the rest are empty ``(U, U)`` at the end. Raises BudgetError
    (naming the device and both byte counts) when the weights cannot fit ``n`` stages of ``capacity``.
    (Filling each device in turn as far as it goes stays the test of a cost: a stage's weight only falls as
    its start moves later, whatever each device holds.)

    With ``cut_bytes`` (bytes that cross a boundary after unit ``i``), any split whose largest stage
    cost is within ``slack`` (default: the largest unit's cost) of the optimum may be taken instead,
    and the one crossing the fewest bytes is (then the most even costs, then weights): a split at a
    layer boundary copies one residual, a split inside a layer copies several activations.

    ``shared``: weights read by more than one unit, as ``(bytes, the units that read them, ascending)``; their
    bytes are in ``weight`` at the first of those units. A stage that reads one but starts after its first unit
    holds a replica (tied embeddings), so its weight is that of every weight it reads (``_StageWeights``).
    """
    U = len(cost)
    if n < 1:
        raise ScheduleError(f"devices must be a positive integer, not {_short(n)}")
    if U == 0:
        return ((0, 0),) * n
    pc = [0.0] * (U + 1)
    pw = [0] * (U + 1)
    for i in range(U):
        pc[i + 1] = pc[i] + float(cost[i])
        pw[i + 1] = pw[i] + int(weight[i])
    prev_end = [-1] * U
    last = -1
    for i in range(U):
        if allowed_end[i] or i == U - 1:
            last = i
        prev_end[i] = last
    caps = _per_stage(capacity, n, pw[U])
    cap = max(caps)
    sw = _StageWeights(pw, shared)

    def furthest(s: int, T: float, W: int) -> int:
        """The furthest allowed end of a stage starting at ``s`` within cost T and weight W, or -1."""
        i_c = bisect_right(pc, pc[s] + T * (1 + 1e-12) + 1e-12, lo=s) - 2
        i_w = sw.last_within(s, W)
        i = min(i_c, i_w, U - 1)
        if i < s:
            return -1
        e = prev_end[i]
        return e if e >= s else -1

    def greedy(T: float, W: int) -> list[int] | None:
        """The ends of a split within cost T and weight W, filling each device as far as it goes, or None."""
        ends: list[int] = []
        s = 0
        while s < U:
            if len(ends) == n:
                return None
            e = furthest(s, T, W)
            if e < 0:
                return None
            ends.append(e)
            s = e + 1
        return ends

    def spread(T: float, W: int) -> list[int] | None:
        """``greedy`` for devices of different capacities: filling a device as far as it goes may leave the
        next, smaller one a unit it cannot hold that a later, larger one could ([0, 0, 1] bytes over units of
        0, 0, 1 byte: device 0 takes both empty units, device 1 is left the byte). Every end reachable after
        each stage instead (each start's ends are an interval: one sweep per stage; an end that leaves the
        devices still needed too few cuts is none), the most stages that end the list, traced back; None unless
        they leave no device empty that the allowed ends could fill (a device too small for any stage is an
        error, not a device set up to run nothing)."""
        starts = {0}   # the positions the next stage may start at
        trace: list[dict[int, int]] = []
        spread_starts.clear()
        best = 0
        for d in range(n):
            spread_starts.append(starts)
            reached: dict[int, int] = {}
            reach, origin = -1, -1   # the furthest end a start so far allows, and that start
            for e in range(min(starts), U):
                if e in starts:
                    f = furthest(e, T, min(W, caps[d]))
                    if f > reach:
                        reach, origin = f, e
                if e <= reach and prev_end[e] == e and room[e] >= need - d - 1:
                    reached[e] = origin
            trace.append(reached)
            if U - 1 in reached:
                best = d + 1
            starts = {e + 1 for e in reached if e + 1 < U}
            if not starts:
                break
        if best < need:
            return None
        ends, e = [], U - 1
        for d in range(best - 1, -1, -1):
            ends.append(e)
            e = trace[d][e] - 1
        return ends[::-1]

    need = min(n, 1 + sum(1 for i in range(U - 1) if allowed_end[i]))   # the devices the cuts can fill
    spread_starts: list[set[int]] = []   # per stage, where ``spread`` found it may start
    room = [0] * U   # the ends a stage may take after unit e: what is left for the devices after its stage
    for e in range(U - 2, -1, -1):
        room[e] = room[e + 1] + (prev_end[e + 1] == e + 1)
    uniform = len(set(caps)) == 1
    if not uniform:
        greedy = spread   # noqa: F811 - one capacity for every device keeps the greedy fill (and its plans)

    if greedy(float("inf"), cap) is None:
        if not uniform:
            _spread_error(sw, prev_end, U, need, caps, spread_starts)
        _capacity_error(sw, prev_end, U, n, caps, furthest)
    # the smallest feasible cost threshold, by bisection between a lower bound and the total
    lo, hi = max(max(float(c) for c in cost), pc[U] / n), pc[U]
    if greedy(lo, cap) is not None:
        hi = lo
    else:
        for _ in range(200):
            if hi - lo <= 1e-10 * max(hi, 1e-300):
                break
            mid = (lo + hi) / 2
            if greedy(mid, cap) is not None:
                hi = mid
            else:
                lo = mid
    ends = greedy(hi, cap)
    assert ends is not None
    t_star = max(pc[e + 1] - pc[s] for s, e in zip([0] + [x + 1 for x in ends[:-1]], ends))
    # then the smallest weight cap at that cost (integers: exact)
    wlo, whi = max(int(w) for w in weight), cap
    if greedy(t_star, wlo) is not None:
        whi = wlo
    while wlo < whi:
        mid = (wlo + whi) // 2
        if greedy(t_star, mid) is not None:
            whi = mid
        else:
            wlo = mid + 1
    ends = greedy(t_star, whi) or ends
    stages = [(s, e + 1) for s, e in zip([0] + [x + 1 for x in ends[:-1]], ends)]
    limit = t_star + (max(float(c) for c in cost) if slack is None else float(slack))
    if cut_bytes is not None and U <= REFINE_MAX_UNITS and (
            (n - 1) * _candidate_stages(pc, pw, allowed_end, limit, cap) <= REFINE_MAX_STEPS):
        refined = _fewest_bytes(pc, sw, allowed_end, n, limit, caps, cut_bytes)
        if refined is not None and len(refined) >= len(stages):
            stages = refined
    # use every device: split the costliest splittable stage at its most balanced allowed end (with one
    # capacity per device, the first such split whose stages, each moved to its new device, still fit)
    while len(stages) < n:
        keys = []
        for k, (s, t) in enumerate(stages):
            for e in range(s, t - 1):
                if allowed_end[e]:
                    a, b = pc[e + 1] - pc[s], pc[t] - pc[e + 1]
                    keys.append((-(pc[t] - pc[s]), max(a, b), k, e))
        split = None
        for _, _, k, e in sorted(keys) if not uniform else ([min(keys)] if keys else []):
            s, t = stages[k]
            cand = stages[:k] + [(s, e + 1), (e + 1, t)] + stages[k + 1:]
            if uniform or all(sw.of(a, b - 1) <= caps[d] for d, (a, b) in enumerate(cand)):
                split = cand
                break
        if split is None:
            break
        stages = split
    stages += [(U, U)] * (n - len(stages))
    return tuple(stages)


#: the crossing-bytes refinement is quadratic in the units; larger graphs keep the minimax split
REFINE_MAX_UNITS = 3000
#: and its DP takes (devices - 1) x (stages within the cost limit) steps, which is about units^2 where stages
#: are a few units long, but devices x units^2 / 2 where they may be anything (zero-cost nodes: views, or
#: ``cost=0``): 2,000 such nodes on 32 devices took 56 s, 3,000 on 1,024 hours. Above this many steps
#: (a few seconds) the minimax split is kept too.
REFINE_MAX_STEPS = 2 * REFINE_MAX_UNITS ** 2


def _per_stage(capacity: int | Sequence[int] | None, n: int, total: int) -> list[int]:
    """Each stage's weight capacity: ``total`` (all the weights: no bound) for None, one number for every stage,
    or the sequence as given (one per stage; ``split_devices`` checks it holds ``n``)."""
    if capacity is None:
        return [total] * n
    if isinstance(capacity, int):
        return [int(capacity)] * n
    caps = [int(c) for c in capacity]
    if len(caps) != n:
        raise BudgetError(f"device_capacity lists {len(caps)} capacities for {n} devices: give one per device")
    return caps


def _candidate_stages(pc: list[float], pw: list[int], allowed_end: Sequence[bool], limit: float, cap: int) -> int:
    """How many (start, end) stages ``_fewest_bytes`` tries per stage count: for each unit a stage may end
    after, the stages ending there within cost ``limit`` and weight ``cap`` (two pointers: prefix sums grow)."""
    U = len(pc) - 1
    tol = limit * (1 + 1e-12) + 1e-12
    total, s = 0, 0
    for i in range(U):
        while pc[i + 1] - pc[s] > tol or pw[i + 1] - pw[s] > cap:
            s += 1
        if allowed_end[i] or i == U - 1:
            total += i - s + 2   # (the loop also tries the first start past the limit)
    return total


def _fewest_bytes(pc: list[float], sw: _StageWeights, allowed_end: Sequence[bool], n: int, limit: float,
                  caps: Sequence[int], cut_bytes: Sequence[int]) -> list[tuple[int, int]] | None:
    """Stages with cost <= limit and weight <= their device's cap (stage k on device k) minimising (crossing
    bytes, sum of squared stage costs, sum of squared stage weights), with as many stages as possible up to
    ``n`` (a DP over ends)."""
    U = len(pc) - 1
    pw = sw.pw
    tol = limit * (1 + 1e-12) + 1e-12
    ok_end = [bool(allowed_end[i]) or i == U - 1 for i in range(U)]
    best: list[list[tuple | None]] = [[None] * U for _ in range(n + 1)]
    arg = [[-1] * U for _ in range(n + 1)]
    band = _reachable_band(pc, tol, n)
    for i in range(U):
        c, w = pc[i + 1], pw[i + 1]
        if c > tol or w > caps[0]:
            break
        if ok_end[i]:
            best[1][i] = (int(cut_bytes[i]) if i < U - 1 else 0, c * c, w * w)
    for k in range(2, n + 1):
        prev, cur, cur_arg, cap = best[k - 1], best[k], arg[k], caps[k - 1]
        for i in range(*band[k]):
            if not ok_end[i]:
                continue
            cb = int(cut_bytes[i]) if i < U - 1 else 0
            grow = sw.growing(i)
            for j in range(i - 1, -1, -1):  # the stage is units j+1..i; it only grows as j falls
                c, w = pc[i + 1] - pc[j + 1], grow(j + 1)
                if c > tol or w > cap:
                    break
                p = prev[j]
                if p is None:
                    continue
                cand = (p[0] + cb, p[1] + c * c, p[2] + w * w)
                if cur[i] is None or cand < cur[i]:
                    cur[i], cur_arg[i] = cand, j
    for k in range(n, 0, -1):
        if best[k][U - 1] is not None:
            stages = []
            i = U - 1
            for kk in range(k, 0, -1):
                j = arg[kk][i] if kk > 1 else -1
                stages.append((j + 1, i + 1))
                i = j
            return stages[::-1]
    return None


def _reachable_band(pc: list[float], tol: float, n: int) -> list[tuple[int, int]]:
    """Per stage count ``k`` (index 1..n), the range ``(lo, hi)`` of ends ``i`` that ``_fewest_bytes``'s DP need
    visit: ``k`` stages of cost at most ``tol`` can cover units ``0..i`` (``i <= hi - 1``), and ``n - k`` more can
    cover the rest (``i >= lo``). Judged on costs alone (weights and allowed ends only forbid more), by the same
    float differences the DP compares, so every state outside is one the DP leaves empty or one no split of the
    units ends through: the plan is the same, the work is not. Why: the DP walked every end for every stage count,
    ``devices x units x stage length`` steps, though a stage count's ends lie in a band about one stage wide; on
    a 3,000-node chain split over 256 devices it took 9.6 of the plan's 23 s (CPU, round 74).
    Costs below 0 (never a node's: a graph's costs are checked) leave every range whole."""
    U = len(pc) - 1
    whole = [(0, U)] * (n + 1)
    if any(pc[i + 1] < pc[i] for i in range(U)):
        return whole
    # reach[x + 1]: the furthest end one stage from ``x`` (units x+1..) covers, x = -1 .. U-2 (-1: none reached)
    # (the stage's cost grows with its end and falls as its start moves later: two pointers)
    reach = [-1] * (U + 1)
    i = -1
    for x in range(-1, U - 1):
        i = max(i, x)
        while i + 1 < U and pc[i + 2] - pc[x + 1] <= tol:
            i += 1
        reach[x + 1] = i if i > x else -1
    inf = n + 1
    need = [inf] * U        # the fewest stages covering units x+1..U-1 (non-increasing in x)
    need[U - 1] = 0
    for x in range(U - 2, -1, -1):
        r = reach[x + 1]
        need[x] = inf if r < 0 else min(inf, 1 + need[r])
    band = [(0, 0)] * (n + 1)
    far = -1                # the furthest end k stages cover
    lo = 0                  # the first end from which n - k stages cover the rest (rises with k)
    for k in range(1, n + 1):
        far = U - 1 if far == U - 1 else reach[far + 1]
        if far < 0:
            break
        while lo < U - 1 and need[lo] > n - k:
            lo += 1
        band[k] = (lo, far + 1)
    return band


def _capacity_error(sw: _StageWeights, prev_end: list[int], U: int, n: int, caps: Sequence[int], furthest) -> None:
    """Name the first device whose weights cannot fit, filling devices greedily from the front."""
    s = 0
    for d in range(n):
        cap = caps[d]
        e = furthest(s, float("inf"), cap) if d < n - 1 else -1
        if e < 0:
            if d == n - 1:
                end = U - 1
            else:
                end = next(i for i in range(s, U) if prev_end[i] >= s)
            need = sw.of(s, end)
            note = "with weights also read on earlier devices, replicated; " if need > sw.pw[end + 1] - sw.pw[s] else ""
            raise BudgetError.of(f"device {d} needs {need} B of weights ({note}units {s}..{end}), "
                                 "over {device_capacity!n} B", device_capacity=cap)
        s = e + 1
    raise BudgetError(f"the weights do not fit {n} devices of {list(caps)} B")  # pragma: no cover


def _spread_error(sw: _StageWeights, prev_end: list[int], U: int, need: int, caps: Sequence[int],
                  starts: list[set[int]]) -> None:
    """Name the device no split can give a stage that fits (``spread`` found none over ``need`` devices, each
    given a stage): the first device whose every possible stage, from where the devices before it may end
    (leaving cuts enough for the rest), is over its capacity, with the least it would have to hold; the last
    device needed must take the rest of the units."""
    for d in range(need):
        last = d == need - 1
        if d >= len(starts) or not starts[d]:
            break
        options = [(sw.of(s, U - 1 if last else _next_end(prev_end, s, U)), s) for s in sorted(starts[d])]
        least, s = min(options)
        if least > caps[d]:
            end = U - 1 if last else _next_end(prev_end, s, U)
            raise BudgetError.of(f"device {d} needs at least {least} B of weights (units {s}..{end}, the least any "
                                 "split leaves it), over {device_capacity!n} B", device_capacity=caps[d])
    raise BudgetError(f"the weights do not fit {len(caps)} devices of {list(caps)} B with a stage on each of the "
                      f"{need} devices the cuts can fill")


def _next_end(prev_end: list[int], s: int, U: int) -> int:
    """The first unit at or after ``s`` that a stage may end after."""
    return next(i for i in range(s, U) if prev_end[i] >= s)


class _StageWeights:
    """The weight bytes of a stage of units ``s..e``: every weight it reads, each once (``pw``: prefix sums of the
    bytes each unit brings first), plus a replica of each ``shared`` weight whose first reader is before ``s`` and
    that some unit in ``s..e`` reads. Counting a weight at its first reader only took a tied embedding's replica
    on a later device for free: the split then overran ``device_capacity`` there and was refused, while another
    split fit. Without shared weights every query is the prefix-sum one."""

    def __init__(self, pw: list[int], shared: Sequence[tuple[int, Sequence[int]]]):
        self.pw = pw
        self.shared = [(int(size), list(units)) for size, units in shared if size > 0 and len(units) > 1]
        self.at: dict[int, list[int]] = {}   # unit -> the shared weights (indices) it reads
        for k, (_size, units) in enumerate(self.shared):
            for u in units:
                self.at.setdefault(u, []).append(k)

    def _replicas(self, s: int) -> list[tuple[int, int]]:
        """(the first unit at or after ``s`` that reads it, bytes) of each shared weight first read before ``s``."""
        out = []
        for size, units in self.shared:
            if units[0] < s:
                k = bisect_left(units, s)
                if k < len(units):
                    out.append((units[k], size))
        return sorted(out)

    def of(self, s: int, e: int) -> int:
        """The weight bytes of stage ``s..e``."""
        return self.pw[e + 1] - self.pw[s] + sum(size for u, size in self._replicas(s) if u <= e)

    def last_within(self, s: int, W: int) -> int:
        """The last unit ``e`` such that stage ``s..e`` holds at most ``W`` bytes (below ``s`` if none does): the
        bytes grow with ``e``, by a replica's at the unit that first reads it."""
        pw, extra, fits = self.pw, 0, s - 1   # ``fits``: a stage end known to hold at most W
        for u, size in self._replicas(s) if self.shared else ():
            e = bisect_right(pw, pw[s] + W - extra, lo=s) - 2
            if e < u:
                return max(e, fits)
            extra += size   # from unit u on; the stage up to u - 1 fit without it
            fits = u - 1
        return max(bisect_right(pw, pw[s] + W - extra, lo=s) - 2, fits)

    def growing(self, e: int):
        """``w(s)``: the weight bytes of stage ``s..e`` for ``s`` falling from ``e`` by one each call (the DP's
        inner loop), a replica counted from the last reader at or before ``e`` until its first reader joins."""
        pw = self.pw
        if not self.shared:
            return lambda s: pw[e + 1] - pw[s]
        seen: set[int] = set()
        extra = 0

        def w(s: int) -> int:
            nonlocal extra
            for k in self.at.get(s, ()):
                size, units = self.shared[k]
                if k not in seen:
                    seen.add(k)
                    if units[0] < s:
                        extra += size
                elif units[0] == s:   # its first reader joined: counted in pw from now on
                    extra -= size
            return pw[e + 1] - pw[s] + extra
        return w
