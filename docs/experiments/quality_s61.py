"""Session 61: ``skyline``'s walks on larger graphs (two keys up to 20,000 buffers), promotions where no key walk
beats greedy and size, and faster walks; before and after.

    PYTHONPATH=OLD python docs/experiments/quality_s61.py families > old.txt   # arena / bound / gap / CPU / wall of
    python docs/experiments/quality_s61.py families > new.txt                  # the default, streams 1 / 2 / auto /
                                                                                # auto + memory budget
    python docs/experiments/quality_s61.py keys        # each key's walk alone on the targets (what picked end+life)
    python docs/experiments/quality_s61.py csv         # the public minimalloc inputs (as quality_s60.py csv)

Families: session 60's (docs/experiments/quality_s60.py: quality_s59's, NASNet cells, deep chains with long skips,
scale's random / layered / fan-out-join of 300-3,000 nodes, the bundled examples) and the targets of this session
(deep chains with skips of 5,000 and 10,000 nodes, a chain of 10,000 tiny buffers). Every plan is verified again
here (``ver``); ``same`` says a second plan in this process was byte-identical. ``cpu``: ``time.process_time`` of
one plan (less sensitive than the wall clock to the other processes of a shared machine, still noisy).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import memplan  # noqa: E402,I001
from quality_s59 import deep_skips, tiny  # noqa: E402,I001
from quality_s60 import csv, graphs as s60_graphs  # noqa: E402,I001,F401

SETS = {"s1": {}, "s2": {"streams": 2}, "sauto": {"streams": "auto"}, "budget": {"streams": "auto", "memory_budget": 0}}
#: option sets skipped on these graphs (minutes each on a shared 2-core machine, or planned the same as s1 there)
HEAVY = {"fj1000": {"budget"}, "fj3000": {"budget", "sauto"}, "rdag3000": {"budget", "sauto"},
         "layered3000": {"budget", "sauto"}, "tiny10k": {"sauto", "budget"}, "deepskips10k": {"sauto", "budget"}}


def graphs():
    gs = dict(s60_graphs())
    gs["deepskips10k"] = lambda: deep_skips(10000, span=1000)
    gs["tiny10k"] = lambda: tiny(10000)
    return gs


def families() -> None:
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    sets = [s for s in os.environ.get("SETS", "").split(",") if s] or list(SETS)
    print(f"{'graph':19} {'set':6} {'arena':>11} {'bound':>11} {'gap%':>6} {'cpu':>6} {'wall':>6} str {'ev':>4} ver "
          "same solver")
    for name, make in graphs().items():
        if only and name not in only:
            continue
        g = make()
        serial = memplan.plan(g, solver="greedy").arena_bytes
        for sname in sets:
            if sname in HEAVY.get(name, ()):
                continue
            opts = dict(SETS[sname])
            if "memory_budget" in opts:
                opts["memory_budget"] = serial
            t, c = time.perf_counter(), time.process_time()
            try:
                p = memplan.plan(g, **opts)
            except Exception as e:  # noqa: BLE001 (a row of the table)
                print(f"{name:19} {sname:6} ERROR {type(e).__name__}: {str(e)[:100]}", flush=True)
                continue
            cpu, wall = time.process_time() - c, time.perf_counter() - t
            try:
                memplan.verify(g, p)
                ok = "ok"
            except Exception:  # noqa: BLE001
                ok = "UNSAFE"
            same = "yes" if memplan.plan(g, **opts).to_json() == p.to_json() else "NO"
            gap = 100.0 * (p.arena_bytes - p.lower_bound_bytes) / max(1, p.lower_bound_bytes)
            print(f"{name:19} {sname:6} {p.arena_bytes:>11} {p.lower_bound_bytes:>11} {gap:>6.2f} {cpu:>6.2f} "
                  f"{wall:>6.2f} {p.streams:>3} {len(p.events):>4} {ok:3} {same:4} {p.solver.get('name')}", flush=True)


def keys() -> None:
    """Each key's walk alone (no promotion) on the problems of the default serial plans of the targets."""
    from memplan.plan import solve_schedule
    from memplan.schedule import serial_schedule
    from memplan.solvers import auto, skyline

    for name in ("deepskips2k", "deepskips5k", "deepskips10k", "tiny10k", "layered300", "layered1000", "rdag300"):
        g = graphs()[name]()
        seen = []
        real = auto.solve

        def spy(problem, *args, seen=seen, real=real, **kwargs):
            seen.append(problem)
            return real(problem, *args, **kwargs)
        auto.solve = spy
        try:
            solve_schedule(g, serial_schedule(g))
        finally:
            auto.solve = real
        p = max(seen, key=len)
        lb = int(p.lower_bound)
        cells = []
        for k in skyline.KEYS:
            arena = skyline.solve(p, keys=(k,)).arena
            cells.append(f"{k} {100 * (arena - lb) / lb:5.2f}%")
        print(f"{name:13} n {len(p):>6} pairs {p.overlap_count():>7}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    {"families": families, "keys": keys, "csv": csv}[sys.argv[1]]()
