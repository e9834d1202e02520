"""Round 40 (runtime): the pycuda executors on the fake driver (``tests/fake_cuda.py``), and the ATen sweep's command.

- ``runtime.device_memory.DeviceOutOfMemory`` was a bare ``MemoryError``: ``except MemplanError``, which catches
  every other refusal of the runtime, missed a plan too large for the GPU. Now it is a ``BudgetError`` (memplan's:
  the plan does not fit the memory there is) and still a ``MemoryError``, naming the bytes asked and free. So are
  the executors' state errors (a freed executor, a replay before any capture): ``ExecutorStateError``, an
  ``ExecutorError`` and still the ``RuntimeError`` they were.
- ``python -m runtime.aten.sweep --only a,a`` ran ``a`` once, silently: now refused (one line, exit 2); ``--device
  cpu --only resnet18_f16`` ran a cuda-only entry on the CPU: now reported ``SKIP-DEVICE``, not run.
- A hand-edited plan that puts an operand off the alignment its kernel needs (an f32 two bytes past the plan's
  alignment, attention's q off 16 bytes; run unverified) was refused only once the executor built its program
  over device addresses: after every allocation and weight copy, and naming "a root in a graph of 256-byte
  alignment". Now the program is built and checked over stand-in addresses first (same choices, same refusals),
  naming the plan; the multi-GPU executor enables peer access only once the plan is checked.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from needs import need
from plan_mutators import plan_with_a_view_moved_off_its_roots_device

import memplan
from memplan.errors import BudgetError, ExecutorError, MemplanError
from runtime.models import llama as L

ROOT = Path(__file__).resolve().parents[1]
#: what a refused plan must not have done: allocations, copies, launches, memsets, peer access
_DEVICE_WORK = ("alloc", "launch", "launch_pdl", "htod", "memset_d8", "memset_d32", "memset_d16", "dtod", "peer")


def _tiny(fuse: str = "norms"):
    cfg = L.config("tiny")
    g = L.build_graph(cfg, fuse)
    return cfg, g, L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)


# -- 1. the runtime's errors are memplan's ------------------------------------------------------------------------

class _PycudaMemoryError(Exception):   # pycuda's MemoryError is no subclass of Python's
    pass


_PycudaMemoryError.__name__ = "MemoryError"


def test_a_plan_too_large_for_the_device_is_a_memplan_error_naming_the_bytes_asked_and_free(monkeypatch):
    """The fake device fills up at the arena's allocation: ``except MemplanError`` (and ``BudgetError``) catch it,
    ``except MemoryError`` still does, and the message names the device, the bytes asked, the bytes free and the
    graph."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda

    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    real = cuda.mem_alloc

    def full(nbytes):
        if nbytes >= p.arena_bytes:
            raise _PycudaMemoryError("cuMemAlloc failed: out of memory")
        return real(nbytes)

    monkeypatch.setattr(cuda, "mem_alloc", full, raising=False)
    monkeypatch.setattr(cuda, "mem_get_info", lambda: (1000, 80 << 30), raising=False)
    with pytest.raises(MemplanError) as info:
        Executor(g, p, weights=w, inputs=inp)
    exc = info.value
    assert isinstance(exc, BudgetError) and isinstance(exc, MemoryError)
    assert f"device 0: cannot allocate {max(p.arena_bytes, 256)} B for graph {g.name!r} (1000 B free of " in str(exc)
    assert drv.trace == [] or all(t[1] != "launch" for t in drv.trace)


def test_every_error_class_the_runtime_raises_on_its_callers_input_is_memplans():
    """The executors' own classes: each a ``MemplanError`` (what the CLI and callers catch), each still what it
    was (``MemoryError``, ``RuntimeError``)."""
    from runtime.device_memory import DeviceOutOfMemory
    from runtime.executor import ExecutorStateError

    assert issubclass(DeviceOutOfMemory, BudgetError) and issubclass(DeviceOutOfMemory, MemoryError)
    assert issubclass(ExecutorStateError, ExecutorError) and issubclass(ExecutorStateError, RuntimeError)


def test_a_freed_executor_and_a_replay_before_capture_are_memplan_errors(monkeypatch):
    """Both were plain RuntimeErrors: ``except MemplanError`` missed them."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    ex = Executor(g, memplan.plan(g), weights=w, inputs=inp)
    with pytest.raises(MemplanError, match=r"replay: no CUDA graph captured \(plan 'llama-tiny-L2-b1'\): call "
                                           r"capture\(\) first") as info:
        ex.replay(1)
    assert isinstance(info.value, RuntimeError)
    ex.free()
    for call in (ex.run, lambda: ex.read("logits"), ex.capture):
        with pytest.raises(MemplanError, match="was freed: its device memory is gone") as info:
            call()
        assert isinstance(info.value, RuntimeError)


# -- 2. and 3. the ATen sweep's --only ----------------------------------------------------------------------------

def _sweep(capsys, *args: str) -> subprocess.CompletedProcess:
    """``python -m runtime.aten.sweep args``, run in-process (a subprocess spent seconds importing torch): its exit
    code, stdout and stderr. The status through the real entry point is test_runtime_cli's (every tool as
    ``__main__``, a bad option and ``--help``)."""
    from cli_contract import exit_code

    need("torch")   # (runtime.aten.sweep builds its models' classes at import)
    from runtime.aten.sweep import main

    code = exit_code(main, list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_aten_sweep_refuses_a_model_named_twice(capsys):
    """``--only nn_losses,nn_losses`` ran it once and reported one model: now one line, exit 2, nothing run."""
    r = _sweep(capsys, "--device", "cpu", "--only", "nn_losses,nn_losses")
    assert r.returncode == 2, r.stdout[-300:]
    assert r.stderr.strip().splitlines() == ["python -m runtime.aten.sweep: --only 'nn_losses,nn_losses': model "
                                             "'nn_losses' named twice (each at most once)"]
    assert "models; budget" not in r.stdout
    help_text = _sweep(capsys, "--help").stdout
    assert "each at most once" in help_text and "SKIP-DEVICE" in help_text


def test_aten_sweep_on_a_cpu_skips_a_cuda_only_entry_it_is_named(capsys):
    """``resnet18_f16`` (a half-precision variant, cuda only) named on ``--device cpu`` was built, exported and run
    on the CPU; now reported SKIP-DEVICE, in the output and the JSON, and nothing of it runs."""
    out = ROOT / ".pytest_cache" / "sweep_round40.json"
    out.parent.mkdir(exist_ok=True)
    r = _sweep(capsys, "--device", "cpu", "--only", "resnet18_f16", "--out", str(out))
    try:
        assert r.returncode == 0, (r.stdout[-500:], r.stderr[-500:])
        assert "exported" not in r.stdout
        rows = json.loads(out.read_text())["results"]
    finally:
        out.unlink(missing_ok=True)
    assert rows == [{"model": "resnet18_f16", "mode": "-", "verdict": "SKIP-DEVICE(cuda only; this run is on cpu)",
                     "seconds": rows[0]["seconds"]}]


# -- 4. a plan's operand off its kernel's alignment, refused before any device work -------------------------------

def _off(plan, tid: str, by: int):
    """``plan`` with ``tid`` moved ``by`` bytes (its alignment field lowered to 1, the arena grown to hold it)."""
    return replace(plan, alignment=1, arena_bytes=plan.arena_bytes + 256,
                   tensors=tuple((t, o + by if t == tid else o, s) for t, o, s in plan.tensors))


@pytest.mark.parametrize("tid, by, node, kernel, need", [
    ("l0.o", 2, "l0.mm_o", "gemm_naive_f16_f32", 4),   # an f32 two bytes past its element
    ("l0.qr", 4, "l0.kq", "attn_kq_f16", 16),          # attention's q read 16 bytes at a time
])
def test_an_operand_the_plan_puts_off_its_kernels_alignment_is_refused_before_any_device_work(
        monkeypatch, tid, by, node, kernel, need):
    """Run unverified (``check_plan=False``): the refusal came after the arena, the weights and the inputs' staging
    were allocated and the weights copied, and blamed the graph; now before any of it, naming the node, the tensor,
    the plan and the kernel's need. The emulator and ``program_at`` refuse it the same way."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.kernels.ops import KernelError
    from runtime.step import program_at

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    p = memplan.plan(g, L.multi_stream_schedule(g))
    bad = _off(p, tid, by)
    with pytest.raises(memplan.UnsafePlan, match=rf"tensor {tid!r} offset \d+ is not a non-negative multiple"):
        memplan.verify(g, bad)
    pattern = (rf"node {node!r} \(MUL_MAT\): tensor {tid!r} \(a root the plan puts off the graph's 256-byte "
               rf"alignment\) is at byte offset {by} from a {need}-byte boundary; the {kernel} kernel needs {need}-byte")
    with pytest.raises(KernelError, match=pattern):
        Executor(g, bad, weights=w, inputs=inp, check_plan=False)
    assert [t for t in drv.trace if t[1] in _DEVICE_WORK] == []
    with pytest.raises(KernelError, match=pattern):
        emulate(g, bad, w, inp)
    with pytest.raises(KernelError, match=pattern):
        program_at(g, bad, lambda n, label: 1 << 40)
    # the same offset moved by a whole alignment unit runs (the kernels' choices read only the alignment)
    ok = _off(p, tid, need * 16)
    ex = Executor(g, ok, weights=w, inputs=inp, check_plan=False)
    ex.run()
    ex.free()


def test_the_stand_in_program_is_the_program_the_executor_runs(monkeypatch):
    """The check's stand-in addresses decide every kernel as the device's do: its launches are the executor's,
    address for address once each tensor's stand-in is mapped to its device address (tiny, 1 and 3 streams, both
    fusions; one and two devices)."""
    import fake_cuda

    import runtime.step as step_module

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.executor import Executor
    from runtime.multi_gpu import MultiGpuExecutor

    seen = []
    real = step_module._program_over

    def keep(*args, **kwargs):
        prog, addr = real(*args, **kwargs)
        seen.append((prog, addr))
        return prog, addr

    monkeypatch.setattr(step_module, "_program_over", keep)
    for fuse in ("norms", "runtime"):
        _cfg, g, w, inp = _tiny(fuse)
        split, sp = memplan.plan_devices(g, 2, streams=2)
        for make, graph, plan in ((Executor, g, memplan.plan(g)), (Executor, g, memplan.plan(g, L.multi_stream_schedule(g))),
                                  (MultiGpuExecutor, split.graph, sp)):
            seen.clear()
            ex = make(graph, plan, weights=w, inputs=inp)
            try:
                ((stand_in, at),) = seen
                real_addr = ex.addr_of
                assert stand_in.steps == ex.program.steps and stand_in.finished_by == ex.program.finished_by
                assert stand_in.fused_groups == ex.program.fused_groups
                for nid, lns in ex.program.launches.items():
                    mine = stand_in.launches[nid]
                    assert [(ln.kernel, ln.grid, ln.block, len(ln.args)) for ln in lns] == \
                        [(ln.kernel, ln.grid, ln.block, len(ln.args)) for ln in mine], nid
                for t in ex.graph.tensors:   # the same residues where a kernel may look (up to 256 bytes)
                    assert at[t.id] % 256 == real_addr[t.id] % 256, t.id
            finally:
                ex.free()
    assert drv.trace


def test_a_split_plan_refused_enables_no_peer_access(monkeypatch):
    """A split plan's view put on another device than its root (run unverified) is refused before any device work:
    peer access between the primary contexts was enabled before the refusal; the honest plan still enables it."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    _cfg, g, w, inp = _tiny()
    split, sp = memplan.plan_devices(g, 2)
    sg = split.graph
    view, dev, flipped = plan_with_a_view_moved_off_its_roots_device(sg, sp)
    with pytest.raises(memplan.PlanFormatError, match=rf"puts view {view!r} on device {1 - dev}"):
        MultiGpuExecutor(sg, flipped, weights=w, inputs=inp, check_plan=False)
    assert [t for t in drv.trace if t[1] in _DEVICE_WORK] == []
    ex = MultiGpuExecutor(sg, sp, weights=w, inputs=inp)
    peers = [i for i, t in enumerate(drv.trace) if t[1] == "peer"]
    allocs = [i for i, t in enumerate(drv.trace) if t[1] == "alloc"]
    assert sorted((drv.trace[i][0], drv.trace[i][2]) for i in peers) == [(0, 1), (1, 0)]
    assert max(peers) < min(allocs)   # before the first allocation, as before
    ex.run()
    ref, _mem, _addr = __import__("runtime.emulate", fromlist=["emulate"]).emulate(sg, sp, w, inp)
    assert np.array_equal(ex.read("logits"), ref["logits"])
    ex.free()


# -- 5. the executors' other arguments ------------------------------------------------------------------------------

def test_read_with_a_dtype_that_cannot_hold_the_tensor_is_refused_naming_it(monkeypatch):
    """``read("logits", "float99")`` was numpy's TypeError; an f32 ``[1, 256]`` read as ``np.float16`` copied 512
    elements and failed numpy's reshape; three bytes as f32 left the rest out. Each is now an ExecutorError naming
    the tensor, before any copy; an explicit dtype that fills the shape still wins."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    _cfg, g, w, inp = _tiny()
    ex = Executor(g, memplan.plan(g), weights=w, inputs=inp)
    try:
        ex.run()
        shape = g.tensor("logits").attrs["shape"]
        start = len(drv.trace)
        for dtype, pattern in (("float99", r"read 'logits': dtype 'float99' is not a numpy dtype"),
                               (np.float16, rf"read 'logits' as float16: {2 * int(np.prod(shape))} elements, its "
                                            rf"shape \[{', '.join(map(str, shape))}\] holds {int(np.prod(shape))}"),
                               (np.dtype("V5"), r"read 'logits': its 384 bytes are not whole \|V5 elements")):
            with pytest.raises(ExecutorError, match=pattern):
                ex.read("logits", dtype)
        assert not [t for t in drv.trace[start:] if t[1] == "dtoh"]
        bits = ex.read("logits", np.uint32)
        assert np.array_equal(bits.view(np.float32), ex.read("logits"))
    finally:
        ex.free()


@pytest.mark.parametrize("kwargs, pattern", [
    ({"ranges": (object(),)}, r"Poison range <object object at .*>: expected an object with \.tensor"),
    ({"ranges": None}, r"Poison ranges None: expected a tuple of \(tensor, offset, nbytes\) ranges"),
    ({"arena": "no"}, r"Poison arena 'no': expected True or False"),
])
def test_a_malformed_poison_is_refused_when_made(kwargs, pattern):
    """A range that was no PoisonRange was an AttributeError from the step's checks, ``ranges=None`` a TypeError
    there, and ``arena="no"`` (truthy) poisoned the arena: now refused where the Poison is made."""
    from runtime.executor import Poison

    with pytest.raises(ExecutorError, match=pattern):
        Poison(**kwargs)
    assert Poison(ranges=[L.PoisonRange("cache", 0, 16)]).ranges == (L.PoisonRange("cache", 0, 16),)
