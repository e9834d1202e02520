"""Round 49 (runtime49): hostile plans given to the runtime's executors, refused before any allocation or launch.

Bugs fixed (each test failed before):
- ``runtime.aten.compile(m, x, plan=p)`` with ``p``'s ``arena_bytes`` of 2**60 (``verify`` takes any arena at least
  its tensors') asked torch for the arena and failed with its raw "DefaultCPUAllocator: can't allocate memory"
  RuntimeError; now ``ArenaOutOfMemory`` (an ``AtenExecutorError``, ``BudgetError`` and ``MemoryError``) naming the
  bytes and the device, before asking the allocator for an arena larger than the device's memory, and for any
  arena its allocator cannot give; ``runtime.oom.is_out_of_memory`` knows the CPU allocator's message.
- an unverified plan split over 2 devices (nodes on device 1, tensors in device 1's arena) was laid out in device 0's
  arena: torch's raw "setStorage: ... out of bounds"; now refused naming the node or tensor and the field.
- an unverified multi-stream plan waiting on an event before its record, under ``cuda_graph=True`` on CUDA: built (the
  arena allocated), then its first call's capture waited on a warm-up's record (CUDA refuses it) and blamed the next
  node; now refused where the plan is bound, naming the event, before the arena is laid out.
- an unverified plan with an arena tensor off its elements' alignment (an f32 at byte 2) or a view moved off its
  root's bytes was refused by the ATen executor only after its arena was allocated; now before.
- the pycuda executors asked the driver for an arena past the device's whole memory (2**60), on several devices after
  the others' arenas were allocated; now ``DeviceOutOfMemory`` naming the device before the first allocation.
- ``runtime.aten.compile(m, x, plan=p)`` with a Plan built in code whose ``order`` holds a 1-tuple, a list stream id
  or is an int, or (with ``memory_budget``) whose ``arena_bytes`` is a string: raw ValueError / TypeError from
  ``check_given_plan``; now the plan's fields are checked first (``PlanFormatError`` naming the field), before export.
- the pycuda executors read a Plan's ``devices`` before its fields were checked: ``devices="2"``, None or ``[2]`` was a
  raw TypeError from ``Executor`` and ``MultiGpuExecutor`` (2.0 "spans 2.0 devices"); now ``PlanFormatError`` naming it.
- the pycuda executors checked each weight and input array as they copied it, after the arenas and weight roots were
  allocated and earlier weights copied; now all are checked on the host before any allocation.
- ``Executor(g, p, weights=w, weights_from=other)`` (or a ``random_weights_seed``) ignored ``w`` silently; refused.
- ``python -m runtime.tools.compare_launches --config tiny --vocab 99999999999`` (a product whose grid is past CUDA's
  limits, which only its launches tell) was a raw ``KernelError`` traceback; now one line, exit status 2.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from needs import need

from memplan.errors import BudgetError
from runtime.oom import is_out_of_memory

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile as aten_compile  # noqa: E402
from runtime.aten.errors import ArenaOutOfMemory, AtenExecutorError  # noqa: E402


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        a = self.lin(x).relu()
        return a * 2 + a


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    m = _Small()
    x = torch.randn(4, 8)
    return m, x, aten_compile(m, (x,))


@pytest.mark.parametrize("arena", [1 << 60, 1 << 50])
@pytest.mark.parametrize("verify", [True, False])
def test_aten_refuses_an_arena_the_device_cannot_hold_before_allocating(small, monkeypatch, arena, verify):
    """Failed before: torch's raw RuntimeError (2**60), or an allocation tried (2**50)."""
    m, x, cm = small
    calls = []
    real = torch.empty

    def watch(*a, **k):
        calls.append(a)
        return real(*a, **k)
    big = replace(cm.plan, arena_bytes=arena)
    monkeypatch.setattr(torch, "empty", watch)
    with pytest.raises(ArenaOutOfMemory, match=rf"arena of {arena} B .* more than cpu holds") as info:
        aten_compile(m, (x,), plan=big, verify=verify)
    assert isinstance(info.value, (AtenExecutorError, BudgetError, MemoryError))
    assert not any(a and isinstance(a[0], int) and a[0] >= arena for a in calls)


def test_aten_maps_the_allocators_own_refusal(small, monkeypatch):
    """An arena the device holds but its allocator cannot give now: the allocator's refusal, named (was raw)."""
    m, x, cm = small
    import runtime.aten.layout as lay

    def refuse(*_a, **_k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 1024 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(lay, "device_bytes", lambda *_a: None)
    monkeypatch.setattr(torch, "empty", refuse)
    with pytest.raises(ArenaOutOfMemory, match=r"cannot allocate the plan's arena of \d+ B .* on cpu: "):
        aten_compile(m, (x,), plan=cm.plan)


def test_the_cpu_allocators_refusal_is_out_of_memory():
    exc = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes.")
    assert is_out_of_memory(exc)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_a_plan_with_a_fitting_oversized_arena_still_runs(small):
    m, x, cm = small
    c = aten_compile(m, (x,), plan=replace(cm.plan, arena_bytes=cm.plan.arena_bytes + 4096))
    assert torch.allclose(c(x), m(x))


def _split(plan, node_device: int, tensor_device: int):
    """``plan`` as a plan of 2 devices with every node on ``node_device`` and every arena tensor on ``tensor_device``."""
    tensors = tuple(tensor_device if off is not None else 0 for _t, off, _s in plan.tensors)
    return replace(plan, devices=2, node_devices=(node_device,) * len(plan.order), tensor_devices=tensors,
                   device_arena_bytes=(plan.arena_bytes, plan.arena_bytes))


@pytest.mark.parametrize("nodes,tensors,match", [
    (1, 1, r"runs node 'lin(ear)?' on device 1: the ATen executor runs a plan of one device"),
    (0, 1, r"puts tensor 'x' in device 1's arena: the ATen executor runs a plan of one device")])
def test_aten_refuses_a_plan_of_several_devices_unverified(small, nodes, tensors, match):
    """Failed before: torch's raw "setStorage: ... out of bounds" (device 1's offsets in device 0's arena of 0 bytes),
    or the device fields ignored."""
    m, x, cm = small
    q = _split(cm.plan, nodes, tensors)
    q = replace(q, device_arena_bytes=(0 if nodes else q.arena_bytes, q.arena_bytes))
    with pytest.raises(AtenExecutorError, match=r"field 'devices' 2\) " + match):
        aten_compile(m, (x,), plan=q, verify=False)


def test_aten_runs_a_split_plan_whose_every_node_and_tensor_is_on_device_0(small):
    m, x, cm = small
    c = aten_compile(m, (x,), plan=_split(cm.plan, 0, 0))
    assert torch.allclose(c(x), m(x))


class _TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x):
        return self.a(x).relu() + self.b(x).sigmoid()


def _backward_event_plan():
    """A 2-stream plan of ``_TwoBranches`` (one event at least) with one event's wait moved before its record: its
    ``before`` node issued first (an edited plan, unsafe)."""
    from memplan import plan as make_plan

    torch.manual_seed(0)
    m, x = _TwoBranches(), torch.randn(4, 16)
    cm = aten_compile(m, (x,), streams=2)
    p = make_plan(cm.graph, streams=2)
    assert p.events and len({s for _n, s in p.order}) == 2
    a, b = p.events[0]
    order = list(p.order)
    ib = next(k for k, (n, _s) in enumerate(order) if n == b)
    moved = order.pop(ib)
    order.insert(0, moved)   # the waiting node first: it waits before ``a`` records
    return m, x, cm, replace(p, order=tuple(order)), (a, b)


def test_aten_cuda_graph_refuses_a_plan_waiting_before_the_record_before_allocating(monkeypatch):
    """Failed before: built (the arena allocated on the device); its first call's capture waited on a warm-up's
    record, which CUDA refuses, and blamed the node after it. Refused here where the binding is made, before the
    layout (checked on a CPU machine by refusing any layout)."""
    import runtime.aten.executor as ex

    m, x, cm, q, (a, b) = _backward_event_plan()

    def no_layout(*_a, **_k):
        raise AssertionError("the arena was laid out")
    monkeypatch.setattr(ex, "build_layout", no_layout)
    with pytest.raises(AtenExecutorError, match=rf"waits on event '{a}'->'{b}' at '{b}' \(stream \d\) before "
                                                rf"'{a}' records it: a CUDA graph cannot capture"):
        ex.Executor(cm.executor.program, q, "cuda", cuda_graph=True)


def test_aten_eager_takes_a_plan_waiting_before_the_record_as_a_negative_control(monkeypatch):
    """Without a capture the wait waits for nothing, as in CUDA: not refused (the layout is reached)."""
    import runtime.aten.executor as ex

    _m, _x, cm, q, _ = _backward_event_plan()

    def no_layout(*_a, **_k):
        raise AssertionError("the arena was laid out")
    monkeypatch.setattr(ex, "build_layout", no_layout)
    with pytest.raises(AssertionError, match="laid out"):
        ex.Executor(cm.executor.program, q, "cuda", cuda_graph=False)


def test_waits_before_records_of_a_binding():
    from runtime.binding import bind, waits_before_records

    _m, _x, cm, q, (a, b) = _backward_event_plan()
    assert waits_before_records(bind(cm.graph, cm.plan).steps, cm.plan) == ""
    assert f"'{a}'->'{b}'" in waits_before_records(bind(cm.graph, q).steps, q)


@pytest.mark.gpu(backend="torch")
def test_aten_cuda_graph_refuses_a_plan_waiting_before_the_record_on_the_gpu():
    from memplan import plan as make_plan

    torch.manual_seed(0)
    m, x = _TwoBranches().cuda(), torch.randn(4, 16, device="cuda")
    cm = aten_compile(m, (x,), streams=2)
    p = make_plan(cm.graph, streams=2)
    a, b = p.events[0]
    order = list(p.order)
    order.insert(0, order.pop(next(k for k, (n, _s) in enumerate(order) if n == b)))
    with pytest.raises(AtenExecutorError, match=rf"waits on event '{a}'->'{b}'"):
        aten_compile(m, (x,), plan=replace(p, order=tuple(order)), verify=False, cuda_graph=True)


@pytest.mark.parametrize("emulate", [False, True])
def test_compare_launches_a_config_no_kernel_launches_is_one_line_and_exit_2(capsys, emulate):
    """Failed before: a raw KernelError traceback from ``compare_plans`` (the launch grid of ``lm_head``)."""
    from runtime.tools import compare_launches

    argv = ["--config", "tiny", "--batches", "1", "--fuse", "runtime", "--vocab", "99999999999"]
    assert compare_launches.main(argv + (["--emulate"] if emulate else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("compare_launches: error: node 'lm_head' (MUL_MAT): no launch") and err.count("\n") == 1


class _Viewed(nn.Module):
    def forward(self, x):
        return (x * 2).view(4, 16)[1:] + 1


@pytest.mark.parametrize("tensor,delta,match", [
    ("mul", -254, r"tensor 'mul' at arena byte 2 is not aligned to its torch.float32 elements"),
    ("slice_1", -64, r"tensor 'slice_1' spans bytes \[320, 512\) of the arena, outside the \[256, 448\) planned")])
def test_aten_refuses_a_misplaced_arena_tensor_before_allocating_the_arena(monkeypatch, tensor, delta, match):
    """Failed before: the arena was allocated first (here: the stand-in allocator's AssertionError)."""
    import runtime.aten.layout as lay

    m, x = _Viewed(), torch.randn(64)
    cm = aten_compile(m, (x,))
    assert dict((t, o) for t, o, _s in cm.plan.tensors)["slice_1"] == 320   # (the layout this test edits)
    tensors = tuple((t, o + delta if t == tensor else o, s) for t, o, s in cm.plan.tensors)

    def no_arena(*_a, **_k):
        raise AssertionError("the arena was allocated")
    monkeypatch.setattr(lay, "aligned_arena", no_arena)
    with pytest.raises(AtenExecutorError, match=match):
        aten_compile(m, (x,), plan=replace(cm.plan, tensors=tensors), verify=False)


def _fake_two_devices(monkeypatch, total: int):
    """The fake driver on 2 devices, each holding ``total`` bytes; returns the list every allocation's size goes to."""
    import fake_cuda

    fake_cuda.install(monkeypatch, devices=2)
    import sys

    drv = sys.modules["pycuda.driver"]
    sizes: list[int] = []
    real = drv.mem_alloc

    def alloc(n):
        sizes.append(int(n))
        return real(n)
    monkeypatch.setattr(drv, "mem_alloc", alloc)
    monkeypatch.setattr(drv, "mem_get_info", lambda: (total, total), raising=False)
    return sizes


@pytest.mark.parametrize("arenas", [lambda a: (a, 1 << 60), lambda a: (1 << 40, a)])
def test_pycuda_refuses_an_arena_past_the_devices_memory_before_any_allocation(monkeypatch, arenas):
    """Failed before: device 0's arena (and every allocation before device 1's) was made, then device 1's 2**60 asked
    of the driver; an arena past the device's whole memory is refused first, naming the device."""
    import memplan
    from runtime.device_memory import DeviceOutOfMemory
    from runtime.models import llama as L
    from runtime.multi_gpu import MultiGpuExecutor

    sizes = _fake_two_devices(monkeypatch, 1 << 34)
    cfg = L.config("tiny", batch=1)
    split = memplan.plan_graph(L.build_graph(cfg), devices=2)
    p = split.plan
    big = replace(p, device_arena_bytes=arenas(p.device_arena_bytes[0]))
    dev = 1 if big.device_arena_bytes[1] > 1 << 34 else 0
    with pytest.raises(DeviceOutOfMemory, match=rf"device {dev}: the plan's arena of {big.device_arena_bytes[dev]} B "
                                                r"\(graph '.*'\) is more than the device's 17179869184 B: nothing"):
        MultiGpuExecutor(split.graph, big, random_weights_seed=0, check_plan=False)
    assert sizes == []
    ex = MultiGpuExecutor(split.graph, p, random_weights_seed=0)   # (a plan that fits: allocated as before)
    assert sizes
    ex.free()


@pytest.mark.parametrize("fields,budget,match", [
    (dict(order=(("mul",), ("add",))), None, r"order\[0\] is not a \(node, stream\) tuple"),
    (dict(order=5), None, r"field 'order' is not a tuple \(int\)"),
    (dict(order=(("mul", [0]), ("add", 0))), None, r"order\[0\] \('mul'\): 'stream' is not an integer"),
    (dict(arena_bytes="100"), 1 << 30, r"field 'arena_bytes' is not an integer"),
    (dict(arena_bytes=None), 1 << 30, r"field 'arena_bytes' is not an integer")])
def test_aten_refuses_a_malformed_plan_built_in_code_by_field(small, monkeypatch, fields, budget, match):
    """Failed before: ValueError "not enough values to unpack", TypeError "unhashable type: 'list'" or "'>' not
    supported" from ``check_given_plan``. Refused before the export."""
    from memplan.errors import PlanFormatError

    m, x, cm = small
    import sys

    comp = sys.modules["runtime.aten.compile"]   # (the package's ``compile`` is the function)

    def no_export(*_a, **_k):
        raise AssertionError("exported")
    monkeypatch.setattr(comp, "load_program", no_export)
    with pytest.raises(PlanFormatError, match=match):
        aten_compile(m, (x,), plan=replace(cm.plan, **fields), memory_budget=budget)


@pytest.mark.parametrize("devices", ["2", None, 2.0, [2]])
@pytest.mark.parametrize("multi", [False, True])
def test_pycuda_executors_check_the_plans_fields_before_reading_its_devices(monkeypatch, devices, multi):
    """Failed before: TypeError "'>' not supported ..." (or "'float' object cannot be interpreted as an integer")."""
    import memplan
    from memplan.errors import PlanFormatError
    from runtime.models import llama as L

    sizes = _fake_two_devices(monkeypatch, 1 << 34)
    from runtime.executor import Executor
    from runtime.multi_gpu import MultiGpuExecutor

    g = L.build_graph(L.config("tiny", batch=1))
    cls = MultiGpuExecutor if multi else Executor
    with pytest.raises(PlanFormatError, match=r"field 'devices' is not an integer in 1\.\.1024"):
        cls(g, replace(memplan.plan(g), devices=devices), random_weights_seed=0)
    assert sizes == []


def test_pycuda_names_the_alignment_padding_that_takes_an_arena_past_the_device(monkeypatch):
    import memplan
    from runtime.device_memory import DeviceOutOfMemory
    from runtime.executor import Executor
    from runtime.models import llama as L

    sizes = _fake_two_devices(monkeypatch, 1 << 34)
    g = L.build_graph(L.config("tiny", batch=1))
    p = memplan.plan(g)
    with pytest.raises(DeviceOutOfMemory, match=rf"the plan's arena of {p.arena_bytes} B \(graph '.*', "
                                                rf"{(1 << 35) - 1} B more to align its base to {1 << 35}\) is more"):
        Executor(g, replace(p, alignment=1 << 35), random_weights_seed=0, check_plan=False)
    assert sizes == []


@pytest.mark.parametrize("bad", ["weight dtype", "weight name", "input shape", "input name"])
def test_pycuda_refuses_bad_host_arrays_before_any_allocation(monkeypatch, bad):
    """Failed before: the arena and every weight root were allocated (and the weights before the bad one copied)
    before the array was refused."""
    import numpy as np

    import memplan
    from memplan.errors import ExecutorError
    from runtime.executor import Executor
    from runtime.models import llama as L

    sizes = _fake_two_devices(monkeypatch, 1 << 34)
    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)
    last = sorted(w, key=g.tensor_index.__getitem__)[-1]
    if bad == "weight dtype":
        w[last] = w[last].astype(np.float64)
    elif bad == "weight name":
        w["no_such_weight"] = w[last]
    elif bad == "input shape":
        inp["inp"] = np.zeros((2, 64), np.float32)
    else:
        inp["l0.attn_norm"] = np.zeros(64, np.float32)
    with pytest.raises(ExecutorError, match=r"(weight|weights|input) '(" + "|".join(
            [last, "no_such_weight", "inp", "l0.attn_norm"]).replace(".", r"\.") + ")'"):
        Executor(g, memplan.plan(g), weights=w, inputs=inp)
    assert sizes == []


@pytest.mark.parametrize("given", ["weights", "seed"])
def test_pycuda_refuses_weights_given_beside_weights_from(monkeypatch, given):
    """Failed before: the arrays (or the seed) were ignored without a word, the step running on the other's weights."""
    import memplan
    from memplan.errors import ExecutorError
    from runtime.executor import Executor
    from runtime.models import llama as L

    _fake_two_devices(monkeypatch, 1 << 34)
    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    p, w, inp = memplan.plan(g), L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)
    owner = Executor(g, p, weights=w, inputs=inp)
    kw = {"weights": {k: v * 0 for k, v in w.items()}} if given == "weights" else {"random_weights_seed": 3}
    with pytest.raises(ExecutorError, match=r"(weights|random_weights_seed=3) with weights_from: .* would be ignored"):
        Executor(g, p, inputs=inp, weights_from=owner, **kw)
    Executor(g, p, inputs=inp, weights_from=owner, weights={}).free()   # (nothing given: shared, as before)
    owner.free()
