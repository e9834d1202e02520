"""The default solver's CPU on wide skyline-tier problems, with the skyline walks' own CPU and pairs a walk.

Usage: ``PYTHONPATH=TREE python docs/experiments/skyline_cap_s62.py layered2000:s3,rdag2000:s3`` (``graph[:s1|s3|
sauto]``: quality_s62's graph names, and rdag2000 / layered2000). Run it on two trees one after the other in one
shell line and compare ratios (a shared machine). Results: docs/experiments/skyline_cap_s62.txt.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_s62 import graphs  # noqa: E402,I001

import memplan  # noqa: E402,I001
from memplan.benchmarks import scale  # noqa: E402,I001
from memplan.solvers import auto  # noqa: E402,I001

STREAMS = {"s1": {}, "s3": {"streams": 3}, "sauto": {"streams": "auto"}}


def main(names: list[str]) -> None:
    log = []
    real = auto.skyline_below

    def below(problem, over, *rest):
        c = time.process_time()
        try:
            return real(problem, over, *rest)
        finally:
            log.append((len(problem), auto._walk_work(problem), len(auto.skyline_keys(problem)),
                        time.process_time() - c))
    auto.skyline_below = below
    gs = graphs()
    gs["rdag2000"] = lambda: scale.random_dag(2000, seed=0)
    gs["layered2000"] = lambda: scale.layered_graph(2000)
    for item in names:
        name, _, sname = item.partition(":")
        sname = sname or "s1"
        g = gs[name]()
        log.clear()
        c = time.process_time()
        p = memplan.plan(g, **STREAMS[sname])
        cpu = time.process_time() - c
        memplan.verify(g, p)
        sky = "; ".join(f"n={a} pairs={b} keys={k} walks {t:.2f}s" for a, b, k, t in log)
        print(f"{name}:{sname} arena={p.arena_bytes} lb={p.lower_bound_bytes} cpu={cpu:.2f}s "
              f"solver={p.solver.get('name')} [{sky}]", flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","))
