"""Pipeline split over several GPUs: contiguous stages, explicit COPY nodes, one arena per device.

Why: users split a model's layers across GPUs (llama.cpp's ``--split-mode layer``). Each device then
needs its own arena, and the streams of one device must respect the events that carry data across
devices. llama.cpp keeps stream concurrency to one GPU because its pipeline ordering and its stream
ordering were never reconciled; here both are one schedule over one happens-before relation, so the
planner and the verifier treat a cross-device event like any other event.

How:

1. *Stages.* The graph's units (fusion groups, or single nodes) are split into ``n`` contiguous
   stages of the listed (topological) order, minimising the largest stage cost (node ``cost`` or the
   cost model of ``memplan.optimize``), then the largest stage weight bytes, with every stage's weights
   within ``device_capacity`` (``partition``; exact up to float rounding: a bisection over the cost
   threshold with a furthest-cut greedy, which is optimal for contiguous partitions). Among the splits
   whose largest stage is within one unit's cost of that optimum, the one crossing the fewest bytes
   is taken (a DP over stage ends): a boundary between layers copies one residual, a boundary inside
   a layer copies several activations.
   A stage boundary may not cut through a *pinned* root — any tensor written through a view (a KV
   cache written by SET_ROWS) — so such a root and all its accesses stay on one device: a buffer is
   never written on two devices. A read-only weight read on several devices (tied embeddings) is
   replicated: each later device loads its own ``name@devN`` (kind ``weight``, ``attrs.replica_of``),
   counted in that device's weight bytes (the stage split counts them against ``device_capacity``: a
   ``shared_weights`` replica); weights are never copied per step.
2. *Copies.* Every other tensor lives on the device of its producer (an ``input`` on the first device
   that reads it). A node reading a tensor that lives on an earlier device reads a copy instead: a
   ``COPY`` node whose output is a new ``intermediate`` tensor on the reader's device (one copy per
   tensor and destination device). Data flows only forward, from lower to higher devices. A view read where a
   tensor above it on its view chain is read too is a view of that tensor's copy (each byte sent once).
3. *Where the copy runs.* A COPY node is issued on the **source** device's stream (a push, as
   ``cuMemcpyPeerAsync`` on the source stream). The source stream then orders the copy after the
   producer by itself, and the sent buffer is free for reuse on the source as soon as the copy is
   issued there; the destination waits on one cross-device event (COPY -> first reader). Issuing it
   on the destination instead would make the source buffer's last access a node of another device,
   which the source never waits for in a forward pipeline: the buffer would stay pinned to the end
   of the source's stage.
4. *Schedules.* Each device's nodes are scheduled alone (serial, or ``graph_optimize`` with the
   ``streams=`` semantics of ``plan()``; a device over its ``device_capacity`` serially, then in a low-memory
   order of its stage: ``split_with_serial``); device ``d``'s streams get the contiguous global id range
   ``stream_ranges[d]``; the merged schedule issues device 0's nodes, then device 1's, ... and gets
   the fewest events the data needs (``schedule_with_events``), cross-device ones included.
5. *Arenas.* Happens-before and lifetimes are computed once over the merged schedule; each device's
   buffer problem keeps only that device's roots (``buffer_problem(..., roots=)``) and is solved on
   its own. Tensors on different devices never share an arena, so they never conflict. A device's
   buffer intervals are bounded by its own streams (a later device never waits back, so counting its
   streams would stretch every interval to the end of the run and make the conflict sweep quadratic).

Every function here is pure; the results are frozen dataclasses and deterministic.

Rooms: ``partition.py`` (the stage split, over numbers only), ``rewrite.py`` (which cuts a graph allows,
and the split graph with COPY nodes), ``split.py`` (stages, copies and per-device schedules together:
``split_devices``). Planning the arenas is ``memplan.plan``'s job, through the same pipeline as one
device (``plan(graph, devices=N)``).
"""

from __future__ import annotations

from ..ops import COPY_OP
from .partition import partition
from .rewrite import (
    COPY_FLOOR_US,
    LINK_BYTES_PER_US,
    copy_cost_us,
    crossing_bytes,
    cut_constraints,
    device_subgraph,
    insert_copies,
    pinned_roots,
    shared_weights,
    units_of,
)
from .split import DeviceSplit, check_capacity, check_devices, split_devices

__all__ = ["COPY_FLOOR_US", "COPY_OP", "DeviceSplit", "LINK_BYTES_PER_US", "check_capacity", "check_devices",
           "copy_cost_us", "crossing_bytes", "cut_constraints", "device_subgraph", "insert_copies", "partition",
           "pinned_roots", "shared_weights", "split_devices", "units_of"]
