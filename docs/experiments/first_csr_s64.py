"""Round 64 (usage: PYTHONPATH=TREE python docs/experiments/first_csr_s64.py B S; results in skyline_unit_s64.txt):
first_csr above the ledger's cap: builds and time of greedy and conflict_pairs on a problem whose precedence columns
exceed CSR_CACHE_BYTES (B buffers x S streams, every entry able to fail)."""
import sys
import time

import numpy as np

import memplan
from memplan import _csrcache
from memplan.problem import BufferProblem, HBOrder, clique_lower_bound
from memplan.solvers import get_solver

B, S = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
lower = rng.integers(0, B, B); upper = lower + rng.integers(1, 30, B)
order = HBOrder(first=rng.integers(0, 1000, (B, S)), visible=rng.integers(0, 1000, (B, S)),
                has_start=np.zeros(B, bool), has_end=np.zeros(B, bool), last_time=lower.copy())
p = BufferProblem(sizes=rng.integers(1, 1 << 16, B), lower=lower, upper=upper, order=order)
builds = [0]
orig = HBOrder.first_csr
def counted(self):
    if self.__dict__.get(_csrcache.FIRST_ATTR) is None:
        builds[0] += 1
    return orig(self)
HBOrder.first_csr = counted
nb = sum(a.nbytes for a in orig(order)); order.__dict__.pop(_csrcache.FIRST_ATTR, None); _csrcache.LEDGER.clear()
tag = memplan.__file__.split('/')[2]
t = time.perf_counter(); pairs = p.conflict_pairs(chunk=1 << 14); t1 = time.perf_counter() - t; b1 = builds[0]
t = time.perf_counter(); sol = get_solver("greedy")(p); t2 = time.perf_counter() - t
print(f"{tag:6s} B={B} S={S} first_csr {nb/2**20:.0f} MiB (cap {_csrcache.CSR_CACHE_BYTES/2**20:.0f}): conflict_pairs(chunk=16384) "
      f"{t1:.2f}s {b1} builds; greedy {t2:.2f}s {builds[0]-b1} builds arena {sol.arena} pairs {len(pairs[0])}")
b0 = builds[0]; t = time.perf_counter()
bound = clique_lower_bound(p, max_pairs=0, seeds=8, pair_budget=200_000)
print(f"{tag:6s} clique_lower_bound (dense, 8 seeds) {time.perf_counter()-t:.2f}s {builds[0]-b0} builds bound {bound}")
