"""Round 39 (runtime): the pycuda executors on the fake driver (``tests/fake_cuda.py``), and the runtime's commands.

- ``KernelLibrary``'s launch configurations (``cuLaunchKernelEx``: PDL, carveout, wgmma) were kept for every
  (launch, stream, PDL) ever issued: a jittered step's spins (random cycle counts) added 40 to the tiny step's
  cache per step, and every executor sharing a library (``runtime.bench``) added its own addresses' set for the
  process's life. Now the 4096 most recently used are kept (``LAUNCH_CACHE_MAX``), the same launches issued.
- ``MultiGpuExecutor`` on fewer GPUs than its plan spans raised a plain RuntimeError, which ``except
  MemplanError`` (the CLI's and the callers' net) missed: now ``ExecutorError`` naming the plan, the GPUs it
  needs and the GPUs visible, before any allocation.
- Plans run unverified (``check_plan=False``) that the executors ran otherwise than they say: a fusion group
  whose members the plan puts on two streams (or interrupts on theirs) ran as one kernel on the last member's
  stream, after none of the first member's waits: now node by node, as planned; a wait issued before its event's
  record (an eager negative control since round 35) was captured as a wait on the previous step's record, outside
  the graph (CUDA refuses it mid-capture): ``capture`` now refuses naming the event; a one-device Plan built in
  code with a node or tensor on device 1 ran on device 0, and a weight given an arena offset ran in its own
  allocation: both refused naming the entry (every executor, ``emulate``, ``program_at``).
- ``python -m runtime.aten.sweep --only ''`` ran the whole list (hours on a CPU): now refused.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from needs import need

import memplan
from memplan.errors import ExecutorError, MemplanError, PlanFormatError
from runtime.models import llama as L

_DEVICE_WORK = ("alloc", "launch", "launch_pdl", "htod", "memset_d8", "memset_d32", "memset_d16", "dtod")


def _tiny(fuse: str = "norms"):
    cfg = L.config("tiny")
    g = L.build_graph(cfg, fuse)
    return cfg, g, L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)


def _launches(trace) -> list[tuple]:
    """The kernel launches of a trace: (path, stream handle, kernel, grid, block, args)."""
    return [t[1:] for t in trace if t[1] in ("launch", "launch_pdl")]


# -- 1. the launch configuration cache -------------------------------------------------------------------------

def _jittered_run(monkeypatch, limit: int | None, steps: int):
    """A fresh fake driver; ``steps`` jittered eager steps of the tiny 3-stream plan (a PDL library: the
    ``cuLaunchKernelEx`` path); the library's cache sizes after each step, and the launches issued."""
    import fake_cuda

    import runtime.kernels.library as library

    if limit is not None:
        monkeypatch.setattr(library, "LAUNCH_CACHE_MAX", limit, raising=False)
    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor, Jitter

    cfg, g, w, inp = _tiny("runtime")
    ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), weights=w, inputs=inp)
    assert ex.lib.pdl and ex.pdl_on
    sizes = []
    for k in range(steps):
        ex.run(jitter=Jitter(seed=k, prob=1.0, max_cycles=10 ** 9))
        sizes.append(len(ex.lib._configs))
    logits = ex.read("logits")
    ex.free()
    return sizes, _launches(drv.trace), logits


def test_the_launch_configuration_cache_is_bounded_and_issues_the_same_launches(monkeypatch):
    """Eight jittered steps grew the cache by one configuration per spin (40 per step, no bound); with a bound of
    50 it stays at 50, and the launches issued (kernels, streams, PDL or not, arguments) and the logits are those
    of a run whose bound is never reached."""
    sizes, launches, logits = _jittered_run(monkeypatch, 50, 8)
    assert max(sizes) <= 50 and sizes[-1] == 50, sizes
    with monkeypatch.context() as m:
        big_sizes, big_launches, big_logits = _jittered_run(m, 10 ** 6, 8)
    assert big_sizes[-1] > 200 and big_sizes == sorted(big_sizes)   # (unbounded: one more set per step)
    assert launches == big_launches
    assert np.array_equal(logits, big_logits)


def test_the_default_bound_holds_the_largest_step_many_times_over():
    """The bound must not make a timed step rebuild its configurations: the 8B step issues 354 launches."""
    from runtime.kernels.library import LAUNCH_CACHE_MAX, _Recent

    assert LAUNCH_CACHE_MAX >= 10 * 354
    r = _Recent(3)
    for k in "abc":
        r[k] = k
    assert r.get("a") == "a"   # a use keeps it
    r["d"] = "d"
    assert list(r) == ["c", "a", "d"] and r.get("b") is None


# -- 2. too few GPUs ------------------------------------------------------------------------------------------

def test_a_multi_gpu_executor_on_too_few_gpus_raises_the_runtimes_error_naming_the_counts(monkeypatch):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=1)
    from runtime.multi_gpu import MultiGpuExecutor

    _cfg, g, w, inp = _tiny()
    split, p = memplan.plan_devices(g, 2)
    with pytest.raises(ExecutorError, match=rf"plan {p.graph!r} needs 2 GPUs from first_device 0 \(GPUs 0..1\), 1 "
                                            "visible") as info:
        MultiGpuExecutor(split.graph, p, weights=w, inputs=inp)
    assert isinstance(info.value, MemplanError)
    assert not [t for t in drv.trace if t[1] in _DEVICE_WORK + ("peer",)]


# -- 3. plans the executors ran otherwise than they say ---------------------------------------------------------

def _segment_streams(trace, steps) -> dict[str, set[int]]:
    """Per node: the stream handles of the launches issued for it (between its jitter spin, probability 1, and the
    next node's), spins and prefetches left out."""
    from fake_cuda import node_segments

    return {n: {trace[j][2] for j in work if trace[j][1] in ("launch", "launch_pdl")}
            for n, (_spin, work) in node_segments(trace, steps).items()}


def _moved_to(plan, node: str, stream: int):
    return replace(plan, order=tuple((n, stream if n == node else s) for n, s in plan.order))


def _interrupted(plan, graph, group: str):
    """``plan`` with a node of the group's stream moved between the group's two members (order only)."""
    a, b = (graph.nodes[m].id for m in graph.groups()[group])
    st = dict(plan.order)
    order = [e for e in plan.order]
    ia = next(i for i, e in enumerate(order) if e[0] == a)
    mover = next(e for e in order[ia + 2:] if e[1] == st[a] and not graph.node(e[0]).attrs.get("group"))
    order.remove(mover)
    order.insert(ia + 1, mover)
    return replace(plan, order=tuple(order)), mover[0]


def test_a_fusion_group_the_plan_splits_runs_node_by_node_on_the_planned_streams(monkeypatch):
    """``l0.attn_norm_f`` (RMS_NORM ``l0.norm`` + MUL ``l0.norm_w``) with ``l0.norm`` moved to stream 1 (run
    unverified: rule 1 refuses it): the executor ran the fused kernel on ``l0.norm_w``'s stream 0, so nothing ran
    on stream 1 for ``l0.norm`` and its waits ordered nothing. Likewise a group interrupted on its stream by another
    node ran both members' work after that node. Read from the trace against the plan: every node's launches are
    on the stream the plan gives it, and ``l0.norm`` has its own."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor, Jitter

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    assert dict(p.order)["l0.norm"] == dict(p.order)["l0.norm_w"] == 0 and p.streams >= 2
    split = _moved_to(p, "l0.norm", 1)
    cut, mover = _interrupted(p, g, "l0.ffn_norm_f")
    for bad, group, what in ((split, "l0.attn_norm_f", "runs on several streams"), (cut, "l0.ffn_norm_f", "is interrupted")):
        with pytest.raises(memplan.UnsafePlan, match=rf"fusion group {group!r} {what}"):
            memplan.verify(g, bad)
        ex = Executor(g, bad, weights=w, inputs=inp, check_plan=False)
        try:
            handle = {s: ex.streams[s].handle for s in ex.used_streams}
            start = len(drv.trace)
            ex.run(jitter=Jitter(prob=1.0, max_cycles=2))
            seen = _segment_streams(drv.trace[start:], ex.program.steps)
            wrong = {n: (sorted(seen[n]), handle[s]) for n, s in bad.order if seen[n] - {handle[s]}}
            assert wrong == {}
            members = [g.nodes[m].id for m in g.groups()[group]]
            assert all(seen[m] for m in members), {m: seen[m] for m in members}   # each member's own kernel
        finally:
            ex.free()
    assert mover


def test_verified_plans_keep_their_fused_kernels():
    """The groups a verified plan runs fused are still fused (the new rule only reads plans rule 1 refuses)."""
    from runtime.step import program_at, unfusable_groups

    for fuse in ("norms", "runtime"):
        _cfg, g, _w, _inp = _tiny(fuse)
        for p in (memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))):
            assert not unfusable_groups(g, p)
            nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
            prog, _ = program_at(g, p, lambda n, label, nxt=nxt: next(nxt))
            assert prog.fused_groups == len(g.groups())


def test_a_capture_of_a_wait_before_its_record_is_refused_naming_the_event(monkeypatch):
    """``l0.set_k`` moved after ``l0.kq``, which waits on it (run unverified): an eager step waits for nothing, as
    in CUDA (round 35's negative control, kept); a capture waited on the previous step's record, outside the graph,
    which CUDA refuses mid-capture and the fake driver took. Now ``capture`` (and ``time_steps('graph')``) refuse
    naming the event before any capture begins; an event from a group's first member to its last is run unfused,
    so its wait follows its record."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    entry = next(e for e in p.order if e[0] == "l0.set_k")
    rest = [e for e in p.order if e != entry]
    k = next(i for i, e in enumerate(rest) if e[0] == "l0.kq")
    bad = replace(p, order=tuple(rest[:k + 1] + [entry] + rest[k + 1:]))
    ex = Executor(g, bad, weights=w, inputs=inp, check_plan=False)
    try:
        ex.run()
        start = len(drv.trace)
        for call in (ex.capture, lambda: ex.time_steps("graph", steps=1, repeats=1, warmup=0)):
            with pytest.raises(ExecutorError, match=r"waits on event 'l0\.set_k'->'l0\.kq' at 'l0\.kq' \(stream \d\) "
                                                    r"before 'l0\.set_k' records it"):
                call()
        assert not [t for t in drv.trace[start:] if t[1] == "begin_capture"]
        assert not ex.captured
    finally:
        ex.free()
    # an event inside a group (first member -> last, one stream): fused, its record came after the last's wait
    own = replace(p, events=p.events + (("l0.norm", "l0.norm_w"),))
    ex = Executor(g, own, weights=w, inputs=inp, check_plan=False)
    try:
        ex.capture()
        ex.replay(1)
    finally:
        ex.free()
    ex = Executor(g, p, weights=w, inputs=inp)   # the plan itself still captures
    ex.capture()
    ex.free()


def _one_device_strays(g, p):
    wt = next(t for t in g.tensors if t.kind == "weight")
    yield (replace(p, node_devices=(0,) * (len(p.order) - 1) + (1,)),
           rf"puts node {p.order[-1][0]!r} on device 1, outside 0..0 \(the plan spans 1 device\)")
    yield (replace(p, tensor_devices=(0, 3) + (0,) * (len(p.tensors) - 2)),
           rf"puts tensor {p.tensors[1][0]!r} on device 3, outside 0..0")
    yield (replace(p, tensors=tuple((t, 0 if t == wt.id else o, s) for t, o, s in p.tensors)),
           rf"gives tensor {wt.id!r} arena offset 0, but it lives in weight {wt.id!r}'s own memory")


@pytest.mark.parametrize("case", range(3))
def test_a_one_device_plan_naming_another_device_or_a_weight_offset_is_refused(monkeypatch, case):
    """A Plan built in code (a plan file is refused by ``load_plan``): a node or tensor on device 1 of a one-device
    plan (verified "safe": ``verify`` reads no device fields of a one-device plan) ran on device 0; a weight given
    an arena offset (rule 4, run unverified) ran in its own allocation. Each is refused naming the entry, by the
    executor (verified or not), ``emulate`` and ``program_at``, before any device work."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.step import program_at

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    bad, pattern = list(_one_device_strays(g, p))[case]
    for check in (True, False):
        with pytest.raises((PlanFormatError, memplan.UnsafePlan), match=pattern if not check or case < 2 else "."):
            Executor(g, bad, weights=w, inputs=inp, check_plan=check)
    with pytest.raises(PlanFormatError, match=pattern):
        emulate(g, bad, w, inp)
    with pytest.raises(PlanFormatError, match=pattern):
        program_at(g, bad, lambda n, label: 1 << 40)
    assert not [t for t in drv.trace if t[1] in _DEVICE_WORK]
    zeros = replace(p, node_devices=(0,) * len(p.order), tensor_devices=(0,) * len(p.tensors))
    ex = Executor(g, zeros, weights=w, inputs=inp)   # device 0 written out is the plan itself
    ex.run()
    ex.free()


def test_a_duplicated_event_runs_as_the_plan_says(monkeypatch):
    """The same (after, before) pair listed twice: two CUDA events, each recorded after ``after`` on its stream and
    waited on before ``before`` on its own (the plan's meaning, read from the trace)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    a, b = ("l0.set_k", "l0.kq")
    twice = replace(p, events=p.events + ((a, b),))
    memplan.verify(g, twice)
    ex = Executor(g, twice, weights=w, inputs=inp)
    try:
        st = dict(p.order)
        ids = [ex._events[i].id for i, e in enumerate(twice.events) if e == (a, b)]
        start = len(drv.trace)
        ex.run()
        trace = drv.trace[start:]
        for eid in ids:
            rec = [t for t in trace if t[1] == "record" and t[2] == eid]
            wait = [t for t in trace if t[1] == "wait" and t[3] == eid]
            assert [t[3] for t in rec] == [ex.streams[st[a]].handle]
            assert [t[2] for t in wait] == [ex.streams[st[b]].handle]
            assert trace.index(rec[0]) < trace.index(wait[0])
    finally:
        ex.free()


# -- 4. commands ------------------------------------------------------------------------------------------------

def test_aten_sweep_refuses_an_empty_only_instead_of_running_every_model(capsys):
    """``--only ''`` read as no ``--only``: every model of the list ran (over 400, hours on a CPU). Run in-process (a
    subprocess spent seconds importing torch); the status through the real entry point is test_runtime_cli's."""
    from cli_contract import exit_code

    need("torch")   # (runtime.aten.sweep builds its models' classes at import)
    from runtime.aten.sweep import main

    code = exit_code(main, ["--device", "cpu", "--only", ""])
    out, err = capsys.readouterr()
    assert code == 2, out[-300:]
    assert err.strip().splitlines() == ["python -m runtime.aten.sweep: --only '': no model names (see --list)"]
    assert "models; budget" not in out


def test_a_split_plans_capture_refuses_a_devices_own_wait_before_its_record(monkeypatch):
    """On two devices: an event of device 1's own streams reversed (run unverified) is refused by ``capture`` naming
    it; a cross-device event is not captured (the per-device graphs wait on each other instead), and a reversed one
    is left to the stage order, which names the devices."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    _cfg, g, w, inp = _tiny()
    split, p = memplan.plan_devices(g, 2, streams=2)
    dev = dict(zip((n for n, _s in p.order), p.node_devices))
    own = next(e for e in p.events if dev[e[0]] == dev[e[1]] == 1)
    cross = next(e for e in p.events if dev[e[0]] != dev[e[1]])
    for (a, b), is_own in ((own, True), (cross, False)):
        pattern = (rf"capture: plan .* waits on event {b!r}->{a!r} at {a!r} \(stream \d\) before {b!r}" if is_own
                   else r"devices \[0, 1\] wait on each other")
        bad = replace(p, events=tuple(e for e in p.events if e != (a, b)) + ((b, a),))
        ex = MultiGpuExecutor(split.graph, bad, weights=w, inputs=inp, check_plan=False)
        try:
            ex.run()
            start = len(drv.trace)
            with pytest.raises(ExecutorError, match=pattern):
                ex.capture()
            assert not [t for t in drv.trace[start:] if t[1] == "begin_capture"]
        finally:
            ex.free()
