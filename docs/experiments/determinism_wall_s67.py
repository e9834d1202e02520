"""Round 67 (determ67): a plan the wall-clock safety stop changed always says so.

Plans 5 graphs x 12 time-limited option sets (search, cpsat, auto; streams, CP-SAT workers, memory budgets, devices,
fused groups) at ``time_limit=0.3``, then again with ``SolveOptions.wall_seconds`` patched to return the argument (a
machine that slow): every plan that differs must carry ``"stopped": "wall_clock"`` somewhere in its solver block.
Run: ``PYTHONPATH=$PWD python docs/experiments/determinism_wall_s67.py 0.02`` (results in determinism_s67.txt).
"""
import json
import sys
import warnings

import memplan
from memplan import examples
from memplan.benchmarks.scale import layered_graph, random_dag, wide_graph
from memplan.solvers.options import SolveOptions

warnings.simplefilter("ignore")
graphs = {"moe": examples.moe(6), "rand": random_dag(120, seed=2), "wide": wide_graph(40), "layer": layered_graph(150, seed=1),
          "views": examples.views_inplace()}
runs = [("search", {}), ("cpsat", {}), ("auto", {}), ("search", {"streams": "auto"}), ("auto", {"streams": 2}),
        ("cpsat", {"streams": "auto", "workers": 2}), ("auto", {"streams": "auto", "budget": 1.0}),
        ("search", {"streams": "auto", "budget": 0.95}), ("auto", {"budget": 0.9}),
        ("auto", {"devices": 2, "streams": "auto"}), ("cpsat", {"devices": 2}), ("auto", {"streams": "auto", "fused_groups": True})]
def marked(block):
    if isinstance(block, dict):
        return block.get("stopped") == "wall_clock" or any(marked(v) for v in block.values())
    if isinstance(block, list):
        return any(marked(v) for v in block)
    return False
def once():
    out = {}
    for name, g in graphs.items():
        serial = memplan.plan(g).arena_bytes
        for k, (s, o) in enumerate(runs):
            o = dict(o)
            if "budget" in o:
                o["memory_budget"] = int(o.pop("budget") * serial)
            try:
                d = memplan.plan(g, solver=s, time_limit=0.3, **o).to_json()
                out[f"{name}/{k}/{s}"] = (d, marked(json.loads(d)["solver"]))
            except memplan.errors.MemplanError as e:
                out[f"{name}/{k}/{s}"] = (str(e), False)
    return out
base = once()
orig = SolveOptions.wall_seconds
SolveOptions.wall_seconds = lambda self, w: float(sys.argv[1])
cut = once()
SolveOptions.wall_seconds = orig
bad = 0
for k in base:
    (a, ma), (b, mb) = base[k], cut[k]
    if ma:
        print("base marked?", k)
    if a != b and not mb:
        bad += 1
        print("UNMARKED DIFF", k)
    print(k, "same" if a == b else "diff", "marked" if mb else "-")
print("unmarked diffs", bad)
