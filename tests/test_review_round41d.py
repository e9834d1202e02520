"""Review 41d: round 41's fork rescoring, a given schedule's stream cap, CP-SAT's workers and ``ratio_text``.

- ``budget.score_forks`` now scores each give-back with ``Replay.rescore`` (only the nodes it can change). Here whole
  plans under ``memory_budget`` / ``max_events`` / ``device_capacity`` are compared with the plans of round 40's
  ``score_forks`` (``rerun`` / ``rerun_window`` over every position, copied below as it was): byte-identical.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fit_devices, graphs, view_chains

import memplan
from memplan import examples
from memplan.optimize import budget, optimize
from memplan.optimize.events import Replay


def _old_score_forks(graph, opt, schedule):
    """``budget.score_forks`` as of b78f3b6 (before ``Replay.rescore``), verbatim but for the module prefixes."""
    B = budget
    base = B.schedule_makespan(graph, schedule, opt.cost, opt.event_us)
    arena_root = [graph.root[t] for t in range(len(graph.tensors))]
    U = opt.units
    ustream = B.unit_streams(opt, schedule, graph)[1]
    node_order: list[int] = []
    first: list[int] = [0] * len(U.members)
    for u in U.fixed_order:
        first[u] = len(node_order)
        node_order.extend(U.members[u])
    node_unit = [U.unit_of[m] for m in node_order]
    node_streams = [ustream[u] for u in node_unit]
    forks = B.find_forks(graph, opt, schedule)
    moved: list[tuple[int, int]] = []
    for units, src in forks:
        target = ustream[src] if src not in units else 0
        moved.append((min((first[u] for u in units if ustream[u] != target), default=len(node_order)), target))
    replay = Replay(graph, node_order, node_streams, opt.cost, opt.event_us, [p for p, _ in moved])
    N = len(node_order)
    exact = sum(N - p for p, _ in moved) <= B.MAX_REPLAY_STEPS
    out = []
    for (units, src), (p, target) in zip(forks, moved):
        if p == N:
            n_events, ms = replay.events, replay.makespan
        elif exact:
            inside = set(units)
            n_events, ms = replay.rerun(p, [target if u in inside else ustream[u] for u in node_unit])
        else:
            inside = set(units)
            stop = min(N, max(first[u] + len(U.members[u]) for u in units) + B.REPLAY_WINDOW)
            n_events, ms = replay.rerun_window(p, stop, [target if u in inside else ustream[u]
                                                         for u in node_unit[p:stop]])
        roots = {arena_root[t] for u in units for m in opt.units.members[u]
                 for t in graph.node_inputs[m] + graph.node_outputs[m] if graph.in_arena(t)}
        out.append(B.Fork(units, src, max(ms - base, 0.0), len(schedule.events) - n_events,
                          sum(graph.tensors[r].size for r in roots)))
    return out


def _plan_text(graph, opts: dict) -> str:
    """The plan's JSON (no timings), or the error's type and message: both paths must give the same."""
    try:
        return memplan.plan(graph, **opts).to_json()
    except memplan.errors.MemplanError as e:
        return f"{type(e).__name__}: {e}"


def _both(monkeypatch, graph, opts: dict) -> tuple[str, str, int]:
    """(plan text with ``rescore``, plan text with round 40's ``score_forks``, forks scored by the new one)."""
    calls = []
    real = budget.score_forks
    with monkeypatch.context() as m:
        m.setattr(budget, "score_forks", lambda g, o, s: calls.append(1) or real(g, o, s))
        new = _plan_text(graph, opts)
    if not calls:   # planning is deterministic: a run that never scored forks is the same run with round 40's
        return new, new, 0   # score_forks in its place (two thirds of the random examples; planned once, not twice)
    with monkeypatch.context() as m:
        m.setattr(budget, "score_forks", _old_score_forks)
        old = _plan_text(graph, opts)
    return new, old, len(calls)


@st.composite
def _plan_options(draw, graph) -> dict:
    streams = draw(st.one_of(st.integers(1, 64), st.just("auto")))
    opts: dict = {"streams": streams, "solver": draw(st.sampled_from(["greedy", "auto"]))}
    devices = draw(st.sampled_from([1, 1, 1, 2, 3]))
    total = sum(t.size for t in graph.tensors)
    if devices > 1:
        opts["devices"] = devices
        opts = fit_devices(graph, opts)
        if draw(st.booleans()):
            opts["device_capacity"] = draw(st.integers(0, max(total, 1)))
    elif draw(st.booleans()):
        opts["memory_budget"] = draw(st.integers(0, max(total, 1)))
    if draw(st.booleans()):
        opts["max_events"] = draw(st.integers(0, 8))
    return opts


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), st.booleans())
def test_plans_with_rescore_are_byte_identical_to_round_40s(monkeypatch, data, windowed):
    """Random graphs (views, in-place writes through views, fusion groups, zero-sized tensors), 1..64 streams or
    "auto", memory budgets (one device) or device capacities (2 or 3 devices), event caps, exact replays or windows
    of 4 positions: the plan (or the error) is the same text with ``rescore`` as with round 40's full replays."""
    g = data.draw(st.one_of(graphs(max_nodes=12), view_chains()))
    opts = data.draw(_plan_options(g))
    with monkeypatch.context() as m:
        if windowed:
            m.setattr(budget, "MAX_REPLAY_STEPS", 0)
            m.setattr(budget, "REPLAY_WINDOW", 4)
        new, old, _ = _both(m, g, opts)
    assert new == old   # (a third of the examples score forks: 491 of 1,500 in review 41d's longer run)


@functools.cache
def _bundled(name: str) -> memplan.Graph:
    """The bundled graph ``name`` (or ``examples.<name>()``; ``fork_join`` is ``test_perf_round40.fork_join(200)``)."""
    if name == "fork_join":
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        from test_perf_round40 import fork_join

        return fork_join(200)
    return examples.bundled()[name] if name in examples.bundled() else getattr(examples, name)()


@functools.cache
def _greedy_arena(name: str, streams: int) -> int:
    """The greedy plan's arena of ``_bundled(name)`` on ``streams`` with no budget or cap: the budgets' reference
    points, shared by the windowed and exact runs (a plan without a budget or cap scores no forks, so neither
    ``MAX_REPLAY_STEPS`` nor ``REPLAY_WINDOW`` changes it)."""
    return memplan.plan(_bundled(name), solver="greedy", streams=streams).arena_bytes


@pytest.mark.parametrize("windowed", [False, True])
@pytest.mark.parametrize("name", ["moe", "views_inplace", "qkv", "views", "llama-tiny"])
def test_bundled_plans_under_budgets_are_round_40s(monkeypatch, name, windowed):
    """Bundled graphs at 4, 16 and 64 streams under a memory budget halfway between the serial arena and the
    unconstrained one, and under an event cap: forks are scored (checked) and the plans are round 40's bytes."""
    g = _bundled(name)
    if windowed:
        monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", 0)
        monkeypatch.setattr(budget, "REPLAY_WINDOW", 8)
    serial = _greedy_arena(name, 1)
    scored = 0
    for streams in (4, 16, 64):
        free = _greedy_arena(name, streams)
        for extra in ({"memory_budget": (serial + free) // 2}, {"max_events": 2}, {"memory_budget": serial}):
            new, old, n = _both(monkeypatch, g, dict(solver="greedy", streams=streams, **extra))
            assert new == old, (streams, extra)
            scored += n
    assert scored or name in ("views_inplace", "views")   # (their budgets are met without giving forks back)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), st.sampled_from([2, 3, 8, 64]), st.sampled_from([None, 1, 3]))
def test_fork_scores_are_round_40s_on_random_graphs(monkeypatch, data, streams, window):
    """``score_forks`` itself on random graphs optimized for up to 64 streams, exactly (``window`` None) or by windows
    of 1 or 3 positions: every fork's score equals round 40's."""
    g = data.draw(st.one_of(graphs(max_nodes=14), view_chains()))
    opt = optimize(g, streams)
    with monkeypatch.context() as m:
        if window is not None:
            m.setattr(budget, "MAX_REPLAY_STEPS", 0)
            m.setattr(budget, "REPLAY_WINDOW", window)
        assert budget.score_forks(g, opt, opt.schedule) == _old_score_forks(g, opt, opt.schedule)


@pytest.mark.parametrize("window", [None, 16])
def test_a_wide_fork_join_under_a_budget_plans_round_40s_bytes(monkeypatch, window):
    """``fork_join(200)`` on 64 streams (forks interleaved over the whole order, a join of 200 writers: the
    ``BIG_READER`` correction) under memory budgets and an event cap: the plans are round 40's bytes."""
    g = _bundled("fork_join")
    if window is not None:
        monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", 0)
        monkeypatch.setattr(budget, "REPLAY_WINDOW", window)
    serial = _greedy_arena("fork_join", 1)
    free = _greedy_arena("fork_join", 64)
    scored = 0
    for extra in ({"memory_budget": (serial + free) // 2}, {"memory_budget": serial + (free - serial) // 8},
                  {"max_events": 20}):
        new, old, n = _both(monkeypatch, g, dict(solver="greedy", streams=64, **extra))
        assert new == old, extra
        scored += n
    assert scored


def test_a_given_schedule_on_streams_0_and_3_declares_4_against_every_cap():
    """A schedule using streams {0, 3} only declares 4 (the contract's ``streams``: highest id + 1): ``streams`` 1..3
    refuse it naming both counts, 4 and "auto" plan it as it is; a one-stream schedule with ``streams=1`` plans (the
    cap is "over", not "at"); ``devices=2`` refuses any given schedule first, saying to drop it."""
    from memplan.schedule import schedule_with_events

    g = examples.bundled()["qkv"]
    ids = [n.id for n in g.nodes]
    s03 = schedule_with_events(g, ids, {n: (3 if n in ("mm_q", "mm_v") else 0) for n in ids})
    assert sorted(set(s03.streams)) == [0, 3] and s03.num_streams == 4
    for cap in (1, 2, 3):
        for extra in ({}, {"memory_budget": 1}, {"device_capacity": 10**12}, {"max_events": 2}):
            with pytest.raises(memplan.ScheduleError, match=rf"declares 4 streams \(stream ids up to 3\), over "
                                                            rf"streams={cap} \(a given"):
                memplan.plan(g, schedule=s03, streams=cap, **extra)
    for cap in (4, "auto", None):
        p = memplan.plan(g, schedule=s03, streams=cap)
        assert p.streams == 4 and [s for _, s in p.order] == list(s03.streams)
    s1 = schedule_with_events(g, ids, dict.fromkeys(ids, 0))
    assert memplan.plan(g, schedule=s1, streams=1, max_events=0).streams == 1
    with pytest.raises(memplan.ScheduleError, match=r"has 2 events, over max_events=0"):   # (both over: events said)
        memplan.plan(g, schedule=s03, streams=1, max_events=0)
    for cap in (1, 8):
        with pytest.raises(memplan.ScheduleError, match="devices > 1 plans its own per-device schedules: drop"):
            memplan.plan(g, schedule=s03, streams=cap, devices=2)


@pytest.mark.parametrize("arena, bound, four, three", [
    (2**63 - 1, 2**63 - 1, "1.0000", "1.000"),   # at the bound: optimal, whatever the size
    (0, 0, "1.0000", "1.000"),                   # nothing to place
    (0, 2**63 - 1, "0.0000", "0.000"),
    (2**63 - 1, 0, "inf", "inf"),                # a bound of 0 proves nothing (``Plan.ratio``: inf)
    (2**63 - 1, 2**63 - 2, "1.000000000000000000108", "1.000000000000000000108"),
    (2**62 + 1, 2**62, "1.000000000000000000217", "1.000000000000000000217"),
])
def test_ratio_text_at_the_plan_fields_extremes(arena, bound, four, three):
    """``ratio_text`` over the range a plan's integers may take ([0, 2**63)): at, below and above the bound, the
    bound 0, and an excess of 1 B over 2**62 B (the float ratio is 1.0 exactly) keeps its digits at 3 and 4 places."""
    from memplan.planfile import ratio_text

    assert (ratio_text(arena, bound), ratio_text(arena, bound, 3)) == (four, three)
