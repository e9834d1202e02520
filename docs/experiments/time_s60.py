"""Session 60: every public entry point that takes a time limit or can be slow, on large hostile graphs, against the
wall clock and peak memory (time60).

Each case runs in a child process of its own (``python time_s60.py --child CASE``), so its peak RSS
(``resource.getrusage``, KB -> MB) is its own and a hang is a timeout, not a stuck driver. A case is
``entry:graph:options``; graphs are built in the child from a seeded generator (below). Entry points:
``plan`` (memplan.plan with the options), ``optimize`` (graph_optimize), ``verify`` (a plan made in the child
first, then verify timed alone), ``cli-plan``/``cli-verify``/``cli-show`` (memplan.cli.main in the child, the graph
and plan written to a temporary directory first, the command timed alone), ``bench`` (``memplan bench scale``),
``onnx`` (import_onnx of a generated ONNX chain, where onnx is installed).

A row is flagged ``OVER`` where a ``time_limit`` case's CPU time (``cpu``; ``s`` is wall time) passes the limit by more than max(0.5 s, 20%) beyond
what the same case costs without a limit (F, the fixed cost the docstring of ``plan`` names), and ``LIMIT`` where it
passes the limit itself by that much (F included). Run: ``PYTHONPATH=. nice python docs/experiments/time_s60.py
[QUICK=1] [ONLY=substr] > docs/experiments/time_s60.txt`` (one shared 2-core machine: times are loose).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time


def mesh(layers: int, width: int, seed: int = 0, near: bool = False):
    """``layers`` x ``width`` nodes, node (l, c) on stream c reading its own column's tensor of layer l - 1 and two
    random others of it: a dense mesh whose clocks spread over every stream within a few layers. Returns (graph,
    schedule): each column on its own stream, an event for every cross-stream read. ``near``: the two others are
    the column's neighbours (c - 1 and c + 1), so a node's clock is the one it waits on but for a few streams."""
    import memplan

    rng = random.Random(seed)
    b = memplan.GraphBuilder(f"mesh-{layers}x{width}")
    prev = [b.input(f"x{c}", 256) for c in range(width)]
    order, stream_of = [], {}
    for layer in range(layers):
        cur = []
        for c in range(width):
            ins = sorted({prev[c], prev[(c - 1) % width], prev[(c + 1) % width]} if near else
                         {prev[c], prev[rng.randrange(width)], prev[rng.randrange(width)]})
            t = (b.output if layer == layers - 1 else b.intermediate)(f"t{layer}_{c}", 256)
            nid = f"n{layer}_{c}"
            b.node(nid, "OP", ins, t, cost=5.0)
            order.append(nid)
            stream_of[nid] = c
            cur.append(t)
        prev = cur
    g = b.build()
    return g, memplan.schedule_with_events(g, order, stream_of)


def hand_plan(g, sched):
    """A safe plan of a given schedule without planning it (a mesh of 100,000 nodes would take minutes to plan): every
    root at an offset of its own (rule 3 then has nothing to order), the schedule's order and events."""
    import memplan

    off, tensors = 0, []
    for t in g.tensors:
        if t.kind == "weight":
            tensors.append({"id": t.id, "offset": None, "size": t.size})
        else:
            tensors.append({"id": t.id, "offset": off, "size": t.size})
            off += -(-t.size // g.alignment) * g.alignment
    order = [{"node": n, "stream": s} for n, s in zip(sched.order, sched.streams)]
    events = [{"after": e.after, "before": e.before} for e in sched.events]
    return memplan.plan_from_dict({"format": "memplan.plan/1", "graph": g.name, "alignment": g.alignment,
                                   "arena_bytes": off, "lower_bound_bytes": 0, "streams": max(sched.streams) + 1,
                                   "order": order, "events": events, "tensors": tensors, "solver": {"name": "hand"}})


def onnx_model(path: str, n: int, shape: str) -> str:
    """An ONNX model of ``n`` elementwise nodes on a [1, 64, 32, 32] float tensor, saved at ``path``: a ``chain`` (Relu,
    then Add of the one before and the one before that: long skips of one step), or a ``fan`` (n Relu of the input,
    one Sum of them all: a node with n inputs)."""
    import onnx
    from onnx import TensorProto, helper

    shape_ = [1, 64, 32, 32]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape_)
    nodes = []
    if shape == "chain":
        prev2, prev = "x", "x"
        for i in range(n - 1):
            out = f"t{i}"
            nodes.append(helper.make_node("Relu", [prev], [out]) if i % 2 == 0 else
                         helper.make_node("Add", [prev, prev2], [out]))
            prev2, prev = prev, out
        nodes.append(helper.make_node("Relu", [prev], ["y"]))
    else:
        outs = [f"r{i}" for i in range(n - 1)]
        nodes += [helper.make_node("Relu", ["x"], [o]) for o in outs]
        nodes.append(helper.make_node("Sum", outs, ["y"]))
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def chain(n: int):
    import memplan

    b = memplan.GraphBuilder(f"chain-{n}")
    prev = b.input("x", 1024)
    for i in range(n):
        t = (b.output if i == n - 1 else b.intermediate)(f"t{i}", 1024 * (1 + i % 7))
        b.node(f"n{i}", "UNARY", [prev], t, cost=2.0)
        prev = t
    return b.build()


def graph_of(name: str):
    """(graph, schedule or None) for a graph name: ``kind-n``."""
    from memplan.benchmarks import scale

    kind, _, n = name.partition("-")
    if kind in ("mesh", "nmesh"):
        layers, width = (int(x) for x in n.split("x"))
        return mesh(layers, width, near=kind == "nmesh")
    n = int(n)
    if kind == "moe":   # one 64-256-expert layer (quality_s59's family): n experts
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from quality_s59 import moe_layer
        return moe_layer(n), None
    if kind == "moeblocks":   # bench scale's MoE: n blocks of 256 experts
        return scale.moe_graph(n), None
    make = {"chain": chain, "random": scale.random_dag, "layered": scale.layered_graph, "wide": scale.wide_graph,
            "transformer": scale.transformer_graph, "views": scale.chain_graph}[kind]
    return make(n), None


def child(case: str) -> dict:
    entry, gname, opts = case.split(":", 2)
    opts = json.loads(opts) if opts else {}
    import memplan

    out: dict = {}
    g, sched = graph_of(gname) if gname else (None, None)
    if isinstance(opts.get("memory_budget"), str):   # "serial": the serial plan's arena, "serial-5%": 5% below it
        serial = memplan.plan(g).arena_bytes
        opts["memory_budget"] = serial if opts["memory_budget"] == "serial" else int(serial * 0.95)
    tmp = tempfile.mkdtemp(prefix="time60-")
    gp, pp = os.path.join(tmp, "g.json"), os.path.join(tmp, "p.json")
    if entry.startswith("cli") or entry == "verify":
        plan = hand_plan(g, sched) if sched is not None else memplan.plan(g)
        if entry.startswith("cli"):
            memplan.save_graph(g, gp)
            plan.save(pp)
    if entry == "onnx":
        onnx_path = onnx_model(os.path.join(tmp, "m.onnx"), int(opts.get("nodes", 10000)), opts.get("shape", "chain"))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t, cpu = time.perf_counter(), time.process_time()
    try:
        if entry == "plan":
            p = memplan.plan(g, sched, **opts) if sched is not None else memplan.plan(g, **opts)
            out["arena"] = p.arena_bytes
            out["stopped"] = p.solver.get("stopped")
        elif entry == "optimize":
            streams = opts.get("streams", 8)   # (graph_optimize takes a count: "auto" is plan()'s, up to 8)
            memplan.graph_optimize(g, 8 if streams == "auto" else streams)
        elif entry == "verify":
            memplan.verify(g, plan)
        elif entry.startswith("cli"):
            from memplan import cli
            argv = {"cli-plan": ["plan", gp, "-o", os.path.join(tmp, "o.json"), "-q"] + opts.get("args", []),
                    "cli-verify": ["verify", gp, pp], "cli-show": ["show", pp, "--graph", gp]}[entry]
            import contextlib
            import io
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    out["exit"] = cli.main(argv)
                except SystemExit as exc:
                    out["exit"] = exc.code
        elif entry == "onnx":
            from memplan.importers.onnx import import_onnx
            out["nodes"] = len(import_onnx(onnx_path).nodes)
        elif entry == "bench":
            import contextlib
            import io

            from memplan import cli
            with contextlib.redirect_stdout(io.StringIO()):
                out["exit"] = cli.main(["bench", "scale"] + opts.get("args", []))
        out["outcome"] = "ok"
    except memplan.MemplanError as exc:
        out["outcome"] = f"refused {type(exc).__name__}: {str(exc)[:100]}"
    out["s"] = round(time.perf_counter() - t, 2)
    out["cpu"] = round(time.process_time() - cpu, 2)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["rss_mb"], out["rss_before_mb"] = rss // 1024, rss0 // 1024
    return out


def cases(quick: bool) -> list[str]:
    out = [f"{e}:{m}:" for m in ("mesh-20x1024", "mesh-100x1024", "nmesh-100x1024") for e in ("verify", "cli-verify", "cli-show")]
    big = ["moe-64", "random-10000", "moe-256", "layered-10000", "wide-10000", "transformer-500", "moeblocks-40"]
    if not quick:
        big += ["chain-100000", "random-50000"]
    for g in big:
        out.append(f"plan:{g}:")
        for tl in (0.1, 1, 5):
            out.append(f'plan:{g}:{{"time_limit": {tl}}}')
        out.append(f'plan:{g}:{{"solver": "greedy"}}')
        out.append(f'plan:{g}:{{"streams": "auto"}}')
        out.append(f'plan:{g}:{{"streams": "auto", "memory_budget": "serial"}}')
        for tl in (0.1, 1, 5):
            out.append(f'plan:{g}:{{"streams": "auto", "time_limit": {tl}}}')
            out.append(f'plan:{g}:{{"streams": "auto", "memory_budget": "serial", "time_limit": {tl}}}')
        for solver in ("search", "cpsat"):
            out.append(f'plan:{g}:{{"solver": "{solver}", "time_limit": 1}}')
        out.append(f'optimize:{g}:{{"streams": "auto"}}')
        out.append(f"verify:{g}:")
    out += [f'onnx::{{"nodes": {n}, "shape": "{sh}"}}' for sh in ("chain", "fan") for n in (10000, 50000)]
    out += ['plan:chain-20000:{"streams": 8, "time_limit": 1}', "cli-plan:random-10000:",
            'cli-plan:random-10000:{"args": ["--time-limit", "1", "--streams", "auto"]}',
            'bench::{"args": ["--nodes", "10000"]}']
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        return
    quick = os.environ.get("QUICK") == "1"
    only = [o for o in os.environ.get("ONLY", "").split(",") if o]
    seconds = float(os.environ.get("TIMEOUT", "300"))
    free: dict[tuple, float] = {}
    for case in cases(quick):
        if only and not any(o in case for o in only):
            continue
        t = time.time()
        try:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case], capture_output=True,
                               text=True, timeout=seconds)
            row = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {
                "outcome": f"CRASH rc {r.returncode}: {r.stderr[-200:]!r}"}
        except subprocess.TimeoutExpired:
            row = {"outcome": f"HANG > {seconds:.0f} s", "s": round(time.time() - t, 1)}
        entry, gname, opts = case.split(":", 2)
        o = json.loads(opts) if opts else {}
        tl = o.pop("time_limit", None)
        key = (entry, gname, json.dumps(o, sort_keys=True))
        # judged on the child's CPU time (all its threads): on a shared machine at load 10 wall time was 3-5x it
        if tl is None and "cpu" in row:
            free[key] = row["cpu"]
        flags = []
        if tl is not None and "cpu" in row:
            slack = max(0.5, 0.2 * tl)
            if row["cpu"] > tl + slack:
                flags.append("LIMIT")
            if key in free and row["cpu"] > free[key] + tl + slack:
                flags.append("OVER")
            row["F"] = free.get(key)
        row["flags"] = flags
        print(json.dumps({"case": case, **row}), flush=True)


if __name__ == "__main__":
    main()
