"""Round 38 scale check: CPU time (process_time: the VM is shared) and peak RSS of every pipeline step, per graph shape and size.

Not a test (pytest collects ``test_*.py`` only): the table behind the round's report, and the plans it saves
let a fix be checked byte for byte. Each case runs in a process of its own (its peak RSS is its own)::

    PYTHONPATH=$PWD python tests/scale_round38_bench.py --sizes 10000 50000 100000 --out /tmp/p38 > table.txt

``--steps`` picks steps (default all); ``--shapes`` picks shapes. Plans are written to ``--out`` as
``SHAPE-N-STEP.json`` (``save_plan`` without timings: byte-identical for the same input and options).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

STEPS = ("save_graph", "load", "validate", "plan", "plan_auto", "plan_dev2", "verify", "simulate", "show",
         "save_plan", "load_plan")
SHAPES = ("chain", "fanout", "wide", "branches", "longlived", "views", "groups", "transformer")


def chain(n: int):
    """``n`` nodes in one line, each reading the one before."""
    from memplan import GraphBuilder

    b = GraphBuilder(f"chain-{n}")
    prev = b.input("x", 4096)
    for i in range(n - 1):
        t = b.intermediate(f"t{i}", 4096 * (1 + i % 4))
        b.node(f"n{i}", "OP", [prev], t, cost=float(1 + i % 7))
        prev = t
    b.node("out", "OUT", [prev], b.output("y", 4096), cost=1.0)
    return b.build()


def groups(n: int):
    """A chain of ``n`` nodes fused in groups of four (``n / 4`` fusion groups)."""
    from memplan import GraphBuilder

    b = GraphBuilder(f"groups-{n}")
    prev = b.input("x", 4096)
    for i in range(n - 1):
        t = b.intermediate(f"t{i}", 4096 * (1 + i % 3))
        b.node(f"n{i}", "OP", [prev], t, cost=float(1 + i % 5), group=f"g{i // 4}")
        prev = t
    b.node("out", "OUT", [prev], b.output("y", 4096), cost=1.0)
    return b.build()


def make(shape: str, n: int):
    """A graph of about ``n`` nodes of ``shape``."""
    from memplan.benchmarks import scale
    from memplan.generators import fanout_join

    if shape == "chain":
        return chain(n)
    if shape == "fanout":
        return fanout_join(n, streams=4)[0]
    if shape == "wide":   # one node of n/2 outputs, one of n/2 inputs
        return scale.wide_graph(n // 2)
    if shape == "branches":
        return scale.chains_graph(n // 10)
    if shape == "longlived":
        return scale.io_graph(n)
    if shape == "views":
        return scale.chain_graph(n * 4 // 5)
    if shape == "groups":
        return groups(n)
    if shape == "transformer":
        return scale.transformer_graph(n // 20)
    raise SystemExit(f"unknown shape {shape}")


def case(shape: str, n: int, steps: tuple[str, ...], out: str | None) -> dict:
    """Run the steps on one graph in this process; a row of seconds and peak RSS (MiB) after each step."""
    import memplan
    from memplan.graph import graph_from_dict
    from memplan.io import read_json
    from memplan.show import describe

    row: dict = {"shape": shape, "n": n}
    g = make(shape, n)
    row["nodes"], row["tensors"] = len(g.nodes), len(g.tensors)
    gpath = os.path.join(out or "/tmp", f"{shape}-{n}.graph.json")
    plans = {}

    def timed(name, fn):
        if name not in steps:
            return None
        t = time.process_time()
        try:
            r = fn()
        except memplan.MemplanError as exc:   # a clear refusal (views: one stage only) is a result too
            row[name + "_error"] = str(exc)[:200]
            r = None
        row[name] = round(time.process_time() - t, 3)
        row[name + "_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return r

    timed("save_graph", lambda: memplan.save_graph(g, gpath))
    if "load" in steps or "validate" in steps:
        if not os.path.exists(gpath):
            memplan.save_graph(g, gpath)
        timed("load", lambda: memplan.load_graph(gpath))
        doc = read_json(gpath, memplan.GraphError)
        timed("validate", lambda: graph_from_dict(doc))
    p = timed("plan", lambda: memplan.plan(g))
    plans["plan"] = p
    plans["plan_auto"] = timed("plan_auto", lambda: memplan.plan(g, streams="auto"))
    plans["plan_dev2"] = timed("plan_dev2", lambda: memplan.plan(g, devices=2))
    if p is None:
        p = memplan.plan(g)
    timed("verify", lambda: memplan.verify(g, p))
    timed("simulate", lambda: memplan.simulate(g, p))
    timed("show", lambda: describe(p))
    ppath = os.path.join(out or "/tmp", f"{shape}-{n}-plan.json")
    timed("save_plan", lambda: memplan.save_plan(p, ppath))
    timed("load_plan", lambda: memplan.load_plan(ppath) if os.path.exists(ppath) else None)
    if out:
        for k, v in plans.items():
            if v is not None:
                memplan.save_plan(v, os.path.join(out, f"{shape}-{n}-{k}.json"))
    if not out and os.path.exists(gpath):
        os.remove(gpath)
    return row


def _cell(row: dict, step: str) -> str:
    """Seconds, or ``refused`` where the step raised a memplan error (``-`` where it did not run)."""
    if step + "_error" in row:
        return f"{'refused':>10}"
    return f"{row[step]:>10.2f}" if step in row else f"{'-':>10}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    ap.add_argument("--out", default=None, help="directory for the plans (compare them byte for byte)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per case")
    ap.add_argument("--case", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    if a.case:
        print(json.dumps(case(a.case[0], int(a.case[1]), tuple(a.steps), a.out)))
        return 0
    print(f"{'shape':>11} {'n':>7} {'tensors':>8} " + " ".join(f"{s:>10}" for s in a.steps) + f" {'peak MiB':>8}")
    for shape in a.shapes:
        for n in a.sizes:
            cmd = [sys.executable, __file__, "--case", shape, str(n), "--steps", *a.steps]
            cmd += ["--out", a.out] if a.out else []
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                print(f"{shape:>11} {n:>7} timed out after {a.timeout} s", flush=True)
                continue
            if r.returncode:
                print(f"{shape:>11} {n:>7} failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            peak = max(v for k, v in row.items() if k.endswith("_mib"))
            print(f"{shape:>11} {n:>7} {row['tensors']:>8} " + " ".join(_cell(row, s) for s in a.steps)
                  + f" {peak:>8}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
