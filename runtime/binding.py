"""Where each tensor of a plan lives, and the order in which its nodes are issued.

Every executor — the pycuda one over our own kernels, the multi-GPU one, the CPU emulator and the ATen
executor over torch — needs the same two facts from a (graph, plan) pair, and they must agree on them
exactly, or a plan proven safe by ``memplan.verify`` runs with other addresses than the ones proven:

* a ``Place`` per tensor: a tensor whose root is an arena tensor lives at a byte offset in its device's
  arena (the plan's offset, views included); a tensor whose root is a weight lives inside that root's
  own allocation, at ``Graph.offset_in_root``;
* a ``Step`` per plan order entry: the node, its stream and device, the plan events it waits on before
  it runs and the ones it records after it.

This module needs only numpy (no pycuda, no torch): executors turn places into pointers or tensor views
and steps into launches, and nothing else. The binding is computed from the plan alone, so an unsafe
plan (a negative control) binds as faithfully as a safe one; safety is ``memplan.verify``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from memplan.errors import ExecutorError, GraphError, PlanFormatError, as_int
from memplan.errors import short_repr as _short
from memplan.graph import MAX_TENSOR_BYTES, Graph
from memplan.planfile import Plan, check_plan_for

#: addresses are 64-bit: an allocation's bytes end at 2**64 at the latest
ADDRESS_SPACE = 1 << 64


@dataclass(frozen=True)
class Place:
    """One tensor's memory: ``offset`` bytes into its device's arena (``in_arena``) or into ``root``'s
    own allocation (weights and the KV caches, which the arena never holds)."""

    root: str
    in_arena: bool
    device: int
    offset: int


@dataclass(frozen=True)
class Step:
    """One plan order entry: wait on ``waits`` (indices into ``plan.events``), run ``node`` on
    ``stream``, then record ``records``."""

    node: str
    stream: int
    device: int
    waits: tuple[int, ...]
    records: tuple[int, ...]


@dataclass(frozen=True)
class Binding:
    places: Mapping[str, Place]
    steps: tuple[Step, ...]
    #: per device: the plan's arena bytes, 0 for an empty arena (each allocator gives an empty arena an address of
    #: its own: it was reported as 1 byte, and a 1-byte tensor in a plan of a 0-byte arena was bound unrefused)
    arena_bytes: tuple[int, ...]
    #: root tensors that live outside the arena, in graph order, with their byte sizes
    own_roots: tuple[tuple[str, int], ...]
    #: root input tensors (copied into their arena slots at the start of every call), in graph order
    inputs: tuple[str, ...]
    #: output tensors (read back after a call), in graph order
    outputs: tuple[str, ...]
    #: what every arena's base address is a multiple of (``arena_base``): the plan's and the graph's alignment.
    #: Offsets are aligned relative to the arena's start (docs/format.md), so a tensor's address is aligned only
    #: on an aligned base: a plan made with ``--alignment 4096`` ran its tensors at 256-aligned addresses
    alignment: int = 1

    def address(self, tid: str, arena_base: Mapping[int, int] | list[int], root_base: Mapping[str, int]) -> int:
        """The address of ``tid`` given each device's arena base and each own root's base. ExecutorError names a
        tensor this binding has no place for, or the device or root whose base the caller left out (a bare
        KeyError or IndexError from here did not say which of the three it was)."""
        p = self.places.get(tid) if isinstance(tid, str) else None
        if p is None:
            raise ExecutorError(f"address: the bound graph has no tensor {_short(tid)}")
        if (why := _bases_problem(arena_base if p.in_arena else root_base, p.in_arena)) is not None:
            raise ExecutorError(f"address: {why} (tensor {tid!r})")
        try:
            base = arena_base[p.device] if p.in_arena else root_base[p.root]
        except (KeyError, IndexError, TypeError):
            where = (f"the arena of device {p.device}, which arena_base gives no base" if p.in_arena else
                     f"root {p.root!r} outside the arena, which root_base gives no base")
            raise ExecutorError(f"address: tensor {tid!r} lies in {where}") from None
        # an address is a whole non-negative number (docs/format.md: an integer the library takes is any that
        # operator.index takes, never a float or a bool): a base of 1.5 gave the address 8193.5, one of -5 gave 8187
        whole = as_int(base)
        which = f"arena_base[{p.device}]" if p.in_arena else f"root_base[{p.root!r}]"
        if whole is None or whole < 0:
            raise ExecutorError(f"address: {which} must be a non-negative integer address, not "
                                f"{type(base).__name__} {_short(base)} (tensor {tid!r})")
        # a base whose allocation runs past 2**64 is no address either: a base of 2**64 gave tensor 'k' (offset
        # 8192 of a 10240-byte arena) the "address" 2**64 + 8192, which a 64-bit pointer argument (ctypes, a
        # driver call) wraps around to 8192, other memory's bytes; nor is a base of 2**64 itself, an empty arena's
        # too (its tensors' "address" 2**64 was returned, which a 64-bit pointer argument wraps around to 0)
        size = self.arena_bytes[p.device] if p.in_arena else self._own_root_bytes[p.root]
        if whole + max(size, 1) > ADDRESS_SPACE:
            what = f"device {p.device}'s {size}-byte arena" if p.in_arena else f"root {p.root!r} ({size} B)"
            raise ExecutorError(f"address: {which} = {whole} puts {what} past the end of the 64-bit address space "
                                f"(2**64; tensor {tid!r})")
        return whole + p.offset

    @cached_property
    def _own_root_bytes(self) -> dict[str, int]:
        """``own_roots`` by name, built once: ``address`` is asked for every tensor of a graph."""
        return dict(self.own_roots)


def _bases_problem(bases, arena: bool) -> str | None:
    """Why ``bases`` is not the container ``Binding.address`` takes, or None: ``arena_base`` maps each device to its
    arena's base (a mapping or a list indexed by device), ``root_base`` each own root's id to its base (a mapping).
    Why: one base given where the container is expected (``arena_base=8192`` for ``[8192]``) was indexed
    regardless and said "the arena of device 0, which arena_base gives no base", as if a device were missing; a
    string or bytes was indexed too, so ``arena_base=b"\\x00"`` put the arena at 0 and ``"8192"`` at "8", silently
    or with a message about "a str '8'"; and a list of root bases said each root was missing."""
    name, kinds = ("arena_base", "a mapping or list of each device's base") if arena else \
        ("root_base", "a mapping of each own root's id to its base")
    listed = (isinstance(bases, Sequence) and not isinstance(bases, (str, bytes, bytearray, memoryview))) or (
        isinstance(bases, np.ndarray) and bases.ndim == 1)
    if isinstance(bases, Mapping) or (arena and listed):
        return None
    one = as_int(bases) if arena else None
    return f"{name} must be {kinds}, not {type(bases).__name__} {_short(bases)}" + (
        f" (one device's base: [{one}])" if one is not None else "")


def bind(graph: Graph, plan: Plan) -> Binding:
    """Places and steps of ``plan`` over ``graph``; PlanFormatError names an arena tensor the plan
    gives no offset, or an order entry naming no node of the graph, and ``memplan.errors.PlanMismatch`` (a
    PlanFormatError) a plan made for another graph. Why here: every executor binds through this, and the
    emulator and ``runtime.step.program_at`` (which do not verify unless asked) bound a plan of another graph
    (the batch-4 tiny step's plan for the batch-1 graph: the other sizes' offsets, overlapping tensors) and
    computed wrong bits silently. PlanFormatError too for an arena tensor outside its device's arena (an edited
    offset or ``arena_bytes``), and for a node or tensor on a device the plan does not have: no negative
    control needs those, and an executor run with ``check_plan=False`` wrote past its arena on the GPU. A plan that is merely unsafe still binds (the negative controls need it)."""
    if not isinstance(graph, Graph):   # (None was an AttributeError from deep inside)
        raise GraphError(f"bind: graph must be a memplan Graph, not {type(graph).__name__}")
    if not isinstance(plan, Plan):
        raise PlanFormatError(f"bind: plan must be a memplan Plan (memplan.plan, load_plan), not {type(plan).__name__}")
    check_plan_for(graph, plan)
    offsets = plan.offsets()
    devices = max(plan.devices, 1)
    tensor_device = dict(zip((t for t, _o, _s in plan.tensors), plan.tensor_devices)) if devices > 1 else {}
    node_device = dict(zip((n for n, _s in plan.order), plan.node_devices)) if devices > 1 else {}
    if devices == 1:   # a Plan built in code (a file is refused: ``_check_one_device``); run on device 0 regardless
        stray = next((("node", e[0], d) for e, d in zip(plan.order, plan.node_devices) if d != 0), None) or next(
            (("tensor", e[0], d) for e, d in zip(plan.tensors, plan.tensor_devices) if d != 0), None)
        if stray is not None:
            raise PlanFormatError(f"plan {plan.graph!r} puts {stray[0]} {stray[1]!r} on device {stray[2]}, outside 0..0 "
                                  "(the plan spans 1 device)")
    if devices > 1:   # (unverified: a node on device 7 of 2 was a KeyError, a tensor on -1 the last device's arena)
        if len(plan.node_devices) != len(plan.order) or len(plan.tensor_devices) != len(plan.tensors):
            raise PlanFormatError(f"plan {plan.graph!r} spans {devices} devices but gives {len(plan.node_devices)} node "
                                  f"and {len(plan.tensor_devices)} tensor devices for {len(plan.order)} order entries "
                                  f"and {len(plan.tensors)} tensors")
        for what, per in (("node", node_device), ("tensor", tensor_device)):
            for name, d in per.items():
                if not 0 <= d < devices:
                    raise PlanFormatError(f"plan {plan.graph!r} puts {what} {name!r} on device {d}, outside "
                                          f"0..{devices - 1}")
    places: dict[str, Place] = {}
    own: list[tuple[str, int]] = []
    for ti, t in enumerate(graph.tensors):
        root = graph.tensors[graph.root[ti]]
        device = tensor_device.get(root.id, 0)
        if root.kind == "weight":
            if offsets.get(t.id) is not None:   # (it ran in the weight's own allocation, as if the offset were null)
                raise PlanFormatError(f"plan {plan.graph!r} gives tensor {t.id!r} arena offset {offsets[t.id]}, but it "
                                      f"lives in weight {root.id!r}'s own memory (its offset must be null)")
            places[t.id] = Place(root.id, False, device, graph.offset_in_root(ti))
            if t.view_of is None:
                own.append((t.id, t.size))
            continue
        off = offsets.get(t.id)
        if off is None:
            raise PlanFormatError(f"plan {plan.graph!r} gives arena tensor {t.id!r} no offset")
        places[t.id] = Place(root.id, True, device, int(off))
    waits: dict[str, list[int]] = {}
    records: dict[str, list[int]] = {}
    for i, (a, b) in enumerate(plan.events):
        records.setdefault(a, []).append(i)
        waits.setdefault(b, []).append(i)
    steps = []
    # the streams the plan declares bound its ids (an executor makes one CUDA stream per id up to the largest): a
    # node on stream 500 of a 2-stream plan made 501 streams; -1 ran on the executor's last (a negative index).
    # (``check_plan_for`` above made ``streams`` an int in 1..MAX_STREAMS.)
    declared = plan.streams
    # a stream is made on one device: a node of device 1 on a stream of device 0 was launched there with device 1's
    # context current, and failed mid-step on the GPU (after the step's copies were issued; the emulator ran it)
    stream_owner: dict[int, tuple[int, str]] = {}
    for nid, s in plan.order:
        if nid not in graph.node_index:
            raise PlanFormatError(f"plan {plan.graph!r} orders node {nid!r}, which graph {graph.name!r} lacks")
        if not 0 <= s < declared:
            raise PlanFormatError(f"plan {plan.graph!r} runs node {nid!r} on stream {s}, outside 0..{declared - 1} "
                                  f"(the plan declares {plan.streams} streams)")
        d = node_device.get(nid, 0)
        owner = stream_owner.setdefault(int(s), (d, nid))
        if owner[0] != d:
            raise PlanFormatError(f"plan {plan.graph!r} runs stream {s} on device {owner[0]} (node {owner[1]!r}) and "
                                  f"on device {d} (node {nid!r}): a stream belongs to one device")
        steps.append(Step(nid, int(s), d, tuple(waits.get(nid, ())), tuple(records.get(nid, ()))))
    if devices > 1 and len(plan.device_arena_bytes) != devices:
        raise PlanFormatError(f"plan {plan.graph!r} spans {devices} devices but lists {len(plan.device_arena_bytes)} "
                              "device_arena_bytes")
    arena = tuple(int(b) for b in plan.device_arena_bytes) if devices > 1 else (int(plan.arena_bytes),)
    for t in graph.tensors:
        p = places[t.id]
        if p.in_arena and not 0 <= p.offset <= p.offset + t.size <= arena[p.device]:
            where = f"device {p.device}'s arena" if devices > 1 else "the arena"
            raise PlanFormatError(f"plan {plan.graph!r} puts tensor {t.id!r} at [{p.offset}, {p.offset + t.size}), "
                                  f"outside {where} of {arena[p.device]} bytes: its kernels would write out of bounds")
    inputs = tuple(t.id for t in graph.tensors if t.kind == "input" and t.view_of is None)
    outputs = tuple(t.id for t in graph.tensors if t.kind == "output")
    return Binding(places, tuple(steps), arena, tuple(own), inputs, outputs, _arena_alignment(graph, plan))


def check_views(graph: Graph, plan: Plan, binding: Binding) -> None:
    """PlanFormatError naming the first arena view that ``plan`` puts off its root's bytes: at another offset than
    the root's plus the view's offset in it, or on another device. A view is its root's bytes; the pycuda executors
    and the emulator address every tensor at its own plan offset, so a view moved in an edited plan run unverified
    (``check_plan=False``, ``emulate``, ``program_at``) was bound there: the rope output written through ``l0.q``
    never reached the attention reading ``l0.q3``, and the step computed another graph without a word. The ATen
    executor refuses such a plan itself (where torch lays the view out); no negative control needs one."""
    devices = dict(zip((t for t, _o, _s in plan.tensors), plan.tensor_devices)) if plan.devices > 1 else {}
    for ti, t in enumerate(graph.tensors):
        p = binding.places[t.id]
        if t.view_of is None or not p.in_arena:
            continue
        root = binding.places[p.root]
        want = root.offset + graph.offset_in_root(ti)
        if devices.get(t.id, p.device) != p.device:
            raise PlanFormatError(f"plan {plan.graph!r} puts view {t.id!r} on device {devices[t.id]}, its root "
                                  f"{p.root!r} on device {p.device}: a view is its root's bytes")
        if p.offset != want:
            raise PlanFormatError(f"plan {plan.graph!r} puts view {t.id!r} at {p.offset}, not at {want} (its root "
                                  f"{p.root!r}'s offset + the view's offset in it): a view is its root's bytes")


def waits_before_records(steps: Sequence[Step], plan: Plan, skip: frozenset[int] = frozenset()) -> str:
    """The first plan event whose wait ``steps`` (a binding's, or a program's: a fused group records on its last
    member) issue at or before its record, described, or "". Such a plan (run unverified) is an eager negative
    control: the wait finds the event unrecorded and waits for nothing, as in CUDA. A capture of it waits on a
    record made outside the graph (an earlier call's, or none), which CUDA refuses mid-capture: the pycuda
    executors refuse it at ``capture``, the ATen executor with ``cuda_graph=True`` at its build. Events in ``skip``
    (cross-device: no capture holds them) are left out."""
    recorded: dict[int, int] = {}
    for k, st in enumerate(steps):
        recorded.update((i, k) for i in st.records)
    for k, st in enumerate(steps):
        for i in st.waits:
            if i not in skip and (recorded.get(i, -1) >= k or i not in recorded):
                a, b = plan.events[i]
                return (f"waits on event {a!r}->{b!r} at {b!r} (stream {st.stream}) before {a!r} records it"
                        if i in recorded else f"waits on event {a!r}->{b!r}, which no step records")
    return ""


#: the alignment of every device allocation's base: what cudaMalloc (cuMemAlloc) guarantees
ALLOC_ALIGNMENT = 256


def _arena_alignment(graph: Graph, plan: Plan) -> int:
    """The alignment an arena base needs so that ``base + offset`` is as aligned as the offsets: the plan's
    and the graph's (a plan may raise the graph's, never lower it: their lcm covers a hand-made plan too), or
    PlanFormatError for one past any graph's limit (an absurd field would ask for that many bytes of padding)."""
    a = math.lcm(int(plan.alignment), int(graph.alignment))
    if a > MAX_TENSOR_BYTES:
        raise PlanFormatError(f"plan {plan.graph!r}: alignment {plan.alignment} (with the graph's {graph.alignment}: "
                              f"{a}) is above {MAX_TENSOR_BYTES}, the largest a graph may have")
    return a


def arena_base(alloc: Callable[[int], int], nbytes: int, alignment: int) -> int:
    """An arena of ``nbytes`` from ``alloc(nbytes)`` (which returns an ``ALLOC_ALIGNMENT``-aligned base, as
    cudaMalloc does) at a base that is a multiple of ``alignment`` (``Binding.alignment``): above what the
    allocation guarantees, ``alignment - 1`` bytes more are allocated and the base rounded up, as
    docs/format.md says an executor must."""
    if ALLOC_ALIGNMENT % alignment == 0:
        return alloc(nbytes)
    return -(-alloc(nbytes + alignment - 1) // alignment) * alignment


def read_inputs(graph: Graph, binding: Binding) -> frozenset[str]:
    """The root inputs of at least one byte that some node reads, directly or through a view, or that an output
    views (read back after the step, so live to its end: ``o`` ``view_of`` input ``x`` read as garbage when only
    nodes' reads counted, as ``x`` was never copied into the arena): the ones a step needs given. An input no node
    reads and no output views (an unused graph input, as exported models have) changes no result, so a step that
    was never given it is no silent garbage, and the executors and the emulator run it."""
    read = {graph.root[t] for ins in graph.node_inputs for t in ins}
    read |= {graph.root[k] for k, t in enumerate(graph.tensors) if t.kind == "output"}
    return frozenset(tid for tid in binding.inputs
                     if graph.tensor_index[tid] in read and graph.tensor(tid).size)


#: graph dtype attr -> the host dtype an input array must have (other dtypes are not checked)
INPUT_DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32}


def attr_dtype(graph: Graph, tid: str):
    """The host dtype of ``tid``'s ``dtype`` attr (``INPUT_DTYPES``), or None where it names none of them. A
    hand-written graph's attrs are free-form: a list or dict ``dtype`` (``["f32"]``) was a raw "unhashable type"
    TypeError from every input and weight check."""
    name = graph.tensor(tid).attrs.get("dtype")
    return INPUT_DTYPES.get(name) if isinstance(name, str) else None


def read_elements(tid: str, nbytes: int, dtype) -> int:
    """How many ``dtype`` elements a read copies back from ``tid``'s ``nbytes``, or ExecutorError naming the
    tensor: a dtype numpy does not know (``"float99"`` was numpy's TypeError), one of Python objects (``object``: the
    copy filled its pointers with device bytes) or whose elements do not fill the bytes (the rest were left out of
    the copy, silently, or the reshape failed with numpy's message)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ExecutorError(f"read {tid!r}: dtype {dtype!r} is not a numpy dtype") from None
    if dt.hasobject:   # (the copy wrote device bytes into the array's object pointers: a crash when used or freed)
        raise ExecutorError(f"read {tid!r}: dtype {dt} holds Python objects, not a tensor's bytes")
    if dt.kind == "U":   # (device bytes as UCS-4 code points: invalid ones, a SystemError when the array was read)
        raise ExecutorError(f"read {tid!r}: dtype {dt} holds text (Unicode code points), not a tensor's bytes")
    size = dt.itemsize
    if size == 0 or nbytes % size:
        raise ExecutorError(f"read {tid!r}: its {nbytes} bytes are not whole {dt} elements "
                            f"({size} bytes each)")
    return nbytes // size


def read_spec(graph: Graph, tid: str, dtype=None, *, hint: str = ": pass dtype=") -> tuple[np.dtype, int, tuple | None]:
    """How a tensor's bytes are read back to the host, as ``(dtype, elements, shape)``: ``dtype`` None is the
    tensor's own (its ``dtype`` attr, f32 without one), so an f16 tensor is not read as half as many f32 and an
    i32 one not as its bits read as float; ``shape`` its ``shape`` attr where it is a list of non-negative integers
    (``graph_shape``; else None: flat). ExecutorError naming the tensor for an own dtype none of ``INPUT_DTYPES``
    (``hint`` says what to do), elements that do not fill its bytes (``read_elements``) or a shape that does not
    hold them. Why one function: the pycuda executors' ``read`` and the emulator's outputs read the same tensors,
    and the emulator read every output as f32 (an i32 output's ``[1, 2, 3, 4]`` came back as ``[1e-45, ...]``; an
    output of 6 bytes as one float, its last 2 bytes dropped) where ``read`` refused or read it right."""
    t = graph.tensor(tid)
    if dtype is None:
        name = t.attrs.get("dtype", "f32")
        dtype = INPUT_DTYPES.get(name) if isinstance(name, str) else None
        if dtype is None:
            raise ExecutorError(f"read {tid!r}: its dtype {name!r} is none of {', '.join(INPUT_DTYPES)}{hint}")
    n, shape = read_elements(tid, t.size, dtype), graph_shape(graph, tid)
    if shape is not None and math.prod(shape) != n:   # (numpy's "cannot reshape", after the copy)
        raise ExecutorError(f"read {tid!r} as {np.dtype(dtype)}: {n} elements, its shape {list(shape)} holds "
                            f"{math.prod(shape)} (read it as its own dtype, then .view())")
    return np.dtype(dtype), n, shape


def weight_source(graph: Graph, tid: str) -> str:
    """The tensor whose values ``tid`` holds: its original where it is a replica (``attrs.replica_of``: a split's
    copy of a read-only weight on a later device that reads it, ``memplan.devices``), else ``tid`` itself."""
    src = graph.tensor(tid).attrs.get("replica_of")
    return src if isinstance(src, str) and src != tid and src in graph.tensor_index else tid


def weight_copies(graph: Graph, tid: str) -> tuple[str, ...]:
    """``tid`` and every replica of it (``weight_source``): the tensors that must hold the same values."""
    return (tid,) + tuple(u.id for u in graph.tensors if u.id != tid and weight_source(graph, u.id) == tid)


def check_weight_names(graph: Graph, binding: Binding, names) -> None:
    """ExecutorError naming the first of ``names`` (the keys of a ``weights=`` mapping, in sorted order) that is no
    weight or cache of ``graph`` (a typo was silently left zero), or that is a replica: a replica gets its
    original's array, so an array given under the replica's own id (``"w@dev1"``) was dropped without a word and
    that device computed with zeros (or beside the original's, with other values than the other devices)."""
    own = {rid for rid, _ in binding.own_roots}
    sources = {weight_source(graph, r) for r in own}
    for name in sorted(names, key=str):
        if name in own and (src := weight_source(graph, name)) != name:
            raise ExecutorError(f"weights {name!r}: a replica of {src!r} (its copy on device "
                                f"{binding.places[name].device}): give {src!r}, whose values every replica holds")
        if name not in own and name not in sources:
            place = binding.places.get(name) if isinstance(name, str) else None
            if place is not None and not place.in_arena:   # (it said "not a weight or cache tensor", of a view of one)
                root = weight_source(graph, place.root)
                raise ExecutorError(f"weights {name!r}: a view of {root!r} ({graph.tensor(name).size} bytes at byte "
                                    f"{graph.offset_in_root(graph.tensor_index[name])} of it): give {root!r}")
            raise ExecutorError(f"weights {name!r}: not a weight or cache tensor of graph {graph.name!r}")


def check_host_arrays(graph: Graph, binding: Binding, weights: Mapping | None, inputs: Mapping | None) -> None:
    """ExecutorError naming the first of ``weights`` (names, then arrays: ``check_weight_names``, ``host_weight``)
    and ``inputs`` (``host_input``) an executor would refuse, checked on the host alone. Why: the pycuda executors
    checked each array as they copied it, after the arenas and every weight root had been allocated on the devices
    and the weights before it copied (every byte of an 8B model's), so a wrong dtype on the last weight, or a
    misshapen input, was refused only then."""
    if weights:
        check_weight_names(graph, binding, weights)
        for rid, _size in binding.own_roots:
            src = weight_source(graph, rid)
            if src in weights:
                host_weight(graph, rid, weights[src])
    for tid, arr in (inputs or {}).items():
        host_input(graph, binding, tid, arr)


def host_input(graph: Graph, binding: Binding, tid: str, arr) -> np.ndarray:
    """``arr`` as the contiguous host array every executor copies into input ``tid``'s bytes, or ExecutorError
    naming it: not an input of the graph, another dtype (same bytes, other bits: float positions ran as
    garbage), another shape than its ``shape`` attr, or another byte count (it would overwrite its arena
    neighbours)."""
    if tid not in binding.inputs:
        place = binding.places.get(tid) if isinstance(tid, str) else None
        if place is not None and place.root in binding.inputs:   # (it said "not an input tensor", of an input)
            raise ExecutorError(f"input {tid!r}: a view of input {place.root!r} ({graph.tensor(tid).size} bytes at "
                                f"byte {graph.offset_in_root(graph.tensor_index[tid])} of it): give {place.root!r}")
        raise ExecutorError(f"input {tid!r}: not an input tensor of graph {graph.name!r}")
    return _host_array(graph, tid, arr, "input")


def host_weight(graph: Graph, rid: str, arr) -> np.ndarray:
    """``arr`` as the contiguous host array copied into weight (or cache) root ``rid``'s bytes, or ExecutorError
    naming it: another dtype than its ``dtype`` attr (same bytes, other bits: an int16 or big-endian ``>f2``
    array was copied bit for bit and ran as garbage), another shape than its ``shape`` attr, or another byte
    count."""
    return _host_array(graph, rid, arr, "weight")


def graph_shape(graph: Graph, tid: str) -> tuple[int, ...] | None:
    """``tid``'s ``shape`` attr as a tuple of ints, or None where it has none a host array could be held to (no
    attr, or not a list of non-negative integers: a hand-written graph's free-form attrs)."""
    shape = graph.tensor(tid).attrs.get("shape")
    if not isinstance(shape, (list, tuple)):
        return None
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return None
    return tuple(shape)


def held_to_shape(given: np.ndarray, shape: tuple[int, ...] | None) -> bool:
    """Whether ``given`` (of the right dtype and byte count) is refused for its shape: it has several dimensions
    and not ``shape``, where ``shape`` (the graph's attr) holds its elements. A flat (or 0-d) array is the elements
    in order, unambiguous, as hand-written callers and tools pass them; a graph whose ``shape`` attr does not hold
    the tensor's elements is the kernels' to refuse (naming the node), not the array's."""
    if shape is None or given.ndim <= 1 or given.shape == shape:
        return False
    return math.prod(shape) == given.size


def _host_array(graph: Graph, tid: str, arr, what: str) -> np.ndarray:
    """``arr`` contiguous, with the dtype of ``tid``'s ``dtype`` attr (where ``INPUT_DTYPES`` has it), its byte
    count and the shape of its ``shape`` attr (where it has one), or ExecutorError naming the ``what`` (input,
    weight), ``tid``, and the given and the graph's dtype and shape. Why the shape: the byte count alone took a
    transposed weight (``(64, 32)`` where the graph says ``(32, 64)``: the same bytes, read as the other matrix),
    and any array of the right byte count and dtype (an f32 ``(8, 8)`` for an f32 ``(64,)``), silently. A flat
    array of the elements in order is taken (``held_to_shape``)."""
    try:
        given = np.asarray(arr)   # (before ``ascontiguousarray``, which makes a 0-d array 1-d)
    except (TypeError, ValueError, RuntimeError) as exc:   # (a CUDA tensor, a ragged list: numpy's own error)
        raise ExecutorError(f"{what} {tid!r}: {type(arr).__name__} is no host array ({exc})") from None
    t = graph.tensor(tid)
    want, shape = attr_dtype(graph, tid), graph_shape(graph, tid)
    nbytes = given.size * given.dtype.itemsize
    if given.dtype.hasobject:   # (its bytes are pointers: copied to the device as the tensor's values)
        why = f"{given.dtype} given (Python objects, not a tensor's values)"
    elif want is not None and given.dtype != want:
        why = f"{given.dtype} given, the graph says {np.dtype(want)}"
    elif nbytes != t.size:
        why = f"{nbytes} bytes given, the graph says {t.size}"
    elif held_to_shape(given, shape):
        why = f"shape {given.shape} given, the graph says {shape}"
    else:
        return np.ascontiguousarray(given)
    ours = f"{np.dtype(want) if want is not None else t.attrs.get('dtype', 'no dtype')} " \
           f"{shape if shape is not None else '(no shape)'}"
    raise ExecutorError(f"{what} {tid!r}: {why} (given: {given.dtype} {given.shape}; the graph's: {ours})")
