"""Round 79 (contract79): split (multi-device) plans, ``memplan.verify`` and ``memplan.io`` against the contract.

Why: round 78's oracle (tests/test_contract78_round78.py) reads ../shared/CONTRACT.md for one-device plans only. A
split plan adds fields and rules that docs/format.md ("Multi-device plans") words on top of the contract: one arena per
device (rule 3 between roots of one device only; rule 4 against each device's ``device_arena_bytes``), each stream on
one device (rule 1), a node touching only its own device's tensors and a ``COPY`` running on its source's device (rule
4), and events across devices counting like any other. This file extends that oracle with those words, plants hazards
in plans ``memplan.plan_devices`` makes (COPY nodes, weight replicas, fusion groups, views and in-place pairs, plans
re-planned under a device capacity) and holds ``memplan.verify.check`` to the oracle's verdict; it also holds the
plan reader and writer to the documented meaning of every multi-device field, and split plans to byte-identity.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_contract78_round78 import _roots, apart_pairs, broken_rules, random_graph

import memplan
from memplan.errors import GraphError, MemplanError, PlanFormatError
from memplan.io import graph_text, load_plan, save_plan
from memplan.planfile import plan_from_dict
from memplan.verify import check


def broken_split_rules(graph: dict[str, Any], plan: dict[str, Any]) -> set[int]:
    """The rules (1..4) a plan breaks, read from CONTRACT.md and docs/format.md's "Safety" paragraph of multi-device
    plans: the one-device rules with rule 3 kept to roots of one device, plus the device rules."""
    D = plan.get("devices", 1)
    if D == 1:
        return broken_rules(graph, plan)
    broken = broken_rules(graph, plan) - {3}
    if broken == {1} and sorted(e["node"] for e in plan["order"]) != sorted(n["id"] for n in graph["nodes"]):
        return broken
    tensors = {t["id"]: t for t in graph["tensors"]}
    root = _roots(tensors)
    arenas = plan["device_arena_bytes"]
    if len(arenas) != D:
        return broken | {4}
    if any(not 0 <= a <= plan["arena_bytes"] for a in arenas):
        broken.add(4)
    ndev = {e["node"]: e["device"] for e in plan["order"]}
    tdev = {t["id"]: t["device"] for t in plan["tensors"]}
    if any(not 0 <= d < D for d in ndev.values()):
        broken.add(1)
    on: dict[int, set[int]] = {}
    for e in plan["order"]:
        if 0 <= e["device"] < D:
            on.setdefault(e["stream"], set()).add(e["device"])
    if any(len(ds) > 1 for ds in on.values()):
        broken.add(1)
    known = {t: d for t, d in tdev.items() if 0 <= d < D}
    if len(known) != len(tdev):
        broken.add(4)
    offset = {t["id"]: t["offset"] for t in plan["tensors"]}
    for tid, t in tensors.items():
        r = root[tid]
        if tid in known and r in known and known[tid] != known[r]:
            broken.add(4)   # a view is on its root's device
        if (t.get("view_of") is None and t["kind"] != "weight" and tid in known and isinstance(offset[tid], int)
                and offset[tid] + t["size"] > arenas[known[tid]]):
            broken.add(4)   # each root inside its own device's arena
    for n in graph["nodes"]:
        d = ndev[n["id"]]
        if not 0 <= d < D:
            continue
        touched = n["inputs"] if n["op"] == "COPY" else n["inputs"] + n["outputs"]
        if any(root[t] in known and known[root[t]] != d for t in touched):
            broken.add(4)
    # rule 3, one arena per device
    sizes, apart = apart_pairs(graph, plan)
    placed = [r for r in sizes if isinstance(offset[r], int) and r in known]
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            if (known[a] == known[b] and frozenset((a, b)) in apart and offset[a] < offset[b] + sizes[b]
                    and offset[b] < offset[a] + sizes[a]):
                broken.add(3)
    return broken


def as_dict(graph: memplan.Graph) -> dict[str, Any]:
    return json.loads(graph_text(graph))


def split_cases(seed: int, count: int, grouped: bool = False):
    """(split graph document, plan document, the rng, the device_capacity asked) of the plans that ``memplan.plan_devices`` makes for random graphs (views,
    in-place pairs, fusion groups, weights read on several devices, zero-size tensors) over 2..4 devices, on 1..3
    streams, some under a device capacity."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        doc = random_graph(rng)
        for n in doc["nodes"]:
            n["cost"] = rng.choice([1, 1, 5, 20])
        if grouped and not any(n.get("group") is not None for n in doc["nodes"]):
            continue
        try:
            g = memplan.graph_from_dict(doc)
        except GraphError:
            continue
        n = rng.randint(2, 4)
        opts: dict[str, Any] = {"streams": rng.choice([None, 2, 3])}
        if rng.random() < 0.3:
            opts["device_capacity"] = rng.choice([512, 1024, 2048, 4096])
        try:
            split, plan = memplan.plan_devices(g, n, **opts)
        except MemplanError:
            continue
        made += 1
        yield as_dict(split.graph), plan.to_dict(), rng, opts.get("device_capacity")


def plant(rng: random.Random, graph: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """One hazard in a copy of ``plan``: a node moved to another device, a tensor moved, a device arena shrunk, an
    offset shifted onto another root, an event dropped or turned back, a stream taken to another device's range, or
    the device count changed."""
    p = copy.deepcopy(plan)
    D = p["devices"]
    what = rng.randrange(12)
    if what == 0:
        e = rng.choice(p["order"])
        e["device"] = rng.choice([d for d in range(-1, D + 1) if d != e["device"]])
    elif what == 1:
        t = rng.choice(p["tensors"])
        t["device"] = rng.choice([d for d in range(D + 1) if d != t["device"]])
    elif what == 2:
        d = rng.randrange(len(p["device_arena_bytes"]))
        p["device_arena_bytes"][d] = max(0, p["device_arena_bytes"][d] - rng.choice([1, 256, 1024]))
    elif what == 3:
        placed = [t for t in p["tensors"] if t["offset"] is not None]
        if placed:
            a, b = rng.choice(placed), rng.choice(placed)
            a["offset"] = b["offset"]
    elif what == 4 and p["events"]:
        p["events"].pop(rng.randrange(len(p["events"])))
    elif what == 5 and p["events"]:
        e = rng.choice(p["events"])
        e["after"], e["before"] = e["before"], e["after"]
    elif what == 6:
        e = rng.choice(p["order"])
        e["stream"] = rng.randrange(p["streams"])
    elif what == 7:
        p["devices"] = D + rng.choice([-1, 1]) if D > 2 else D + 1
    elif what == 9:   # an event between two random nodes (often across devices, sometimes backward)
        a, b = rng.choice(p["order"]), rng.choice(p["order"])
        p["events"].append({"after": a["node"], "before": b["node"]})
    elif what == 10:   # a node issued earlier or later (devices interleaved in issue order)
        i = rng.randrange(len(p["order"]))
        e = p["order"].pop(i)
        p["order"].insert(rng.randrange(len(p["order"]) + 1), e)
    elif what == 11:   # a COPY pulled by its destination: on a stream of the reader's device
        copies = [e for e in p["order"] if e["node"].startswith("copy:")]
        if copies:
            e = rng.choice(copies)
            dst = next(n["attrs"]["dst_device"] for n in graph["nodes"] if n["id"] == e["node"])
            other = [x for x in p["order"] if x["device"] == dst]
            e["device"] = dst
            if other:
                e["stream"] = other[0]["stream"]
    else:
        p["arena_bytes"] = max(p["device_arena_bytes"])
        p["device_arena_bytes"] = [p["arena_bytes"]] * len(p["device_arena_bytes"])
        for t in p["tensors"]:
            if t["offset"] is not None and rng.random() < 0.3:
                t["offset"] = 0
    return p


def device_roots(graph: dict[str, Any], plan: dict[str, Any], d: int) -> dict[str, Any]:
    """``graph`` with every arena root on a device other than ``d`` (and its views) turned into a weight, so round
    78's rule-3 and bound helpers see device ``d``'s arena alone."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    root = _roots(tensors)
    tdev = {t["id"]: t["device"] for t in plan["tensors"]}
    doc = copy.deepcopy(graph)
    for t in doc["tensors"]:
        if tdev[root[t["id"]]] != d and t.get("view_of") is None:
            t["kind"] = "weight"
    return doc


def number_findings(graph: dict[str, Any], plan: dict[str, Any], capacity: Any = None) -> list[str]:
    """Where a split plan's numbers differ from docs/format.md's words for them."""
    from test_contract78_round78 import least_arena, per_node_bound
    out = []
    tensors = {t["id"]: t for t in graph["tensors"]}
    root = _roots(tensors)
    D = plan["devices"]
    sol = plan["solver"]
    per = sol["per_device"]
    tdev = {t["id"]: t["device"] for t in plan["tensors"]}
    offset = {t["id"]: t["offset"] for t in plan["tensors"]}
    ends = [0] * D
    weights = [0] * D
    for tid, t in tensors.items():
        if root[tid] == tid and t["kind"] != "weight":
            ends[tdev[tid]] = max(ends[tdev[tid]], offset[tid] + t["size"])
        if root[tid] == tid and t["kind"] == "weight":
            weights[tdev[tid]] += t["size"]
    if plan["device_arena_bytes"] != ends:
        out.append(f"device_arena_bytes {plan['device_arena_bytes']} != largest ends {ends}")
    if plan["arena_bytes"] != max(plan["device_arena_bytes"]):
        out.append("arena_bytes is not the largest device arena")
    if [p["arena_bytes"] for p in per] != plan["device_arena_bytes"]:
        out.append("per_device arena_bytes differ")
    if [p["weight_bytes"] for p in per] != weights:
        out.append(f"per_device weight_bytes {[p['weight_bytes'] for p in per]} != {weights}")
    if plan["lower_bound_bytes"] != max(p["lower_bound_bytes"] for p in per):
        out.append("lower_bound_bytes is not the largest per-device bound")
    rank = {"HEURISTIC": 0, "FEASIBLE": 1, "OPTIMAL": 2}
    if sol["status"] != min((p["status"] for p in per), key=rank.__getitem__):
        out.append("status is not the weakest device's")
    if sol["gap"] != max(p["gap"] for p in per):
        out.append("gap is not the largest device's")
    ndev = {e["node"]: e["device"] for e in plan["order"]}
    for d, p in enumerate(per):
        lo, hi = p["streams"]
        if any(not lo <= e["stream"] < hi for e in plan["order"] if e["device"] == d):
            out.append(f"device {d} runs a stream outside {p['streams']}")
        doc = device_roots(graph, plan, d)
        bound = per_node_bound(doc, plan)
        if p["lower_bound_bytes"] < bound:
            out.append(f"device {d} bound {p['lower_bound_bytes']} below the contract's {bound}")
        sizes, apart = apart_pairs(doc, plan)
        if len(sizes) <= 6:
            least = least_arena(sizes, apart, plan["alignment"])
            if not p["lower_bound_bytes"] <= least <= p["arena_bytes"]:
                out.append(f"device {d}: bound {p['lower_bound_bytes']}, least {least}, arena {p['arena_bytes']}")
            if p["status"] == "OPTIMAL" and p["arena_bytes"] != least:
                out.append(f"device {d} OPTIMAL at {p['arena_bytes']} but the least arena is {least}")
        if capacity is not None:
            cap = capacity[d] if isinstance(capacity, list) else capacity
            if weights[d] + p["arena_bytes"] > cap:
                out.append(f"device {d}: weights {weights[d]} + arena {p['arena_bytes']} over capacity {cap}")
    copies = [n for n in graph["nodes"] if n["op"] == "COPY"]
    split = sol["split"]
    if split["copies"] != len(copies):
        out.append(f"copies {split['copies']} != {len(copies)}")
    cross = {(e["after"], e["before"]) for e in plan["events"] if ndev[e["after"]] != ndev[e["before"]]}
    if split["cross_device_events"] != len(cross):
        out.append(f"cross_device_events {split['cross_device_events']} != {len(cross)}")
    sent = sum(tensors[o]["size"] for n in copies for o in n["outputs"] if tensors[o].get("view_of") is None)
    if split["copy_bytes"] != sent:
        out.append(f"copy_bytes {split['copy_bytes']} != {sent}")
    return out


def fused_overlap(graph: dict[str, Any], plan: dict[str, Any]) -> bool:
    """``verify(fused_groups=True)``'s extra rule-3 reading (its docstring): a group of several nodes that can run as
    one kernel (no event after a member but the last is waited on by a node issued no later than the last member)
    may touch no two arena roots that share bytes on one device, an in-place pair included."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    root = _roots(tensors)
    pos = {e["node"]: i for i, e in enumerate(plan["order"])}
    off = {t["id"]: t["offset"] for t in plan["tensors"]}
    dev = {t["id"]: t.get("device", 0) for t in plan["tensors"]}
    groups: dict[str, list[dict]] = {}
    for n in graph["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n)
    for members in groups.values():
        last = max(members, key=lambda m: pos[m["id"]])["id"]
        ids = {m["id"] for m in members}
        if len(members) < 2 or any(e["after"] in ids - {last} and pos[e["before"]] <= pos[last] for e in plan["events"]):
            continue
        rs = sorted({root[t] for m in members for t in m["inputs"] + m["outputs"]})
        rs = [r for r in rs if tensors[r]["kind"] != "weight" and tensors[r]["size"] and isinstance(off[r], int)
              and 0 <= dev[r] < plan.get("devices", 1)]
        if any(dev[a] == dev[b] and off[a] < off[b] + tensors[b]["size"] and off[b] < off[a] + tensors[a]["size"]
               for i, a in enumerate(rs) for b in rs[i + 1:]):
            return True
    return False


# ---- the verifier against the oracle on split plans -------------------------------------------------------------

def test_verify_breaks_exactly_the_rules_the_split_oracle_breaks():
    """On plans ``plan_devices`` makes (all safe to the oracle) and on copies with one to three planted hazards (a node
    or tensor moved to another device or out of range, a device arena shrunk, a root moved onto another, an event
    dropped, reversed or added across devices, devices interleaved in issue order, a COPY pulled by its destination, a
    stream taken to another device, every device arena set to the largest), ``check`` names exactly the rules the
    oracle finds broken, and a plan whose device count disagrees with its ``device_arena_bytes`` is refused."""
    verdicts = set()
    for graph, plan, rng, _cap in split_cases(79, 40):
        g = memplan.graph_from_dict(graph)
        assert broken_split_rules(graph, plan) == set() == {r for r, _ in check(g, plan)}
        for _ in range(8):
            p = plan
            for _ in range(rng.randint(1, 3)):
                p = plant(rng, graph, p)
            if p["devices"] != len(p["device_arena_bytes"]):
                with pytest.raises(PlanFormatError, match="device_arena_bytes"):
                    check(g, p)
                continue
            want = broken_split_rules(graph, p)
            assert {r for r, _ in check(g, p)} == want, (json.dumps(graph), json.dumps(p))
            verdicts.add(frozenset(want))
    assert frozenset() in verdicts and all(any(r in v for v in verdicts) for r in (1, 2, 3, 4))


def test_fused_verify_agrees_with_the_oracle_on_split_and_one_device_plans():
    """``check(..., fused_groups=True)`` adds exactly the oracle's fused-kernel overlaps, per device, to its rules."""
    for graph, plan, rng, _cap in split_cases(7, 30, grouped=True):
        g = memplan.graph_from_dict(graph)
        for _ in range(6):
            p = plant(rng, graph, plan)
            if p["devices"] != len(p["device_arena_bytes"]):
                continue
            want = broken_split_rules(graph, p) | ({3} if fused_overlap(graph, p) else set())
            assert {r for r, _ in check(g, p, fused_groups=True)} == want, (json.dumps(graph), json.dumps(p))


# ---- the numbers and the file of split plans ----------------------------------------------------------------------

def test_split_plans_report_the_documented_numbers():
    """Every split plan's ``device_arena_bytes``, ``arena_bytes``, bounds, status, gap, weight bytes, stream ranges,
    copies, copy bytes and cross-device events are what docs/format.md says they are (a device's bound between the
    contract's live-at-one-node bound and its least arena; within ``device_capacity`` with its weights)."""
    for graph, plan, _rng, capacity in split_cases(80, 40):
        assert number_findings(graph, plan, capacity) == []


def test_split_plan_fields_round_trip_and_unknown_fields_are_ignored(tmp_path):
    """``plan_from_dict`` / ``to_dict`` and ``save_plan`` / ``load_plan`` keep every multi-device field as it is, and an
    unknown field at the top or inside an entry changes nothing the plan means."""
    for _graph, plan, _rng, _cap in split_cases(11, 12):
        p = plan_from_dict(plan)
        assert p.to_dict() == plan
        save_plan(p, str(tmp_path / "p.json"))
        assert load_plan(str(tmp_path / "p.json")) == p
        doc = copy.deepcopy(plan)
        doc["zz"], doc["order"][0]["zz"], doc["tensors"][-1]["zz"] = 1, 2, 3
        q = plan_from_dict(doc)
        assert (q.devices, q.node_devices, q.tensor_devices, q.device_arena_bytes) == (
            p.devices, p.node_devices, p.tensor_devices, p.device_arena_bytes)


def test_split_plan_json_is_byte_identical_across_hash_seeds():
    """The split graph and plan JSON of the same input are the same bytes under any PYTHONHASHSEED."""
    code = ("import sys, json, hashlib; sys.path.insert(0, 'tests');"
            "from test_contract79_round79 import split_cases; from memplan.io import graph_text; import memplan;"
            "h = hashlib.sha256();"
            "[h.update(json.dumps(p).encode() + json.dumps(g).encode()) for g, p, _, _ in split_cases(5, 6)];"
            "print(h.hexdigest())")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    outs = {subprocess.run([sys.executable, "-c", code], cwd=root, env={**env, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, check=True).stdout for seed in ("0", "4242")}
    assert len(outs) == 1


# ---- the defect: a split block's claim for a device no per_device entry describes ------------------------------------

def _qkv_split_with_device_1_above_its_bound() -> tuple[memplan.Graph, dict[str, Any]]:
    """The Q/K/V example on 2 devices (both arenas 10,240 B, OPTIMAL), ``a`` on device 1 moved up to 10,240: still
    safe, device 1's arena now 14,336 B, above every bound the plan states (10,240 B)."""
    from memplan.examples import qkv_attention
    split, plan = memplan.plan_devices(qkv_attention(), 2)
    doc = plan.to_dict()
    assert doc["device_arena_bytes"] == [10240, 10240] and doc["solver"]["status"] == "OPTIMAL"
    for t in doc["tensors"]:
        if t["id"] == "a":
            assert t["device"] == 1
            t["offset"] = 10240
    doc["device_arena_bytes"][1] = doc["arena_bytes"] = 14336
    return split.graph, doc


@pytest.mark.parametrize("edit", [
    lambda per: per.pop(1),                              # device 1's entry dropped
    lambda per: per.__setitem__(1, dict(per[0])),        # ... or replaced by a second entry for device 0
])
def test_an_optimal_split_block_is_warned_of_for_a_device_no_entry_describes(edit):
    """The block said OPTIMAL, gap 0.0, of a plan whose device 1 arena (14,336 B) is above every bound it states, and
    ``show`` / ``verify`` said nothing where device 1's entry was missing: only the entries present were checked. Now
    the claim is warned of for the device no entry describes (the plan is still safe: the block is free-form)."""
    from memplan.show import solver_claim_warnings
    graph, doc = _qkv_split_with_device_1_above_its_bound()
    edit(doc["solver"]["per_device"])
    plan = plan_from_dict(doc)
    memplan.verify(graph, plan)
    found = solver_claim_warnings(plan)
    assert any("no per_device entry describes device 1 (arena 14336 B)" in w for w in found), found
    doc["solver"]["status"], doc["solver"]["gap"] = "FEASIBLE", 0.2857
    assert solver_claim_warnings(plan_from_dict(doc)) == []   # a claim the numbers allow: no word


def test_a_device_bound_above_the_plans_largest_bound_is_warned_of():
    """Device 1's entry edited to a lower bound of 14,336 B (its arena) made its OPTIMAL look proven, while the plan's
    ``lower_bound_bytes``, the largest device's bound, said 10,240 B (``show``: ratio 1.4000 beside OPTIMAL, gap 0.0),
    with no word; now the contradiction is warned of, naming both numbers."""
    from memplan.show import solver_claim_warnings
    graph, doc = _qkv_split_with_device_1_above_its_bound()
    entry = doc["solver"]["per_device"][1]
    entry["arena_bytes"] = entry["lower_bound_bytes"] = 14336
    plan = plan_from_dict(doc)
    memplan.verify(graph, plan)
    found = solver_claim_warnings(plan)
    assert any("lower_bound_bytes 14336 is above the plan's lower_bound_bytes 10240" in w for w in found), found
    doc["lower_bound_bytes"] = 14336   # the plan agreeing with its device: nothing to say
    assert solver_claim_warnings(plan_from_dict(doc)) == []
