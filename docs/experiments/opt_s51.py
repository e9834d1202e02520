"""Session 51: ``list_schedule_twin`` (and ``graph_optimize``) before and after, side by side, with identical results.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/opt_s51.py [--base REV] [--repeat N] [--optimize]``.
"Before" is ``memplan/optimize/streams.py`` of ``--base`` (default main), loaded beside the current module. Each case
builds a unit graph (``scale.wide_graph``, ``scale.random_dag``, ``scale.layered_graph``, ``generators.fanout_join``)
and runs ``list_schedule_twin`` on it at 1,024 (and 64) streams, old and new in turn (best of ``--repeat``), and
checks that order, streams and twins are the same. ``--optimize`` also times ``graph_optimize`` with the old module's
``list_schedule_twin`` swapped in and compares the schedules.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import memplan
from memplan.benchmarks import scale
from memplan.generators import fanout_join
from memplan.optimize import streams
from memplan.optimize.cost import CostModel, node_costs


def load_before(base: str):
    """``memplan/optimize/streams.py`` of commit ``base``, as a module of the package beside the current one."""
    src = subprocess.run(["git", "show", f"{base}:memplan/optimize/streams.py"], check=True, capture_output=True,
                         text=True).stdout
    path = Path(tempfile.mkdtemp()) / "streams_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("memplan.optimize.streams_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def best_of(repeat: int, fn):
    out, best = None, float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


CASES = [
    ("wide_graph(20000)", lambda: scale.wide_graph(20000)),
    ("wide_graph(5000)", lambda: scale.wide_graph(5000)),
    ("random_dag(20000)", lambda: scale.random_dag(20000)),
    ("layered_graph(20000)", lambda: scale.layered_graph(20000)),
    ("fanout_join(20000, w=64)", lambda: fanout_join(20000, max_width=64, seed=1)[0]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="main")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--streams", type=int, nargs="+", default=[1024, 64])
    ap.add_argument("--optimize", action="store_true")
    a = ap.parse_args()
    old = load_before(a.base)
    print(f"{'case':28} {'k':>5} {'old s':>8} {'new s':>8} {'same':>5}   old looked -> new looked")
    for name, make in CASES:
        g = make()
        U = streams.build_units(g, node_costs(g, CostModel()))
        for k in a.streams:
            so: dict = {}
            sn: dict = {}
            t_old, r_old = best_of(a.repeat, partial(old.list_schedule_twin, U, k, 2.0, stats=so))
            t_new, r_new = best_of(a.repeat, partial(streams.list_schedule_twin, U, k, 2.0, stats=sn))
            print(f"{name:28} {k:5} {t_old:8.3f} {t_new:8.3f} {str(r_old == r_new):>5}   "
                  f"{so.get('looked', 0) // a.repeat} -> {sn.get('looked', 0) // a.repeat}", flush=True)
        if a.optimize:
            real = streams.list_schedule_twin
            t_new, p_new = best_of(1, partial(memplan.graph_optimize, g, 1024))
            streams.list_schedule_twin = old.list_schedule_twin
            try:
                t_old, p_old = best_of(1, partial(memplan.graph_optimize, g, 1024))
            finally:
                streams.list_schedule_twin = real
            print(f"{'  graph_optimize(g, 1024)':28} {'':5} {t_old:8.3f} {t_new:8.3f} {str(p_old == p_new):>5}",
                  flush=True)


if __name__ == "__main__":
    main()
