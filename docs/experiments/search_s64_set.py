"""Session 64: minimalloc A-K minimised by the search (with the capacity 1,048,576; NOCAP=1: without), SearchParams
variants side by side.

    python docs/experiments/search_s64_set.py 5 "" chase=False ""
    NOCAP=1 python docs/experiments/search_s64_set.py 1 D,J chase=False ""

Arguments: time_limit, problems (empty: all), one SearchParams keyword list per variant. Each row: arena, status, bound,
work units (w), tries (t), CPU seconds of each variant; BETTER / WORSE for the last against the first. Work budgets: the
arenas repeat on any machine.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import solve  # noqa: E402,I001
from memplan.solvers.capacity import OverCapacity  # noqa: E402,I001
from memplan.solvers.options import SearchParams, SolveOptions  # noqa: E402,I001


def main() -> None:
    limit = float(sys.argv[1])
    names = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else "ABCDEFGHIJK"
    variants = [eval("dict(" + v + ")") for v in (sys.argv[3:] or ["chase=False", ""])]
    cap = None if os.environ.get("NOCAP") else 1048576
    for n in names:
        row = []
        for v in variants:
            t = time.process_time()
            try:
                r = solve(challenging(n, cap), "search", SolveOptions(time_limit=limit, search=SearchParams(**v)))
            except OverCapacity as e:   # (nothing within the capacity: its best above it, as bench planners reports)
                r = e.best
            info = r.info or {}
            row.append(f"{r.arena:8d} {r.status.name[:4]} lb{r.lower_bound:8d} w{info.get('work')} t{info.get('tries')} "
                       f"{'WALL' if info.get('stopped') else ''}{time.process_time() - t:4.1f}s")
        a = [int(x.split()[0]) for x in row]
        mark = "" if len(set(a)) == 1 else ("BETTER" if a[-1] < a[0] else "WORSE")
        print(f"T={limit} {n} | " + " | ".join(row), mark, flush=True)


if __name__ == "__main__":
    main()
