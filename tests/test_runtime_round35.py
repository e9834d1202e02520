"""Round 35 (runtime review): plans the runtime never saw, CPU side (the GPU side: test_runtime_round35_gpu.py).

- alignment above 256 (``memplan plan --alignment 4096``): the plan's offsets are aligned relative to the
  arena's start, and docs/format.md says an executor must give the arena a base aligned as much. cudaMalloc
  guarantees 256 bytes, and the executors allocated the arena as it came: every tensor of a 4096-aligned plan
  ran at addresses 256 bytes off a 4096-byte boundary (the fake driver below hands out 256-aligned bases, as
  cudaMalloc may), and the emulator's 4096-aligned buffers hid it from every test up to 4096;
- hostile plans (another batch's, a moved tensor, a broken alignment, a short arena, a wait before its
  record, an undeclared stream, a dropped event, a stream on two devices) refused by name before any device
  work;
- planted hazards the emulation catches (verification bypassed), on plans with stream-id gaps and on split
  plans; stream ids declared but unused cost no stream;
- per-device CUDA graphs and an unread input sharing bytes with a received COPY;
- an in-place output over another view of its partner's root: every overlapped input is read from a copy
  (and never early under PDL).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import memplan
from memplan.errors import PlanFormatError
from runtime.binding import bind
from runtime.emulate import _BASE, emulate
from runtime.models import llama as L
from runtime.step import program_at


def _tiny(alignment: int | None = None, batch: int = 1):
    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg)
    if alignment is not None:
        g = replace(g, alignment=alignment)
    return cfg, g, L.make_weights(g, cfg, seed=3), L.make_inputs(cfg, seed=4)


def _misaligned_roots(graph, binding, addr, alignment: int) -> list[str]:
    """Arena roots whose address is off ``alignment``."""
    return [t.id for t in graph.tensors
            if t.view_of is None and binding.places[t.id].in_arena and addr[t.id] % alignment]


def _cudamalloc_like(drv) -> None:
    """Make the fake driver's allocations 256-aligned and no more, as cudaMalloc promises."""
    drv.mem.next = _BASE + 256


@pytest.mark.parametrize("alignment", [4096, 1 << 16])
def test_the_executor_aligns_its_arena_base_as_the_plan_aligns_offsets(monkeypatch, alignment):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    _cudamalloc_like(drv)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g), alignment=alignment)
    ex = Executor(g, p, weights=w, inputs=inp)
    assert _misaligned_roots(g, ex.binding, ex.addr_of, alignment) == []
    ex.run()
    assert np.array_equal(ex.read("logits"), emulate(g, p, w, inp)[0]["logits"])
    ex.free()


def test_the_multi_gpu_executor_aligns_every_devices_arena(monkeypatch):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=2)
    _cudamalloc_like(drv)
    from runtime.multi_gpu import MultiGpuExecutor

    _cfg, g, w, inp = _tiny(alignment=4096)
    split, p = memplan.plan_devices(g, 2, streams=2)
    assert p.alignment == 4096
    ex = MultiGpuExecutor(split.graph, p, inputs=inp, weights=w)
    assert _misaligned_roots(split.graph, ex.binding, ex.addr_of, 4096) == []
    assert all(a % 4096 == 0 for a in ex.mem.arenas)
    ex.run()
    assert np.array_equal(ex.read("logits"), emulate(split.graph, p, w, inp)[0]["logits"])
    ex.free()


def test_the_emulator_and_program_at_align_the_arena_as_the_executors_do():
    """The emulator's buffers start on 4096 bytes, so a plan aligned to 64 KiB showed what a GPU would not."""
    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, alignment=1 << 16)
    b = bind(g, p)
    outs, _mem, addr = emulate(g, p, w, inp)
    assert _misaligned_roots(g, b, addr, 1 << 16) == []
    assert b.alignment == 1 << 16
    assert np.array_equal(outs["logits"], emulate(g, memplan.plan(g), w, inp)[0]["logits"])
    nxt = iter(range(_BASE + 256, 1 << 62, 1 << 30))   # cudaMalloc-like: 256-aligned, no more
    _prog, at = program_at(g, p, lambda n, label: next(nxt))
    assert _misaligned_roots(g, b, at, 1 << 16) == []


def test_arena_base_pads_only_past_what_the_allocation_guarantees():
    from runtime.binding import arena_base

    got = []

    def alloc(n):
        got.append(n)
        return 256 * 3

    assert arena_base(alloc, 1000, 256) == 768 and got == [1000]
    assert arena_base(alloc, 1000, 16) == 768 and got[-1] == 1000
    assert arena_base(alloc, 1000, 4096) == 4096 and got[-1] == 1000 + 4095
    assert arena_base(alloc, 1000, 3) == 768 and got[-1] == 1002   # a hand plan's odd alignment: lcm'd, padded


def test_an_alignment_no_allocation_can_pad_is_refused_naming_it():
    """A hand-made plan file's alignment of 2**60 (offsets all 0 verify) asked the arena for 2**60 bytes of
    padding: refused as the plan's field, before any allocation."""
    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "one", "tensors": [
        {"id": "x", "size": 64, "kind": "input"}, {"id": "y", "size": 64, "kind": "output"}],
        "nodes": [{"id": "n", "op": "SILU", "inputs": ["x"], "outputs": ["y"]}]})
    p = memplan.plan(g)
    huge = replace(p, alignment=1 << 60)
    with pytest.raises(PlanFormatError, match=r"alignment 1152921504606846976"):
        bind(g, huge)


# --- hostile plans: refused by name before the executor allocates or writes anything -------------------------

def _moved_after(plan, node: str, after: str):
    """``plan`` with ``node``'s order entry moved to just after ``after``'s (its events unchanged)."""
    entry = next(e for e in plan.order if e[0] == node)
    rest = [e for e in plan.order if e[0] != node]
    k = next(i for i, e in enumerate(rest) if e[0] == after)
    return replace(plan, order=tuple(rest[:k + 1] + [entry] + rest[k + 1:]))


def _hostile_plans(g, p):
    """(what, plan, exception type, a regex the message must match): each names what is wrong."""
    offs = p.offsets()
    big = L.build_graph(L.config("tiny", batch=4))
    yield ("another batch's plan", memplan.plan(big), memplan.UnsafePlan, r"tensor .inp. has size 1024 in the plan but 256")
    yield ("a tensor moved onto a live one",
           replace(p, tensors=tuple((t, offs["l0.xa"] if t == "l0.k" else o, s) for t, o, s in p.tensors)),
           memplan.UnsafePlan, r"l0\.(k|xa)")
    yield ("an alignment its offsets break", replace(p, alignment=1 << 20), memplan.UnsafePlan, r"alignment|multiple")
    yield ("an arena smaller than its tensors", replace(p, arena_bytes=p.arena_bytes // 2, lower_bound_bytes=0),
           memplan.UnsafePlan, r"arena")
    yield ("a wait issued before its record", _moved_after(p, "l0.set_k", "l0.kq"), memplan.UnsafePlan,
           r"'l0\.set_k'->'l0\.kq'.*before the record|l0\.kq.*issued before.*l0\.set_k")
    yield ("a stream past the declared ones", replace(p, order=tuple((n, 7 if s == 2 else s) for n, s in p.order)),
           memplan.UnsafePlan, r"stream 7")
    yield ("a dropped event", replace(p, events=tuple(e for e in p.events if e != ("l0.set_k", "l0.kq"))),
           memplan.UnsafePlan, r"l0\.kq")


@pytest.mark.parametrize("case", range(7))
def test_a_hostile_plan_is_refused_by_name_before_any_device_work(monkeypatch, case):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    what, bad, exc, pattern = list(_hostile_plans(g, p))[case]
    with pytest.raises(exc, match=pattern):
        Executor(g, bad, weights=w, inputs=inp)
    done = [t for t in drv.trace if t[1] in ("alloc", "launch", "launch_pdl", "htod", "memset_d8", "memset_d32")]
    assert done == [], f"{what}: device work before the refusal: {done[:3]}"


# --- planted hazards the emulation must catch (verification bypassed) -----------------------------------------
# On the "norms" graph (one kernel per node): a fused group's kernel runs at its last member, so a hazard
# planted inside a fused attention group is absorbed by the fusion and shows nowhere.

def _eager_and_captured(ex, want, replays: int = 2) -> None:
    """``ex`` gives the logits ``want`` in an eager step, then in each of ``replays`` replays of its captured
    graphs; freed after, pass or fail."""
    try:
        ex.run()
        assert np.array_equal(ex.read("logits"), want), "eager step"
        ex.capture()
        for k in range(replays):
            ex.replay(1)
            assert np.array_equal(ex.read("logits"), want), f"replay {k}"
    finally:
        ex.free()


def _norms():
    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg, "norms")
    return g, L.make_weights(g, cfg, seed=3), L.make_inputs(cfg, seed=4)


def _gapped(plan, ids: dict[int, int]):
    """``plan`` with its stream ids renamed by ``ids`` (a gap: streams 0, 2 and 5 of 6 declared)."""
    return replace(plan, order=tuple((n, ids[s]) for n, s in plan.order), streams=max(ids.values()) + 1)


def test_a_wait_issued_before_its_record_is_caught_in_the_plans_own_order(monkeypatch):
    """``l0.set_k`` (stream 1: writes the K cache row) moved after ``l0.kq`` (stream 0, which waits on it): the
    wait is issued before anything recorded the event, so it waits for nothing, as in CUDA; the verifier names
    the event, and the emulator and the executor (fake driver, ``check_plan=False``) both compute other bits."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g, w, inp = _norms()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    good = emulate(g, p, w, inp)[0]["logits"]
    bad = _moved_after(p, "l0.set_k", "l0.kq")
    with pytest.raises(memplan.UnsafePlan, match=r"'l0\.set_k'->'l0\.kq'"):
        memplan.verify(g, bad)
    wrong = emulate(g, bad, w, inp)[0]["logits"]
    assert not np.array_equal(wrong, good)
    ex = Executor(g, bad, weights=w, inputs=inp, check_plan=False)
    ex.run()
    assert np.array_equal(ex.read("logits"), wrong)   # the executor issues what the emulator ran
    ex.free()


def test_a_plan_with_a_stream_gap_runs_as_its_dense_twin_and_a_dropped_event_there_is_caught(monkeypatch):
    """Streams 0, 2 and 5 of 6 declared (three never used): the same bits as the dense plan in every issue
    order the events allow, eager and captured on the executor; with the K-cache event dropped some order
    reads the cache row before it is written."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g, w, inp = _norms()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    good = emulate(g, p, w, inp)[0]["logits"]
    gap = _gapped(p, {0: 0, 1: 5, 2: 2})
    memplan.verify(g, gap)
    assert all(np.array_equal(emulate(g, gap, w, inp, seed=s)[0]["logits"], good) for s in range(6))
    _eager_and_captured(Executor(g, gap, weights=w, inputs=inp), good)
    drop = replace(gap, events=tuple(e for e in gap.events if e != ("l0.set_k", "l0.kq")))
    with pytest.raises(memplan.UnsafePlan, match=r"'l0\.kq' reads 'l0\.kview' but its writer 'l0\.set_k'"):
        memplan.verify(g, drop)
    assert any(not np.array_equal(emulate(g, drop, w, inp, seed=s)[0]["logits"], good) for s in range(8))


def test_a_copy_into_a_live_tensor_of_the_receiving_device_is_caught():
    """A split plan whose COPY of layer 0's output (issued on device 0) lands on device 1's ``mask@dev1``,
    which layer 1's attention still reads: the verifier names both, the emulation computes other bits."""
    g, w, inp = _norms()
    split, p = memplan.plan_devices(g, 2)
    sg = split.graph
    good = emulate(sg, p, w, inp)[0]["logits"]
    offs = p.offsets()
    bad = replace(p, tensors=tuple((t, offs["mask@dev1"] if t == "l0.out@dev1" else o, s) for t, o, s in p.tensors))
    with pytest.raises(memplan.UnsafePlan, match=r"l0\.out@dev1.*mask@dev1|mask@dev1.*l0\.out@dev1"):
        memplan.verify(sg, bad)
    assert not np.array_equal(emulate(sg, bad, w, inp)[0]["logits"], good)


# --- per-device CUDA graphs and an input no node reads -----------------------------------------------------------

def _with_unread_input_over(sg, p, dst: str):
    """The split graph with an input no node reads, and ``p`` with it on ``dst``'s device and bytes: safe, an
    unread input is live at no node (the importers keep such inputs: exported models have them)."""
    doc = sg.to_dict()
    doc["tensors"].append({"id": "unused", "size": sg.tensor(dst).size, "kind": "input"})
    g2 = memplan.graph_from_dict(doc)
    dev = dict(zip((t for t, _o, _s in p.tensors), p.tensor_devices))[dst]
    p2 = replace(p, tensors=p.tensors + (("unused", p.offsets()[dst], sg.tensor(dst).size),),
                 tensor_devices=p.tensor_devices + (dev,))
    return g2, p2


def test_per_device_graphs_keep_a_copy_received_where_an_unread_input_lies(monkeypatch):
    """Device 1's CUDA graph runs after device 0's, whose COPY wrote ``l0.out@dev1``; the graph began by copying
    every input into its arena, the unread one too, over the received bytes: eager steps gave the one-device
    logits, replays of the captured graphs others. Now only inputs some node reads are copied in."""
    import fake_cuda

    fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    g, w, inp = _norms()
    split, p = memplan.plan_devices(g, 2)
    want = emulate(split.graph, p, w, inp)[0]["logits"]
    g2, p2 = _with_unread_input_over(split.graph, p, "l0.out@dev1")
    memplan.verify(g2, p2)
    _eager_and_captured(MultiGpuExecutor(g2, p2, inputs={**inp, "unused": np.full(64, 7.0, np.float32)}, weights=w),
                        want)


def test_stream_ids_a_plan_declares_but_never_uses_cost_no_stream_and_no_step_work(monkeypatch):
    """A hand-made plan declaring 64 streams (or using 0, 2 and 5 of 6) for the 3 it runs on: one CUDA stream per
    id a node runs on, and each step forks and joins those alone, so it issues exactly the dense plan's stream
    operations. Every declared id got a stream, forked and joined in every step (and in every captured graph)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g, w, inp = _norms()
    dense = memplan.plan(g, L.multi_stream_schedule(g))

    def stream_ops(p) -> tuple[int, int, list]:
        made = len(drv.streams)
        ex = Executor(g, p, weights=w, inputs=inp)
        made = len(drv.streams) - made
        start = len(drv.trace)
        ex.run()
        ops = [t[1] for t in drv.trace[start:] if t[1] in ("wait", "record")]
        out = ex.read("logits")
        ex.free()
        return made, len(ops), out

    want = stream_ops(dense)
    for p in (replace(dense, streams=64), _gapped(dense, {0: 0, 1: 5, 2: 2})):
        made, ops, out = stream_ops(p)
        assert (made, ops) == want[:2], (p.streams, made, ops, want[:2])
        assert np.array_equal(out, want[2])


# --- an in-place output over another view of its partner's root ------------------------------------------------
# The contract lets ``inplace {y: b}`` put y anywhere over b's root, which dies at the node: over another view
# of it the node reads too. The registry copied only the in-place partner b to scratch (when shifted), so a
# kernel read that other view where its threads were writing y: a race on the GPU (the emulator reads every
# input before writing, so it computed the right values either way).

def _halves(n: int = 4, alignment: int = 4):
    """``y = a * b`` over the two halves ``a``, ``b`` of one tensor X (n f32 each), ``inplace {y: b}``."""
    g = memplan.GraphBuilder("halves", alignment=alignment)
    f32 = lambda shape: dict(shape=shape, dtype="f32")   # noqa: E731
    g.input("x0", 8 * n, **f32([2 * n]))
    g.node("c", "CONT", ["x0"], g.intermediate("X", 8 * n, **f32([2 * n])))
    g.view("a", "X", 4 * n, 0, **f32([n]))
    g.view("b", "X", 4 * n, 4 * n, **f32([n]))
    g.node("n", "MUL", ["a", "b"], g.output("y", 4 * n, **f32([n])), inplace={"y": "b"})
    return g.build()


def _product_over_its_weight(N: int = 4, K: int = 8):
    """``y = W b`` where the f16 W [N, K] and the f32 row b [1, K] are views of one tensor X, ``inplace {y: b}``:
    memplan's own plan put y at X's (W's) first byte until round 51 (now at b's)."""
    g = memplan.GraphBuilder("wx", alignment=4)
    words = (2 * N * K + 4 * K) // 4
    g.input("x0", 4 * words, shape=[words], dtype="f32")
    g.node("c", "CONT", ["x0"], g.intermediate("X", 4 * words, shape=[words], dtype="f32"))
    g.view("W", "X", 2 * N * K, 0, shape=[N, K], dtype="f16")
    g.view("b", "X", 4 * K, 2 * N * K, shape=[1, K], dtype="f32")
    g.node("n", "MUL_MAT", ["W", "b"], g.output("y", 4 * N, shape=[1, N], dtype="f32"), inplace={"y": "b"})
    return g.build()


def _placed(graph, offsets: dict[str, int], arena: int):
    """memplan's plan of ``graph`` with the given root offsets (views follow their roots)."""
    p = memplan.plan(graph)
    at = {**p.offsets(), **offsets}
    tensors = tuple((t, None if o is None else at[graph.tensors[graph.root[graph.tensor_index[t]]].id]
                     + graph.offset_in_root(graph.tensor_index[t]), s) for t, o, s in p.tensors)
    return replace(p, tensors=tensors, arena_bytes=arena, lower_bound_bytes=0)


def _node_reads(graph, plan, node: str) -> tuple[list, dict[str, int]]:
    """The pointers the node's kernels (not its staging copies) read, and every tensor's address."""
    from runtime.kernels.ops import ALIGN, MEMCPY
    from runtime.kernels.registry import WRITES

    space = iter(range(1 << 32, 1 << 40, 1 << 16))
    prog, addr = program_at(graph, plan, lambda nbytes, label=None: next(space))
    reads = [ln.args[i] for ln in prog.launches[node] if ln.kernel not in ("copy_u32", MEMCPY)
             for i in range(len(ALIGN.get(ln.kernel, ()))) if i not in WRITES.get(ln.kernel, ())]
    return reads, addr


def test_an_output_shifted_over_the_other_half_of_its_partners_root_reads_copies():
    g = _halves()
    p = _placed(g, {"X": 64, "y": 68}, 128)   # y 4 bytes into a: thread i writes where thread i + 1 reads
    memplan.verify(g, p)
    reads, addr = _node_reads(g, p, "n")
    assert addr["a"] not in reads and addr["b"] not in reads, "a kernel reads a half that y overlaps"
    x0 = np.arange(1, 9, dtype=np.float32)
    assert np.array_equal(emulate(g, p, {}, {"x0": x0})[0]["y"], x0[:4] * x0[4:])


def test_a_product_written_over_its_own_f16_weight_view_reads_a_copy():
    g = _product_over_its_weight()
    own = memplan.plan(g)
    # memplan's own plan put y over W's first row until round 51; now exactly over its in-place partner b
    assert own.offsets()["y"] == own.offsets()["b"]
    p = _placed(g, {"y": own.offsets()["X"]}, own.arena_bytes)   # the old plan, which the contract still allows
    memplan.verify(g, p)
    reads, addr = _node_reads(g, p, "n")
    assert addr["W"] not in reads, "the product reads the weight its output overwrites"
    # and under PDL it must not start reading that copy before the copy kernel just before it has run
    space = iter(range(1 << 32, 1 << 40, 1 << 16))
    *copies, product = program_at(g, p, lambda nbytes, label=None: next(space))[0].launches["n"]
    assert product.args[0] == copies[0].args[1] and not product.early
    x0 = np.random.default_rng(0).standard_normal(24).astype(np.float32)
    W = x0[:16].view(np.float16).reshape(4, 8).astype(np.float32)
    out = emulate(g, p, {}, {"x0": x0})[0]["y"].reshape(-1)
    assert np.allclose(out, W @ x0[16:], rtol=1e-5)


def test_a_stream_on_two_devices_is_refused_by_name_before_any_device_work(monkeypatch):
    """``lm_head`` (device 1) moved onto stream 0 (device 0's): ``check_plan=False`` (the negative controls) ran
    it to a failed launch mid-step (a stream of another device), and the emulator ran it as if it were fine."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    g, w, inp = _norms()
    split, p = memplan.plan_devices(g, 2)
    k = max(i for i, d in enumerate(p.node_devices) if d == 1)
    node = p.order[k][0]
    bad = replace(p, order=p.order[:k] + ((node, 0),) + p.order[k + 1:])
    pattern = rf"stream 0 on device 0 \(node '[^']+'\) and on device 1 \(node '{node}'\)"
    with pytest.raises(PlanFormatError, match=pattern):
        MultiGpuExecutor(split.graph, bad, inputs=inp, weights=w, check_plan=False)
    assert not [t for t in drv.trace if t[1] in ("alloc", "launch", "htod")]
    with pytest.raises(PlanFormatError, match=pattern):
        emulate(split.graph, bad, w, inp)
