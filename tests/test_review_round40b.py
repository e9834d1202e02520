"""Review of round 40's runtime change (``runtime.step.check_program``, the executors' new error classes, the ATen
sweep's MHA fast-path switch and device-placed building blocks), on the fake driver (``tests/fake_cuda.py``).

- ``check_program`` builds the program over stand-in addresses before any allocation. Its launches are compared
  here with the executor's, launch for launch and pointer for pointer (each pointer named by the allocation it
  falls in and its offset there: arena, weight root, group counters, scratch buffer in order), with the ``early``
  and ``carveout`` fields the author's test left out, over 1 to 3 devices, both fusions, batches 1 to 64, the
  ordinary and the fused-groups plans, the GEMV+add+norm kernel on and off, the wgmma build on and off; and over
  allocations only as aligned as the device promises (``ALLOC_ALIGNMENT``), where the stand-ins are 4096-aligned.
- the fill kernel's seed: ``random_weights_seed=-1`` (or past 2**64 / 1000003) reached pycuda's ``struct.pack``
  ("argument out of range") after the arena and weights were allocated: now refused with the other options.
- ``read(tid, dtype=object)``: a device copy into an array of Python object pointers (a crash on first use); now
  refused naming the tensor.
- the sweep: torchvision's ``vit_b_16`` / ``vit_b_32`` run ``nn.MultiheadAttention``'s fused eval path in eager
  too (``aten._native_multi_head_attention``) but were not among the cases whose reference turns it off; and three
  ``sweep_blocks`` entries still built a tensor on the default device inside ``forward`` (found by running every
  block with the default device set to ``meta``); ``mha_fastpath`` puts the flag back after an exception.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from needs import need

import memplan
from memplan.errors import ExecutorError
from runtime.models import llama as L

# -- 1. the stand-in program is the executor's, launch for launch -------------------------------------------------

def _recording(real, seen: list):
    """``runtime.step.program`` that keeps what it was given and made: (addr, counters, scratch allocations in
    order, program), so that pointers can be named by allocation."""
    def program(graph, plan, binding, addr, *, counters, scratch, **kw):
        made: list[tuple[int, int]] = []

        def wrap(fn):
            def alloc(n):
                a = fn(n)
                made.append((int(a), int(n)))
                return a
            return alloc

        prog = real(graph, plan, binding, addr, counters=counters, scratch=[wrap(f) for f in scratch], **kw)
        seen.append((addr, tuple(counters), made, prog))
        return prog
    return program


def _normalised(graph, binding, rec) -> tuple:
    """The program with every pointer argument as (allocation, offset): arena d, a weight root, device d's
    counters, the k-th scratch buffer; and each launch's early and carveout fields."""
    from runtime.kernels import counter_bytes
    from runtime.kernels.ops import ALIGN

    addr, counters, scratch, prog = rec
    regions = []
    for t in graph.tensors:
        p = binding.places[t.id]
        if p.in_arena and ("arena", p.device) not in {r[0] for r in regions}:
            regions.append((("arena", p.device), addr(t.id) - p.offset, binding.arena_bytes[p.device]))
    regions += [(("root", rid), addr(rid), max(n, 1)) for rid, n in binding.own_roots]
    regions += [(("counters", d), c, counter_bytes(graph)) for d, c in enumerate(counters)]
    regions += [(("scratch", k), a, n) for k, (a, n) in enumerate(scratch)]

    def name(p: int):
        hits = [(label, p - base) for label, base, n in regions if base <= p <= base + n]
        assert len(hits) == 1, (p, hits)
        return hits[0]

    launches = {nid: tuple((ln.kernel, ln.grid, ln.block, ln.early, ln.carveout,
                            tuple(name(a) if i < len(ALIGN.get(ln.kernel, ())) else a for i, a in enumerate(ln.args)))
                           for ln in lns) for nid, lns in prog.launches.items()}
    return prog.steps, dict(prog.finished_by), prog.fused_groups, launches


@functools.cache
def _configs() -> tuple:
    """(label, graph, plan, devices, weights seed config): what the runtime's tools build, at the tiny size. Made
    once for both wgmma cases (graphs and plans are immutable; each executor is built afresh from them)."""
    return tuple(_make_configs())


def _make_configs():
    from runtime.step import plan_step

    for fuse in L.FUSE_MODES:
        for batch in (1, 2, 4, 16, 17, 64):
            cfg = L.config("tiny", batch=batch)
            g = L.build_graph(cfg, fuse)
            yield f"{fuse}-b{batch}-serial", cfg, g, plan_step(g, batch=batch), 1
            yield f"{fuse}-b{batch}-3streams", cfg, g, plan_step(g, L.multi_stream_schedule(g), batch=batch), 1
            yield f"{fuse}-b{batch}-fused", cfg, g, memplan.plan(g, L.multi_stream_schedule(g), fused_groups=True), 1
            if batch in (1, 16):
                for n in (2, 3):
                    split, sp = memplan.plan_devices(g, n, streams=2)
                    yield f"{fuse}-b{batch}-split{n}", cfg, split.graph, sp, n


@pytest.mark.parametrize("wgmma", [True, False])
def test_the_stand_in_program_is_the_executors_pointer_for_pointer(monkeypatch, wgmma):
    """Every config above, the GEMV+add+norm kernel on and off: the check's program and the executor's have the
    same steps, groups and launches, each pointer in the same allocation at the same offset, the same ``early``
    (PDL) and carveout. (The author's test compared kernel names, grids and arity on two tiny configs.)"""
    import fake_cuda

    import runtime.cuda_core as core
    import runtime.step as step_module

    fake_cuda.install(monkeypatch, devices=3)
    from runtime.executor import Executor
    from runtime.kernels.library import KernelLibrary
    from runtime.multi_gpu import MultiGpuExecutor

    if not wgmma:
        real_init = KernelLibrary.__init__

        def no_wgmma(self, *a, **kw):
            real_init(self, *a, **kw)
            self.wgmma = False
        monkeypatch.setattr(KernelLibrary, "__init__", no_wgmma)
    seen: list = []
    monkeypatch.setattr(step_module, "program", _recording(step_module.program, seen))
    monkeypatch.setattr(core, "program", _recording(core.program, seen))
    checked = 0
    for label, cfg, g, p, n in _configs():
        for gemv_norm_min in ((0, 1 << 40) if n == 1 else (1 << 40,)):
            seen.clear()
            kw = dict(inputs=L.make_inputs(cfg), random_weights_seed=1)
            ex = (Executor(g, p, gemv_norm_min=gemv_norm_min, **kw) if n == 1 else MultiGpuExecutor(g, p, **kw))
            try:
                assert all(lib.wgmma is wgmma for lib in ex.libs)
                stand_in, real = seen
                assert _normalised(g, ex.binding, stand_in) == _normalised(g, ex.binding, real), label
                checked += 1
            finally:
                ex.free()
    assert checked == 2 * 6 * 3 * 2 + 2 * 2 * 2


def test_the_kernels_never_need_more_alignment_than_an_allocation_has():
    """The stand-ins are 4096-aligned, the device's allocations only ``ALLOC_ALIGNMENT`` (256): a kernel needing
    more (a TMA base on 512 bytes, say) would be chosen over the stand-ins and refused, or fault, on the device."""
    from runtime.binding import ALLOC_ALIGNMENT
    from runtime.kernels.ops import ALIGN

    assert max(n for needs in ALIGN.values() for n in needs) <= ALLOC_ALIGNMENT


@pytest.mark.parametrize("fuse, batch", [("runtime", 1), ("runtime", 16), ("runtime", 32), ("norms", 4)])
def test_allocations_only_as_aligned_as_the_device_promises_choose_the_stand_ins_kernels(monkeypatch, fuse, batch):
    """The same program over allocations at odd multiples of 256 bytes (what cudaMalloc may give: 256-aligned, no
    more) as over 4096-aligned stand-ins: no kernel choice reads more of an address than the device guarantees."""
    import runtime.step as step_module
    from runtime.binding import ALLOC_ALIGNMENT, bind
    from runtime.step import _program_over, plan_step

    def allocator(first: int, gap: int):
        nxt = [first]

        def alloc(nbytes, _label):
            a = nxt[0]
            nxt[0] += -(-max(nbytes, 1) // 4096) * 4096 + gap
            return a
        return alloc

    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg, fuse)
    seen: list = []
    monkeypatch.setattr(step_module, "program", _recording(step_module.program, seen))
    for p in (plan_step(g, L.multi_stream_schedule(g), batch=batch), memplan.plan(g, fused_groups=True)):
        b = bind(g, p)
        progs = []
        for alloc in (allocator(1 << 40, 4096), allocator((1 << 40) + ALLOC_ALIGNMENT, 4096 + 2 * ALLOC_ALIGNMENT)):
            seen.clear()
            _program_over(g, p, b, alloc, num_sms=[132], wgmma=[True], gemv_norm_min=0)
            progs.append(_normalised(g, b, seen[0]))
        assert progs[0] == progs[1]


# -- 2. options that reached pycuda raw ----------------------------------------------------------------------------

def _tiny():
    cfg = L.config("tiny")
    g = L.build_graph(cfg, "norms")
    return cfg, g, L.make_inputs(cfg, seed=6)


class _StructFill:
    """The fill kernel's prepared call as pycuda makes it: the arguments packed by ``struct`` to the kernel's
    parameter types (``library.SIGNATURES``: the seed a ``Q``, unsigned 64-bit), which the fake driver skipped."""

    def __init__(self, fn):
        self.fn = fn

    def prepared_call(self, grid, block, *args):
        import struct

        from runtime.kernels.library import SIGNATURES

        struct.pack("".join("Q" if c == "P" else c for c in SIGNATURES["fill_uniform_f16"]), *args)
        return self.fn.prepared_call(grid, block, *args)


@pytest.mark.parametrize("seed", [-1, 1 << 64, "top + 1"])
def test_a_random_weights_seed_the_fill_kernel_cannot_take_is_refused_before_any_allocation(monkeypatch, seed):
    """``random_weights_seed=-1`` (or one whose kernel seed, ``seed * 1000003 + tensor index``, passes 2**64) was
    pycuda's ``struct.error: argument out of range`` from the fill kernel's call, after the arena and every weight
    were allocated (the fake driver took it, or overflowed numpy); now an ExecutorError naming the option and its
    range, before any device work. The largest seed allowed still fills every weight."""
    import fake_cuda

    from runtime.kernels.library import KernelLibrary

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    real_init = KernelLibrary.__init__

    def packing(self, *a, **kw):
        real_init(self, *a, **kw)
        self.funcs["fill_uniform_f16"] = _StructFill(self.funcs["fill_uniform_f16"])
    monkeypatch.setattr(KernelLibrary, "__init__", packing)
    _cfg, g, inp = _tiny()
    p = memplan.plan(g)
    top = ((1 << 64) - len(g.tensors)) // 1000003   # the largest seed*1000003 + tensor index below 2**64
    seed = top + 1 if seed == "top + 1" else seed
    with pytest.raises(ExecutorError, match=rf"random_weights_seed {seed}: expected an integer in "
                                                    rf"0\.\.\d+ \(the fill kernel's 64-bit seed\)"):
        Executor(g, p, inputs=inp, random_weights_seed=seed)
    assert not [t for t in drv.trace if t[1] == "alloc"]
    for ok in (0, top):
        Executor(g, p, inputs=inp, random_weights_seed=ok).free()


@pytest.mark.parametrize("dtype", [object, np.dtype([("a", "O")]), "O"])
def test_reading_a_tensor_into_python_objects_is_refused_before_any_copy(monkeypatch, dtype):
    """``read(tid, dtype=object)`` of a tensor whose bytes make whole 8-byte elements (one without a shape attr: a
    graph input no node reads) passed round 40's checks: pycuda then copies device bytes into the object array's
    pointer slots (numpy exports its buffer), a crash when the result is used or freed; the fake driver raised
    numpy's raw TypeError. Now an ExecutorError naming the tensor and dtype, before any copy."""
    import fake_cuda

    from memplan.graph import graph_from_dict

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg, g, inp = _tiny()
    doc = g.to_dict()
    doc["tensors"].append({"id": "extra", "size": 16, "kind": "input"})
    g2 = graph_from_dict(doc)
    ex = Executor(g2, memplan.plan(g2), inputs={**inp, "extra": np.arange(4, dtype=np.float32)}, random_weights_seed=1)
    try:
        ex.run()
        start = len(drv.trace)
        with pytest.raises(ExecutorError, match=r"read 'extra': dtype .* holds Python objects"):
            ex.read("extra", dtype)
        assert not [t for t in drv.trace[start:] if t[1] == "dtoh"]
        with pytest.raises(ExecutorError, match="no node reads"):   # (round 79: its bytes are other tensors')
            ex.read("extra")
    finally:
        ex.free()


# -- 3. the ATen sweep's building blocks and eager references -----------------------------------------------------

def _default_device_tensors(model, args) -> list[str]:
    """The ops of ``model(*args)`` (CPU inputs) that touch a tensor made on the *default* device: run with the
    default device set to ``meta``, a factory that names no device (``torch.ones(n)``,
    ``generate_square_subsequent_mask(n)``) makes a meta tensor, where one made on the input's device
    (``device=x.device``) stays on the CPU. On CUDA such a factory built on the CPU inside ``forward``. A mix the
    op refuses is reported by its error."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    from runtime.aten.sweep import mha_fastpath

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten.empty.memory_format and out.numel() == 0:
                return out   # (torch 2.11's checkpoint makes its autograd dummy, torch.empty((0,)): no bytes, torch's)
            if any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tree_leaves((args, kwargs, out))):
                self.ops.append(str(func))
            return out

    seen = Seen()
    try:
        with torch.device("meta"), torch.no_grad(), mha_fastpath(False):
            try:
                with seen:
                    model(*args)
            except NotImplementedError:   # (a higher-order op, torch.cond, has no rule for a dispatch mode)
                model(*args)
    except RuntimeError as exc:
        if "torch.* op returned non-Tensor" in str(exc) and torch.__version__ < "2.14":
            return []   # (torch 2.11 runs no torch.cond under torch.device("meta"): nothing to see there)
        return [f"error: {str(exc).splitlines()[0]}"]
    return seen.ops


def test_no_sweep_block_builds_a_tensor_on_the_default_device_inside_forward():
    """Round 40 put seven blocks' factories on their input's device; three were left: ``nn_transformer`` and
    ``nn_encoder_decoder_layers`` (``nn.Transformer.generate_square_subsequent_mask(n)``: a CPU mask on CUDA) and
    ``empty_scalar_views`` (``torch.tensor(3.0)``). The check fails on round 39's blocks too (nine of them)."""
    torch = need("torch")

    from runtime.aten.sweep_blocks import BLOCKS

    cpu = torch.device("cpu")
    bad = {}
    for name, make, inputs in BLOCKS:
        torch.manual_seed(0)
        model = make().eval()
        args = inputs(torch.Generator(device=cpu).manual_seed(1), cpu, torch.float32)
        ops = _default_device_tensors(model, args)
        if ops:
            bad[name] = ops[:2]
    assert bad == {}


#: the ops of the MHA / transformer-layer eval fast paths, which torch.export never traces
_FAST_PATH_OPS = frozenset({"aten._native_multi_head_attention", "aten._transformer_encoder_layer_fwd"})


def _fast_path_ops(case) -> set[str]:
    """The fast-path ops eager ``case`` dispatches on the CPU with the fast path on (torch's default)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from runtime.aten.sweep import mha_fastpath

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.add(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = case.make().eval()
    args = case.inputs(torch.Generator(device=cpu).manual_seed(1), cpu, case.dtype)
    with torch.no_grad(), mha_fastpath(True), Ops() as seen:
        model(*args)
    return seen.ops & _FAST_PATH_OPS


@pytest.mark.parametrize("name", ["nn_transformer", "nn_mha_masks", "nn_encoder_decoder_layers"])
def test_every_case_whose_eager_takes_the_mha_fast_path_has_its_reference_without_it(name):
    """torchvision's ViTs call ``nn.MultiheadAttention(x, x, x, need_weights=False)``, batch first, 12 heads: eager
    ran ``aten._native_multi_head_attention`` (the fused path round 40 turned off for three blocks only), where the
    compiled calls run the standard path torch.export traced. (A scan of every CPU case of the sweep found these
    five and vit_b_16, the same model as vit_b_32.)"""
    need("torch")
    from runtime.aten.sweep import _by_name

    case = _by_name[name]
    assert _fast_path_ops(case), name   # (still a case that takes it: else the flag is moot)
    assert case.mha_slow_path
    assert _by_name["vit_b_16"].mha_slow_path and _by_name["vit_b_32"].mha_slow_path   # (no torchvision in CI: not built)


def test_mha_fastpath_puts_the_flag_back_after_an_exception_and_when_nested():
    """A block whose eager reference raises must not leave the fast path off for every later case."""
    torch = need("torch")

    from runtime.aten.sweep import mha_fastpath

    was = torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(KeyError):
        with mha_fastpath(not was):
            assert torch.backends.mha.get_fastpath_enabled() is (not was)
            with mha_fastpath(was):
                assert torch.backends.mha.get_fastpath_enabled() is was
            assert torch.backends.mha.get_fastpath_enabled() is (not was)
            raise KeyError("a block's eager reference failed")
    assert torch.backends.mha.get_fastpath_enabled() is was
