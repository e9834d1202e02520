"""Traced memory per phase of ``plan(KIND(20000), streams=S)`` (round 65): each wrapped call's traced peak, what it
found and what it leaves, tracing from the first happens-before on (graph_optimize traced is many times slower).
``PYTHONPATH=. python docs/experiments/scale_s65_phases.py layered 1024``; the graph's own memory is not counted."""
import importlib
import sys
import time
import tracemalloc

import memplan
import memplan.lifetimes as L
from memplan.benchmarks.scale import layered_graph, random_dag

plan_mod = importlib.import_module("memplan.plan")

g = (random_dag if sys.argv[1] == "random" else layered_graph)(20000)
streams = sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2])
def wrap(mod, name):
    real = getattr(mod, name)
    def w(*a, **k):
        if not tracemalloc.is_tracing():
            tracemalloc.start()   # (from the first happens-before on: graph_optimize untraced, it is slow traced)
        cur0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        t = time.perf_counter()
        r = real(*a, **k)
        cur, peak = tracemalloc.get_traced_memory()
        print(f"{name:22s} before={cur0/2**20:6.0f} peak={peak/2**20:6.0f} after={cur/2**20:6.0f} MiB  {time.perf_counter()-t:6.1f}s", flush=True)
        return r
    setattr(mod, name, w)
for n in ("compute_lifetimes", "build_happens_before", "buffer_problem", "solve", "verify"):
    if hasattr(plan_mod, n):
        wrap(plan_mod, n)
wrap(L, "_thresholds"); wrap(L, "aligned_lower_bound")
p = memplan.plan(g, streams=streams)
print("overall peak", tracemalloc.get_traced_memory()[1] / 2**20)
