"""Round 79 (opt79): does any step of a budget plan of ``moe_graph(B)`` (770 nodes a block: a router, 256 experts of
three nodes, a sum of all of them) on ``streams="auto"`` grow faster than the graph? Run with PYTHONPATH at the tree:

    python docs/experiments/scale_s79.py 26 52 130     # 20k, 40k and 100k nodes, each in this process in turn

For each size: the serial plan's and the ``streams="auto"`` plan's seconds, then a plan at the serial arena as its
memory budget under cProfile: its seconds and, per step, (calls, cumulative seconds). Calls are the work measure:
seconds on a shared machine vary with its load (see scale_s79.txt).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

import memplan
from memplan.benchmarks.scale import moe_graph

#: (file suffix, function) of the steps reported
STEPS = (("plan.py", "planned"), ("plan.py", "fits"), ("solvers/__init__.py", "heuristics_over"),
         ("optimize/streams.py", "optimize"), ("optimize/streams.py", "list_schedule_twin"),
         ("optimize/candidates.py", "budget_tiers"), ("problem.py", "_dense_clique"), ("problem.py", "_conflicts_of"),
         ("size.py", "_place_windows"), ("greedy.py", "_sweep_streams"), ("placement.py", "add"),
         ("placement.py", "_count_add"), ("greedy.py", "update"), ("lifetimes.py", "compute_lifetimes"))


def one(blocks: int) -> None:
    g = moe_graph(blocks)
    t = time.perf_counter()
    serial = memplan.plan(g)
    t1 = time.perf_counter()
    memplan.plan(g, streams="auto")
    t2 = time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    budgeted = memplan.plan(g, streams="auto", memory_budget=serial.arena_bytes)
    prof.disable()
    t3 = time.perf_counter()
    print(f"{len(g.nodes)} nodes: serial {t1 - t:.1f} s, auto {t2 - t1:.1f} s, budget {t3 - t2:.1f} s "
          f"(arena {budgeted.arena_bytes} B)")
    stats = pstats.Stats(prof).stats   # type: ignore[attr-defined]
    for suffix, func in STEPS:
        rows = [v for k, v in stats.items() if k[0].endswith(suffix) and k[2] == func]
        if rows:
            print(f"  {suffix}:{func} calls {sum(r[1] for r in rows)} cum {max(r[3] for r in rows):.1f} s")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        one(int(arg))
