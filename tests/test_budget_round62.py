"""Round 62: a memory budget's costs: fork scoring's dense clocks, and the bound on the conflict arrays kept.

``budget.score_forks`` replays each fork's give-back (``events.Replay.rescore``); above ``DENSE_STREAMS`` streams a
clock is an int32 row, and every replayed node copied a row then merged into it, and compared it with its old row by
``np.array_equal``. Now a first merge is one ``np.maximum`` into a new row (``_merge_clock(fresh=True)``) and rows
are compared by their bytes (``_same_row``): checked here against the in-place merge of a copy, ``np.array_equal``
and the dict clocks (the reference of tests/test_perf_round48.py), fork scores included.

``BufferProblem.conflict_csr`` keeps its arrays on the problem; ``_csrcache.LEDGER`` bounds the bytes kept on all
live problems together (``CSR_CACHE_BYTES``), the least recently used taken off first. No times: bytes and values.
"""

from __future__ import annotations

import gc
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memplan import _csrcache
from memplan.optimize import events as E
from memplan.optimize.budget import score_forks
from memplan.optimize.streams import optimize
from tests.problems import random_intervals
from tests.test_perf_round48 import layered


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64), st.integers(0, 2**31 - 1), st.data())
def test_same_row_is_array_equal(width, seed, data):
    """Equal rows, and rows one entry apart anywhere (first, last, middle): ``_same_row`` is ``np.array_equal``."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 20, width, dtype=np.int32)
    b = a.copy()
    assert E._same_row(a, b) and np.array_equal(a, b)
    at = data.draw(st.integers(0, width - 1))
    b[at] += data.draw(st.sampled_from([1, -1, 1 << 16]))
    assert E._same_row(a, b) == np.array_equal(a, b) == False  # noqa: E712
    assert not E._same_row(a, a[:-1]) or width == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 40), st.integers(0, 2**31 - 1))
def test_fresh_merge_is_copy_then_merge(width, seed):
    """A fresh merge (``cur`` shared) gives what copying ``cur`` and merging into the copy gives, dense and dict, and
    leaves ``cur`` as it was: the rows ``_run`` and ``rescore`` made before, one numpy call fewer."""
    rng = random.Random(seed)
    cur = np.array([rng.randrange(50) for _ in range(width)], dtype=np.int32)
    other = np.array([rng.randrange(50) for _ in range(width)], dtype=np.int32)
    sd, s = rng.randrange(width), rng.randrange(width)
    count = rng.randrange(50, 100)
    was = cur.copy()
    want = cur.copy()
    want2, steps2 = E._merge_clock(want, other, sd, count, s, True)
    got, steps = E._merge_clock(cur, other, sd, count, s, True, True)
    assert want2 is want and got is not cur and np.array_equal(cur, was)
    assert got.dtype == want.dtype and np.array_equal(got, want) and steps == steps2 == 1
    dcur = {x: int(k) for x, k in enumerate(was) if k and x != s}
    dother = {x: int(k) for x, k in enumerate(other) if k}
    dwas = dict(dcur)
    want_d, _ = E._merge_clock(dict(dcur), dother, sd, count, s, False)
    got_d, dsteps = E._merge_clock(dcur, dother, sd, count, s, False, True)
    assert got_d is not dcur and dcur == dwas and got_d == want_d and dsteps == len(dother)
    assert {x: k for x, k in enumerate(want.tolist()) if k} == got_d   # (the row and the dict: one clock)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([8, 40, 1024]))
def test_fork_scores_dense_are_dict_scores(seed, streams):
    """Every fork's score (time saved, events, bytes) on a random layered graph: dense rows (forced at any stream count,
    ``DENSE_STREAMS=0``) and dict clocks give the same, exactly and with windows forced small."""
    from memplan.optimize import budget as B

    rng = random.Random(seed)
    g = layered(rng.randint(3, 6), rng.randint(8, 48), seed=seed)
    opt = optimize(g, streams)
    scores = {}
    for dense in (True, False):
        for windows in (False, True):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(E, "DENSE_STREAMS", 0 if dense else 1 << 30)
                if windows:
                    mp.setattr(B, "MAX_REPLAY_STEPS", 0)
                    mp.setattr(B, "REPLAY_WINDOW", 3)
                scores[dense, windows] = score_forks(g, opt, opt.schedule)
    assert scores[True, False] and scores[True, False] == scores[False, False]
    assert scores[True, True] == scores[False, True]


def _kept_bytes(problems) -> int:
    """The bytes of the conflict arrays (CSR and pairs: the ledger counts both) the live ``problems`` keep now."""
    return sum(sum(a.nbytes for a in _kept(p, attr)) for p in problems for attr in _csrcache.ATTRS)


def _kept(p, attr: str) -> tuple:
    """The arrays ``p`` keeps as ``attr`` (none if none): the pairs are kept as ``(chunk, (a, b))``."""
    value = p.__dict__.get(attr)
    if value is None:
        return ()
    return value[1] if attr == _csrcache.PAIRS_ATTR else value


@pytest.fixture
def ledger(monkeypatch):
    """A ledger of this test's own (the process's one holds other tests' problems)."""
    fresh = _csrcache.CsrLedger()
    monkeypatch.setattr(_csrcache, "LEDGER", fresh)
    return fresh


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=25), st.integers(1, 3))
def test_csr_cache_bound_is_honoured(calls, room):
    """Six live problems asked for their CSR in a random order under a bound of ``room`` of the largest one's arrays:
    the arrays kept on all of them together never pass it, the problem asked last keeps its own, and every answer is
    the problem's CSR (made again where it was taken off)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
        problems = [random_intervals(seed=k, n=120 + 40 * k) for k in range(6)]
        want = [p._conflict_csr() for p in problems]
        limit = room * max(sum(a.nbytes for a in w) for w in want)
        mp.setattr(_csrcache, "CSR_CACHE_BYTES", limit)
        for k in calls:
            bounds, flat = problems[k].conflict_csr(as_lists=False)
            assert np.array_equal(bounds, want[k][0]) and np.array_equal(flat, want[k][1])
            assert _csrcache.ATTR in problems[k].__dict__
            assert _kept_bytes(problems) <= limit
            assert _csrcache.LEDGER.live_bytes() == _kept_bytes(problems)
        assert problems[calls[-1]].conflict_csr() == (want[calls[-1]][0].tolist(), want[calls[-1]][1].tolist())


def test_csr_cache_least_recently_used_goes_first(ledger, monkeypatch):
    """Room for two: the one used least recently is taken off, not the one made first."""
    a, b, c = (random_intervals(seed=k, n=200) for k in range(3))

    def both(p) -> int:   # (the ledger counts the pairs beside the CSR arrays)
        return sum(x.nbytes for x in p._conflict_csr()) + sum(x.nbytes for x in p._conflict_pairs(1 << 20))

    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", both(a) + both(c) + 1024)
    a.conflict_csr()
    b.conflict_csr()
    a.conflict_pairs()
    a.conflict_csr()   # (a used again: b is now the least recent)
    c.conflict_csr()
    assert _csrcache.ATTR in a.__dict__ and _csrcache.ATTR not in b.__dict__ and _csrcache.ATTR in c.__dict__


def test_csr_cache_collected_problem_is_struck_off(ledger):
    """A problem collected takes its bytes off the total (the ledger holds no problem alive)."""
    p = random_intervals(seed=1, n=300)
    p.conflict_csr()
    assert ledger.live_bytes() > 0
    del p
    gc.collect()
    assert ledger.live_bytes() == 0


def test_csr_cache_over_the_bound_alone_is_not_kept(ledger, monkeypatch):
    """Arrays larger than the whole bound are not kept (and take no one else's room)."""
    small, big = random_intervals(seed=2, n=50), random_intervals(seed=3, n=400)
    small.conflict_csr()
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", ledger.total + 8)
    big.conflict_csr()
    assert _csrcache.ATTR not in big.__dict__ and _csrcache.ATTR in small.__dict__


def test_csr_cache_bound_under_threads(ledger, monkeypatch):
    """Four threads asking eight problems for their CSR at once: the same arrays each time, and afterwards the ledger's
    total is the bytes the problems hold, within the bound (solves may run in threads)."""
    import threading

    problems = [random_intervals(seed=k, n=150 + 10 * k) for k in range(8)]
    want = [p._conflict_csr()[1] for p in problems]
    limit = 3 * max(w.nbytes for w in want)
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", limit)
    bad: list[int] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            k = rng.randrange(len(problems))
            if not np.array_equal(problems[k].conflict_csr(as_lists=False)[1], want[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
    assert ledger.live_bytes() == _kept_bytes(problems) <= limit
