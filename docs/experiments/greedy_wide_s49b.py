"""Session 49b: greedy's stream-by-stream sweep before and after, side by side, with byte-identical plans.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/greedy_wide_s49b.py [K ...] [--chains C ...]``.
"Before" is ``memplan/solvers/greedy.py`` as of ``git show BASE:memplan/solvers/greedy.py`` (BASE: ``--base``,
default 5c0e910), loaded beside the current module; each case plans ``scale.wide_graph(K)`` with
``streams="auto"`` (the whole ``plan()``: auto solver) and times only ``greedy.solve`` inside it.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import memplan
from memplan.benchmarks.scale import wide_graph
from memplan.solvers import greedy


def load_before(base: str):
    """``memplan/solvers/greedy.py`` of commit ``base``, as a module beside the current one."""
    src = subprocess.run(["git", "show", f"{base}:memplan/solvers/greedy.py"], check=True, capture_output=True,
                         text=True).stdout
    path = Path(tempfile.mkdtemp()) / "greedy_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("memplan.solvers.greedy_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def run(g, sweep, **kw):
    """``plan(g, **kw)`` with ``sweep`` as greedy's stream-by-stream sweep: the plan, plan() seconds, sweep seconds."""
    spent = [0.0]
    real_sweep = greedy._sweep_streams

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return sweep(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t
    greedy._sweep_streams = timed
    try:
        t = time.perf_counter()
        p = memplan.plan(g, **kw)
        total = time.perf_counter() - t
    finally:
        greedy._sweep_streams = real_sweep
    return p, total, spent[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("wide", type=int, nargs="*", default=[2000, 5000, 10000, 20000])
    ap.add_argument("--base", default="5c0e910")
    a = ap.parse_args()
    before = load_before(a.base)
    print("| case | plan() before s | plan() after s | ratio | _sweep_streams before s | after s | ratio | same plan |")
    print("|---|---|---|---|---|---|---|---|")
    for k in a.wide:
        g = wide_graph(k)
        p0, t0, s0 = run(g, before._sweep_streams, streams="auto")
        p1, t1, s1 = run(g, greedy._sweep_streams, streams="auto")
        d = Path(tempfile.mkdtemp())
        p0.save(str(d / "a.json"))
        p1.save(str(d / "b.json"))
        same = (d / "a.json").read_bytes() == (d / "b.json").read_bytes()
        print(f"| wide_graph({k}), streams auto | {t0:.2f} | {t1:.2f} | {t0 / t1:.1f}x | {s0:.2f} | {s1:.2f} | "
              f"{s0 / max(s1, 1e-9):.1f}x | {same} |", flush=True)


if __name__ == "__main__":
    main()
