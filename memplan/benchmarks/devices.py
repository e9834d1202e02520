"""Devices: pipeline splits of the bundled Llama graphs over 2 and 4 GPUs (CPU only, no GPU needed).

Per model and device count: the stage costs and their balance (max / mean, 1.0 is perfect), each
device's weights and arena next to the one-device arena, the bytes copied between devices per step,
the cross-device events, and the simulated step time of the split plan vs one device (a pipeline of
one request runs its stages one after another, so a split buys capacity, not speed: the simulated
time shows what the copies and events cost). Plan time is one core, wall clock.
"""

from __future__ import annotations

import argparse
import time

MODELS = ("1b-decode", "1b-prefill", "8b-decode", "8b-prefill", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .. import argtypes
    from ..solvers import SOLVER_NAMES

    p.add_argument("--models", nargs="+", default=["1b-decode", "1b-prefill", "8b-decode", "8b-prefill"],
                   choices=MODELS, help="Llama graphs (prefill: 32 tokens), each at most once (default: all but tiny)")
    p.add_argument("--devices", type=argtypes.at_most(argtypes.MAX_STREAMS, "devices"), nargs="+", default=[2, 4],
                   metavar="N", help="device counts to split over, each at most once (default 2 4)")
    p.add_argument("--streams", type=argtypes.streams, default=None,
                   help="per-device streams (N or auto; default serial)")
    p.add_argument("--solver", default="auto", choices=SOLVER_NAMES, help="offset solver (default auto)")


def model_graph(name: str):
    from ..examples import LLAMA_1B, LLAMA_8B, LLAMA_TINY, llama

    size, _, mode = name.partition("-")
    cfg = {"1b": LLAMA_1B, "8b": LLAMA_8B, "tiny": LLAMA_TINY}[size]
    batch = 32 if mode == "prefill" else 1
    from dataclasses import replace

    return llama(replace(cfg, batch=batch, name=f"llama-{size}")), f"llama-{size}-{mode or 'decode'}"


def measure(graph, label: str, n: int, *, streams=None, solver: str = "auto", single=None) -> dict:
    from .. import plan as plan_one
    from ..plan import plan_devices

    single = single if single is not None else plan_one(graph, solver=solver, streams=streams)
    t = time.perf_counter()
    split, p = plan_devices(graph, n, solver=solver, streams=streams)
    seconds = time.perf_counter() - t
    info = p.solver["split"]
    return {
        "model": label, "devices": n, "nodes": len(graph.nodes), "split_nodes": len(split.graph.nodes),
        "stage_cost_us": [round(c, 1) for c in split.stage_cost_us], "balance": round(split.balance, 4),
        "weight_bytes": list(split.weight_bytes), "device_arena_bytes": list(p.device_arena_bytes),
        "single_arena_bytes": single.arena_bytes, "copies": split.copies, "copy_bytes": split.copy_bytes,
        "cross_events": info["cross_device_events"], "events": len(p.events), "streams": p.streams,
        "makespan_us": info["makespan_us"],
        "single_makespan_us": single.solver.get("schedule", {}).get("makespan_us", info["serial_makespan_us"]),
        "plan_s": round(seconds, 3),
    }


def _mib(b: int) -> str:
    return f"{b / (1 << 20):.2f}"


def _check_stages(graphs: list, devices: list[int]) -> None:
    """Refuse, before the table's header and any plan, a device count over the stages a model can be cut into
    (``devices.split.stage_limit``: the limit the split itself refuses more devices than). Why: ``bench devices
    --models tiny --devices 2 40`` printed the header and the 2-device row, then failed at the split over 40 with the
    library's "devices=40 is more than graph ... can use" (as ``--solver ggml`` failed at the first split before
    round 75); named here for the model and the table's several counts."""
    from ..devices.split import KEPT_ON_ONE_DEVICE, stage_limit
    from ..errors import MemplanError

    for graph, label in graphs:
        n = max(devices)
        if n > 1 and graph.nodes:
            most = stage_limit(graph)
            if n > most:
                raise MemplanError(f"--devices {n}: model {label} can be cut into at most {most} pipeline stages "
                                   f"({KEPT_ON_ONE_DEVICE}), so {n - most} device(s) would run nothing; give "
                                   f"device counts of at most {most}")


def run(args: argparse.Namespace) -> list[dict]:
    streams = args.streams
    if streams is not None and streams != "auto":
        streams = int(streams)
    split = [n for n in args.devices if n > 1]
    if args.solver == "ggml" and split:
        # (refused only at the first split, after the header, and with ``--devices 1 2`` after the one-device rows:
        # ggml plans one serial stream, and every split has several, as ``plan_devices`` says; as bench schedule)
        from ..errors import MemplanError

        raise MemplanError(f"--solver ggml plans one serial stream, and a split over {split[0]} devices has several "
                           "(each device's own, and its COPY nodes' streams): give another solver (greedy, size, "
                           "search, cpsat, auto), or --devices 1 alone")
    from .. import plan as plan_one

    graphs = [model_graph(name) for name in args.models]
    _check_stages(graphs, args.devices)
    rows = []
    print(f"{'model':<18} {'dev':>3} {'balance':>7} {'stage cost us':>28} {'weights GiB/dev':>22} "
          f"{'arena MiB/dev':>24} {'1-dev MiB':>9} {'copy KiB':>9} {'x-ev':>4} {'step us':>9} {'1-dev us':>9} "
          f"{'plan s':>6}")
    for graph, label in graphs:
        single = plan_one(graph, solver=args.solver, streams=streams)
        for n in args.devices:
            row = measure(graph, label, n, streams=streams, solver=args.solver, single=single)
            rows.append(row)
            costs = "/".join(f"{c:.0f}" for c in row["stage_cost_us"])
            weights = "/".join(f"{w / (1 << 30):.2f}" for w in row["weight_bytes"])
            arenas = "/".join(_mib(a) for a in row["device_arena_bytes"])
            print(f"{label:<18} {n:>3} {row['balance']:>7.3f} {costs:>28} {weights:>22} {arenas:>24} "
                  f"{_mib(row['single_arena_bytes']):>9} {row['copy_bytes'] / 1024:>9.1f} {row['cross_events']:>4} "
                  f"{row['makespan_us']:>9.1f} {row['single_makespan_us']:>9.1f} {row['plan_s']:>6.2f}", flush=True)
    return rows
