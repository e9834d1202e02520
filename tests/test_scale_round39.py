"""Round 39 scale: what round 38 measured and left, each pinned by a count or by memory, never by a time.

1. The verifier kept a vector clock per node: N x streams ints (800 MB for 100,000 nodes on 1,024 streams). A node's
   clock is now its stream's last join's, shared, or a stored clock but for a few streams (``verify._clocks``):
   memory is measured (tracemalloc) on plans of 256 streams, and every node's clock is checked against dense clocks
   built here from the order and events, component by component, on random plans of 1-48 streams.
2. ``plan(devices=N, device_capacity=C)`` solved every device again on each round that gave one device's concurrency
   or order back (2 N + 1 rounds at most): a device whose problem did not change keeps its solution
   (``problem.same_problem``); the solves are counted, and the plans compared with those made without the reuse.
3. ``search`` proved one byte above each exhausted capacity: an exhausted try now proves the least capacity at which
   one of its failed tests would pass (``PackingSearch.above``), the search's own tries unchanged (the same packings).

Reproduce the before/after table: ``PYTHONPATH=<tree> python tests/scale_round39_bench.py --out DIR`` (see there).
"""

from __future__ import annotations

import importlib
import random
import tracemalloc

import numpy as np
import pytest
from scale_round39_bench import chains_plan, layers_plan

import memplan
import memplan.examples
from memplan.problem import BufferProblem
from memplan.verify import check

PLAN_MODULE = importlib.import_module("memplan.plan")


# ---- 1. the verifier's clocks ----------------------------------------------------------------------------------

def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make", [chains_plan, layers_plan])
def test_clock_memory_is_not_nodes_times_streams(make):
    """1,024 nodes on 256 streams: the clocks alone were 1,024 x 256 x 8 B = 2 MB, a list per node (the whole check's
    peak was 1.3 and 2.7 KB a node), now one list per join that takes no stored clock over, one per fork/join layer
    (390 and 520 B a node, about as on 64 streams)."""
    g, pd = make(1024, streams=256)
    plan = memplan.plan_from_dict(pd)
    assert check(g, plan) == []
    peak = _peak(lambda: check(g, plan))
    assert peak < 800 * len(g.nodes), peak


def _dense_clocks(order: list[tuple[int, int]], events: list[tuple[int, int]], S: int) -> list[list[int]]:
    """Vector clocks the plain way (a list per node, every wait joined), to compare ``_clocks`` with."""
    waits: dict[int, list[int]] = {}
    for a, b in events:
        waits.setdefault(b, []).append(a)
    tip = [[0] * S for _ in range(S)]
    clock: dict[int, list[int]] = {}
    for x, s in order:
        c = list(tip[s])
        for a in waits.get(x, ()):
            c = [max(p, q) for p, q in zip(c, clock[a])]
        c[s] += 1
        clock[x] = tip[s] = c
    return [clock[x] for x in range(len(order))]


@pytest.mark.parametrize("seed", range(12))
def test_shared_clocks_read_as_dense_ones(seed):
    from memplan.verify import _clock_reader, _clocks

    rnd = random.Random(3900 + seed)
    n = rnd.randint(1, 300)
    S = rnd.choice([1, 2, 17, 48])
    streams = [rnd.randrange(S) for _ in range(n)]
    if rnd.random() < 0.5:   # fork/join layers: the shape whose joins take a stored clock over
        streams = [0 if i % S == 0 else rnd.randrange(1, max(S, 2)) % S for i in range(n)]
    density = rnd.choice([0.002, 0.02, 0.2])
    events = [(a, b) for b in range(n) for a in range(b) if streams[a] != streams[b] and rnd.random() < density]
    events += [(b - S, b) for b in range(S, n, S)]   # and fork/join waits
    order = list(zip(range(n), streams))
    waits: dict[int, list[int]] = {}
    for a, b in events:
        waits.setdefault(b, []).append(a)
    pos = list(range(n))
    idx, rep = _clocks(list(range(n)), streams, waits, pos, S)
    at = _clock_reader(streams, idx, rep)
    dense = _dense_clocks(order, events, S)
    assert [[at(x, t) for t in range(S)] for x in range(n)] == dense
    if S >= 17:   # shared: fewer lists than nodes
        assert len({id(r[0]) for r in rep}) <= n


def test_a_missing_wait_under_shared_clocks_is_refused_naming_the_reader():
    g, pd = layers_plan(96, streams=32)
    assert check(g, memplan.plan_from_dict(pd)) == []
    pd["events"] = [e for e in pd["events"] if e != {"after": "nj0", "before": "nw1_7"}]
    found = check(g, memplan.plan_from_dict(pd))
    assert [r for r, _ in found] == [2] and "'nw1_7' reads 'j0'" in found[0][1], found


# ---- 2. devices under a capacity ------------------------------------------------------------------------------

def _needs(planned) -> list[int]:
    return [a + w for a, w in zip(planned.plan.device_arena_bytes, planned.split.weight_bytes)]


@pytest.mark.parametrize("devices", [2, 3, 4])
def test_a_capacity_round_solves_only_the_devices_whose_problem_changed(monkeypatch, devices):
    """moe over N devices, one byte under its largest need: the last device runs its stage in a low-memory order, a
    second round. That round solved all N devices again (2 N solves); the others' problems are the same (their HB
    columns of the last device's stream aside, which nothing reads), so N + 1 solves; the same plan as with every
    device solved again."""
    g = memplan.examples.moe()
    cap = max(_needs(memplan.plan_graph(g, devices=devices))) - 1
    solves = []
    real = PLAN_MODULE.solve
    monkeypatch.setattr(PLAN_MODULE, "solve", lambda problem, *a, **k: solves.append(len(problem)) or real(problem, *a, **k))
    planned = memplan.plan_graph(g, devices=devices, device_capacity=cap)
    assert planned.plan.solver["split"]["low_memory_devices"] == [devices - 1]
    assert len(solves) == devices + 1, solves
    monkeypatch.setattr(PLAN_MODULE, "same_problem", lambda a, b: False)
    again = memplan.plan_graph(g, devices=devices, device_capacity=cap)
    assert planned.plan.to_json() == again.plan.to_json()


def test_same_problem_compares_every_field_a_solver_reads():
    from memplan.problem import same_problem

    p = BufferProblem(np.array([4, 8]), np.array([0, 1]), np.array([3, 3]))
    assert same_problem(p, BufferProblem(np.array([4, 8]), np.array([0, 1]), np.array([3, 3])))
    for other in (BufferProblem(np.array([4, 9]), np.array([0, 1]), np.array([3, 3])),
                  BufferProblem(np.array([4, 8]), np.array([0, 2]), np.array([3, 3])),
                  BufferProblem(np.array([4, 8]), np.array([0, 1]), np.array([3, 3]), alignment=4),
                  BufferProblem(np.array([4, 8]), np.array([0, 1]), np.array([3, 3]), compatible=frozenset({(0, 1)})),
                  BufferProblem(np.array([4, 8]), np.array([0, 1]), np.array([3, 3]), capacity=100)):
        assert not same_problem(p, other)


def test_devices_reuse_keeps_plans_across_options(monkeypatch):
    """A few graphs, device counts, streams and solvers under capacities that make rounds: the same plan JSON (or the
    same refusal) with the reuse as without it."""
    from memplan.benchmarks.scale import transformer_graph, wide_graph

    def run(g, **kw):
        try:
            return memplan.plan_graph(g, **kw).plan.to_json()
        except memplan.MemplanError as exc:
            return f"{type(exc).__name__}: {exc}"

    real = PLAN_MODULE.same_problem
    for g, kw in ((wide_graph(30), dict(devices=3, streams="auto")), (transformer_graph(3), dict(devices=2)),
                  (memplan.examples.moe(), dict(devices=2, solver="size", streams=2))):
        need = max(_needs(memplan.plan_graph(g, **kw)))
        for cap in (need - 1, need * 3 // 4):
            if True:
                monkeypatch.setattr(PLAN_MODULE, "same_problem", real)
                a = run(g, device_capacity=cap, **kw)
                monkeypatch.setattr(PLAN_MODULE, "same_problem", lambda x, y: False)
                assert run(g, device_capacity=cap, **kw) == a, (g.name, kw, cap)


# ---- 3. the search's proven bound ------------------------------------------------------------------------------

U = 1 << 40


def _all_live_problem() -> BufferProblem:
    """Nine buffers of 1-4 x 2**40 bytes, all live at once, a random half of the pairs in place (compatible): a
    non-interval problem of huge sizes whose optimum is 10 x 2**40 (``buffer_oracle.optimum``, every order of
    canonical placements) and whose default plan takes 11."""
    rnd = random.Random(30)
    n = rnd.randint(7, 10)
    sizes = [rnd.randint(1, 4) * U for _ in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    comp = set(rnd.sample(pairs, int(len(pairs) * rnd.uniform(0.4, 0.7))))
    return BufferProblem(np.array(sizes), np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64),
                         compatible=frozenset(comp))


def test_an_exhausted_capacity_proves_what_its_failed_tests_need(monkeypatch):
    """The default's short search and then ``search`` proved one byte above each exhausted capacity (9.51 x 2**40
    after the default): ``search`` at a time limit of 1 s found the optimum only after 6,113 nodes, and at 0.05 s
    ended FEASIBLE. An exhausted try now proves the least capacity its failed tests need (10 x 2**40 here, the
    optimum): proven in 46 nodes. ``PackingSearch._over`` made a no-op is the search as it was (each exhausted try
    proves ``cap + 1``)."""
    from memplan.solvers import SolveOptions, solve
    from memplan.solvers.search_tree import PackingSearch

    p = _all_live_problem()
    new = solve(p, "search", SolveOptions(time_limit=0.05))
    assert (new.arena, new.status.name, new.info["bound"]) == (10 * U, "OPTIMAL", 10 * U)
    assert new.info["nodes"] < 100, new.info
    monkeypatch.setattr(PackingSearch, "_over", lambda self, need: None)
    old = solve(p, "search", SolveOptions(time_limit=0.05))
    assert old.status.name == "FEASIBLE" and old.info["bound"] < 10 * U and old.info["nodes"] > 5 * new.info["nodes"]


def test_a_search_run_makes_the_same_tries(monkeypatch):
    """Within one search the bound from failed tests only ends the solve and is reported: the capacities tried, and
    so the packings found, are those of the search without it (every try's result compared)."""
    from memplan.solvers import search

    p = _all_live_problem()
    trace: list = []
    real = search._Minimiser.try_capacity

    def traced(self, cap, limit):
        out = real(self, cap, limit)
        trace.append((cap, limit, out, self.proven, self.best))
        return out

    monkeypatch.setattr(search._Minimiser, "try_capacity", traced)
    from memplan.solvers import SolveOptions
    from memplan.solvers import solve as solve_named
    from memplan.solvers.search_tree import PackingSearch

    heur = (solve_named(p, "greedy"), solve_named(p, "size"))
    a = search.solve(p, SolveOptions(time_limit=0.2), heuristics=heur)
    new = list(trace)
    trace.clear()
    monkeypatch.setattr(PackingSearch, "_over", lambda self, need: None)
    b = search.solve(p, SolveOptions(time_limit=0.2), heuristics=heur)
    assert new and new == trace[:len(new)] and a.offsets.tolist() == b.offsets.tolist()
    assert a.info["bound"] >= b.info["bound"]
