"""Round 62: the conflicting pairs a problem keeps (``BufferProblem.conflict_pairs``) are counted by the same ledger as
its CSR arrays (``_csrcache.LEDGER``, ``CSR_CACHE_BYTES``); a copy or a pickle of a problem carries no cached arrays;
the ledger can be cleared and survives a fork taken while its lock is held. Plans do not depend on what was kept.
No times: bytes, values and plan JSON.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan import _csrcache
from tests.problems import random_intervals
from tests.test_budget_round62 import _kept_bytes


@pytest.fixture
def ledger(monkeypatch):
    """A ledger of this test's own (the process's one holds other tests' problems)."""
    fresh = _csrcache.CsrLedger()
    monkeypatch.setattr(_csrcache, "LEDGER", fresh)
    return fresh


def _pairs_bytes(p) -> int:
    return sum(a.nbytes for a in p._conflict_pairs(1 << 20))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=25), st.integers(1, 3))
def test_pairs_cache_bound_is_honoured(calls, room):
    """Six live problems asked for their pairs or their CSR in a random order under a bound of ``room`` of the largest
    one's pairs: the pairs and CSR arrays kept on all of them together never pass it, the ledger's total is exactly
    what they keep, and every answer is the problem's own (made again where it was taken off)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
        problems = [random_intervals(seed=k, n=120 + 40 * k) for k in range(6)]
        pairs = [p._conflict_pairs(1 << 20) for p in problems]
        csr = [p._conflict_csr() for p in problems]
        _csrcache.LEDGER.clear()   # (``_conflict_csr`` asked for the pairs, kept under the default bound)
        limit = room * max(_pairs_bytes(p) for p in problems)
        mp.setattr(_csrcache, "CSR_CACHE_BYTES", limit)
        for k, want_pairs in calls:
            if want_pairs:
                a, b = problems[k].conflict_pairs()
                assert np.array_equal(a, pairs[k][0]) and np.array_equal(b, pairs[k][1])
                assert _csrcache.PAIRS_ATTR in problems[k].__dict__
            else:
                bounds, flat = problems[k].conflict_csr(as_lists=False)
                assert np.array_equal(bounds, csr[k][0]) and np.array_equal(flat, csr[k][1])
            assert _kept_bytes(problems) <= limit
            assert _csrcache.LEDGER.live_bytes() == _kept_bytes(problems)


def test_pairs_kept_are_read_only(ledger):
    """The kept pairs are shared by every caller: one writing into them would change the next caller's answer."""
    a, b = random_intervals(seed=4, n=200).conflict_pairs()
    with pytest.raises(ValueError):
        a[0] = 0
    with pytest.raises(ValueError):
        b[0] = 0


def test_pairs_over_the_bound_alone_are_not_kept(ledger, monkeypatch):
    """Pairs larger than the whole bound are not kept, and take no other problem's arrays off it."""
    small, big = random_intervals(seed=2, n=50), random_intervals(seed=3, n=400)
    small.conflict_csr()
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", ledger.total + 8)
    want = big._conflict_pairs(1 << 20)
    got = big.conflict_pairs()
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    assert _csrcache.PAIRS_ATTR not in big.__dict__
    assert _csrcache.ATTR in small.__dict__ and _csrcache.PAIRS_ATTR in small.__dict__


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copy_and_pickle_carry_no_cached_arrays(ledger, how):
    """A problem copied or pickled after its pairs and CSR were kept: the copy keeps none (the ledger counts the
    original only, so a copy carrying them escaped its bound), equals the original, and builds the same arrays."""
    p = random_intervals(seed=6, n=300)
    p.conflict_csr()
    p.overlap_count()
    assert _csrcache.ATTR in p.__dict__ and _csrcache.PAIRS_ATTR in p.__dict__
    before = ledger.live_bytes()
    q = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": lambda x: pickle.loads(pickle.dumps(x))}[how](p)
    assert not set(q.__dict__) - {f for f in p.__dataclass_fields__}
    assert ledger.live_bytes() == before
    assert q == p and q is not p
    assert all(np.array_equal(x, y) for x, y in zip(q.conflict_csr(as_lists=False), p.conflict_csr(as_lists=False)))
    assert all(np.array_equal(x, y) for x, y in zip(q.conflict_pairs(), p.conflict_pairs()))
    assert _csrcache.ATTR in p.__dict__   # (the original keeps its own)


def test_pickle_size_does_not_grow_with_the_cache(ledger):
    """A pickle of a problem is the same bytes whether or not its arrays were kept."""
    p = random_intervals(seed=7, n=300)
    cold = pickle.dumps(p)
    p.conflict_csr()
    assert pickle.dumps(p) == cold


def test_ledger_clear_takes_everything_off(ledger):
    problems = [random_intervals(seed=k, n=150) for k in range(3)]
    for p in problems:
        p.conflict_csr()
    assert ledger.live_bytes() > 0
    ledger.clear()
    assert ledger.live_bytes() == 0 and _kept_bytes(problems) == 0
    problems[0].conflict_csr()   # (and keeps again afterwards)
    assert ledger.live_bytes() == _kept_bytes(problems) > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_ledger_works_in_a_child_forked_while_its_lock_was_held():
    """A fork taken while another thread held the ledger's lock: the child's copy of the lock would stay held for
    ever, and its first ``conflict_csr`` hang. The child gets a lock of its own (its exit code says it finished)."""
    p = random_intervals(seed=8, n=200)
    lock = _csrcache.LEDGER._lock
    with lock:
        pid = os.fork()
        if pid == 0:   # the child: build and keep the arrays, then leave at once (no pytest teardown here)
            try:
                p.conflict_csr()
                p.conflict_pairs()
                os._exit(0 if _csrcache.LEDGER.live_bytes() > 0 else 1)
            except BaseException:
                os._exit(2)
    for _ in range(600):   # (a hang, not a time: up to a minute for a child that needs milliseconds)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the ledger's lock")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize("limit", [0, 1 << 14])
def test_plans_do_not_depend_on_what_was_kept(monkeypatch, limit):
    """The same graphs planned with the default bound and with a bound that keeps nothing or next to nothing (every
    ask builds the pairs and CSR again): byte-identical plan JSON."""
    from memplan.benchmarks.scale import layered_graph, random_dag

    graphs = [(layered_graph(120), 16), (random_dag(150), 8), (layered_graph(60), 1)]
    _csrcache.LEDGER.clear()
    want = [memplan.plan(g, streams=s).to_json() for g, s in graphs]
    monkeypatch.setattr(_csrcache, "LEDGER", _csrcache.CsrLedger())
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", limit)
    assert [memplan.plan(g, streams=s).to_json() for g, s in graphs] == want
