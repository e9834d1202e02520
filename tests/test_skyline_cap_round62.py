"""Round 62 (skyb): the wide skyline tier's one total cap (``auto.SKYLINE_WIDE_WORK``) covers its key walks, its extra
walks and the repair of both bases (``auto.skyline_repair``); ``PackingSearch.area_of`` is built only where read.

Each test failed before its change: the repair took ``SKYLINE_REPAIR`` walks' worth per base whatever the walks had
left (up to 10 walks' work against a cap counted for 3), and every ``PackingSearch`` built ``area_of`` up front.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from test_quality_round62 import _problem

from memplan.benchmarks import scale
from memplan.solvers import auto, search_tree, skyline
from memplan.solvers.options import SearchParams


def test_the_wide_tier_counts_every_walk_it_runs():
    assert auto.SKYLINE_WIDE_WALKS == len(auto.SKYLINE_WIDE_KEYS) + len(skyline.EXTRA_KEYS)


@pytest.mark.parametrize("work, walks", [(1, 3), (43691, 3), (419430, 3), (419431, Fraction(4194304 - 4 * 419431,
                                          2 * 419431)), (1 << 19, 2), (1 << 20, 0)])
def test_the_repair_gets_what_the_walks_leave_of_the_cap(monkeypatch, work, walks):
    monkeypatch.setattr(auto, "_walk_work", lambda problem: work)
    monkeypatch.setattr(auto, "_tier_work", lambda problem: work)   # (round 64: the tiers' gates count it apart)
    got = auto.skyline_repair(None)
    assert got == walks
    if auto.skyline_keys(None) == auto.SKYLINE_WIDE_KEYS:   # (the wide tier: walks and both repairs within the cap)
        assert work * auto.SKYLINE_WIDE_WALKS + 2 * got * work <= auto.SKYLINE_WIDE_WORK


def test_the_wide_tiers_pairs_visited_stay_within_its_cap(monkeypatch):
    """With the caps shrunk so that a random DAG of 300 nodes is in the wide tier and the cap binds (5 walks' worth:
    the 4 walks and half a walk of repair for each base), every walk counted whole and every rewalk's neighbours come
    to at most ``SKYLINE_WIDE_WORK`` walks' worth. (With ``SKYLINE_REPAIR`` per base, as before, its repair took 5.8
    walks' worth: 9.8 walks in all.)"""
    p = _problem(scale.random_dag(300, seed=1))
    work = auto._walk_work(p)
    monkeypatch.setattr(auto, "SKYLINE_NARROW_WORK", work)
    monkeypatch.setattr(auto, "SKYLINE_WIDE_WORK", 5 * work)
    assert auto.skyline_keys(p) == auto.SKYLINE_WIDE_KEYS and auto.skyline_repair(p) == Fraction(1, 2)
    per_walk = sum(len(row) for row in skyline.neighbours(p))
    visits = []
    real_walk, real_rewalk = skyline.walk, skyline.rewalk

    def walk(sizes, nbrs, *args, **kwargs):
        visits.append(per_walk)
        return real_walk(sizes, nbrs, *args, **kwargs)

    def rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free):
        visits.append(len(free) + sum(len(nbrs[i]) for i in free))
        return real_rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free)
    monkeypatch.setattr(skyline, "walk", walk)
    monkeypatch.setattr(skyline, "rewalk", rewalk)
    auto.skyline_below(p, int(p.lower_bound) * 2)
    assert len(visits) > auto.SKYLINE_WIDE_WALKS   # (the repair ran)
    assert sum(visits) * work <= auto.SKYLINE_WIDE_WORK * per_walk


def test_area_of_is_built_only_where_a_search_tracks_area():
    p = _problem(scale.layered_graph(300))
    budget = search_tree.WorkBudget(10**9, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(), budget)
    s.feasible(2 * int(p.lower_bound), "WAT", 5000)
    assert s._area_of is None   # (no focus: never read)
    s.track_area = True
    s.feasible(2 * int(p.lower_bound), "WAT", 5000)
    sizes, lower, upper = p.sizes.tolist(), p.lower.tolist(), p.upper.tolist()
    assert s.area_of == [s_ * (u - lo) for s_, lo, u in zip(sizes, lower, upper)]
