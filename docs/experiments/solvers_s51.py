"""Session 51: the search's setup, before and after side by side, and ``time_limit`` end to end.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/solvers_s51.py [--base main] [--sizes 1000,3000]
[--time-limit 1]``. "Before" is the whole ``memplan`` package of commit ``--base`` (``git archive`` into a temporary
folder), run in a child process of its own; "after" is this checkout, likewise. Each process builds the same
problems from the library's generators (deterministic):

- ``tiled``: minimalloc's A-K (``../shared/data/minimalloc``) laid one after the other in time, cut to N buffers
  (an interval problem, few overlapping pairs);
- ``dense``: N buffers of random sizes each live over half to all of N steps (an interval problem, ~N^2/2 pairs);
- ``layered``: the problem ``plan(layered_graph(N), streams=4)`` solves (HB-filtered: cliques in each section).

and prints, per problem: buffers, overlapping pairs, the search's setup (``PackingSearch``: wall and process seconds),
then ``solve(problem, "search", SolveOptions(time_limit=L))`` from a given start (the default solve's plan, made
first and not timed): wall and process seconds, arena, status, nodes, whether it was stopped or skipped, and a hash
of the offsets, so that the two versions' plans can be compared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile

CHILD = r'''
import json, sys, time, hashlib, warnings
import numpy as np
from memplan.problem import BufferProblem
from memplan.solvers import solve, search_tree
from memplan.solvers.named import default_plan
from memplan.solvers.options import SearchParams, SolveOptions
from memplan.io.minimalloc import read_csv

def tiled(n, data):
    base = [read_csv(f"{data}/challenging/{c}.1048576.csv").problem() for c in "ABCDEFGHIJK"]
    sizes, lo, up, t, k = [], [], [], 0, 0
    while sum(map(len, sizes)) < n:
        p = base[k % len(base)]; k += 1
        sizes.append(p.sizes); lo.append(p.lower + t); up.append(p.upper + t); t = int(up[-1].max())
    return BufferProblem(np.concatenate(sizes)[:n], np.concatenate(lo)[:n], np.concatenate(up)[:n])

def dense(n, data):
    rng = np.random.default_rng(0)
    lo = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 16, n) * 64, lo, lo + rng.integers(n // 2, n, n), alignment=64)

def layered(n, data):
    from memplan.benchmarks.scale import layered_graph
    from memplan.lifetimes import buffer_problem
    from memplan.optimize import graph_optimize
    from memplan.schedule import build_happens_before
    g = layered_graph(n)
    return buffer_problem(g, build_happens_before(g, graph_optimize(g, 4)))

kind, n, limit, data = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
p = {"tiled": tiled, "dense": dense, "layered": layered}[kind](n, data)
row = {"kind": kind, "n": n, "buffers": len(p), "pairs": p.overlap_count(), "interval": bool(p.is_interval)}
p.conflict_pairs()   # (cached on the problem: both versions' setup then starts from the same pairs)
t, c = time.perf_counter(), time.process_time()
search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10 ** 9, 1e9))
row["setup_s"], row["setup_cpu_s"] = round(time.perf_counter() - t, 3), round(time.process_time() - c, 3)
q = BufferProblem(p.sizes, p.lower, p.upper, alignment=p.alignment, order=p.order, compatible=p.compatible,
                  inplace=p.inplace, lower_bound=p.lower_bound)   # (fresh: no cached pairs)
start = default_plan(q, SolveOptions())
t, c = time.perf_counter(), time.process_time()
with warnings.catch_warnings(record=True) as ws:
    warnings.simplefilter("always")
    s = solve(q, "search", SolveOptions(time_limit=limit, default_start=start))
row.update({"solve_s": round(time.perf_counter() - t, 3), "solve_cpu_s": round(time.process_time() - c, 3),
            "arena": int(s.arena), "status": str(s.status), "nodes": s.info.get("nodes"),
            "stopped": s.info.get("stopped"), "skipped": s.info.get("skipped"),
            "offsets": hashlib.sha1(np.asarray(s.offsets, dtype=np.int64).tobytes()).hexdigest()[:12],
            "warnings": [w.category.__name__ for w in ws]})
print(json.dumps(row))
'''


def checkout(base: str) -> str:
    """The ``memplan`` package of commit ``base`` in a temporary folder (for PYTHONPATH)."""
    folder = tempfile.mkdtemp(prefix="memplan_before_")
    tar = os.path.join(folder, "src.tar")
    subprocess.run(["git", "archive", "-o", tar, base, "memplan"], check=True)
    with tarfile.open(tar) as f:
        f.extractall(folder, filter="data")
    return folder


def run(path: str, kind: str, n: int, limit: float, data: str) -> dict:
    env = {**os.environ, "PYTHONPATH": path}
    # (run in ``path``: ``python -c`` puts the working directory first on sys.path, and a checkout's own memplan
    # there would shadow the one asked for)
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(limit), data], env=env, check=True,
                         capture_output=True, text=True, cwd=path).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--sizes", default="1000,3000")
    ap.add_argument("--kinds", default="tiled,dense,layered")
    ap.add_argument("--time-limit", type=float, default=1.0)
    ap.add_argument("--data", default=os.path.abspath(os.path.join(os.getcwd(), "..", "shared", "data", "minimalloc")))
    args = ap.parse_args()
    before = checkout(args.base)
    after = os.getcwd()
    print("kind     N     buffers  pairs     version setup wall/cpu s  solve wall/cpu s  arena      status    "
          "nodes   stop/skip  offsets")
    for kind in args.kinds.split(","):
        for n in map(int, args.sizes.split(",")):
            rows = {"before": run(before, kind, n, args.time_limit, args.data),
                    "after": run(after, kind, n, args.time_limit, args.data)}
            for version, r in rows.items():
                print(f"{kind:8s} {n:5d} {r['buffers']:7d}  {r['pairs']:9d} {version:7s} "
                      f"{r['setup_s']:6.2f}/{r['setup_cpu_s']:5.2f}      {r['solve_s']:6.2f}/{r['solve_cpu_s']:5.2f}    "
                      f"{r['arena']:10d} {r['status']:9s} {r['nodes'] or 0:7d} "
                      f"{(r['stopped'] or r['skipped'] or '-'):10s} {r['offsets']}", flush=True)
            same = rows["before"]["offsets"] == rows["after"]["offsets"]
            print(f"{'':28s} same offsets: {same}")


if __name__ == "__main__":
    main()
