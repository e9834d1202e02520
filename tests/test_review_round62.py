"""Round 62's review: the CSR ledger (``memplan._csrcache``) after ``fork`` and across ``pickle`` / ``copy``.

The ledger is process-wide state with a lock, and the arrays it bounds live on the problems: a fork while another
thread held the lock, or a copy of a problem carrying the arrays, escaped it (a hang, arrays never taken off)."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time

import pytest

from memplan import _csrcache
from tests.problems import random_intervals


@pytest.fixture
def ledger(monkeypatch):
    """A ledger of this test's own (the process's one holds other tests' problems)."""
    fresh = _csrcache.CsrLedger()
    monkeypatch.setattr(_csrcache, "LEDGER", fresh)
    return fresh


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_forked_child_is_not_stuck_on_a_lock_held_at_fork(ledger):
    """Another thread inside the ledger (its lock held) as the process forks: the child's first ``conflict_csr``
    still answers (before: it waited for good on the copied, held lock)."""
    problem = random_intervals(seed=1, n=200)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ledger._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:   # the child: exit 0 once the CSR is made and kept
            try:
                problem.conflict_csr()
                os._exit(0 if _csrcache.ATTR in problem.__dict__ else 3)
            except BaseException:   # noqa: BLE001 - any failure is the child's exit code
                os._exit(4)
    finally:
        release.set()
        t.join()
    status = None
    for _ in range(200):   # (a hang is the failure: the child is killed after 10 s, not timed)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the ledger's lock")
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copies_do_not_carry_the_kept_arrays(ledger, how):
    """A copied or unpickled problem holds no CSR arrays of its original (which the ledger would never take off it),
    answers the same CSR, and then keeps it on the ledger's books; the original keeps its own."""
    problem = random_intervals(seed=2, n=300)
    want = problem.conflict_csr()
    assert _csrcache.ATTR in problem.__dict__
    other = {"copy": copy.copy, "deepcopy": copy.deepcopy,
             "pickle": lambda p: pickle.loads(pickle.dumps(p))}[how](problem)
    assert _csrcache.ATTR not in other.__dict__
    assert other == problem and _csrcache.ATTR in problem.__dict__
    assert other.conflict_csr() == want
    assert ledger.live_bytes() == _kept_bytes(problem) + _kept_bytes(other) == 2 * _kept_bytes(problem)


def _kept_bytes(problem) -> int:
    """The bytes the ledger counts for ``problem``: its CSR arrays and, where kept, its conflicting pairs."""
    n = sum(a.nbytes for a in problem.__dict__[_csrcache.ATTR])
    pairs = problem.__dict__.get(_csrcache.PAIRS_ATTR)
    return n + (sum(a.nbytes for a in pairs[1]) if pairs is not None else 0)


def test_host_outputs_refuses_a_program_unpaired_with_its_export():
    """``_host_outputs`` pairs the export's user outputs with ``Program.user_outputs`` by position: a program listing
    another number of them is refused with the executor's error naming both counts (before: an ``assert``, a bare
    AssertionError, and nothing at all under ``python -O``, where ``zip`` then paired them wrongly)."""
    from needs import need

    torch = need("torch")
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.executor import _host_outputs

    class Two(torch.nn.Module):
        def forward(self, x):
            return x + 1, x * 2

    program = compile(Two(), (torch.ones(3),), streams=1).executor.program
    assert len(_host_outputs(torch, program, torch.device("cuda"))) == 2
    short = copy.copy(program)
    object.__setattr__(short, "user_outputs", program.user_outputs[:1])
    with pytest.raises(AtenExecutorError, match="1 user outputs where its export has 2"):
        _host_outputs(torch, short, torch.device("cuda"))


def test_after_fork_counts_the_total_again(ledger):
    """A fork cut a thread's ``_forget`` short between its entry and its sum: the child's total is the bytes its
    entries hold (before: off by that entry for good)."""
    problem = random_intervals(seed=3, n=200)
    problem.conflict_csr()
    kept = ledger.total
    ledger.total += 12345   # (the state the cut leaves)
    _csrcache._reset_after_fork()
    assert ledger.total == kept and ledger.live_bytes() == kept
