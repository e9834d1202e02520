"""Session 51 (budget51): plans of large generator graphs, before and after side by side.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/budget_s51.py [--base main] [--quick]``.
"Before" is the ``memplan`` package of commit ``--base`` (``git archive`` into a temporary folder), "after" this
checkout; each case runs in a child process of its own (one core, wall clock). Per case it prints the seconds of
``memplan.plan`` and the first 16 hex digits of the SHA-1 of the plan's JSON (``Plan.to_json()``, no timings):
equal digests are byte-identical plans. A case that raises prints the exception's type instead of a digest.

Cases: ``wide_graph(20000)`` with ``max_events=5`` on 1,024 streams (the round's slow case), then ``layered_graph``,
``random_dag``, ``fanout_join`` and ``io_graph`` at a few thousand nodes on 1, 8 and 1,024 streams, and
``random_dag(3000)`` with ``max_events=50`` on 1,024 streams (where the event thinning changes the plan on purpose).
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
import hashlib, json, sys, time
import memplan
from memplan.benchmarks import scale
from memplan.generators import fanout_join
kind, n, streams, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "fanout_join":
    g, _ = fanout_join(n, max_width=8, streams=4, seed=0)
else:
    g = getattr(scale, kind)(n)
kw = {"streams": streams}
if events != "-":
    kw["max_events"] = int(events)
t = time.perf_counter()
try:
    p = memplan.plan(g, **kw)
    digest = hashlib.sha1(p.to_json().encode()).hexdigest()[:16]
except Exception as e:  # noqa: BLE001 (reported, compared)
    digest = "raised " + type(e).__name__
print(json.dumps({"s": round(time.perf_counter() - t, 2), "digest": digest}))
'''

CASES = [("wide_graph", 20000, 1024, "5")]
for _kind, _n in (("layered_graph", 3000), ("random_dag", 3000), ("fanout_join", 3000), ("io_graph", 3000)):
    CASES += [(_kind, _n, s, "-") for s in (1, 8, 1024)]
CASES += [("layered_graph", 3000, 1024, "5"), ("random_dag", 3000, 1024, "50")]
QUICK = [("wide_graph", 5000, 1024, "5"), ("random_dag", 1000, 8, "-"), ("random_dag", 3000, 1024, "50")]


def _run(root: str, case: tuple) -> dict:
    env = dict(os.environ, PYTHONPATH=root)
    # (cwd: ``python -c`` puts the working directory first on sys.path, which would shadow ``root``'s memplan)
    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, case)], env=env, cwd=root, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        return {"s": None, "digest": "failed: " + out.stderr.strip().splitlines()[-1][:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--quick", action="store_true", help="three small cases only")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as old:
        tar = os.path.join(old, "base.tar")
        subprocess.run(["git", "-C", here, "archive", "-o", tar, args.base, "memplan"], check=True)
        with tarfile.open(tar) as t:
            t.extractall(old, filter="data")
        print(f"{'case':<34} {'before s':>9} {'after s':>8}  {'before':<16}  {'after':<16}  same")
        for case in QUICK if args.quick else CASES:
            a, b = _run(old, case), _run(here, case)
            name = f"{case[0]}({case[1]}) s={case[2]} e={case[3]}"
            print(f"{name:<34} {a['s']!s:>9} {b['s']!s:>8}  {a['digest']:<16}  {b['digest']:<16}  "
                  f"{a['digest'] == b['digest']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
