"""Run a multi-device memplan plan on several GPUs: one arena per device, peer copies, cross-device events.

Why it is built this way: the plan is the contract, as in ``runtime.executor`` (one GPU). A plan from
``memplan.plan(graph, devices=N)`` refers to the *split* graph (``memplan.devices``): every node and
tensor has a device, streams are global ids each owned by one device, and ``COPY`` nodes move tensors
between devices. Here:

- one primary context per device (pycuda ``Device(d).retain_primary_context()``), pushed while that
  device's work is issued; peer access enabled between every pair that allows it;
- each device gets its arena (``device_arena_bytes[d]``), its weights, its streams and its own compiled
  kernel library (``runtime.kernels``); a tensor's address is ``arena[device] + offset``;
- a ``COPY`` node is a device-to-device ``cuMemcpyDtoDAsync`` on the node's (source) stream — with
  unified addressing the driver sees both devices, and with peer access it goes over NVLink/PCIe
  directly;
- eager issue follows the plan exactly: host order, the plan's streams, each event recorded on
  ``after``'s stream (in its device's context) and waited on ``before``'s stream, on whatever device;
- CUDA graphs: one graph *per device* (``capture``), captured from that device's part of the issue order
  with only its own events; between the graphs, the cross-device events become stage events (device d's
  graph starts after the graphs of the devices it receives from). That is coarser than the plan's events,
  so it only adds happens-before: still safe. (A single graph spanning devices through captured cross-
  device event waits is what CUDA would need for the exact events; per-device graphs work everywhere.)

A step is: inputs copied from device staging buffers into each device's arena -> a fork event on global
stream 0 that every other stream (all devices) waits on -> the nodes -> a join of every stream back into
stream 0. The next step's fork then orders it after the whole previous step on every device.

The CPU part (``Layout``: which device runs what, copies, cross-device events, stage dependencies) is pure
and tested anywhere; pycuda is imported only when an executor is created, so this module imports
without a GPU. No multi-GPU machine was available when it was written: the GPU tests are marked
``gpu`` and skip unless two devices are present.

``python -m runtime.multi_gpu``: the benchmark (tokens/s of an 8B-like decode and prefill on 1 GPU vs
split over 2, per-device arenas, bytes copied between devices per step).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

import memplan
from memplan import Graph, Plan

COPY_OP = "COPY"
EVENT_DISABLE_TIMING = 0x2
STREAM_NON_BLOCKING = 0x1


# ---- CPU part: the layout of a multi-device plan -----------------------------------------------------

@dataclass(frozen=True)
class CopyOp:
    """A COPY node: ``nbytes`` from ``src`` (on ``src_device``) to ``dst`` (on ``dst_device``)."""

    node: str
    src: str
    dst: str
    src_device: int
    dst_device: int
    nbytes: int


@dataclass(frozen=True)
class Layout:
    """Who runs what where, read from a plan (and its split graph) alone."""

    devices: int
    node_device: Mapping[str, int]
    tensor_device: Mapping[str, int]
    stream_device: Mapping[int, int]
    device_streams: tuple[tuple[int, ...], ...]   # per device: its global stream ids, ascending
    copies: tuple[CopyOp, ...]
    cross_events: tuple[tuple[str, str], ...]
    #: per device: the devices whose work it waits on through cross-device events (stage dependencies)
    waits_on: tuple[frozenset[int], ...]

    @property
    def copy_bytes(self) -> int:
        return sum(c.nbytes for c in self.copies)


def layout(graph: Graph, plan: Plan, *, check: bool = True) -> Layout:
    """The device layout of ``plan``, verified against ``graph`` first unless ``check`` is False (the
    negative controls run unsafe plans on purpose)."""
    if check:
        memplan.verify(graph, plan)
    D = max(plan.devices, 1)
    if D > 1:
        node_device = {nid: d for (nid, _s), d in zip(plan.order, plan.node_devices)}
        tensor_device = {tid: d for (tid, _o, _z), d in zip(plan.tensors, plan.tensor_devices)}
    else:
        node_device = {nid: 0 for nid, _s in plan.order}
        tensor_device = {tid: 0 for tid, _o, _z in plan.tensors}
    stream_device: dict[int, int] = {}
    for nid, s in plan.order:
        stream_device.setdefault(s, node_device[nid])
    streams = [sorted(s for s, d in stream_device.items() if d == dev) for dev in range(D)]
    copies = []
    for node in graph.nodes:
        if node.op == COPY_OP:
            src, dst = node.inputs[0], node.outputs[0]
            copies.append(CopyOp(node.id, src, dst, tensor_device[_root(graph, src)],
                                 tensor_device[_root(graph, dst)], graph.tensor(dst).size))
    cross = tuple((a, b) for a, b in plan.events if node_device[a] != node_device[b])
    waits_on: list[set[int]] = [set() for _ in range(D)]
    for a, b in cross:
        waits_on[node_device[b]].add(node_device[a])
    return Layout(D, node_device, tensor_device, stream_device, tuple(tuple(s) for s in streams), tuple(copies),
                  cross, tuple(frozenset(w) for w in waits_on))


def stage_order(lay: Layout) -> list[int]:
    """Devices in an order where each comes after every device it waits on (ValueError on a cycle,
    which per-device graphs cannot express)."""
    done: list[int] = []
    left = set(range(lay.devices))
    while left:
        ready = sorted(d for d in left if lay.waits_on[d] <= set(done))
        if not ready:
            raise ValueError(f"devices {sorted(left)} wait on each other: per-device CUDA graphs cannot order them")
        done.append(ready[0])
        left.remove(ready[0])
    return done


def _root(graph: Graph, tid: str) -> str:
    return graph.tensors[graph.root[graph.tensor_index[tid]]].id


def linear_extension(graph: Graph, plan: Plan, seed: int | None = None) -> list[str]:
    """A host order that respects happens-before only: the plan's order when ``seed`` is None, else a
    random one among all orders consistent with each stream's program order and the events. A safe
    plan computes the same result in every one of them; one missing an event does not."""
    if seed is None:
        return [nid for nid, _s in plan.order]
    import heapq
    import random

    rng = random.Random(seed)
    preds: dict[str, list[str]] = {nid: [] for nid, _s in plan.order}
    last: dict[int, str] = {}
    for nid, s in plan.order:
        if s in last:
            preds[nid].append(last[s])
        last[s] = nid
    for a, b in plan.events:
        preds[b].append(a)
    succs: dict[str, list[str]] = {nid: [] for nid in preds}
    for b, ps in preds.items():
        for a in ps:
            succs[a].append(b)
    indeg = {nid: len(ps) for nid, ps in preds.items()}
    ready = [(rng.random(), nid) for nid, k in indeg.items() if k == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, nid = heapq.heappop(ready)
        out.append(nid)
        for b in succs[nid]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(ready, (rng.random(), b))
    return out


def emulate_multi(graph: Graph, plan: Plan, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray],
                  *, seed: int | None = None, poison: bool = True, check: bool = True) -> dict[str, np.ndarray]:
    """Run one step of a multi-device plan on the CPU (``runtime.emulate``'s kernels over byte buffers):
    one NaN-poisoned arena per device at its own addresses, COPY nodes as byte copies between them,
    nodes in the plan's order or in a random order that happens-before allows (``seed``). Returns the
    output tensors (f32)."""
    from dataclasses import replace

    from .emulate import Memory, _f32, run_launch
    from .kernels import launches_for

    lay = layout(graph, plan, check=check)
    mem = Memory()
    sizes = plan.device_arena_bytes if lay.devices > 1 else (plan.arena_bytes,)
    arenas = [mem.alloc(max(int(b), 1)) for b in sizes]
    if poison:
        for a, b in zip(arenas, sizes):
            mem.view(a, max(int(b), 1) // 4, np.float32)[:] = np.nan
    offsets = plan.offsets()
    wptr = {}
    for t in graph.tensors:
        if t.kind == "weight" and t.view_of is None:
            wptr[t.id] = mem.alloc(t.size)
            src = t.attrs.get("replica_of", t.id)  # a weight read on several devices is loaded on each
            if src in weights:
                mem.view(wptr[t.id], t.size, np.uint8)[:] = np.ascontiguousarray(weights[src]).view(np.uint8).reshape(-1)
    addr = {}
    for ti, t in enumerate(graph.tensors):
        root = graph.tensors[graph.root[ti]]
        if root.kind == "weight":
            addr[t.id] = wptr[root.id] + graph.offset_in_root(ti)
        else:
            addr[t.id] = arenas[lay.tensor_device[root.id]] + int(offsets[t.id])
    for tid, arr in inputs.items():
        a = np.ascontiguousarray(arr)
        mem.view(addr[tid], a.nbytes, np.uint8)[:] = a.view(np.uint8).reshape(-1)
    kgraph = Graph(graph.name, graph.tensors,
                   tuple(replace(n, op="NONE") if n.op == COPY_OP else n for n in graph.nodes), graph.alignment)
    per_node = launches_for(kgraph, addr.__getitem__)
    idx = graph.node_index
    copies = {c.node: c for c in lay.copies}
    for nid in linear_extension(graph, plan, seed):
        c = copies.get(nid)
        if c is not None:
            if c.nbytes:
                mem.view(addr[c.dst], c.nbytes, np.uint8)[:] = mem.view(addr[c.src], c.nbytes, np.uint8)
            continue
        for ln in per_node[idx[nid]]:
            run_launch(mem, ln)
    return {t.id: _f32(mem, addr[t.id], t.size // 4).copy().reshape(t.attrs.get("shape", [-1]))
            for t in graph.tensors if t.kind == "output"}


# ---- GPU part ---------------------------------------------------------------------------------------------

class MultiGpuExecutor:
    """Arenas, weights, streams, events and kernels of one multi-device (split graph, plan)."""

    def __init__(self, graph: Graph, plan: Plan, *, inputs: Mapping[str, np.ndarray] | None = None,
                 weights: Mapping[str, np.ndarray] | None = None, random_weights_seed: int | None = None,
                 first_device: int = 0):
        import pycuda.autoprimaryctx  # noqa: F401  (as KernelLibrary does; imported before any push of ours)
        import pycuda.driver as cuda

        from .kernels import KernelLibrary, launches_for

        self.cuda = cuda
        self.graph, self.plan = graph, plan
        self.lay = layout(graph, plan)
        D = self.lay.devices
        if cuda.Device.count() < first_device + D:
            raise RuntimeError(f"plan needs {D} GPUs, {cuda.Device.count()} visible")
        self.devs = [cuda.Device(first_device + d) for d in range(D)]
        self.ctxs = [dev.retain_primary_context() for dev in self.devs]
        for a in range(D):
            for b in range(D):
                if a != b and self.devs[a].can_access_peer(self.devs[b]):
                    with self._on(a):
                        try:
                            self.ctxs[a].enable_peer_access(self.ctxs[b])
                        except cuda.Error:  # already enabled (primary contexts are shared)
                            pass
        self._allocs: list = []
        self.libs = []
        self.arena = []
        offsets = plan.offsets()
        dev_arena = plan.device_arena_bytes if D > 1 else (plan.arena_bytes,)
        for d in range(D):
            with self._on(d):
                self.libs.append(KernelLibrary())
                self.arena.append(self._alloc(max(int(dev_arena[d]), 256)))
        # weights (and KV caches) outside the arenas, on the device the plan puts them
        self.weight_ptr: dict[str, int] = {}
        for t in graph.tensors:
            if t.kind == "weight" and t.view_of is None:
                with self._on(self.lay.tensor_device[t.id]):
                    self.weight_ptr[t.id] = self._alloc(max(t.size, 1))
        self.addr_of: dict[str, int] = {}
        for ti, t in enumerate(graph.tensors):
            root = graph.tensors[graph.root[ti]]
            if root.kind == "weight":
                self.addr_of[t.id] = self.weight_ptr[root.id] + graph.offset_in_root(ti)
            else:
                self.addr_of[t.id] = self.arena[self.lay.tensor_device[root.id]] + int(offsets[t.id])
        self._init_weights(weights or {}, random_weights_seed)
        self.inputs: dict[str, tuple[int, int, int]] = {}  # id -> (device, staging ptr, bytes)
        for t in graph.tensors:
            if t.kind == "input" and t.view_of is None:
                d = self.lay.tensor_device[t.id]
                with self._on(d):
                    self.inputs[t.id] = (d, self._alloc(max(t.size, 1)), t.size)
        if inputs:
            self.set_inputs(inputs)
        # streams (global ids), events (created on the recording stream's device)
        self.streams: dict[int, object] = {}
        for d in range(D):
            with self._on(d):
                for s in self.lay.device_streams[d] or ():
                    self.streams[s] = cuda.Stream(flags=STREAM_NON_BLOCKING)
        self.main = min(self.streams)  # global stream 0's role: fork and join
        self.stream_of = dict(plan.order)
        self._records: dict[str, list] = {}
        self._waits: dict[str, list] = {}
        self._cross: set[int] = set()
        for a, b in plan.events:
            with self._on(self.lay.node_device[a]):
                ev = cuda.Event(EVENT_DISABLE_TIMING)
            self._records.setdefault(a, []).append(ev)
            self._waits.setdefault(b, []).append(ev)
            if self.lay.node_device[a] != self.lay.node_device[b]:
                self._cross.add(id(ev))
        self._fork = self._new_events(self.main)
        self._joins = {s: self._new_events(s) for s in self.streams}
        self._local_fork = {ss[0]: self._new_events(ss[0]) for ss in self.lay.device_streams if ss}
        # kernels: COPY nodes become copies, so the kernel registry sees them as no-ops
        from dataclasses import replace

        kgraph = Graph(graph.name, graph.tensors,
                       tuple(replace(n, op="NONE") if n.op == COPY_OP else n for n in graph.nodes), graph.alignment)
        self.node_launches = {}
        for d in range(D):
            per_node = launches_for(kgraph, self.addr_of.__getitem__, num_sms=self.libs[d].num_sms)
            for i, n in enumerate(graph.nodes):
                if self.lay.node_device[n.id] == d:
                    self.node_launches[n.id] = per_node[i]
        self.copy_of = {c.node: c for c in self.lay.copies}
        self._graphs: dict[int, tuple] = {}
        self._stage_events: dict[int, object] = {}

    # -- contexts and memory ------------------------------------------------------------------------
    def _on(self, d: int):
        ctx = self.ctxs[d]
        cuda = self.cuda

        class _Ctx:
            def __enter__(self_inner):
                ctx.push()

            def __exit__(self_inner, *exc):
                cuda.Context.pop()

        return _Ctx()

    def _alloc(self, nbytes: int) -> int:
        a = self.cuda.mem_alloc(nbytes)
        self._allocs.append(a)
        return int(a)

    def _new_events(self, s: int):
        with self._on(self.lay.stream_device[s]):
            return self.cuda.Event(EVENT_DISABLE_TIMING)

    def _init_weights(self, weights: Mapping[str, np.ndarray], seed: int | None) -> None:
        """As ``runtime.executor.Executor`` does (same values for the same seed and tensor index); a
        replica (``attrs.replica_of``: a weight read on several devices) gets its original's values."""
        cuda = self.cuda
        for t in self.graph.tensors:
            if t.kind != "weight" or t.view_of is not None:
                continue
            src = t.attrs.get("replica_of", t.id)
            i = self.graph.tensor_index[src]
            d = self.lay.tensor_device[t.id]
            ptr = self.weight_ptr[t.id]
            with self._on(d):
                if src in weights:
                    cuda.memcpy_htod(ptr, np.ascontiguousarray(weights[src]))
                elif seed is not None and t.attrs.get("dtype") == "f16":
                    n = t.size // 2
                    k = int(t.attrs["shape"][-1])
                    scale = float(np.sqrt(3.0 / k)) if not src.endswith("_cache") else 1.0
                    self.libs[d].funcs["fill_uniform_f16"].prepared_call(
                        (min(max(1, n // 256), 65535), 1, 1), (256, 1, 1), ptr, n, seed * 1000003 + i, scale)
                elif seed is not None and t.attrs.get("dtype") == "f32":
                    cuda.memset_d32(ptr, 0x3F800000, t.size // 4)
                else:
                    cuda.memset_d8(ptr, 0, t.size)
                cuda.Context.synchronize()

    def set_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        for tid, arr in inputs.items():
            d, ptr, size = self.inputs[tid]
            a = np.ascontiguousarray(arr)
            if a.nbytes != size:
                raise ValueError(f"input {tid!r}: {a.nbytes} bytes given, the graph says {size}")
            with self._on(d):
                self.cuda.memcpy_htod(ptr, a)

    def read(self, tid: str, dtype=np.float32) -> np.ndarray:
        t = self.graph.tensor(tid)
        out = np.empty(t.size // np.dtype(dtype).itemsize, dtype=dtype)
        with self._on(self.lay.tensor_device[_root(self.graph, tid)]):
            self.cuda.memcpy_dtoh(out, self.addr_of[tid])
        shape = t.attrs.get("shape")
        return out.reshape(shape) if shape else out

    # -- issue ---------------------------------------------------------------------------------------
    def _node(self, nid: str, st, *, local_only: bool) -> None:
        cuda = self.cuda
        for ev in self._waits.get(nid, ()):
            if not (local_only and id(ev) in self._cross):
                st.wait_for_event(ev)
        c = self.copy_of.get(nid)
        if c is not None:
            if c.nbytes:
                cuda.memcpy_dtod_async(self.addr_of[c.dst], self.addr_of[c.src], c.nbytes, st)
        else:
            d = self.lay.node_device[nid]
            for ln in self.node_launches[nid]:
                self.libs[d].launch(ln, st, pdl=False)
        for ev in self._records.get(nid, ()):
            if not (local_only and id(ev) in self._cross):
                ev.record(st)

    def _inputs_on(self, d: int, st) -> None:
        for tid, (dev, ptr, size) in self.inputs.items():
            if dev == d and size:
                self.cuda.memcpy_dtod_async(self.addr_of[tid], ptr, size, st)

    def _issue(self) -> None:
        """One eager step with the plan's exact events (host order = plan order)."""
        main = self.streams[self.main]
        with self._on(self.lay.stream_device[self.main]):
            self._fork.record(main)
        for s, st in self.streams.items():
            if s != self.main:
                with self._on(self.lay.stream_device[s]):
                    st.wait_for_event(self._fork)
        for d in range(self.lay.devices):
            if self.lay.device_streams[d]:
                with self._on(d):
                    self._inputs_on(d, self.streams[self.lay.device_streams[d][0]])
                    # the other streams of d see the inputs through a local fork
                    ev = self._local_fork[self.lay.device_streams[d][0]]
                    ev.record(self.streams[self.lay.device_streams[d][0]])
                    for s in self.lay.device_streams[d][1:]:
                        self.streams[s].wait_for_event(ev)
        current = None
        ctx_open = None
        for nid, s in self.plan.order:
            d = self.lay.node_device[nid]
            if d != current:
                if ctx_open is not None:
                    ctx_open.__exit__(None, None, None)
                ctx_open = self._on(d)
                ctx_open.__enter__()
                current = d
            self._node(nid, self.streams[s], local_only=False)
        if ctx_open is not None:
            ctx_open.__exit__(None, None, None)
        for s, st in self.streams.items():
            if s != self.main:
                with self._on(self.lay.stream_device[s]):
                    self._joins[s].record(st)
                with self._on(self.lay.stream_device[self.main]):
                    main.wait_for_event(self._joins[s])

    def run(self, *, sync: bool = True) -> None:
        self._issue()
        if sync:
            self.synchronize()

    def synchronize(self) -> None:
        for d in range(self.lay.devices):
            with self._on(d):
                self.cuda.Context.synchronize()

    # -- CUDA graphs: one per device ------------------------------------------------------------------
    def capture(self) -> None:
        """Capture each device's part of a step into its own CUDA graph (local events only)."""
        from cuda.bindings import driver as cu

        from .executor import check

        self.release_graphs()
        self.synchronize()
        for d in range(self.lay.devices):
            ss = self.lay.device_streams[d]
            if not ss:
                continue
            with self._on(d):
                first = self.streams[ss[0]]
                h = cu.CUstream(int(first.handle))
                check(cu.cuStreamBeginCapture(h, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                      "cuStreamBeginCapture")
                try:
                    fork = self.cuda.Event(EVENT_DISABLE_TIMING)
                    self._inputs_on(d, first)
                    fork.record(first)
                    for s in ss[1:]:
                        self.streams[s].wait_for_event(fork)
                    for nid, s in self.plan.order:
                        if self.lay.node_device[nid] == d:
                            self._node(nid, self.streams[s], local_only=True)
                    joins = []
                    for s in ss[1:]:
                        ev = self.cuda.Event(EVENT_DISABLE_TIMING)
                        ev.record(self.streams[s])
                        first.wait_for_event(ev)
                        joins.append(ev)
                except BaseException:
                    cu.cuStreamEndCapture(h)
                    raise
                graph = check(cu.cuStreamEndCapture(h), "cuStreamEndCapture")
                instantiate = getattr(cu, "cuGraphInstantiateWithFlags", None) or cu.cuGraphInstantiate
                exe = check(instantiate(graph, 0), "cuGraphInstantiate")
                self._graphs[d] = (graph, exe, fork, joins)
                self._stage_events[d] = self.cuda.Event(EVENT_DISABLE_TIMING)

    def replay(self, n: int = 1, *, sync: bool = True) -> None:
        """Launch the per-device graphs ``n`` times: each device's graph after those it receives from."""
        from cuda.bindings import driver as cu

        from .executor import check

        if not self._graphs:
            raise RuntimeError("no CUDA graphs captured: call capture() first")
        order = stage_order(self.lay)
        first = {d: self.streams[self.lay.device_streams[d][0]] for d in self._graphs}
        main_dev = self.lay.stream_device[self.main]
        start = self._fork
        for _ in range(n):
            with self._on(main_dev):
                start.record(self.streams[self.main])
            for d in order:
                if d not in self._graphs:
                    continue
                with self._on(d):
                    st = first[d]
                    st.wait_for_event(start)  # the previous step is over everywhere (joined on main)
                    for w in self.lay.waits_on[d]:
                        st.wait_for_event(self._stage_events[w])
                    check(cu.cuGraphLaunch(self._graphs[d][1], cu.CUstream(int(st.handle))), "cuGraphLaunch")
                    self._stage_events[d].record(st)
            with self._on(main_dev):
                for d in self._graphs:
                    self.streams[self.main].wait_for_event(self._stage_events[d])
        if sync:
            self.synchronize()

    def release_graphs(self) -> None:
        from cuda.bindings import driver as cu

        for d, (graph, exe, _fork, _joins) in self._graphs.items():
            with self._on(d):
                cu.cuGraphExecDestroy(exe)
                cu.cuGraphDestroy(graph)
        self._graphs = {}

    def time_steps(self, mode: str, *, steps: int = 20, repeats: int = 5, warmup: int = 2) -> list[float]:
        """Milliseconds per step (events on the main stream, after every device joined it)."""
        cuda = self.cuda
        if mode == "graph" and not self._graphs:
            self.capture()

        def one() -> None:
            self.replay(1, sync=False) if mode == "graph" else self._issue()

        for _ in range(warmup):
            one()
        self.synchronize()
        main_dev = self.lay.stream_device[self.main]
        out = []
        for _ in range(repeats):
            with self._on(main_dev):
                a, b = cuda.Event(), cuda.Event()
                a.record(self.streams[self.main])
            for _ in range(steps):
                one()
            with self._on(main_dev):
                b.record(self.streams[self.main])
                b.synchronize()
                out.append(a.time_till(b) / steps)
        return out

    def free(self) -> None:
        self.release_graphs()
        self.synchronize()
        for a in self._allocs:
            a.free()
        self._allocs = []


# ---- benchmark: python -m runtime.multi_gpu ------------------------------------------------------------

def bench_config(name: str, batch: int, devices: int, *, steps: int, rounds: int, log=print) -> dict:
    """1 GPU (runtime.executor, serial plan) vs ``devices`` GPUs (this module): tokens/s, arenas, copies."""
    from .executor import Executor
    from .models import llama as L

    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg)
    inputs = L.make_inputs(cfg, seed=1)
    single = memplan.plan(g)
    split, multi = memplan.plan_devices(g, devices)
    memplan.verify(split.graph, multi)
    lay = layout(split.graph, multi)
    t0 = time.perf_counter()
    one = Executor(g, single, inputs=inputs, random_weights_seed=1)
    many = MultiGpuExecutor(split.graph, multi, inputs=inputs, random_weights_seed=1)
    log(f"  setup {time.perf_counter() - t0:.1f}s")
    one.run()
    many.run()
    same_eager = bool(np.array_equal(one.read("logits"), many.read("logits")))
    many.capture()
    many.replay(1)
    same_graph = bool(np.array_equal(one.read("logits"), many.read("logits")))
    one.capture()
    samples: dict[str, list[float]] = {"1 GPU graph": [], f"{devices} GPUs eager": [], f"{devices} GPUs graph": []}
    for _ in range(rounds):
        samples["1 GPU graph"] += one.time_steps("graph", steps=steps, repeats=1, warmup=1)
        samples[f"{devices} GPUs eager"] += many.time_steps("eager", steps=max(steps // 10, 1), repeats=1, warmup=1)
        samples[f"{devices} GPUs graph"] += many.time_steps("graph", steps=steps, repeats=1, warmup=1)
    modes = {}
    for k, v in samples.items():
        ms = statistics.median(v)
        modes[k] = {"ms_per_step": round(ms, 4), "tokens_per_s": round(batch / (ms / 1e3), 1),
                    "ms_spread": [round(min(v), 4), round(max(v), 4)]}
    many.free()
    one.free()
    return {
        "config": name, "batch": batch, "devices": devices, "modes": modes,
        "same_logits_eager": same_eager, "same_logits_graph": same_graph,
        "single_arena_bytes": single.arena_bytes, "device_arena_bytes": list(multi.device_arena_bytes),
        "weight_bytes_per_device": list(split.weight_bytes), "copy_bytes_per_step": lay.copy_bytes,
        "copies": len(lay.copies), "cross_device_events": len(lay.cross_events),
        "stage_cost_us": list(split.stage_cost_us),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.multi_gpu", description="1 GPU vs a pipeline split "
                                 "over several GPUs: tokens/s, per-device arenas, bytes copied between devices")
    ap.add_argument("--configs", default="8b")
    ap.add_argument("--batches", default="1,32", help="1: decode; >1: prefill of that many tokens")
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="multi_gpu_bench.json")
    args = ap.parse_args(argv)
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() < args.devices:
        print(f"needs {args.devices} GPUs, {cuda.Device.count()} visible", file=sys.stderr)
        return 2
    results = []
    for name in args.configs.split(","):
        for b in (int(x) for x in args.batches.split(",")):
            print(f"{name} batch {b} over {args.devices} GPUs", flush=True)
            r = bench_config(name, b, args.devices, steps=args.steps, rounds=args.rounds)
            results.append(r)
            print(json.dumps(r), flush=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print("| config | batch | mode | ms/step | tokens/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        for k, v in r["modes"].items():
            print(f"| {r['config']} | {r['batch']} | {k} | {v['ms_per_step']:.3f} | {v['tokens_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
