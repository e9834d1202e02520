"""Session 61 (forks61): the CPU time of fork scoring under a memory budget with a time limit, and of planning a given
schedule on 1,024 streams, before and after, with the plan bytes compared (sha1 of the plan JSON).

Each case runs in a child process of its own (``python forks_s61.py --child CASE``), on the memplan that PYTHONPATH
names, so the same driver measures two checkouts: ``PYTHONPATH=/work/main python forks_s61.py > a`` and
``PYTHONPATH=. python forks_s61.py > b``, then compare the ``sha1`` column (it must not change) and the ``cpu`` one.
A case is ``graph:options`` (time_s60's graphs and options; a ``"memory_budget": "serial"`` is the serial plan's
arena). The wall-clock safety stop is kept off (``SolveOptions.wall_seconds``), so that a plan does not depend on
the machine's load. ``score`` cases time ``budget.score_forks`` alone on ``graph_optimize``'s schedule (the sha1 is
that of the scores). Times are ``time.process_time`` of the child (all its threads), on a shared 2-core VM: loose.
``ONLY=substr,...`` runs the cases naming any of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [
    "score:random-10000:",
    'plan:random-10000:{"streams": "auto", "memory_budget": "serial", "time_limit": 0.1}',
    'plan:random-10000:{"streams": "auto", "memory_budget": "serial"}',
    "plan:mesh-10x1024:",
    "plan:nmesh-10x1024:",
    'plan:mesh-10x1024:{"solver": "size"}',
    'plan:mesh-10x1024:{"solver": "greedy"}',
    'plan:moe-16:{"streams": "auto", "memory_budget": "serial", "time_limit": 0.2}',
    'plan:moe-64:{"streams": "auto", "memory_budget": "serial", "time_limit": 1}',
    'plan:moe-64:{"streams": "auto", "memory_budget": "serial-5%", "time_limit": 0.1}',
    'plan:random-2000:{"streams": "auto", "memory_budget": "serial", "time_limit": 0.5}',
    'plan:random-2000:{"streams": 3, "memory_budget": "serial", "solver": "search", "time_limit": 0.5}',
    'plan:random-2000:{"streams": 4, "max_events": 20}',
    'plan:random-3000:{"streams": 1024, "max_events": 50}',
    'plan:layered-1000:{"streams": "auto", "memory_budget": "serial", "time_limit": 0.5}',
    'plan:layered-2000:{"streams": 64, "max_events": 30}',
    'plan:wide-300:{"streams": "auto", "memory_budget": "serial", "time_limit": 0.5}',
    'plan:transformer-50:{"streams": "auto", "memory_budget": "serial-5%", "time_limit": 0.5, "solver": "cpsat"}',
    'plan:wide-10000:{"streams": "auto", "memory_budget": "serial"}',
    'plan:layered-10000:{"streams": "auto"}',
]


def child(case: str) -> dict:
    entry, gname, opts = case.split(":", 2)
    opts = json.loads(opts) if opts else {}
    sys.path.insert(0, HERE)
    from time_s60 import graph_of

    import memplan
    from memplan.solvers.options import SolveOptions

    SolveOptions.wall_seconds = lambda self, work: 1e9   # (no wall-clock stop: the same plan at any load)
    g, sched = graph_of(gname)
    if isinstance(opts.get("memory_budget"), str):
        serial = memplan.plan(g).arena_bytes
        opts["memory_budget"] = serial if opts["memory_budget"] == "serial" else int(serial * 0.95)
    out: dict = {}
    if entry == "score":
        from memplan.optimize import budget
        from memplan.optimize.candidates import candidates
        opt = candidates(g, streams="auto", memory_budget=1).optimized
        cpu = time.process_time()
        forks = budget.score_forks(g, opt, opt.schedule)
        out["cpu"] = round(time.process_time() - cpu, 2)
        out["forks"] = len(forks)
        out["sha1"] = hashlib.sha1(repr(forks).encode()).hexdigest()[:16]
        return out
    cpu = time.process_time()
    try:
        p = memplan.plan(g, sched, **opts) if sched is not None else memplan.plan(g, **opts)
    except memplan.MemplanError as exc:   # (a refusal is an outcome to compare too)
        out["cpu"] = round(time.process_time() - cpu, 2)
        out["sha1"] = hashlib.sha1(f"{type(exc).__name__}: {exc}".encode()).hexdigest()[:16]
        return out
    out["cpu"] = round(time.process_time() - cpu, 2)
    out["arena"] = p.arena_bytes
    out["sha1"] = hashlib.sha1(p.to_json().encode()).hexdigest()[:16]
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        return
    only = [o for o in os.environ.get("ONLY", "").split(",") if o]
    for case in CASES:
        if only and not any(o in case for o in only):
            continue
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case], capture_output=True, text=True)
        row = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {
            "outcome": f"CRASH rc {r.returncode}: {r.stderr[-300:]!r}"}
        print(json.dumps({"case": case, **row}), flush=True)


if __name__ == "__main__":
    main()
