"""Session 57: CP-SAT with 1, 2 and 4 ``workers`` side by side, before and after the one-worker-first portfolio.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/cpsat_s57.py [--base main] [--problems 30]
[--limits 0.5,1]``. "Before" is the whole ``memplan`` package of commit ``--base`` (``git archive`` into a temporary
folder), run in a child process of its own; "after" is this checkout, likewise. Each child builds the same random
interval problems (``problem(seed)``: 120 buffers over 100 steps, each live 1-39 steps, 8-504 B) and prints, per
problem, limit and workers: the arena of ``Objective.MINIMIZE``, its status (``!``: the wall-clock safety stop cut
it, so that plan may not repeat) and wall seconds (a 2-core machine shared with other jobs); then, asked to fit the
arena one worker reached (``Objective.FIT``), whether 2 and 4 workers fit it too ("-" where the start already fits).
The summary counts the problems where more workers planned a larger arena than one, or failed to fit.
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
import dataclasses, json, sys, time, warnings
import numpy as np
from memplan.problem import BufferProblem
from memplan.solvers import Objective, SolveOptions, solve
warnings.simplefilter("ignore")

def problem(seed, n=120):
    r = np.random.default_rng(seed); lo = r.integers(0, 100, n)
    return BufferProblem(sizes=r.integers(1, 64, n) * 8, lower=lo, upper=lo + r.integers(1, 40, n))

seed, limit = int(sys.argv[1]), float(sys.argv[2])
p = problem(seed)
row = {"seed": seed, "limit": limit, "bound": int(p.lower_bound), "start": int(solve(p, "auto").arena)}
for w in (1, 2, 4):
    t = time.perf_counter()
    s = solve(p, "cpsat", SolveOptions(time_limit=limit, workers=w))
    row[f"w{w}"] = [int(s.arena), str(s.status) + ("!" if "stopped" in s.info else ""),
                    round(time.perf_counter() - t, 2)]
cap = row["w1"][0]
q = dataclasses.replace(p, capacity=cap)
for w in (2, 4):
    if cap >= row["start"]:
        row[f"fit{w}"] = "-"
        continue
    try:
        s = solve(q, "cpsat", SolveOptions(time_limit=limit, workers=w, objective=Objective.FIT))
        row[f"fit{w}"] = int(s.arena)
    except Exception as exc:   # OverCapacity: no packing within the capacity found
        row[f"fit{w}"] = type(exc).__name__
print(json.dumps(row))
'''


def run(root: str, seed: int, limit: float) -> dict:
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", CHILD, str(seed), str(limit)], capture_output=True, text=True,
                         env=env, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="main")
    ap.add_argument("--problems", type=int, default=30)
    ap.add_argument("--limits", default="0.5,1")
    ap.add_argument("--only", choices=("before", "after"), default=None)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds instead of 0..problems-1 (to rerun rows)")
    args = ap.parse_args()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "base.tar")
        subprocess.run(["git", "archive", "-o", archive, args.base, "memplan"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        roots = {"before": tmp, "after": here}
        if args.only:
            roots = {args.only: roots[args.only]}
        worse = {k: 0 for k in roots}
        unfit = {k: 0 for k in roots}
        for limit in (float(x) for x in args.limits.split(",")):
            for seed in ([int(x) for x in args.seeds.split(",")] if args.seeds else range(args.problems)):
                for name, root in roots.items():
                    r = run(root, seed, limit)
                    one = r["w1"][0]
                    worse[name] += sum(r[f"w{w}"][0] > one for w in (2, 4))
                    unfit[name] += sum(isinstance(r[f"fit{w}"], str) and r[f"fit{w}"] != "-" for w in (2, 4))
                    print(f"{name:6} t={limit:<4} seed={seed:<3} bound={r['bound']:<6} start={r['start']:<6} "
                          + " ".join(f"w{w}={r[f'w{w}'][0]}/{r[f'w{w}'][1][:3]}{r[f'w{w}'][1][-1:].strip('ELT')}/"
                                     f"{r[f'w{w}'][2]}s" for w in (1, 2, 4))
                          + f" fit2={r['fit2']} fit4={r['fit4']}", flush=True)
        for name in roots:
            print(f"{name}: runs with more workers planning a larger arena than one: {worse[name]}; "
                  f"asked to fit one worker's arena, failed: {unfit[name]}")


if __name__ == "__main__":
    main()
