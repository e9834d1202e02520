"""The multi-GPU runtime (``runtime.multi_gpu``): its CPU half everywhere, its GPU half where two GPUs exist.

The layout of a split plan (devices, copies, cross-device events, stage order), the CPU emulation of a
split step (one NaN-poisoned arena per device, COPY nodes as byte copies) against the one-device result in
every host order happens-before allows, the negative control (no cross-device events: wrong results), the
executor's own code on a fake driver (``tests/fake_cuda.py``), and on two GPUs the split step against one
GPU, eager and as per-device CUDA graphs.
"""

from __future__ import annotations

import os

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
    with pytest.raises(memplan.UnsafePlan):
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
    with pytest.raises(memplan.UnsafePlan):
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
    give the one-device emulated logits bit for bit; the one-GPU executor refuses a split plan."""
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
    with pytest.raises(ValueError, match="devices"):
        Executor(split.graph, p)
