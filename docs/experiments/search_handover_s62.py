"""Session 62: the opening's handover (``SearchParams.handover``, ``search.SMALL_STEP`` / ``NEAR_BOUND``), off vs on.

    python docs/experiments/search_handover_s62.py graphs search   # quality_s62's graphs, serial, T=0.25/0.5/1/2
    python docs/experiments/search_handover_s62.py graphs auto
    python docs/experiments/search_handover_s62.py minimalloc sky 0.25 0.5   # A-K (MINIMALLOC dir), default start
    python docs/experiments/search_handover_s62.py minimalloc nosky 0.25 0.5 # A-K from size's start

Each row: the arena with the handover off (as before) and on, the search's ``info["opening"]``. Work budgets: the
rows repeat on any machine (no row here stopped on the wall clock).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from memplan.solvers import SearchParams, SolveOptions, solve  # noqa: E402,I001

MINIMALLOC = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")


def _pair(p, solver, T):
    r = [solve(p, solver, SolveOptions(time_limit=T, search=SearchParams(handover=h))) for h in (False, True)]
    mark = "" if r[0].arena == r[1].arena else ("BETTER" if r[1].arena < r[0].arena else "WORSE")
    return r, mark


def graphs(solver: str) -> None:
    from quality_s59 import deep_skips

    from memplan.benchmarks import scale
    from memplan.generators import fanout_join
    from memplan.lifetimes import buffer_problem
    from memplan.schedule import build_happens_before, serial_schedule

    gs = {}
    for n in (300, 1000):
        for seed in (0, 1):
            gs[f"rdag{n}.{seed}"] = lambda n=n, seed=seed: scale.random_dag(n, seed=seed)
            gs[f"layered{n}.{seed}"] = lambda n=n, seed=seed: scale.layered_graph(n, seed=seed)
            gs[f"fj{n}.{seed}"] = lambda n=n, seed=seed: fanout_join(n, seed=seed)[0]
    gs["deepskips2000"] = lambda: deep_skips(2000)
    gs["rdag3000"] = lambda: scale.random_dag(3000, seed=1)
    gs["layered3000"] = lambda: scale.layered_graph(3000)
    counts = {"BETTER": 0, "WORSE": 0, "": 0}
    for name, make in gs.items():
        g = make()
        p = buffer_problem(g, build_happens_before(g, serial_schedule(g)))
        for T in (0.25, 0.5, 1, 2):
            r, mark = _pair(p, solver, T)
            counts[mark] += 1
            print(f"{name:14} T={T:<4} bound {r[1].lower_bound:>9}  off {r[0].arena:>9} {r[0].info.get('opening', '-'):14}"
                  f" on {r[1].arena:>9} {r[1].info.get('opening', '-'):14} {mark}", flush=True)
    print(f"better {counts['BETTER']} worse {counts['WORSE']} same {counts['']}")


def minimalloc(start: str, limits: list[float]) -> None:
    from memplan.io.minimalloc import read_csv
    from memplan.solvers import auto

    if start == "nosky":
        auto.SKYLINE_BUFFERS = 0
    counts = {"BETTER": 0, "WORSE": 0, "": 0}
    for name in "ABCDEFGHIJK":
        p = read_csv(os.path.join(MINIMALLOC, f"{name}.1048576.csv")).problem()
        for T in limits:
            r, mark = _pair(p, "search", T)
            counts[mark] += 1
            print(f"{start} {name} T={T:<4} off {r[0].arena:>8} {r[0].info.get('opening', '-'):10} on {r[1].arena:>8} "
                  f"{r[1].info.get('opening', '-'):10} {mark}", flush=True)
    print(f"better {counts['BETTER']} worse {counts['WORSE']} same {counts['']}")


if __name__ == "__main__":
    if sys.argv[1] == "graphs":
        graphs(sys.argv[2])
    else:
        minimalloc(sys.argv[2], [float(x) for x in sys.argv[3:]])
