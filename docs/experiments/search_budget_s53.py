"""Session 53: the search's CPU time against its ``time_limit`` (work budget), and its arena, across problem shapes.

    PYTHONPATH=. python docs/experiments/search_budget_s53.py [LIMITS] [DATA]   # default 0.5,1 ../shared/data/minimalloc

Prints per problem and limit: the arena, the whole solve's CPU seconds (``process_time``: the machine is shared, wall
time means little) and that over the limit. Run it on two checkouts back to back (the load changes CPU time too)."""
import os
import sys
import time

import numpy as np

import memplan
from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, solve
from memplan.solvers.capacity import OverCapacity


def tiled(path: str, k: int, in_place: bool = False) -> BufferProblem:
    a = read_csv(path).problem()
    half = int(a.upper.max()) // 2
    lower = np.concatenate([a.lower + i * half for i in range(k)])
    upper = np.concatenate([a.upper + i * half for i in range(k)])
    sizes = np.tile(a.sizes, k)
    pair = frozenset()
    if in_place:
        first, second = BufferProblem(sizes=sizes, lower=lower, upper=upper).conflict_pairs()
        pair = frozenset({(int(first[0]), int(second[0]))})
    return BufferProblem(sizes=sizes, lower=lower, upper=upper, compatible=pair)


def intervals(n: int, span: int) -> BufferProblem:
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, span, n), alignment=256)


def main() -> None:
    limits = [float(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "0.5,1").split(",")]
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join("..", "shared", "data", "minimalloc")
    csv = {c: os.path.join(data, "challenging", f"{c}.1048576.csv") for c in "ABCDEFGHIJK"}
    problems = {f"minimalloc {c}": (lambda c=c: read_csv(csv[c]).problem(1048576)) for c in csv}
    problems.update({"tiled A x12 in place": lambda: tiled(csv["A"], 12, True), "tiled D x30": lambda: tiled(csv["D"], 30),
                     "intervals 2000": lambda: intervals(2000, 50), "intervals 6000": lambda: intervals(6000, 30)})
    graphs = {f"layered {n} s{s}": (layered_graph(n, seed=1), s) for n in (200, 1000) for s in (1, 4)}
    graphs.update({f"random_dag 2000 s{s}": (random_dag(2000, seed=1), s) for s in (1, 4)})
    for name, make in problems.items():
        p = make()
        for tl in limits:
            c0 = time.process_time()
            try:
                arena = solve(p, "search", SolveOptions(time_limit=tl)).arena
            except OverCapacity as exc:
                arena = exc.best.arena
            cpu = time.process_time() - c0
            print(f"{name:>22} {tl:>4g} arena {arena:>11} cpu {cpu:6.2f} x{cpu / tl:5.2f}", flush=True)
    for name, (g, s) in graphs.items():
        for tl in limits:
            c0 = time.process_time()
            arena = memplan.plan(g, solver="search", time_limit=tl, **({"streams": s} if s > 1 else {})).arena_bytes
            cpu = time.process_time() - c0
            print(f"{name:>22} {tl:>4g} arena {arena:>11} cpu {cpu:6.2f} x{cpu / tl:5.2f}", flush=True)


if __name__ == "__main__":
    main()
