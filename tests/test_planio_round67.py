"""Round 67 (planio): the GC pause with threads, int subclasses as sizes, and the CLI's options against hostile values.

- ``_gc.paused`` turned the process-wide collector off and on: a ``gc.disable()`` of another thread during a paused
  read was undone at its end (a CUDA graph capture's ``runtime.cuda_util._gc_held`` begun during a load then ran
  with the collector on), and two threads' pauses overlapping lost the later one's. It now holds the first
  generation's threshold at 0, shared by every running pause, and leaves the on/off switch to the program.
"""

from __future__ import annotations

import gc
import json
import threading

import pytest

import memplan
from memplan import _gc, examples


@pytest.fixture
def gc_state():
    """The collector on with its thresholds as found, and put back after the test whatever it did."""
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.enable()
    yield thresholds
    gc.set_threshold(*thresholds)
    (gc.enable if was else gc.disable)()


def _in_thread(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def _collections_during(fn) -> int:
    """How many automatic collections started while ``fn`` ran, in this thread (``gc.callbacks``)."""
    me = threading.get_ident()
    runs = []

    def seen(phase, info):
        if phase == "start" and threading.get_ident() == me:
            runs.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        fn()
    finally:
        gc.callbacks.remove(seen)
    return len(runs)


def _churn() -> None:
    """Enough container allocations (kept alive) to set off several automatic gen-0 collections."""
    keep = [[i] for i in range(20_000)]
    assert len(keep) == 20_000


def test_another_threads_gc_disable_during_a_pause_stands(gc_state):
    """Thread B turns the collector off while thread A is inside a paused call: after A's call it is still off
    (it was turned back on: the old pause's ``gc.enable()`` at its end)."""
    inside, done = threading.Event(), threading.Event()

    @_gc.paused
    def read():
        inside.set()
        assert done.wait(30)

    t = _in_thread(read)
    assert inside.wait(30)
    gc.disable()   # (thread B: this one)
    done.set()
    t.join(30)
    assert not gc.isenabled()
    gc.enable()
    assert gc.get_threshold() == gc_state


def test_a_capture_hold_begun_during_a_load_keeps_the_collector_off(gc_state):
    """``runtime.cuda_util._gc_held`` (a CUDA graph capture) begun in one thread while a load runs paused in another:
    the capture ran with the collector on once the load ended (the pause's ``gc.enable()``; the hold had found it
    off, so it did not turn it off itself)."""
    from runtime.cuda_util import _gc_held

    inside, done = threading.Event(), threading.Event()

    @_gc.paused
    def load():
        inside.set()
        assert done.wait(30)

    t = _in_thread(load)
    assert inside.wait(30)
    with _gc_held():
        done.set()
        t.join(30)
        assert not gc.isenabled()   # the capture's hold stands
    assert gc.isenabled() and gc.get_threshold() == gc_state


def test_overlapping_pauses_of_two_threads_share_one(gc_state):
    """A and B paused at once; A ends first: B's call still runs with no automatic collection (the old pause found
    the collector off in B and left it, and A's end turned it on under B), and after B the thresholds are back."""
    a_in, a_out, b_in, b_go = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    counted = []

    @_gc.paused
    def a():
        a_in.set()
        assert b_in.wait(30)

    @_gc.paused
    def b():
        b_in.set()
        assert b_go.wait(30)
        counted.append(_collections_during(_churn))

    ta = _in_thread(a)
    assert a_in.wait(30)
    tb = _in_thread(b)
    ta.join(30)
    a_out.set()
    b_go.set()
    tb.join(30)
    assert counted == [0], counted
    assert gc.isenabled() and gc.get_threshold() == gc_state
    assert _collections_during(_churn) > 0   # (the count can fail: outside a pause the churn sets some off)


def test_a_threshold_set_during_a_pause_stands_and_errors_restore(gc_state):
    """Another ``gc.set_threshold`` during the pause is the program's and stays; a pause ended by an exception puts the
    thresholds back; nested pauses end at the outermost; a threshold already 0 (collection off) is left 0."""
    @_gc.paused
    def sets():
        gc.set_threshold(5000, 20, 20)

    sets()
    assert gc.get_threshold() == (5000, 20, 20)
    gc.set_threshold(*gc_state)

    @_gc.paused
    def fails():
        assert gc.get_threshold()[0] == 0
        raise ValueError("x")

    with pytest.raises(ValueError):
        fails()
    assert gc.get_threshold() == gc_state

    @_gc.paused
    def outer():
        fails_inner()
        assert gc.get_threshold()[0] == 0   # still paused after the inner one ended

    @_gc.paused
    def fails_inner():
        pass

    outer()
    assert gc.get_threshold() == gc_state
    gc.set_threshold(0, 10, 10)
    sets_nothing = _gc.paused(lambda: None)
    sets_nothing()
    assert gc.get_threshold() == (0, 10, 10)


def test_a_paused_load_runs_no_collection_and_leaves_the_switch_alone(gc_state, tmp_path):
    """``load_graph`` through the pause: no automatic collection, the on/off switch never touched (a program that had
    the collector off keeps it off; on stays on)."""
    from memplan.io import load_graph

    (tmp_path / "g.json").write_text(json.dumps(examples.chain(5000).to_dict()))
    for on in (True, False):
        (gc.enable if on else gc.disable)()
        assert _collections_during(lambda: load_graph(str(tmp_path / "g.json"))) == 0
        assert gc.isenabled() is on and gc.get_threshold() == gc_state


# ---- int subclasses as sizes ---------------------------------------------------------------------------------------

class _Liar(int):
    """An int subclass whose arithmetic, comparisons and conversions lie: only its value (what ``json`` writes, and
    what ``operator.index`` of an int subclass returns) is the number."""

    def __add__(self, other):
        return 0

    __radd__ = __sub__ = __rsub__ = __add__

    def __mul__(self, other):
        return 1

    __rmul__ = __floordiv__ = __rfloordiv__ = __mod__ = __mul__

    def __lt__(self, other):
        return True

    __le__ = __lt__

    def __gt__(self, other):
        return False

    __ge__ = __gt__

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __index__(self):
        return 7

    def __int__(self):
        return 9

    def __neg__(self):
        return _Liar(0)


def test_int_subclass_sizes_are_their_values_everywhere():
    """CONTRACT.md: a size is a whole number of bytes. An int subclass given for sizes, offsets, the alignment and
    option values (a builder, ``graph_from_dict``, ``plan()``'s options): the plan is byte for byte the one of the
    plain values, and every integer it holds is a plain int (its arithmetic never reached the planner)."""
    g = examples.qkv_attention()
    doc = g.to_dict()
    liar = json.loads(json.dumps(doc))
    liar["alignment"] = _Liar(doc.get("alignment", 256))
    for t in liar["tensors"]:
        t["size"] = _Liar(t["size"])
        if "view_offset" in t:
            t["view_offset"] = _Liar(t["view_offset"])
    for n in liar["nodes"]:
        if isinstance(n.get("cost"), int):
            n["cost"] = _Liar(n["cost"])
    lg = memplan.graph_from_dict(liar)
    assert all(type(t.size) is int and type(t.view_offset) is int for t in lg.tensors)
    assert type(lg.alignment) is int
    want = memplan.plan(g, streams=2, memory_budget=10 ** 9, max_events=8).to_json()
    got = memplan.plan(lg, streams=_Liar(2), memory_budget=_Liar(10 ** 9), max_events=_Liar(8)).to_json()
    assert got == want
    p = memplan.plan(lg)
    assert all(type(o) in (int, type(None)) and type(s) is int for _, o, s in p.tensors)
