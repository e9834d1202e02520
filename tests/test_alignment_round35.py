"""``alignment=`` over several devices: ``plan_devices`` takes it as ``plan(graph, devices=N, alignment=A)`` does.

Session 34 added ``plan(graph, alignment=A)``; ``plan(graph, devices=N, alignment=A)`` applied it (one alignment for
every device's arena: a split plan has one ``alignment`` field, docs/format.md), but ``plan_devices`` refused the
option as unknown, and ``plan_graph``'s ``split.graph`` kept the run's alignment while ``Planned.graph`` had the
caller's back. A list of alignments (one per device) is refused naming the reason: the format records one."""

from __future__ import annotations

import pytest

import memplan
from memplan import examples as E
from memplan.errors import GraphError
from memplan.plan import plan_graph


def _graph() -> memplan.Graph:
    return E.llama(E.LLAMA_TINY)


def _aligned(split_graph: memplan.Graph, plan, alignment: int) -> bool:
    roots = {t.id for t in split_graph.tensors if t.view_of is None}
    return all(off is None or off % alignment == 0 for tid, off, _ in plan.tensors if tid in roots)


def test_plan_devices_takes_alignment_and_records_it():
    g = _graph()
    split, plan = memplan.plan_devices(g, 2, alignment=4096)
    assert plan.alignment == 4096 and plan.devices == 2
    assert split.graph.alignment == g.alignment == 256          # the caller's graph's own, verified against
    assert _aligned(split.graph, plan, 4096)
    assert memplan.verify(split.graph, plan) is None
    # the same plan as plan(graph, devices=2, alignment=4096)'s
    assert plan.to_json() == memplan.plan(g, devices=2, alignment=4096).to_json()


def test_plan_devices_without_alignment_is_unchanged():
    g = _graph()
    _, plan = memplan.plan_devices(g, 2)
    assert plan.alignment == 256
    assert plan.to_json() == memplan.plan(g, devices=2).to_json()


def test_plan_graphs_split_keeps_the_callers_alignment_too():
    g = _graph()
    planned = plan_graph(g, devices=2, alignment=4096)
    assert planned.graph.alignment == planned.split.graph.alignment == 256
    assert planned.split.graph is planned.graph


@pytest.mark.parametrize("call", ["plan", "plan_devices"])
def test_one_alignment_per_device_is_refused_naming_the_one_field(call):
    g = _graph()
    with pytest.raises(GraphError, match=r"alignment \[256, 4096\]: give one power of two for every device"):
        if call == "plan":
            memplan.plan(g, devices=2, alignment=[256, 4096])
        else:
            memplan.plan_devices(g, 2, alignment=[256, 4096])


@pytest.mark.parametrize("value, text", [(128, "below the alignment 256"), (3, "not a positive power of two")])
def test_plan_devices_refuses_what_plan_refuses(value, text):
    with pytest.raises(GraphError, match=text):
        memplan.plan_devices(_graph(), 2, alignment=value)
