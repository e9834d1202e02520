"""Round 66 (planio): ``memplan verify`` of a large graph and plan, phase by phase, on two source trees side by side.

Usage: ``python docs/experiments/planio_s66.py OUT_DIR BASE_ROOT NEW_ROOT [--chain N] [--fanout N] [--repeat K]``
(``BASE_ROOT``: a tree holding the ``memplan`` package to compare with, e.g. ``git archive main memplan | tar -x -C
/tmp/base``). It writes a chain of N nodes and a fan-out/join graph of N nodes (4 streams, greedy) with their plans
into OUT_DIR (once; planned by NEW_ROOT's memplan), then runs each phase in a fresh process per tree, alternating the
trees K times: ``read_json`` of the graph, ``load_graph``, ``load_plan``, ``check_plan_for``, ``verify``, and the
peak RSS of a whole ``memplan verify`` (``ru_maxrss``); and, as the floor, the peak RSS of ``json.loads`` of both
files alone. Times are the process's CPU seconds (``time.process_time``: a shared machine's load moved wall-clock
times 2x run to run), best of K per phase; compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
root, g, p, what = sys.argv[1:5]
sys.path.insert(0, root)
if what == "floor":
    a = json.loads(open(g).read()); b = json.loads(open(p).read())
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    raise SystemExit
import memplan
from memplan.errors import GraphError
from memplan.io import load_graph, load_plan, read_json
from memplan.planfile import check_plan_for
out = {}
t = time.process_time(); read_json(g, GraphError); out["read_json_graph_s"] = time.process_time() - t
t = time.process_time(); graph = load_graph(g); out["load_graph_s"] = time.process_time() - t
t = time.process_time(); plan = load_plan(p); out["load_plan_s"] = time.process_time() - t
t = time.process_time(); check_plan_for(graph, plan); out["check_plan_for_s"] = time.process_time() - t
t = time.process_time(); memplan.verify(graph, plan); out["verify_s"] = time.process_time() - t
print(json.dumps(out))
"""

_WHOLE = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from memplan.cli import main
t = time.process_time()
code = main(["verify", sys.argv[2], sys.argv[3]])
import json
print(json.dumps({"code": code, "cli_verify_s": time.process_time() - t,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _make(out: str, kind: str, n: int) -> tuple[str, str]:
    g, p = os.path.join(out, f"g_{kind}{n}.json"), os.path.join(out, f"p_{kind}{n}.json")
    if not (os.path.exists(g) and os.path.exists(p)):
        import memplan
        from memplan import examples
        from memplan.generators import fanout_join

        graph, sched = (examples.chain(n), None) if kind == "chain" else fanout_join(n, streams=4)
        plan = memplan.plan(graph, sched, solver="greedy")
        with open(g, "w") as f:
            f.write(json.dumps(graph.to_dict()))
        with open(p, "w") as f:
            f.write(plan.to_json())
    return g, p


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--chain", type=int, default=200_000)
    ap.add_argument("--fanout", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    sys.path.insert(0, a.new)
    os.makedirs(a.out, exist_ok=True)
    for kind, n in (("chain", a.chain), ("fanout", a.fanout)):
        g, p = _make(a.out, kind, n)
        mb = (os.path.getsize(g) + os.path.getsize(p)) / 1e6
        best: dict[str, dict[str, float]] = {"base": {}, "new": {}}
        for _ in range(a.repeat):
            for name, root in (("base", a.base), ("new", a.new)):
                row = {**_run(_CHILD, root, g, p, "phases"), **_run(_WHOLE, root, g, p)}
                for k, v in row.items():
                    best[name][k] = min(best[name].get(k, v), v)
        floor = _run(_CHILD, a.new, g, p, "floor")["peak_mib"]
        print(f"{kind} {n} nodes: graph+plan files {mb:.1f} MB; json.loads of both alone: peak {floor:.0f} MiB")
        for k in best["base"]:
            b, w = best["base"][k], best["new"][k]
            print(f"  {k:20s} base {b:9.2f}  new {w:9.2f}  ratio {b / w if w else float('nan'):5.2f}x")


if __name__ == "__main__":
    main()
