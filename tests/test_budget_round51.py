"""Round 51 (budget51): ``_merged_fit``'s small windows in Python (same answers), event caps on many streams."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan.benchmarks import scale
from memplan.solvers import placement


def _brute(sets, x, size):
    y = x
    while any(s < y + size and y < e for starts, ends in sets for s, e in zip(starts, ends)):
        y += 1
    return y


def _unions(draw_ranges):
    out = []
    for ranges in draw_ranges:
        starts, ends = [], []
        for a, b in sorted(ranges):
            if starts and a <= ends[-1]:
                ends[-1] = max(ends[-1], b)
            else:
                starts.append(a)
                ends.append(b)
        if starts:
            out.append((starts, ends))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 30)).map(lambda t: (t[0], t[0] + t[1])),
                         min_size=1, max_size=40), min_size=1, max_size=6),
       st.integers(0, 50), st.integers(1, 40))
def test_merged_fit_is_the_lowest_clear_offset(ranges, x, size):
    sets = _unions(ranges)
    want = _brute(sets, x, size)
    assert placement._merged_fit(sets, x, size) == want


def test_wide_node_windows_skip_numpy(monkeypatch):
    """The size solver's windows on a wide node hold about one range: scanned in Python, not sorted in numpy
    (numpy's fixed cost per window was most of the solver's time on ``wide_graph(20000)``, 1,024 streams)."""
    calls = {"argsort": 0, "merged": 0, "inside": False}
    real_merged = placement._merged_fit

    class CountingNumpy:   # placement's own ``np`` only: other modules' numpy calls are not counted
        def __getattr__(self, name):
            return getattr(np, name)

        def argsort(self, *a, **k):
            calls["argsort"] += calls["inside"]
            return np.argsort(*a, **k)

    def counting_merged(*a, **k):
        calls["merged"] += 1
        calls["inside"] = True
        try:
            return real_merged(*a, **k)
        finally:
            calls["inside"] = False

    monkeypatch.setattr(placement, "np", CountingNumpy())
    monkeypatch.setattr(placement, "_merged_fit", counting_merged)
    g = scale.wide_graph(600)
    plan = memplan.plan(g, streams=1024, max_events=5, solver="size")
    assert calls["merged"] > 100          # the path this test is about is taken
    assert calls["argsort"] == 0
    memplan.verify(g, plan)


def _events_and_streams(plan):
    import json

    d = json.loads(plan.to_json())
    return len(d["events"]), d["streams"]


def test_event_cap_keeps_two_streams_where_they_beat_serial():
    """``random_dag(300)`` on 8 or 1,024 streams under ``max_events=10``: every give-back prefix of the chosen
    schedule was over the cap, so the plan was the serial order (6,243 us simulated); merging to two streams and
    thinning that schedule's forks keeps 8 events on 2 streams, faster than serial."""
    g = scale.random_dag(300)
    for streams in (8, 1024):
        plan = memplan.plan(g, streams=streams, max_events=10)
        events, used = _events_and_streams(plan)
        assert used == 2 and 0 < events <= 10
        sim = memplan.simulate(g, plan)
        assert sim.num_events == events
        assert sim.makespan_us < sim.serial_us
        memplan.verify(g, plan)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(["random", "fanout", "wide"]), st.integers(20, 160), st.integers(0, 6),
       st.sampled_from([2, 4, 1024, "auto"]), st.integers(0, 3))
def test_every_plan_under_an_event_cap_keeps_it(kind, n, cap, streams, seed):
    from memplan.generators import fanout_join

    if kind == "random":
        g = scale.random_dag(n, seed=seed)
    elif kind == "fanout":
        g = fanout_join(n, max_width=3 + seed, streams=2, seed=seed)[0]
    else:
        g = scale.wide_graph(n // 4 + 1, seed=seed)
    plan = memplan.plan(g, streams=streams, max_events=cap)
    events, _ = _events_and_streams(plan)
    assert events <= cap
    memplan.verify(g, plan)
    sim = memplan.simulate(g, plan)
    assert sim.makespan_us <= sim.serial_us + 1e-6
