"""Round 63 (sky): the narrow skyline tier's one total cap (``auto.SKYLINE_NARROW_WORK``) covers its six key walks,
its promotion walks, its two extra walks and the repair of both bases, as ``SKYLINE_WIDE_WORK`` does the wide tier's.

Before, ``SKYLINE_WORK`` (1 << 18) counted the keys and the promotions only: the extra walks and a repair of up to
``SKYLINE_REPAIR`` walks' worth a base ran beyond it, up to 14 walks' work at the top of the tier where it counted 6
(a chain with long skips of 2,000 nodes: 16.6 walks of 27,536 pairs, 456,572 pairs visited). Each test of the
narrow tier failed with that accounting planted back (``_old_rounds`` and 3 walks' worth of repair a base: 10 of them).

And the wide tier repairs size's packing with what its cap leaves (``skyline.solve``'s ``start``, ``START_KEYS``):
those tests failed with ``START_KEYS = REPAIR_KEYS`` (no plan lower) and with ``skyline_within`` not handing size's
packing (a memory budget's verdict above the solve's arena).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from problems import problems_auto_solves
from test_quality_round60 import deep_skips
from test_quality_round62 import _deep_2000, _problem

import memplan
from memplan.solvers import auto, skyline
from memplan.solvers.check import packs

#: the narrow tier's walks' gate as in rounds 60-62: the six keys within 1 << 18 pairs visited
GATE = (1 << 18) // 6


def _old_rounds(work: int) -> int:
    """Round 62's promotion rounds: what 1 << 18 left after the six keys alone."""
    return max(0, min(auto.SKYLINE_ROUNDS, ((1 << 18) - work * len(skyline.KEYS)) // work))


def test_the_narrow_tier_counts_every_walk_it_runs():
    assert auto.SKYLINE_NARROW_WALKS == len(skyline.KEYS) + len(skyline.EXTRA_KEYS)


@pytest.mark.parametrize("work", [GATE - 1, GATE, GATE + 1])
def test_the_tiers_gate_is_where_it_was(monkeypatch, work):
    """The narrow tier takes the same problems as before (its walks fit in its cap up to 43,690 pairs a walk, where
    the six keys fitted in 1 << 18), so no problem moves between the tiers."""
    monkeypatch.setattr(auto, "_walk_work", lambda problem: work)
    monkeypatch.setattr(auto, "_tier_work", lambda problem: work)   # (round 64: the tiers' gates count it apart)
    assert auto.skyline_keys(None) == (skyline.KEYS if work <= GATE else auto.SKYLINE_WIDE_KEYS)


@pytest.mark.parametrize("work, repair, rounds", [
    (1, 3, 16), (11650, 3, 16), (11651, 3, 15), (18395, 3, 5), (18396, Fraction(27593, 9198), 5),
    (28740, Fraction(1553, 1437), 2), (34952, Fraction(1, 2), 1), (34953, Fraction(34948, 34953), 0), (GATE, 0, 0)])
def test_the_narrow_tiers_shares(monkeypatch, work, repair, rounds):
    """The promotions and the repair share what the walks leave: half to the promotions in whole walks, the rest to
    the repair (at most ``SKYLINE_REPAIR`` walks' worth a base), what it leaves to the promotions (before: 3 walks'
    worth a base and up to 16 rounds whatever the walks had left; 28,740 pairs a walk is the public input J)."""
    monkeypatch.setattr(auto, "_walk_work", lambda problem: work)
    monkeypatch.setattr(auto, "_tier_work", lambda problem: work)   # (round 64: the tiers' gates count it apart)
    assert (auto.skyline_repair(None), auto.skyline_rounds(None)) == (repair, rounds)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=GATE + 1000))
def test_the_narrow_tier_stays_within_its_cap(work):
    """Every walk counted whole, the repair of both bases at what it is given: within ``SKYLINE_NARROW_WORK``
    wherever the tier runs (with round 62's shares: 14 walks' work, 611,660 pairs, at 43,690 pairs a walk)."""
    auto_work, tier_work = auto._walk_work, auto._tier_work
    try:
        auto._walk_work = auto._tier_work = lambda problem: work   # (round 64: the tiers' gates count it apart)
        if auto.skyline_keys(None) != skyline.KEYS:
            assert work > GATE
            return
        repair, rounds = auto.skyline_repair(None), auto.skyline_rounds(None)
    finally:
        auto._walk_work, auto._tier_work = auto_work, tier_work
    assert 0 <= repair <= auto.SKYLINE_REPAIR and 0 <= rounds <= auto.SKYLINE_ROUNDS
    assert work * (auto.SKYLINE_NARROW_WALKS + rounds) + 2 * repair * work <= auto.SKYLINE_NARROW_WORK
    # (nothing left unused: a whole promotion walk more would not fit, where the repair is whole; a repair less than
    # whole takes all the promotions leave)
    if repair == auto.SKYLINE_REPAIR and rounds < auto.SKYLINE_ROUNDS:
        assert work * (auto.SKYLINE_NARROW_WALKS + rounds + 1 + 2 * repair) > auto.SKYLINE_NARROW_WORK
    if repair < auto.SKYLINE_REPAIR:
        assert work * (auto.SKYLINE_NARROW_WALKS + rounds) + 2 * repair * work == auto.SKYLINE_NARROW_WORK


def _visits(monkeypatch) -> tuple[list[int], list[int]]:
    """Count what every walk (its problem's neighbours once, whole) and every rewalk (its free buffers and their
    neighbours) visits, and each walk's problem's neighbours a walk."""
    visits: list[int] = []
    per_walk: list[int] = []
    real_walk, real_rewalk = skyline.walk, skyline.rewalk

    def walk(sizes, nbrs, *args, **kwargs):
        per_walk.append(sum(len(row) for row in nbrs))
        visits.append(per_walk[-1])
        return real_walk(sizes, nbrs, *args, **kwargs)

    def rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free):
        visits.append(len(free) + sum(len(nbrs[i]) for i in free))
        return real_rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free)
    monkeypatch.setattr(skyline, "walk", walk)
    monkeypatch.setattr(skyline, "rewalk", rewalk)
    return visits, per_walk


def test_the_narrow_tiers_pairs_visited_stay_within_its_cap(monkeypatch):
    """A chain with long skips of 2,000 nodes (27,536 pairs a walk, the narrow tier): with round 62's shares its
    walks and repair visited 16.6 walks' worth (456,572 pairs); now at most ``SKYLINE_NARROW_WORK``, and the plan
    still packs and is the one ``skyline_within`` answers for."""
    p = _deep_2000()[2]   # (``_problem(deep_skips(2000))``, shared with test_quality_round62)
    work = auto._walk_work(p)
    assert auto.skyline_keys(p) == skyline.KEYS and work * 14 > auto.SKYLINE_NARROW_WORK   # (the premise)
    visits, per_walk = _visits(monkeypatch)
    # round 62's shares ran beyond the cap on this problem
    skyline.solve(p, keys=skyline.KEYS, rounds=_old_rounds(work), extra=skyline.EXTRA_KEYS, repair=auto.SKYLINE_REPAIR)
    assert sum(visits) * work > auto.SKYLINE_NARROW_WORK * per_walk[0]
    visits.clear()
    sol = auto.skyline_below(p, 2 * int(p.lower_bound))
    assert len(visits) > auto.SKYLINE_NARROW_WALKS   # (the repair ran)
    assert sum(visits) * work <= auto.SKYLINE_NARROW_WORK * per_walk[0]
    assert sol is not None and packs(p, sol)
    assert auto.skyline_within(p, sol.arena) and not auto.skyline_within(p, sol.arena - 1)


@functools.cache
def _dag300():
    """``_problem`` of ``random_dag(300, seed=1)``: made once for the six tests that read it (a frozen value)."""
    return _problem(memplan.benchmarks.scale.random_dag(300, seed=1))


def test_the_narrow_tiers_cap_binds_the_promotions(monkeypatch):
    """Where the cap leaves fewer promotion rounds than 1 << 18 did (a random DAG of 300 nodes, 14,608 pairs a walk:
    11 rounds before, 9 now), the walks, promotions and repair together stay within it (before: 24.3 walks' worth,
    354,320 pairs)."""
    p = _dag300()
    work = auto._walk_work(p)
    assert auto.skyline_rounds(p) < _old_rounds(work)   # (the premise)
    visits, per_walk = _visits(monkeypatch)
    sol = auto.skyline_below(p, 2 * int(p.lower_bound))
    assert sum(visits) * work <= auto.SKYLINE_NARROW_WORK * per_walk[0]
    assert sol is not None and packs(p, sol)


def test_the_default_repeats_under_the_cap():
    """Deterministic: the cap counts pairs visited, not time; the same graph plans to the same bytes twice (and its
    skyline walks, asked twice, end at the same offsets)."""
    g = deep_skips(2000)
    first, second = memplan.plan(g), memplan.plan(g)
    assert first.to_json() == second.to_json() and first.solver.get("name") == "skyline"
    memplan.verify(g, first)
    p = _deep_2000()[2]   # (``_problem(g)``)
    a, b = auto.skyline_below(p, 2 * int(p.lower_bound)), auto.skyline_below(p, 2 * int(p.lower_bound))
    assert a.offsets.tolist() == b.offsets.tolist() and a.info == b.info


# --- the wide tier: size's packing repaired within what the cap leaves (``skyline.solve``'s ``start``) -------------


def _widest(g: memplan.Graph, **opts):
    """The problem of the most pairs a walk that ``auto`` solves planning ``g``."""
    return max(problems_auto_solves(lambda: memplan.plan(g, **opts)), key=auto._walk_work)


def test_a_layered_graph_on_3_streams_below_size():
    """A layered graph of 1,000 nodes on 3 streams (243,512 pairs a walk: the wide tier): every walk, repaired or
    not, ended above size's 6,464,512 B (2.00% above the 6,337,536 B bound); size's packing with its top walked again
    largest first (``skyline.START_KEYS``) ends at 6,453,248 B (1.83%; with ``REPAIR_KEYS`` nothing lower). The plan
    verifies and repeats."""
    g = memplan.benchmarks.scale.layered_graph(1000)
    first = memplan.plan(g, streams=3)
    memplan.verify(g, first)
    assert (first.arena_bytes, first.lower_bound_bytes) == (6_453_248, 6_337_536)
    assert first.to_json() == memplan.plan(g, streams=3).to_json()


def test_the_start_repair_is_within_the_wide_cap_and_the_budget_verdict(monkeypatch):
    """A random DAG of 1,000 nodes on ``streams="auto"`` (112,252 pairs a walk): the walks, both repairs and size's
    repair visit at most ``SKYLINE_WIDE_WORK``; the size's repair is what ends lowest (2,694,144 B, size 2,713,600 B),
    and a memory budget's verdict (``skyline_within``, which runs size in full for it) answers with that arena."""
    p = _widest(memplan.benchmarks.scale.random_dag(1000, seed=0), streams="auto")
    work = auto._walk_work(p)
    assert not auto._narrow(p) and auto.skyline_start_repair(p) == auto.SKYLINE_REPAIR
    size = memplan.solvers.get_solver("size")(p)
    visits, per_walk = _visits(monkeypatch)
    sol = auto.skyline_below(p, size.arena - 1, size)
    assert sol is not None and packs(p, sol) and sol.info.get("skyline_start") == "size"
    assert (sol.arena, size.arena) == (2_694_144, 2_713_600)
    assert sum(visits) * work <= auto.SKYLINE_WIDE_WORK * per_walk[0]
    monkeypatch.undo()
    assert auto.skyline_within(p, sol.arena) and not auto.skyline_within(p, sol.arena - 1)
    assert auto.solve(p).arena == sol.arena


@pytest.mark.parametrize("walks, start", [(10, 0), (11, 1), (12, 2), (13, 3), (20, 3)])
def test_the_start_repair_gets_what_the_wide_cap_leaves(monkeypatch, walks, start):
    """After the 4 walks and the repair of both bases (3 walks' worth each), size's repair gets what
    ``SKYLINE_WIDE_WORK`` leaves, at most ``SKYLINE_REPAIR``; none in the narrow tier."""
    p = _dag300()
    assert auto.skyline_start_repair(p) == 0   # (the narrow tier: its cap is shared out)
    work = auto._walk_work(p)
    monkeypatch.setattr(auto, "SKYLINE_NARROW_WORK", work)
    monkeypatch.setattr(auto, "SKYLINE_WIDE_WORK", walks * work)
    assert auto.skyline_keys(p) == auto.SKYLINE_WIDE_KEYS and auto.skyline_start_repair(p) == start
