"""Round 76 (api76): the library under threads, forks, copies and pickles.

- ``_gc.paused`` in a forked child: a child forked while another thread was inside a pause ran its whole life with
  automatic garbage collection off, and one forked while another thread held the pause's lock hung at its first plan.
- Module-level locks held for a whole step (``EXPORT_LOCK`` for a torch export, the ``.pt2`` load lock, the minimalloc
  CSV parse lock, ...): a child forked while another thread held one hung at its first import, load or parse
  (``_forklocks``).
- ``Lifetimes`` and ``io.minimalloc.CsvTable`` compare and hash by value (``==`` raised numpy's ValueError).
- ``warnings.catch_warnings`` blocks of two threads (ONNX imports at once) overlapped, and the first's
  ``simplefilter("ignore")`` stayed on the process for good (``_warnblock``).
- torch's default dtype, changed for a record check (``layouts._under_default_dtype``) in two threads at once, was
  left at the first's for good.
- Exceptions copied or pickled (a worker process re-raises them in the parent) keep their message and fields.
"""

from __future__ import annotations

import copy
import gc
import os
import pickle
import signal
import threading
import warnings

import pytest
from thread_forks import child_status, forked_beside

from memplan import _forklocks, _gc
from memplan.importers.torch.common import EXPORT_LOCK
from memplan.io import minimalloc


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_child_forked_during_another_threads_pause_collects_again():
    """A worker forked while another thread plans: its automatic collection is back on (it was off for good: the
    pausing thread never runs in the child), and its own pauses put it back after them."""
    before = gc.get_threshold()
    assert before[0] != 0

    @_gc.paused
    def planning(started, release):
        started.set()
        release.wait(10)

    def child() -> int:
        if gc.get_threshold() != before:
            return 1
        _gc.paused(lambda: None)()
        return 0 if gc.get_threshold() == before else 2

    assert forked_beside(planning, child) == 0
    assert gc.get_threshold() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_child_forked_while_another_thread_held_the_pause_lock_does_not_hang():
    def holding(started, release):
        with _gc._lock:
            started.set()
            release.wait(10)

    def child() -> int:
        signal.alarm(5)   # (a hang ends the child with SIGALRM: a status other than 0)
        _gc.paused(lambda: None)()
        return 0

    assert forked_beside(holding, child) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forking_thread_keeps_its_own_pause_in_the_child():
    """A fork taken inside a pause of the forking thread itself: the child still runs that pause (collection off
    until it leaves it), then has the thresholds back."""
    before = gc.get_threshold()

    @_gc.paused
    def inside() -> int:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gc.get_threshold()[0] == 0 and _gc._depth == 1 else 1)
        return child_status(pid)

    assert inside() == 0
    assert gc.get_threshold() == before and _gc._depth == 0


def _holding(lock):
    def hold(started, release):
        with lock:
            started.set()
            release.wait(10)
    return hold


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_child_forked_during_another_threads_csv_parse_can_parse():
    def child() -> int:
        signal.alarm(5)
        table = minimalloc.parse_csv("id,lower,upper,size\nb0,0,3,4\n")
        return 0 if table.ids == ("b0",) else 1

    assert forked_beside(_holding(minimalloc._FIELD_LIMIT_LOCK), child) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_child_forked_during_another_threads_export_can_export():
    def child() -> int:
        if not EXPORT_LOCK.acquire(timeout=5):
            return 1
        EXPORT_LOCK.release()
        return 0

    assert forked_beside(_holding(EXPORT_LOCK), child) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forking_thread_keeps_its_own_rlock_in_the_child():
    """A fork from inside the thread's own hold of a registered RLock: the child's thread still holds it and lets go
    of it (a lock made free under it would raise "cannot release un-acquired lock")."""
    assert EXPORT_LOCK in _forklocks._LOCKS
    with EXPORT_LOCK:
        pid = os.fork()
        if pid == 0:
            try:
                ok = EXPORT_LOCK._is_owned()
                EXPORT_LOCK.release()
                EXPORT_LOCK.acquire()   # (the ``with`` lets go of it again)
                os._exit(0 if ok else 1)
            except BaseException:
                os._exit(2)
    assert child_status(pid) == 0


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))])
def test_written_buffer_refusal_survives_a_copy_or_pickle(how):
    from memplan.importers.torch.int_buffers import WrittenBuffer

    e = WrittenBuffer(["enc.stride", "dec.pad"])
    e2 = how(e)
    assert type(e2) is WrittenBuffer and str(e2) == str(e) and e2.paths == ["enc.stride", "dec.pad"]
    assert e2.refusal("x") == e.refusal("x")


def test_lifetimes_compare_and_hash_by_value():
    import memplan
    from memplan import examples
    from memplan.lifetimes import compute_lifetimes

    g = examples.views_inplace()
    hb = memplan.build_happens_before(g, memplan.serial_schedule(g))
    a, b = compute_lifetimes(g, hb), compute_lifetimes(g, hb)
    for other in (b, pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        assert a == other and hash(a) == hash(other)
    other_graph = examples.chain()
    c = compute_lifetimes(other_graph, memplan.build_happens_before(other_graph, memplan.serial_schedule(other_graph)))
    assert a != c


def test_csv_tables_compare_and_hash_by_value():
    text = "id,lower,upper,size\nb0,0,3,4\nb1,1,2,8\n"
    a, b = minimalloc.parse_csv(text), minimalloc.parse_csv(text)
    assert a == b and hash(a) == hash(b) and a == pickle.loads(pickle.dumps(a))
    assert a != minimalloc.parse_csv(text.replace(",8", ",16"))
    assert len(repr(minimalloc.parse_csv("id,lower,upper,size\n" + "".join(f"b{i},0,1,1\n" for i in range(500))))) < 20000


def test_overlapping_warning_blocks_of_two_threads_leave_the_filters_as_they_were(monkeypatch):
    """Thread A folds an ONNX node (its evaluator silenced) while thread B draws (the memory map's glyph filter): B's
    block no longer starts inside A's, so B cannot put back, on leaving last, the "ignore" filter A had on."""
    import numpy as np
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from memplan.importers.onnx import fold
    from memplan.viz import memmap

    before = list(warnings.filters)
    a_inside, a_go, b_inside, b_go = (threading.Event() for _ in range(4))
    run = ReferenceEvaluator.run

    def held_run(self, *args, **kwargs):
        a_inside.set()
        a_go.wait(10)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ReferenceEvaluator, "run", held_run)

    def a():
        fold._evaluate(helper.make_node("Relu", ["x"], ["y"]), [np.ones(2, np.float32)], {"": 17})

    def b():
        with memmap._no_glyph_warnings():
            b_inside.set()
            b_go.wait(10)

    ta = threading.Thread(target=a, daemon=True)
    ta.start()
    assert a_inside.wait(10)
    tb = threading.Thread(target=b, daemon=True)
    tb.start()
    b_inside.wait(0.3)   # (set at once without the lock; with it, B waits for A)
    a_go.set()
    ta.join(10)
    b_go.set()
    tb.join(10)
    assert not ta.is_alive() and not tb.is_alive()
    assert warnings.filters == before


def test_overlapping_default_dtype_blocks_leave_the_default_as_it_was():
    """A's block changes the default, B's starts inside it and leaves last: without the lock B put back A's dtype."""
    torch = pytest.importorskip("torch")
    from memplan.importers.torch import layouts

    before = torch.get_default_dtype()
    a_inside, a_go, b_inside, b_go = (threading.Event() for _ in range(4))

    def held(inside, go):
        def run():
            inside.set()
            go.wait(10)
            return [1]
        return run

    ta = threading.Thread(target=layouts._under_default_dtype, args=(torch, torch.float64, held(a_inside, a_go)),
                          daemon=True)
    ta.start()
    assert a_inside.wait(10)
    tb = threading.Thread(target=layouts._under_default_dtype, args=(torch, torch.float16, held(b_inside, b_go)),
                          daemon=True)
    tb.start()
    b_inside.wait(0.3)   # (inside at once without the lock; with it, B waits for A)
    a_go.set()
    ta.join(10)
    b_go.set()
    tb.join(10)
    assert not ta.is_alive() and not tb.is_alive()
    after = torch.get_default_dtype()
    torch.set_default_dtype(before)   # (for the tests after this one, where it failed)
    assert after == before
