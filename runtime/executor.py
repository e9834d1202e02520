"""Run a memplan Plan on the GPU: one arena, the plan's streams and events, eager or as a CUDA graph.

Why it is built this way: the plan is the contract. Every arena tensor is ``arena + plan offset``
(views included), weights and the KV cache live outside the arena, each node is issued on its plan
stream in plan order, waiting on exactly the plan's events and recording them after. If the plan is
unsafe, the GPU result shows it — which is what the jitter tests rely on.

A step is: poison (optional, tests) -> copy the inputs from device staging copies into the arena (an
input's bytes may be reused once it is read, so the next step must write them again) -> record a
fork event on stream 0 that every other stream waits on -> the nodes -> every other stream records a
join event that stream 0 waits on. The same issue sequence is what a CUDA graph captures
(``cuStreamBeginCapture`` on stream 0 through ``cuda.bindings.driver``; side streams join the capture
through the fork event and leave it through the join events), so eager and graph runs execute the
same dependency DAG. pycuda has no graph API, hence the driver bindings on pycuda's handles.

pycuda is imported when an Executor is created, never at module import.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

import memplan
from memplan import Graph, Plan

from .kernels import GEMV_NORM_OFF, KernelLibrary, Launch, counter_bytes, plan_launches

F32_NAN = 0x7FC00000
F16_NAN = 0x7E00
EVENT_DISABLE_TIMING = 0x2
STREAM_NON_BLOCKING = 0x1


class CudaError(RuntimeError):
    """A CUDA driver call (through cuda.bindings) failed; the message names the call."""


def check(result, what: str):
    """Unpack a cuda.bindings result tuple, raising CudaError unless it is CUDA_SUCCESS."""
    from cuda.bindings import driver as cu

    err = result[0]
    if err != cu.CUresult.CUDA_SUCCESS:
        _, msg = cu.cuGetErrorString(err)
        raise CudaError(f"{what} failed: {err!r} ({msg.decode() if msg else '?'})")
    return result[1] if len(result) == 2 else result[1:]


@dataclass(frozen=True)
class Jitter:
    """Random spin delays before nodes: ``prob`` per node, up to ``max_cycles`` SM clocks each; with
    ``only``, before those nodes only (a targeted delay: e.g. make one stream's branch late)."""

    seed: int = 0
    prob: float = 0.5
    max_cycles: int = 200_000
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Poison:
    """Fill the arena (f32 NaN) and the given byte ranges of weight tensors (f16 NaN) before a step."""

    arena: bool = True
    ranges: tuple = ()   # objects with .tensor, .offset, .nbytes (runtime.models.llama.PoisonRange)


class Executor:
    """Holds the arena, weights, streams, events and per-node kernels of one (graph, plan)."""

    def __init__(self, graph: Graph, plan: Plan, *, weights: Mapping[str, np.ndarray] | None = None,
                 inputs: Mapping[str, np.ndarray] | None = None, random_weights_seed: int | None = None,
                 library: KernelLibrary | None = None, check_plan: bool = True,
                 weights_from: Executor | None = None, pdl_policy: str = "chain",
                 prefetch: Iterable[tuple[str, str, int]] = (), gemv_norm_min: int = GEMV_NORM_OFF):
        """``weights``: host arrays per weight tensor (others get random f16 / 1.0 f32 values on the
        device when ``random_weights_seed`` is given, else zeros). ``check_plan=False`` runs a plan that
        ``memplan.verify`` rejects (the negative controls do exactly that). ``weights_from`` shares
        another executor's weights and cache (same graph) instead of allocating them again.
        ``pdl_policy`` (kernels of a PDL library only): "chain" launches a kernel with programmatic
        serialization only when the previous operation on its stream was a kernel launch (not a copy,
        memset or event wait); "always" uses it for every kernel (kept for ``runtime.pdl_check``).
        ``prefetch``: ``(after_node, weight, nbytes)`` triples; after ``after_node`` is issued, an extra
        stream (forked from it by an event) pulls the first ``nbytes`` of ``weight`` into L2. Weights
        are never written by a step, so this adds no hazard; it only moves HBM traffic into phases
        where latency-bound kernels leave the memory idle. ``gemv_norm_min``: fused MUL_MAT+ADD+RMS_NORM+MUL
        groups whose weight has at least this many elements run as one GEMV+add+norm kernel, the others as
        a GEMV then the add+norm kernel (the same bits; default: never, which measured faster)."""
        import pycuda.driver as cuda

        self.cuda = cuda
        if check_plan:
            memplan.verify(graph, plan)
        self.graph, self.plan = graph, plan
        if pdl_policy not in ("chain", "always"):
            raise ValueError(f"pdl_policy {pdl_policy!r}: expected 'chain' or 'always'")
        self.pdl_always = pdl_policy == "always"
        self.lib = library or KernelLibrary()
        offsets = plan.offsets()
        self.arena_bytes = max(int(plan.arena_bytes), 256)
        self._allocs = []
        self.arena = self._alloc(self.arena_bytes)
        # weights (and the KV cache) outside the arena, one allocation per root weight
        self.weight_ptr: dict[str, int] = {}
        if weights_from is not None:
            self.weight_ptr = dict(weights_from.weight_ptr)
        for t in graph.tensors:
            if t.kind == "weight" and t.view_of is None and t.id not in self.weight_ptr:
                self.weight_ptr[t.id] = self._alloc(max(t.size, 1))
        self.addr_of: dict[str, int] = {}
        for ti, t in enumerate(graph.tensors):
            root = graph.tensors[graph.root[ti]]
            if root.kind == "weight":
                self.addr_of[t.id] = self.weight_ptr[root.id] + graph.offset_in_root(ti)
            else:
                off = offsets.get(t.id)
                if off is None:
                    raise memplan.PlanFormatError(f"plan gives arena tensor {t.id!r} no offset")
                self.addr_of[t.id] = self.arena + int(off)
        if weights_from is None:
            self._init_weights(weights or {}, random_weights_seed)
        # inputs: device staging copies, copied into the arena at the start of every step
        self.inputs: dict[str, tuple[int, int]] = {}
        for t in graph.tensors:
            if t.kind == "input" and t.view_of is None:
                self.inputs[t.id] = (self._alloc(max(t.size, 1)), t.size)
        if inputs:
            self.set_inputs(inputs)
        # streams and events
        self.streams = [cuda.Stream(flags=STREAM_NON_BLOCKING) for _ in range(max(plan.streams, 1))]
        self._fork = cuda.Event(EVENT_DISABLE_TIMING)
        self._joins = [cuda.Event(EVENT_DISABLE_TIMING) for _ in self.streams]
        self._waits: dict[str, list] = {}
        self._records: dict[str, list] = {}
        for a, b in plan.events:
            ev = cuda.Event(EVENT_DISABLE_TIMING)
            self._records.setdefault(a, []).append(ev)
            self._waits.setdefault(b, []).append(ev)
        self._prefetch: dict[str, list] = {}
        self._pstream = None
        prefetch = tuple(prefetch)
        if prefetch:
            self._pstream = cuda.Stream(flags=STREAM_NON_BLOCKING)
            self._pjoin = cuda.Event(EVENT_DISABLE_TIMING)
            sink = self._alloc(256)
            for after, wid, nbytes in prefetch:
                graph.node(after)
                t = graph.tensor(wid)
                # a KV cache is allowed too: the prefetch only loads (into L2, values discarded), so racing
                # with the step's SET_ROWS writes cannot change any result
                if t.kind != "weight" or t.view_of is not None:
                    raise ValueError(f"prefetch {wid!r}: only root weight-kind tensors (weights, KV caches)")
                n16 = min(int(nbytes), t.size) // 16
                ln = Launch("l2_prefetch", (self.lib.num_sms, 1, 1), (256, 1, 1), (self.weight_ptr[wid], n16, sink))
                self._prefetch.setdefault(after, []).append((cuda.Event(EVENT_DISABLE_TIMING), ln))
        # zeroed counters of the fused kernels that elect a last block (each resets its own)
        self.counters = self._alloc(counter_bytes(graph))
        cuda.memset_d8(self.counters, 0, counter_bytes(graph))
        per_node, fused = plan_launches(graph, self.addr_of.__getitem__, num_sms=self.lib.num_sms,
                                        no_fuse=unfusable_groups(graph, plan), counters=self.counters,
                                        gemv_norm_min=gemv_norm_min, scratch=self._alloc)
        self.node_launches: dict[str, list[Launch]] = {n.id: per_node[i] for i, n in enumerate(graph.nodes)}
        # a fused group launches on its last member; the events (and prefetches) after its other members
        # are recorded after that launch
        self._after: dict[str, tuple[str, ...]] = {}
        for last, members in fused.items():
            for m in members[:-1]:
                self._after[graph.nodes[m].id] = ()
            self._after[graph.nodes[last].id] = tuple(graph.nodes[m].id for m in members)
        self.fused_groups = len(fused)
        self._graph_exec = None
        self._graph = None

    # -- memory ------------------------------------------------------------------------------
    def _alloc(self, nbytes: int) -> int:
        a = self.cuda.mem_alloc(nbytes)
        self._allocs.append(a)
        return int(a)

    def _init_weights(self, weights: Mapping[str, np.ndarray], seed: int | None) -> None:
        cuda = self.cuda
        for i, t in enumerate(self.graph.tensors):
            if t.kind != "weight" or t.view_of is not None:
                continue
            ptr = self.weight_ptr[t.id]
            if t.id in weights:
                a = np.ascontiguousarray(weights[t.id])
                if a.nbytes != t.size:
                    raise ValueError(f"weight {t.id!r}: {a.nbytes} bytes given, the graph says {t.size}")
                cuda.memcpy_htod(ptr, a)
            elif seed is not None and t.attrs.get("dtype") == "f16":
                n = t.size // 2
                k = int(t.attrs["shape"][-1])
                scale = float(np.sqrt(3.0 / k)) if not t.id.endswith("_cache") else 1.0
                self.lib.funcs["fill_uniform_f16"].prepared_call(
                    (min(max(1, n // 256), 65535), 1, 1), (256, 1, 1), ptr, n, seed * 1000003 + i, scale)
            elif seed is not None and t.attrs.get("dtype") == "f32":
                cuda.memset_d32(ptr, 0x3F800000, t.size // 4)   # 1.0: norm weights
            else:
                cuda.memset_d8(ptr, 0, t.size)
        cuda.Context.synchronize()

    def set_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        for tid, arr in inputs.items():
            if tid not in self.inputs:
                raise ValueError(f"{tid!r} is not an input tensor of graph {self.graph.name!r}")
            ptr, size = self.inputs[tid]
            a = np.ascontiguousarray(arr)
            if a.nbytes != size:
                raise ValueError(f"input {tid!r}: {a.nbytes} bytes given, the graph says {size}")
            self.cuda.memcpy_htod(ptr, a)

    def read(self, tid: str, dtype=np.float32) -> np.ndarray:
        """Copy a tensor back (after ``synchronize``); shaped by its ``shape`` attr."""
        t = self.graph.tensor(tid)
        out = np.empty(t.size // np.dtype(dtype).itemsize, dtype=dtype)
        self.cuda.memcpy_dtoh(out, self.addr_of[tid])
        shape = t.attrs.get("shape")
        return out.reshape(shape) if shape else out

    def write_weight(self, tid: str, arr: np.ndarray) -> None:
        self.cuda.memcpy_htod(self.addr_of[tid], np.ascontiguousarray(arr))

    # -- issue ---------------------------------------------------------------------------------
    def _issue(self, jitter: Jitter | None = None, poison: Poison | None = None) -> None:
        cuda = self.cuda
        s0 = self.streams[0]
        if poison is not None:
            if poison.arena:
                cuda.memset_d32_async(self.arena, F32_NAN, self.arena_bytes // 4, s0)
            for r in poison.ranges:
                cuda.memset_d16_async(self.weight_ptr[r.tensor] + r.offset, F16_NAN, r.nbytes // 2, s0)
        for tid, (ptr, size) in self.inputs.items():
            if size:
                cuda.memcpy_dtod_async(self.addr_of[tid], ptr, size, s0)
        self._fork.record(s0)
        for s in self.streams[1:]:
            s.wait_for_event(self._fork)
        ps = self._pstream
        if ps is not None:
            ps.wait_for_event(self._fork)
        rng = random.Random(jitter.seed) if jitter is not None else None
        lib = self.lib
        # PDL only kernel -> kernel on one stream: the first kernel after a copy, memset or event wait
        # is launched plainly, so it fully waits for that operation
        after_kernel = [self.pdl_always] * len(self.streams)
        for nid, si in self.plan.order:
            st = self.streams[si]
            for ev in self._waits.get(nid, ()):
                st.wait_for_event(ev)
                after_kernel[si] = self.pdl_always
            if rng is not None and (not jitter.only or nid in jitter.only) and rng.random() < jitter.prob:
                lib.launch(Launch("spin", (1, 1, 1), (1, 1, 1), (rng.randrange(jitter.max_cycles),)), st,
                           pdl=after_kernel[si])
                after_kernel[si] = True
            for ln in self.node_launches[nid]:
                lib.launch(ln, st, pdl=after_kernel[si])
                after_kernel[si] = True
            for done in self._after.get(nid, (nid,)):
                for ev in self._records.get(done, ()):
                    ev.record(st)
                for ev, ln in self._prefetch.get(done, ()):
                    ev.record(st)
                    ps.wait_for_event(ev)
                    lib.launch(ln, ps, pdl=False)
        if ps is not None:
            self._pjoin.record(ps)
            s0.wait_for_event(self._pjoin)
        for i, s in enumerate(self.streams[1:], start=1):
            self._joins[i].record(s)
            s0.wait_for_event(self._joins[i])

    def run(self, *, jitter: Jitter | None = None, poison: Poison | None = None, sync: bool = True) -> None:
        """One eager step."""
        self._issue(jitter, poison)
        if sync:
            self.synchronize()

    def synchronize(self) -> None:
        self.streams[0].synchronize()
        self.cuda.Context.synchronize()

    # -- CUDA graphs ---------------------------------------------------------------------------
    def capture(self, *, poison: Poison | None = None, jitter: Jitter | None = None) -> None:
        """Capture one whole step (all streams) into a CUDA graph and instantiate it."""
        from cuda.bindings import driver as cu

        self.release_graph()
        self.synchronize()
        h = cu.CUstream(int(self.streams[0].handle))
        check(cu.cuStreamBeginCapture(h, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
              "cuStreamBeginCapture")
        try:
            self._issue(jitter, poison)
        except BaseException:
            cu.cuStreamEndCapture(h)
            raise
        self._graph = check(cu.cuStreamEndCapture(h), "cuStreamEndCapture")
        instantiate = getattr(cu, "cuGraphInstantiateWithFlags", None) or cu.cuGraphInstantiate  # 12.x | 13.x
        self._graph_exec = check(instantiate(self._graph, 0), "cuGraphInstantiate")

    def replay(self, n: int = 1, *, sync: bool = True) -> None:
        """Launch the captured graph ``n`` times on stream 0."""
        from cuda.bindings import driver as cu

        if self._graph_exec is None:
            raise RuntimeError("no CUDA graph captured: call capture() first")
        h = cu.CUstream(int(self.streams[0].handle))
        for _ in range(n):
            check(cu.cuGraphLaunch(self._graph_exec, h), "cuGraphLaunch")
        if sync:
            self.synchronize()

    def release_graph(self) -> None:
        from cuda.bindings import driver as cu

        if self._graph_exec is not None:
            check(cu.cuGraphExecDestroy(self._graph_exec), "cuGraphExecDestroy")
            self._graph_exec = None
        if self._graph is not None:
            check(cu.cuGraphDestroy(self._graph), "cuGraphDestroy")
            self._graph = None

    # -- timing ----------------------------------------------------------------------------------
    def time_steps(self, mode: str, *, steps: int = 50, repeats: int = 5, warmup: int = 3) -> list[float]:
        """Milliseconds per step for each of ``repeats`` batches of ``steps`` (events on stream 0)."""
        cuda = self.cuda
        if mode == "graph" and self._graph_exec is None:
            self.capture()

        def one() -> None:
            if mode == "graph":
                self.replay(1, sync=False)
            else:
                self._issue()

        for _ in range(warmup):
            one()
        self.synchronize()
        out = []
        for _ in range(repeats):
            start, end = cuda.Event(), cuda.Event()
            start.record(self.streams[0])
            for _ in range(steps):
                one()
            end.record(self.streams[0])
            end.synchronize()
            out.append(start.time_till(end) / steps)
        return out

    def free(self) -> None:
        self.release_graph()
        self.synchronize()
        for a in self._allocs:
            a.free()
        self._allocs = []


def unfusable_groups(graph: Graph, plan: Plan) -> frozenset[str]:
    """Fusion groups that cannot run as one kernel launched on their last member under this plan: an
    event after an earlier member is waited on by a node issued before the last member (the fused
    kernel, and so the event's record, would come too late for that wait)."""
    pos = {nid: i for i, (nid, _) in enumerate(plan.order)}
    member_of: dict[str, tuple[str, str]] = {}
    for name, members in graph.groups().items():
        ids = [graph.nodes[m].id for m in members]
        last = max(ids, key=pos.__getitem__)
        for m in ids:
            if m != last:
                member_of[m] = (name, last)
    bad = set()
    for a, b in plan.events:
        if a in member_of:
            name, last = member_of[a]
            if pos[b] < pos[last]:
                bad.add(name)
    return frozenset(bad)


def plan_without_event(plan: Plan, event: tuple[str, str]) -> Plan:
    """The plan with one event removed (a negative control: it should race)."""
    from dataclasses import replace

    if event not in plan.events:
        raise ValueError(f"plan has no event {event!r}")
    return replace(plan, events=tuple(e for e in plan.events if e != event))


def plan_with_offsets_of(plan: Plan, other: Plan) -> Plan:
    """``plan``'s order and events with ``other``'s offsets and arena (e.g. serial lifetimes applied to a
    multi-stream schedule, the assumption ggml's allocator makes)."""
    from dataclasses import replace

    return replace(plan, tensors=other.tensors, arena_bytes=other.arena_bytes)


def required_events(graph: Graph, plan: Plan) -> Iterable[tuple[str, str]]:
    """Events whose removal makes ``memplan.verify`` reject the plan."""
    for ev in plan.events:
        try:
            memplan.verify(graph, plan_without_event(plan, ev))
        except memplan.UnsafePlan:
            yield ev
