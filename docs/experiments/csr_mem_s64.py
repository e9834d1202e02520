"""Round 64 (results in skyline_unit_s64.txt): Peak (tracemalloc) and time of conflict_csr(as_lists=True) and skyline.neighbours on an interval problem.
usage: PYTHONPATH=TREE python csrmem.py N SPAN"""
import gc
import sys
import time
import tracemalloc

import numpy as np

import memplan
from memplan.problem import BufferProblem
from memplan.solvers import skyline

n, span = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
lo = rng.integers(0, n, n)
p = BufferProblem(rng.integers(1, 1 << 20, n), lo, lo + rng.integers(1, span, n))
def measure(what, f):
    gc.collect(); tracemalloc.start(); t = time.perf_counter()
    r = f()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return r, dt, peak
p.conflict_pairs()
r, dt, peak = measure("csr", lambda: p.conflict_csr())
E = len(r[1]); del r
print(f"{memplan.__file__.split('/')[2]:6s} n={n} entries={E}: conflict_csr() {dt:.2f}s peak {peak/2**20:.0f} MiB", end="; ")
r, dt, peak = measure("nb", lambda: skyline.neighbours(p)); del r
print(f"neighbours {dt:.2f}s peak {peak/2**20:.0f} MiB", end="; ")
r, dt, peak = measure("cl", lambda: p.conflict_lists()); del r
print(f"conflict_lists {dt:.2f}s peak {peak/2**20:.0f} MiB")
