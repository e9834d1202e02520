"""The arena and every graph tensor as a torch view at its planned place.

One ``uint8`` tensor holds the whole arena; each arena tensor is ``as_strided`` over it with the dtype,
shape, strides and storage offset of its fake tensor, placed at its root's planned offset (from
``runtime.binding.bind``). Weights, buffers and constants are the module's own tensors (views of them
are strided views of those). Before any view is made, its real byte range is checked to lie inside the
range the plan reserved for it: the verifier proved the plan safe for exactly those bytes.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.binding import Binding
from runtime.oom import is_out_of_memory

from .errors import ArenaOutOfMemory, AtenExecutorError
from .program import Program, TensorSpec

#: the arena is allocated in multiples of this, so it can be viewed as any dtype; torch's allocations start on
#: a multiple of it too (CPU: c10's 64 bytes; CUDA: the caching allocator's 512)
ARENA_ROUND = 64


@dataclass(frozen=True)
class Layout:
    arena: Any                   # torch uint8 tensor, the whole arena
    views: Mapping[str, Any]     # graph tensor id -> torch tensor at its planned place
    arena_bytes: int             # the plan's arena size (the allocation is rounded up to ARENA_ROUND)


def span_bytes(spec: TensorSpec) -> int:
    """Bytes from the tensor's first element to one past its last (0 when it has no elements)."""
    if any(s == 0 for s in spec.shape):
        return 0
    return (sum((s - 1) * st for s, st in zip(spec.shape, spec.stride)) + 1) * spec.itemsize


def aligned_arena(torch: Any, size: int, alignment: int, device: Any) -> Any:
    """``size`` uint8 bytes on ``device`` whose first byte's address is a multiple of ``alignment``
    (``Binding.alignment``): the plan's offsets are aligned relative to the arena's start (docs/format.md), so a
    plan made with ``--alignment 4096`` ran its tensors 64 bytes off their boundary on the CPU. Above torch's own
    alignment the buffer is ``alignment`` bytes longer (a whole number of ``ARENA_ROUND``: storage-wide ops such
    as ``as_strided_scatter`` view the whole storage as the element dtype) and the arena the slice at the first
    aligned byte."""
    a = math.lcm(alignment, ARENA_ROUND)   # the slice starts on a whole ARENA_ROUND: viewable as any dtype
    nbytes = size if a == ARENA_ROUND else size + a
    held = device_bytes(torch, device)
    if held is not None and nbytes > held:   # (refused before asking the allocator: it may take one lazily)
        raise ArenaOutOfMemory(f"the plan's arena of {size} B (allocated as {nbytes}) is more than {device} holds "
                               f"({held} B): give a plan whose arena_bytes fits the device")
    try:
        buf = torch.empty(nbytes, dtype=torch.uint8, device=device)
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise ArenaOutOfMemory(f"cannot allocate the plan's arena of {size} B (as {nbytes}) on {device}: "
                               f"{str(exc).splitlines()[0][:200]}") from None
    if a == ARENA_ROUND:
        return buf
    skip = -buf.data_ptr() % a
    return buf[skip:skip + size]


class CallOrder:
    """The device order of the calls on one arena: an event recorded on the caller's stream at the end of each call
    (after its output copies), which the next call's stream waits on before its first launch (no host sync). One per
    arena: a program's own (kept across its rebuilds: ``Executor(order=)``), or a ``SharedArena``'s, which every
    program on it shares. Only CUDA calls use it (a CPU runs its calls in issue order).

    Why: the locks order only the host's issue, and a call returns before its kernels have run. Two programs on one
    shared arena each waited on an event of their own, so a call of one on stream s2 wrote the arena while a call of
    the other, issued before on s1, still ran there (a silent data race: each program's outputs could be the other's
    bytes); and a program built again (a weight replaced) started with a new event, so its first call on s2 read the
    module's buffers before the old build's last call on s1 had written them.

    ``return_views``: a call's outputs are views of the arena, which the next call overwrites, and the caller reads them
    on its stream *after* the call (the end-of-call event precedes those reads). So after such a call the next call on
    another stream first records the event again on the previous caller's stream, at its own start: everything the
    previous caller enqueued on that stream before the next call was made, its reads of the views included, comes
    before the next call's first write. (Not done after an ordinary call: its outputs are copies, and the next call
    need not wait for the other stream's later, unrelated work.)"""

    def __init__(self) -> None:
        self.event: Any = None        # recorded at the end of the last call (or build) on the arena; None before
        self.views_event: Any = None  # recorded on ``views_on`` at the next call's start (``return_views``)
        #: the caller stream of the last call where it returned views of the arena, else None
        self.views_on: Any = None

    def enter(self, torch: Any, stream: Any) -> None:
        """Before a call's (or build's) first launch on ``stream``: wait for every earlier use of the arena."""
        if self.views_on is not None and self.views_on != stream:
            if self.views_event is None:
                self.views_event = torch.cuda.Event()
            self.views_event.record(self.views_on)   # (the reads of the views its caller enqueued since)
            stream.wait_event(self.views_event)
        if self.event is not None:
            stream.wait_event(self.event)

    def leave(self, torch: Any, stream: Any, views: bool) -> None:
        """After a call's last work on ``stream`` (its output copies); ``views``: it returned views of the arena."""
        if self.event is None:
            self.event = torch.cuda.Event()
        self.event.record(stream)
        self.views_on = stream if views else None

    def settle(self, torch: Any, stream: Any) -> None:
        """After a build's device work on ``stream``: the next call waits for it and for every call before it (a rebuilt
        program's last call wrote the module's buffers; another program on a shared arena still runs there). The views
        of the last call stay what they were: a build writes none of them."""
        self.enter(torch, stream)
        if self.event is None:
            self.event = torch.cuda.Event()
        self.event.record(stream)


class SharedArena:
    """One arena storage that several compiled programs build their layouts on (``compile_per_count``'s programs,
    one per token count), as large as the largest program's arena.

    Why: each compiled program held an arena of its own, so ``limit`` programs of one model held ``limit`` arenas
    where one call runs at a time. Sharing costs: every call of a program on it must hold ``lock`` (its
    intermediates are every program's bytes), so calls of two counts no longer overlap, and an output of a
    ``return_views`` call is valid only until the next call of any program on it. A program larger than the arena
    gets a new one (a new ``generation``, aligned as ``aligned_arena`` aligns); the programs built on an older one
    keep it, which stays valid, until they are built again on the new one (``PerCountPrograms``: at once, so the old
    storage is freed). Growing the storage in place (``UntypedStorage.resize_``) would move it under every view, and
    an arena aligned above torch's own allocation alignment (the plans' 256 bytes on a CPU, whose allocations are
    64-byte aligned) is a slice at an aligned byte of its buffer that a move can shift off its boundary. A program
    of another device or alignment than the arena's gets an arena of its own (``generation_of``: None)."""

    def __init__(self) -> None:
        #: held by a call of any program on the arena, and while a program's arena is taken (never during a call)
        self.lock = threading.RLock()
        self.base: Any = None   # the uint8 tensor of the whole arena (None before the first program)
        self.generation = 0
        self._alignment = 0
        self._generations: dict[int, int] = {}   # {data_ptr of a base's storage: its generation}
        #: the device order of every call of every program on the arena (``CallOrder``), under ``lock``
        self.order = CallOrder()

    def take(self, torch: Any, size: int, alignment: int, device: Any) -> Any:
        """The first ``size`` bytes of the shared arena (a new, larger one first where it is shorter), or an arena of
        the program's own (``aligned_arena``) on another device or alignment than the arena's."""
        with self.lock:
            if self.base is not None and (self.base.device != torch.device(device) or alignment != self._alignment):
                return aligned_arena(torch, size, alignment, device)
            if self.base is None or self.base.numel() < size:
                self.base = aligned_arena(torch, size, alignment, device)
                self._alignment = alignment
                self.generation += 1
                self._generations[self.base.untyped_storage().data_ptr()] = self.generation
            return self.base[:size]

    def generation_of(self, arena: Any) -> int | None:
        """The generation of the shared arena ``arena`` (a program's ``Layout.arena``) is on; None for an arena of its
        own. (A storage's address names it: an older base is alive, so never reused, while an arena is on it.)"""
        return self._generations.get(arena.untyped_storage().data_ptr())

    @property
    def nbytes(self) -> int:
        """The bytes of the arena now (0 before the first program): the largest program's, in whole 64-byte rounds."""
        return 0 if self.base is None else int(self.base.numel())


def device_bytes(torch: Any, device: Any) -> int | None:
    """All the memory ``device`` has (a CUDA device's total, a CPU's physical memory), or None where that is not
    known: no arena larger can ever be allocated there, so it is refused by size before any allocation (an
    allocator that reserves lazily, as the CPU's does under overcommit, could take it and fail page by page)."""
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[1])
        if device.type == "cpu":
            return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (RuntimeError, ValueError, OSError, AttributeError):
        return None
    return None


def build_layout(program: Program, binding: Binding, device: Any, shared: SharedArena | None = None) -> Layout:
    """The arena on ``device`` (on ``shared``'s storage where given) and a view per graph tensor;
    AtenExecutorError names a tensor whose real layout leaves the bytes planned for it."""
    import torch

    graph = program.graph
    plan_bytes = int(binding.arena_bytes[0])
    size = -(-plan_bytes // ARENA_ROUND) * ARENA_ROUND
    addrs = arena_addresses(program, binding)   # (every arena tensor checked before the arena is allocated)
    arena = (aligned_arena(torch, size, binding.alignment, device) if shared is None
             else shared.take(torch, size, binding.alignment, device))
    typed: dict[Any, Any] = {}
    views: dict[str, Any] = {}
    for t in graph.tensors:
        spec = program.specs[t.id]
        place = binding.places[t.id]
        root_spec = program.specs[place.root]
        span = span_bytes(spec)
        if place.in_arena:
            addr = addrs[t.id]
            if spec.dtype not in typed:
                typed[spec.dtype] = arena.view(spec.dtype)
            views[t.id] = typed[spec.dtype].as_strided(spec.shape, spec.stride,
                                                       typed[spec.dtype].storage_offset() + addr // spec.itemsize)
            continue
        own = program.weights.get(place.root)
        if own is None:
            raise AtenExecutorError(f"weight {place.root!r} (root of {t.id!r}) has no tensor in the module")
        if t.view_of is None:
            if tuple(own.shape) != spec.shape or own.dtype != spec.dtype:
                raise AtenExecutorError(f"weight {t.id!r} is {tuple(own.shape)} {own.dtype} in the module but "
                                        f"{spec.shape} {spec.dtype} in the export")
            views[t.id] = own
            continue
        delta = spec.byte_offset - root_spec.byte_offset
        start = own.storage_offset() * own.element_size() + delta
        if own.dtype != spec.dtype:
            # a buffer that is another's bytes in another dtype (``register_buffer("b", self.a.view(torch.int32))``:
            # a view of it since round 38): the module tensor's storage read as ``spec.dtype``
            if start % spec.itemsize:
                raise AtenExecutorError(f"view {t.id!r} of weight {place.root!r} starts at byte {start} of its "
                                        f"storage, not on a {spec.dtype} element (unsupported)")
            own = torch.empty(0, dtype=spec.dtype, device=own.device).set_(own.untyped_storage())
        if span and (start < 0 or start + span > own.untyped_storage().nbytes()):
            # an out= that grows a buffer (``torch.mul(a, 2, out=self.c)`` with an empty ``c``): eager resizes the
            # module's tensor; as_strided past its storage was torch's raw "setStorage: ... out of bounds"
            raise AtenExecutorError(f"tensor {t.id!r} (a view of weight {place.root!r}) spans bytes [{start}, "
                                    f"{start + span}) of the module tensor's storage, which holds "
                                    f"{own.untyped_storage().nbytes()}: eager grows the module's tensor there (an "
                                    "out= that resizes it), which the executor cannot (unsupported)")
        views[t.id] = own.as_strided(spec.shape, spec.stride, start // spec.itemsize)
    return Layout(arena, views, plan_bytes)


def arena_addresses(program: Program, binding: Binding) -> dict[str, int]:
    """Each arena tensor's arena byte as torch lays it out (its root's planned offset + its fake storage offset),
    or AtenExecutorError naming a tensor whose real bytes leave the range the plan reserved for it (a view moved in
    an edited plan) or that is off its elements' alignment (an offset of 2 for an f32). Why apart from
    ``build_layout``: such a plan (run unverified) was refused only after its arena was allocated on the device."""
    addrs: dict[str, int] = {}
    for t in program.graph.tensors:
        place = binding.places[t.id]
        if not place.in_arena:
            continue
        spec = program.specs[t.id]
        span = span_bytes(spec)
        addr = binding.places[place.root].offset + spec.byte_offset  # the root's planned bytes: its storage's 0..size
        if span and not (place.offset <= addr and addr + span <= place.offset + t.size):
            raise AtenExecutorError(f"tensor {t.id!r} spans bytes [{addr}, {addr + span}) of the arena, "
                                    f"outside the [{place.offset}, {place.offset + t.size}) planned for it")
        if addr % spec.itemsize:
            raise AtenExecutorError(f"tensor {t.id!r} at arena byte {addr} is not aligned to its "
                                    f"{spec.dtype} elements")
        addrs[t.id] = addr
    return addrs


def poison(layout: Layout) -> None:
    """Fill the arena with 0xFF bytes: NaN in every float dtype, -1 in signed integers."""
    layout.arena.fill_(255)


def elements_spanned(t: Any) -> int:
    """How many elements a (non-empty) tensor's first to last element span, with its strides."""
    return sum((n - 1) * st for n, st in zip(t.shape, t.stride())) + 1


def byte_span(t: Any) -> tuple[int, int]:
    """The byte range a (non-empty) tensor's elements lie in."""
    lo = t.data_ptr()
    return lo, lo + elements_spanned(t) * t.element_size()


def share_memory(a: Any, b: Any) -> bool:
    """Whether two tensors share bytes of one storage (a conservative test: their byte spans overlap). Every
    planned view is a view of the one arena: sharing the storage alone says nothing."""
    if a.device != b.device or a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    if a.numel() == 0 or b.numel() == 0:
        return False
    (a0, a1), (b0, b1) = byte_span(a), byte_span(b)
    return a0 < b1 and b0 < a1


#: most elements ``share_elements`` lists per tensor to decide two tensors whose byte spans interleave; above it
#: they count as sharing (the conservative answer)
_LIST_AT_MOST = 1 << 22


def share_elements(a: Any, b: Any) -> bool:
    """Whether an element of ``a`` and one of ``b`` share a byte: exact where ``share_memory``'s spans overlap
    but the elements may not (the two halves of ``t.chunk(2, -1)``, ``t[:, ::2]`` beside ``t[:, 1::2]``: each
    one's span reaches into the other's rows). Why: an input the program writes in place was refused beside
    another input whose span merely interleaves with it (q and k of one ``qk.chunk(2, -1)``), where eager's
    write cannot show in the other and the program's copies give eager's values. Decided once per relative
    layout (a decode loop passes the same halves every call)."""
    if not share_memory(a, b):
        return False
    return _elements_meet(tuple(a.shape), tuple(a.stride()), a.element_size(),
                          tuple(b.shape), tuple(b.stride()), b.element_size(), b.data_ptr() - a.data_ptr())


@functools.lru_cache(maxsize=256)
def _elements_meet(shape_a: tuple, strides_a: tuple, size_a: int, shape_b: tuple, strides_b: tuple, size_b: int,
                   delta: int) -> bool:
    """Whether ``[p, p + size_a)`` meets ``[q + delta, q + delta + size_b)`` for some element byte offsets ``p`` of
    the first layout and ``q`` of the second (each from its own first element). Listed where both have at most
    ``_LIST_AT_MOST`` elements, else True."""
    if math.prod(shape_a) > _LIST_AT_MOST or math.prod(shape_b) > _LIST_AT_MOST:
        return True
    import torch

    starts_a = _byte_starts(torch, shape_a, strides_a, size_a).unique()   # sorted
    starts_b = _byte_starts(torch, shape_b, strides_b, size_b).add_(delta)
    # the last start of ``a`` before each ``b`` element's end; its element meets that one iff it ends past its start
    # (every element of ``a`` is ``size_a`` bytes: an earlier start ends earlier still)
    before = torch.searchsorted(starts_a, starts_b + size_b, side="left") - 1
    found = before >= 0
    return bool((starts_a[before.clamp(min=0)] + size_a > starts_b)[found].any())


def _byte_starts(torch: Any, shape: tuple, strides: tuple, size: int) -> Any:
    """The byte offset of each element of a layout from its first (int64, flat, in no particular order)."""
    pos = torch.zeros((), dtype=torch.int64)
    for d, (n, st) in enumerate(zip(shape, strides)):
        view = [1] * len(shape)
        view[d] = n
        pos = pos + torch.arange(n, dtype=torch.int64).mul_(st * size).reshape(view)
    return pos.flatten()
