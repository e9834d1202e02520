"""``reuse_after`` / ``reuse_table`` on a multi-device plan list only the root's own device's streams in ``free_from``.

Each device has its own arena (docs/format.md, "Multi-device plans"), so no stream of device 1 can reuse device 0's
bytes; ``free_from`` listed every stream of the plan (``chain`` over two devices: ``x`` of device 0 "free from"
``op2`` on device 1's stream). ``last`` keeps every stream with an access (a COPY node of device 0 writes device
1's tensor, and its completion is what frees it)."""

from __future__ import annotations

import pytest
from test_reuse_round34 import _expected

import memplan
from memplan import examples as E
from memplan.plan import plan_graph


def _split(name: str, devices: int):
    g = E.llama(E.LLAMA_TINY) if name == "llama" else getattr(E, name)()
    planned = plan_graph(g, devices=devices, streams=2)
    return planned.graph, planned.plan


def _device_streams(plan) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for (_, s), d in zip(plan.order, plan.node_devices):
        out.setdefault(d, set()).add(s)
    return out


def test_chain_over_two_devices_frees_device_0s_bytes_on_device_0_only():
    g, plan = _split("chain", 2)
    assert dict(zip([n for n, _ in plan.order], plan.node_devices))["op2"] == 1
    assert memplan.reuse_after(g, plan, "x").free_from == {0: "op1"}            # was {0: 'op1', 1: 'op2'}
    assert memplan.reuse_after(g, plan, "t2").free_from == {1: None}            # was {0: None, 1: None}
    r = memplan.reuse_after(g, plan, "t1@dev1")   # written by device 0's COPY, read on device 1
    assert r.free_from == {1: "op3"}


@pytest.mark.parametrize("name,devices", [("chain", 2), ("fanout_join15", 2), ("fanout_join15", 3),
                                          ("qkv_attention", 2), ("qkv_attention", 3), ("llama", 2), ("llama", 3)])
def test_free_from_lists_the_roots_devices_streams_with_the_contracts_answers(name, devices):
    g, plan = _split(name, devices)
    assert plan.devices == devices
    streams = _device_streams(plan)
    device = {t[0]: d for t, d in zip(plan.tensors, plan.tensor_devices)}
    table = memplan.reuse_table(g, plan)
    for t in g.tensors:
        r = table[t.id]
        freed, last, free_from = _expected(g, plan, t.id)
        assert (r.freed, r.last) == (freed, last), t.id
        if freed:
            own = streams[device[r.root]]
            assert set(r.free_from) == own, t.id
            assert r.free_from == {s: n for s, n in free_from.items() if s in own}, t.id
        assert memplan.reuse_after(g, plan, t.id) == r


@pytest.mark.parametrize("name", ["chain", "qkv_attention", "llama"])
def test_a_one_device_plan_lists_every_stream_as_before(name):
    g = E.llama(E.LLAMA_TINY) if name == "llama" else getattr(E, name)()
    plan = memplan.plan(g, streams=3)
    for t in g.tensors:
        r = memplan.reuse_after(g, plan, t.id)
        assert (r.freed, r.last, r.free_from) == _expected(g, plan, t.id), t.id
