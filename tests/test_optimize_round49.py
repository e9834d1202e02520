"""Round 49 (opt49): graph_optimize's options and the memory-budget path of ``memplan.plan``."""

from __future__ import annotations

import functools
import importlib
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

import memplan
import memplan.optimize.streams as streams_module
import memplan.solvers.placement as placement
from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.errors import UnusedOption
from memplan.examples import qkv_attention
from memplan.lifetimes import buffer_problem, compute_lifetimes, issue_order_bound
from memplan.optimize.cost import CostModel, node_costs
from memplan.schedule import build_happens_before, schedule_with_events

plan_module = importlib.import_module("memplan.plan")


def test_graph_optimize_one_stream_warns_of_max_events():
    """``graph_optimize(g, 1, max_events=3)`` was taken silently (as if the cap shaped the schedule), while
    ``plan(streams=1, max_events=3)`` and ``memplan plan --streams 1 --max-events 3`` warn: now it warns too,
    naming the option, and returns the one-stream schedule."""
    g = qkv_attention()
    with pytest.warns(UnusedOption, match=r"max_events=3 has no effect with max_streams=1"):
        sched = memplan.graph_optimize(g, 1, max_events=3)
    assert sched == memplan.graph_optimize(g, 1)
    assert sched.num_streams == 1 and not sched.events


def test_graph_optimize_warning_points_at_the_caller():
    g = qkv_attention()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        memplan.graph_optimize(g, 1, max_events=0)
    assert [w.category for w in got] == [UnusedOption]
    assert got[0].filename == __file__


def test_graph_optimize_no_warning_where_the_cap_applies():
    g = qkv_attention()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(memplan.graph_optimize(g, 3, max_events=0).events) == 0
        memplan.graph_optimize(g, 1)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", float("nan")])
def test_graph_optimize_one_stream_bad_max_events_refused_first(bad):
    """A bad cap is a ScheduleError naming ``max_events`` (before the warning of one stream)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(memplan.errors.ScheduleError, match="max_events"):
            memplan.graph_optimize(qkv_attention(), 1, max_events=bad)


# ---- a memory budget rejects candidates by their issue order's bound, before happens-before and lifetimes ----

@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_issue_order_bound_never_above_the_problems_bound(data):
    """The bound from the issue order alone is at most the lower bound of the problem of any schedule with that
    order (any streams, any events the streams need; node-by-node or fused lifetimes), so rejecting a candidate by
    it rejects only what ``solve_schedule(over=...)`` rejects anyway."""
    g = data.draw(graphs(max_nodes=9))
    order, stream_of = data.draw(schedules(g, max_streams=3))
    sched = schedule_with_events(g, order, stream_of)
    hb = build_happens_before(g, sched)
    bound = issue_order_bound(g, sched.order)
    for fused in (False, True):
        lt = compute_lifetimes(g, hb, fused_groups=fused)
        assert bound <= int(buffer_problem(g, hb, lt).lower_bound or 0)
    made = memplan.plan(g, sched)
    assert bound <= made.lower_bound_bytes <= made.arena_bytes


def fan(width: int) -> memplan.Graph:
    """A fan-out of ``width`` two-node branches and a join: concurrency keeps every branch's tensors live at once."""
    b = memplan.GraphBuilder(f"fan{width}")
    b.input("x", 4096)
    outs = []
    for i in range(width):
        b.node(f"a{i}", "OP", ["x"], b.intermediate(f"t{i}", 8192), cost=10.0)
        b.node(f"b{i}", "OP", [f"t{i}"], b.intermediate(f"u{i}", 4096), cost=10.0)
        outs.append(f"u{i}")
    b.node("join", "OP", outs, b.output("y", 4096), cost=1.0)
    return b.build()


def test_budget_rejects_candidates_over_their_issue_order_bound_without_lifetimes(monkeypatch):
    """A budget of the serial arena on a wide fan: every multi-stream candidate's issue order already keeps more
    bytes live than the budget, and each was rejected only after its happens-before and lifetimes were made. Now
    only the schedules planned in full (the first, the one chosen) and those under their order's bound get them,
    and the plan is the same."""
    g = fan(24)
    budget = memplan.plan(g).arena_bytes
    expected = memplan.plan(g, streams=8, memory_budget=budget).to_json()
    built: list = []
    real = plan_module.build_happens_before

    def counting(graph, schedule):
        built.append(schedule)
        return real(graph, schedule)

    monkeypatch.setattr(plan_module, "build_happens_before", counting)
    got = memplan.plan(g, streams=8, memory_budget=budget)
    assert got.to_json() == expected
    over = [s for s in built if issue_order_bound(g, s.order) > budget]
    assert len(over) <= 1, f"{len(over)} schedules over their issue-order bound got happens-before"


def test_budget_skips_give_backs_whose_one_issue_order_is_over_it(monkeypatch):
    """Every fork give-back has one issue order (the fixed-stream order); where that order's bound is over the
    memory budget, none can fit, and the forks were still scored and every prefix replayed. Now they are left out,
    and the plan is the one the full pool gives."""
    import memplan.optimize.budget as budget_module
    import memplan.optimize.candidates as cand_module

    g = fan(24)
    budget = memplan.plan(g).arena_bytes
    cands = cand_module.candidates(g, streams=8, memory_budget=budget)
    assert issue_order_bound(g, budget_module.give_back_order(g, cands.optimized)) > budget
    scored: list = []
    real = budget_module.score_forks

    def counting(*a, **kw):
        scored.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(budget_module, "score_forks", counting)
    got = memplan.plan(g, streams=8, memory_budget=budget).to_json()
    assert not scored
    monkeypatch.setattr(cand_module, "issue_order_bound", lambda graph, order: 0)   # the full pool, as before
    assert memplan.plan(g, streams=8, memory_budget=budget).to_json() == got
    assert scored


@functools.cache
def _pruning_graph(name: str) -> tuple[memplan.Graph, int]:
    """A graph of the pruning test and its serial arena, built and planned once for the cases that read them
    (Graph is frozen)."""
    g = {"fan10": lambda: fan(10), "moe": memplan.examples.moe, "qkv": memplan.examples.qkv_attention}[name]()
    return g, memplan.plan(g).arena_bytes


@pytest.mark.parametrize("streams", [2, 8, "auto"])
@pytest.mark.parametrize("share", [0.8, 1.0, 1.5])
def test_budget_plans_the_same_with_and_without_the_pruning(monkeypatch, streams, share):
    """Byte-identical plans (or the same refusal) whether or not candidates are rejected by their issue order's
    bound before lifetimes, on graphs where concurrency costs memory. (A share of 1.1 was dropped in round 72: on
    all three graphs and stream counts it bounded the very orders 1.0 bounds, rejected the same ones and chose the
    same plan, counted; 0.8 refuses or rejects every order, 1.5 rejects fewer.)"""
    import memplan.optimize.candidates as cand_module

    for g, serial in map(_pruning_graph, ("fan10", "moe", "qkv")):
        budget = int(serial * share)

        def run(g=g, budget=budget) -> str:
            try:
                return memplan.plan(g, streams=streams, memory_budget=budget).to_json()
            except memplan.errors.BudgetError as e:
                return str(e)

        got = run()
        with monkeypatch.context() as m:
            m.setattr(cand_module, "issue_order_bound", lambda graph, order: 0)
            m.setattr(plan_module, "issue_order_bound", lambda graph, order: 0)
            assert run() == got, g.name


# ---- list_schedule_twin: dense clocks at many streams ----


def _units(g):
    return streams_module.build_units(g, node_costs(g, CostModel()))


def _runs(U, k):
    pred = streams_module.chain_cover(U, streams_module.unit_succs(U, 10 ** 9))
    out = []
    for kw in (dict(mode="eft"), dict(mode="est"), dict(mode="eft", listed=True, twin=False),
               dict(mode="eft", chain_pred=pred, twin=False)):
        for ev in (2.0, 0.0):
            out.append(streams_module.list_schedule_twin(U, k, ev, **kw))
    return out


@pytest.mark.parametrize("k", [33, 64, 1024])
def test_list_schedule_dense_clocks_choose_as_dict_clocks(monkeypatch, k):
    """Above ``DENSE_STREAMS`` the clocks are numpy rows; every family (eft/est, listed, chain-pinned, free events)
    makes the very schedules (and twins) the dict clocks make."""
    for g in (layered_graph(600), random_dag(500), memplan.examples.moe(), fan(80)):
        U = _units(g)
        dense = _runs(U, k)
        with monkeypatch.context() as m:
            m.setattr(streams_module, "DENSE_STREAMS", 1 << 30)
            assert _runs(U, k) == dense, g.name


def test_list_schedule_dense_clock_merge_is_one_step_per_event():
    """A layered DAG on 1,024 streams: each event merged the writer's dict clock entry by entry (hundreds of streams
    known: about 500 Python steps per event); a dense row merges in one numpy step."""
    U = _units(layered_graph(3000))
    stats: dict = {}
    streams_module.list_schedule_twin(U, 1024, 2.0, stats=stats)
    events = stats.get("merged", 0)
    assert 0 < events <= len(U.members) * 3, stats   # (one per writer merged: at most the 1-3 inputs of each unit)


def test_optimize_with_dense_clocks_plans_the_same(monkeypatch):
    g = layered_graph(400)
    got = memplan.plan(g, streams=64, max_events=40).to_json()
    monkeypatch.setattr(streams_module, "DENSE_STREAMS", 1 << 30)
    assert memplan.plan(g, streams=64, max_events=40).to_json() == got


# ---- the size solver's WindowFit.first_fit: a merged scan where leapfrogging ping-pongs ----


def _bit_reversed_fit(n_bits: int = 9):
    """Blocks of 8 bytes at every 16 bytes, the k-th by start time at byte ``bitrev(k) * 16``: neighbours in bytes
    lie in different unions of the window tree, so a leapfrog moves past one block per union per pass."""
    n = 1 << n_bits
    blocks = [(t, 2 * n, int(format(t - 1, f"0{n_bits}b")[::-1], 2) * 16, 8) for t in range(1, n + 1)]
    fit = placement.WindowFit([b[0] for b in blocks] + [b[1] for b in blocks] + [0], 8)
    for lo, hi, off, size in blocks:
        fit.add(lo, hi, off, off + size)
    return fit, blocks, n


def test_window_first_fit_does_not_ping_pong_between_unions(monkeypatch):
    """Each pass over the unions moved past about one block per union, and every pass checked every union again:
    3,072 bisections for one query over 512 blocks (142 passes per buffer on a 20,000-node layered DAG's plan on
    1,024 streams, 6 s of the size solver). After two passes a merged scan answers: the same offset."""
    fit, blocks, n = _bit_reversed_fit()
    calls = [0]
    real = placement.bisect_left

    def counting(*a):
        calls[0] += 1
        return real(*a)

    monkeypatch.setattr(placement, "bisect_left", counting)
    got = fit.first_fit(0, 2 * n, 16)
    assert got == placement.first_fit(sorted((off, off + s) for _, _, off, s in blocks), 16, 8) == n * 16 - 8
    assert calls[0] < 300, calls[0]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_window_first_fit_merged_scan_is_the_leapfrogs_answer(data):
    """The merged scan (forced after the first pass) answers what leapfrogging to the end answers, and what
    ``placement.first_fit`` answers over the blocks meeting the window."""
    alignment = data.draw(st.sampled_from([1, 8, 64]))
    n = data.draw(st.integers(1, 40))
    blocks = []
    for _ in range(n):
        lo = data.draw(st.integers(0, 30))
        hi = data.draw(st.integers(lo + 1, 32))
        off = data.draw(st.integers(0, 60)) * data.draw(st.sampled_from([1, 8, 64]))
        blocks.append((lo, hi, off, data.draw(st.integers(1, 200))))
    qlo = data.draw(st.integers(0, 31))
    qhi = data.draw(st.integers(qlo + 1, 32))
    size = data.draw(st.integers(1, 300))
    times = [b[0] for b in blocks] + [b[1] for b in blocks] + [qlo, qhi]
    answers = []
    for passes in (0, 10 ** 9):
        fit = placement.WindowFit(times, alignment)
        for lo, hi, off, s in blocks:
            fit.add(lo, hi, off, off + s)
        old = placement.LEAPFROG_PASSES
        placement.LEAPFROG_PASSES = passes
        try:
            answers.append(fit.first_fit(qlo, qhi, size))
        finally:
            placement.LEAPFROG_PASSES = old
    meet = sorted((off, placement.align_up(off + s, alignment)) for lo, hi, off, s in blocks
                  if lo <= qlo < hi or qlo < lo < qhi)
    assert answers[0] == answers[1] == placement.first_fit(meet, size, 1)


@pytest.mark.parametrize("cap", [2 ** 63, 10 ** 30])
def test_graph_optimize_max_events_below_2_63_as_plan_takes_it(cap):
    """``plan(streams=2, max_events=2**63)`` and ``--max-events`` refuse a cap past int64 (a plan file's integers fit
    one); ``graph_optimize(g, 2, max_events=2**63)`` took it. Now both refuse it naming the option."""
    g = qkv_attention()
    for call in (lambda: memplan.graph_optimize(g, 2, max_events=cap), lambda: memplan.plan(g, streams=2, max_events=cap)):
        with pytest.raises(memplan.errors.ScheduleError, match=r"max_events must be a non-negative integer below 2\*\*63"):
            call()
    assert memplan.graph_optimize(g, 2, max_events=2 ** 63 - 1) == memplan.graph_optimize(g, 2)
