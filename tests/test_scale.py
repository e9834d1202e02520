"""Scale without timing: the fast paths give the same placements, and no step lists pairs of a wide node.

Performance itself is measured by ``memplan bench scale`` (docs/benchmarks.md, Scale), never by timed
tests. What is tested here is structural: the incremental and stream-by-stream sweeps place exactly
as the pairwise ones do, and planning one node with thousands of outputs never lists a number of
blocks or conflicting pairs that grows with the square of its outputs.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import draw_scheduled

import memplan
from memplan.benchmarks.scale import INPLACE_SHAPES, inplace_graph, wide_graph
from memplan.lifetimes import buffer_problem
from memplan.problem import BufferProblem
from memplan.solvers import greedy, placement, size


def test_occupancy_answers_as_best_fit_over_the_same_blocks():
    """Random overlapping blocks, and blocks placed where ``best_fit`` puts them (packed side by side, as the
    solvers place them; greedy then takes some out and puts them back)."""
    for trial in range(800):
        rng = random.Random(trial)
        align = rng.choice([1, 4, 16])
        packed = trial % 2 == 1
        occ = placement.Occupancy(align)
        blocks: list[tuple[int, int]] = []
        for _ in range(rng.randint(1, 40)):
            if blocks and rng.random() < 0.4:
                occ.remove(*blocks.pop(rng.randrange(len(blocks))))
            else:
                size = rng.randint(1, 60)
                s = occ.best_fit(size) if packed else rng.randrange(0, 200) // align * align
                blocks.append((s, s + size))
                occ.add(*blocks[-1])
            # the same segments, covers and gaps as an Occupancy built from scratch (its form is canonical:
            # best_fit then answers alike whatever order the blocks came and went in)
            fresh = placement.Occupancy(align)
            for b in blocks:
                fresh._change(b[0], b[1], 1)
            assert (occ.pts, occ.cov, occ.gaps) == (fresh.pts, fresh.cov, fresh.gaps), (trial, blocks)
            want = rng.randint(1, 50)
            assert occ.best_fit(want) == placement.best_fit(list(blocks), want, align)
            at = rng.randrange(0, 220) // align * align
            assert occ.fits_at(at, want) == placement.fits_at(blocks, at, want)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_without_answers_as_the_index_with_those_blocks_removed(data):
    """``placement.Without`` (greedy's many-stream query, blocks left out without removing them) against the
    plain reference: an ``Occupancy`` from which those blocks were removed."""
    align = data.draw(st.sampled_from([1, 4, 16]))
    occ, blocks = placement.Occupancy(align), []
    for length, packed, at in data.draw(st.lists(st.tuples(st.integers(1, 60), st.booleans(), st.integers(0, 300)),
                                               max_size=30)):
        s = occ.best_fit(length) if packed else at // align * align
        blocks.append((s, s + length))
        occ.add(*blocks[-1])
    out = [b for b, k in zip(blocks, data.draw(st.lists(st.booleans(), min_size=len(blocks), max_size=len(blocks))))
           if k]
    ref = placement.Occupancy(align)
    for b in blocks:
        ref.add(*b)
    for b in out:
        ref.remove(*b)
    view = placement.Without(occ, out)
    for want, at in data.draw(st.lists(st.tuples(st.integers(0, 80), st.integers(0, 400)), min_size=1, max_size=8)):
        assert view.best_fit(max(want, 1)) == ref.best_fit(max(want, 1))
        assert view.fits_at(at // align * align, want) == ref.fits_at(at // align * align, want)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_window_fit_leaving_blocks_out_is_first_fit_over_the_rest(data):
    """``WindowFit.first_fit(without=...)`` (the size planner's in-place partners, left out of the query)
    against the plain reference: ``first_fit`` over the listed blocks that meet the window, less those left
    out. Blocks are packed by the index (as the planner places them) or put anywhere, overlapping."""
    align = data.draw(st.sampled_from([1, 4, 16]))
    horizon = data.draw(st.integers(2, 12))
    spans = st.tuples(st.integers(0, horizon - 1), st.integers(1, horizon))
    specs = data.draw(st.lists(st.tuples(spans, st.integers(1, 60), st.booleans(), st.integers(0, 300)), max_size=30))
    queries = data.draw(st.lists(st.tuples(spans, st.integers(1, 80)), min_size=1, max_size=6))
    times = [t for (lo, n), *_ in specs + queries for t in (lo, lo + n)]
    fit = placement.WindowFit(times, align, counted=True)
    blocks: list[tuple[int, int, int, int]] = []
    for (lo, n), length, packed, at in specs:
        s = fit.first_fit(lo, lo + n, length) if packed else at // align * align
        blocks.append((lo, lo + n, s, s + length))
        fit.add(*blocks[-1])
    for (lo, n), length in queries:
        hi = lo + n
        keep = data.draw(st.lists(st.booleans(), min_size=len(blocks), max_size=len(blocks)))
        out = [b for b, k in zip(blocks, keep) if not k]
        rest = [(s, e) for (bl, bu, s, e), k in zip(blocks, keep) if k and bl < hi and bu > lo]
        assert fit.first_fit(lo, hi, length, out) == placement.first_fit(rest, length, align)


def _random_inplace_problem(rng: random.Random) -> BufferProblem:
    """Many in-place pairs: buffer ``b`` starting when its partner ``a`` ends (one node overwriting ``a``),
    some partners shared (views of one root overwritten in place), and sizes that tie."""
    n, horizon = rng.randint(2, 40), rng.randint(2, 12)
    lower = [rng.randrange(horizon) for _ in range(n)]
    upper = [lo + rng.randint(1, horizon) for lo in lower]
    sizes = [rng.choice([0, 8, 16, 16, 100, 256, 300]) for _ in range(n)]
    pairs = set()
    hub = rng.randrange(n)
    for _ in range(rng.randint(1, n)):
        a, b = rng.sample(range(n), 2)
        if rng.random() < 0.3:
            a = hub if b != hub else a
        if rng.random() < 0.7:   # b starts where a ends (a's last access writes b): they meet at one time
            lower[b] = max(upper[a] - 1, 0)
            upper[b] = max(upper[b], lower[b] + 1)
        pairs.add((min(a, b), max(a, b)))
    return BufferProblem(sizes=sizes, lower=lower, upper=upper, alignment=rng.choice([1, 8, 256]),
                         compatible=frozenset(pairs), inplace=tuple((b, a) for a, b in pairs))


def _random_interval_problem(rng: random.Random) -> BufferProblem:
    n, horizon = rng.randint(1, 50), rng.randint(2, 30)
    lower = [rng.randrange(horizon) for _ in range(n)]
    upper = [lo + rng.randint(1, horizon) for lo in lower]
    sizes = [rng.choice([0, 1, 3, 8, 16, 100, 256, 300]) for _ in range(n)]
    compatible = frozenset()
    if n > 2 and rng.random() < 0.3:
        compatible = frozenset(tuple(sorted(rng.sample(range(n), 2))) for _ in range(3))
    return BufferProblem(sizes=sizes, lower=lower, upper=upper, alignment=rng.choice([1, 4, 256]),
                         compatible=compatible, inplace=tuple((b, a) for a, b in compatible))


@pytest.mark.parametrize("make", [_random_interval_problem, _random_inplace_problem])
def test_window_fit_places_as_the_pairwise_size_planner(monkeypatch, make):
    """The size planner's windows route places as its pairwise route, on interval problems and on problems
    full of in-place pairs (the windows route leaves each buffer's placed partners out of its ``WindowFit``
    query; the pairwise route drops them from the conflicting pairs)."""
    for trial in range(300):
        p = make(random.Random(trial))
        monkeypatch.setattr(size, "DENSE_OVERLAPS", 1 << 40)
        pairwise = size.solve(p).offsets.tolist()
        monkeypatch.setattr(size, "DENSE_OVERLAPS", -1)
        assert size.dense_route(p) == "windows"
        assert size.solve(p).offsets.tolist() == pairwise, trial


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_dense_sweeps_place_as_the_pairwise_ones(data):
    g, _order, _, sch = draw_scheduled(data)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    saved = greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS, size.DENSE_OVERLAPS, greedy.SEEN_WORK
    try:
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS = 1 << 60, 1 << 40
        pairwise = greedy.solve(p).offsets.tolist()
        # every multi-stream problem goes through one Occupancy less the buffers seen (``_sweep_seen``),
        # every interval one through an Occupancy
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS = -1, -1
        assert greedy.solve(p).offsets.tolist() == pairwise
        greedy.SEEN_WORK = 0  # ``_sweep_seen`` gives up at once (when a stream has seen any): stream by stream
        assert greedy.solve(p).offsets.tolist() == pairwise
        if p.order is None:
            size.DENSE_OVERLAPS = 1 << 40
            pairwise = size.solve(p).offsets.tolist()
            size.DENSE_OVERLAPS = -1
            assert size.solve(p).offsets.tolist() == pairwise
    finally:
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS, size.DENSE_OVERLAPS, greedy.SEEN_WORK = saved


def test_conflict_pairs_are_the_conflict_relation():
    for trial in range(200):
        p = _random_interval_problem(random.Random(trial))
        a, b = p.conflict_pairs()
        got = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist())}
        want = {(i, j) for i in range(len(p)) for j in range(i + 1, len(p)) if p.conflicts(i, j)}
        assert got == want, trial


def _listed_blocks(monkeypatch) -> dict[str, int]:
    """A dict whose "blocks" counts the blocks the planners walk in ``placement.gaps``, a per-block Python
    loop: what listing every block a buffer must avoid shows up as."""
    listed = {"blocks": 0}
    gaps = placement.gaps

    def counting_gaps(blocks, alignment):
        listed["blocks"] += len(blocks)
        return gaps(blocks, alignment)

    monkeypatch.setattr(placement, "gaps", counting_gaps)
    return listed


def _assert_plans_list_few_blocks(monkeypatch, g: memplan.Graph, streams_modes) -> None:
    """``memplan.plan`` of ``g`` under each ``streams`` lists at most a few blocks per tensor."""
    listed = _listed_blocks(monkeypatch)
    for streams in streams_modes:
        listed["blocks"] = 0
        p = memplan.plan(g, streams=streams)
        assert p.arena_bytes >= p.lower_bound_bytes > 0
        assert listed["blocks"] <= 20 * len(g.tensors), (streams, listed)
    monkeypatch.undo()


def test_a_wide_node_never_lists_pairs_of_its_outputs(monkeypatch):
    """2,000 outputs (4,002 buffers, 2M overlapping pairs): serial and on graph_optimize's streams,
    the planners list at most a few blocks and conflicting pairs per buffer, not one per pair."""
    listed = _listed_blocks(monkeypatch)
    listed["pairs"] = 0
    pairs = BufferProblem.conflict_pairs

    def counting_pairs(self, *args, **kw):
        out = pairs(self, *args, **kw)
        listed["pairs"] += len(out[0])
        return out

    monkeypatch.setattr(BufferProblem, "conflict_pairs", counting_pairs)
    k = 2000
    g = wide_graph(k)
    for streams in (None, "auto"):
        listed.update(blocks=0, pairs=0)
        p = memplan.plan(g, streams=streams)
        assert p.arena_bytes >= p.lower_bound_bytes > 0
        assert listed["blocks"] + listed["pairs"] <= 20 * len(g.tensors), (streams, listed)
    assert BufferProblem(sizes=np.full(k, 8), lower=np.zeros(k), upper=np.ones(k)).overlap_count() == k * (k - 1) // 2


def _inputs_graph(k: int) -> memplan.Graph:
    """k independent nodes, each reading an input of its own and writing an output (1 KiB each), plus one
    node that overwrites an input in place: every input is live from the start, all at once."""
    b = memplan.GraphBuilder("inputs")
    for c in range(k):
        b.tensor(f"x{c}", 1024 + 256 * (c % 3), "input")
        b.tensor(f"y{c}", 1024, "output")
        b.node(f"n{c}", "OP", [f"x{c}"], [f"y{c}"], cost=1.0)
    b.tensor("z", 1024, "output")
    b.node("inplace", "OP", ["x0", "y0"], ["z"], inplace={"z": "x0"}, cost=1.0)
    return b.build()


def test_many_inputs_are_placed_without_listing_each_other(monkeypatch):
    """Inputs are all live from the start and conflict with one another, so on several streams each was
    placed by listing every input placed before it (``_place_listed``: 20,000 inputs on 4 streams took 100 s
    for a plan serial in 2 s). While only inputs are placed, every placed buffer is exactly what an input
    conflicts with, which the sweep's Occupancy already holds: the planners now list at most a few blocks
    per buffer, and place as the listing (and the pairwise sweeps) did."""
    _assert_plans_list_few_blocks(monkeypatch, _inputs_graph(2000), (4, "auto"))
    small = _inputs_graph(300)
    sch = memplan.graph_optimize(small, 4)
    sch = getattr(sch, "schedule", sch)
    prob = buffer_problem(small, memplan.build_happens_before(small, sch))
    saved = greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS, greedy.SEEN_WORK
    try:
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS = 1 << 60, 1 << 40
        pairwise = greedy.solve(prob).offsets.tolist()
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS = -1, -1
        assert greedy.solve(prob).offsets.tolist() == pairwise        # _sweep_seen
        greedy.SEEN_WORK = 0
        assert greedy.solve(prob).offsets.tolist() == pairwise        # _sweep_streams
    finally:
        greedy.DENSE_HB_PAIRS, greedy.DENSE_OVERLAPS, greedy.SEEN_WORK = saved


def _inplace_inputs_graph(k: int) -> memplan.Graph:
    """k independent nodes, each overwriting its own input in place with its output."""
    b = memplan.GraphBuilder("inplace-inputs")
    for c in range(k):
        b.tensor(f"x{c}", 1024, "input")
        b.tensor(f"y{c}", 1024, "output")
        b.node(f"n{c}", "OP", [f"x{c}"], [f"y{c}"], inplace={f"y{c}": f"x{c}"}, cost=1.0)
    return b.build()


def test_many_in_place_pairs_are_placed_in_bulk(monkeypatch):
    """Every buffer of an in-place pair may overlap its partner, so the size planner's window index (which
    cannot leave one block out) lists its blocks: 20,000 nodes that each overwrite their input took 204 s
    serial and over 300 s on 4 streams (each of 40,000 buffers walked ~20,000 blocks in Python; the clique
    bound hashed the in-place pairs once per chunk). The window index now leaves a buffer's partners out of
    its query and the in-place test is a binary search: no block goes through the per-block ``gaps`` loop,
    and the size planner places as its pairwise path does."""
    _assert_plans_list_few_blocks(monkeypatch, _inplace_inputs_graph(2000), (None, 4))
    small = _inplace_inputs_graph(300)
    prob = buffer_problem(small, memplan.build_happens_before(small, memplan.serial_schedule(small)))
    monkeypatch.setattr(size, "DENSE_OVERLAPS", 1 << 40)
    pairwise = size.solve(prob).offsets.tolist()
    monkeypatch.setattr(size, "DENSE_OVERLAPS", -1)
    assert size.dense_route(prob) == "windows" and size.solve(prob).offsets.tolist() == pairwise


def test_greedy_on_many_streams_allocates_per_pair_not_per_stream(monkeypatch):
    """Independent branches spread over 128 streams: greedy's dense multi-stream sweep kept a table and a
    list of buffers x streams (and an Occupancy and a heap per stream holding every buffer), so
    ``memplan plan --streams 1024`` on 50k branches took 336 s and 18.6 GB. The blocks of a buffer are now
    one Occupancy less the buffers its stream has seen: what it allocates grows with the (buffer, stream)
    pairs accessed or seen. Counted in bytes, not seconds."""
    import tracemalloc

    S, branches = 128, 400
    b = memplan.GraphBuilder("branches")
    b.input("x", 4096)
    stream_of = {}
    for i in range(branches):
        t = b.intermediate(f"t{i}", 1024 * (1 + i % 7))
        b.node(f"a{i}", "UNARY", ["x"], t)
        b.node(f"b{i}", "UNARY", [t], b.output(f"y{i}", 512))
        stream_of[f"a{i}"] = stream_of[f"b{i}"] = i % S
    g = b.build()
    sch = memplan.schedule_with_events(g, [n.id for n in g.nodes], stream_of)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    monkeypatch.setattr(greedy, "DENSE_HB_PAIRS", -1)  # the dense route, as 50k branches take it
    assert greedy._sparse_stream_times(p) is not None
    tracemalloc.start()
    try:
        greedy.solve(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the stream-by-stream sweep took 24 times one 8-byte word per (buffer, stream), this sweep about 0.6
    assert peak < 8 * len(p) * S, peak  # (the same placements: test_dense_sweeps_place_as_the_pairwise_ones)


@pytest.mark.parametrize("shape", INPLACE_SHAPES)
def test_bench_in_place_shapes_place_as_the_pairwise_size_planner(monkeypatch, shape):
    """``memplan bench scale --inplace``'s shapes (one node of many in-place pairs, four such nodes, one node
    over views of one root): the size planner's window route, which leaves partners out of its index
    queries, places as the pairwise route, and every output is allowed over its own input only."""
    g = inplace_graph(300, shape)
    prob = buffer_problem(g, memplan.build_happens_before(g, memplan.serial_schedule(g)))
    assert len(prob.compatible) == 300
    monkeypatch.setattr(size, "DENSE_OVERLAPS", 1 << 40)
    pairwise = size.solve(prob).offsets.tolist()
    monkeypatch.setattr(size, "DENSE_OVERLAPS", -1)
    assert size.dense_route(prob) == "windows" and size.solve(prob).offsets.tolist() == pairwise
    monkeypatch.undo()
    p = memplan.plan(g, solver="size")
    assert p.arena_bytes == p.lower_bound_bytes


# --- session 26: recursion depth ---------------------------------------------------------------


def _brute_clique(nbr, sizes, rounded) -> int:
    """The heaviest clique's value (rounded sizes less the largest rounding), by every subset."""
    best = 0
    n = len(sizes)
    for mask in range(1, 1 << n):
        members = [i for i in range(n) if mask >> i & 1 and sizes[i] > 0]
        if all(b in nbr[a] for a in members for b in members if a != b) and members:
            best = max(best, sum(rounded[i] for i in members) - max(rounded[i] - sizes[i] for i in members))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.floats(0, 1), st.lists(st.sampled_from([0, 1, 100, 256, 300, 512]), min_size=9,
                                                    max_size=9), st.randoms(use_true_random=False))
def test_clique_search_finds_the_heaviest_clique(n, density, sizes, rnd):
    from memplan.problem import _clique_search

    sizes = sizes[:n]
    rounded = [-(-s // 256) * 256 for s in sizes]
    nbr: list[set[int]] = [set() for _ in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            if rnd.random() < density:
                nbr[a].add(b)
                nbr[b].add(a)
    assert _clique_search(nbr, sizes, rounded, 0, budget=10 ** 6) == _brute_clique(nbr, sizes, rounded)


def test_clique_search_on_a_clique_deeper_than_the_recursion_limit():
    # one node reading 1,500 buffers on several streams: every pair conflicts; the size-1 buffer listed last
    # pads most, so no branch is cut before the search is 1,500 members deep (was RecursionError)
    from memplan.problem import _clique_search

    n = 1500
    sizes = [256] * (n - 1) + [1]
    nbr = [set(range(n)) - {i} for i in range(n)]
    assert _clique_search(nbr, sizes, [256] * n, 0, budget=20_000) == 256 * n - 255


def test_devices_replicate_a_weight_view_chain_deeper_than_the_recursion_limit():
    # a node on the second device reads the last of 2,000 chained views of a weight: each view is replicated
    # there, each after its parent (was RecursionError)
    b = memplan.GraphBuilder("deep-weight-views")
    b.input("x", 4096)
    b.weight("w", 1 << 20)
    prev = "w"
    for i in range(2000):
        prev = b.view(f"v{i}", prev, 1 << 20, kind="weight")
    src = "x"
    for i in range(6):
        t = b.output("y", 4096) if i == 5 else b.intermediate(f"t{i}", 4096)
        b.node(f"n{i}", "MUL_MAT", [src, prev if i == 5 else "w"], t, cost=10.0)
        src = t
    planned = memplan.plan_graph(b.build(), devices=2)
    g = planned.graph
    views = [t for t in g.tensors if t.id.startswith("v") and "@dev1" in t.id]
    assert len(views) == 2000
    assert g.tensor("v0@dev1").view_of == "w@dev1" and g.tensor("v1999@dev1").view_of == "v1998@dev1"


def test_a_deep_search_keeps_no_list_of_every_unplaced_buffer_per_frame():
    # 1,500 buffers each live over 9 steps, four of them 1 GiB: no time cut frees up, so the first dive is
    # 1,500 frames deep. Each frame listed and sorted all unplaced buffers (84 MiB here, 6 GB at 10,000
    # buffers); now a frame holds only the next few candidates
    import tracemalloc

    from memplan.solvers import SolveOptions, solve

    n = 1500
    rng = np.random.default_rng(0)
    sizes = rng.choice([1, 16, 64, 256], n)
    sizes[:: n // 4] = 1 << 30
    p = BufferProblem(sizes=sizes, lower=np.arange(n), upper=np.arange(n) + 9, alignment=256)
    tracemalloc.start()
    try:
        sol = solve(p, "search", SolveOptions(time_limit=0.1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sol.arena < (1 << 30) + 4096
    assert peak < 30 << 20, peak


def test_scoring_forks_under_a_memory_budget_replays_a_window_per_fork(monkeypatch):
    # every fork's give-back was replayed from its first unit to the end: quadratic in the nodes (a 10,000-node
    # fan-out/join DAG under memory_budget took 130 s). Past MAX_REPLAY_STEPS each replays a window
    from memplan.generators import fanout_join
    from memplan.optimize import budget, events

    g = fanout_join(600)[0]
    serial = memplan.plan(g).arena_bytes
    steps: list[int] = []
    rescore = events.Replay.rescore   # (each fork's window: to the end while exact; round 41 replays less of it)

    def counted(self, p, stop, moved):
        steps.append(stop - p)
        return rescore(self, p, stop, moved)

    monkeypatch.setattr(events.Replay, "rescore", counted)
    exact = memplan.plan(g, streams="auto", memory_budget=serial)
    exact_steps, forks = sum(steps), len(steps)
    steps.clear()
    monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", 0)
    monkeypatch.setattr(budget, "REPLAY_WINDOW", 8)
    windowed = memplan.plan(g, streams="auto", memory_budget=serial)
    assert forks > 100 and len(steps) == forks
    assert exact_steps > forks * len(g.nodes) // 4       # the exact scores: forks x nodes
    assert sum(steps) < forks * 40                       # windows: a few dozen positions each
    assert windowed.arena_bytes <= serial and exact.arena_bytes <= serial


@pytest.mark.parametrize("seed", range(6))
def test_clique_bound_with_neighbour_bits_is_the_bound_with_sets(monkeypatch, seed):
    from memplan import problem as P
    from memplan.generators import fanout_join
    from memplan.schedule import build_happens_before

    rng = random.Random(seed)
    g, sched = fanout_join(rng.randint(50, 300), seed=seed, max_width=rng.randint(2, 8))
    prob = buffer_problem(g, build_happens_before(g, sched))
    bits = P.clique_lower_bound(prob)
    monkeypatch.setattr(P, "BITSET_BUFFERS", 0)
    assert P.clique_lower_bound(prob) == bits
    assert bits > 0
