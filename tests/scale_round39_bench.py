"""Round 39 scale check: the four items left by round 38, each as a case run in a process of its own, so the same
command measures any tree (the one ``PYTHONPATH`` names) and its peak RSS is its own. Not a test (pytest collects
``test_*.py`` only)::

    PYTHONPATH=/work/main python tests/scale_round39_bench.py --out /tmp/before > before.txt
    PYTHONPATH=$PWD     python tests/scale_round39_bench.py --out /tmp/after  > after.txt
    diff -r /tmp/before /tmp/after    # the plans (and verifier findings) byte for byte

Cases: ``verify-*`` (the verifier on plans of 1,024 streams: independent chains, layered fork/join; work: findings, MiB: the
check's own peak), ``devices-*`` (``plan(devices=N, device_capacity=C)`` one byte under the free plan's largest
need; work: device problems solved), ``search-huge`` (``search`` at 1 s on N non-interval problems of 2**40-byte
buffers; work: nodes searched, and how many ended OPTIMAL). Columns: CPU seconds (process_time: the VM is
shared), peak RSS MiB, and the work count. ``--out`` keeps each case's plan, findings or offsets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

STREAMS = 1024


def _doc(name: str, nodes: list[dict], tensors: list[dict]) -> dict:
    return {"format": "memplan.graph/1", "name": name, "alignment": 256, "tensors": tensors, "nodes": nodes}


def chains_plan(n: int, streams: int = STREAMS):
    """``n`` nodes as ten-node chains from one input, chain ``c`` on stream ``c % streams``, issued round robin, each
    tensor at its own bytes; a last node on stream 0 reads every chain's end (an event from each)."""
    import memplan

    chains = n // 10
    tensors = [{"id": "x", "size": 256, "kind": "input"}]
    nodes, order, events = [], [], []
    for k in range(10):
        for c in range(chains):
            src = "x" if k == 0 else f"c{c}_{k - 1}"
            tensors.append({"id": f"c{c}_{k}", "size": 256, "kind": "intermediate"})
            nodes.append({"id": f"n{c}_{k}", "op": "OP", "inputs": [src], "outputs": [f"c{c}_{k}"]})
            order.append({"node": f"n{c}_{k}", "stream": c % streams})
    tensors.append({"id": "y", "size": 256, "kind": "output"})
    nodes.append({"id": "join", "op": "SUM", "inputs": [f"c{c}_9" for c in range(chains)], "outputs": ["y"]})
    order.append({"node": "join", "stream": 0})
    events = [{"after": f"n{c}_9", "before": "join"} for c in range(chains) if c % streams]
    return _safe_plan(memplan, _doc("chains", nodes, tensors), order, events)


def layers_plan(n: int, streams: int = STREAMS):
    """Layers of ``streams - 1`` workers (streams 1, 2, ...) and a join (stream 0): each worker reads the join before
    it (an event from it), each join reads every worker of its layer (an event from each)."""
    import memplan

    tensors = [{"id": "j-1", "size": 256, "kind": "input"}]
    nodes, order, events = [], [], []
    for layer in range(max(n // streams, 1)):
        outs = []
        for w in range(1, streams):
            t = f"w{layer}_{w}"
            tensors.append({"id": t, "size": 256, "kind": "intermediate"})
            nodes.append({"id": f"n{t}", "op": "OP", "inputs": [f"j{layer - 1}"], "outputs": [t]})
            order.append({"node": f"n{t}", "stream": w})
            if layer:
                events.append({"after": f"nj{layer - 1}", "before": f"n{t}"})
            outs.append(t)
        tensors.append({"id": f"j{layer}", "size": 256, "kind": "intermediate"})
        nodes.append({"id": f"nj{layer}", "op": "SUM", "inputs": outs, "outputs": [f"j{layer}"]})
        order.append({"node": f"nj{layer}", "stream": 0})
        events += [{"after": f"n{t}", "before": f"nj{layer}"} for t in outs]
    tensors[-1]["kind"] = "output"
    return _safe_plan(memplan, _doc("layers", nodes, tensors), order, events)


def _safe_plan(memplan, gd: dict, order: list[dict], events: list[dict]):
    """The graph and a plan of it placing every tensor at bytes of its own (rule 3 holds whatever the clocks)."""
    g = memplan.graph_from_dict(gd)
    offsets, top = [], 0
    for t in gd["tensors"]:
        offsets.append({"id": t["id"], "offset": top, "size": t["size"]})
        top += t["size"]
    streams = 1 + max(e["stream"] for e in order)
    pd = {"format": "memplan.plan/1", "graph": gd["name"], "alignment": 256, "arena_bytes": top,
          "lower_bound_bytes": 0, "streams": streams, "order": order, "events": events, "tensors": offsets}
    return g, pd


def case(name: str, n: int, out: str | None) -> dict:
    """One case in this process: seconds, peak MiB and the case's work count."""
    import memplan

    row: dict = {"case": name, "n": n}
    if name.startswith("verify-"):
        g, pd = {"verify-chains": chains_plan, "verify-layers": layers_plan}[name](n)
        plan = memplan.plan_from_dict(pd) if hasattr(memplan, "plan_from_dict") else pd
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.process_time()
        from memplan.verify import check
        found = check(g, plan)
        row["s"] = round(time.process_time() - t, 3)
        row["mib"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
        row["work"] = len(found)
        result = json.dumps(found)
    elif name.startswith("devices-"):
        import importlib

        import memplan.examples
        from memplan.benchmarks.scale import transformer_graph

        plan_module = importlib.import_module("memplan.plan")
        g, kw = {"devices-moe": (memplan.examples.moe(), dict(streams=None)),
                 "devices-transformer": (transformer_graph(200), dict(streams="auto"))}[name]
        free = memplan.plan_graph(g, devices=n, **kw)
        cap = max(a + w for a, w in zip(free.plan.device_arena_bytes, free.split.weight_bytes)) - 1
        solves = []
        real = plan_module.solve

        def counting(problem, *a, **k):
            solves.append(len(problem))
            return real(problem, *a, **k)

        plan_module.solve = counting
        t = time.process_time()
        try:
            result = memplan.plan_graph(g, devices=n, device_capacity=cap, **kw).plan.to_json()
        except memplan.MemplanError as exc:
            result = f"{type(exc).__name__}: {exc}"
        row["s"] = round(time.process_time() - t, 3)
        row["mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        row["work"] = len(solves)
    elif name == "search-huge":
        import random

        import numpy as np

        from memplan.problem import BufferProblem
        from memplan.solvers import SolveOptions, solve

        # all-live buffers of 1-4 x 2**40 bytes, half the pairs in place (the test's problem is seed 30): nodes
        # searched by ``search`` at a time limit of 1 s, and its bound
        nodes, solved = 0, []
        t = time.process_time()
        for seed in range(n):
            rnd = random.Random(seed)
            k = rnd.randint(7, 10)
            sizes = [rnd.randint(1, 4) << 40 for _ in range(k)]
            pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
            comp = frozenset(rnd.sample(pairs, int(len(pairs) * rnd.uniform(0.4, 0.7))))
            p = BufferProblem(np.array(sizes), np.zeros(k, dtype=np.int64), np.ones(k, dtype=np.int64), compatible=comp)
            sol = solve(p, "search", SolveOptions(time_limit=1))
            nodes += sol.info.get("nodes", 0)
            solved.append([sol.arena, sol.status.name, sol.info["bound"], sol.offsets.tolist()])
        row["s"] = round(time.process_time() - t, 3)
        row["mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        row["work"] = nodes
        row["optimal"] = sum(o[1] == "OPTIMAL" for o in solved)
        result = json.dumps(solved)
    else:
        raise SystemExit(f"unknown case {name}")
    if out:
        with open(os.path.join(out, f"{name}-{n}.json"), "w") as f:
            f.write(result)
    return row


CASES = {"verify-chains": [20_000, 100_000], "verify-layers": [20_000, 100_000], "devices-moe": [2, 4, 8],
         "devices-transformer": [2, 4], "search-huge": [40]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", default=None, help="directory for the plans / findings (compare them byte for byte)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per case")
    ap.add_argument("--case", nargs=2, metavar=("NAME", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    if a.case:
        print(json.dumps(case(a.case[0], int(a.case[1]), a.out)))
        return 0
    print(f"{'case':>16} {'n':>8} {'cpu s':>8} {'MiB':>7} {'work':>10}", flush=True)
    for name in a.cases:
        for n in CASES[name]:
            cmd = [sys.executable, __file__, "--case", name, str(n)] + (["--out", a.out] if a.out else [])
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name:>16} {n:>8} timed out after {a.timeout} s", flush=True)
                continue
            if r.returncode:
                print(f"{name:>16} {n:>8} failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            extra = f" {row['optimal']:>4} OPTIMAL" if "optimal" in row else ""
            print(f"{name:>16} {n:>8} {row['s']:>8.2f} {row['mib']:>7} {row['work']:>10}{extra}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
