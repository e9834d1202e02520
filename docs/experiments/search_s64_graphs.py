"""Session 64: random_dag / layered_graph, serial and on several streams, ``solver="search"`` with SearchParams variants
side by side (``memplan.plan``'s pipeline for one schedule: ``solve_schedule``, the clique bound included).

    python docs/experiments/search_s64_graphs.py 1 1000 1,2,4 "chase=False" ""
    python docs/experiments/search_s64_graphs.py 5 300 2,4 "" "hb_side_proofs=True"

Arguments: time_limit, sizes, streams (1: the serial schedule; N: ``graph_optimize(g, N)``), then one SearchParams
keyword list per variant. Each row: the arena, status and CPU seconds of each variant; BETTER / WORSE for the last
against the first. Work budgets: the arenas repeat on any machine.
"""
import sys
import time

from memplan.benchmarks import scale
from memplan.optimize import graph_optimize
from memplan.plan import solve_schedule
from memplan.schedule import serial_schedule
from memplan.solvers import SearchParams, SolveOptions


def main() -> None:
    limit = float(sys.argv[1])
    sizes = [int(x) for x in sys.argv[2].split(",")]
    streams = [int(x) for x in sys.argv[3].split(",")]
    variants = [eval("dict(" + v + ")") for v in sys.argv[4:]]
    for fam, make in (("rdag", scale.random_dag), ("layered", scale.layered_graph)):
        for n in sizes:
            for seed in (0, 1):
                g = make(n, seed=seed)
                for k in streams:
                    sched = serial_schedule(g) if k == 1 else graph_optimize(g, k)
                    row = []
                    for v in variants:
                        t = time.process_time()
                        p = solve_schedule(g, sched, "search", SolveOptions(time_limit=limit, search=SearchParams(**v)))
                        row.append(f"{p.arena_bytes:9d} {p.solver['status'][:4]} {time.process_time() - t:4.1f}s")
                    a = [int(x.split()[0]) for x in row]
                    mark = "" if len(set(a)) == 1 else ("BETTER" if a[-1] < a[0] else "WORSE")
                    print(f"T={limit} {fam}{n}.{seed} s{sched.num_streams} lb{p.lower_bound_bytes} | "
                          + " | ".join(row), mark, flush=True)


if __name__ == "__main__":
    main()
