"""Round 43, scheduling and verification.

- ``max_events``: ``candidate_pool`` replayed every prefix of the two fork lists to the end (thousands of events
  each) and then dropped it for being over the cap: ``fanout_join(30000)`` at 4 streams, ``max_events=3``, replayed
  about 90 x 30,000 positions. A replay now stops at the cap, and a prefix whose streams agree with a capped run up to
  where that run was over the cap is dropped unreplayed (``Replay.over_cap``). The pool is the same.
- ``list_schedule``'s candidate index (round 42) listed every used stream for each branch of a wide fork at 24 .. 48
  streams (each stream knows the fork's source) and scored them all: ``optimize(fork_join(5000), 1024)`` went from
  2.6 s to 3.7 s. Where the index lists every used stream the free-est-first scan is tried first (``SCAN_COVERED``);
  the choices are the same.
- the hunt (guards, held before): hand-built bad schedules are refused by ``plan`` and ``simulate`` naming the node or
  event; one to three composed corruptions of a plan are refused by ``verify`` exactly where the oracle refuses them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import findings
from oracle_fuzz import MUTATIONS, corrupt, multistream_graph, multistream_plan
from strategies import graphs

import memplan
from memplan import examples, generators
from memplan.errors import MemplanError, ScheduleError, UnsafePlan
from memplan.optimize import budget, optimize
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.events import Replay
from memplan.schedule import Event, Schedule, schedule_with_events
from memplan.verify import check

sys.path.insert(0, str(Path(__file__).parent))
from test_perf_round40 import fork_join, layered  # noqa: E402


def _pool_key(pool) -> list[tuple]:
    return [(r.name, r.schedule, r.makespan_us, r.forks_serialised, r.forks_total) for r in pool]


def _capped_is_filtered(g, k: int, caps) -> None:
    """The pool under each cap is the uncapped pool (every prefix replayed to the end) less those over the cap."""
    opt = optimize(g, k)
    full = budget.candidate_pool(g, opt, None)
    for cap in caps:
        want = [r for r in full if len(r.schedule.events) <= cap]
        assert _pool_key(budget.candidate_pool(g, opt, cap)) == _pool_key(want), (g.name, k, cap)


@pytest.mark.parametrize("k", [2, 4, 64])
def test_a_capped_pool_is_the_full_pool_less_those_over_the_cap(k):
    gs = [generators.fanout_join(n, seed=n)[0] for n in (80, 400)] + [examples.moe(), examples.views_inplace()]
    for g in gs:
        _capped_is_filtered(g, k, (0, 1, 3, 10, 60))


@settings(max_examples=40, deadline=None)
@given(graphs(max_nodes=12), st.sampled_from([2, 3, 6]))
def test_a_capped_pool_is_the_full_pool_less_those_over_the_cap_on_any_graph(g, k):
    _capped_is_filtered(g, k, (0, 1, 2, 4))


def test_max_events_replays_a_few_positions_per_node_not_every_prefix(monkeypatch):
    """``fanout_join(2000)`` on 4 streams, ``max_events=3``: the prefixes' replays covered 87 x 2,000 positions
    (each to the end); now each stops at the cap and most are dropped unreplayed (about 2 x 2,000)."""
    g = generators.fanout_join(2000)[0]
    opt = optimize(g, 4)
    n = len(g.nodes)
    replayed = [0]
    init, branch = Replay.__init__, Replay.branch

    def counted_init(self, *a, **kw):
        init(self, *a, **kw)
        replayed[0] += min(n, getattr(self, "capped_at", n))

    def counted_branch(self, p, *a, **kw):
        new = branch(self, p, *a, **kw)
        replayed[0] += min(n, getattr(new, "capped_at", n)) - p
        return new

    monkeypatch.setattr(Replay, "__init__", counted_init)
    monkeypatch.setattr(Replay, "branch", counted_branch)
    best = budget.limit_events(g, opt, 3)
    assert len(best.schedule.events) <= 3
    # (+ round 51: where every candidate is over the cap, ``limit_events`` thins a two-stream schedule's forks, a
    # galloping search of a few whole replays: 2.1 n before it, 6.2 n with it; + round 55: the fastest 2-, 3- and
    # 4-stream schedules are each thinned, ``capsearch.thin_streams``: 12.1 n)
    assert replayed[0] <= 14 * n, replayed[0]


def _units(g) -> S.Units:
    return S.build_units(g, node_costs(g, CostModel()))


@pytest.mark.parametrize("k", [24, 32, 48])
def test_a_wide_fork_at_a_few_dozen_streams_scores_a_few_streams_per_branch(k):
    """2,000 branches of one source on 24 .. 48 streams: once every stream had waited for the source, the index
    listed all of them for each branch (63,538 streams scored at 32); the scan tries the free-est two or three."""
    U = _units(fork_join(2000))
    for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True)):
        stats: dict[str, int] = {}
        S.list_schedule_twin(U, k, 2.0, stats=stats, **kw)
        assert stats["scored"] <= 4 * len(U.members) + 2 * k, (k, kw, stats)


def _choices(mp: pytest.MonkeyPatch, U: S.Units, k: int, ev: float, knobs: dict, **kw) -> tuple:
    with mp.context() as m:
        for name, value in knobs.items():
            m.setattr(S, name, value)
        return S.list_schedule_twin(U, k, ev, **kw)


@pytest.mark.parametrize("graph", [fork_join(400), layered(30, 3, 1), layered(50, 2, 3)], ids=lambda g: g.name)
def test_scanning_a_covered_index_chooses_as_every_stream_does(graph, monkeypatch):
    """The scan tried first where the index lists every used stream, a scan giving up at once (then the index),
    and the index alone pick what trying every stream picks, twins included, with events and free."""
    U = _units(graph)
    every = dict(INDEXED_CANDIDATES=1 << 30)
    ways = [dict(INDEXED_CANDIDATES=0, SCAN_COVERED=True),
            dict(INDEXED_CANDIDATES=0, SCAN_COVERED=True, SCAN_CANDIDATES=1),
            dict(INDEXED_CANDIDATES=0, SCAN_COVERED=False, SCAN_ABOVE=1 << 30)]
    for k in (20, 32, 1024):
        for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True, twin=False)):
            for ev in (2.0, 0.0):
                want = _choices(monkeypatch, U, k, ev, every, **kw)
                for way in ways:
                    assert _choices(monkeypatch, U, k, ev, way, **kw) == want, (graph.name, k, kw, ev, way)


# ---- the hunt: hand-built schedules and mutated plans (guards: these held before this round) -----------------------

def _diamond_cases():
    g = examples.diamond()
    ids = tuple(n.id for n in g.nodes)   # a -> (l, r) -> j
    good = schedule_with_events(g, ids, {"a": 0, "l": 0, "r": 1, "j": 0})
    return g, {
        "stream 1024": (Schedule(ids, (0, 1024, 0, 0)), "'l'"),
        "stream -1": (Schedule(ids, (0, -1, 0, 0)), "'l'"),
        "wait before record": (Schedule(ids, (0, 0, 1, 0), good.events + (Event("j", "r"),)), "'j'->'r'"),
        "same stream": (Schedule(ids, (0, 0, 1, 0), good.events + (Event("a", "l"),)), "'a'->'l'"),
        "to itself": (Schedule(ids, (0, 0, 1, 0), good.events + (Event("r", "r"),)), "'r'->'r'"),
        "duplicate": (Schedule(("a", "l", "l", "r", "j"), (0, 0, 0, 1, 0)), "'l'"),
        "missing": (Schedule(("a", "l", "r"), (0, 0, 1)), "'j'"),
        "unknown event end": (Schedule(ids, (0, 0, 1, 0), (Event("zz", "r"),)), "'zz'"),
        "not topological": (Schedule(tuple(reversed(ids)), (0, 0, 0, 0)), "'a'"),
        "missing event": (Schedule(ids, (0, 0, 1, 0), ()), "'r'"),
    }


@pytest.mark.parametrize("case", sorted(_diamond_cases()[1]))
def test_a_bad_hand_built_schedule_is_refused_naming_its_node_or_event(case):
    g, cases = _diamond_cases()
    sched, names = cases[case]
    for call in (lambda: memplan.plan(g, sched), lambda: memplan.plan(g, sched, streams=2, max_events=3),
                 lambda: memplan.simulate(g, sched) if case != "missing event" else memplan.plan(g, sched)):
        with pytest.raises((ScheduleError, UnsafePlan)) as info:
            call()
        assert names in str(info.value), (case, str(info.value))


@pytest.mark.parametrize("seed", range(30))
def test_verify_catches_every_unsafe_plan_of_composed_corruptions(seed):
    """One to three corruptions at once of a plan on up to 8 streams (and of a random schedule's plan), with and
    without ``fused_groups``: the verifier refuses exactly what the brute-force oracle refuses."""
    rnd = random.Random(seed)
    gd = multistream_graph(rnd, 20)
    g = memplan.graph_from_dict(gd)
    fused = seed % 2 == 1
    base = [multistream_plan(gd, rnd), memplan.plan(g, streams=rnd.choice([2, 4, 8]), solver="greedy").to_dict()]
    for pd in base:
        for _ in range(6):
            q = pd
            for _ in range(rnd.randint(1, 3)):
                q = corrupt(gd, q, rnd.choice([m for m in MUTATIONS if m != "near_2_63"]), rnd) or q
            try:
                got = check(g, q, fused_groups=fused)
            except MemplanError as exc:   # (refused outright: a malformed plan, never a raw error)
                got = [(0, str(exc))]
            assert bool(got) == bool(findings(gd, q, fused_groups=fused)), (seed, got, findings(gd, q))
