"""The device split against independent checks of what docs/format.md ("Multi-device plans") promises.

For random DAGs over 1..8 devices: every original node runs exactly once over all devices; a ``COPY`` moves
exactly the bytes of the tensor it copies, from the device that holds it to the device of its readers; no
node reads a tensor on a device where it is neither produced, copied, replicated nor first read (an input);
every data dependency (cross-device ones included) is ordered by happens-before, computed here from the
plan's streams and events; and every per-device arena holds its own tensors. None of these checks calls
memplan's internals (``verify``'s own answer is checked too, separately).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import data_deps, fit_devices, graphs
from test_devices import brute_force, check_partition

import memplan
from memplan import Graph, Plan
from memplan.devices import partition
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


def assert_no_early_reuse(split: Graph, plan: Plan, hb: dict[str, set[str]], root: dict[str, str]) -> None:
    """Contract rule 3 per device, from its text: two roots on one device whose bytes overlap have every access
    of one before every access of the other (an input's first access is before every node, an output's last
    after every node; a node writing ``out`` in place over ``in`` may be the last of one and the first of the
    other). Tensors on different devices never conflict. Alignment of every root offset too."""
    kind = {t.id: t.kind for t in split.tensors}
    dev = dict(zip((t for t, _, _ in plan.tensors), plan.tensor_devices or (0,) * len(plan.tensors)))
    place = {t: (off, size) for t, off, size in plan.tensors if off is not None and root[t] == t and size > 0}
    assert all(off % split.alignment == 0 for off, _ in place.values())
    acc: dict[str, set[str]] = {r: set() for r in place}
    inplace: set[tuple[str, str, str]] = set()   # (node, root written over, root written)
    for v in split.nodes:
        for t in v.inputs + v.outputs:
            if root[t] in acc:
                acc[root[t]].add(v.id)
        inplace.update((v.id, root[i], root[o]) for o, i in v.inplace)

    def before(a: str, b: str) -> bool:   # every access of root a happens before every access of root b
        if kind[a] == "output" or kind[b] == "input":
            return False
        return all(x in hb[y] or (x == y and (x, a, b) in inplace) for x in acc[a] for y in acc[b])

    roots = sorted(place, key=lambda r: (dev[r], place[r][0]))
    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            if dev[b] != dev[a] or place[b][0] >= place[a][0] + place[a][1]:
                continue
            assert before(a, b) or before(b, a), f"{a} and {b} overlap on device {dev[a]} unordered"


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
    # a view read on a device that reads a tensor above it on its view chain too is a view of that one's copy there
    # (round 76), at the same bytes of the same root
    inside = {t.id for t in split.tensors if "copy_of" in t.attrs and t.view_of is not None}
    for t in inside:
        top = tensors[root[t]]
        assert top.id in {v.outputs[0] for v in split.nodes if v.id in moved} and tdev[top.id] == tdev[t]
        a, b = original.tensor_index[top.attrs["copy_of"]], original.tensor_index[tensors[t].attrs["copy_of"]]
        assert original.root[a] == original.root[b]
        assert original.root_offset[b] - original.root_offset[a] == split.root_offset[split.tensor_index[t]]
    assert len(moved) == len({t.id for t in split.tensors} - {t.id for t in original.tensors} - replicas(split)
                             - inside)
    ids = [v.id for v in split.nodes if v.id not in moved]
    assert sorted(ids) == sorted(v.id for v in original.nodes)
    stage = [ndev[v.id] for v in original.nodes]
    assert stage == sorted(stage), "stages are contiguous in the listed order"
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
    assert_no_early_reuse(split, plan, hb, root)
    assert check(split, plan) == []


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=12), n=st.integers(1, 8), streams=st.sampled_from([None, 1, 2, "auto"]),
       max_events=st.sampled_from([None, 0, 1]), fused=st.booleans())
def test_random_splits_keep_every_promise(g, n, streams, max_events, fused):
    opts = fit_devices(g, {"devices": n})
    n = opts["devices"]
    if streams is None and max_events is not None:
        max_events = None
    planned = memplan.plan_graph(g, devices=n, streams=streams, max_events=max_events, fused_groups=fused)
    check_split_plan(g, planned.graph, planned.plan, n)
    plan = planned.plan
    if n > 1:   # streams and max_events are per device (docs/scheduling.md); cross-device events come on top
        dev = dict(zip((v for v, _ in plan.order), plan.node_devices))
        for d in range(n):
            own = {s for (v, s) in plan.order if dev[v] == d}
            assert len(own) <= (1 if streams is None else 8 if streams == "auto" else streams)
            within = [e for e in plan.events if dev[e[0]] == dev[e[1]] == d]
            assert max_events is None or len(within) <= max_events
        assert all(dev[a] <= dev[b] for a, b in plan.events), "a device waits on a later one"
        # each stream on one device, device d's streams a contiguous range after device d-1's
        ranges = [sorted({s for (v, s) in plan.order if dev[v] == d}) for d in range(n)]
        flat = [s for r in ranges for s in r]
        assert flat == list(range(len(flat))) and plan.streams == len(flat)
        order_dev = [dev[v] for v, _ in plan.order]
        assert order_dev == sorted(order_dev), "issue order is device 0's nodes, then device 1's, ..."


@pytest.mark.parametrize("devices", [1, 2, 3])
def test_a_split_graph_split_again_states_where_every_copy_runs(devices):
    """Every COPY's ``src_device`` / ``dst_device`` attrs are the devices of its input and output (docs/format.md:
    "a COPY node's attrs also give src_device and dst_device"). Splitting a split graph again kept the earlier
    split's attrs on its copies: ``copy:l0.out@dev1`` said 0 -> 1 while both its tensors lay on device 1."""
    g = llama(LLAMA_TINY)
    first = memplan.plan_graph(g, devices=2).graph
    again = memplan.plan_graph(first, devices=devices)
    if devices > 1:
        from split_semantic import check_split

        check_split_plan(first, again.graph, again.plan, devices)
        assert check_split(first, again.graph, again.plan) == []   # computes what the first split graph does
    tdev = {t.id: t.attrs.get("device", 0) for t in again.graph.tensors}
    copies = [v for v in again.graph.nodes if v.op == COPY and "dst_device" in v.attrs]
    assert len(copies) >= 4
    for v in copies:
        assert (v.attrs["src_device"], v.attrs["dst_device"]) == (tdev[v.inputs[0]], tdev[v.outputs[0]]), v
        assert v.attrs["device"] == v.attrs["src_device"]


# ---- capacities ------------------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs(max_nodes=10), n=st.integers(2, 8), data=st.data())
def test_a_capacity_is_met_on_every_device_or_refused_naming_one_that_it_does_not_fit(g, n, data):
    """Any ``device_capacity``: each device's weights plus arena fit it, or BudgetError names a device and a
    need over the capacity (never a hang, never a plan over it)."""
    n = fit_devices(g, {"devices": n})["devices"]
    free = memplan.plan_graph(g, devices=n)
    if n > 1:
        weights = free.plan.solver["per_device"]
        most = max(d["weight_bytes"] + d["arena_bytes"] for d in weights)
    else:
        most = sum(t.size for t in g.tensors if t.kind == "weight" and t.view_of is None) + free.plan.arena_bytes
    cap = data.draw(st.one_of(st.integers(0, most + 1), st.just(most), st.just(max(most - 1, 0))))
    try:
        planned = memplan.plan_graph(g, devices=n, device_capacity=cap)
    except memplan.BudgetError as exc:
        msg = str(exc)
        assert f"over the device_capacity of {cap} B" in msg, msg
        d = int(msg.split("device ")[1].split()[0])
        # "needs W B of weights (...)", or "needs W B of weights plus an arena of A B = T B"
        need = int((msg.split(" = ")[1] if " = " in msg else msg.split(" needs ")[1]).split()[0])
        assert 0 <= d < n and need > cap
        assert cap < most, "refused a capacity the free split fits"
        return
    if n > 1:
        check_split_plan(g, planned.graph, planned.plan, n)
        for d in planned.plan.solver["per_device"]:
            assert d["weight_bytes"] + d["arena_bytes"] <= cap


# ---- views, in-place and graph inputs/outputs across a boundary ------------------------------------------

def _across() -> Graph:
    """Every node its own device (devices = nodes): a view of a tensor and an in-place write over it read on
    later devices, an input first read on device 2, a weight read on devices 0 and 3, an output read later,
    an unread input and an unread output."""
    b = memplan.GraphBuilder("across", alignment=8)
    b.input("x", 64)
    b.input("late", 48)
    b.input("unread", 8)
    b.weight("w", 40)
    b.node("a", "MUL", ["x", "w"], b.output("t", 64), cost=3)
    b.view("v", "t", 32, 32)
    b.node("b", "ADD", ["v"], b.intermediate("u", 32), inplace={"u": "v"}, cost=3)
    b.node("c", "ADD", ["late", "u", "t"], b.intermediate("k", 48), cost=3)
    b.node("d", "MUL", ["k", "w", "v"], b.output("y", 48), inplace={"y": "k"}, cost=3)
    b.node("e", "ADD", ["y"], b.output("z", 8), cost=3)
    return b.build()


@pytest.mark.parametrize("devices", [2, 3, 4, 5])
@pytest.mark.parametrize("streams", [None, 2])
def test_views_in_place_and_graph_io_across_device_boundaries(devices, streams):
    from split_semantic import check_split

    g = _across()
    planned = memplan.plan_graph(g, devices=devices, streams=streams)
    split, plan = planned.graph, planned.plan
    check_split_plan(g, split, plan, devices)
    assert check_split(g, split, plan) == []
    tdev = {t.id: t.attrs["device"] for t in split.tensors}
    ndev = {v.id: v.attrs["device"] for v in split.nodes}
    assert tdev["late"] == ndev["c"] and tdev["unread"] == 0 and tdev["x"] == ndev["a"] == 0
    assert tdev["t"] == tdev["v"] == ndev["a"] and tdev["z"] == ndev["e"]
    # the view is copied as its own bytes (32), not its root's (64), wherever a later device reads it
    for v in split.nodes:
        if v.op == COPY and v.inputs[0] == "v":
            assert split.tensor(v.outputs[0]).size == 32
    # the weight is replicated, never copied
    assert not [v for v in split.nodes if v.op == COPY and v.inputs[0] == "w"]
    if devices == 5:
        assert {t.id for t in split.tensors if t.attrs.get("replica_of") == "w"} == {"w@dev3"}


# ---- determinism ----------------------------------------------------------------------------------------

_CLI_SPLITS = """
import hashlib, os, sys
from memplan.cli import main
h = hashlib.sha256()
d = sys.argv[1]
for name in sorted(f for f in os.listdir(d) if f.endswith(".graph.json")):
    for devices, streams in (("2", "auto"), ("5", "3"), ("4", "1")):
        out = os.path.join(d, f"{name}.{devices}.{os.getpid()}")
        assert main(["plan", os.path.join(d, name), "-o", out + ".plan", "--devices", devices, "--graph-out",
                     out + ".split", "--streams", streams, "--max-events", "4", "-q"]) == 0
        for f in (out + ".plan", out + ".split"):
            h.update(open(f, "rb").read())
            os.remove(f)
print(h.hexdigest())
"""


def test_split_plan_and_graph_files_are_byte_identical_across_hash_seeds(tmp_path):
    """Random-ish DAGs (fan-out/join blocks of several seeds, the boundary graph above) over 2, 4 and 5 devices
    with streams and an event cap, through the CLI: the same bytes under two PYTHONHASHSEED values."""
    import subprocess
    import sys

    from memplan.generators import fanout_join
    from memplan.io import save_graph

    for seed in range(3):
        save_graph(fanout_join(40, seed=seed)[0], str(tmp_path / f"fj{seed}.graph.json"))
    save_graph(_across(), str(tmp_path / "across.graph.json"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = set()
    for hashseed in ("0", "977"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=root)
        r = subprocess.run([sys.executable, "-c", _CLI_SPLITS, str(tmp_path)], env=env, capture_output=True,
                           text=True, cwd=root)
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1


# ---- the stage split on extreme costs ---------------------------------------------------------------------

EXTREME = st.one_of(st.sampled_from([0.0, 5e-324, 1e-9, 0.1, 0.2, 0.3, 1.0, 1e6, 1e15, 1e15 - 1]),
                    st.floats(0, 1e15, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_partition_is_optimal_on_extreme_costs(data):
    """Costs from 5e-324 to 1e15 in one list (the documented range of a node's cost): the largest stage stays
    the brute-force optimum (up to float rounding), every unit once, cuts and capacity respected."""
    U = data.draw(st.integers(1, 9))
    cost = data.draw(st.lists(EXTREME, min_size=U, max_size=U))
    weight = data.draw(st.lists(st.integers(0, 50), min_size=U, max_size=U))
    allowed = data.draw(st.lists(st.booleans(), min_size=U, max_size=U))
    n = data.draw(st.integers(1, 8))
    cap = data.draw(st.one_of(st.none(), st.integers(0, 120)))
    cut = data.draw(st.one_of(st.none(), st.lists(st.integers(0, 100), min_size=U, max_size=U)))
    want = brute_force(cost, weight, allowed, n, cap)
    if want is None:
        with pytest.raises(memplan.BudgetError, match=r"device \d+ needs \d+ B of weights"):
            partition(cost, weight, allowed, n, cap, cut_bytes=cut)
        return
    stages = partition(cost, weight, allowed, n, cap, cut_bytes=cut)
    if cut is None:
        check_partition(stages, cost, weight, allowed, n, cap, want)
    else:   # within one unit's cost of the optimum
        got = max(sum(cost[a:b]) for a, b in stages)
        assert got <= (want + max(cost)) * (1 + 1e-9) + 1e-9, (got, want, stages)
        assert [u for a, b in stages for u in range(a, b)] == list(range(U))


def test_the_independent_checks_see_a_broken_split_plan():
    """Negative controls: the checks above fail on a plan with one device's roots all at offset 0, and on one
    without its cross-device events."""
    from dataclasses import replace

    g = _across()
    planned = memplan.plan_graph(g, devices=3)
    split, plan = planned.graph, planned.plan
    check_split_plan(g, split, plan, 3)
    crowded = replace(plan, tensors=tuple((t, 0 if off is not None and d == 1 else off, size)
                                          for (t, off, size), d in zip(plan.tensors, plan.tensor_devices)))
    with pytest.raises(AssertionError, match="overlap on device 1 unordered"):
        check_split_plan(g, split, crowded, 3)
    dev = dict(zip((v for v, _ in plan.order), plan.node_devices))
    unordered = replace(plan, events=tuple(e for e in plan.events if dev[e[0]] == dev[e[1]]))
    with pytest.raises(AssertionError, match="does not happen before its reader"):
        check_split_plan(g, split, unordered, 3)


# ---- the command line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, says", [
    (["--devices", "0"], "--devices"), (["--devices", "1025"], "--devices"), (["--devices", "1_0"], "--devices"),
    (["--devices", "2.0"], "--devices"), (["--devices", "+2"], "--devices"), (["--devices", "٢"], "--devices"),
    (["--devices", "6"], "--devices 6 is more"), (["--devices", "2", "--devices", "3"], "--devices"),
    (["--devices", "2", "--device-capacity", "-1"], "--device-capacity"),
    (["--devices", "2", "--device-capacity", "2**63"], "--device-capacity"),
    (["--devices", "2", "--device-capacity", "0"], "device 0 needs"),
    (["--devices", "3", "--device-capacity", "100"], "over --device-capacity 100 B"),
    (["--devices", "2", "--solver", "ggml"], "ggml"),
    (["--devices", "2", "--event-us", "-1"], "--event-us"),
    (["--devices", "2", "--streams", "0"], "--streams"),
    (["--devices", "2", "--max-events", "1"], "--max-events"),
])
def test_cli_device_options_that_are_refused_say_so_in_one_line(tmp_cwd, capsys, extra, says):
    """A bad device option value (or one no split can meet) is one line on stderr naming it, exit 2, nothing
    written (the boundary graph has 5 nodes, so 6 devices is more than it can use)."""
    from memplan.cli import main
    from memplan.io import save_graph

    save_graph(_across(), "g.json")
    graph_out = [] if "--graph-out" in extra else ["--graph-out", "s.json"]
    try:
        rc = main(["plan", "g.json", "-o", "p.json", "-q", *graph_out, *extra])
    except SystemExit as exc:   # argparse's own refusals exit
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memplan: error: ") and says in err, err
    assert not os.path.exists("p.json") and not os.path.exists("s.json")
