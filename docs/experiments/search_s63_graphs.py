"""Session 63: side proofs (``SearchParams.side_proofs``) off vs on, on graph problems at ``time_limit=1``.

    python docs/experiments/search_s63_graphs.py

Each row: ``random_dag`` / ``layered_graph`` (sizes 300, 1000; seeds 0, 1), serial and on 2 streams, solved by the
search with side proofs off and on: the arena and status each way, whether the problem is an interval problem (side
proofs apply only there) and whether the offsets are the same. Work budgets: the rows repeat on any machine.
"""
import numpy as np

from memplan.benchmarks import scale
from memplan.lifetimes import buffer_problem
from memplan.schedule import build_happens_before, serial_schedule
from memplan.solvers import SearchParams, SolveOptions, solve


def main() -> None:
    for fam, make in (("rdag", scale.random_dag), ("layered", scale.layered_graph)):
        for n in (300, 1000):
            for seed in (0, 1):
                g = make(n, seed=seed)
                p = buffer_problem(g, build_happens_before(g, serial_schedule(g)))
                r = [solve(p, "search", SolveOptions(time_limit=1, search=SearchParams(side_proofs=sp)))
                     for sp in (False, True)]
                same = np.array_equal(np.asarray(r[0].offsets), np.asarray(r[1].offsets))
                mark = "" if r[0].arena == r[1].arena else ("BETTER" if r[1].arena < r[0].arena else "WORSE")
                print(f"{fam}{n}.{seed:<3} interval={p.is_interval!s:5} bufs={len(p):5} bound {r[1].lower_bound:>9} "
                      f"off {r[0].arena:>9} {r[0].status.name:9} on {r[1].arena:>9} {r[1].status.name:9} "
                      f"same_offsets={same} {mark}", flush=True)


if __name__ == "__main__":
    main()
