"""Round 43 (runtime, b): counts, poison and hostile arguments of the pycuda executors (on the fake driver) and the
emulator.

- ``Executor.replay(n)`` and ``time_steps`` took any count: ``replay(10**12)`` issued graph launches for days, and
  ``time_steps(steps="5")`` was refused as "steps=5" (the string shown as the number it is not); ``run(sync="no")``
  waited (truthy) and ``sync=0`` did not. Counts are now integers in ``0..MAX_STEPS`` (``replay``) or ``1..`` (steps,
  repeats), named with their value as given; ``sync`` must be a bool.
- ``Poison`` ranges filled a weight's original only: on a split plan, a replica of it on a later device kept its old
  bytes, so a read there saw them, not NaN. Every copy is poisoned now; a range naming a replica is refused, naming
  its original (as ``write_weight`` does).
- The emulator allocated a hand-edited plan's arena of 2**50 bytes through numpy: a raw MemoryError. It poisoned
  every arena byte, so a verified plan whose ``arena_bytes`` is far above its tensors' wrote NaN over all of it.
- ``Executor.read(["x"])`` (any unhashable id) was a raw "unhashable type" TypeError.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_runtime_round43 import _tied

import memplan
from memplan.errors import BudgetError, ExecutorError, GraphError
from runtime.emulate import emulate


def _copy_graph(size: int = 16):
    """``a`` (input, f32) -COPY-> ``b`` (output)."""
    f = {"dtype": "f32", "shape": [size // 4]}
    doc = {"format": "memplan.graph/1", "name": "copy",
           "tensors": [{"id": "a", "size": size, "kind": "input", "attrs": f},
                       {"id": "b", "size": size, "kind": "output", "attrs": f}],
           "nodes": [{"id": "n", "op": "COPY", "inputs": ["a"], "outputs": ["b"]}]}
    return memplan.graph_from_dict(doc)


@pytest.fixture
def copy_executor(monkeypatch):
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g = _copy_graph()
    ex = Executor(g, memplan.plan(g), inputs={"a": np.arange(4, dtype=np.float32)})
    yield ex, drv
    ex.free()


@pytest.mark.parametrize("call, words", [
    (lambda ex: ex.replay(10 ** 12), r"replay n=1000000000000: expected an integer in 0\.\.2147483647"),
    (lambda ex: ex.replay(np.uint64(1 << 40)), r"replay n=np\.uint64\(1099511627776\)|replay n=1099511627776"),
    (lambda ex: ex.replay(2.0), r"replay n=2\.0: expected an integer in 0\.\.2147483647, not float"),
    (lambda ex: ex.replay(1, sync="no"), r"replay sync='no': expected True or False"),
    (lambda ex: ex.run(sync=0), r"run sync=0: expected True or False"),
    (lambda ex: ex.time_steps("graph", steps="5"), r"time_steps steps='5': expected an integer in 1\.\.2147483647, not str"),
    (lambda ex: ex.time_steps("graph", repeats=1.0), r"time_steps repeats=1\.0: expected an integer"),
    (lambda ex: ex.time_steps("graph", warmup=True), r"time_steps warmup=True: expected an integer in 0\.\."),
    (lambda ex: ex.time_steps("graph", steps=1 << 20, repeats=1 << 20),
     r"time_steps steps=1048576, repeats=1048576, warmup=3: 1099511627779 steps in all, above 2147483647"),
])
def test_nonsense_counts_are_refused_naming_the_argument_before_any_launch(copy_executor, call, words):
    """Failed before: ``replay(10**12)`` and the 2**40 steps started launching (a hang), ``steps='5'`` was reported as
    ``steps=5``, ``sync='no'`` / ``sync=0`` were taken by truthiness."""
    ex, drv = copy_executor
    ex.capture()
    before = len(drv.trace)
    with pytest.raises(ExecutorError, match=words):
        call(ex)
    assert not [op for op in drv.trace[before:] if op[1] in ("graph_launch", "launch", "dtod")]


def test_valid_counts_still_run(copy_executor):
    """Numpy integers, 0 replays (a synchronize) and a small timing keep working."""
    ex, _drv = copy_executor
    ex.capture()
    ex.replay(0)
    ex.replay(np.int64(2), sync=False)
    ex.synchronize()
    assert np.array_equal(ex.read("b"), np.arange(4, dtype=np.float32))
    assert len(ex.time_steps("eager", steps=np.int32(2), repeats=np.int64(2), warmup=np.uint8(0))) == 2




@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_poison_fills_every_replica_of_its_weight(monkeypatch, mode):
    """Failed before: after a step poisoned ``w``'s 256 bytes, device 1's replica ``w@dev1`` still held 2.0, not the
    poison (a read there that did not wait for the write would have passed unseen)."""
    import fake_cuda

    g, plan = _tied()
    fake_cuda.install(monkeypatch, devices=2)
    from runtime.executor import Poison
    from runtime.models.llama import PoisonRange
    from runtime.multi_gpu import MultiGpuExecutor

    ex = MultiGpuExecutor(g, plan, weights={"w": np.full(64, 2.0, np.float32)},
                          inputs={"x": np.ones((1, 64), np.float32)})
    poison = Poison(arena=False, ranges=(PoisonRange("w", 0, 256),))
    if mode == "eager":
        ex.run(poison=poison)
    else:
        ex.capture(poison=poison)
        ex.replay(1)
    for copy in ("w", "w@dev1"):   # (f32 NaN over an f32 weight since round 79: test_rt79_round79.py)
        assert np.isnan(ex.read(copy)).all(), copy
    with pytest.raises(ExecutorError, match=r"poison range of 'w@dev1': a replica of 'w' \(its copy on device 1\): "
                                            r"poison the original, which poisons every replica"):
        ex.run(poison=Poison(arena=False, ranges=(PoisonRange("w@dev1", 0, 4),)))
    ex.free()


def test_the_emulator_refuses_an_arena_the_host_cannot_hold():
    """Failed before: numpy's raw ``MemoryError: Unable to allocate 1.00 PiB`` (2**50 bytes: past any address space)."""
    g = _copy_graph()
    plan = memplan.plan(g)
    with pytest.raises(BudgetError, match=r"emulate: device 0's arena of 1125899906842624 B \(plan of graph 'copy'\) "
                                          r"does not fit in host memory"):
        emulate(g, replace(plan, arena_bytes=1 << 50), {}, {"a": np.zeros(4, np.float32)})


def test_the_emulator_poisons_the_tensors_bytes_not_a_whole_oversized_arena():
    """Failed before: the 64 MiB arena of two 16-byte tensors was NaN in every byte (every host page written); only
    the tensors' bytes can be read, so only they are poisoned. The step's result is the same."""
    g = _copy_graph()
    plan = memplan.plan(g)
    big = replace(plan, arena_bytes=1 << 26)
    memplan.verify(g, big)   # (a plan verify takes)
    x = np.arange(4, dtype=np.float32)
    out, mem, addr = emulate(g, big, {}, {"a": x})
    assert np.array_equal(out["b"], x)
    arena = mem.bufs[0][1]
    end = max(o + s for _t, o, s in plan.tensors)
    assert not arena[end:].any()


def test_a_tensor_id_of_the_wrong_kind_is_named(copy_executor):
    """Failed before: ``TypeError: unhashable type: 'list'`` from ``read`` and ``write_weight``."""
    ex, _drv = copy_executor
    with pytest.raises(GraphError, match=r"unknown tensor \['b'\]"):
        ex.read(["b"])
    with pytest.raises(GraphError, match=r"unknown tensor \['w'\]"):
        ex.write_weight(["w"], np.zeros(4, np.float32))


@pytest.mark.parametrize("wid, words", [
    ("a", r"prefetch 'a': only root weight-kind tensors"),
    ("nope", r"unknown tensor 'nope'"),
])
def test_a_prefetch_of_no_weight_is_refused_before_any_allocation(monkeypatch, wid, words):
    """Failed before: refused (or the GraphError raised) only after the arena, the staging copies and the weights
    were allocated and copied: with an 8B model every byte of it."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g = _copy_graph()
    with pytest.raises((ExecutorError, GraphError), match=words):
        Executor(g, memplan.plan(g), inputs={"a": np.zeros(4, np.float32)}, prefetch=[("n", wid, 16)])
    assert not [op for op in drv.trace if op[1] == "alloc"]


def test_reading_an_arena_tensor_before_any_step_is_refused(copy_executor):
    """Failed before: ``read('b')`` of a fresh executor returned the allocation's bytes (zeros on the fake driver,
    whatever the GPU held on a real one) as the step's output. Weights and caches read at once; after a step (or a
    replay) the output reads."""
    from runtime.executor import ExecutorStateError

    ex, _drv = copy_executor
    with pytest.raises(ExecutorStateError, match=r"read 'b': no step has run yet"):
        ex.read("b")
    ex.capture()
    ex.replay(0)
    with pytest.raises(ExecutorStateError, match=r"read 'b': no step has run yet"):
        ex.read("b")
    ex.replay(1)
    assert np.array_equal(ex.read("b"), np.arange(4, dtype=np.float32))
