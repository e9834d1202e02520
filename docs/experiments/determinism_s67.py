"""Round 67 (determ67): plan JSON byte-identical across hash seeds, Python 3.11/3.12, key orders, load and history.

One line per case, ``<graph>/<run>/<solver> <plan sha16 + graph-out sha8> <stopped> <key order>``: 18 graphs (the
bundled examples but llama prefill, ``fanout_join``, ``random_dag``, ``wide_graph``, ``layered_graph``, ``io_graph``,
a node of two in-place outputs, two graphs of fused groups with non-integer costs) x 23 option sets (every solver,
time limits, seeds, CP-SAT workers, streams 2/3/auto, max events, fused groups, memory budgets, devices 2/3,
alignment, event latency); the time-limited and exact runs are skipped on the two llama graphs. Each case is also
planned from the graph's document with its keys shuffled twice and sorted (``ok``, or ``KEYORDER<i>plan|graph``
where a plan or the ``--graph-out`` document differs; the sorted one's llama ``attrs`` keep their key order, as
documented). ``REVERSE=1`` plans the graphs and runs in the reverse order (a plan must not depend on the calls
before it in the process). Run (from the repository root):

    PYTHONPATH=$PWD PYTHONHASHSEED=0 python docs/experiments/determinism_s67.py > a.txt
    PYTHONPATH=$PWD PYTHONHASHSEED=random /work/venv312/bin/python docs/experiments/determinism_s67.py > b.txt
    python docs/experiments/determinism_s67.py --compare a.txt b.txt

Results: docs/experiments/determinism_s67.txt.
"""

import hashlib
import json
import os
import random
import sys

import memplan
from memplan import GraphBuilder, examples, generators
from memplan.benchmarks.scale import io_graph, layered_graph, random_dag, wide_graph


def twoinplace():
    b = GraphBuilder("two_inplace")
    x = b.input("x", 4096); y = b.input("y", 4096)
    a = b.intermediate("a", 4096); c = b.intermediate("c", 4096)
    b.node("mk", "OP", [x], a, cost=1.5); b.node("mk2", "OP", [y], c, cost=0.3)
    p = b.intermediate("p", 4096); q = b.intermediate("q", 4096)
    b.node("both", "OP2", [a, c], [p, q], inplace={"q": "c", "p": "a"}, cost=0.7)
    v = b.intermediate("v", 2048, view_of="p", view_offset=2048)
    o = b.output("o", 4096)
    b.node("fin", "ADD", [v, q], o, cost=0.1)
    return b.build()

COSTS = [0.1, 0.2, 0.3, 0.7, 1.1, 0.0005, 2.3, 0.35]
def fgraph(seed, n):
    rng = random.Random(seed)
    b = GraphBuilder(f"f{seed}")
    made = [b.input("x0", 1024), b.input("x1", 2048)]
    i = 0
    while i < n:
        glen = rng.choice([1, 1, 1, 2, 3])
        grp = f"g{i}" if glen > 1 else None
        prev = None
        for _ in range(glen):
            ins = {rng.choice(made[-6:]) for _ in range(rng.randint(1, 2))}
            if prev is not None:
                ins.add(prev)
            t = b.intermediate(f"t{i}", rng.choice([256, 512, 1024, 4096]))
            b.node(f"n{i}", "OP", sorted(ins), t, cost=rng.choice(COSTS), group=grp)
            made.append(t); prev = t; i += 1
    y = b.output("y", 1024)
    b.node("end", "ADD", made[-3:], y, cost=0.1)
    return b.build()

def compare(a_path: str, b_path: str) -> None:
    """Print each case whose plan differs between two runs, marked where either was cut by the wall clock."""
    def rows(p):
        return {line.split()[0]: line.split()[1:] for line in open(p)}
    a, b = rows(a_path), rows(b_path)
    diff = 0
    for k in a:
        if k in b and a[k][0] != b[k][0]:
            diff += 1
            print("DIFF", k, a[k], b[k], "(stopped)" if "wall_clock" in (a[k][1], b[k][1]) else "UNMARKED")
    print(f"compared {sum(k in b for k in a)}, differ {diff}")


if len(sys.argv) > 2 and sys.argv[1] == "--compare":
    compare(sys.argv[2], sys.argv[3])
    sys.exit(0)


graphs = dict(examples.bundled())
graphs.pop("llama-1b-prefill")
graphs.update({"fj": generators.fanout_join(40, seed=3)[0], "rand": random_dag(80, seed=2), "wide": wide_graph(24),
               "layer": layered_graph(60, seed=1), "io": io_graph(40), "two": twoinplace(), "f1": fgraph(1, 30),
               "f2": fgraph(2, 40)})
flt = sys.argv[1] if len(sys.argv) > 1 else ""
heavy = {"llama-1b-decode", "llama-tiny"}
runs = [("greedy", {}), ("size", {}), ("ggml", {}), ("auto", {}), ("search", {"time_limit": 0.1}),
        ("search", {"time_limit": 0.1, "seed": 3}), ("cpsat", {"time_limit": 0.1}),
        ("auto", {"time_limit": 0.1}), ("auto", {"streams": 2}), ("size", {"streams": 3}),
        ("auto", {"streams": "auto"}), ("auto", {"streams": "auto", "max_events": 2}),
        ("auto", {"streams": "auto", "fused_groups": True, "max_events": 4}),
        ("auto", {"streams": "auto", "budget": 1.0}), ("auto", {"streams": "auto", "budget": 0.95, "time_limit": 0.1}),
        ("auto", {"budget": 0.9}),
        ("search", {"streams": "auto", "time_limit": 0.1}), ("cpsat", {"streams": 2, "time_limit": 0.1}),
        ("cpsat", {"time_limit": 0.1, "workers": 2}),
        ("auto", {"devices": 2}), ("auto", {"devices": 2, "streams": "auto", "time_limit": 0.1}),
        ("auto", {"devices": 3}),
        ("auto", {"streams": "auto", "alignment": 4096, "event_us": 0.3})]

def reorder(v, rng):
    if isinstance(v, dict):
        ks = list(v); rng.shuffle(ks)
        return {k: reorder(v[k], rng) for k in ks}
    if isinstance(v, list):
        return [reorder(x, rng) for x in v]
    return v

items = list(graphs.items())
if os.environ.get("REVERSE"):
    items = items[::-1]
    runs_idx = list(enumerate(runs))[::-1]
else:
    runs_idx = list(enumerate(runs))
for name, g in items:
    if flt and flt not in name:
        continue
    serial = memplan.plan(g).arena_bytes
    doc = g.to_dict()
    perms = [memplan.graph_from_dict(json.loads(json.dumps(reorder(doc, random.Random(s))))) for s in (1, 2)]
    perms.append(memplan.graph_from_dict(json.loads(json.dumps(doc, sort_keys=True))))
    for k, (solver, opts) in runs_idx:
        if name in heavy and (opts.get("time_limit") or solver in ("search", "cpsat")):
            continue
        opts = dict(opts)
        if "budget" in opts:
            opts["memory_budget"] = int(opts.pop("budget") * serial)
        if "event_us" in opts:
            opts["cost_model"] = memplan.CostModel(event_us=opts.pop("event_us"))
        def one(gr, solver=solver, opts=opts):
            try:
                p = memplan.plan_graph(gr, solver=solver, **opts)
                d = p.plan.to_json()
                gd = json.dumps(p.graph.to_dict(), default=str) if p.graph is not gr else ""
                st = json.loads(p.plan.to_json())["solver"].get("stopped", "-")
            except memplan.errors.MemplanError as exc:
                d, st, gd = f"{type(exc).__name__}: {exc}", "-", ""
            return hashlib.sha256(d.encode()).hexdigest()[:16] + hashlib.sha256(gd.encode()).hexdigest()[:8], st
        h, st = one(g)
        ko = "ok"
        for i, pg in enumerate(perms):
            h2, st2 = one(pg)
            if h2 != h and st == "-" and st2 == "-":
                ko = f"KEYORDER{i}" + ("plan" if h2[:16] != h[:16] else "graph")
        print(f"{name}/{k}/{solver} {h} {st} {ko}", flush=True)
