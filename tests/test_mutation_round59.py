"""Round 59 (mutation59): tests that kill the mutants ``docs/experiments/mutation_s59.py`` found alive in the code
added or changed since round 58 (``memplan/values.py``, ``solvers/search_repair.py``, the CP-SAT wrapper's worker
phases and wall stops, ``runtime/aten``'s ``returned_args`` / ``per_count`` / ``cache_growth`` / ``cache_paths``, the
pycuda executor's CPU-runnable issue path). Each test's docstring names the mutants (ids of
``docs/experiments/mutation_s59.txt``) it kills; each fails with its mutants applied and passes without."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from needs import need

import memplan
from memplan.values import _OPAQUE, frozen

# (conftest: problems sized for the default short search of at most 64 buffers, before round 59 widened it: the
# cpsat tests' intervals then reach their bound before CP-SAT runs)
pytestmark = pytest.mark.usefixtures("polish_limit_64")

# --- memplan/values.py ----------------------------------------------------------------------------------------------

def _nested(value, levels: int):
    """``value`` inside ``levels`` one-item lists."""
    for _ in range(levels):
        value = [value]
    return value


def test_frozen_keeps_200_levels_and_marks_what_lies_deeper():
    """The docstring's limit, exactly: a value 200 lists down is itself (kills values 1: ``_depth >= 200`` marked it),
    one 201 down is the marker (kills values 0: no limit), whether it sits in lists or in a set at the bottom
    (kills values 6: a set's entries frozen at its own depth); and a list holding itself hashes (the limit ends the
    walk) inside a dataclass built in code."""
    assert frozen(_nested(5, 200)) != frozen(_nested(6, 200))
    deep = frozen(_nested(5, 201))
    assert deep == frozen(_nested(6, 201))
    for _ in range(201):
        (deep,) = deep
    assert deep == _OPAQUE
    assert frozen(_nested({5}, 199)) != frozen(_nested({6}, 199))
    assert frozen(_nested({5}, 200)) == frozen(_nested({6}, 200))
    loop: list = []
    loop.append(loop)
    s = memplan.Schedule(order=loop, streams=())
    assert hash(s) == hash(s)


def test_frozen_takes_a_set_as_the_frozenset_of_its_entries():
    """A set (no ``tolist``) is the frozenset of its entries, not the one marker every opaque value shares (kills
    values 2: ``tolist`` called without asking whether there is one, a TypeError, so the marker): two sets that
    differ stand apart, equal ones alike."""
    assert frozen({1, 2}) == frozenset({1, 2})
    assert frozen({1, 2}) != frozen({1, 3})
    assert frozen([{1}, np.array([2, 3])]) == (frozenset({1}), (2, 3))


def test_by_value_compares_every_field_not_the_first_alone():
    """Two values equal in the first field and different in another are different (kills values 3: ``len(names)
    != 1`` read the first field of a dataclass of several as its whole value)."""
    assert memplan.Event("a", "b") != memplan.Event("a", "c")
    assert memplan.Schedule(order=("a", "b"), streams=(0, 0)) != memplan.Schedule(order=("a", "b"), streams=(0, 1))
    t = memplan.Tensor("x", 16)
    assert t != memplan.Tensor("x", 32) and t == memplan.Tensor("x", 16) and hash(t) == hash(memplan.Tensor("x", 16))


# --- memplan/solvers/search_repair.py -------------------------------------------------------------------------------

def _csr(n: int, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(bounds, adj, adjn) of the conflict graph of ``pairs`` over ``n`` buffers, as ``PackingSearch.csr`` /
    ``adjn`` give them."""
    adjn = [sorted({b for a, b in pairs if a == k} | {a for a, b in pairs if b == k}) for k in range(n)]
    bounds = np.cumsum([0] + [len(x) for x in adjn]).astype(np.int64)
    adj = np.asarray([u for x in adjn for u in x], dtype=np.int64)
    return bounds, adj, [np.asarray(x, dtype=np.int64) for x in adjn]


def test_pushed_down_rests_each_buffer_on_the_aligned_top_of_those_below():
    """Three conflicting buffers spread out (offsets 0, 300, 700) come down onto each other, each at the aligned top
    of the one below (kills repair 12: an empty neighbour slice, ``starts[b]:starts[b]``, put every buffer at 0); a
    buffer conflicting with none goes to 0."""
    from memplan.solvers.search_repair import pushed_down

    bounds, adj, _ = _csr(4, [(0, 1), (1, 2), (0, 2)])
    sizes = np.asarray([100, 100, 100, 50], dtype=np.int64)
    down = pushed_down(bounds, adj, sizes, 64, np.asarray([0, 300, 700, 900]), np.arange(4, dtype=np.int64))
    assert down.tolist() == [0, 128, 256, 0]


def test_free_part_takes_the_highest_tops_first_and_their_ties():
    """Four buffers conflicting with none, tops 10, 20, 40, 40 above the capacity 5, ``free=1``: the two highest
    (one, then its tie: no buffer left out reaches the lowest top taken) and no more (kills repair 7: no ``heapify``,
    the first listed popped first, 10, then every top above it; repair 8: ``while heap``, every buffer; repair 11:
    ``> low``, the tie left out)."""
    from memplan.solvers.search_repair import free_part

    _, _, adjn = _csr(4, [])
    sizes = np.asarray([10, 20, 40, 40], dtype=np.int64)
    taken, scanned = free_part(np.zeros(4, dtype=np.int64), sizes, adjn, np.arange(4, dtype=np.int64), 1, 5)
    assert taken.tolist() == [2, 3] and scanned == 0


def test_free_part_grows_from_the_peak_through_conflicts():
    """Buffer 1 (top 20) is above the capacity 15 and conflicts with buffer 0 below it (top 10); ``free=2`` takes both,
    the second reached through the conflict (kills repair 10: neighbours never pushed, only the peak taken); buffer 2,
    conflicting with neither, stays."""
    from memplan.solvers.search_repair import free_part

    _, _, adjn = _csr(3, [(0, 1)])
    taken, scanned = free_part(np.asarray([0, 10, 0]), np.asarray([10, 10, 12]), adjn,
                               np.arange(3, dtype=np.int64), 2, 15)
    assert taken.tolist() == [0, 1] and scanned == 2


# --- runtime/aten/returned_args.py (pure Python: no torch needed) ---------------------------------------------------

def test_returned_arguments_finds_each_place_an_unchanged_container_is_returned():
    """``state`` returned as itself inside a tuple and a dict is found at both paths (kills retargs 24: the identity
    test skipped, nothing found; retargs 25: ``is not``, every other object taken for it; retargs 28: tuples and lists
    not walked); a changed argument whose change is not a grown cache is not (kills retargs 29: ``not in changed``
    dropped the unchanged and kept the changed); an empty tuple argument is never looked for (kills retargs 27:
    Python's one ``()`` is found wherever the output holds one)."""
    from runtime.aten.returned_args import returned_arguments

    state, cfg, other = {"n": 1}, [1, 2], {"k": 0}
    out = (7, state, {"again": [state], "t": ()})
    given = [("state", state), ("cfg", cfg), ("other", other), ("empty", ())]
    assert returned_arguments(given, set(), set(), set(), out) == [("state", (1,)), ("state", (2, "again", 0))]
    assert returned_arguments([("state", state)], {"state"}, set(), set(), out) == []
    assert returned_arguments([("state", state)], {"state"}, {"state"}, set(), out) == [
        ("state", (1,)), ("state", (2, "again", 0))]
    assert returned_arguments([("state", state)], set(), set(), {"state"}, out) == []
    assert returned_arguments([("empty", ())], set(), set(), set(), (1, ())) == []


def test_put_arguments_never_writes_into_a_callers_container_put_already():
    """The export returned ``a`` (holding ``b``) and ``b`` itself inside it; a call passes an ``a`` holding another
    object than the ``b`` it passes: ``a`` is put whole and left as the caller has it, ``a["b"]`` still the caller's
    first object (kills retargs 26: the put paths never kept, ``b`` was then written into the caller's ``a``)."""
    from runtime.aten.returned_args import put_arguments

    b_inside, b_passed = ["inside"], ["passed"]
    a = {"b": b_inside}
    out = (0, {"b": ["rebuilt"]})
    got = put_arguments({"a": a, "b": b_passed}, (("b", (1, "b")), ("a", (1,))), out)
    assert got[1] is a and a["b"] is b_inside and a == {"b": ["inside"]}


# --- runtime/aten/per_count.py: the argument checks (before any export) ---------------------------------------------

@pytest.mark.parametrize("kw, words", [
    ({"share_arena": 1}, "share_arena must be True or False, not 1"),
    ({"limit": True}, "limit must be an int of at least 1 (the programs kept), got True"),
    ({"limit": 2.0}, "limit must be an int of at least 1 (the programs kept), got 2.0"),
])
def test_compile_per_count_refuses_a_bad_share_arena_or_limit_type(kw, words):
    """Refused before any export, naming the option and the value (kills percount 30: ``share_arena=1`` taken; percount
    31: ``type(limit) is not int`` dropped, ``True`` / ``2.0`` taken as a limit, the module then exported)."""
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.per_count import compile_per_count

    with pytest.raises(AtenExecutorError, match="compile_per_count: " + words.replace("(", r"\(").replace(")", r"\)")):
        compile_per_count(object(), (), **kw)


def test_a_new_count_rebuilds_only_the_programs_on_an_older_shared_arena():
    """``_settle`` after a larger count's compile: a program on the older, smaller shared arena is built again on the
    new one; a program already on the new arena, and one on an arena of its own (another device or alignment:
    ``generation_of`` None), are left as they are (kills percount 33: the skip dropped, every kept program built
    again at every new count, its CUDA graph captured again). Stand-ins for the compiled programs: no export."""
    import threading
    from collections import OrderedDict
    from types import SimpleNamespace

    torch = need("torch")
    from runtime.aten.layout import SharedArena
    from runtime.aten.per_count import PerCountPrograms

    class Program:
        def __init__(self, arena):
            self.executor = SimpleNamespace(layout=SimpleNamespace(arena=arena))
            self.program, self.rebuilt = object(), 0
            self.call_lock = threading.RLock()   # (``_settle`` takes it before the arena's: round 75's lock order)

        def _check_rebuild(self, torch, why):
            pass

        def _rebuild(self, program):
            self.rebuilt += 1

    shared = SharedArena()
    cpu = torch.device("cpu")
    old = Program(shared.take(torch, 64, 64, cpu))
    new = Program(shared.take(torch, 1 << 16, 64, cpu))
    own = Program(torch.zeros(16))
    assert shared.generation_of(old.executor.layout.arena) == 1 and shared.generation == 2
    counts = PerCountPrograms.__new__(PerCountPrograms)
    counts.arena, counts._lock, counts.programs = shared, threading.Lock(), OrderedDict(a=old, b=new, c=own)
    counts._settle()
    assert [old.rebuilt, new.rebuilt, own.rebuilt] == [1, 0, 0]


# --- runtime/aten/cache_growth.py: the refusal's words -------------------------------------------------------------

def test_grown_layer_names_an_added_layer_and_a_count_that_went_missing():
    """A layer the call added is named as added (kills growth 38: ``k > len(before)`` read past ``before``, an
    IndexError); a sliding layer's count before the call is told even where the layer after has none (kills
    growth 40: the counts left out whenever the layer after the call has none)."""
    from runtime.aten.cache_growth import grown_layer

    before = [("layers[0]", 6, None, 1)]
    assert grown_layer(before, [("layers[0]", 6, None, 1), ("layers[1]", 1, None, 2)]) == (
        "its layers[1] was added, holding 1 tokens")
    assert grown_layer([("layers[0]", 6, 6, 1)], [("layers[0]", 7, None, 3)]) == (
        "its layers[0] held 6 tokens before the call and 7 after, having seen 6 tokens before the call and None after")
    assert grown_layer(before, [("layers[0]", 7, None, 3)]) == "its layers[0] held 6 tokens before the call and 7 after"
    assert grown_layer(before, before) == "its layers were replaced"


# --- runtime/aten/cache_growth.py, cache_paths.py: transformers caches built by hand (no model, no export) ----------

def _cache(tokens: int = 3):
    """A ``DynamicCache`` of one layer holding ``tokens`` tokens."""
    torch = need("torch")
    need("transformers")
    from transformers.cache_utils import DynamicCache

    c = DynamicCache()
    c.update(torch.zeros(1, 2, tokens, 4), torch.zeros(1, 2, tokens, 4), 0)
    return c


def test_a_changed_container_around_an_untouched_cache_is_no_cache_growth():
    """``state["n"]`` renamed ``state["m"]`` beside its cache (as many leaves, another structure): not a change
    inside the cache, so ``nested_growth`` says None and ``input_changes``' refusal stands (kills growth 37: the
    structure test dropped, the change taken for a cache read)."""
    torch = need("torch")
    from runtime.aten.cache_growth import nested_growth, snapshot

    state = {"cache": _cache(), "n": 1}
    before = snapshot(torch, "state", state)
    assert nested_growth(torch, "state", state, before, (0, state["cache"])) == ([], None)
    del state["n"]
    state["m"] = 1
    assert nested_growth(torch, "state", state, before, (0, state["cache"])) is None


def test_an_encoder_decoder_caches_layers_are_both_caches_layers():
    """The layers of an ``EncoderDecoderCache`` (it has none of its own) are its self-attention cache's and its
    cross-attention cache's, labelled so (kills growth 36: the encoder-decoder branch skipped, no layer seen, so
    no growth of one could be named); and an ``EncoderDecoderCache`` is no ``DynamicCache`` (kills paths 43: any
    class of ``transformers.cache_utils`` taken for one)."""
    torch = need("torch")
    from transformers.cache_utils import EncoderDecoderCache

    from runtime.aten.cache_growth import layer_states
    from runtime.aten.cache_paths import is_dynamic_cache_class, is_encoder_decoder_cache

    e = EncoderDecoderCache(_cache(3), _cache(5))
    assert [s[:3] for s in layer_states(torch, e)] == [("self_attention_cache.layers[0]", 3, None),
                                                      ("cross_attention_cache.layers[0]", 5, None)]
    assert is_encoder_decoder_cache(e) and not is_dynamic_cache_class(e) and is_dynamic_cache_class(_cache())


# --- runtime/executor.py, runtime/cuda_core.py on the fake driver (tests/fake_cuda.py) ------------------------------

def _tiny_llama():
    from runtime.models import llama as L

    cfg = L.config("tiny")
    g = L.build_graph(cfg, "norms")
    return L, g, L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)


def test_the_one_gpu_executor_refuses_a_plan_over_two_devices(monkeypatch):
    """A plan of two devices is refused by the one-GPU ``Executor`` naming the count and the executor to use (kills
    executor 46: the check skipped)."""
    import fake_cuda

    fake_cuda.install(monkeypatch, devices=2)
    from memplan.errors import ExecutorError
    from runtime.executor import Executor

    _L, g, w, inp = _tiny_llama()
    split, p = memplan.plan_devices(g, 2, streams=2)
    with pytest.raises(ExecutorError, match=r"spans 2 devices: run it with runtime.multi_gpu"):
        Executor(split.graph, p, weights=w, inputs=inp)


def test_a_freed_executor_refuses_a_step(monkeypatch):
    """``run`` of a freed executor is refused before anything is issued (kills core 49: ``_live`` dropped from the
    step's checks, the step issued on freed memory)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.cuda_core import ExecutorStateError
    from runtime.executor import Executor

    L, g, w, inp = _tiny_llama()
    ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), weights=w, inputs=inp)
    ex.free()
    start = len(drv.trace)
    with pytest.raises(ExecutorStateError, match="was freed: its device memory is gone"):
        ex.run()
    assert not [t for t in drv.trace[start:] if t[1] in ("launch", "launch_pdl", "wait", "record")]


def test_a_capture_after_an_unsynchronized_step_begins_on_an_idle_device(monkeypatch):
    """``capture`` after ``run(sync=False)`` synchronizes the device before the capture begins (kills core 50: the
    synchronize dropped, the capture begun with the eager step's work still queued)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    L, g, w, inp = _tiny_llama()
    ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), weights=w, inputs=inp)
    try:
        ex.run(sync=False)
        start = len(drv.trace)
        ex.capture()
        ops = [t[1] for t in drv.trace[start:]]
        assert "ctx_sync" in ops and ops.index("ctx_sync") < ops.index("begin_capture"), ops[:20]
    finally:
        ex.free()


def test_an_eager_step_over_two_devices_waits_every_event_and_forks_once_all_have_set_up(monkeypatch):
    """A two-device plan run eagerly: every event the plan waits on is waited on, the cross-device ones too (kills
    core 57: ``local and`` dropped, the cross-device waits skipped in the eager step: a reader on device 1 not
    ordered after its writer on device 0); the step's first stream waits for device 1's fork event before it records
    the fork all streams start from (kills core 53: that wait dropped, device 1's setup unordered)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    _L, g, w, inp = _tiny_llama()
    split, p = memplan.plan_devices(g, 2, streams=2)
    ex = MultiGpuExecutor(split.graph, p, weights=w, inputs=inp)
    try:
        assert ex._cross
        start = len(drv.trace)
        ex.run()
        trace = drv.trace[start:]
        waited = {t[3] for t in trace if t[1] == "wait"}
        assert {ex._events[i].id for i in range(len(p.events))} <= waited
        main = ex.streams[ex.first[ex.stream_device[0]]].handle   # (``_issue``'s ``main``)
        fork_all = [k for k, t in enumerate(trace) if t[1] == "record" and t[2] == ex._fork_all_event.id]
        wait1 = [k for k, t in enumerate(trace) if t[1] == "wait" and t[3] == ex._fork[1].id and t[2] == main]
        assert fork_all and wait1 and wait1[0] < fork_all[0], (main, fork_all, wait1)
    finally:
        ex.free()



# --- memplan/solvers/cpsat.py: the worker phases and their wall-clock stops -----------------------------------------

NO_STOP = 600.0   # (a wall-clock stop no load reaches, where a test reads the work budget and not the clock)


def _intervals(seed: int, n: int = 120, shift: int = 0):
    """``docs/experiments/cpsat_s57.py``'s random interval problems (``test_cpsat_round58.problem``), ``shift`` steps
    later."""
    from memplan.problem import BufferProblem

    r = np.random.default_rng(seed)
    lo = r.integers(0, 100, n)
    return BufferProblem(sizes=r.integers(1, 64, n) * 8, lower=lo + shift, upper=lo + shift + r.integers(1, 40, n))


def _two_components():
    """Seed 0's problem twice, the second 200 steps after the first: two components, neither proved optimal by one
    worker at ``time_limit=1`` (each has 0.5 s)."""
    from memplan.problem import BufferProblem

    a, b = _intervals(0), _intervals(0, shift=200)
    return BufferProblem(sizes=np.concatenate([a.sizes, b.sizes]), lower=np.concatenate([a.lower, b.lower]),
                         upper=np.concatenate([a.upper, b.upper]))


@functools.cache
def _one_worker_solution():
    """``workers=1``'s solve of ``_intervals(0)`` (``time_limit=0.5``, a deterministic work budget), made once for the
    module, unpatched: the tests comparing a two-worker solve with it only read it."""
    from memplan.solvers import SolveOptions, solve

    return solve(_intervals(0), "cpsat", SolveOptions(time_limit=0.5, wall_limit=NO_STOP))


def test_an_interleaved_tie_keeps_the_one_workers_offsets(monkeypatch):
    """Where the interleaved workers come back with an arena equal to the one worker's (here: its own plan mirrored,
    a packing of the same arena), the one worker's offsets stay, byte for byte ``workers=1``'s plan (``PORTFOLIO``:
    kept unless the interleaved search finds a smaller arena; kills cpsat 18: ``better and`` dropped, any packing
    within the component's arena taken; cpsat 21: ``t.one.off is not None or``, every interleaved packing "better")."""
    from memplan.solvers import SolveOptions, cpsat, solve

    p = _intervals(0)
    one = _one_worker_solution()
    real = cpsat._interleave
    tied = []

    def mirrored(cp_model, then, deadline):
        out = []
        for t, more, stopped in real(cp_model, then, deadline):
            top = int((t.one.off + t.sub.sizes).max())
            out.append((t, more._replace(off=top - (t.one.off + t.sub.sizes)), stopped))
            tied.append(top)
        return out

    monkeypatch.setattr(cpsat, "_interleave", mirrored)
    two = solve(p, "cpsat", SolveOptions(time_limit=0.5, workers=2, wall_limit=NO_STOP))
    assert tied == [one.arena] and two.arena == one.arena
    assert two.offsets.tolist() == one.offsets.tolist()


def test_a_stop_before_a_later_components_interleaved_search_is_marked(monkeypatch):
    """Two components; the clock passes the interleaved phase's stop during the first one's interleaved search (a
    loaded machine), so the second's is never run: its one-worker plan stands and ``info["stopped"]`` says the stop
    fired (kills cpsat 17: the components after the stop left out of ``_interleave``'s answer, the stop unsaid)."""
    import types

    from memplan.solvers import SolveOptions, cpsat, solve

    class Clock:
        now = 1000.0

        def perf_counter(self) -> float:
            return self.now

    clock = Clock()
    real = cpsat._run
    runs: list[int] = []

    def slow_workers(solver, model, callback, wall=float("inf")):
        out = real(solver, model, callback, wall)
        runs.append(solver.parameters.num_workers)
        if solver.parameters.num_workers > 1:
            clock.now += 10 * NO_STOP   # (past any stop, after the run: this search itself was not cut)
        return out

    monkeypatch.setattr(cpsat, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(cpsat, "_run", slow_workers)
    with pytest.warns(Warning, match="wall-clock safety stop"):
        sol = solve(_two_components(), "cpsat", SolveOptions(time_limit=1.0, workers=2))
    assert runs.count(1) == 2 and 2 in runs, runs   # (both components searched by one worker, the first by two)
    assert sol.info.get("stopped") == "wall_clock"


def test_a_solve_the_clock_never_stopped_reports_no_stop(monkeypatch):
    """Progress messages of a solve no stop cut say nothing of the wall-clock stop (kills cpsat 15: "stopped by the
    wall-clock safety stop" reported for every component whenever ``progress`` is given)."""
    from memplan.solvers import SolveOptions, solve

    said: list[str] = []
    sol = solve(_intervals(0), "cpsat", SolveOptions(time_limit=0.5, workers=2, wall_limit=NO_STOP,
                                                     progress=said.append))
    assert "stopped" not in sol.info and said
    assert not [m for m in said if "wall-clock" in m], said


def test_a_one_worker_search_cpsat_reports_unsearched_is_counted_unsolved(monkeypatch):
    """Where CP-SAT's counts say the one worker ran no search (``hint_unsearched``: no branch, nothing better than the
    hint; forced here, as a presolve that spends the budget gives it), the component is counted in
    ``unsolved_components`` and warned of (kills cpsat 16: ``stopped is not None and``, the unsearched one-worker
    search taken for a search that found nothing better)."""
    import warnings

    from memplan.errors import UnusedOption
    from memplan.solvers import SolveOptions, cpsat, solve

    monkeypatch.setattr(cpsat, "hint_unsearched", lambda **kw: True)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        s = solve(_intervals(0), "cpsat", SolveOptions(time_limit=0.5, wall_limit=NO_STOP))
    assert s.info.get("unsolved_components") == 1, s.info
    assert [w for w in ws if issubclass(w.category, UnusedOption)]


def test_a_ctrl_c_in_the_interleaved_search_is_an_interruption_not_idle_workers(monkeypatch):
    """A Ctrl-C during the interleaved workers' search, before it found a solution: the solve says it was
    interrupted and keeps the one worker's plan; it does not also call the workers idle (kills cpsat 20: ``stopped
    is None and`` dropped, the interrupted search counted in ``idle_worker_components`` with an UnusedOption
    saying the workers had no effect)."""
    import warnings

    from memplan.errors import UnusedOption
    from memplan.solvers import SolveOptions, cpsat, solve

    p = _intervals(0)
    one = _one_worker_solution()
    real = cpsat._interleave

    def ctrl_c(cp_model, then, deadline):
        return [(t, more._replace(off=None), "interrupted") for t, more, _ in real(cp_model, then, deadline)]

    monkeypatch.setattr(cpsat, "_interleave", ctrl_c)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        s = solve(p, "cpsat", SolveOptions(time_limit=0.5, workers=2, wall_limit=NO_STOP))
    assert s.info.get("interrupted") is True and "idle_worker_components" not in s.info, s.info
    assert not [w for w in ws if issubclass(w.category, UnusedOption) and "had no effect" in str(w.message)]
    assert s.offsets.tolist() == one.offsets.tolist()
