"""Session 57: a descent's cost on large problems (``search_tree._Front``, ``search.BELOW_FIRST_DESCENTS``).

    python docs/experiments/search_s57.py both /work/main > docs/experiments/search_s57.txt

The problems and columns of ``search_s56.py`` (minimalloc A-J from ``/work/shared/data/minimalloc/challenging`` or
``$MINIMALLOC``, random intervals of 3,000 and 5,000 buffers, ``random_dag`` / ``layered_graph`` on 1 and 8 streams)
with ``solver="search"`` at ``time_limit`` 0.5, 1 and 5; ``both OLD`` runs them under ``PYTHONPATH=OLD`` (the code
before, e.g. a checkout of main) and under this checkout and prints the two side by side (``ONLY=name,name`` limits the
problems by suffix, ``LIMITS=0.5,1`` the limits). ``descents`` prints, for one descent at one below the greedy arena
with the first preorder, the nodes, the estimated work (us a node) and the CPU (us a node, the least of 3) of both.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

LIMITS = (0.5, 1.0, 5.0)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def intervals(n: int):
    """``n`` short-lived buffers (``tests/test_search_round53.py``'s ``_random_intervals``)."""
    from memplan.problem import BufferProblem
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def graph_problem(kind: str, n: int, streams: int):
    from memplan.benchmarks import scale
    from memplan.lifetimes import buffer_problem
    from memplan.optimize import graph_optimize
    from memplan.schedule import build_happens_before, serial_schedule
    g = getattr(scale, kind)(n)
    sched = serial_schedule(g) if streams == 1 else graph_optimize(g, streams)
    return buffer_problem(g, build_happens_before(g, sched))


def problems():
    from memplan.io.minimalloc import read_csv
    data = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")
    out = {f"minimalloc {c}": (lambda c=c: read_csv(os.path.join(data, f"{c}.1048576.csv")).problem())
           for c in "ABCDEFGHIJ"}
    out.update({f"intervals {n}": (lambda n=n: intervals(n)) for n in (3000, 5000)})
    for kind, n, st in (("random_dag", 1000, 1), ("random_dag", 1000, 8), ("random_dag", 3000, 1),
                        ("random_dag", 3000, 8), ("layered_graph", 3000, 1), ("layered_graph", 3000, 8),
                        ("random_dag", 5000, 1), ("layered_graph", 5000, 1)):
        out[f"{kind} {n} s{st}"] = (lambda kind=kind, n=n, st=st: graph_problem(kind, n, st))
    return out


def run(label: str) -> None:
    import warnings

    from memplan.solvers import SolveOptions, solve
    only = os.environ.get("ONLY")
    limits = tuple(float(x) for x in os.environ["LIMITS"].split(",")) if os.environ.get("LIMITS") else LIMITS
    for name, make in problems().items():
        if only and not any(name.endswith(o) for o in only.split(",")):
            continue
        p = make()
        for tl in limits:
            c0 = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = solve(p, "search", SolveOptions(time_limit=tl))
            cpu = time.process_time() - c0
            print(json.dumps({"label": label, "problem": name, "buffers": len(p), "time_limit": tl,
                              "arena": int(s.arena), "bound": int(s.lower_bound), "cpu": round(cpu, 2),
                              "nodes": s.info.get("nodes"), "tries": s.info.get("tries"),
                              "stopped": s.info.get("stopped"),
                              "opening": s.info.get("opening")}), flush=True)


def descent(label: str) -> None:
    """One descent per problem (``ONLY`` or the large ones) at one below the greedy arena: nodes, work, CPU."""
    import warnings

    from memplan.solvers import search_tree as st
    from memplan.solvers import solve
    from memplan.solvers.options import SearchParams
    only = os.environ.get("ONLY", "intervals 3000,intervals 5000,random_dag 3000 s8,minimalloc J")
    for name, make in problems().items():
        if not any(name.endswith(o) for o in only.split(",")):
            continue
        p = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cap = int(solve(p, "greedy").arena) - 1
        cpus = []
        for _ in range(3):
            budget = st.WorkBudget(10**9, 1e9)
            s = st.PackingSearch(p, SearchParams(), budget)
            left = budget.left
            c0 = time.process_time()
            s.feasible(cap, SearchParams().preorders[0], 10**7)
            s._flush()
            cpus.append(time.process_time() - c0)
        print(json.dumps({"label": label, "problem": name, "nodes": s.nodes,
                          "work_us_node": round((left - budget.left) / s.nodes / 1000, 1),
                          "cpu_us_node": round(min(cpus) / s.nodes * 1e6, 1)}), flush=True)


def descents(old_path: str) -> None:
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        print(subprocess.run([sys.executable, os.path.abspath(__file__), "descent", label], env=env, check=True,
                             capture_output=True, text=True).stdout, end="")


def table(old_rows, new_rows) -> None:
    old = {(r["problem"], r["time_limit"]): r for r in old_rows}
    new = {(r["problem"], r["time_limit"]): r for r in new_rows}
    print(f"{'problem':>22} {'bufs':>5} {'limit':>5} {'old bound':>10} {'new bound':>10} {'old arena':>10} "
          f"{'new arena':>10} {'old cpu':>7} {'new cpu':>7} {'old#':>5} {'new#':>5} {'old open':>8} {'new opening':>24}")
    for key, o in old.items():
        n = new[key]
        mark = "" if n["arena"] == o["arena"] else (" better" if n["arena"] < o["arena"] else " WORSE")
        mark += " (wall stop)" if n["stopped"] or o["stopped"] else ""
        print(f"{key[0]:>22} {o['buffers']:>5} {key[1]:>5g} {o['bound']:>10} {n['bound']:>10} {o['arena']:>10} "
              f"{n['arena']:>10} {o['cpu']:>7.2f} {n['cpu']:>7.2f} {o['tries']!s:>5} {n['tries']!s:>5} "
              f"{o['opening'] or '-':>8} {n['opening'] or '-':>24}{mark}")


def both(old_path: str) -> None:
    rows = {}
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "run", label], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows[label] = [json.loads(line) for line in out.splitlines()]
    commit = subprocess.run(["git", "-C", old_path, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# python docs/experiments/search_s57.py both {old_path}   (old = {old_path} at {commit}, new = this checkout)")
    print("# 2-core shared machine; cpu = process_time of the whole solve (setup included); # = info['tries'];")
    print("# open = info['opening'] (old: bound/gained/none; new: its outcomes in order, or none; - : no opening)")
    table(rows["old"], rows["new"])


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "both":
        both(sys.argv[2])
    elif sys.argv[1] == "descent":
        descent(sys.argv[2])
    elif sys.argv[1] == "descents":
        descents(sys.argv[2])
    else:
        table([json.loads(x) for x in open(sys.argv[2])], [json.loads(x) for x in open(sys.argv[3])])
