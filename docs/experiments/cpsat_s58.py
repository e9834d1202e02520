"""Session 58: several CP-SAT ``workers`` as two phases of a whole budget each (``cpsat.PHASE_SHARES = (1, 1)``, the
one-worker search then the interleaved workers from its best) beside one budget split between them (``(0.5, 0.5)``:
the same total work as one worker), on ``cpsat_s57.py``'s random interval problems.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/cpsat_s58.py [--problems 20] [--limits 0.5,1]``. Each
(problem, limit) runs in a child process of its own and prints: one worker's arena (``w1``), then for 2 and 4 workers
the arena of each variant (``two``: two budgets; ``split``: one budget split), its status (``!``: the wall-clock
safety stop cut it, so that plan may not repeat) and wall seconds (a 2-core machine shared with other jobs); then,
asked to fit one worker's arena (``Objective.FIT``), whether 2 workers fit it under each variant ("-" where the start
already fits). The summary counts, per variant, the runs that planned a larger / smaller arena than one worker, the
failed fits, the stops, the sum of arenas and of wall seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r'''
import dataclasses, json, sys, time, warnings
import numpy as np
from memplan.problem import BufferProblem, find_collision
from memplan.solvers import Objective, SolveOptions, cpsat, solve
warnings.simplefilter("ignore")

def problem(seed, n=120):
    r = np.random.default_rng(seed); lo = r.integers(0, 100, n)
    return BufferProblem(sizes=r.integers(1, 64, n) * 8, lower=lo, upper=lo + r.integers(1, 40, n))

seed, limit = int(sys.argv[1]), float(sys.argv[2])
p = problem(seed)
row = {"seed": seed, "limit": limit, "bound": int(p.lower_bound), "start": int(solve(p, "auto").arena)}

def run(key, q, **kw):
    t = time.perf_counter()
    try:
        s = solve(q, "cpsat", SolveOptions(time_limit=limit, **kw))
    except Exception as exc:   # OverCapacity: no packing within the capacity found
        row[key] = [type(exc).__name__, "-", round(time.perf_counter() - t, 2)]
        return
    assert find_collision(q, s.offsets) is None
    row[key] = [int(s.arena), str(s.status)[:3] + ("!" if "stopped" in s.info else ""),
                round(time.perf_counter() - t, 2)]

run("w1", p)
cap = row["w1"][0]
q = dataclasses.replace(p, capacity=cap)
for name, shares in (("two", (1.0, 1.0)), ("split", (0.5, 0.5))):
    cpsat.PHASE_SHARES = shares   # (the experiment's switch; the library reads the constant)
    for w in (2, 4):
        run(f"{name}{w}", p, workers=w)
    if cap >= row["start"]:
        row[f"{name}fit2"] = ["-", "-", 0.0]
    else:
        run(f"{name}fit2", q, workers=2, objective=Objective.FIT)
print(json.dumps(row))
'''

VARIANTS = ("two", "split")


def run(seed: int, limit: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(seed), str(limit)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--limits", default="0.5,1")
    args = ap.parse_args()
    tally = {v: dict(worse=0, better=0, unfit=0, stops=0, arena=0, seconds=0.0) for v in VARIANTS}
    one = dict(arena=0, seconds=0.0, stops=0)
    for limit in (float(x) for x in args.limits.split(",")):
        for seed in range(args.problems):
            r = run(seed, limit)
            w1 = r["w1"][0]
            one["arena"] += 2 * w1
            one["seconds"] += 2 * r["w1"][2]
            one["stops"] += r["w1"][1].endswith("!")
            for v in VARIANTS:
                t = tally[v]
                for w in (2, 4):
                    a, status, sec = r[f"{v}{w}"]
                    t["worse"] += a > w1
                    t["better"] += a < w1
                    t["stops"] += status.endswith("!")
                    t["arena"] += a
                    t["seconds"] += sec
                fit = r[f"{v}fit2"][0]
                t["unfit"] += isinstance(fit, str) and fit != "-"
            print(f"t={limit:<4} seed={seed:<3} bound={r['bound']:<6} start={r['start']:<6} "
                  f"w1={w1}/{r['w1'][1]}/{r['w1'][2]}s "
                  + " ".join(f"{v}{w}={r[f'{v}{w}'][0]}/{r[f'{v}{w}'][1]}/{r[f'{v}{w}'][2]}s"
                             for v in VARIANTS for w in (2, 4))
                  + " " + " ".join(f"{v}fit2={r[f'{v}fit2'][0]}" for v in VARIANTS), flush=True)
    print(f"w1 (each run counted twice, beside 2 and 4 workers): arenas {one['arena']}, "
          f"wall {one['seconds']:.0f}s, stops {one['stops']}")
    for v, t in tally.items():
        print(f"{v}: larger than one worker {t['worse']}, smaller {t['better']}; asked to fit one worker's arena, "
              f"failed {t['unfit']}; stops {t['stops']}; arenas {t['arena']}, wall {t['seconds']:.0f}s")


if __name__ == "__main__":
    main()
