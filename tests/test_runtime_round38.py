"""Round 38 (runtime review): the pycuda executors' issue sequence read back from the fake driver's trace.

The fake driver (``tests/fake_cuda.py``) runs every operation at once in host order, so it never shows a race.
Here its trace is read as CUDA would run it: each operation after the ones issued before it on its stream and
after the last record of every event it waits on (``_trace_hb``), and compared with an independent reading of
the plan (its streams' order and its events, ``_plan_hb``):

- a split plan's eager step: device 0's COPY of ``pos`` into device 1's arena was ordered after nothing of
  device 1's, so device 1's poison (its arena set to NaN at the start of the step) could land over the copied
  bytes on two GPUs; now no node of any device starts before every device's setup is done;
- every plan happens-before pair (a, b) is a trace happens-before from a's work to b's, eager and captured
  (per-device graphs: within a device's capture, and across devices through the stage order), and every
  capture is closed (no operation on a stream outside it, no wait on an event recorded outside it, every
  forked stream joined back);
- an executor sharing a freed executor's weights (``weights_from``) ran, and replayed its graphs, on freed
  device memory; a multi-device capture failing on one device kept the other devices' graphs, which ``replay``
  then ran alone;
- a view that an edited plan puts off its root's bytes (run unverified) was bound at its own offset, so writes
  through the root never reached it: now refused naming the view, before any allocation.
"""

from __future__ import annotations

import pytest
from fake_cuda import STREAM_OPS as _STREAM_OPS
from fake_cuda import node_segments as _segments
from plan_mutators import plan_with_a_view_moved_off_its_roots_device

import memplan
from runtime.models import llama as L


def _trace_hb(trace) -> dict[int, int]:
    """Per stream operation (index into ``trace``): the bit set of the operations that happen before it in CUDA's
    reading: earlier operations on its stream, and for a wait the last record of its event issued before it."""
    last_on: dict[object, int] = {}
    last_rec: dict[int, int] = {}
    reach: dict[int, int] = {}
    for i, t in enumerate(trace):
        if t[1] not in _STREAM_OPS:
            continue
        s, m = t[_STREAM_OPS[t[1]]], 0
        before = [last_on[s]] if s in last_on else []
        if t[1] == "wait" and t[3] in last_rec:
            before.append(last_rec[t[3]])
        for j in before:
            m |= reach[j] | (1 << j)
        reach[i], last_on[s] = m, i
        if t[1] == "record":
            last_rec[t[2]] = i
    return reach


def _plan_hb(plan) -> tuple[list[str], list[int]]:
    """The plan's own happens-before, read from its order, streams and events alone: node ids in order, and per
    node the bit set of the order positions that happen before it."""
    order = [n for n, _ in plan.order]
    pos = {n: i for i, n in enumerate(order)}
    sources: dict[str, list[int]] = {}
    for a, b in plan.events:
        sources.setdefault(b, []).append(pos[a])
    last: dict[int, int] = {}
    reach: list[int] = []
    for i, (n, s) in enumerate(plan.order):
        m = 0
        for j in ([last[s]] if s in last else []) + sources.get(n, []):
            m |= reach[j] | (1 << j)
        reach.append(m)
        last[s] = i
    return order, reach


def _missing_hb(ex, trace, device: int | None = None, plan=None) -> list[tuple[str, str]]:
    """Plan happens-before pairs (a, b) whose work the trace does not order: some launch or copy of a's (of the
    node that finishes it: a fused group's last member) that does not happen before b starts. ``device``: the
    trace is that device's capture; pairs from another device must be ordered by the stage order instead. ``plan``:
    the plan to read the pairs from (default: the executor's)."""
    order, preach = _plan_hb(plan or ex.plan)
    fin, dev = ex.program.finished_by, {s.node: s.device for s in ex.program.steps}
    steps = [s for s in ex.program.steps if device is None or s.device == device]
    seg, reach = _segments(trace, steps), _trace_hb(trace)
    out = []
    for bi, b in enumerate(order):
        if device is not None and dev[b] != device:
            continue
        for ai, a in enumerate(order):
            if not preach[bi] >> ai & 1 or fin[a] == fin[b]:
                continue
            if device is not None and dev[a] != device:
                if dev[a] not in _upstream(ex.layout, device):
                    out.append((a, b))
            elif any(not reach[seg[b][0]] >> j & 1 for j in seg[fin[a]][1] if trace[j][1] != "record"):
                out.append((a, b))
    return out


def _upstream(lay, d: int) -> set[int]:
    """The devices whose per-device graph runs before device ``d``'s (``Layout.waits_on``, transitively)."""
    seen, todo = set(), [d]
    while todo:
        for w in lay.waits_on[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _captures(trace) -> list[tuple[int, list]]:
    """(device, operations) of each capture in ``trace``."""
    out, start = [], None
    for i, t in enumerate(trace):
        if t[1] == "begin_capture":
            start = i
        elif t[1] == "end_capture":
            out.append((trace[start][0], trace[start: i]))
    return out


def _capture_faults(ops) -> list[str]:
    """What CUDA refuses in one capture (``ops[0]`` its begin): an operation on a stream that never joined it (it
    would run at once, outside the graph), a wait on an event recorded outside it, a joined stream not joined
    back to the origin stream before the end."""
    origin = ops[0][2]
    joined, events, last, out = {origin}, set(), {}, []
    for j, t in enumerate(ops[1:], 1):
        if t[1] not in _STREAM_OPS:
            continue
        s = t[_STREAM_OPS[t[1]]]
        if t[1] == "wait" and t[3] not in events:
            out.append(f"wait on event {t[3]} recorded outside the capture")
        elif t[1] == "wait":
            joined.add(s)
        elif s not in joined:
            out.append(f"{t[1]} on stream {s}, outside the capture")
        if t[1] == "record":
            events.add(t[2])
        last[s] = j
    reach = _trace_hb(ops)
    end = last.get(origin)
    out += [f"stream {s} not joined back" for s, j in last.items()
            if s != origin and (end is None or not reach[end] >> j & 1)]
    return out


def _executor(monkeypatch, devices: int, streams, batch: int, fuse: str):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=devices)
    from runtime.executor import Executor
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    if devices == 1:
        ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), weights=w, inputs=inp,
                      prefetch=L.prefetch_plan(g, cfg))
    else:
        split, p = memplan.plan_devices(g, devices, streams=streams)
        ex = MultiGpuExecutor(split.graph, p, weights=w, inputs=inp)
    return drv, ex, cfg


CASES = [(1, None, 1, "norms"), (1, None, 16, "runtime"), (2, None, 1, "norms"), (2, 2, 16, "runtime"),
         (3, 2, 1, "runtime")]


@pytest.mark.parametrize("devices,streams,batch,fuse", CASES)
def test_an_eager_step_orders_every_plan_pair_and_every_setup_before_any_node(monkeypatch, devices, streams, batch,
                                                                               fuse):
    """Eager, poisoned: every plan happens-before pair is ordered in the trace, and every node's work (a COPY into
    another device's arena above all) after every device's poison and input copies. Before: device 0's COPY
    nodes into device 1's arena (``pos``, ``kv_idx``, ``mask`` and the layer outputs) were not ordered after
    device 1's poison memset of that arena."""
    from runtime.executor import Jitter, Poison

    drv, ex, cfg = _executor(monkeypatch, devices, streams, batch, fuse)
    try:
        start = len(drv.trace)
        ex.run(poison=Poison(ranges=L.kv_poison_ranges(ex.graph, cfg)), jitter=Jitter(seed=0, prob=1.0, max_cycles=2))
        trace = drv.trace[start:]
        assert _missing_hb(ex, trace) == []
        reach, seg = _trace_hb(trace), _segments(trace, ex.program.steps)
        first = min(i for i, _ in seg.values())
        setup = [i for i in range(first) if trace[i][1] in ("memset_d32", "memset_d16", "dtod")]
        assert setup
        late = [(trace[j][:3], trace[i][:4]) for _s, ops in seg.values() for j in ops if trace[j][1] != "record"
                for i in setup if not reach[j] >> i & 1]
        assert late == [], late[:3]
    finally:
        ex.free()


@pytest.mark.parametrize("devices,streams,batch,fuse", CASES)
def test_captured_graphs_are_closed_and_order_every_plan_pair(monkeypatch, devices, streams, batch, fuse):
    """Each device's capture: no operation outside it, no wait on an outside event, every stream joined back; in
    it every plan pair of that device is ordered, and a pair from another device is ordered by the stage order."""
    from runtime.executor import Jitter, Poison

    drv, ex, cfg = _executor(monkeypatch, devices, streams, batch, fuse)
    try:
        start = len(drv.trace)
        ex.capture(poison=Poison(ranges=L.kv_poison_ranges(ex.graph, cfg)), jitter=Jitter(prob=1.0, max_cycles=2))
        caps = _captures(drv.trace[start:])
        assert sorted(d for d, _ in caps) == list(range(devices))
        for d, ops in caps:
            assert _capture_faults(ops) == []
            assert _missing_hb(ex, ops[1:], device=d) == []
    finally:
        ex.free()


def test_the_trace_reading_sees_a_dropped_plan_event(monkeypatch):
    """The negative control of the readers above: with one plan event dropped (verification bypassed), the trace
    leaves that pair unordered, and a capture that waits on an event recorded before it is refused."""
    from dataclasses import replace

    from runtime.executor import Jitter

    drv, ex, _cfg = _executor(monkeypatch, 1, None, 1, "norms")
    ex.free()
    from runtime.executor import Executor

    good = ex.plan
    drop = ("l0.set_k", "l0.kq")
    assert drop in ex.plan.events
    bad = replace(ex.plan, events=tuple(e for e in ex.plan.events if e != drop))
    ex = Executor(ex.graph, bad, inputs=L.make_inputs(L.config("tiny"), seed=6), check_plan=False)
    try:
        start = len(drv.trace)
        ex.run(jitter=Jitter(prob=1.0, max_cycles=2))
        assert drop in _missing_hb(ex, drv.trace[start:], plan=good)
    finally:
        ex.free()
    ops = [(0, "begin_capture", 1), (0, "wait", 1, 99), (0, "launch", 2, "k", (1, 1, 1), (1, 1, 1), ())]
    assert _capture_faults(ops) == ["wait on event 99 recorded outside the capture", "launch on stream 2, outside "
                                    "the capture", "stream 2 not joined back"]


# -- weights shared with a freed executor; a capture that fails on one device --------------------------------------

def test_an_executor_sharing_a_freed_executors_weights_refuses_to_run(monkeypatch):
    """``Executor(..., weights_from=a)`` runs on ``a``'s weight and cache allocations; after ``a.free()`` its eager
    steps and its replays of a graph captured before ran on freed device memory without a word (the fake driver
    keeps the bytes, so the logits even looked right). Now each refuses naming the freed owner, and so does a
    new sharer; a sharer freeing itself leaves the owner's weights to the others."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg = L.config("tiny")
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    p = memplan.plan(g)
    owner = Executor(g, p, weights=w, inputs=inp)
    a = Executor(g, p, inputs=inp, weights_from=owner)
    b = Executor(g, p, inputs=inp, weights_from=a)   # a chain: b runs on the owner's weights too
    a.capture()
    a.free()
    b.run()   # the owner still lives
    owner.free()
    for call in (b.run, b.capture, lambda: b.read("logits"), lambda: b.write_weight("l0.wq", w["l0.wq"])):
        with pytest.raises(RuntimeError, match=r"shares the weights of an executor \(weights_from.*\) that was freed"):
            call()
    with pytest.raises(RuntimeError, match="was freed"):
        Executor(g, p, inputs=inp, weights_from=b)
    b.free()


def test_a_capture_that_fails_on_one_device_keeps_no_graph(monkeypatch):
    """Per-device capture of a split plan where device 1's capture fails: device 0's graph was kept, ``captured``
    said True and ``replay`` ran device 0's half of the step alone, silently. Now no graph is kept and ``replay``
    says none was captured; a later capture works."""
    import runtime.cuda_core as core

    _drv, ex, _cfg = _executor(monkeypatch, 2, None, 1, "norms")
    real, calls = core.capture_graph, []

    def failing_on_the_second(stream, issue):
        calls.append(stream)
        if len(calls) == 2:
            raise RuntimeError("capture failed on device 1")
        return real(stream, issue)

    monkeypatch.setattr(core, "capture_graph", failing_on_the_second)
    try:
        with pytest.raises(RuntimeError, match="device 1"):
            ex.capture()
        assert not ex.captured
        with pytest.raises(RuntimeError, match="no CUDA graph captured"):
            ex.replay(1)
        ex.capture()
        assert sorted(ex._graphs) == [0, 1]
        ex.replay(1)
    finally:
        ex.free()


# -- a view's address ----------------------------------------------------------------------------------------------

def test_a_view_off_its_roots_bytes_is_refused_naming_it_before_any_device_work(monkeypatch):
    """``l0.q3`` (a view of ``l0.q``) moved in an edited plan onto another tensor's bytes, run unverified: the
    executors and the emulator bound it at the moved offset, so the rope output written through ``l0.q`` never
    reached the attention reading ``l0.q3``, and the step computed other logits without a word. A split plan's view
    put on another device than its root was bound in the root's arena. Now each is refused naming the view, before
    any allocation (as the ATen executor refuses a view placed elsewhere than torch lays it out)."""
    from dataclasses import replace

    import fake_cuda

    from runtime.emulate import emulate
    from runtime.step import program_at

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.executor import Executor
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny")
    g = L.build_graph(cfg, "norms")
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    p = memplan.plan(g)
    offs = p.offsets()
    view = g.tensor("l0.q3")
    assert view.view_of == "l0.q"
    other = next(t.id for t in g.tensors if t.view_of is None and t.id in offs and t.size >= view.size
                 and offs[t.id] != offs["l0.q"])
    moved = replace(p, tensors=tuple((t, offs[other] if t == view.id else o, s) for t, o, s in p.tensors))
    with pytest.raises(memplan.UnsafePlan, match=r"view 'l0\.q3' is at"):
        memplan.verify(g, moved)
    at = rf"puts view 'l0\.q3' at {offs[other]}, not at {offs['l0.q']}"
    with pytest.raises(memplan.PlanFormatError, match=at):
        emulate(g, moved, w, inp)
    with pytest.raises(memplan.PlanFormatError, match=at):
        program_at(g, moved, lambda n, label: 1 << 40)
    with pytest.raises(memplan.PlanFormatError, match=at):
        Executor(g, moved, weights=w, inputs=inp, check_plan=False)
    split, sp = memplan.plan_devices(g, 2)
    sg = split.graph
    sview, dev, flipped = plan_with_a_view_moved_off_its_roots_device(sg, sp)
    on = rf"puts view '{sview}' on device {1 - dev}, its root"
    with pytest.raises(memplan.PlanFormatError, match=on):
        emulate(sg, flipped, w, inp)
    with pytest.raises(memplan.PlanFormatError, match=on):
        MultiGpuExecutor(sg, flipped, weights=w, inputs=inp, check_plan=False)
    assert not [t for t in drv.trace if t[1] in ("alloc", "launch", "htod")]
    ex = Executor(g, p, weights=w, inputs=inp)   # the honest plan still runs
    ex.run()
    ex.free()


def test_an_executor_keeps_the_executor_whose_weights_it_shares_alive(monkeypatch):
    """``Executor(g, p, weights_from=Executor(g, p, random_weights_seed=1))``: nothing held the owner, whose
    allocations pycuda frees when it is collected, so the sharer's steps ran on freed weight memory. The sharer now
    holds it: collecting frees none of the weights until the sharer is gone."""
    import gc

    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg = L.config("tiny")
    g = L.build_graph(cfg)
    inp = L.make_inputs(cfg, seed=6)
    p = memplan.plan(g)
    sharer = Executor(g, p, inputs=inp, weights_from=Executor(g, p, inputs=inp, random_weights_seed=1))
    weights = set(sharer.weight_ptr.values())
    gc.collect()
    assert not [t for t in drv.trace if t[1] == "free" and t[2] in weights]
    sharer.run()
    sharer.free()
