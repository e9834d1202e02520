"""Session 62: the default's arena on 100+ graphs (families x sizes x streams 1 / 3 / auto, seeds), before and after.

    PYTHONPATH=OLD python docs/experiments/quality_s62.py table > old.txt   # one row a graph and option set:
    python docs/experiments/quality_s62.py table > new.txt                  # arena, bound, cpu, solver, verified
    python docs/experiments/quality_s62.py compare old.txt new.txt          # rows improved / worse, max / median gap
    python docs/experiments/quality_s62.py budget                           # streams="auto" with a memory budget

Every plan is verified again here (``ver``) and its JSON hashed (``sha``: the planset of a row). ``cpu``:
``time.process_time`` of one plan (a shared machine: compare only as rough ratios).
"""
import hashlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import memplan  # noqa: E402,I001
from memplan.benchmarks import scale  # noqa: E402,I001
from memplan.generators import fanout_join  # noqa: E402,I001
from quality_s59 import deep_skips, inception, moe_layer, tiny, transformer, unet  # noqa: E402,I001

STREAMS = {"s1": {}, "s3": {"streams": 3}, "sauto": {"streams": "auto"}}


def graphs():
    gs = {}
    for n in (600, 2000):
        for seed in (0, 1):
            gs[f"deepskips{n}.{seed}"] = (lambda n=n, seed=seed: deep_skips(n, seed=seed))
    gs["deepskips5k"] = lambda: deep_skips(5000, span=1000)
    gs["deepskips10k"] = lambda: deep_skips(10000, span=1000)
    gs["tiny3k"] = lambda: tiny(3000)
    gs["tiny10k"] = lambda: tiny(10000)
    for n in (150, 300, 1000):
        for seed in (0, 1):
            gs[f"rdag{n}.{seed}"] = (lambda n=n, seed=seed: scale.random_dag(n, seed=seed))
            gs[f"layered{n}.{seed}"] = (lambda n=n, seed=seed: scale.layered_graph(n, seed=seed))
            gs[f"fj{n}.{seed}"] = (lambda n=n, seed=seed: fanout_join(n, seed=seed)[0])
    gs["rdag3000"] = lambda: scale.random_dag(3000, seed=1)
    gs["layered3000"] = lambda: scale.layered_graph(3000)
    for c in (6, 12):
        gs[f"nasnet{c}"] = (lambda c=c: inception(c, nasnet=True))
        gs[f"inception{c}"] = (lambda c=c: inception(c))
    gs["moe16"] = lambda: moe_layer(16)
    gs["unet5"] = lambda: unet(5)
    gs["transformer4"] = lambda: transformer(4)
    gs["wide200"] = lambda: scale.wide_graph(200)
    gs["chains20"] = lambda: scale.chains_graph(20)
    return gs


#: heavy rows skipped (minutes each on a shared 2-core machine)
HEAVY = {"deepskips10k": {"s3", "sauto"}, "deepskips5k": {"sauto"}, "tiny10k": {"s3", "sauto"},
         "rdag3000": {"sauto"}, "layered3000": {"sauto"}}


def table() -> None:
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    print(f"{'graph':16} {'set':6} {'arena':>11} {'bound':>11} {'gap%':>6} {'cpu':>6} ver {'sha':12} solver")
    for name, make in graphs().items():
        if only and name not in only:
            continue
        g = make()
        for sname, opts in STREAMS.items():
            if sname in HEAVY.get(name, ()):
                continue
            c = time.process_time()
            try:
                p = memplan.plan(g, **opts)
            except Exception as e:  # noqa: BLE001 (a row of the table)
                print(f"{name:16} {sname:6} ERROR {type(e).__name__}: {str(e)[:100]}", flush=True)
                continue
            cpu = time.process_time() - c
            try:
                memplan.verify(g, p)
                ok = "ok"
            except Exception:  # noqa: BLE001
                ok = "BAD"
            sha = hashlib.sha256(p.to_json().encode()).hexdigest()[:12]
            gap = 100.0 * (p.arena_bytes - p.lower_bound_bytes) / max(1, p.lower_bound_bytes)
            print(f"{name:16} {sname:6} {p.arena_bytes:>11} {p.lower_bound_bytes:>11} {gap:>6.2f} {cpu:>6.2f} {ok:3} "
                  f"{sha:12} {p.solver.get('name')}", flush=True)


def _rows(path: str) -> dict:
    rows = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 9 and f[2].isdigit():
            rows[(f[0], f[1])] = (int(f[2]), int(f[3]), float(f[4]), float(f[5]), f[6])
    return rows


def compare(old: str, new: str) -> None:
    a, b = _rows(old), _rows(new)
    keys = [k for k in a if k in b]
    better = [k for k in keys if b[k][0] < a[k][0]]
    worse = [k for k in keys if b[k][0] > a[k][0]]
    for k in keys:
        if k in better or k in worse:
            print(f"{k[0]:16} {k[1]:6} {a[k][0]:>11} -> {b[k][0]:>11}  gap {a[k][2]:6.2f}% -> {b[k][2]:6.2f}%  "
                  f"cpu {a[k][3]:6.2f} -> {b[k][3]:6.2f}")
    above = [k for k in keys if a[k][2] > 0]
    print(f"rows {len(keys)}; improved {len(better)}; worse {len(worse)}; unverified {sum(b[k][4] != 'ok' for k in keys)}")
    for label, rows in (("old", a), ("new", b)):
        gaps = [rows[k][2] for k in keys]
        gaps_above = [rows[k][2] for k in above]
        print(f"{label}: max gap {max(gaps):.2f}%  median gap {statistics.median(gaps):.2f}%  median gap of the "
              f"{len(above)} rows above the bound before {statistics.median(gaps_above):.2f}%  total cpu "
              f"{sum(rows[k][3] for k in keys):.1f} s")


def budget() -> None:
    """``streams="auto"`` with a memory budget of greedy's serial arena x 1.0 / 0.98 (the budget's cheap verdicts walk
    ``skyline``'s repair too: ``auto.skyline_within``)."""
    gs = {"deepskips2000": lambda: deep_skips(2000), "layered300": lambda: scale.layered_graph(300),
          "rdag300.1": lambda: scale.random_dag(300, seed=1), "rdag150.1": lambda: scale.random_dag(150, seed=1),
          "layered1000": lambda: scale.layered_graph(1000)}
    for name, make in gs.items():
        g = make()
        serial = memplan.plan(g, solver="greedy").arena_bytes
        for share in (1.0, 0.98):
            c = time.process_time()
            p = memplan.plan(g, streams="auto", memory_budget=int(serial * share))
            memplan.verify(g, p)
            print(f"{name:14} {share:5} {int(serial * share):>8} {p.arena_bytes:>10} {time.process_time() - c:5.2f}s "
                  f"streams {p.streams}", flush=True)


if __name__ == "__main__":
    {"table": table, "budget": budget, "compare": lambda: compare(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
