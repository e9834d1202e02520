"""Round 52: the greedy sweeps put an in-place output over a view at an offset in its root exactly on that view.

Why: since round 51 an in-place output may share its input's root only exactly (``solvers.exact_pairs``): at
``meta["inplace_shift"]`` from the root's offset when the input is a view at an offset. Greedy still tried every
in-place output at its input root's own offset, so on one node writing ``k`` outputs over the ``k`` views of one
root (``bench scale --inplace K --inplace-shape views``) only the first landed right; the others were moved
afterwards (``exact_pairs.separate``: 16 s at ``k = 5000``) or, past ``SEPARATE_WORK``, solved again with every pair
apart: an arena of twice the bound (859.9 MB over a 430 MB bound at ``k = 20000``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules
from test_inplace_round51 import inplace_faults, views_inplace

import memplan
from memplan.benchmarks.scale import inplace_graph
from memplan.lifetimes import buffer_problem
from memplan.optimize.streams import optimize
from memplan.solvers import greedy
from memplan.solvers.exact_pairs import inplace_targets, over_input, pair_shifts, shifted_pairs, strict_pairs


def two_view_updates(k: int) -> memplan.Graph:
    """Two independent branches, each a SPLIT into ``k`` views of one root and an UPDATE writing ``k`` outputs in
    place over them (the first output over the last view: no output lies at the root's first byte), joined at the
    end: on two streams the branches run side by side."""
    b = memplan.GraphBuilder("two-views")
    b.input("x", 4096)
    joined = []
    for br in range(2):
        sizes = [256 * (1 + (j * 7 + br) % 5) for j in range(k)]
        root = b.intermediate(f"a{br}", sum(sizes))
        ins, at = [], 0
        for j, size in enumerate(sizes):
            ins.append(b.view(f"a{br}_{j}", root, size, at))
            at += size
        b.node(f"split{br}", "SPLIT", ["x"], [root], cost=10.0)
        outs = [b.intermediate(f"o{br}_{j}", size) for j, size in enumerate(reversed(sizes))]
        b.node(f"update{br}", "UPDATE", ins, outs, cost=float(k), inplace=dict(zip(outs, reversed(ins))))
        joined.append(b.intermediate(f"c{br}", 4096))
        b.node(f"cat{br}", "CONCAT", outs, [joined[-1]], cost=10.0)
    b.node("join", "ADD", joined, [b.output("y", 4096)], cost=1.0)
    return b.build()


def _problem(graph: memplan.Graph, streams: int):
    sched = memplan.serial_schedule(graph) if streams == 1 else optimize(graph, streams).schedule
    assert sched.num_streams == streams
    return strict_pairs(buffer_problem(graph, memplan.build_happens_before(graph, sched)))


def _exact_everywhere(problem, offsets) -> None:
    shifts = pair_shifts(problem)
    assert any(shifts.values())   # (the case under test: pairs over views at an offset)
    assert shifted_pairs(problem, offsets) == []
    for (a, b), d in shifts.items():
        assert offsets[b] - offsets[a] == d, (problem.names[a], problem.names[b])


@pytest.mark.parametrize("k", [6, 40])   # the live list (few buffers live at once), the Occupancy (many)
def test_serial_greedy_puts_each_output_on_its_view(k):
    g = inplace_graph(k, "views")
    p = _problem(g, 1)
    sol = greedy.solve(p)
    _exact_everywhere(p, sol.offsets)
    assert sol.arena == p.lower_bound


@pytest.mark.parametrize("route", ["pairs", "seen", "streams"])
def test_multi_stream_greedy_puts_each_output_on_its_view(monkeypatch, route):
    """Each of greedy's multi-stream sweeps: the conflicting pairs listed, the seen sweep, the stream by stream one
    (the last two forced by thresholds of 0)."""
    if route != "pairs":
        monkeypatch.setattr(greedy, "DENSE_HB_PAIRS", 0)
        monkeypatch.setattr(greedy, "DENSE_HB_PER_BUFFER", 0)
    if route == "streams":
        monkeypatch.setattr(greedy, "SEEN_WORK", 0)
    g = two_view_updates(12)
    p = _problem(g, 2)
    if route != "pairs":
        assert greedy._sparse_stream_times(p) is not None
    sol = greedy.solve(p)
    _exact_everywhere(p, sol.offsets)


@pytest.mark.parametrize("shape, streams, bulk", [
    ("views40", 1, False), ("views40", 1, True),   # conflicting pairs listed (in numpy: ``bulk``)
    ("views300", 1, False),                       # ``WindowFit`` (many buffers live at once)
    ("two12", 2, False), ("two12", 2, True),       # a multi-stream problem's pairs
])
def test_size_puts_no_output_off_its_place(monkeypatch, shape, streams, bulk):
    """Size's own packing: each shifted pair's output at its exact place where that is free, else clear of its
    partners; never over its input's root off its place (the first fit that ignored partners put the outputs at the
    root's lowest free bytes: every pair but one off its place, solved again apart, twice the bound)."""
    from memplan.solvers import size

    if bulk:
        monkeypatch.setattr(size, "BULK_BLOCKS", 0)
    g = two_view_updates(12) if shape == "two12" else inplace_graph(int(shape[5:]), "views")
    p = _problem(g, streams)
    assert size.dense_route(p) == ("windows" if shape == "views300" else "pairs")
    sol = size.solve(p)
    assert shifted_pairs(p, sol.offsets) == []
    joined = sum(sol.offsets[b] - sol.offsets[a] == d for (a, b), d in pair_shifts(p).items())
    assert joined * 2 >= len(pair_shifts(p))   # (larger buffers placed first may hold exact places: ``y``, ``c0``)


def test_over_input_is_the_exact_place_from_the_arena_s_first_byte_on():
    # (until round 53 also only within the input's root: an output root reaching past it was refused its exact place,
    # ``test_inplace_round53.py``)
    sizes, offsets = [64, 32, 128], [256, 0, 512]
    assert over_input(None, 8, sizes, offsets) is None
    assert over_input((0, 0), 64, sizes, offsets) == 256 and over_input((0, 0), 65, sizes, offsets) == 256
    assert over_input((2, 64), 64, sizes, offsets) == 576 and over_input((2, 96), 64, sizes, offsets) == 608
    assert over_input((0, -8), 72, sizes, offsets) == 248
    assert over_input((1, -8), 8, sizes, offsets) is None   # (before the arena's first byte)


def test_inplace_targets_read_the_shift():
    g = inplace_graph(3, "views")
    p = _problem(g, 1)
    got = {p.names[o]: (p.names[i], d) for o, (i, d) in inplace_targets(p).items()}
    sizes = [g.tensors[g.tensor_index[f"a{j}"]].size for j in range(3)]
    assert got == {"o0": ("a", 0), "o1": ("a", sizes[0]), "o2": ("a", sizes[0] + sizes[1])}


@pytest.mark.parametrize("solver", ["greedy", "auto", "size"])
def test_views_plan_meets_its_bound_without_a_second_solve(monkeypatch, solver):
    """Through ``memplan.plan``: every output on its view, the arena at the bound, and no repair run at all (the old
    packing went through ``exact_pairs.separate`` or, past its work bound, a second solve at twice the arena)."""
    import memplan.solvers as solvers

    def refuse(*a, **k):
        raise AssertionError("the packing needed a repair")

    monkeypatch.setattr(solvers, "separate", refuse)
    monkeypatch.setattr(solvers, "without_pairs", refuse)
    g = inplace_graph(300, "views")
    plan = memplan.plan(g, solver=solver)
    off = plan.offsets()
    exact = sum(off[f"o{j}"] == off[f"a{j}"] for j in range(300))
    if solver == "size":   # (``y``, placed before the outputs it outsizes, holds a few exact places)
        assert exact >= 290 and plan.arena_bytes <= plan.lower_bound_bytes * 1.01
    else:
        assert exact == 300 and plan.arena_bytes == plan.lower_bound_bytes
    memplan.verify(g, plan)


# ---- the hunt: random graphs with in-place pairs over views, on 1 to 4 streams, every solver ----

@st.composite
def split_updates(draw, plain: bool = False, wide: bool = False) -> memplan.Graph:
    """Roots split into views at offsets (inputs or intermediates), nodes writing outputs in place over some of the
    views they read (the same size or smaller: an exact place at the view's offset in its root), outputs that are
    views of larger roots too, and chains of such writes; plain nodes between. ``plain``: every output a root of its
    input's size (each exact place lies within the input's root). ``wide``: every output a view of a larger root (its
    exact place reaches past its input's root, before or after it: round 53)."""
    align = draw(st.sampled_from([1, 8, 64]))
    b = memplan.GraphBuilder("g", alignment=align)
    readable: list[tuple[str, int]] = [(b.input("x", 64), 64)]
    for r in range(draw(st.integers(1, 3))):
        parts = draw(st.lists(st.sampled_from([align, 2 * align, 64, 128]), min_size=1, max_size=5))
        kind = "input" if draw(st.booleans()) else "intermediate"
        root = b.tensor(f"R{r}", sum(parts), kind)
        at = 0
        views = []
        for j, size in enumerate(parts):
            views.append((b.view(f"R{r}v{j}", root, size, at, kind=kind), size))
            at += size
        if kind == "intermediate":
            b.node(f"split{r}", "SPLIT", [draw(st.sampled_from(readable))[0]], [root])
        readable += views
    for n in range(draw(st.integers(1, 6))):
        ins = sorted(set(draw(st.lists(st.sampled_from(readable), min_size=1, max_size=4))))
        writes = draw(st.lists(st.sampled_from(ins), max_size=len(ins), unique=True))
        outs, pairs = [], {}
        for k, (t, size) in enumerate(writes):
            osize = size if plain else draw(st.sampled_from([size, size, max(1, size // 2)]))
            kind = "output" if draw(st.integers(0, 4)) == 0 else "intermediate"
            if plain or (not wide and draw(st.integers(0, 3))):
                o = b.tensor(f"o{n}_{k}", osize, kind)
                outs.append(o)
            else:   # a view at an offset of a larger root the node produces whole
                extra = draw(st.sampled_from([align, 64]))
                b.tensor(f"O{n}_{k}", osize + extra, kind)
                o = b.view(f"o{n}_{k}", f"O{n}_{k}", osize, draw(st.sampled_from([0, extra])), kind=kind)
                outs += [f"O{n}_{k}", o]
            pairs[o] = t
            readable.append((o, osize))
        if not outs:
            size = draw(st.sampled_from([32, 64, 256]))
            outs = [b.tensor(f"p{n}", size, "intermediate")]
            readable.append((outs[0], size))
        b.node(f"n{n}", "OP", [t for t, _ in ins], outs, inplace=pairs or None)
    last = readable[-1][0]
    b.node("end", "SUM", [last], [b.output("y", 8)])
    return b.build()


def _plans_of(g: memplan.Graph, sched: memplan.Schedule):
    """(solver, plan) of every solver on ``sched``: the exact ones with small time limits, cpsat on tiny graphs."""
    solvers = ["greedy", "size", "auto", "search"] + (["cpsat"] if len(g.tensors) <= 12 else [])
    for solver in solvers:
        kw = {"time_limit": 0.2} if solver in ("search", "cpsat") else {}
        yield solver, kw, memplan.plan(g, sched, solver=solver, **kw)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_in_place_graphs_on_streams_plan_exactly_safely_and_deterministically(data):
    g = data.draw(st.one_of(split_updates(), views_inplace(), graphs()), label="graph")
    order, stream_of = data.draw(schedules(g, 4), label="schedule")
    sched = memplan.schedule_with_events(g, order, stream_of)
    for solver, kw, p in _plans_of(g, sched):
        memplan.verify(g, p)
        assert not inplace_faults(g, p), (solver, p.offsets())
        if solver != "cpsat":   # (its wall clock decides how far it gets)
            again = memplan.plan(g, sched, solver=solver, **kw)
            assert json.dumps(again.to_dict()) == json.dumps(p.to_dict()), solver


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=split_updates(plain=True), streams=st.integers(1, 4))
def test_greedy_alone_joins_every_pair_over_views_exactly(g, streams):
    """Greedy's own packing, before any repair: where every output is a root of its input view's size, each exact
    place is free when its output is placed (only the input root's last accessor has legal pairs over it, its outputs'
    places are disjoint), so every pair lies exactly on its input (the old sweeps put all of them at the root's offset,
    where only the first one fits)."""
    sched = memplan.serial_schedule(g) if streams == 1 else optimize(g, streams).schedule
    p = strict_pairs(buffer_problem(g, memplan.build_happens_before(g, sched)))
    sol = greedy.solve(p)
    assert shifted_pairs(p, sol.offsets) == []
    for (a, b), d in pair_shifts(p).items():
        if p.sizes[a] and p.sizes[b]:
            assert sol.offsets[b] - sol.offsets[a] == d, (p.names[a], p.names[b], sol.offsets.tolist())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_window_first_fit_from_a_start_is_the_lowest_clear_offset_from_there(data):
    """``WindowFit.first_fit(..., start=s)`` (size's test of an exact place): the lowest aligned offset from ``s`` on
    clear of the blocks meeting the window less those left out, by leapfrogging and by the merged scan alike."""
    from memplan.solvers import placement

    alignment = data.draw(st.sampled_from([1, 8, 64]))
    blocks = []
    for _ in range(data.draw(st.integers(1, 30))):
        lo = data.draw(st.integers(0, 30))
        hi = data.draw(st.integers(lo + 1, 32))
        off = data.draw(st.integers(0, 40)) * alignment
        blocks.append((lo, hi, off, data.draw(st.integers(1, 200))))
    left_out = data.draw(st.lists(st.integers(0, len(blocks) - 1), unique=True, max_size=3))
    qlo = data.draw(st.integers(0, 31))
    qhi = data.draw(st.integers(qlo + 1, 32))
    size = data.draw(st.integers(1, 300))
    start = data.draw(st.integers(0, 60)) * alignment
    times = [b[0] for b in blocks] + [b[1] for b in blocks] + [qlo, qhi]
    without = [(lo, hi, off, off + s) for k, (lo, hi, off, s) in enumerate(blocks) if k in left_out]
    meet = [(off, placement.align_up(off + s, alignment)) for k, (lo, hi, off, s) in enumerate(blocks)
            if (lo <= qlo < hi or qlo < lo < qhi) and k not in left_out]
    want = start
    while any(a < want + size and want < b for a, b in meet):
        want += alignment
    for passes in (0, 10 ** 9):
        fit = placement.WindowFit(times, alignment, counted=True)
        for lo, hi, off, s in blocks:
            fit.add(lo, hi, off, off + s)
        old = placement.LEAPFROG_PASSES
        placement.LEAPFROG_PASSES = passes
        try:
            assert fit.first_fit(qlo, qhi, size, without, start=start) == want
        finally:
            placement.LEAPFROG_PASSES = old
