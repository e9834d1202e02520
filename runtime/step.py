"""What one step issues, in which order: the program that every pycuda executor and the emulator run.

``runtime.binding`` says where each tensor lives and which events each plan order entry waits on and
records. Given the addresses an executor allocated, ``program`` adds what runs at each entry — the
registry's launches (``runtime.kernels``), fusion groups as one kernel on their last member, a ``COPY``
node as one device-to-device copy — and moves the records of a fused group's earlier members after
that one kernel, so no event is recorded before the work it stands for. The single-GPU executor, the
multi-GPU executor and the CPU emulator all issue ``Program.steps`` and ``Program.launches`` and
nothing else, so the emulator's tests cover the issue order the GPUs see.

``host_order`` gives the order to issue in: the plan's, or a random one among all orders that the
issued events and each stream's program order allow — a safe plan computes the same bits in every one
of them, a plan missing an event does not (the emulator's negative controls).

Pure Python: no pycuda, no torch.
"""

from __future__ import annotations

import heapq
import numbers
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from memplan import Graph, Plan, Schedule, plan
from memplan.errors import ExecutorError
from memplan.graph import check_graph

from .binding import Binding, Step, arena_base, bind, check_views
from .kernels import GEMV_NORM_OFF, Launch, counter_bytes, plan_launches
from .kernels.ops import weight_product_rows


@dataclass(frozen=True)
class Program:
    #: the binding's steps; a fused group's earlier members record nothing, its last member records
    #: every member's events (in member order) after the fused launch
    steps: tuple[Step, ...]
    #: per node id: what runs at its step (nothing for views and a fused group's earlier members)
    launches: Mapping[str, tuple[Launch, ...]]
    #: per node id: the node whose step completes its work (itself, unless absorbed in a fused group)
    finished_by: Mapping[str, str]
    fused_groups: int


def unfusable_groups(graph: Graph, plan: Plan) -> frozenset[str]:
    """Fusion groups that cannot run as one kernel launched on their last member under this plan: an
    event after an earlier member is waited on by a node issued before the last member, or by the last member
    itself (the fused kernel, and so the event's record, would come too late for that wait); and a group that the plan does
    not run as one piece of one stream (``_not_one_piece``: verify's rule 1, which a plan run unverified may
    break), which node by node runs as the plan says."""
    pos = {nid: i for i, (nid, _) in enumerate(plan.order)}
    stream = dict(plan.order)
    on_stream: dict[int, list[str]] = {}   # each stream's nodes in issue order, and each node's place there
    place: dict[str, int] = {}
    for nid, s in plan.order:
        seq = on_stream.setdefault(s, [])
        place[nid] = len(seq)
        seq.append(nid)
    member_of: dict[str, tuple[str, str]] = {}
    bad = set()
    for name, members in graph.groups().items():
        ids = [graph.nodes[m].id for m in members]
        if _not_one_piece(ids, pos, stream, on_stream, place):
            bad.add(name)
        last = max(ids, key=pos.__getitem__)
        for m in ids:
            if m != last:
                member_of[m] = (name, last)
    for a, b in plan.events:
        if a in member_of:
            name, last = member_of[a]
            if pos[b] <= pos[last]:   # (at the last member itself: its wait came before the fused kernel's record)
                bad.add(name)
    return frozenset(bad)


def _not_one_piece(ids: list[str], pos: Mapping[str, int], stream: Mapping[str, int],
                   on_stream: Mapping[int, Sequence[str]], place: Mapping[str, int]) -> bool:
    """Whether the plan runs a group's members (``ids``, listed order) otherwise than as one piece of one stream:
    on several streams, out of their listed order, or with another node of their stream between them. Fused, such
    a group ran as one kernel on its last member's stream: an earlier member planned on another stream ran there,
    after none of the waits the plan gives it (issued on its own stream), and a node planned between two members
    on theirs ran before the first member's work. Verified plans never do this (rule 1), so their kernels stay.
    The nodes between the members are read from their stream's own sequence (``on_stream``, ``place``: each
    node's index there), as ``memplan.verify`` reads them: scanning the issue order between the members took
    every other stream's nodes too, quadratic (512 groups of 100 nodes issued round-robin over 512 streams: 8 s
    where the program took 0.3 s before)."""
    ps = [pos[m] for m in ids]
    if len({stream[m] for m in ids}) > 1 or ps != sorted(ps):
        return True
    inside, seq = set(ids), on_stream[stream[ids[0]]]
    return any(n not in inside for n in seq[place[ids[0]]: place[ids[-1]] + 1])


def program(graph: Graph, plan: Plan, binding: Binding, addr: Callable[[str], int], *,
            num_sms: Sequence[int] = (132,), wgmma: Sequence[bool] = (False,), counters: Sequence[int] = (0,),
            scratch: Sequence[Callable[[int], int] | None] = (None,), gemv_norm_min: int = GEMV_NORM_OFF) -> Program:
    """The program of one step over addresses ``addr``. Per device ``d`` (one entry each, or one for all):
    ``num_sms[d]``, whether it runs the wgmma build ``wgmma[d]``, the address of its zeroed group counters ``counters[d]`` (0: none) and its scratch
    allocator ``scratch[d]`` (see ``runtime.kernels.plan_launches``)."""
    devices = len(binding.arena_bytes)
    no_fuse = unfusable_groups(graph, plan)
    device_of = {s.node: s.device for s in binding.steps}
    launches: dict[str, tuple[Launch, ...]] = {}
    fused: dict[int, tuple[int, ...]] = {}
    for d in range(devices):
        mine = None if devices == 1 else {i for i, n in enumerate(graph.nodes) if device_of.get(n.id, 0) == d}
        per_node, f = plan_launches(graph, addr, num_sms=_of(num_sms, d), wgmma=_of(wgmma, d), no_fuse=no_fuse, counters=_of(counters, d),
                                    gemv_norm_min=gemv_norm_min, scratch=_of(scratch, d), nodes=mine)
        for i, n in enumerate(graph.nodes):
            if mine is None or i in mine:
                launches[n.id] = tuple(per_node[i])
        fused.update(f)
    finished_by = {n.id: n.id for n in graph.nodes}
    for members in fused.values():
        last = graph.nodes[members[-1]].id
        for m in members:
            finished_by[graph.nodes[m].id] = last
    groups = {graph.nodes[ms[-1]].id: [graph.nodes[m].id for m in ms] for ms in fused.values()}
    by_node = {s.node: s for s in binding.steps}
    steps = []
    for s in binding.steps:
        if finished_by[s.node] != s.node:
            s = replace(s, records=())
        elif s.node in groups:
            s = replace(s, records=tuple(i for m in groups[s.node] if m in by_node for i in by_node[m].records))
        steps.append(s)
    return Program(tuple(steps), launches, finished_by, len(fused))


def program_at(graph: Graph, step_plan: Plan, alloc: Callable[[int, str], int], *, num_sms: int = 132,
               wgmma: bool = False) -> tuple[Program, dict[str, int]]:
    """The program of (graph, plan) over addresses that ``alloc(nbytes, label)`` hands out instead of device
    memory (arenas, own roots, group counters, scratch): for tools and plan choices that need the launches
    without a GPU. Returns it with each tensor's address."""
    b = bind(graph, step_plan)
    check_views(graph, step_plan, b)
    devices = len(b.arena_bytes)
    return _program_over(graph, step_plan, b, alloc, num_sms=[num_sms] * devices, wgmma=[wgmma] * devices)


def _program_over(graph: Graph, step_plan: Plan, b: Binding, alloc: Callable[[int, str], int], *,
                  num_sms: Sequence[int], wgmma: Sequence[bool], gemv_norm_min: int = GEMV_NORM_OFF
                  ) -> tuple[Program, dict[str, int]]:
    """``program_at``'s program over a binding already made and checked: per device ``num_sms[d]`` and ``wgmma[d]``."""
    arenas = [arena_base(lambda k, d=d: alloc(k, f"arena{d}"), n, b.alignment) for d, n in enumerate(b.arena_bytes)]
    roots = {rid: alloc(n, rid) for rid, n in b.own_roots}
    addr = {t.id: b.address(t.id, arenas, roots) for t in graph.tensors}
    counters = [alloc(counter_bytes(graph), f"counters{d}") for d in range(len(arenas))]
    scratch = [lambda n, d=d: alloc(n, f"scratch{d}") for d in range(len(arenas))]
    prog = program(graph, step_plan, b, addr.__getitem__, num_sms=num_sms, wgmma=wgmma, counters=counters,
                   scratch=scratch, gemv_norm_min=gemv_norm_min)
    return prog, addr


def check_program(graph: Graph, step_plan: Plan, b: Binding, *, num_sms: Sequence[int], wgmma: Sequence[bool],
                  gemv_norm_min: int = GEMV_NORM_OFF) -> None:
    """Build the program an executor will build, over stand-in addresses, and drop it: a node with no kernel, or an
    operand the plan puts off the alignment its kernel needs (an f32 at an odd offset, attention's q off 16 bytes:
    ``KernelError`` naming both), is refused before any allocation. Why: the executors build their program over the
    device addresses, so a hand-edited plan's misaligned offset was refused only after the arenas, the weights and
    the input staging were allocated and the weights copied (every byte of an 8B model). The stand-ins are what the
    device gives (``ALLOC_ALIGNMENT``-aligned allocations, the arena base raised to the plan's alignment), so every
    kernel choice and check that reads an address's alignment decides as it will on the device."""
    nxt = [1 << 40]

    def alloc(nbytes: int, _label: str) -> int:
        addr = nxt[0]
        nxt[0] += -(-max(int(nbytes), 1) // 4096) * 4096 + 4096   # (4096-aligned, apart: above what kernels need)
        return addr

    _program_over(graph, step_plan, b, alloc, num_sms=num_sms, wgmma=wgmma, gemv_norm_min=gemv_norm_min)


def plan_step(graph: Graph, schedule: Schedule | None = None, *, batch: int) -> Plan:
    """The runtime's plan of a step of ``batch`` rows: ``memplan.plan``, with ``fused_groups`` where that
    changes the step's launches. An add+norm group over several rows whose outputs the ordinary plan
    overlaps with its inputs must read scratch copies of them (a copy kernel each, ``runtime.kernels.fused``);
    without them the 1B step at batch 4 / 16 measured 1.069 / 1.121 ms against 1.039 / 1.099 (H200, 3
    streams, one process). Where both plans run the same kernels the option buys nothing and costs arena:
    at one row every fused kernel tolerates any overlap (one block per row writes after its barrier), and
    the 1B's ordinary plans at batch 64 stage nothing, where ``fused_groups`` would take 1.40x their arena.

    ``batch`` must be the graph's own: the rows its weight products multiply (``kernels.ops.weight_product_rows``),
    else a ValueError naming both. It was taken on trust, so a batch-16 graph planned as ``batch=1`` got the
    ordinary plan, whose overlapped add+norm groups then staged copies every step (the slower plan above), and
    a batch-1 graph planned as ``batch=16`` was planned twice for nothing. A graph without weight products
    (rows 0) says nothing about its batch and is not checked."""
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise ExecutorError(f"plan_step: batch {batch!r} is not a positive number of rows")
    rows = weight_product_rows(check_graph(graph, "plan_step"))
    if rows and rows != batch:
        raise ExecutorError(f"plan_step: batch={batch} but graph {graph.name!r} is a step of {rows} rows (its weight "
                            f"products multiply {rows} rows of x); pass batch={rows} or the graph of batch {batch}")
    ordinary = plan(graph, schedule)
    if batch <= 1:
        return ordinary
    fused = plan(graph, schedule, fused_groups=True)
    return fused if _kernels(graph, ordinary) != _kernels(graph, fused) else ordinary


def _kernels(graph: Graph, step_plan: Plan) -> list[str]:
    """The kernels (names, in graph order) the step issues under ``step_plan``, over fake addresses."""
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))   # device-like addresses, every allocation apart
    prog, _ = program_at(graph, step_plan, lambda n, label: next(nxt))
    return [ln.kernel for n in graph.nodes for ln in prog.launches.get(n.id, ())]


def _of(per_device: Sequence, d: int):
    return per_device[d] if len(per_device) > 1 else per_device[0]


def host_order(steps: Sequence[Step], seed: int | None = None) -> list[Step]:
    """``steps`` as given when ``seed`` is None; else a random order among all that respect each stream's
    program order and the issued events (a wait comes after the record issued last before it; a wait
    on an event not recorded yet waits for nothing, as in CUDA)."""
    if seed is None:
        return list(steps)
    rng = random.Random(int(seed))   # a numpy integer seed (np.int64(3)) was random's raw TypeError
    recorder: dict[int, int] = {}   # event -> the step that last recorded it, as issued so far
    preds: list[list[int]] = [[] for _ in steps]
    last: dict[int, int] = {}
    for k, s in enumerate(steps):
        if s.stream in last:
            preds[k].append(last[s.stream])
        last[s.stream] = k
        preds[k].extend(recorder[e] for e in s.waits if e in recorder)
        for e in s.records:
            recorder[e] = k
    succs: list[list[int]] = [[] for _ in steps]
    for k, ps in enumerate(preds):
        for p in ps:
            succs[p].append(k)
    indeg = [len(ps) for ps in preds]
    ready = [(rng.random(), k) for k, n in enumerate(indeg) if n == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(steps[k])
        for b in succs[k]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(ready, (rng.random(), b))
    return out
