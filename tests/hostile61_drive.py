"""Round 61's hostile driver (not a test: run it by hand): plan documents with hostile values given to the verifier,
judged by tests/reference.py and tests/oracle.py (brute force, no memplan code).

    python tests/hostile61_drive.py --runs 3000 [--seed 0] [--nodes 12] [--timeout 60]

Each run builds a random multi-stream graph (``oracle_fuzz.multistream_graph``) and a plan: memplan's own (safe; half
of them then made unsafe by one well-formed edit, ``semantic_edit``: a root moved onto another's bytes, an event
dropped or turned round), a two- or three-device plan of its split graph with one device field edited
(``device_edit``), or a random one (``multistream_plan``: mostly unsafe). Then up to two hostile edits at the JSON level
(``edit``: integers past int64 and just inside it, offsets that wrap an int64 sum, alignments of 2**62, negative
sizes, bools and floats for integers, -0, NaN/Infinity/1e400 text, streams and events naming missing nodes, self
events, cycles of waits, device fields on a one-device plan, duplicate entries and keys, unicode twins), and
``memplan.load_plan`` + ``memplan.verify`` (``fused_groups`` in a share of runs) give a verdict. Findings:
``accepted-unsafe`` (verify returned None where a judge finds a rule broken: the worst bug), ``crash`` (an exception
that is no MemplanError) and ``hang`` (a run past ``--timeout``); each is printed with its run and the pair saved under
/tmp, and the exit status is 1 if there were any."""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import signal
import sys
import tempfile
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.dirname(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import oracle  # noqa: E402
import reference  # noqa: E402
from oracle_fuzz import multistream_graph, multistream_plan  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import MemplanError, UnsafePlan  # noqa: E402


def _roots(graph):
    return [t["id"] for t in graph["tensors"] if t.get("view_of") is None and t["kind"] != "weight"]


def edit(graph, plan, rnd: random.Random) -> tuple[str, dict, str | None]:
    """One hostile edit: (its name, the plan dict, or a JSON text to load where the edit lives in the text)."""
    p = copy.deepcopy(plan)
    how = rnd.choice(["wrap_offset", "big_arena", "huge_align", "plan_align_small", "neg_size", "bool_int",
                      "float_int", "neg_zero", "event_missing", "event_self", "event_cycle", "event_dup",
                      "stream_out", "devices", "dup_tensor", "dup_key", "twin", "view_off", "lb", "extra_order",
                      "streams_max", "size_mismatch", "order_dup_key", "nan_text"])
    roots = _roots(graph)
    tens = {e["id"]: e for e in p["tensors"]}
    text = None
    if how == "wrap_offset" and roots:
        r = rnd.choice(roots)
        e = tens[r]
        e["offset"] = (e["offset"] or 0) + rnd.choice([2**64, 2**63, -(2**64), 2**32 * 256])
    elif how == "big_arena" and roots:
        top = 2**63 - 1
        p["arena_bytes"] = top
        for r in rnd.sample(roots, min(len(roots), 2)):
            e = tens[r]
            e["offset"] = (top - e["size"] + 1) // 256 * 256 if rnd.random() < 0.5 else top - e["size"]
    elif how == "huge_align":
        p["alignment"] = rnd.choice([2**62, 2**63, 2**63 - 1, 0, 3])
    elif how == "plan_align_small":
        p["alignment"] = 1
        for r in roots:
            tens[r]["offset"] = (tens[r]["offset"] or 0) + rnd.choice([0, 1, 128])
    elif how == "neg_size" and p["tensors"]:
        e = rnd.choice(p["tensors"])
        e["size"] = -rnd.choice([1, 256, e["size"] or 1])
    elif how == "bool_int":
        e = rnd.choice(p["order"])
        e["stream"] = bool(e["stream"]) if e["stream"] in (0, 1) else True
        if rnd.random() < 0.5 and roots:
            tens[rnd.choice(roots)]["offset"] = rnd.choice([True, False])
    elif how == "float_int":
        e = rnd.choice(p["order"])
        e["stream"] = float(e["stream"])
        if roots:
            tens[rnd.choice(roots)]["offset"] = float(tens[roots[0]]["offset"] or 0)
    elif how == "neg_zero":
        if roots:
            tens[rnd.choice(roots)]["offset"] = -0.0
        text = json.dumps(p).replace('"offset": 0,', '"offset": -0,')
    elif how == "event_missing":
        p["events"].append({"after": rnd.choice(["nope", "", "n0 ", "N0"]), "before": rnd.choice(p["order"])["node"]})
    elif how == "event_self":
        n = rnd.choice(p["order"])["node"]
        p["events"].append({"after": n, "before": n})
    elif how == "event_cycle" and len(p["order"]) > 1:
        a, b = rnd.sample([e["node"] for e in p["order"]], 2)
        p["events"] += [{"after": a, "before": b}, {"after": b, "before": a}]
    elif how == "event_dup" and p["events"]:
        p["events"] += [dict(e) for e in p["events"]]
    elif how == "stream_out":
        rnd.choice(p["order"])["stream"] = rnd.choice([p["streams"], -1, 1024, 2**63 - 1])
    elif how == "devices":
        p["devices"] = rnd.choice([1, 2])
        p["device_arena_bytes"] = [p["arena_bytes"]] * p["devices"]
        for e in p["order"]:
            e["device"] = rnd.randrange(p["devices"])
        for e in p["tensors"]:
            e["device"] = rnd.randrange(p["devices"])
    elif how == "dup_tensor" and roots:
        r = rnd.choice(roots)
        dup = dict(tens[r])
        dup["offset"] = rnd.choice([0, 256, 2**40])
        if rnd.random() < 0.5:
            p["tensors"].append(dup)
        else:
            p["tensors"].insert(0, dup)
    elif how == "dup_key" and roots:
        r = rnd.choice(roots)
        text = json.dumps(p)
        old = json.dumps(tens[r])
        inner = old[:-1] + f', "offset": {rnd.choice([0, 256, 512])}}}'
        if rnd.random() < 0.5:
            inner = "{" + f'"offset": {rnd.choice([0, 256, 512])}, ' + old[1:]
        text = text.replace(old, inner, 1)
    elif how == "twin":
        e = rnd.choice(p["order"])
        e["node"] = e["node"].replace("n", "\uff4e", 1)
    elif how == "view_off":
        views = [e for e in p["tensors"] if any(t["id"] == e["id"] and t.get("view_of") for t in graph["tensors"])]
        if views:
            e = rnd.choice(views)
            if e["offset"] is not None:
                e["offset"] += rnd.choice([-256, 256, 1, 2**64])
    elif how == "lb":
        p["lower_bound_bytes"] = rnd.choice([2**63 - 1, p["arena_bytes"] + 1, -1])
    elif how == "extra_order":
        p["order"].append(dict(rnd.choice(p["order"])))
    elif how == "streams_max":
        p["streams"] = rnd.choice([1024, 1025, 0, 2**63])
    elif how == "size_mismatch" and p["tensors"]:
        e = rnd.choice(p["tensors"])
        e["size"] += rnd.choice([1, 256, -e["size"], 2**63])
    elif how == "order_dup_key":
        e = rnd.choice(p["order"])
        text = json.dumps(p).replace(json.dumps(e), json.dumps(e)[:-1] + ', "stream": 0}', 1)
    elif how == "nan_text":
        text = json.dumps(p).replace('"arena_bytes": ', '"arena_bytes": ' + rnd.choice(["NaN", "Infinity", "1e400",
                                                                                          "-0", "1.0e3"]) + " + 0 * ",
                                     1).replace(" + 0 * ", ", \"x\": ", 1)
    return how, p, text


def device_edit(graph, plan, rnd: random.Random) -> dict:
    """A multi-device plan with one device field edited: a tensor or node moved to another device (its offset kept,
    or onto another device's root), a device arena shrunk, the device count changed, a device field dropped."""
    p = copy.deepcopy(plan)
    D = p["devices"]
    how = rnd.choice(["tensor", "node", "arena", "count", "root_onto", "drop", "none", "stream_dev"])
    if how == "tensor":
        e = rnd.choice(p["tensors"])
        e["device"] = rnd.choice([(e["device"] + 1) % D, D, -1, True])
    elif how == "node":
        e = rnd.choice(p["order"])
        e["device"] = (e["device"] + 1) % D
    elif how == "arena":
        d = rnd.randrange(D)
        p["device_arena_bytes"][d] = max(0, p["device_arena_bytes"][d] - rnd.choice([1, 256, 10**9]))
    elif how == "count":
        p["devices"] = rnd.choice([1, D - 1, D + 1])
    elif how == "root_onto":   # a root of one device moved onto the bytes of a root of another, then its device
        roots = [e for e in p["tensors"] if e["offset"] is not None and e["size"]]
        if len(roots) > 1:
            a, b = rnd.sample(roots, 2)
            a["offset"], a["device"] = b["offset"], b["device"]
    elif how == "drop":
        e = rnd.choice(p["tensors"] + p["order"])
        e.pop("device", None)
    elif how == "stream_dev":
        e = rnd.choice(p["order"])
        e["stream"] = rnd.randrange(p["streams"])
    return p


def semantic_edit(graph, plan, rnd: random.Random) -> dict:
    """A safe plan made unsafe in one well-formed way (a root moved onto another's bytes, an event dropped or
    turned round), for a hostile edit on top to hide."""
    p = copy.deepcopy(plan)
    roots = [r for r in _roots(graph) if any(t["id"] == r and t["size"] for t in graph["tensors"])]
    tens = {e["id"]: e for e in p["tensors"]}
    how = rnd.choice(["move", "drop_event", "flip_event"])
    if how == "move" and len(roots) > 1:
        a, b = rnd.sample(roots, 2)
        delta = tens[b]["offset"] - tens[a]["offset"]
        parent = {t["id"]: t.get("view_of") for t in graph["tensors"]}
        for e in p["tensors"]:   # the root and its views, moved together
            r = e["id"]
            while parent[r] is not None:
                r = parent[r]
            if r == a and e["offset"] is not None:
                e["offset"] += delta
        p["arena_bytes"] = max([p["arena_bytes"]] + [e["offset"] + e["size"] for e in p["tensors"]
                                                     if e["offset"] is not None])
    elif how == "drop_event" and p["events"]:
        p["events"].pop(rnd.randrange(len(p["events"])))
    elif how == "flip_event" and p["events"]:
        e = rnd.choice(p["events"])
        e["after"], e["before"] = e["before"], e["after"]
    return p


def verdict(gobj, gpath: str, doc: dict, text: str | None, d: str, fused: bool = False):
    """('ok'|'unsafe'|'refused'|'crash', detail, the plan dict as Python reads the text)."""
    path = os.path.join(d, "p.json")
    if text is None:
        try:
            text = json.dumps(doc)
        except (ValueError, OverflowError):
            return "skip", "", doc
    with open(path, "w") as f:
        f.write(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = doc
    try:
        plan = memplan.load_plan(path)
        memplan.verify(gobj, plan, fused_groups=fused)
        return "ok", "", parsed
    except UnsafePlan as e:
        return "unsafe", str(e)[:200], parsed
    except MemplanError as e:
        return "refused", str(e)[:200], parsed
    except Exception:   # noqa: BLE001
        return "crash", traceback.format_exc()[-800:], parsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nodes", type=int, default=12)
    ap.add_argument("--timeout", type=int, default=60, help="seconds after which a run counts as a hang")
    a = ap.parse_args(argv)
    found: Counter = Counter()
    shown: Counter = Counter()
    hows: Counter = Counter()
    with tempfile.TemporaryDirectory() as d:
        gpath = os.path.join(d, "g.json")
        def hung(signum, frame):
            raise TimeoutError(f"run past {a.timeout} s")
        signal.signal(signal.SIGALRM, hung)
        for run in range(a.runs):
            signal.alarm(a.timeout)
            try:
                one(run, a, d, gpath, found, shown, hows)
            except TimeoutError:
                found["hang", "?"] += 1
                print(f"== hang run {run} (seed {a.seed})", flush=True)
            signal.alarm(0)
    print("edits:", dict(hows))
    print("findings:", dict(found) or "none")
    return 1 if found else 0


def one(run, a, d, gpath, found, shown, hows) -> None:
    """Run ``run``: one graph, one plan, its edits and the verdicts."""
    if True:
        if True:
            rnd = random.Random(a.seed * 1_000_003 + run)
            graph = multistream_graph(rnd, a.nodes)
            try:
                gobj = memplan.graph_from_dict(graph)
            except MemplanError:
                return
            if rnd.random() < 0.3:   # a two-device plan of memplan's own and its split graph, device fields edited
                try:
                    planned = memplan.plan_graph(gobj, devices=rnd.choice([2, 3]))
                except MemplanError:
                    return
                gobj, graph = planned.graph, planned.graph.to_dict()
                plan = device_edit(graph, planned.plan.to_dict(), rnd)
            elif rnd.random() < 0.6:   # a safe plan of memplan's own, for an edit to make unsafe
                try:
                    plan = memplan.plan(gobj, streams=rnd.choice([1, 2, 3, "auto"])).to_dict()
                except MemplanError:
                    return
                plan = semantic_edit(graph, plan, rnd) if rnd.random() < 0.5 else plan
            else:
                plan = multistream_plan(graph, rnd)
            how, text = "base", None
            for _ in range(rnd.choice([0, 1, 1, 2])):
                how, plan, text = edit(graph, plan, rnd)
                if text is not None:
                    break
            hows[how] += 1
            if run % 500 == 0:
                print(f"... {run} runs, findings {sum(found.values())}", flush=True)
            fused = rnd.random() < 0.3
            v, detail, parsed = verdict(gobj, gpath, plan, text, d, fused)
            kind = None
            if v == "crash":
                kind = "crash"
            elif v == "ok":
                try:
                    broken = set() if parsed.get("devices", 1) != 1 else reference.check_plan(gobj, parsed)
                    broken |= {r for r, _ in oracle.findings(graph, parsed, fused_groups=fused)}
                except Exception as exc:   # noqa: BLE001
                    broken = {f"judge raised {exc!r}"}
                if broken:
                    kind = "accepted-unsafe"
                    detail = f"reference: {broken}"
            if kind:
                found[kind, how] += 1
                if shown[kind, how] < 2:
                    shown[kind, how] += 1
                    print(f"== {kind} [{how}] run {run}: {detail}", flush=True)
                    json.dump({"graph": graph, "plan": parsed}, open(f"/tmp/h61_{kind}_{how}_{run}.json", "w"))


if __name__ == "__main__":
    sys.exit(main())
