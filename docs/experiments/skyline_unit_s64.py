"""Round 64: the skyline caps counted in conflicting pairs (what a walk visits), not overlapping intervals.

Usage: ``PYTHONPATH=TREE python docs/experiments/skyline_unit_s64.py [NAMES]`` (NAMES: comma-separated ``graph:s1|s3|
sauto``; default every graph below, every option set): one line a plan, its arena, bound, CPU, and every
``skyline.solve`` it ran (buffers, ``auto._walk_work``, arena). Graphs: round 63's 33 extra seeds' families (random
and layered DAGs of 250-600 nodes, seeds 3-6; deep skips 1,500; tiny 6,000). Compare two trees' outputs line by line
(``compare OLD NEW``). Results: docs/experiments/skyline_unit_s64.txt.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_s59 import deep_skips, tiny  # noqa: E402,I001

import memplan  # noqa: E402,I001
from memplan.benchmarks import scale  # noqa: E402,I001
from memplan.solvers import auto, skyline  # noqa: E402,I001

STREAMS = {"s1": {}, "s3": {"streams": 3}, "sauto": {"streams": "auto"}}


def graphs() -> dict:
    gs = {}
    for n in (250, 400, 600):
        for seed in (3, 4, 5, 6):
            gs[f"rdag{n}.{seed}"] = (lambda n=n, seed=seed: scale.random_dag(n, seed=seed))
            gs[f"layered{n}.{seed}"] = (lambda n=n, seed=seed: scale.layered_graph(n, seed=seed))
    gs["deepskips1500"] = lambda: deep_skips(1500)
    gs["tiny6000"] = lambda: tiny(6000)
    return gs


def table(names: list[str]) -> None:
    solves: list[str] = []
    real = skyline.solve

    def solve(problem, **k):
        sol = real(problem, **k)
        solves.append(f"{len(problem)}/{auto._walk_work(problem)}/{sol.arena}")
        return sol
    skyline.solve = solve
    gs = graphs()
    items = [tuple(s.rsplit(":", 1)) for s in names] if names else [(a, s) for a in gs for s in STREAMS]
    for name, sname in items:
        g = gs[name]()
        solves.clear()
        c = time.process_time()
        p = memplan.plan(g, **STREAMS[sname])
        cpu = time.process_time() - c
        memplan.verify(g, p)
        gap = 100.0 * (p.arena_bytes - p.lower_bound_bytes) / max(1, p.lower_bound_bytes)
        print(f"{name:14} {sname:6} {p.arena_bytes:>10} {p.lower_bound_bytes:>10} {gap:6.2f} {cpu:6.2f} "
              f"{p.solver.get('name'):8} {' '.join(solves)}", flush=True)


def compare(old: str, new: str) -> None:
    rows = [{tuple(line.split()[:2]): line.split() for line in open(path) if len(line.split()) >= 7}
            for path in (old, new)]
    better = worse = 0
    for k in rows[0]:
        if k not in rows[1]:
            continue
        a, b = rows[0][k], rows[1][k]
        sa, sb = a[7:], b[7:]
        mark = "better" if int(b[2]) < int(a[2]) else "WORSE" if int(b[2]) > int(a[2]) else ""
        better += mark == "better"
        worse += mark == "WORSE"
        if mark or sa != sb:
            print(f"{k[0]:14} {k[1]:6} plan {a[2]:>10} -> {b[2]:>10} gap {a[4]:>5}% -> {b[4]:>5}%  cpu {a[5]} -> {b[5]} "
                  f"{mark:6} skyline {' '.join(sa)} -> {' '.join(sb)}")
    print(f"rows {len(rows[0])}: plans better {better}, worse {worse}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        table([s for s in sys.argv[1].split(",") if s] if len(sys.argv) > 1 else [])
