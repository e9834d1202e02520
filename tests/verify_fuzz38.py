"""Planted hazards for the verifier (session 38): plan mutations a verifier could miss, each named.

``plant(graph, plan, how, rnd)`` returns a copy of ``plan`` (both JSON dicts) broken one way, or None where
``how`` does not apply to this plan. Each mutation aims at one place a fast checker cuts corners: one byte of
overlap at a region's edge, an offset one byte off its alignment, a root pushed past the arena or past 2**63,
an event moved to the wrong stream, recorded after its waiter, waited before it is recorded, or weakened to an
earlier record / a later wait, an event replaced by a chain through a third stream (whole, or with a link
missing), a view's base given to another root, an in-place input stolen by a concurrent tensor, outputs and
inputs reused inside the step, weights given offsets, devices swapped, an order that is not topological, and
entries unknown, duplicated or missing. The result may still be safe (a moved event can still be implied): the
oracle judges, the verifier must agree. ``edge_touch``, ``at_2_63`` and ``relay_chain`` keep a safe plan safe
(they move a root to bytes no other root uses, or restate an event), so they catch false refusals.
"""

from __future__ import annotations

import copy
import random
from typing import Any

INT63 = (1 << 63) - 1

HAZARDS = ("edge_overlap_end", "edge_overlap_start", "edge_touch", "misalign_one", "past_arena_one",
           "past_2_63", "at_2_63", "event_same_stream", "event_third_stream", "event_late_record",
           "event_wait_first", "event_earlier_after", "event_later_before", "relay_chain", "relay_chain_gap",
           "view_base_reuse", "inplace_steal", "output_reused", "input_reused", "weight_offset",
           "weight_view_offset", "node_other_device", "tensor_other_device", "hoist_node", "sink_node",
           "group_split", "group_interrupt", "unknown_node", "unknown_tensor", "unknown_event_node",
           "duplicate_order", "duplicate_tensor", "missing_order", "missing_tensor", "stream_out_of_range",
           "size_changed")


def _chain(tensors: dict[str, dict[str, Any]], t: str) -> list[str]:
    out = [t]
    while tensors[out[-1]].get("view_of") is not None:
        out.append(tensors[out[-1]]["view_of"])
    return out


def _align(graph: dict[str, Any], plan: dict[str, Any]) -> int:
    a, b = plan["alignment"], graph.get("alignment", 256)
    return a * b // _gcd(a, b)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _move_root(graph: dict[str, Any], plan: dict[str, Any], root: str, off: int) -> None:
    """``root`` to ``off``, its views with it; arena (and device arenas) grown to cover it."""
    tensors = {t["id"]: t for t in graph["tensors"]}
    entries = {e["id"]: e for e in plan["tensors"]}
    delta = off - entries[root]["offset"]
    for t in graph["tensors"]:
        if _chain(tensors, t["id"])[-1] == root and entries[t["id"]]["offset"] is not None:
            entries[t["id"]]["offset"] += delta
    end = off + tensors[root]["size"]
    plan["arena_bytes"] = max(plan["arena_bytes"], end)
    if plan.get("devices", 1) > 1:
        d = entries[root]["device"]
        plan["device_arena_bytes"][d] = max(plan["device_arena_bytes"][d], end)
        plan["arena_bytes"] = max(plan["arena_bytes"], *plan["device_arena_bytes"])


def _arena_roots(graph: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    offs = {e["id"]: e["offset"] for e in plan["tensors"]}
    return [t["id"] for t in graph["tensors"] if t.get("view_of") is None and t["kind"] != "weight"
            and t["size"] > 0 and offs.get(t["id"]) is not None]


def _same_device(plan: dict[str, Any], a: str, b: str) -> bool:
    if plan.get("devices", 1) <= 1:
        return True
    dev = {e["id"]: e["device"] for e in plan["tensors"]}
    return dev[a] == dev[b]


def plant(graph: dict[str, Any], plan: dict[str, Any], how: str, rnd: random.Random) -> dict[str, Any] | None:
    """A copy of ``plan`` with the hazard ``how`` (one of HAZARDS) planted, or None where it does not apply."""
    p = copy.deepcopy(plan)
    tensors = {t["id"]: t for t in graph["tensors"]}
    entries = {e["id"]: e for e in p["tensors"]}
    order = [e["node"] for e in p["order"]]
    stream = {e["node"]: e["stream"] for e in p["order"]}
    pos = {n: i for i, n in enumerate(order)}
    align = _align(graph, p)
    roots = _arena_roots(graph, p)
    pairs = [(a, b) for a in roots for b in roots if a != b and _same_device(p, a, b)]
    if (not p["order"] and how in ("unknown_node", "duplicate_order", "stream_out_of_range", "node_other_device")
            or not p["tensors"] and how in ("unknown_tensor", "duplicate_tensor", "size_changed", "tensor_other_device")):
        return None   # a graph without nodes (or tensors): nothing to mutate

    if how in ("edge_overlap_end", "edge_overlap_start", "edge_touch") and pairs:
        a, b = rnd.choice(pairs)
        oa, sa, sb = entries[a]["offset"], tensors[a]["size"], tensors[b]["size"]
        if how == "edge_overlap_end":      # b starts on a's last aligned slot: as few bytes shared as alignment allows
            off = (oa + sa - 1) // align * align
        elif how == "edge_overlap_start":  # b ends just past a's first byte
            off = -(-(oa + 1 - sb) // align) * align
            if off < 0:
                return None
        else:                              # b starts right where a ends: no byte shared with a
            off = -(-(oa + sa) // align) * align
        _move_root(graph, p, b, off)
        return p
    if how == "misalign_one" and roots and align > 1:
        r = rnd.choice(roots)
        _move_root(graph, p, r, entries[r]["offset"] + rnd.choice([1, -1, align - 1]))
        return p if entries[r]["offset"] >= 0 else None
    if how == "past_arena_one" and roots:   # the arena one byte short of the highest root's end
        r = max(roots, key=lambda t: entries[t]["offset"] + tensors[t]["size"])
        end = entries[r]["offset"] + tensors[r]["size"]
        if p.get("devices", 1) > 1:
            d = entries[r]["device"]
            p["device_arena_bytes"][d] = end - 1
            if rnd.random() < 0.5:
                p["arena_bytes"] = end - 1
                p["device_arena_bytes"] = [min(x, end - 1) for x in p["device_arena_bytes"]]
        else:
            p["arena_bytes"] = end - 1
        p["lower_bound_bytes"] = min(p["lower_bound_bytes"], p["arena_bytes"])
        return p
    if how in ("past_2_63", "at_2_63") and roots:   # a root moved to the top of the int64 range
        r = rnd.choice(roots)
        size = tensors[r]["size"]
        top = (INT63 - size) // align * align   # ends at or just below 2**63 - 1
        off = top + (align if how == "past_2_63" else 0)
        if off > INT63:
            return None
        _move_root(graph, p, r, off)
        if how == "past_2_63":   # the arena can say no more than 2**63 - 1
            p["arena_bytes"] = INT63
            if p.get("devices", 1) > 1:
                p["device_arena_bytes"] = [min(x, INT63) for x in p["device_arena_bytes"]]
        return p
    if how.startswith("event_") and p["events"]:
        k = rnd.randrange(len(p["events"]))
        a, b = p["events"][k]["after"], p["events"][k]["before"]
        if how == "event_same_stream":     # recorded on the waiter's own stream instead of the writer's
            cands = [n for n in order[:pos[b]] if stream[n] == stream[b]]
            if not cands:
                return None
            p["events"][k]["after"] = rnd.choice(cands)
        elif how == "event_third_stream":  # recorded on a stream that is neither the writer's nor the waiter's
            cands = [n for n in order[:pos[b]] if stream[n] not in (stream[a], stream[b])]
            if not cands:
                return None
            p["events"][k]["after"] = rnd.choice(cands)
        elif how == "event_late_record":   # recorded after a node issued after the waiter
            cands = [n for n in order[pos[b] + 1:] if stream[n] == stream[a]]
            if not cands:
                return None
            p["events"][k]["after"] = rnd.choice(cands)
        elif how == "event_wait_first":    # the two ends swapped: waited before it is recorded
            p["events"][k] = {"after": b, "before": a}
        elif how == "event_earlier_after":  # recorded after an earlier node of the writer's stream
            cands = [n for n in order[:pos[a]] if stream[n] == stream[a]]
            if not cands:
                return None
            p["events"][k]["after"] = rnd.choice(cands)
        elif how == "event_later_before":   # waited by a later node of the waiter's stream
            cands = [n for n in order[pos[b] + 1:] if stream[n] == stream[b]]
            if not cands:
                return None
            p["events"][k]["before"] = rnd.choice(cands)
        return p
    if how in ("relay_chain", "relay_chain_gap") and p["events"]:
        # an event a -> b replaced by a chain through a node c of a third stream issued between them: a -> c,
        # c -> b (the same order, by transitivity); the gap: the second hop leaves c's stream from a node
        # issued before c (or is missing), so the chain has one link too few
        k = rnd.randrange(len(p["events"]))
        a, b = p["events"][k]["after"], p["events"][k]["before"]
        mids = [c for c in order[pos[a] + 1:pos[b]] if stream[c] not in (stream[a], stream[b])]
        if not mids:
            return None
        c = rnd.choice(mids)
        hop = c
        if how == "relay_chain_gap":
            before_c = [x for x in order[:pos[c]] if stream[x] == stream[c]]
            hop = rnd.choice(before_c) if before_c else None
        p["events"][k] = {"after": a, "before": c}
        if hop is not None:
            p["events"].append({"after": hop, "before": b})
        return p
    if how == "view_base_reuse":   # another root onto the bytes of a root some node reads through a view
        viewed = sorted({_chain(tensors, t)[-1] for n in graph["nodes"] for t in n["inputs"]
                         if tensors[t].get("view_of") is not None} & set(roots))
        if not viewed:
            return None
        x = rnd.choice(viewed)
        others = [r for r in roots if r != x and _same_device(p, r, x)]
        if not others:
            return None
        y = rnd.choice(others)
        _move_root(graph, p, y, entries[x]["offset"])
        return p
    if how == "inplace_steal":   # a third root onto an in-place input's bytes
        ins = sorted({_chain(tensors, i)[-1] for n in graph["nodes"] for i in (n.get("inplace") or {}).values()}
                     & set(roots))
        if not ins:
            return None
        x = rnd.choice(ins)
        others = [r for r in roots if r != x and _same_device(p, r, x)]
        if not others:
            return None
        _move_root(graph, p, rnd.choice(others), entries[x]["offset"])
        return p
    if how in ("output_reused", "input_reused"):
        kind = how.split("_")[0]
        keep = [r for r in roots if tensors[r]["kind"] == kind]
        if not keep:
            return None
        x = rnd.choice(keep)
        others = [r for r in roots if r != x and _same_device(p, r, x)]
        if not others:
            return None
        _move_root(graph, p, rnd.choice(others), entries[x]["offset"])
        return p
    if how in ("weight_offset", "weight_view_offset"):
        ws = [t["id"] for t in graph["tensors"] if entries[t["id"]]["offset"] is None
              and (t.get("view_of") is None) == (how == "weight_offset")]
        if not ws:
            return None
        entries[rnd.choice(ws)]["offset"] = rnd.choice([0, align * 64])
        return p
    if how in ("node_other_device", "tensor_other_device") and p.get("devices", 1) > 1:
        e = rnd.choice(p["order"] if how == "node_other_device" else p["tensors"])
        e["device"] = (e["device"] + rnd.randrange(1, p["devices"])) % p["devices"]
        return p
    if how in ("hoist_node", "sink_node") and len(order) >= 2:   # a node moved far up or down the issue order
        i = rnd.randrange(len(order))
        j = rnd.randrange(0, i + 1) if how == "hoist_node" else rnd.randrange(i, len(order))
        e = p["order"].pop(i)
        p["order"].insert(j, e)
        return p
    if how in ("group_split", "group_interrupt"):
        grouped: dict[str, list[str]] = {}
        for n in graph["nodes"]:
            if n.get("group") is not None:
                grouped.setdefault(n["group"], []).append(n["id"])
        multi = [m for m in grouped.values() if len(m) > 1]
        if not multi:
            return None
        members = rnd.choice(multi)
        if how == "group_split":
            if p["streams"] < 2:
                p["streams"] = 2
            m = rnd.choice(members)
            e = next(e for e in p["order"] if e["node"] == m)
            e["stream"] = (e["stream"] + 1) % p["streams"]
            return p
        outside = [n for n in order if n not in members and stream[n] == stream[members[0]]]
        if not outside:
            return None
        n = rnd.choice(outside)   # another node of the group's stream issued between two members
        e = p["order"].pop(pos[n])
        at = [i for i, x in enumerate(p["order"]) if x["node"] == members[-1]][0]
        p["order"].insert(at, e)
        return p
    if how == "unknown_node":
        rnd.choice(p["order"])["node"] += "_"
        return p
    if how == "unknown_tensor":
        rnd.choice(p["tensors"])["id"] += "_"
        return p
    if how == "unknown_event_node" and p["events"]:
        e = rnd.choice(p["events"])
        e[rnd.choice(["after", "before"])] += "_"
        return p
    if how == "duplicate_order":
        e = copy.deepcopy(rnd.choice(p["order"]))
        p["order"].insert(rnd.randrange(len(p["order"]) + 1), e)
        return p
    if how == "duplicate_tensor":
        e = copy.deepcopy(rnd.choice(p["tensors"]))
        p["tensors"].insert(rnd.randrange(len(p["tensors"]) + 1), e)
        return p
    if how == "missing_order" and len(p["order"]) > 1:
        del p["order"][rnd.randrange(len(p["order"]))]
        return p
    if how == "missing_tensor" and len(p["tensors"]) > 1:
        del p["tensors"][rnd.randrange(len(p["tensors"]))]
        return p
    if how == "stream_out_of_range":
        rnd.choice(p["order"])["stream"] = p["streams"] + rnd.randrange(2)
        return p
    if how == "size_changed":
        e = rnd.choice(p["tensors"])
        e["size"] += rnd.choice([1, 256])
        return p
    return None


def doc(graph: Any, order: list[tuple[str, int]], events: list[tuple[str, str]], offsets: dict[str, int],
        streams: int | None = None, alignment: int | None = None, arena: int | None = None) -> dict[str, Any]:
    """A plan document by hand for a ``memplan.Graph``: ``offsets`` for the arena roots (views follow their
    roots, weight-rooted tensors null); ``arena`` defaults to the end of the highest root."""
    tensors = []
    for ti, t in enumerate(graph.tensors):
        r = graph.root[ti]
        off = None if graph.tensors[r].kind == "weight" else offsets[graph.tensors[r].id] + graph.root_offset[ti]
        tensors.append({"id": t.id, "offset": off, "size": t.size})
    top = max([e["offset"] + e["size"] for e in tensors if e["offset"] is not None] + [0])
    return {"format": "memplan.plan/1", "graph": graph.name, "alignment": alignment or graph.alignment,
            "arena_bytes": top if arena is None else arena, "lower_bound_bytes": 0,
            "streams": streams or 1 + max(s for _, s in order),
            "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events], "tensors": tensors, "solver": {}}
