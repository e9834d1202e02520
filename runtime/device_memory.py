"""Where one (graph, plan)'s bytes live on its GPUs: arenas, weight roots, input staging, scratch.

One arena per device (``runtime.binding``: every arena tensor is ``arena[device] + plan offset``, views
included) and one allocation per own root (weights and KV caches) on the device the plan puts it;
device staging copies of the inputs, copied into the arena at the start of every step (an input's bytes
may be reused once it is read); the group counters and scratch buffers the kernels may need. With one
pycuda context per device, each allocation and copy is made with its device's context current.

Shared by both pycuda executors (``runtime.cuda_core``); pycuda is imported when one is created.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np

from memplan import Graph
from memplan.errors import BudgetError, ExecutorError

from .binding import (
    ALLOC_ALIGNMENT,
    Binding,
    arena_base,
    check_weight_names,
    graph_shape,
    host_input,
    host_weight,
    read_inputs,
    read_spec,
    weight_copies,
    weight_source,
)
from .cuda_util import F16_NAN, F32_NAN
from .kernels import KernelLibrary, counter_bytes
from .oom import is_out_of_memory

#: the random weights' seeds: tensor k of a graph filled with ``seed`` gets ``seed * FILL_SEED_STRIDE + k`` (an
#: unsigned 64-bit kernel parameter: ``CudaCore`` refuses a seed that takes it out of range)
FILL_SEED_STRIDE = 1000003


class DeviceOutOfMemory(BudgetError, MemoryError):
    """The GPU has no room for one of a plan's allocations; the message names the device, the bytes asked, the
    bytes free and the graph. pycuda's own error said only "cuMemAlloc failed: out of memory", a traceback from
    the tools. A ``BudgetError`` (the plan does not fit the memory there is), so the ``except MemplanError`` that
    catches the runtime's other refusals catches it too (it was a bare MemoryError, which that missed); still the
    ``MemoryError`` it was, for callers that catch that."""


def _free_text(cuda) -> str:
    try:
        free, total = cuda.mem_get_info()
    except Exception:   # (the query itself may fail on a device in trouble: the message stays useful)
        return "free memory unknown"
    return f"{free} B free of {total}"


class DeviceMemory:
    """The allocations of one (graph, plan) and every copy into or out of them."""

    def __init__(self, cuda, graph: Graph, binding: Binding, libs: Sequence[KernelLibrary], contexts: Sequence | None,
                 *, weights: Mapping[str, np.ndarray] | None = None, random_weights_seed: int | None = None,
                 weights_from: DeviceMemory | None = None):
        """``contexts``: one pycuda context per device (None: one device, the current context); ``libs``:
        the devices' kernel libraries (random weights are filled by a kernel); ``weights_from`` shares
        another's weights and caches (same graph) instead of allocating them again."""
        self.cuda, self.graph, self.binding, self.libs, self._ctxs = cuda, graph, binding, libs, contexts
        b = binding
        self._allocs: list = []
        self.arena_sizes = [max(n, 256) for n in b.arena_bytes]
        self._check_arenas_fit()
        self.arenas = [arena_base(lambda k, d=d: self.alloc(k, d), n, b.alignment)
                       for d, n in enumerate(self.arena_sizes)]
        if weights_from is not None:
            _check_shared_weights(graph, b, weights_from)
        self.weight_ptr: dict[str, int] = dict(weights_from.weight_ptr) if weights_from is not None else {}
        for rid, size in b.own_roots:
            if rid not in self.weight_ptr:
                self.weight_ptr[rid] = self.alloc(max(size, 1), b.places[rid].device)
        self.addr_of = {t.id: b.address(t.id, self.arenas, self.weight_ptr) for t in graph.tensors}
        if weights_from is None:
            self._init_weights(weights or {}, random_weights_seed)
        self.inputs: dict[str, tuple[int, int, int]] = {}   # id -> (device, staging copy, bytes)
        for tid in b.inputs:
            d, size = b.places[tid].device, graph.tensor(tid).size
            self.inputs[tid] = (d, self.alloc(max(size, 1), d), size)
        #: the inputs some node reads: the only ones a step copies into the arena. An input no node reads is live at
        #: no node (docs/format.md), so the plan may give its bytes to anything, such as a COPY's destination on
        #: another device: a device's CUDA graph, which runs after the graphs it receives from, copied it there
        #: after the COPY had written, and the per-device graphs of a verified split plan computed garbage
        self.read_inputs = read_inputs(graph, b)
        #: inputs some node reads whose staging copy no ``set_inputs`` has written yet: a step would compute on
        #: uninitialised device memory (``CudaCore`` refuses to issue one until this is empty)
        self.unset = set(self.read_inputs)
        #: per weight root a poison range named: it and its replicas (``poison``)
        self._copies: dict[str, tuple[str, ...]] = {}

    def _check_arenas_fit(self) -> None:
        """DeviceOutOfMemory naming the device, before the first allocation, where a plan's arena (with its base's
        alignment padding, ``arena_base``) is more than that device's whole memory: a hand-edited ``arena_bytes``
        (2**60) or ``device_arena_bytes`` was asked of the driver, and on several devices the others' arenas were
        allocated (gigabytes) before the one that could never fit was refused. A driver that cannot say what its
        device holds (``mem_get_info``) leaves the allocation to refuse it."""
        align = self.binding.alignment
        for d, n in enumerate(self.arena_sizes):
            try:
                with self.on(d):
                    total = int(self.cuda.mem_get_info()[1])
            except Exception:   # (no answer: the allocation decides)
                continue
            need = n if ALLOC_ALIGNMENT % align == 0 else n + align - 1
            if need > total:
                pad = f", {need - n} B more to align its base to {align}" if need > n else ""
                raise DeviceOutOfMemory(f"device {d}: the plan's arena of {n} B (graph {self.graph.name!r}{pad}) is "
                                        f"more than the device's {total} B: nothing allocated")

    def on(self, d: int):
        """A context manager with device ``d``'s context current (nothing to do on one device)."""
        return on_device(self.cuda, self._ctxs, d)

    def alloc(self, nbytes: int, device: int = 0) -> int:
        with self.on(device):
            try:
                a = self.cuda.mem_alloc(nbytes)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                raise DeviceOutOfMemory(f"device {device}: cannot allocate {nbytes} B for graph "
                                        f"{self.graph.name!r} ({_free_text(self.cuda)}; {len(self._allocs)} "
                                        f"allocations of this plan made): {exc}") from None
        self._allocs.append(a)
        return int(a)

    def counters(self, device: int) -> int:
        """Zeroed group counters for the fused kernels of one device (``runtime.kernels.counter_bytes``)."""
        n = counter_bytes(self.graph)
        ptr = self.alloc(n, device)
        with self.on(device):
            self.cuda.memset_d8(ptr, 0, n)
        return ptr

    def _init_weights(self, weights: Mapping[str, np.ndarray], seed: int | None) -> None:
        """Host arrays where given; else with ``seed`` random f16 (uniform, scaled by 1/sqrt(fan-in); caches
        unscaled) and 1.0 f32; else zeros. A replica (``attrs.replica_of``: a weight read on several
        devices) gets its original's values; the same seed gives the same values on any executor."""
        cuda, g = self.cuda, self.graph
        check_weight_names(g, self.binding, weights)
        for d in range(len(self.arenas)):
            with self.on(d):
                for rid, size in self.binding.own_roots:
                    if self.binding.places[rid].device != d:
                        continue
                    t = g.tensor(rid)
                    src = weight_source(g, rid)
                    ptr = self.weight_ptr[rid]
                    if src in weights:
                        cuda.memcpy_htod(ptr, host_weight(g, rid, weights[src]))
                    elif seed is not None and t.attrs.get("dtype") == "f16":
                        n = size // 2
                        scale = fill_scale(g, src)
                        self.libs[d].funcs["fill_uniform_f16"].prepared_call(
                            (min(max(1, n // 256), 65535), 1, 1), (256, 1, 1), ptr, n,
                            seed * FILL_SEED_STRIDE + g.tensor_index[src], scale)
                    elif seed is not None and t.attrs.get("dtype") == "f32":
                        cuda.memset_d32(ptr, 0x3F800000, size // 4)   # 1.0: norm weights
                    else:
                        cuda.memset_d8(ptr, 0, size)
                cuda.Context.synchronize()

    def set_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        """All checked before any is copied: a bad one after a good one left the call half-loaded."""
        checked = [(tid, host_input(self.graph, self.binding, tid, arr)) for tid, arr in inputs.items()]
        for tid, a in checked:
            d, ptr, _size = self.inputs[tid]
            with self.on(d):
                self.cuda.memcpy_htod(ptr, a)
            self.unset.discard(tid)

    def read(self, tid: str, dtype=None) -> np.ndarray:
        """Copy a tensor back (after a synchronize); shaped by its ``shape`` attr. ``dtype`` None: the
        tensor's own (its ``dtype`` attr, f32 without one), so an f16 tensor is not read as half as many f32
        (``runtime.binding.read_spec``)."""
        dtype, n, shape = read_spec(self.graph, tid, dtype)
        out = np.empty(n, dtype=dtype)
        with self.on(self.binding.places[tid].device):
            self.cuda.memcpy_dtoh(out, self.addr_of[tid])
        return out.reshape(shape) if shape else out

    def write_weight(self, tid: str, arr: np.ndarray) -> None:
        t = self.graph.tensor(tid)
        if self.binding.places[tid].in_arena:
            raise ExecutorError(f"write_weight {tid!r}: an arena tensor ({t.kind}), not a weight or cache")
        # a weight read on several devices of a split has a replica on each later one (``runtime.binding.
        # weight_copies``): writing the original alone left them their old values, and those devices computed with
        # them, silently (z = (x * w) * w over 2 GPUs gave x * 2 * 3 after w was written from 2 to 3). A view's bytes
        # are written into every replica of its root, at its offset there: a later device may hold the whole root
        g, place = self.graph, self.binding.places[tid]
        src, root_src = weight_source(g, tid), weight_source(g, place.root)
        if src != tid or root_src != place.root:
            what = f"a replica of {src!r}" if src != tid else f"a view of {place.root!r}, a replica of {root_src!r}"
            raise ExecutorError(f"write_weight {tid!r}: {what} (its copy on device {place.device}): write the "
                                "original, which writes every replica")
        a = host_weight(g, tid, arr)
        off = g.offset_in_root(g.tensor_index[tid])
        roots = weight_copies(g, place.root)
        if bad := next((r for r in roots if off + a.nbytes > g.tensor(r).size), None):   # (a hand-made replica_of)
            raise ExecutorError(f"write_weight {tid!r}: replica {bad!r} of {place.root!r} has {g.tensor(bad).size} "
                                f"bytes, fewer than the {off + a.nbytes} it would be written to")
        for r in roots:
            with self.on(self.binding.places[r].device):
                self.cuda.memcpy_htod(self.addr_of[r] + off, a)

    # -- on a stream, inside a step (the caller has the device's context current) ---------------------------
    def poison(self, d: int, stream, arena: bool, ranges, keep: tuple[tuple[int, int], ...] = ()) -> None:
        """Device ``d``'s arena with f32 NaN (``arena``; but not the (offset, nbytes) ranges in ``keep``) and
        the given byte ranges of its weight roots with NaN of their dtype (``poison_width``; objects with .tensor,
        .offset, .nbytes)."""
        if arena:
            start = 0
            for off, n in sorted(keep) + [(self.arena_sizes[d], 0)]:
                lo, hi = (start + 3) // 4, off // 4
                if hi > lo:
                    self.cuda.memset_d32_async(self.arenas[d] + 4 * lo, F32_NAN, hi - lo, stream)
                start = max(start, off + n)
        # every copy of the range's weight on this device: a replica (``weight_copies``, a split's copy of a weight read
        # on a later device) holds its original's values, and poisoning the original alone left device 1's replica
        # its old bytes, so a read there that did not wait for its write saw them, not NaN (``CudaCore`` refuses a
        # range that names a replica, or lies outside one)
        for r in ranges:
            if r.tensor not in self._copies:   # (a scan of every tensor: once per weight, not per step)
                self._copies[r.tensor] = weight_copies(self.graph, r.tensor)
            width = poison_width(self.graph, r.tensor)
            for c in self._copies[r.tensor]:
                if self.binding.places[c].device == d:
                    if width == 4:
                        self.cuda.memset_d32_async(self.weight_ptr[c] + r.offset, F32_NAN, r.nbytes // 4, stream)
                    else:
                        self.cuda.memset_d16_async(self.weight_ptr[c] + r.offset, F16_NAN, r.nbytes // 2, stream)

    def copy_inputs(self, d: int, stream) -> None:
        """Device ``d``'s inputs that some node reads from their staging copies into its arena."""
        for tid, (dev, ptr, size) in self.inputs.items():
            if dev == d and tid in self.read_inputs:
                self.cuda.memcpy_dtod_async(self.addr_of[tid], ptr, size, stream)

    def free(self) -> None:
        for a in self._allocs:
            a.free()
        self._allocs = []



def poison_width(graph: Graph, rid: str) -> int:
    """The bytes of one NaN that ``DeviceMemory.poison`` writes over weight root ``rid``'s ranges: 4 (f32 NaN) for an
    f32 root (its ``dtype`` attr), else 2 (f16 NaN, the KV caches'). Why: every range was filled with f16 NaN, whose
    pairs read as f32 are 0x7E007E00 = 4.27e37, a finite value: a read of a poisoned f32 weight that did not wait
    for its write computed with it, and the race the poison is there to show went unseen."""
    return 4 if graph.tensor(rid).attrs.get("dtype") == "f32" else 2


def fill_scale(graph: Graph, rid: str) -> float:
    """The scale of weight root ``rid``'s random f16 values (uniform in ``[-scale, scale]``): ``sqrt(3 / fan-in)``,
    the fan-in the last dimension of its ``shape`` attr, so a product's outputs stay near unit scale; 1.0 for a KV
    cache (``*_cache``) and for a root with no fan-in to read: no ``shape`` attr, an empty one, or a last dimension
    that is no positive integer. Why: the contract leaves attrs free-form and a root read only through views (their
    shapes are what the kernels read) needs none, yet ``random_weights_seed`` read ``shape[-1]`` of every f16 root,
    a raw KeyError (IndexError for ``[]``, ZeroDivisionError for a last dimension 0) after the arenas were allocated;
    a negative one was NaN weights, silently."""
    shape = graph.tensor(rid).attrs.get("shape")
    if rid.endswith("_cache") or not isinstance(shape, (list, tuple)) or not shape:
        return 1.0
    try:
        fan_in = int(shape[-1])   # (as it was read: a numpy integer or a "16" taken)
    except (TypeError, ValueError, OverflowError):
        return 1.0
    return float(np.sqrt(3.0 / fan_in)) if fan_in >= 1 else 1.0


def on_device(cuda, contexts: Sequence | None, d: int):
    """A context manager with ``contexts[d]`` pushed (nothing to do without contexts: one device)."""
    return contextlib.nullcontext() if contexts is None else _pushed(contexts[d], cuda)


@contextlib.contextmanager
def _pushed(ctx, cuda):
    ctx.push()
    try:
        yield
    finally:
        cuda.Context.pop()


def _check_shared_weights(graph: Graph, binding: Binding, other: DeviceMemory) -> None:
    """``weights_from`` must hold every weight and cache root of the graph, at its size, on its device: the
    executor uses the other's pointers as they are, so a root of another size (another graph's executor: a
    cache of another batch) would be read and written out of bounds, and a missing one left uninitialised; and in
    its dtype and shape (``_layout_of``), else its bytes would be read as other values."""
    for rid, size in binding.own_roots:
        if rid not in other.weight_ptr:
            raise ExecutorError(f"weights_from: it has no weight {rid!r} (an executor of another graph?)")
        theirs = other.graph.tensor(rid).size
        d, d_theirs = binding.places[rid].device, other.binding.places[rid].device
        if theirs != size or d != d_theirs:
            raise ExecutorError(f"weights_from: weight {rid!r} is {theirs} bytes on device {d_theirs} there, {size} "
                                f"bytes on device {d} here (an executor of another graph?)")
        if (ours := _layout_of(graph, rid)) != (other_layout := _layout_of(other.graph, rid)):
            # (the same bytes, other bits: an f16 [4, 4] matrix shared with a graph whose 'W' is an f32 [8] ran
            # its MUL on the matrix's halves read as floats, silently; a transposed shape read the other matrix)
            raise ExecutorError(f"weights_from: weight {rid!r} is {other_layout[0]} {other_layout[1]} there, "
                                f"{ours[0]} {ours[1]} here: its bytes would be read as other values (an executor "
                                "of another graph?)")


def _layout_of(graph: Graph, rid: str) -> tuple[str, tuple[int, ...] | str]:
    """How ``rid``'s bytes are read: its ``dtype`` attr (f32 without one, as the kernels take it) and its shape
    (``graph_shape``; "(no shape)" where it has none a host array could be held to)."""
    dtype = graph.tensor(rid).attrs.get("dtype", "f32")
    shape = graph_shape(graph, rid)
    return (dtype if isinstance(dtype, str) else repr(dtype)), (shape if shape is not None else "(no shape)")
