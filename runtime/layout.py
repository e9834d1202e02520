"""The device layout of a plan: who runs what where, the copies between devices, and the stage order.

A plan from ``memplan.plan(graph, devices=N)`` refers to the *split* graph (``memplan.devices``): every
node and tensor has a device, streams are global ids each owned by one device, and ``COPY`` nodes move
tensors between devices. ``layout`` reads that from the plan's binding (``runtime.binding``) alone;
``stage_order`` orders the devices so that each comes after the devices it receives from — what
per-device CUDA graphs need (``runtime.cuda_core``). A one-device plan is the layout of one device.

Pure Python: no pycuda.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import memplan
from memplan import Graph, Plan
from memplan.errors import ExecutorError
from memplan.ops import COPY_OP

from .binding import Binding, bind
from .kernels.ops import copy_problem


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
    def transfers(self) -> tuple[CopyOp, ...]:
        """The COPY nodes that move bytes between two devices: a graph's own COPY within one device (or an
        earlier split's, re-split onto one device) is ordinary work there, not traffic between GPUs."""
        return tuple(c for c in self.copies if c.src_device != c.dst_device)

    @property
    def copy_bytes(self) -> int:
        """Bytes moved between devices per step (``transfers``)."""
        return sum(c.nbytes for c in self.transfers)


def layout(graph: Graph, plan: Plan, *, check: bool = True, binding: Binding | None = None) -> Layout:
    """The device layout of ``plan``, verified against ``graph`` first unless ``check`` is False (the
    negative controls run unsafe plans on purpose); ``binding``: ``bind(graph, plan)`` if already made."""
    if check:
        memplan.verify(graph, plan)
    b = binding or bind(graph, plan)
    D = len(b.arena_bytes)
    node_device = {s.node: s.device for s in b.steps}
    tensor_device = {tid: p.device for tid, p in b.places.items()}
    stream_device: dict[int, int] = {}
    for s in b.steps:
        stream_device.setdefault(s.stream, s.device)
    streams = tuple(tuple(sorted(s for s, d in stream_device.items() if d == dev)) for dev in range(D))
    for ni, n in enumerate(graph.nodes):
        if n.op == COPY_OP:
            copy_problem(graph, ni)
    copies = tuple(CopyOp(n.id, n.inputs[0], n.outputs[0], tensor_device[n.inputs[0]], tensor_device[n.outputs[0]],
                          graph.tensor(n.outputs[0]).size) for n in graph.nodes if n.op == COPY_OP)
    cross = tuple((a, b) for a, b in plan.events if node_device[a] != node_device[b])
    waits_on: list[set[int]] = [set() for _ in range(D)]
    for a, b_ in cross:
        waits_on[node_device[b_]].add(node_device[a])
    return Layout(D, node_device, tensor_device, stream_device, streams, copies, cross,
                  tuple(frozenset(w) for w in waits_on))


def stage_order(lay: Layout) -> list[int]:
    """Devices in an order where each comes after every device it waits on (ValueError on a cycle,
    which per-device graphs cannot express)."""
    done: list[int] = []
    left = set(range(lay.devices))
    while left:
        ready = sorted(d for d in left if lay.waits_on[d] <= set(done))
        if not ready:
            raise ExecutorError(f"devices {sorted(left)} wait on each other: per-device CUDA graphs cannot order them "
                                "(eager steps run such a plan)")
        done.append(ready[0])
        left.remove(ready[0])
    return done
