"""Plans made unsafe on purpose: the negative controls of the runtime tests (CPU emulation and GPU); and
one safe plan that reuses nothing (``plan_with_roots_apart``).

A control must be a plan ``memplan.verify`` rejects and an executor still runs (``check_plan=False``),
so that a wrong result can be shown to come from the missing happens-before and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import memplan
from memplan import Graph, Plan


def plan_without_event(plan: Plan, event: tuple[str, str]) -> Plan:
    """The plan with one event removed (a negative control: it should race)."""
    if event not in plan.events:
        raise ValueError(f"plan has no event {event!r}")
    return replace(plan, events=tuple(e for e in plan.events if e != event))


def plan_with_a_view_moved_off_its_roots_device(split_graph: Graph, plan: Plan) -> tuple[str, int, Plan]:
    """(view id, the device the plan gives it, ``plan`` with that view on the other device of two): the first view
    of ``split_graph`` the plan places, moved off its root's device (a split plan ``bind`` must refuse)."""
    devs = dict(zip((t for t, _o, _s in plan.tensors), plan.tensor_devices))
    view = next(t.id for t in split_graph.tensors if t.view_of is not None and t.id in devs)
    moved = replace(plan, tensor_devices=tuple(1 - d if t == view else d
                                               for (t, _o, _s), d in zip(plan.tensors, plan.tensor_devices)))
    return view, devs[view], moved


def plan_with_offsets_of(plan: Plan, other: Plan) -> Plan:
    """``plan``'s order and events with ``other``'s offsets and arena (e.g. serial lifetimes applied to a
    multi-stream schedule, the assumption ggml's allocator makes)."""
    return replace(plan, tensors=other.tensors, arena_bytes=other.arena_bytes)


def plan_with_roots_apart(graph: Graph, plan: Plan) -> Plan:
    """``plan``'s schedule with every arena root at bytes of its own (256-aligned): nothing reuses memory, so
    after a step every result is still in the arena, and in-place results land apart from their inputs
    (which the planner's own plans rarely do on small models). A safe plan, unlike the others here."""
    offs, at = {}, 0
    for ti, t in enumerate(graph.tensors):
        if graph.is_root(ti) and graph.in_arena(ti):
            offs[t.id] = at
            at += -(-max(t.size, 1) // 256) * 256
    tensors = []
    for tid, off, size in plan.tensors:
        ti = graph.tensor_index[tid]
        root = graph.tensors[graph.root[ti]].id
        tensors.append((tid, None if off is None else offs[root] + graph.offset_in_root(ti), size))
    return replace(plan, arena_bytes=max(at, 1), lower_bound_bytes=0, tensors=tuple(tensors))


def required_events(graph: Graph, plan: Plan) -> Iterable[tuple[str, str]]:
    """Events whose removal makes ``memplan.verify`` reject the plan."""
    for ev in plan.events:
        try:
            memplan.verify(graph, plan_without_event(plan, ev))
        except memplan.UnsafePlan:
            yield ev
