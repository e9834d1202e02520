"""Round 74 (plan74): the planner on graphs nobody has shown it.

The pipeline split's crossing-bytes DP (``devices.partition._fewest_bytes``) walked every stage end for every stage
count, though the ends one stage count can take lie in a band about one stage wide: a 3,000-node chain split over
256 devices spent 9.6 of its 23 s there. It now walks that band only (``_reachable_band``), with the same split.
"""

from __future__ import annotations

import importlib
import random

import memplan

part = importlib.import_module("memplan.devices.partition")


class _Counting(part._StageWeights):
    """Stage weights that count the DP's visits of a stage end (``growing`` is asked once per end it walks)."""

    def __init__(self, pw, shared=()):
        super().__init__(pw, shared)
        self.visits = 0

    def growing(self, e):
        self.visits += 1
        return super().growing(e)


def _prefix(xs):
    out = [0] * (len(xs) + 1)
    for i, x in enumerate(xs):
        out[i + 1] = out[i] + x
    return out


def test_the_split_dp_walks_only_the_ends_a_stage_count_can_reach():
    """A chain of 1,200 equal units over 100 devices: each stage count's ends lie within a stage or two of
    ``k x 12``, yet every end was walked for every count (99 x 1,200 visits)."""
    U, n = 1200, 100
    pc = [float(x) for x in _prefix([1.0] * U)]
    sw = _Counting(_prefix([0] * U))
    limit = U / n + 1.0
    stages = part._fewest_bytes(pc, sw, [True] * U, n, limit, [0] * n, [8] * U)
    assert stages is not None and len(stages) == n and stages[0][0] == 0 and stages[-1][1] == U
    assert sw.visits < (n - 1) * U // 10, sw.visits


def test_the_band_changes_no_split(monkeypatch):
    """The same stages as the DP over every end, on random units: zero costs (views), shared weights (replicas),
    per-device capacities, forbidden ends and limits from tight to loose."""
    whole = part._reachable_band
    for seed in range(300):
        rng = random.Random(seed)
        U, n = rng.randint(1, 40), rng.randint(1, 10)
        cost = [rng.choice([0.0, 0.0, 1.0, 2.0, 3.5, 0.1, 10.0]) for _ in range(U)]
        weight = [rng.choice([0, 0, 1, 5, 100]) for _ in range(U)]
        allowed = [rng.random() < 0.7 for _ in range(U)]
        cut = [rng.randint(0, 50) for _ in range(U)]
        shared = []
        if U > 2 and rng.random() < 0.3:
            shared = [(rng.randint(1, 50), sorted(rng.sample(range(U), rng.randint(2, min(U, 5)))))]
        pc, pw = [float(x) for x in _prefix(cost)], _prefix(weight)
        caps = [max(weight) * rng.randint(1, 5) for _ in range(n)] if rng.random() < 0.3 else [pw[U]] * n
        for limit in (max(cost), pc[U] / n, pc[U] / n + max(cost), pc[U]):
            banded = part._fewest_bytes(pc, part._StageWeights(pw, shared), allowed, n, limit, caps, cut)
            monkeypatch.setattr(part, "_reachable_band", lambda pc, tol, n: [(0, len(pc) - 1)] * (n + 1))
            walked = part._fewest_bytes(pc, part._StageWeights(pw, shared), allowed, n, limit, caps, cut)
            monkeypatch.setattr(part, "_reachable_band", whole)
            assert banded == walked, (seed, limit)


def test_a_split_over_many_devices_is_planned_and_safe():
    """End to end: a 300-node chain over 64 devices, each stage one arena, the plan verified."""
    b = memplan.GraphBuilder("chain300")
    b.input("x", 1024)
    prev = "x"
    for i in range(300):
        t = b.output(f"t{i}", 1024) if i == 299 else b.intermediate(f"t{i}", 1024)
        b.node(f"n{i}", "OP", [prev], t, cost=1.0)
        prev = t
    planned = memplan.plan_graph(b.build(), devices=64)
    memplan.verify(planned.graph, planned.plan)
    assert planned.plan.streams == 64


class _CountingNumpy:
    """``numpy`` as ``memplan.cut_bound`` sees it, counting ``searchsorted`` calls."""

    def __init__(self, np):
        self._np, self.searches = np, 0

    def __getattr__(self, name):
        return getattr(self._np, name)

    def searchsorted(self, *args, **kwargs):
        self.searches += 1
        return self._np.searchsorted(*args, **kwargs)


def test_the_cut_bound_starts_without_a_search_per_stream(monkeypatch):
    """Each start of the cut bound's ascent placed every stream's threshold by a search of its own: on a split
    over 256 devices each device's problem sees all 256 streams, 9 starts each (2.5 of the 23 s a 3,000-node chain
    took). The thresholds are one count over the nodes issued before the start; the bound is the same (the
    prefix a stream has issued is what the search found)."""
    cb = importlib.import_module("memplan.cut_bound")
    from memplan.generators import fanout_join
    from memplan.lifetimes import buffer_problem, compute_lifetimes

    g, sch = fanout_join(400, max_width=64, streams=64, seed=3)
    hb = memplan.build_happens_before(g, sch)
    lt = compute_lifetimes(g, hb)
    sizes = buffer_problem(g, hb, lt).sizes
    counting = _CountingNumpy(cb.np)
    monkeypatch.setattr(cb, "np", counting)
    bound = cb.cut_lower_bound(hb, lt, sizes, g.alignment)
    assert hb.num_streams >= 32 and counting.searches < hb.num_streams, (hb.num_streams, counting.searches)
    monkeypatch.setattr(cb, "np", counting._np)
    # the thresholds of a start are each stream's nodes issued before it, as a search of each stream finds them
    cut = cb._Cut(hb, lt, sizes, cb.np.array([len(x) for x in hb.stream_nodes]))
    for at in (0, 1, 57, len(hb.pos) // 2, len(hb.pos)):
        cut.start(False, at)
        assert [int(cb.np.searchsorted(hb.pos[nodes], at)) for nodes in hb.stream_nodes] == cut.t.tolist()
    assert bound == cb.cut_lower_bound(hb, lt, sizes, g.alignment) > 0


def _chain(n: int) -> memplan.Graph:
    b = memplan.GraphBuilder(f"chain{n}")
    b.input("x", 1024)
    prev = "x"
    for i in range(n):
        t = b.output(f"t{i}", 1024) if i == n - 1 else b.intermediate(f"t{i}", 1024)
        b.node(f"n{i}", "OP", [prev], t, cost=1.0)
        prev = t
    return b.build()


def test_a_device_problem_s_cut_bound_moves_only_its_own_streams(monkeypatch):
    """A device of a split sees every device's streams, and the cut bound's ascent called ``move`` on each of them
    (up to its budget of 4,096 moves per device) and looked up each one's last node stream by stream, though
    no root of the device is accessed there: 1.9 + 2 s of a 512-device split. Only the streams its roots are accessed
    on move now (the others still count against the budget, so the bound is the same)."""
    cb = importlib.import_module("memplan.cut_bound")
    from memplan.lifetimes import compute_lifetimes, restrict_lifetimes

    split = memplan.split_devices(_chain(200), 32)
    hb = memplan.build_happens_before(split.graph, split.schedule)
    lt = compute_lifetimes(split.graph, hb)
    d = 5
    keep = cb.np.array([split.tensor_device[int(r)] == d for r in lt.roots])
    mine = restrict_lifetimes(lt, keep, hb, range(*split.stream_ranges[d]))
    sizes = cb.np.array([split.graph.tensors[int(r)].size for r in mine.roots], dtype=cb.np.int64)
    moves, ends = [], []
    real_move, real_end = cb._Cut.move, cb._Cut._end
    monkeypatch.setattr(cb._Cut, "move", lambda self, s: moves.append(s) or real_move(self, s))
    monkeypatch.setattr(cb._Cut, "_end", lambda self, s: ends.append(s) or real_end(self, s))
    bound = cb.cut_lower_bound(hb, mine, sizes, split.graph.alignment)
    assert hb.num_streams == 32 and bound >= 1024
    busy = {s for s in range(32) if len(cb._Cut(hb, mine, sizes, cb.np.array([len(x) for x in hb.stream_nodes])).rows[s])}
    assert set(moves) <= busy and len(ends) <= len(moves), (sorted(set(moves)), busy, len(ends))
