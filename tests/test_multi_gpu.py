"""The multi-GPU runtime (``runtime.multi_gpu``): its CPU half everywhere, its GPU half where two GPUs exist.

The layout of a split plan (devices, copies, cross-device events, stage order), the CPU emulation of a
split step (one NaN-poisoned arena per device, COPY nodes as byte copies) against the one-device result in
every host order happens-before allows, the negative controls (no cross-device events, or one dropped:
wrong results), the executor's own code on a fake driver (``tests/fake_cuda.py``), and on two GPUs the
split step against one GPU, eager and as per-device CUDA graphs.

Issue 16 (the split 8B step at batch 32 gave other logits than one GPU): the emulator computes each
kernel's arithmetic, not the GPU's summation order, so it cannot see two plans choosing kernels that sum
in different orders. ``runtime.tools.compare_launches`` can: every kernel is deterministic, so two plans
whose launches (kernel, grid, block, scalars, operands by tensor) agree node by node compute the same
bits. The CPU tests check that for the tiny, 1B- and 8B-like graphs, fused and unfused, at batch 1, 16
and 32; the GPU tests (two devices) run the 8B-like steps eager and as CUDA graphs, jittered and poisoned,
against one GPU bit for bit, and the negative control of a dropped cross-device event.
"""

from __future__ import annotations

import functools
import os
import re

import pytest

import memplan
from memplan import plan_devices
from memplan.examples import LLAMA_TINY, llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_multi_gpu_needs_no_pycuda():
    import subprocess
    import sys

    code = "import sys, runtime.multi_gpu; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pycuda'))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout  # no pycuda module was imported


def test_runtime_layout_of_a_two_device_plan():
    from runtime.layout import layout, stage_order

    g = llama(LLAMA_TINY)
    split, p = plan_devices(g, 2, streams=2)
    lay = layout(split.graph, p)
    assert lay.devices == 2
    assert lay.device_streams == tuple(tuple(range(*r)) for r in split.stream_ranges)
    assert all(c.src_device < c.dst_device for c in lay.copies) and lay.copies
    assert lay.copy_bytes == split.copy_bytes
    assert set(lay.cross_events) == {(e.after, e.before) for e in split.cross_events}
    assert lay.waits_on == (frozenset(), frozenset({0}))
    assert stage_order(lay) == [0, 1]
    for c in lay.copies:  # the copy runs on a stream of its source device (push)
        assert lay.stream_device[p.stream_of()[c.node]] == c.src_device


def test_runtime_layout_rejects_an_unsafe_plan_and_cyclic_stages():
    from dataclasses import replace

    from runtime.layout import Layout, layout, stage_order

    g = llama(LLAMA_TINY)
    split, p = plan_devices(g, 2)
    said = r"rule 2: node 'l1\.[^']+' reads '[^']+@dev1' but its writer 'copy:[^']+@dev1' does not happen-before"
    with pytest.raises(memplan.UnsafePlan, match=said):
        layout(split.graph, replace(p, events=()))
    lay = layout(split.graph, p)
    cyclic = Layout(2, lay.node_device, lay.tensor_device, lay.stream_device, lay.device_streams, lay.copies,
                    lay.cross_events, (frozenset({1}), frozenset({0})))
    with pytest.raises(ValueError, match="wait on each other"):
        stage_order(cyclic)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("n,streams", [(2, None), (2, 2), (3, 2), (4, None)])
def test_emulated_multi_device_step_matches_one_device(batch, n, streams):
    """The CPU emulation of the kernels (runtime.emulate) over one NaN-poisoned arena per device, COPY
    nodes as byte copies: the split plan computes the one-device logits bit for bit, in the plan's order
    and in random orders that happens-before allows."""
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    want, _, _ = emulate(g, memplan.plan(g), w, inp)
    assert np.isfinite(want["logits"]).all()
    split, p = plan_devices(g, n, streams=streams)
    for seed in (None, 0, 1, 2, 3):
        got = emulate(split.graph, p, w, inp, seed=seed, check=True)[0]
        assert np.array_equal(got["logits"], want["logits"]), seed


def test_emulation_without_the_cross_device_event_goes_wrong():
    """The negative control: drop the cross-device events and some order happens-before then allows
    reads a copy before it is written (poisoned NaN)."""
    from dataclasses import replace

    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    split, p = plan_devices(g, 2)
    good = emulate(split.graph, p, w, inp, seed=0, check=True)[0]["logits"]
    cross = {(e.after, e.before) for e in split.cross_events}
    bad = replace(p, events=tuple(e for e in p.events if e not in cross))
    said = r"rule 2: node 'l1\.[^']+' reads '[^']+@dev1' but its writer 'copy:[^']+@dev1' does not happen-before"
    with pytest.raises(memplan.UnsafePlan, match=said):
        memplan.verify(split.graph, bad)
    outs = [emulate(split.graph, bad, w, inp, seed=s)[0]["logits"]
            for s in range(8)]
    assert any(not np.array_equal(o, good) for o in outs)


@pytest.mark.gpu(devices=2)
@pytest.mark.parametrize("streams", [None, 2])
def test_two_gpu_run_matches_one_gpu(streams):
    import numpy as np

    from runtime.executor import Executor
    from runtime.models import llama as L
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    inputs = L.make_inputs(cfg, seed=3)
    weights = L.make_weights(g, cfg, seed=3)
    one = Executor(g, memplan.plan(g), inputs=inputs, weights=weights)
    one.run()
    want = one.read("logits")
    split, p = plan_devices(g, 2, streams=streams)
    many = MultiGpuExecutor(split.graph, p, inputs=inputs, weights=weights)
    try:
        for _ in range(3):
            many.run()
            assert np.array_equal(many.read("logits"), want)
        many.capture()
        for _ in range(3):
            many.replay(1)
            assert np.array_equal(many.read("logits"), want)
    finally:
        many.free()
        one.free()


@pytest.mark.parametrize("n,streams", [(2, 2), (3, None)])
def test_multi_gpu_executor_on_a_fake_driver(monkeypatch, n, streams):
    """``MultiGpuExecutor`` itself on a fake pycuda (``tests/fake_cuda.py``: each launch emulated at once,
    checked to run in its stream's device context): eager and per-device graphs replayed in stage order
    give the one-device emulated logits bit for bit; a second executor reuses the retained primary
    contexts; the one-GPU executor refuses a split plan."""
    import fake_cuda
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    drv = fake_cuda.install(monkeypatch, devices=n)
    from runtime.executor import Executor
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    want = emulate(g, memplan.plan(g), w, inp)[0]["logits"]
    split, p = plan_devices(g, n, streams=streams)
    many = MultiGpuExecutor(split.graph, p, inputs=inp, weights=w)
    many.run()
    assert np.array_equal(many.read("logits"), want)
    many.capture()
    assert sorted(many._graphs) == list(range(n))
    many.replay(2)
    assert np.array_equal(many.read("logits"), want)
    assert len(many.time_steps("graph", steps=1, repeats=1, warmup=1)) == 1
    copies = [t for t in drv.trace if t[1] == "dtod" and t[0] == 0]
    assert copies, "no device-to-device copy issued on device 0"
    assert drv.ctx_stack == []
    many.free()
    # a later executor pushes the same retained contexts: no context wrapper is left for the collector,
    # whose release of it could land while another executor has that device's context pushed
    again = MultiGpuExecutor(split.graph, p, inputs=inp, weights=w)
    assert len(again._ctxs) == n and all(a is b for a, b in zip(again._ctxs, many._ctxs))
    again.free()
    with pytest.raises(ValueError, match="devices"):
        Executor(split.graph, p)


def test_poisoned_per_device_graphs_keep_the_copies_they_receive(monkeypatch):
    """Per-device CUDA graphs captured with poison on the fake driver: device 1's graph runs after device
    0's, so its poison must leave alone the bytes device 0's COPY nodes wrote into its arena (it used to
    overwrite them with NaN); the rest of its arena is still poisoned."""
    import fake_cuda
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    fake_cuda.install(monkeypatch, devices=2)
    from runtime.executor import Poison
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=16)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    want = emulate(g, memplan.plan(g), w, inp)[0]["logits"]
    split, p = plan_devices(g, 2)
    many = MultiGpuExecutor(split.graph, p, inputs=inp, weights=w)
    poison = Poison(ranges=L.kv_poison_ranges(split.graph, cfg))
    many.run(poison=poison)
    assert np.array_equal(many.read("logits"), want)
    many.capture(poison=poison)
    many.replay(2)
    assert np.array_equal(many.read("logits"), want)
    kept = many._received[1]
    assert kept and many._received[0] == ()
    assert sum(n for _o, n in kept) == sum(c.nbytes for c in many.layout.copies)
    many.free()


# -- issue 16: the split plan launches the one-GPU plan's kernels -------------------------------------------

@functools.lru_cache(maxsize=1)   # (stream counts are the innermost parameter: the last graph is the one asked again)
def _serial_split(name: str, batch: int, devices: int, fuse: str, f16_acts: bool | None):
    """``one_and_split``'s serial split, kept for the split on more streams of the same graph."""
    from runtime.tools.compare_launches import one_and_split

    return one_and_split(name, batch, devices, fuse, f16_acts=f16_acts)


def _one_and_split(name: str, batch: int, devices: int, fuse: str, streams: int | None, f16_acts: bool | None = None):
    """``one_and_split(name, batch, devices, fuse, streams=streams, f16_acts=f16_acts)``, the graph and its one-GPU
    plan built and planned once for both stream counts (they are the same; only the split is planned again)."""
    cfg, g, single, split, multi = _serial_split(name, batch, devices, fuse, f16_acts)
    if streams is not None:
        split, multi = plan_devices(g, devices, streams=streams)
    return cfg, g, single, split, multi


@pytest.mark.parametrize("streams", [None, 2])
@pytest.mark.parametrize("batch", [1, 16, 17, 32, 48, 64])
@pytest.mark.parametrize("fuse", ["runtime", "norms"])
@pytest.mark.parametrize("name", ["tiny", "1b", "8b"])
def test_split_plan_launches_the_one_gpu_kernels(name, fuse, batch, streams):
    """The launches of the split plan equal the one-GPU plan's node by node (modulo COPY nodes, staging
    copies, addresses and devices): the same kernels, launch shapes, scalars and operands, so the same
    reduction order. Before issue 16's fix the 8B add+norm group at the stage boundary fused in the
    split plan only (batch 16 and 32; the one-GPU plan shifted its in-place output into its input)."""
    from runtime.tools.compare_launches import compare_plans

    _cfg, g, single, split, multi = _one_and_split(name, batch, 2, fuse, streams)
    c = compare_plans(g, single, split.graph, multi)
    assert c.same, c.differing[:2]
    assert c.a.fused_groups == c.b.fused_groups == len(g.groups())
    assert not c.a.unfusable and not c.b.unfusable
    assert c.b.copies == len(split.graph.nodes) - len(g.nodes) and c.a.copies == 0


@pytest.mark.parametrize("devices", [2, 3])
@pytest.mark.parametrize("name, fuse, batch", [(n, "runtime", b) for n in ("1b", "8b") for b in (1, 17, 48, 64)]
                         + [("8b", "norms", b) for b in (1, 32)])
def test_split_plan_launches_the_one_gpu_kernels_of_f16_activations(name, fuse, batch, devices):
    """The same on the f16-activation graphs (``llama(f16_acts=True)``: the runtime's at 17-64 tokens, a
    user's at one and with norm fusion only) as a Hopper registry launches them (``wgmma``: gemm_ws, its K/V
    split and 256-row LM head build), serial and 3-stream splits over 2 and 3 devices. The 8B's 3-device
    split fused the final norm group where its one-GPU plan, with the f16 ``fa`` over the dying residual,
    ran it node by node: the add+norm group at one row, the norm group (``fuse="norms"``) at any."""
    from runtime.tools.compare_launches import compare_plans

    for streams in (None, 3):
        _cfg, g, single, split, multi = _one_and_split(name, batch, devices, fuse, streams, f16_acts=True)
        c = compare_plans(g, single, split.graph, multi, wgmma=True)
        assert c.same, (streams, c.differing[:2])
        assert c.a.fused_groups == c.b.fused_groups
        by_node: dict[str, list[str]] = {}
        for r in c.a.rows:
            by_node.setdefault(r.node, []).append(r.kernel)
        # the final norm fused (launched at its last member) and the LM head on the 256-row build
        norm = "add_rms_norm4_f32_f16" if fuse == "runtime" else "rms_norm4_f32_f16"
        assert "out_norm" not in by_node and by_node["out_norm_w"][-1] == norm, by_node["out_norm_w"]
        assert by_node["lm_head"] == ["gemm_ws4_f16x"]


def test_launch_comparison_sees_a_group_that_fuses_in_one_plan_only(monkeypatch):
    """The tool's negative control: without the staged add+norm kernels (the code before the fix), the 8B
    batch-32 one-GPU plan runs the stage-boundary add+norm group node by node and the split plan fuses it,
    and the comparison names exactly that group's nodes (the f32-activation graph, whose plans have it)."""
    from runtime.kernels import fused
    from runtime.tools.compare_launches import compare_plans, one_and_split

    monkeypatch.setattr(fused, "_stage_add_rms", lambda *a, **k: None)
    # the planner before round 51, which shifted that group's in-place output over its input (now moved apart)
    import memplan.solvers as solvers
    from memplan.solvers import exact_pairs

    monkeypatch.setattr(solvers, "shifted_pairs", lambda *_a: [])
    monkeypatch.setattr(solvers, "strict_pairs", lambda problem: problem)
    monkeypatch.setattr(exact_pairs.ExactOrApart, "of", classmethod(lambda cls, *_a, **_k: None))   # (and round 53's)
    _cfg, g, single, split, multi = one_and_split("8b", 32, 2, "runtime", f16_acts=False)
    c = compare_plans(g, single, split.graph, multi)
    assert [d[0] for d in c.differing] == ["l16.mm_down", "l16.res2", "l17.norm", "l17.norm_w"]
    one, two = c.differing[-1][1], c.differing[-1][2]
    assert one[0].startswith("binary_f32") and len(two) == 2
    assert two[0].startswith("gemm_tc") and two[1].split()[0] == "add_rms_norm4_f32"
    assert c.a.fused_groups == c.b.fused_groups - 1


@pytest.mark.parametrize("batch", [1, 16, 32])
@pytest.mark.parametrize("fuse", ["runtime", "norms"])
def test_emulated_split_matches_one_device_at_batch(fuse, batch):
    """The CPU emulation of the tiny split step (NaN-poisoned arenas), both graphs, batch 1, 16 and 32: the
    one-device logits bit for bit, in the plan's order and random orders (tiny at batch 16/32 had the
    8B case's stage-boundary add+norm group that fused in one plan only)."""
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, seed=7), L.make_inputs(cfg, seed=8)
    want = emulate(g, memplan.plan(g), w, inp)[0]["logits"]
    assert np.isfinite(want).all()
    for streams in (None, 2):
        split, p = plan_devices(g, 2, streams=streams)
        for seed in (None, 0, 1):
            got = emulate(split.graph, p, w, inp, seed=seed, check=True)[0]["logits"]
            assert np.array_equal(got, want), (streams, seed)


def _dropping_the_cross_device_event(split, plan):
    """``plan`` without its cross-device event: a serial two-device split has exactly one, from the last
    COPY on device 0 (its stream runs every copy in order) to device 1's first reader."""
    from dataclasses import replace

    (cross,) = {(e.after, e.before) for e in split.cross_events}
    assert split.graph.node(cross[0]).op == "COPY"
    bad = replace(plan, events=tuple(e for e in plan.events if e != cross))
    said = (rf"rule 2: node '{re.escape(cross[1])}' reads '[^']+' but its writer '{re.escape(cross[0])}' does"
            rf" not happen-before")
    with pytest.raises(memplan.UnsafePlan, match=said):
        memplan.verify(split.graph, bad)
    return bad, cross


def test_emulation_with_the_cross_device_event_dropped_goes_wrong():
    """The split step at batch 16 without its one cross-device event: verify rejects the plan, and some
    host order the remaining events allow reads device 1's copies before they are written (NaN poison)."""
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=16)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    split, p = plan_devices(g, 2)
    good = emulate(split.graph, p, w, inp, check=True)[0]["logits"]
    bad, _ = _dropping_the_cross_device_event(split, p)
    with np.errstate(invalid="ignore"):
        outs = [emulate(split.graph, bad, w, inp, seed=s)[0]["logits"] for s in range(8)]
    assert any(not np.array_equal(o, good) for o in outs)


def _gpu_8b(fuse: str, batch: int):
    from runtime.models import llama as L
    from runtime.tools.compare_launches import compare_plans, one_and_split

    cfg, g, single, split, multi = one_and_split("8b", batch, 2, fuse)
    assert compare_plans(g, single, split.graph, multi).same   # what the CPU promises about these plans
    return L, cfg, g, single, split, multi, L.make_inputs(cfg, seed=1)


def _one_gpu_logits(L, cfg, g, plan, inputs):
    import numpy as np

    from runtime.executor import Executor, Poison

    one = Executor(g, plan, inputs=inputs, random_weights_seed=1)
    try:
        one.run(poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
        want = one.read("logits")
    finally:
        one.free()
    assert np.isfinite(want).all()
    return want


@pytest.mark.gpu(devices=2)
@pytest.mark.parametrize("batch", [1, 16, 32])
@pytest.mark.parametrize("fuse", ["runtime", "norms"])
def test_two_gpu_8b_matches_one_gpu(fuse, batch):
    """Issue 16: the 8B-like step split over two GPUs gives the one-GPU logits bit for bit, fused and
    unfused graphs, batch 1, 16 and 32: eager runs with random delays before half the nodes and
    NaN-poisoned arenas and written cache rows, and per-device CUDA graphs (poisoned before every replay,
    and one captured with delays)."""
    import numpy as np

    from runtime.executor import Jitter, Poison
    from runtime.multi_gpu import MultiGpuExecutor

    L, cfg, g, single, split, multi, inputs = _gpu_8b(fuse, batch)
    want = _one_gpu_logits(L, cfg, g, single, inputs)
    poison = Poison(ranges=L.kv_poison_ranges(split.graph, cfg))
    many = MultiGpuExecutor(split.graph, multi, inputs=inputs, random_weights_seed=1)
    try:
        many.run(poison=poison)
        assert np.array_equal(many.read("logits"), want), "eager"
        for rep in range(8):
            many.run(poison=poison, jitter=Jitter(seed=rep))
            assert np.array_equal(many.read("logits"), want), f"eager, jitter rep {rep}"
        for jitter in (None, Jitter(seed=99)):
            many.capture(poison=poison, jitter=jitter)
            for _ in range(3):
                many.replay(1)
                assert np.array_equal(many.read("logits"), want), f"graph, jitter {jitter}"
    finally:
        many.free()


@pytest.mark.gpu(devices=2)
@pytest.mark.parametrize("fuse", ["runtime", "norms"])
def test_two_gpu_negative_control_dropped_cross_device_event(fuse):
    """The negative control on two GPUs (8B-like, batch 32): without the cross-device event (device 1's
    first reader waits for the last COPY of device 0), the split step, with device 0 delayed before its
    copies, gives other logits than one GPU: eager, and as per-device CUDA graphs (which order whole
    stages by the cross-device events, so without it device 1's graph no longer waits for device 0's)."""
    import numpy as np

    from runtime.executor import Jitter, Poison
    from runtime.multi_gpu import MultiGpuExecutor

    L, cfg, g, single, split, multi, inputs = _gpu_8b(fuse, 32)
    want = _one_gpu_logits(L, cfg, g, single, inputs)
    poison = Poison(ranges=L.kv_poison_ranges(split.graph, cfg))
    bad, (last_copy, _reader) = _dropping_the_cross_device_event(split, multi)
    order = [n for n, _s in multi.order]
    late = tuple(order[max(0, order.index(last_copy) - 8): order.index(last_copy) + 1])
    many = MultiGpuExecutor(split.graph, bad, inputs=inputs, random_weights_seed=1, check_plan=False)
    try:
        seen = {"eager": 0, "graph": 0}
        for rep in range(5):
            jitter = Jitter(seed=rep, prob=1.0, max_cycles=2_000_000, only=late)
            many.run(poison=poison, jitter=jitter)
            seen["eager"] += not np.array_equal(many.read("logits"), want)
            many.capture(poison=poison, jitter=jitter)
            # a graph's poison leaves the bytes other devices copy in alone (they hold the last step's
            # copies, the same values here): NaN over device 1's whole arena before the replay instead
            with many.on(1):
                many.mem.poison(1, many.streams[many.first[1]], True, ())
            many.synchronize()
            many.replay(1)
            seen["graph"] += not np.array_equal(many.read("logits"), want)
        assert seen["eager"] and seen["graph"], f"dropped cross-device event not detected in every mode: {seen}"
    finally:
        many.free()
