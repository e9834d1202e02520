"""Round 63: the last caches kept outside ``_csrcache.LEDGER`` and the pairs listed only to be counted.

``HBOrder.first_csr`` (an order's precedence columns) and ``BufferProblem._compatible_keys`` (the in-place pairs'
sorted keys) were kept on their owner for as long as it lived, outside the ledger's bound: now they are counted by it,
least recently used taken off first, and built again (the same arrays) when asked after. ``overlap_count`` keeps
nothing (it needs no cache). ``conflict_count`` counts the conflicting pairs without listing them, where ``size``,
``slack_on_top`` and the in-place rejoin listed them only to take their length."""

from __future__ import annotations

import copy
import gc
import pickle
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan import _csrcache, generators
from memplan.errors import SolverError
from memplan.lifetimes import buffer_problem
from memplan.problem import BufferProblem, HBOrder
from memplan.solvers import auto, rejoin, size, solve


@pytest.fixture
def ledger(monkeypatch):
    """A ledger of this test's own (the process's one holds other tests' problems)."""
    fresh = _csrcache.CsrLedger()
    monkeypatch.setattr(_csrcache, "LEDGER", fresh)
    return fresh


def _ordered(seed: int, n: int = 300) -> BufferProblem:
    """A multi-stream problem of a fan-out/join graph on its own 4-stream schedule (an ``HBOrder``)."""
    g, s = generators.fanout_join(n, seed=seed)
    return buffer_problem(g, memplan.build_happens_before(g, s), clique=False)


def _random(seed: int, n: int = 60, streams: int = 3, pairs: int = 40, alignment: int = 1) -> BufferProblem:
    """A random problem with a random HB order and in-place pairs (any integer arrays make an order; the relation is
    whatever they say, which is all the counting and the caches read)."""
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, 40, n)
    upper = lower + rng.integers(0, 12, n)   # (some empty: lower == upper)
    sizes = rng.integers(0, 5, n) * rng.integers(1, 300, n)   # (some of 0 bytes)
    order = HBOrder(first=rng.integers(0, 30, (n, streams)), visible=rng.integers(0, 30, (n, streams)),
                    has_start=rng.random(n) < 0.1, has_end=rng.random(n) < 0.1,
                    last_time=lower + rng.integers(0, 6, n))
    compatible = {(int(a), int(b)) for a, b in rng.integers(0, n, (pairs, 2)) if a != b}
    return BufferProblem(sizes=sizes, lower=lower, upper=upper, order=order, compatible=compatible,
                         alignment=alignment)


def _held(owner, attr: str) -> tuple:
    """The arrays ``owner`` keeps as ``attr`` now (none if none; the pairs are kept as ``(chunk, (a, b))``)."""
    value = owner.__dict__.get(attr)
    if value is None:
        return ()
    return value[1] if attr == _csrcache.PAIRS_ATTR else value


def _held_bytes(problems) -> int:
    """The bytes the ledger should count: every kept array on the problems and on their orders."""
    total = 0
    for p in problems:
        total += sum(a.nbytes for attr in _csrcache.ATTRS for a in _held(p, attr))
        if p.order is not None:
            total += sum(a.nbytes for a in _held(p.order, _csrcache.FIRST_ATTR))
    return total


def _first_csr_fresh(order: HBOrder) -> tuple:
    """``order.first_csr()`` built anew (a copy carries no kept columns)."""
    return copy.copy(order).first_csr()


def _same(x: tuple, y: tuple) -> bool:
    return len(x) == len(y) and all(np.array_equal(a, b) for a, b in zip(x, y))


# --- HBOrder.first_csr ---------------------------------------------------------------------------------------------

def test_first_csr_is_counted_and_the_least_recently_used_goes(ledger, monkeypatch):
    """Four orders' columns under room for two: the least recently used order's columns are taken off (before: each
    order kept its own for as long as it lived, outside any bound), the ledger counts exactly what is kept, and
    every answer, made again after it was taken off, is the same arrays."""
    problems = [_ordered(seed=k) for k in range(4)]
    want = [_first_csr_fresh(p.order) for p in problems]
    each = max(sum(a.nbytes for a in w) for w in want)
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 2 * each + 8)
    for k in (0, 1, 0, 2, 3, 1, 0):
        assert _same(problems[k].order.first_csr(), want[k])
        assert _csrcache.FIRST_ATTR in problems[k].order.__dict__
        assert ledger.live_bytes() == _held_bytes(problems) <= 2 * each + 8
    # the last three asked (3, 1, 0) held at most two: 3, the least recent, went first
    assert _csrcache.FIRST_ATTR not in problems[3].order.__dict__
    assert _csrcache.FIRST_ATTR not in problems[2].order.__dict__


def test_first_csr_taken_off_gives_the_same_pairs_and_plan(ledger, monkeypatch):
    """An order whose columns were taken off between conflict tests answers as before: the same conflicting pairs and
    the same packing (the cap at 0: nothing kept, every test builds them again)."""
    p = _ordered(seed=5, n=400)
    pairs = p._conflict_pairs(1 << 20)
    sol = solve(p, "auto")
    q = _ordered(seed=5, n=400)
    ledger.clear()   # (``p``'s arrays, kept under the default cap)
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 0)
    got = q._conflict_pairs(1 << 20)
    assert _same(got, pairs)
    sol2 = solve(q, "auto")
    assert sol2.arena == sol.arena and np.array_equal(sol2.offsets, sol.offsets)
    assert _csrcache.FIRST_ATTR not in q.order.__dict__ and ledger.live_bytes() == 0


def test_first_csr_is_read_only_and_not_copied(ledger):
    """The kept columns are shared by every caller (written into, the next test read them changed), and a copy or a
    pickle of an order carries none (it would escape the ledger, which counts the original's)."""
    order = _ordered(seed=1).order
    ptr, cols, vals = order.first_csr()
    for a in (ptr, cols, vals):
        with pytest.raises(ValueError):
            a[:1] = 0
    names = {f.name for f in fields(order)}
    for other in (copy.copy(order), pickle.loads(pickle.dumps(order))):
        assert set(other.__dict__) <= names and other == order
    assert _csrcache.FIRST_ATTR in order.__dict__


def test_first_csr_of_a_collected_order_is_struck_off(ledger):
    p = _ordered(seed=2)
    p.order.first_csr()
    assert ledger.live_bytes() > 0
    del p
    gc.collect()
    assert ledger.live_bytes() == 0


# --- BufferProblem._compatible_keys --------------------------------------------------------------------------------

def test_compatible_keys_are_counted_and_the_least_recently_used_go(ledger, monkeypatch):
    """Four problems' in-place keys under room for two: the least recently used problem's keys are taken off (before:
    kept on the problem outside any bound), and the keys made again are the same."""
    problems = [_random(seed=k, n=400, pairs=300) for k in range(4)]
    want = [np.array(sorted(x * len(p) + y for x, y in p.compatible), dtype=np.int64) for p in problems]
    each = max(w.nbytes for w in want)
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 2 * each + 8)
    for k in (0, 1, 0, 2, 3, 1, 0):
        assert np.array_equal(problems[k]._compatible_keys(), want[k])
        assert _csrcache.KEYS_ATTR in problems[k].__dict__
        assert ledger.live_bytes() == _held_bytes(problems) <= 2 * each + 8
    assert _csrcache.KEYS_ATTR not in problems[3].__dict__ and _csrcache.KEYS_ATTR not in problems[2].__dict__
    with pytest.raises(ValueError):
        problems[0]._compatible_keys()[:1] = 0


def test_compatible_keys_taken_off_give_the_same_conflicts(ledger, monkeypatch):
    """With nothing kept (cap 0) the in-place pairs are found again for every test: the same conflicting pairs."""
    p = _random(seed=9, n=200, pairs=150)
    want = p._conflict_pairs(7)
    q = _random(seed=9, n=200, pairs=150)
    ledger.clear()
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 0)
    assert _same(q._conflict_pairs(7), want)
    assert _csrcache.KEYS_ATTR not in q.__dict__ and ledger.live_bytes() == 0


# --- every kept array together -------------------------------------------------------------------------------------

_ASKS = ("first_csr", "keys", "pairs", "csr", "count")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(_ASKS)), min_size=1, max_size=30), st.integers(0, 4))
def test_everything_kept_stays_within_the_bound(calls, room):
    """Five problems with orders and in-place pairs asked for any kept array in a random order under a bound of
    ``room`` of the largest one's pairs: what all of them (and their orders) keep never passes it, the ledger's total
    is exactly that, and every answer is the problem's own (made again where it was taken off)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
        problems = [_random(seed=k, n=50 + 20 * k, pairs=30) for k in range(5)]
        want = {}
        for k, p in enumerate(problems):
            want[k, "first_csr"] = _first_csr_fresh(p.order)
            want[k, "keys"] = (np.array(sorted(x * len(p) + y for x, y in p.compatible), dtype=np.int64),)
            want[k, "pairs"] = p._conflict_pairs(1 << 20)
            want[k, "csr"] = p._conflict_csr()
            want[k, "count"] = len(want[k, "pairs"][0])
        _csrcache.LEDGER.clear()
        limit = room * max(sum(a.nbytes for a in want[k, "pairs"]) for k in range(5))
        mp.setattr(_csrcache, "CSR_CACHE_BYTES", limit)
        for k, ask in calls:
            p = problems[k]
            got = _ask(p, ask)
            assert got == want[k, ask] if ask == "count" else _same(got, want[k, ask])
            assert _csrcache.LEDGER.live_bytes() == _held_bytes(problems) <= limit


def _ask(p: BufferProblem, ask: str):
    if ask == "first_csr":
        return p.order.first_csr()
    if ask == "keys":
        return (p._compatible_keys(),)
    if ask == "pairs":
        return p.conflict_pairs()
    return p.conflict_csr(as_lists=False) if ask == "csr" else p.conflict_count()


def test_a_plan_is_the_same_with_nothing_kept(monkeypatch):
    """A whole multi-stream plan with in-place pairs with the cap at 0 (every cache taken off as soon as made) writes
    the same plan JSON as with the default cap."""
    from memplan.benchmarks.scale import transformer_graph

    g = transformer_graph(3)
    want = memplan.plan(g, streams=2).to_json()
    monkeypatch.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 0)
    assert memplan.plan(g, streams=2).to_json() == want
    assert _csrcache.LEDGER.live_bytes() == 0


# --- overlap_count -------------------------------------------------------------------------------------------------

def _overlap_sweep(p: BufferProblem) -> int:
    """The count as the sweep made it (round 62's ``overlap_count``)."""
    idx = p._live_sweep()
    ends = np.searchsorted(p.lower[idx], p.upper[idx], side="left")
    return int(np.maximum(ends - np.arange(len(idx)) - 1, 0).sum())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20), st.integers(0, 6)), max_size=40))
def test_overlap_count_is_the_sweeps_and_keeps_nothing(rows):
    """Equal to the sweep's count and to the pairs counted one by one (zero sizes and empty intervals included), and
    nothing is left on the problem."""
    p = BufferProblem(sizes=[s for s, _, _ in rows], lower=[lo for _, lo, _ in rows],
                      upper=[lo + d for _, lo, d in rows])
    live = [k for k, (s, _, d) in enumerate(rows) if s > 0 and d > 0]
    brute = sum(1 for i in live for j in live if i < j and p.lower[i] < p.upper[j] and p.lower[j] < p.upper[i])
    before = set(p.__dict__)
    assert p.overlap_count() == _overlap_sweep(p) == brute
    assert set(p.__dict__) == before


# --- conflict_count ------------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 50), st.integers(0, 400), st.booleans())
def test_conflict_count_is_the_pairs_length_without_listing_them(seed, chunk, stop, ordered):
    """The count is ``len(conflict_pairs()[0])`` for any chunk, lists no pair (``_conflict_pairs`` refused) and,
    without a bound, keeps nothing; with ``stop_above`` it is the count when at most that, and the pairs are kept as
    ``conflict_pairs(chunk)`` lists them, else some number above it, nothing kept."""
    p = _random(seed=seed, n=80)
    if not ordered:
        p = BufferProblem(sizes=p.sizes, lower=p.lower, upper=p.upper, compatible=p.compatible)
    want = len(BufferProblem(sizes=p.sizes, lower=p.lower, upper=p.upper, order=p.order,
                             compatible=p.compatible)._conflict_pairs(1 << 20)[0])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
        mp.setattr(BufferProblem, "_conflict_pairs", _refused)
        assert p.conflict_count(chunk=chunk) == want
        assert _csrcache.PAIRS_ATTR not in p.__dict__ and _csrcache.ATTR not in p.__dict__   # no bound: none kept
        got = p.conflict_count(stop_above=stop, chunk=chunk)
        assert got == want if want <= stop else got > stop
        assert _csrcache.ATTR not in p.__dict__
        if want <= stop:   # (within the caller's bound the pairs it lists next are kept: the very listing)
            kept_chunk, (a, b) = p.__dict__[_csrcache.PAIRS_ATTR]
            mp.undo()
            ref = BufferProblem(sizes=p.sizes, lower=p.lower, upper=p.upper, order=p.order,
                                compatible=p.compatible)._conflict_pairs(chunk)
            assert kept_chunk == chunk and a.tolist() == ref[0].tolist() and b.tolist() == ref[1].tolist()
            assert not a.flags.writeable
        else:
            assert _csrcache.PAIRS_ATTR not in p.__dict__


def _refused(self, chunk):
    raise AssertionError("the pairs were listed")


def test_conflict_count_reads_the_kept_arrays(ledger, monkeypatch):
    """Kept pairs or CSR arrays are counted as they are (no pass over the sweep)."""
    p = _random(seed=3, n=120)
    want = len(p.conflict_pairs()[0])
    monkeypatch.setattr(BufferProblem, "_overlapping", lambda self, chunk: _refused(self, chunk))
    assert p.conflict_count() == want
    p.conflict_csr()
    p.__dict__.pop(_csrcache.PAIRS_ATTR)
    assert p.conflict_count() == want


@pytest.mark.parametrize("stop, chunk", [("3", 1), (1.5, 1), (None, 0), (None, "x")])
def test_conflict_count_refuses_bad_arguments(stop, chunk):
    with pytest.raises(SolverError, match="BufferProblem.conflict_count: (stop_above|chunk) must be an integer"):
        _random(seed=1).conflict_count(stop_above=stop, chunk=chunk)


class _Listed:
    """Counts ``_conflict_pairs`` calls (every listing of the pairs, kept or not)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = BufferProblem._conflict_pairs

        def counted(problem, chunk):
            self.calls += 1
            return real(problem, chunk)
        monkeypatch.setattr(BufferProblem, "_conflict_pairs", counted)


def test_size_lists_the_pairs_once_where_none_are_kept(ledger, monkeypatch):
    """``size`` with nothing kept (as above the ledger's bound): the pairs listed once, for the CSR (before: once more
    only to count them); the same packing."""
    p = _ordered(seed=4, n=400)
    want = size.solve(p)
    ledger.clear()
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 0)
    listed = _Listed(monkeypatch)
    got = size.solve(p)
    assert listed.calls == 1
    assert got.arena == want.arena and np.array_equal(got.offsets, want.offsets)


def test_slack_on_top_does_not_list_pairs_it_will_not_use(ledger, monkeypatch):
    """Over ``SLACK_PAIRS`` conflicting pairs ``slack_on_top`` gives up: it now counts them, stopping past the cap,
    where it listed them all; under the cap it finds the same lift."""
    p = _random(seed=11, n=200, alignment=256)
    sol = solve(p, "greedy")
    pairs = len(p._conflict_pairs(1 << 20)[0])
    assert pairs > 10
    want = auto.slack_on_top(p, sol, tries=4)
    ledger.clear()
    listed = _Listed(monkeypatch)
    monkeypatch.setattr(auto, "SLACK_PAIRS", pairs - 1)
    assert auto.slack_on_top(p, sol, tries=4) is None
    assert listed.calls == 0
    monkeypatch.setattr(auto, "SLACK_PAIRS", pairs)
    got = auto.slack_on_top(p, sol, tries=4)
    assert (got is None) == (want is None)
    if got is not None:
        assert got.arena == want.arena and np.array_equal(got.offsets, want.offsets)


def test_rejoin_picks_as_the_listed_count_did(ledger, monkeypatch):
    """``_blocked_test``'s choice at every bound around the pairs' cost is the one the listed pairs gave, and where
    the conflict lists are over the bound no pair is listed. (The sweep in pieces of one overlapping pair: the count
    stops at the first piece past its cap, so a cap one too low would answer one pair short of the listed count.)"""
    real = BufferProblem._overlapping
    monkeypatch.setattr(BufferProblem, "_overlapping", lambda self, chunk: real(self, 1))
    p = _ordered(seed=6, n=300)
    pairs = len(p._conflict_pairs(1 << 20)[0])
    offsets, sizes = np.zeros(len(p), dtype=np.int64), p.sizes
    for apart in (0, 1, 7):
        for work in (2 * pairs + apart - 1, 2 * pairs + apart, 2 * pairs + apart + 1, apart, 0):
            ledger.clear()
            monkeypatch.setattr(rejoin, "REJOIN_WORK", work)
            with pytest.MonkeyPatch.context() as mp:
                listed = _Listed(mp)
                got = rejoin._blocked_test(p, offsets, sizes, apart)
                if 2 * pairs + apart > work:
                    assert listed.calls == 0
            want = (rejoin._Neighbours if 2 * pairs + apart <= work else
                    rejoin._Scan if len(p) * apart <= work else type(None))
            assert type(got) is want
