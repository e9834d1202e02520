"""Session 50: greedy's and size's sweeps on wide graphs, before and after side by side, with identical offsets.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/greedy_wide_s50.py [K ...] [--streams S ...] [--plan]``.
"Before" is ``memplan/solvers/greedy.py`` and ``size.py`` of ``--base`` (default aa38f71), loaded beside the current
modules. Each case builds the buffer problems ``plan(scale.wide_graph(K), streams=S)`` solves (the multi-stream one
and, for ``auto``'s report, the serial one), then times ``greedy.solve`` and ``size.solve`` on each, old and new in
turn (best of ``--repeat``), and checks that the offsets are the same. ``--plan`` also times the whole ``plan()`` with
the old modules' sweeps swapped in, and compares the plan JSON bytes.
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
from memplan import solvers
from memplan.benchmarks import scale
from memplan.solvers import greedy, size


def load_before(base: str, name: str):
    """``memplan/solvers/<name>.py`` of commit ``base``, as a module beside the current one."""
    src = subprocess.run(["git", "show", f"{base}:memplan/solvers/{name}.py"], check=True, capture_output=True,
                         text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"memplan.solvers.{name}_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def problems(g, streams):
    """The buffer problems ``plan(g, streams=streams)`` hands the solvers (one per schedule solved), and its plan."""
    got = []
    real = solvers._solve

    def keep(problem, solver, options, proven=0):
        got.append(problem)
        return real(problem, solver, options, proven)
    solvers._solve = keep
    try:
        plan = memplan.plan(g, streams=streams)
    finally:
        solvers._solve = real
    return got, plan


def side_by_side(old, new, problem, repeat):
    """``old.solve(problem)`` and ``new.solve(problem)`` in turn, ``repeat`` times: both solutions, best seconds each
    (in turn, so that a load change on a shared machine falls on both)."""
    out, best = [None, None], [float("inf")] * 2
    for _ in range(repeat):
        for k, mod in enumerate((old, new)):
            t = time.perf_counter()
            out[k] = mod.solve(problem)
            best[k] = min(best[k], time.perf_counter() - t)
    return out, best


def plan_with(g, streams, mods):
    """``plan(g, streams=streams)`` with greedy's and size's sweeps taken from ``mods`` (greedy, size): the plan
    JSON text and the seconds."""
    saved = greedy.solve, size.solve
    greedy.solve, size.solve = mods[0].solve, mods[1].solve
    try:
        t = time.perf_counter()
        p = memplan.plan(g, streams=streams)
        spent = time.perf_counter() - t
    finally:
        greedy.solve, size.solve = saved
    d = Path(tempfile.mkdtemp())
    p.save(str(d / "p.json"))
    return (d / "p.json").read_text(), spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("wide", type=int, nargs="*", default=[2000, 5000, 10000, 20000])
    ap.add_argument("--streams", nargs="*", default=["auto"])
    ap.add_argument("--base", default="aa38f71")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--plan", action="store_true")
    ap.add_argument("--solvers", nargs="+", default=["greedy", "size"], choices=("greedy", "size"))
    ap.add_argument("--no-grouped", action="store_true",
                    help="the new greedy without its second, grouped sweep (GROUPED_MOVED 0): the same offsets as before")
    ap.add_argument("--family", default="wide", choices=("wide", "layered", "io", "chains", "moe", "random"),
                    help="the graphs: scale.wide_graph(K) (default), layered_graph, io_graph, chains_graph, "
                         "moe_graph (K blocks) or random_dag")
    a = ap.parse_args()
    old_greedy, old_size = load_before(a.base, "greedy"), load_before(a.base, "size")
    if a.no_grouped:
        greedy.GROUPED_MOVED = 0
    print("| case | problem | solver | before s | after s | ratio | arena before | arena after | bound | same offsets |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in a.wide:
        for streams in a.streams:
            streams = streams if streams == "auto" else int(streams)
            g = getattr(scale, {"moe": "moe_graph", "random": "random_dag", "chains": "chains_graph"}.get(
                a.family, a.family + "_graph"))(k)
            probs, _ = problems(g, streams)
            for p in probs:
                what = "serial" if p.order is None else "streams"
                for name, old, new in (("greedy", old_greedy, greedy), ("size", old_size, size)):
                    if name not in a.solvers:
                        continue
                    (so, sn), (to, tn) = side_by_side(old, new, p, a.repeat)
                    same = so.offsets.tolist() == sn.offsets.tolist() and so.arena == sn.arena
                    print(f"| {a.family}({k}), streams {streams} | {what} | {name} | {to:.2f} | {tn:.2f} | "
                          f"{to / max(tn, 1e-9):.1f}x | {so.arena:,} | {sn.arena:,} | {int(p.lower_bound or 0):,} | "
                          f"{same} |", flush=True)
            if a.plan:
                jo, to = plan_with(g, streams, (old_greedy, old_size))
                jn, tn = plan_with(g, streams, (greedy, size))
                print(f"| {a.family}({k}), streams {streams} | whole plan() | auto | {to:.2f} | {tn:.2f} | "
                      f"{to / max(tn, 1e-9):.1f}x | | | | {jo == jn} (plan JSON) |", flush=True)


if __name__ == "__main__":
    main()
