"""Round 64 (usage: PYTHONPATH=TREE python docs/experiments/csr_time_s64.py N SPAN csr|lists|nb|arrays; results in
skyline_unit_s64.txt): Time (no tracemalloc) of conflict_csr() / conflict_lists() / skyline.neighbours, and maxrss, best of 3."""
import resource
import sys
import time

import numpy as np

import memplan
from memplan.problem import BufferProblem
from memplan.solvers import skyline

n, span, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
lo = rng.integers(0, n, n)
p = BufferProblem(rng.integers(1, 1 << 20, n), lo, lo + rng.integers(1, span, n))
f = {"csr": lambda: p.conflict_csr(), "lists": lambda: p.conflict_lists(), "nb": lambda: skyline.neighbours(p),
     "arrays": lambda: p.conflict_csr(as_lists=False)}[what]
best = 1e9
for _ in range(3):
    t = time.perf_counter(); r = f(); best = min(best, time.perf_counter() - t); del r
print(f"{memplan.__file__.split('/')[2]:6s} n={n} span={span} {what}: {best:.3f}s maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MiB")
