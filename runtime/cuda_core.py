"""The pycuda executor core: what the one-GPU and the multi-GPU executors do the same way.

Memory is ``runtime.device_memory``'s (arenas, weight roots, input staging, counters, scratch). Issue: the
plan's streams (non-blocking, each created on its device) and one CUDA event per plan event (created on
the recording node's device), and ``runtime.step.program``'s launches in plan order — the same program
the CPU emulator runs. A step is:

1. (tests only) poison each arena with f32 NaN and the given cache rows with f16 NaN;
2. copy the inputs from their staging copies into the arena, on the first stream of their device;
3. fork: stream 0 records an event that every other stream of its device waits on; with several devices,
   the first stream of every other device waits on it, poisons and copies its inputs, and records its own;
   stream 0 waits on those and records the event every other stream (of every device) waits on, so no node
   (a COPY into another device's arena) runs before any device's setup is done;
4. the steps: wait the plan events, launch the node's kernels (or its device-to-device copy), record
   the plan events;
5. join: every other stream records an event that stream 0 waits on.

CUDA graphs: one graph per device (``capture``), captured on the device's first stream from that
device's part of the issue sequence, with only its own events (one device: exactly the eager sequence).
Between the graphs the cross-device events become stage events — device d's graph starts after the
graphs of the devices it receives from (``runtime.layout.stage_order``). That is coarser than the plan's
events, so it only adds happens-before: still safe.

pycuda is imported when an executor is created, never at module import.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

import memplan
from memplan import Graph, Plan
from memplan.errors import ExecutorError
from memplan.planfile import check_plan_fields

from .binding import (
    bind,
    check_host_arrays,
    check_views,
    read_elements,
    waits_before_records,
    weight_copies,
    weight_source,
)
from .cuda_util import (
    EVENT_DISABLE_TIMING,
    STREAM_NON_BLOCKING,
    capture_graph,
    destroy_graph,
    import_pycuda,
    launch_graph,
)
from .device_memory import FILL_SEED_STRIDE, DeviceMemory, on_device, poison_width
from .kernels import GEMV_NORM_OFF, MEMCPY, KernelLibrary, Launch
from .kernels.ops import pdl_by_default, weight_product_rows, weight_products_read_f16
from .layout import layout, stage_order
from .step import check_program, program


class ExecutorStateError(ExecutorError, RuntimeError):
    """A call the executor cannot take in its present state: a step, read or replay of an executor that was freed
    (or whose shared weights were), a replay before any capture. memplan's own error (``ExecutorError``), as every
    other refusal of the runtime is, so one ``except MemplanError`` catches them (they were plain RuntimeErrors,
    which it missed); still the ``RuntimeError`` they were."""


#: the most cycles ``Jitter`` may spin before a node: the spin kernel's ``long long`` argument
SPIN_CYCLES_MAX = (1 << 63) - 1


#: the most steps one ``replay`` or ``time_steps`` call may issue: the largest C int. Past it a count is a typo (an
#: id, a byte count), not a run: ``replay(10**12)`` issued graph launches for days before, one Python call at a time
MAX_STEPS = (1 << 31) - 1


def step_count(what: str, n, low: int) -> int:
    """``n`` as a plain int in ``low..MAX_STEPS``, or ExecutorError naming ``what`` (``"replay n"``) and the value as
    given: a bool (``True`` counted as 1), a float (``2.0``), a string or a numpy array is no count, and a count past
    ``MAX_STEPS`` issued launches for days. Numpy integers are taken (a count from numpy arithmetic)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ExecutorError(f"{what}={n!r}: expected an integer in {low}..{MAX_STEPS}, not {type(n).__name__}")
    if not low <= int(n) <= MAX_STEPS:
        raise ExecutorError(f"{what}={n!r}: expected an integer in {low}..{MAX_STEPS}")
    return int(n)


def _check_sync(what: str, sync) -> None:
    """``sync`` must be True or False: ``sync="no"`` (truthy) waited for the step, ``sync=0`` did not, decided by a
    typo's truthiness as ``check_plan`` once was."""
    if not isinstance(sync, bool):
        raise ExecutorError(f"{what} sync={sync!r}: expected True or False")


@dataclass(frozen=True)
class Jitter:
    """Random spin delays before nodes: ``prob`` per node, up to ``max_cycles`` SM clocks each; with
    ``only``, before those nodes only (a targeted delay: e.g. make one stream's branch late)."""

    seed: int = 0
    prob: float = 0.5
    max_cycles: int = 200_000
    only: tuple[str, ...] = ()

    def __post_init__(self):
        """Every field checked here, before a step is issued: ``max_cycles`` 1.5 or "100" passed (``int()`` took
        them) and failed in ``randrange`` mid-issue, after the step's copies and forks were issued (inside a
        capture: a broken capture); past 2**63 it fails the spin kernel's ``long long`` at its launch; a string
        ``prob`` was a TypeError, ``only=None`` one at the issue, and so was a numpy integer ``seed``."""
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ExecutorError(f"Jitter seed {self.seed!r}: expected an integer")
        if isinstance(self.prob, bool) or not isinstance(self.prob, numbers.Real) or not 0.0 <= self.prob <= 1.0:
            raise ExecutorError(f"Jitter prob {self.prob!r}: expected a probability in [0, 1]")
        if (isinstance(self.max_cycles, bool) or not isinstance(self.max_cycles, numbers.Integral)
                or not 1 <= self.max_cycles <= SPIN_CYCLES_MAX):
            raise ExecutorError(f"Jitter max_cycles {self.max_cycles!r}: expected an integer in 1..{SPIN_CYCLES_MAX} "
                                "(the spin kernel's long long)")
        if not isinstance(self.only, (tuple, list)) or not all(isinstance(n, str) for n in self.only):
            raise ExecutorError(f"Jitter only {self.only!r}: expected a tuple of node ids")
        # as plain Python values: ``random.Random`` refuses a numpy integer seed (a TypeError mid-issue before)
        for name, v in (("seed", int(self.seed)), ("max_cycles", int(self.max_cycles)), ("only", tuple(self.only))):
            object.__setattr__(self, name, v)


@dataclass(frozen=True)
class Poison:
    """Fill the arena (f32 NaN) and the given byte ranges of weight tensors (NaN of their dtype: f32 for an f32
    weight, else f16) before a step."""

    arena: bool = True
    ranges: tuple = ()   # objects with .tensor, .offset, .nbytes (runtime.models.llama.PoisonRange)

    def __post_init__(self):
        """Checked here, as ``Jitter`` is: a range that is no (tensor, offset, nbytes) object was an AttributeError
        from the step's checks, ``ranges=None`` a TypeError, and ``arena="no"`` (truthy) poisoned the arena."""
        if not isinstance(self.arena, bool):
            raise ExecutorError(f"Poison arena {self.arena!r}: expected True or False")
        if not isinstance(self.ranges, (tuple, list)):
            raise ExecutorError(f"Poison ranges {self.ranges!r}: expected a tuple of (tensor, offset, nbytes) ranges "
                                "(runtime.models.llama.PoisonRange)")
        for r in self.ranges:
            tensor, offset, nbytes = (getattr(r, k, None) for k in ("tensor", "offset", "nbytes"))
            if (not isinstance(tensor, str) or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                                   for v in (offset, nbytes))):
                raise ExecutorError(f"Poison range {r!r}: expected an object with .tensor (a tensor id), .offset and "
                                    ".nbytes (integers): runtime.models.llama.PoisonRange")
        object.__setattr__(self, "ranges", tuple(self.ranges))


def _check_options(graph: Graph, gemv_norm_min, seed, prefetch, devices: int = 1
                   ) -> tuple[tuple[str, str, int], ...]:
    """The executors' scalar options, before any allocation: a wrong type was a TypeError from deep inside
    (the registry's comparison, the fill kernel's seed arithmetic), a malformed prefetch entry an unpacking
    error, a negative byte count a prefetch kernel told to load a negative number of lines. Returns
    ``prefetch`` as a tuple."""
    def integral(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not integral(gemv_norm_min):
        raise ExecutorError(f"gemv_norm_min {gemv_norm_min!r}: expected an integer (weight elements)")
    if seed is not None and not integral(seed):
        raise ExecutorError(f"random_weights_seed {seed!r}: expected an integer or None")
    # the fill kernel's seed is ``seed * FILL_SEED_STRIDE + tensor index``, an unsigned 64-bit parameter: one out
    # of range (a negative seed) was pycuda's ``struct.error: argument out of range``, after every allocation
    top = ((1 << 64) - len(graph.tensors)) // FILL_SEED_STRIDE
    if seed is not None and not 0 <= seed <= top:
        raise ExecutorError(f"random_weights_seed {seed!r}: expected an integer in 0..{top} (the fill kernel's "
                            "64-bit seed)")
    try:
        out = tuple(prefetch)
    except TypeError:
        raise ExecutorError(f"prefetch {prefetch!r}: expected an iterable of (after_node, weight, nbytes)") from None
    for entry in out:
        if (not isinstance(entry, (tuple, list)) or len(entry) != 3 or not all(isinstance(x, str) for x in entry[:2])
                or not integral(entry[2]) or entry[2] < 0):
            raise ExecutorError(f"prefetch entry {entry!r}: expected (after_node, weight, nbytes >= 0)")
        graph.node(entry[0])
        check_prefetch_weight(graph, entry[1])
    if out and devices > 1:
        raise ExecutorError("prefetch: only on one device")
    return out


def check_prefetch_weight(graph: Graph, wid: str) -> None:
    """GraphError or ExecutorError naming ``wid`` unless it is a root weight-kind tensor (a weight or a KV cache: the
    prefetch only loads it into L2). Here, with the other options: an arena tensor, a view or an unknown id was
    refused only after every allocation and weight copy of the executor (every byte of an 8B model), as was a
    prefetch on several devices."""
    t = graph.tensor(wid)
    # a KV cache is allowed too: the prefetch only loads (into L2, values discarded), so racing with the step's
    # SET_ROWS writes cannot change any result
    if t.kind != "weight" or t.view_of is not None:
        raise ExecutorError(f"prefetch {wid!r}: only root weight-kind tensors (weights, KV caches)")


def check_poison_range(graph: Graph, binding, r) -> None:
    """ExecutorError naming ``r.tensor`` unless the range (``Poison.ranges``) is whole NaNs of its fill (f32 for an
    f32 root, else f16: ``poison_width``) inside a weight or cache root and inside every replica of it (``weight_copies``: ``DeviceMemory.poison`` fills them all, a hand-made
    ``replica_of`` may be smaller), and names the original, not a replica: a replica holds its original's values, so
    poisoning one copy alone made the devices compute with different weights (as ``write_weight`` refuses it)."""
    own = dict(binding.own_roots)
    if r.tensor not in own:
        raise ExecutorError(f"poison range of {r.tensor!r}: not a weight or cache tensor of graph {graph.name!r}")
    if (src := weight_source(graph, r.tensor)) != r.tensor:
        raise ExecutorError(f"poison range of {r.tensor!r}: a replica of {src!r} (its copy on device "
                            f"{binding.places[r.tensor].device}): poison the original, which poisons every replica")
    size = min(own.get(c, graph.tensor(c).size) for c in weight_copies(graph, r.tensor))
    w = poison_width(graph, r.tensor)
    if r.offset < 0 or r.nbytes < 0 or r.offset % w or r.nbytes % w or r.offset + r.nbytes > size:
        raise ExecutorError(f"poison range of {r.tensor!r}: bytes [{r.offset}, +{r.nbytes}) are not whole "
                            f"{'f32' if w == 4 else 'f16'} inside its {size} bytes"
                            + ("" if size == own[r.tensor] else " (its smallest replica's)"))


def check_graph_and_plan(graph: Graph, plan: Plan) -> None:
    """ValueError unless ``graph`` is a memplan Graph and ``plan`` a memplan Plan: the wrong kind of argument
    (a plan dict, a path) was an AttributeError from deep inside the build. Every executor checks this first."""
    if not isinstance(graph, Graph):
        raise ExecutorError(f"graph {type(graph).__name__}: expected a memplan Graph")
    if not isinstance(plan, Plan):
        raise ExecutorError(f"plan {type(plan).__name__}: expected a memplan Plan (memplan.plan, load_plan)")
    # its fields as a plan file's (a Plan built in code may hold anything): ``devices="2"`` or None was a raw
    # TypeError from the executors' device count checks, which read it before ``bind`` checks the fields
    check_plan_fields(plan)


#: (its old name, for callers that imported it from here)
_waits_before_records = waits_before_records


class CudaCore:
    """Arenas, weights, inputs, streams, events and the step program of one (graph, plan) on its GPUs."""

    def __init__(self, graph: Graph, plan: Plan, *, libraries: Callable[[int], KernelLibrary],
                 contexts: Sequence | None = None, weights: Mapping[str, np.ndarray] | None = None,
                 inputs: Mapping[str, np.ndarray] | None = None, random_weights_seed: int | None = None,
                 weights_from: CudaCore | None = None, check_plan: bool = True,
                 prefetch: Iterable[tuple[str, str, int]] = (), gemv_norm_min: int = GEMV_NORM_OFF,
                 pdl_policy: str = "off", prepare: Callable[[], None] | None = None):
        """``libraries(d)``: the kernel library of device d, created with d's context current; ``contexts``:
        one pycuda context per device, pushed while that device's work is issued (None: one device, the
        current context); ``prepare()``: called once the plan and options are checked, before the first
        allocation (the multi-GPU executor's peer access). The other arguments, ``pdl_policy`` among them, are the
        executors' (``runtime.executor.Executor``)."""
        if not isinstance(pdl_policy, str) or pdl_policy not in ("auto", "chain", "always", "off"):
            # (first: a typo was named only after pycuda was looked for and the plan verified, bound and laid out)
            raise ExecutorError(f"pdl_policy {pdl_policy!r}: expected 'auto', 'chain', 'always' or 'off'")
        cuda = import_pycuda(f"runtime: {type(self).__name__}")
        self.cuda = cuda
        if not isinstance(check_plan, bool):   # "no" is truthy, 0 falsy: a typo must not decide the check
            raise ExecutorError(f"check_plan {check_plan!r}: expected True or False")
        check_graph_and_plan(graph, plan)
        for name, arg in (("weights", weights), ("inputs", inputs)):
            if arg is not None and not isinstance(arg, Mapping):
                raise ExecutorError(f"{name} {type(arg).__name__}: expected a mapping of tensor id -> array, or None")
        if weights_from is not None and not isinstance(weights_from, CudaCore):
            raise ExecutorError(f"weights_from {type(weights_from).__name__}: expected another executor or None")
        if weights_from is not None and (weights or random_weights_seed is not None):
            # (they were ignored without a word: the step computed with the other executor's weights)
            given = "weights" if weights else f"random_weights_seed={random_weights_seed!r}"
            raise ExecutorError(f"{given} with weights_from: an executor sharing another's weights and caches runs on "
                                "that one's values, so these would be ignored; give one of them (write_weight changes "
                                "the shared weights)")
        if weights_from is not None:
            weights_from._live()   # (a freed one's pointers were taken as they were: its weights freed memory)
        #: the executor whose allocations hold the weights and caches this one runs on (itself, or the one that
        #: ``weights_from`` chains lead to: a sharer's ``free`` leaves them alone, the owner's frees them)
        self._weights_owner: CudaCore = weights_from._weights_owner if weights_from is not None else self
        if check_plan:
            memplan.verify(graph, plan)
        self.graph, self.plan = graph, plan
        self.binding = b = bind(graph, plan)
        check_views(graph, plan, b)
        self.layout = lay = layout(graph, plan, check=False, binding=b)
        self.devices = len(b.arena_bytes)
        self._ctxs = contexts
        prefetch = _check_options(graph, gemv_norm_min, random_weights_seed, prefetch, self.devices)
        if pdl_policy == "auto":
            pdl_policy = "chain" if pdl_by_default(weight_product_rows(graph), weight_products_read_f16(graph)) else "off"
        self.pdl_on, self.pdl_always = pdl_policy != "off", pdl_policy == "always"
        self.libs: list[KernelLibrary] = []
        for d in range(self.devices):
            with on_device(cuda, contexts, d):
                self.libs.append(libraries(d))
        # every kernel the step will launch, chosen and checked over stand-in addresses before any allocation: a
        # hand-edited plan's operand off its kernel's alignment was refused after every allocation and weight copy
        wgmma = [all(lib.wgmma for lib in self.libs)] * len(self.libs)   # every device or none (``program`` below)
        check_program(graph, plan, b, num_sms=[lib.num_sms for lib in self.libs], wgmma=wgmma,
                      gemv_norm_min=gemv_norm_min)
        # the host arrays too, before any allocation (they were checked as each was copied: after the arenas and
        # weight roots were allocated and the weights before the bad one copied)
        check_host_arrays(graph, b, weights if weights_from is None else None, inputs)
        if prepare is not None:
            prepare()
        self.mem = m = DeviceMemory(cuda, graph, b, self.libs, contexts, weights=weights,
                                    random_weights_seed=random_weights_seed,
                                    weights_from=weights_from.mem if weights_from is not None else None)
        self.weight_ptr, self.addr_of, self.inputs = m.weight_ptr, m.addr_of, m.inputs
        if inputs:
            m.set_inputs(inputs)
        self._make_streams_and_events()
        self._prefetch = self._make_prefetch(tuple(prefetch))
        self.program = program(graph, plan, b, m.addr_of.__getitem__, num_sms=[lib.num_sms for lib in self.libs],
                               # every device or none: a product's bits must not depend on the device
                               wgmma=wgmma,
                               counters=[m.counters(d) for d in range(self.devices)],
                               scratch=[partial(m.alloc, device=d) for d in range(self.devices)],
                               gemv_norm_min=gemv_norm_min)
        for d in range(self.devices):   # the on-demand kernels this step launches: loaded now, not mid-capture
            with on_device(cuda, contexts, d):
                self.libs[d].preload({ln.kernel for s in self.program.steps if s.device == d
                                      for ln in self.program.launches[s.node]})
        # each prefetch at the step that finishes its node (a fused group's last member), merged there: keyed by that
        # step alone, the prefetches after two members of one group overwrote each other, and all but the last
        # member's were dropped without a word
        moved: dict[str, list] = {}
        for after, todo in self._prefetch.items():
            moved.setdefault(self.program.finished_by[after], []).extend(todo)
        self._prefetch = moved
        self.fused_groups = self.program.fused_groups
        # the order of the per-device CUDA graphs, None where none exists (devices that wait on each other: a
        # safe plan, which eager steps run; ``capture`` refuses it). Deciding it here refused such a plan outright,
        # after every allocation and kernel library was made, though nothing but a capture needs it.
        try:
            self._stages: list[int] | None = stage_order(lay) if self.devices > 1 else [0]
        except ValueError:
            self._stages = None
        # per device: the arena bytes that other devices' COPY nodes write. A device's CUDA graph runs after
        # the graphs it receives from, so its poison must leave them alone (eager steps poison first)
        self._received = [tuple(sorted((b.places[c.dst].offset, c.nbytes) for c in lay.transfers
                                       if c.dst_device == d)) for d in range(self.devices)]
        self._graphs: dict[int, tuple] = {}
        #: whether a step has run (``read`` refuses an arena tensor before: its bytes are the allocation's old ones)
        self._stepped = False
        #: whether a step issued without ``sync`` may still run on the device (``_settle``)
        self._in_flight = False
        # (a cross-device event is not captured: each device's graph waits for those it receives from instead)
        self._backward = waits_before_records(self.program.steps, plan, skip=self._cross)

    def _make_streams_and_events(self) -> None:
        cuda, lay = self.cuda, self.layout
        # a CUDA stream for each id a step runs on, and stream 0 (main: the fork and the joins); none for an id the
        # plan declares but never uses (``self.streams[s]`` None): a plan declaring 1024 streams for 3 made 1024,
        # each forked and joined in every step (3 stream operations each, ~3000 nodes in a captured graph)
        self.used_streams = tuple(sorted({0, *lay.stream_device}))
        n = self.used_streams[-1] + 1
        self.stream_device = [lay.stream_device.get(s, 0) for s in range(n)]
        # per device: its first stream, where its inputs are copied, its graph captured; stream 0 is main
        self.first = {d: ss[0] for d, ss in enumerate(lay.device_streams) if ss}
        self.first[self.stream_device[0]] = 0
        self.streams = [self._on_device(self.stream_device[s], cuda.Stream, flags=STREAM_NON_BLOCKING)
                        if s in self.used_streams else None for s in range(n)]
        recorder: dict[int, int] = {}
        waiter: dict[int, int] = {}
        for st in self.binding.steps:
            recorder.update((i, st.device) for i in st.records)
            waiter.update((i, st.device) for i in st.waits)
        self._events = [self._on_device(recorder.get(i, 0), cuda.Event, EVENT_DISABLE_TIMING)
                        for i in range(len(self.plan.events))]
        self._cross = frozenset(i for i in recorder if waiter.get(i, recorder[i]) != recorder[i])
        # fork: stream 0's event; every other device with streams forks from its own; joins: one per stream
        self._fork = {d: self._on_device(d, cuda.Event, EVENT_DISABLE_TIMING) for d in self.first}
        self._joins = [self._on_device(self.stream_device[s], cuda.Event, EVENT_DISABLE_TIMING)
                       if s in self.used_streams else None for s in range(n)]
        self._stage_events = {d: self._on_device(d, cuda.Event, EVENT_DISABLE_TIMING) for d in self.first}
        if len(self.first) > 1:   # (``_fork_all``: an eager step over several devices)
            self._fork_all_event = self._on_device(self.stream_device[0], cuda.Event, EVENT_DISABLE_TIMING)
        self._start = self._on_device(self.stream_device[0], cuda.Event, EVENT_DISABLE_TIMING)

    def _make_prefetch(self, prefetch: tuple) -> dict[str, list]:
        """``(after_node, weight, nbytes)`` -> an extra stream (forked from the node by an event) that pulls
        the weight's first bytes into L2 (one device only)."""
        self._pstream = None
        if not prefetch:
            return {}
        cuda = self.cuda
        self._pstream = cuda.Stream(flags=STREAM_NON_BLOCKING)
        self._pjoin = cuda.Event(EVENT_DISABLE_TIMING)
        sink = self.mem.alloc(256)
        out: dict[str, list] = {}
        for after, wid, nbytes in prefetch:   # (each checked by ``_check_options``, before any allocation)
            t = self.graph.tensor(wid)
            n16 = min(int(nbytes), t.size) // 16
            ln = Launch("l2_prefetch", (self.libs[0].num_sms, 1, 1), (256, 1, 1), (self.weight_ptr[wid], n16, sink))
            out.setdefault(after, []).append((cuda.Event(EVENT_DISABLE_TIMING), ln))
        return out

    # -- memory (runtime.device_memory) ------------------------------------------------------------------
    def on(self, d: int):
        """A context manager with device ``d``'s context current (nothing to do on one device)."""
        return on_device(self.cuda, self._ctxs, d)

    def _on_device(self, d: int, make, *args, **kw):
        with self.on(d):
            return make(*args, **kw)

    def set_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        self._live()
        if not isinstance(inputs, Mapping):
            raise ExecutorError(f"set_inputs {type(inputs).__name__}: expected a mapping of input id -> array")
        self._settle()
        self.mem.set_inputs(inputs)

    def read(self, tid: str, dtype=None) -> np.ndarray:
        """Copy a tensor back (a step issued with ``sync=False`` first finishes: ``_settle``); shaped by its
        ``shape`` attr; as ``dtype``, by default the tensor's own (its ``dtype`` attr: f16, i32; f32 without one)."""
        self._live()
        place = self.binding.places.get(tid) if isinstance(tid, str) else None
        if place is not None and place.in_arena and not self._stepped:
            # (cuMemAlloc does not clear: ``Executor(...).read("logits")`` returned the allocation's old bytes as the
            # step's output, silently; weights and caches are written when the executor is made, so they read)
            raise ExecutorStateError(f"read {tid!r}: no step has run yet (run, replay or time_steps), so its arena "
                                     "bytes hold whatever the device memory held")
        if place is not None and dtype is not None:   # (the caller's argument first: a dtype of Python objects is
            read_elements(tid, self.graph.tensor(tid).size, dtype)   # named as such, whatever the tensor's state)
        if place is not None and place.root in self.binding.inputs and place.root not in self.mem.read_inputs \
                and self.graph.tensor(tid).size:
            # (a step copies only the inputs some node reads into the arena: an unread one is live at no node, so the
            # plan may give its bytes to any tensor, and ``read("u")`` returned that tensor's values, or old device
            # memory, as the input the caller gave, silently)
            raise ExecutorError(f"read {tid!r}: {'input' if place.root == tid else f'a view of input {place.root!r}'} "
                                "that no node reads and no output views, so no step copies it into the arena: its "
                                "bytes there are other tensors' (the plan may reuse them)")
        self._settle()
        return self.mem.read(tid, dtype)

    def write_weight(self, tid: str, arr: np.ndarray) -> None:
        self._live()
        self._settle()
        self.mem.write_weight(tid, arr)

    def _settle(self) -> None:
        """Wait for a step issued with ``sync=False`` before a host copy touches its memory. Why: the step's
        streams are non-blocking, which a plain (legacy default stream) copy does not wait for: ``run(sync=False)``
        then ``read("logits")`` copied the logits back while the step's kernels could still be writing them, and
        ``set_inputs`` or ``write_weight`` wrote a staging copy or a weight that its kernels were reading, silently
        (the docstrings asked for ``synchronize`` first; nothing enforced it)."""
        if self._in_flight:
            self.synchronize()

    def _check_inputs_set(self) -> None:
        """ValueError naming an input some node reads that neither ``inputs=`` nor ``set_inputs`` gave (``binding.
        read_inputs``: an input no node reads changes no result, so may stay unset): a step copied its staging
        copy, never written, into the arena (``inputs={"inp": x}`` without ``pos``, ``kv_idx`` and ``mask`` ran on
        whatever the device memory held, a freed allocation's old bytes: silently wrong results)."""
        self._live()
        if self.mem.unset:
            missing = sorted(self.mem.unset)
            raise ExecutorError(f"input {missing[0]!r} of graph {self.graph.name!r} was never given (inputs= or "
                                f"set_inputs; {len(missing)} missing): a step would read uninitialised device memory")

    def _live(self) -> None:
        """ExecutorStateError (a RuntimeError) unless this executor's memory, and the weights it shares
        (``weights_from``), still exist: a step of an executor whose weights' owner was freed ran its kernels
        (eager, or a CUDA graph captured before) on freed device memory, silently (another allocation may hold
        those bytes by then)."""
        if getattr(self, "_freed", False):
            raise ExecutorStateError(f"executor of plan {self.plan.graph!r} was freed: its device memory is gone")
        owner = getattr(self, "_weights_owner", self)
        if owner is not self and getattr(owner, "_freed", False):
            raise ExecutorStateError(f"executor of plan {self.plan.graph!r} shares the weights of an executor "
                                     f"(weights_from, plan {owner.plan.graph!r}) that was freed: its weights and "
                                     "caches are gone")

    def _check_step_args(self, jitter: Jitter | None, poison: Poison | None) -> None:
        """Before anything is issued: a freed executor, an input never given, jitter on nodes the graph lacks,
        poison ranges outside their tensor (a memset there would corrupt another allocation)."""
        self._check_inputs_set()
        if jitter is not None and not isinstance(jitter, Jitter):   # an AttributeError from the issue before
            raise ExecutorError(f"jitter {jitter!r}: expected a runtime.executor.Jitter or None")
        if poison is not None and not isinstance(poison, Poison):
            raise ExecutorError(f"poison {poison!r}: expected a runtime.executor.Poison or None")
        if jitter is not None:
            for nid in jitter.only:
                self.graph.node(nid)
        if poison is not None:
            for r in poison.ranges:
                check_poison_range(self.graph, self.binding, r)

    @property
    def node_launches(self) -> Mapping[str, tuple[Launch, ...]]:
        return self.program.launches

    # -- issue -------------------------------------------------------------------------------------------
    def _issue(self, jitter: Jitter | None = None, poison: Poison | None = None, *, device: int | None = None) -> None:
        """One step with the plan's exact events; with ``device``, that device's part alone with its own
        events only (what its CUDA graph captures; on one device the same sequence)."""
        devs = [device] if device is not None else [self.stream_device[0]] + [d for d in self.first
                                                                          if d != self.stream_device[0]]
        main = self.first[devs[0]]
        mine = [s for s in self.used_streams if self.stream_device[s] in devs]
        for k, d in enumerate(devs):
            st = self.streams[self.first[d]]
            with self.on(d):
                if k:
                    st.wait_for_event(self._fork[devs[0]])
                if poison is not None:
                    self.mem.poison(d, st, poison.arena, poison.ranges, self._received[d] if device is not None else ())
                self.mem.copy_inputs(d, st)
                self._fork[d].record(st)
        # every stream starts its nodes after its device's setup; with several devices, after every device's: a COPY
        # node writes into another device's arena, and device 0's COPY of ``pos`` into device 1's arena was ordered
        # after nothing of device 1's, so device 1's poison (or an input copy) could land over it
        fork = self._fork_all(devs, main) if len(devs) > 1 else self._fork[devs[0]]
        for s in mine:
            if s != main:
                with self.on(self.stream_device[s]):
                    self.streams[s].wait_for_event(fork)
        if self._pstream is not None:
            self._pstream.wait_for_event(self._fork[0])
        self._issue_steps(jitter, device)
        if self._pstream is not None:
            self._pjoin.record(self._pstream)
            self.streams[main].wait_for_event(self._pjoin)
        for s in mine:
            if s != main:
                with self.on(self.stream_device[s]):
                    self._joins[s].record(self.streams[s])
                with self.on(devs[0]):
                    self.streams[main].wait_for_event(self._joins[s])

    def _fork_all(self, devs: list[int], main: int):
        """The event after every device's setup (poison, input copies) of an eager step over several devices: ``main``
        (on ``devs[0]``) waits each other device's fork event, then records it."""
        with self.on(devs[0]):
            for d in devs[1:]:
                self.streams[main].wait_for_event(self._fork[d])
            self._fork_all_event.record(self.streams[main])
        return self._fork_all_event

    def _issue_steps(self, jitter: Jitter | None, device: int | None) -> None:
        cuda = self.cuda
        rng = random.Random(jitter.seed) if jitter is not None else None
        local = device is not None
        # PDL only kernel -> kernel on one stream: the first kernel after a copy, memset or event wait
        # is launched plainly, so it fully waits for that operation
        after_kernel = [self.pdl_always] * len(self.streams)
        pushed = None
        try:
            for step in self.program.steps:
                if local and step.device != device:
                    continue
                if self._ctxs is not None and step.device != pushed:
                    if pushed is not None:
                        cuda.Context.pop()
                    self._ctxs[step.device].push()
                    pushed = step.device
                st, si, lib = self.streams[step.stream], step.stream, self.libs[step.device]
                for i in step.waits:
                    if not (local and i in self._cross):
                        st.wait_for_event(self._events[i])
                        after_kernel[si] = self.pdl_always
                if rng is not None and (not jitter.only or step.node in jitter.only) and rng.random() < jitter.prob:
                    lib.launch(Launch("spin", (1, 1, 1), (1, 1, 1), (rng.randrange(jitter.max_cycles),)), st,
                               pdl=self.pdl_on and after_kernel[si])
                    after_kernel[si] = True
                for ln in self.program.launches[step.node]:
                    if ln.kernel == MEMCPY:
                        src, dst, nbytes = ln.args
                        cuda.memcpy_dtod_async(dst, src, nbytes, st)
                        after_kernel[si] = self.pdl_always
                    else:
                        lib.launch(ln, st, pdl=self.pdl_on and after_kernel[si] and ln.early)
                        after_kernel[si] = True
                for i in step.records:
                    if not (local and i in self._cross):
                        self._events[i].record(st)
                for ev, ln in self._prefetch.get(step.node, ()):
                    ev.record(st)
                    self._pstream.wait_for_event(ev)
                    lib.launch(ln, self._pstream, pdl=False)
        finally:
            if pushed is not None:
                cuda.Context.pop()

    def run(self, *, jitter: Jitter | None = None, poison: Poison | None = None, sync: bool = True) -> None:
        """One eager step."""
        _check_sync("run", sync)
        self._check_step_args(jitter, poison)
        self._issue(jitter, poison)
        self._stepped = self._in_flight = True
        if sync:
            self.synchronize()

    def synchronize(self) -> None:
        with self.on(self.stream_device[0]):
            self.streams[0].synchronize()
        for d in range(self.devices):
            with self.on(d):
                self.cuda.Context.synchronize()
        self._in_flight = False

    # -- CUDA graphs: one per device -------------------------------------------------------------------
    @property
    def captured(self) -> bool:
        return bool(self._graphs)

    def capture(self, *, poison: Poison | None = None, jitter: Jitter | None = None) -> None:
        """Capture each device's part of a step into its own CUDA graph and instantiate it."""
        self._check_step_args(jitter, poison)
        if self._backward:
            raise ExecutorError(f"capture: plan {self.plan.graph!r} {self._backward}; a CUDA graph cannot capture a wait "
                                "on an event recorded outside it (an eager step waits for nothing there, as in CUDA)")
        if self._stages is None:
            stage_order(self.layout)   # (raises, naming the devices)
        self.release_graph()
        self.synchronize()
        try:
            for d in self._stages:
                if d in self.first:
                    with self.on(d):
                        self._graphs[d] = capture_graph(self.streams[self.first[d]],
                                                        partial(self._issue, jitter, poison, device=d))
        except BaseException:
            # all or none: a capture that failed on device 1 left device 0's graph, and ``replay`` then ran that one
            # graph alone (device 0's half of the step, no error)
            self.release_graph()
            raise

    def replay(self, n: int = 1, *, sync: bool = True) -> None:
        """Launch the captured graphs ``n`` times (``0..MAX_STEPS``: 0 only synchronizes): each device's graph after
        those it receives from."""
        self._live()
        if not self._graphs:
            raise ExecutorStateError(f"replay: no CUDA graph captured (plan {self.plan.graph!r}): call capture() first")
        n = step_count("replay n", n, 0)
        _check_sync("replay", sync)
        self._stepped = self._stepped or n > 0
        self._in_flight = self._in_flight or n > 0
        if len(self._graphs) == 1:
            ((d, (_graph, exe)),) = self._graphs.items()
            with self.on(d):
                for _ in range(n):
                    launch_graph(exe, self.streams[self.first[d]])
        else:
            self._replay_stages(n)
        if sync:
            self.synchronize()

    def _replay_stages(self, n: int) -> None:
        main, main_dev = self.streams[0], self.stream_device[0]
        for _ in range(n):
            with self.on(main_dev):
                self._start.record(main)
            for d in self._stages:
                if d not in self._graphs:
                    continue
                with self.on(d):
                    st = self.streams[self.first[d]]
                    st.wait_for_event(self._start)  # the previous step is over everywhere (joined on main)
                    for w in self.layout.waits_on[d]:
                        st.wait_for_event(self._stage_events[w])
                    launch_graph(self._graphs[d][1], st)
                    self._stage_events[d].record(st)
            with self.on(main_dev):
                for d in self._graphs:
                    main.wait_for_event(self._stage_events[d])

    def release_graph(self) -> None:
        for d, (graph, exe) in self._graphs.items():
            with self.on(d):
                destroy_graph(graph, exe)
        self._graphs = {}

    # -- timing ------------------------------------------------------------------------------------------
    def time_steps(self, mode: str, *, steps: int = 50, repeats: int = 5, warmup: int = 3) -> list[float]:
        """Milliseconds per step for each of ``repeats`` batches of ``steps`` (events on stream 0, after
        every stream and device joined it)."""
        cuda = self.cuda
        self._live()
        if mode not in ("eager", "graph"):
            raise ExecutorError(f"time_steps mode {mode!r}: expected 'eager' or 'graph'")
        steps, repeats = step_count("time_steps steps", steps, 1), step_count("time_steps repeats", repeats, 1)
        warmup = step_count("time_steps warmup", warmup, 0)
        if steps * repeats + warmup > MAX_STEPS:
            raise ExecutorError(f"time_steps steps={steps}, repeats={repeats}, warmup={warmup}: "
                                f"{steps * repeats + warmup} steps in all, above {MAX_STEPS} (a typo, not a timing)")
        self._check_inputs_set()
        if mode == "graph" and not self._graphs:
            self.capture()

        def one() -> None:
            self.replay(1, sync=False) if mode == "graph" else self._issue()

        self._stepped = True
        for _ in range(warmup):
            one()
        self.synchronize()
        main = self.streams[0]
        out = []
        for _ in range(repeats):
            with self.on(self.stream_device[0]):
                start, end = cuda.Event(), cuda.Event()
                start.record(main)
            for _ in range(steps):
                one()
            with self.on(self.stream_device[0]):
                end.record(main)
                end.synchronize()
                out.append(start.time_till(end) / steps)
        return out

    def free(self) -> None:
        if getattr(self, "_freed", False):
            return
        self.release_graph()
        self.synchronize()
        self.mem.free()
        self._freed = True


