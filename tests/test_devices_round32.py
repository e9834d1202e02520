"""The device split against independent checks of what docs/format.md ("Multi-device plans") promises.

For random DAGs over 1..8 devices: every original node runs exactly once over all devices; a ``COPY`` moves
exactly the bytes of the tensor it copies, from the device that holds it to the device of its readers; no
node reads a tensor on a device where it is neither produced, copied, replicated nor first read (an input);
every data dependency (cross-device ones included) is ordered by happens-before, computed here from the
plan's streams and events; and every per-device arena holds its own tensors. None of these checks calls
memplan's internals (``verify``'s own answer is checked too, separately).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import data_deps, fit_devices, graphs

import memplan
from memplan import Graph, Plan
from memplan.examples import LLAMA_TINY, llama
from memplan.verify import check

COPY = "COPY"


def happens_before(plan: Plan) -> dict[str, set[str]]:
    """node -> the nodes that happen before it (stream order and events, transitively), from the plan alone."""
    anc: dict[str, set[str]] = {}
    last: dict[int, str] = {}
    into: dict[str, list[str]] = {}
    for a, b in plan.events:
        into.setdefault(b, []).append(a)
    for v, s in plan.order:
        got: set[str] = set()
        for p in ([last[s]] if s in last else []) + into.get(v, []):
            got |= anc[p] | {p}
        anc[v] = got
        last[s] = v
    return anc


def replicas(split: Graph) -> set[str]:
    """The ids of the weight replicas (and their views) a split loads on later devices."""
    return {t.id for t in split.tensors if "replica_of" in t.attrs}


def check_split_plan(original: Graph, split: Graph, plan: Plan, n: int) -> None:
    """The promises of a split, asserted one by one."""
    tdev = {t.id: t.attrs.get("device", 0) for t in split.tensors}
    ndev = {v.id: v.attrs.get("device", 0) for v in split.nodes}
    tensors = {t.id: t for t in split.tensors}
    root = {}
    for t in split.tensors:
        r = t
        while r.view_of is not None:
            r = tensors[r.view_of]
        root[t.id] = r.id
    # each original node exactly once, on one device in 0..n-1; the rest are transfers (COPY across devices)
    moved = {v.id for v in split.nodes if v.op == COPY and tdev[v.inputs[0]] != tdev[v.outputs[0]]}
    assert len(moved) == len({t.id for t in split.tensors} - {t.id for t in original.tensors} - replicas(split))
    ids = [v.id for v in split.nodes if v.id not in moved]
    assert sorted(ids) == sorted(v.id for v in original.nodes)
    assert sorted(v for v, _ in plan.order) == sorted(v.id for v in split.nodes)
    assert all(0 <= d < n for d in ndev.values()) and all(0 <= d < n for d in tdev.values())
    if n > 1:
        assert set(ndev.values()) == set(range(n)), "a device runs nothing"
        assert plan.devices == n and dict(zip((v for v, _ in plan.order), plan.node_devices)) == ndev
        assert dict(zip((t for t, _, _ in plan.tensors), plan.tensor_devices)) == tdev
    # a view is on its root's device
    assert all(tdev[t] == tdev[root[t]] for t in tdev)
    produced_on = {o: ndev[v.id] for v in split.nodes for o in v.outputs}
    moved_to = {v.outputs[0] for v in split.nodes if v.id in moved}
    for v in split.nodes:
        d = ndev[v.id]
        if v.id in moved:
            (src,), (dst,) = v.inputs, v.outputs
            copied = tensors[dst].attrs["copy_of"]
            assert copied == src and tensors[dst].size == tensors[src].size, "a COPY moves other bytes"
            assert tensors[dst].kind == "intermediate" and tensors[dst].view_of is None
            assert v.attrs["src_device"] == tdev[src] == d != v.attrs["dst_device"] == tdev[dst]
            continue
        for t in v.inputs + v.outputs:
            assert tdev[t] == d, f"{v.id} on device {d} touches {t} on device {tdev[t]}"
        for t in v.inputs:   # the bytes read are produced, copied, replicated or loaded on this device
            r = tensors[root[t]]
            assert (r.kind in ("input", "weight") or root[t] in produced_on or t in produced_on), t
            if t in moved_to:   # made by a COPY issued on the source device (a push)
                assert tdev[t] == d != produced_on[t]
    # every data dependency happens before its reader (the cross-device ones through a COPY and an event)
    hb = happens_before(plan)
    for v, deps in data_deps(split).items():
        for w in deps:
            assert w in hb[v], f"{w} (device {ndev[w]}) does not happen before its reader {v} (device {ndev[v]})"
    # each device's tensors fit its own arena
    arenas = plan.device_arena_bytes or (plan.arena_bytes,)
    for (_t, off, size), d in zip(plan.tensors, plan.tensor_devices or (0,) * len(plan.tensors), strict=True):
        if off is not None:
            assert off + size <= arenas[d] <= plan.arena_bytes
    assert check(split, plan) == []


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=12), n=st.integers(1, 8), streams=st.sampled_from([None, 1, 2, "auto"]),
       max_events=st.sampled_from([None, 0, 1]))
def test_random_splits_keep_every_promise(g, n, streams, max_events):
    opts = fit_devices(g, {"devices": n})
    n = opts["devices"]
    if streams is None and max_events is not None:
        max_events = None
    planned = memplan.plan_graph(g, devices=n, streams=streams, max_events=max_events)
    check_split_plan(g, planned.graph, planned.plan, n)


@pytest.mark.parametrize("devices", [1, 2, 3])
def test_a_split_graph_split_again_states_where_every_copy_runs(devices):
    """Every COPY's ``src_device`` / ``dst_device`` attrs are the devices of its input and output (docs/format.md:
    "a COPY node's attrs also give src_device and dst_device"). Splitting a split graph again kept the earlier
    split's attrs on its copies: ``copy:l0.out@dev1`` said 0 -> 1 while both its tensors lay on device 1."""
    g = llama(LLAMA_TINY)
    first = memplan.plan_graph(g, devices=2).graph
    again = memplan.plan_graph(first, devices=devices)
    if devices > 1:
        check_split_plan(first, again.graph, again.plan, devices)
    tdev = {t.id: t.attrs.get("device", 0) for t in again.graph.tensors}
    copies = [v for v in again.graph.nodes if v.op == COPY and "dst_device" in v.attrs]
    assert len(copies) >= 4
    for v in copies:
        assert (v.attrs["src_device"], v.attrs["dst_device"]) == (tdev[v.inputs[0]], tdev[v.outputs[0]]), v
        assert v.attrs["device"] == v.attrs["src_device"]
