"""``python docs/experiments/scale_s65_plan.py KIND STREAMS [trace [N]]`` (round 65): plan ``KIND(N)`` (layered or
random, N 20000) on STREAMS ('auto' or a number); the plan JSON's sha1, seconds, and with ``trace`` the tracemalloc
peak. Peak RSS: run it under ``/usr/bin/time -v``."""
import hashlib
import sys
import time
import tracemalloc

import memplan
from memplan.benchmarks.scale import layered_graph, random_dag

kind, streams = sys.argv[1], sys.argv[2]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
g = (layered_graph if kind == "layered" else random_dag)(n)
streams = streams if streams == "auto" else int(streams)
trace = len(sys.argv) > 3 and sys.argv[3] == "trace"
if trace:
    tracemalloc.start()
t = time.perf_counter()
p = memplan.plan(g, streams=streams)
dt = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0
print(f"{kind} {n} streams={streams} sha1={hashlib.sha1(p.to_json().encode()).hexdigest()[:12]} time={dt:.1f}s traced_peak={peak:.0f}MiB")
