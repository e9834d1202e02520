"""Round 43 (runtime): counts given to ``Executor.replay`` and ``Executor.time_steps`` (on the fake driver).

``replay(10**12)``, ``replay(np.int64(10**12))`` or ``time_steps(steps=10**12)`` were accepted and held the host in a
launch loop for days; each count is now an integer in ``lo..runtime.cuda_core.MAX_STEPS``, refused by name
before any launch otherwise, and numpy integers are taken as Python ints.
"""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError
from runtime.models import llama as L


@pytest.fixture
def ex(monkeypatch):
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    e = Executor(g, memplan.plan(g), weights=L.make_weights(g, cfg, seed=0), inputs=L.make_inputs(cfg, seed=1))
    yield e
    e.free()


def _no_launch(monkeypatch):
    """Make any launch fail loudly: a refused count must be refused before the first one."""
    import runtime.cuda_core as cc

    def boom(*_a, **_k):
        raise AssertionError("launched")
    monkeypatch.setattr(cc, "launch_graph", boom)
    return cc


@pytest.mark.parametrize("n", [10**12, np.int64(10**12), np.uint64(2**63), -1, np.int32(-3), 1.0, np.float64(2), True,
                               "3", None])
def test_replay_refuses_a_nonsense_count_by_name_before_launching(ex, monkeypatch, n):
    """Failed before for the huge counts: accepted, then 10**12 launches."""
    ex.capture()
    _no_launch(monkeypatch)
    with pytest.raises(ExecutorError, match=r"replay n="):
        ex.replay(n)


@pytest.mark.parametrize("kw,name", [(dict(steps=10**12), "steps"), (dict(repeats=np.int64(10**10)), "repeats"),
                                     (dict(warmup=10**10), "warmup"), (dict(steps=0), "steps"),
                                     (dict(repeats=2.0), "repeats"), (dict(warmup=-1), "warmup"),
                                     (dict(steps=100_000, repeats=100_000), "steps in all")])
def test_time_steps_refuses_a_nonsense_count_by_name(ex, monkeypatch, kw, name):
    """Failed before for the huge counts: accepted, then a launch loop of days."""
    _no_launch(monkeypatch)
    with pytest.raises(ExecutorError, match=name):
        ex.time_steps("graph", **kw)


def test_valid_counts_still_run(ex):
    ex.capture()
    for n in (0, 1, np.int64(2), np.uint8(1)):
        ex.replay(n)
    out = ex.time_steps("eager", steps=np.int32(1), repeats=1, warmup=np.int64(0))
    assert len(out) == 1


def _tied():
    """``z = (x * w) * w`` split over 2 devices: ``w`` is read on both, so device 1 holds its replica ``w@dev1``."""
    f, w = {"dtype": "f32", "shape": [1, 64]}, {"dtype": "f32", "shape": [64]}
    doc = {"format": "memplan.graph/1", "name": "tied",
           "tensors": [{"id": "x", "size": 256, "kind": "input", "attrs": f},
                       {"id": "w", "size": 256, "kind": "weight", "attrs": w},
                       {"id": "y", "size": 256, "kind": "intermediate", "attrs": f},
                       {"id": "z", "size": 256, "kind": "output", "attrs": f}],
           "nodes": [{"id": "m0", "op": "MUL", "inputs": ["x", "w"], "outputs": ["y"]},
                     {"id": "m1", "op": "MUL", "inputs": ["y", "w"], "outputs": ["z"]}]}
    split, plan = memplan.plan_devices(memplan.graph_from_dict(doc), 2)
    assert split.graph.tensor("w@dev1").attrs["replica_of"] == "w" and plan.node_devices == (0, 0, 1)   # (premise)
    return split.graph, plan


def test_a_poison_range_covers_the_weights_replicas(monkeypatch):
    """Failed before: ``Poison(ranges=(w, 0, 16))`` NaN-ed ``w`` on device 0 only; its replica ``w@dev1`` kept 2.0."""
    import fake_cuda

    from runtime.models.llama import PoisonRange

    g, plan = _tied()
    fake_cuda.install(monkeypatch, devices=2)
    from runtime.executor import Poison
    from runtime.multi_gpu import MultiGpuExecutor

    ex = MultiGpuExecutor(g, plan, weights={"w": np.full(64, 2.0, np.float32)}, inputs={"x": np.ones((1, 64), np.float32)})
    ex.run(poison=Poison(ranges=(PoisonRange("w", 0, 16),)))
    ex.synchronize()
    for tid in ("w", "w@dev1"):
        # (f32 NaN over an f32 weight since round 79, test_rt79_round79.py: the f16 NaN pattern read as f32 is finite)
        assert np.isnan(ex.read(tid)[:4]).all() and (ex.read(tid)[4:] == 2.0).all(), tid
    with pytest.raises(ExecutorError, match="poison the original"):   # a replica's own id: refused, as write_weight
        ex.run(poison=Poison(arena=False, ranges=(PoisonRange("w@dev1", 16, 4),)))
    ex.free()


def test_the_emulator_takes_a_numpy_integer_seed_as_that_int():
    """Failed before: ``emulate(..., seed=np.int64(3))`` was random's raw "only supported seed types" TypeError."""
    from runtime.emulate import emulate

    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "copy",
                                 "tensors": [{"id": "a", "size": 16, "kind": "input", "attrs": {"dtype": "f32"}},
                                             {"id": "b", "size": 16, "kind": "output", "attrs": {"dtype": "f32"}}],
                                 "nodes": [{"id": "n", "op": "COPY", "inputs": ["a"], "outputs": ["b"]}]})
    x = np.arange(4, dtype=np.float32)
    plan = memplan.plan(g)
    got = emulate(g, plan, {}, {"a": x}, seed=np.int64(3))[0]["b"]
    assert np.array_equal(got, emulate(g, plan, {}, {"a": x}, seed=3)[0]["b"]) and np.array_equal(got, x)
