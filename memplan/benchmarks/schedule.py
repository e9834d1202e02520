"""Schedule: graph_optimize's simulated speedup, streams, events and arena against serial and Q/K/V-only.

For each graph: the serial schedule; llama.cpp's Q/K/V fork (K and V branches on streams 1 and 2,
nothing else concurrent); ``graph_optimize`` unconstrained; and ``graph_optimize`` under a memory
budget of ``--budget`` times the serial arena. Makespans come from the simulator under the default
cost model (graph costs, ``--event-us`` per cross-stream event); arenas from ``memplan.plan`` (every
plan verified). Deterministic: the numbers depend only on the options.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .. import argtypes
    from ..solvers import SOLVER_NAMES

    p.add_argument("--layers", type=argtypes.at_most(argtypes.MAX_LAYERS, "layers"), default=16,
                   help="Llama decoder layers (default 16)")
    p.add_argument("--streams", type=argtypes.streams, default="auto",
                   help="max streams for graph_optimize: N or 'auto' (up to 8; default auto)")
    p.add_argument("--event-us", type=argtypes.microseconds, default=None, help="event latency in microseconds "
                   "(default: the cost model's)")
    p.add_argument("--budget", type=argtypes.factor, default=1.05,
                   help="memory budget as a multiple of the serial arena (default 1.05)")
    p.add_argument("--solver", default="auto", choices=SOLVER_NAMES,
                   help="offset solver for the arenas (default auto)")
    p.add_argument("--quick", action="store_true", help="only the Llama graphs")


def graphs(layers: int, quick: bool) -> list:
    from ..examples import LlamaConfig, fanout_join15, llama, moe, qkv_attention
    from ..generators import fanout_join

    out = [llama(LlamaConfig(layers=layers, batch=1)), llama(LlamaConfig(layers=layers, batch=32))]
    if not quick:
        out += [moe(8), moe(32), fanout_join(400, max_width=8, streams=8, seed=1)[0],
                fanout_join(2000, max_width=6, streams=8, seed=2)[0], qkv_attention(), fanout_join15()]
    return out


def run(args: argparse.Namespace) -> list[dict]:
    from .. import plan as make_plan
    from ..optimize import CostModel
    from ..optimize.baselines import qkv_only
    from ..schedule import serial_schedule
    from ..simulate import simulate

    if args.solver == "ggml":   # (refused only once the first graph's serial row was planned, as its Q/K/V-only row)
        from ..errors import MemplanError

        raise MemplanError("--solver ggml plans one serial stream, and bench schedule compares multi-stream "
                           "schedules (Q/K/V-only, graph_optimize): give another solver (greedy, size, search, cpsat, "
                           "auto)")
    model = CostModel() if args.event_us is None else CostModel(event_us=args.event_us)
    streams = args.streams if args.streams == "auto" else int(args.streams)
    rows: list[dict] = []
    for g in graphs(args.layers, args.quick):
        serial = make_plan(g, serial_schedule(g), solver=args.solver, cost_model=model)
        base_arena = serial.arena_bytes
        runs = [("serial", serial), ("qkv-only", make_plan(g, qkv_only(g), solver=args.solver, cost_model=model)),
                ("graph_optimize", make_plan(g, solver=args.solver, streams=streams, cost_model=model))]
        budget = int(args.budget * base_arena)
        runs.append((f"graph_optimize@{args.budget:g}x",
                     make_plan(g, solver=args.solver, streams=streams, memory_budget=budget, cost_model=model)))
        for method, p in runs:
            sim = simulate(g, p, model)
            rows.append({
                "graph": g.name, "nodes": len(g.nodes), "method": method, "streams": p.streams,
                "events": len(p.events), "makespan_us": round(sim.makespan_us, 3),
                "serial_us": round(sim.serial_us, 3), "speedup": round(sim.speedup, 4),
                "arena_bytes": p.arena_bytes, "arena_vs_serial": round(p.arena_bytes / base_arena, 4) if base_arena else 1.0,
                "budget_bytes": budget if "@" in method else None, "event_us": model.event_us,
            })
    _print(rows)
    return rows


def _print(rows: list[dict]) -> None:
    head = f"{'graph':<24} {'nodes':>6} {'method':<22} {'streams':>7} {'events':>6} {'makespan us':>12} " \
           f"{'speedup':>8} {'arena B':>10} {'arena/serial':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['graph']:<24} {r['nodes']:>6} {r['method']:<22} {r['streams']:>7} {r['events']:>6} "
              f"{r['makespan_us']:>12.3f} {r['speedup']:>8.3f} {r['arena_bytes']:>10} {r['arena_vs_serial']:>12.3f}")
