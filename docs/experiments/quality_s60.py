"""Session 60: the default's heuristic portfolio on 200-5,000 buffers (``auto`` + ``skyline``), before and after.

    python docs/experiments/quality_s60.py csv            # the public minimalloc inputs: auto, greedy, size, search 1 s
    PYTHONPATH=OLD python docs/experiments/quality_s60.py families > old.txt   # default / 2-stream / auto-stream /
    python docs/experiments/quality_s60.py families > new.txt                  # budget plans of the families below
    python docs/experiments/quality_s60.py big            # wall time of the default on 10k-100k buffer graphs
    python docs/experiments/quality_s60.py hashes         # sha256 of the default plans (compare across PYTHONHASHSEED)

Families: session 59's (docs/experiments/quality_s59.py: NASNet-like cells, deep chains with long skips, MoE, ...),
scale.random_dag / layered_graph / fanout_join of 300-3,000 nodes and the bundled examples. Every plan is verified
again here (``ver``); ``same`` says a second plan in this process was byte-identical.
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import memplan  # noqa: E402,I001
from quality_s59 import deep_skips, inception  # noqa: E402,I001
from quality_s59 import families as s59_families  # noqa: E402,I001


def graphs():
    from memplan.benchmarks import scale
    from memplan.examples import bundled
    from memplan.generators import fanout_join
    gs = dict(s59_families())
    gs["deepskips600"] = lambda: deep_skips(600)
    gs["deepskips5k"] = lambda: deep_skips(5000, span=1000)
    for c in (4, 6, 8, 12, 20):
        gs[f"nasnet{c}"] = (lambda c=c: inception(c, nasnet=True))
    for n in (300, 1000, 3000):
        gs[f"rdag{n}"] = (lambda n=n: scale.random_dag(n, seed=1))
        gs[f"layered{n}"] = (lambda n=n: scale.layered_graph(n))
        gs[f"fj{n}"] = (lambda n=n: fanout_join(n, seed=1)[0])
    for k, g in bundled().items():
        gs["ex:" + k] = (lambda g=g: g)
    return gs


SETS = {"s1": {}, "s2": {"streams": 2}, "sauto": {"streams": "auto"}, "budget": {"streams": "auto", "memory_budget": 0}}


def families() -> None:
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    sets = [s for s in os.environ.get("SETS", "").split(",") if s] or list(SETS)
    print(f"{'graph':16} {'set':6} {'arena':>12} {'bound':>12} {'gap%':>6} {'str':>3} {'ev':>4} {'sec':>6} ver same "
          "solver")
    for name, make in graphs().items():
        if only and name not in only:
            continue
        g = make()
        serial = memplan.plan(g, solver="greedy").arena_bytes
        for sname in sets:
            if name in ("tiny10k", "deepskips5k") and sname != "s1":
                continue
            opts = dict(SETS[sname])
            if "memory_budget" in opts:
                opts["memory_budget"] = serial
            t = time.perf_counter()
            try:
                p = memplan.plan(g, **opts)
            except Exception as e:  # noqa: BLE001 (a row of the table)
                print(f"{name:16} {sname:6} ERROR {type(e).__name__}: {str(e)[:100]}", flush=True)
                continue
            sec = time.perf_counter() - t
            try:
                memplan.verify(g, p)
                ok = "ok"
            except Exception:  # noqa: BLE001
                ok = "UNSAFE"
            same = "yes" if memplan.plan(g, **opts).to_json() == p.to_json() else "NO"
            gap = 100.0 * (p.arena_bytes - p.lower_bound_bytes) / max(1, p.lower_bound_bytes)
            print(f"{name:16} {sname:6} {p.arena_bytes:>12} {p.lower_bound_bytes:>12} {gap:>6.2f} {p.streams:>3} "
                  f"{len(p.events):>4} {sec:>6.2f} {ok:3} {same:4} {p.solver.get('name')}", flush=True)


def csv() -> None:
    from memplan.io.minimalloc import read_csv
    from memplan.solvers import solve
    from memplan.solvers.options import SolveOptions
    data = "/work/shared/data/minimalloc/challenging"
    print(f"{'input':6} {'n':>4} {'bound':>9} " + " ".join(f"{s:>17}" for s in ("auto", "greedy", "size", "search1s")))
    for c in "ABCDEFGHIJK":
        prob = read_csv(f"{data}/{c}.1048576.csv").problem()
        cells = []
        for solver, tl in (("auto", None), ("greedy", None), ("size", None), ("search", 1.0)):
            t = time.perf_counter()
            sol = solve(prob, solver, SolveOptions(time_limit=tl))
            cells.append(f"{sol.arena:>9} {time.perf_counter() - t:6.3f}s")
        print(f"{c:6} {len(prob):>4} {int(prob.lower_bound):>9} " + " ".join(cells), flush=True)


def big() -> None:
    """Default plans of 10k-100k buffers: wall seconds (best of two) and arena."""
    from memplan.benchmarks import scale
    from memplan.generators import fanout_join
    cases = {"rdag10k": lambda: scale.random_dag(10000, seed=0), "layered20k": lambda: scale.layered_graph(20000),
             "fj20k": lambda: fanout_join(20000, seed=0)[0], "tiny10k": lambda: s59_families()["tiny10k"](),
             "deepskips10k": lambda: deep_skips(10000, span=1000),
             "rdag50k": lambda: scale.random_dag(50000, seed=0), "rdag100k": lambda: scale.random_dag(100000, seed=0)}
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    for name, make in cases.items():
        if only and name not in only:
            continue
        g = make()
        secs = []
        for _ in range(2):
            t = time.perf_counter()
            p = memplan.plan(g)
            secs.append(time.perf_counter() - t)
        print(f"{name:14} tensors {len(g.tensors):>7} arena {p.arena_bytes:>12} bound {p.lower_bound_bytes:>12} "
              f"{min(secs):7.2f}s {p.solver.get('name')}", flush=True)


def hashes() -> None:
    for name, make in graphs().items():
        if name in ("tiny10k", "deepskips5k"):
            continue
        g = make()
        for sname in ("s1", "s2"):
            p = memplan.plan(g, **SETS[sname])
            print(name, sname, hashlib.sha256(p.to_json().encode()).hexdigest()[:16], flush=True)


if __name__ == "__main__":
    {"families": families, "csv": csv, "big": big, "hashes": hashes}[sys.argv[1]]()
