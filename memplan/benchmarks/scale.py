"""Scale: plan time per pipeline stage and peak memory on 10k..1M-node fan-out/join graphs.

Each size runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. Times are one
core, wall clock; the greedy column is the planner the 10 s / 100k-node goal is about.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--with-size", action="store_true", help="also time the size planner (slower)")


def measure(n_nodes: int, streams: int, with_size: bool) -> dict:
    """Run the pipeline stage by stage on one graph, in this process."""
    from ..generators import fanout_join
    from ..plan import solve_schedule
    from ..verify import verify

    row: dict = {"nodes": n_nodes, "streams": streams}
    t = time.perf_counter()
    graph, schedule = fanout_join(n_nodes, streams=streams)
    row["tensors"] = len(graph.tensors)
    row["events"] = len(schedule.events)
    row["build_s"] = time.perf_counter() - t
    phases: dict[str, float] = {}
    plan = solve_schedule(graph, schedule, "greedy", phases=phases)
    row["hb_s"] = phases["happens_before"]
    row["lifetimes_s"] = phases["lifetimes"] + phases["problem"]
    row["greedy_s"] = phases["solve"]
    row["plan_greedy_s"] = sum(phases.values())
    row["arena"] = plan.arena_bytes
    row["lower_bound"] = plan.lower_bound_bytes
    if with_size:
        size_phases: dict[str, float] = {}
        row["size_arena"] = solve_schedule(graph, schedule, "size", phases=size_phases).arena_bytes
        row["size_s"] = size_phases["solve"]
    t = time.perf_counter()
    verify(graph, plan)
    row["verify_s"] = time.perf_counter() - t
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    print(f"{'nodes':>9} {'tensors':>9} {'events':>8} {'hb s':>7} {'life s':>7} {'greedy s':>9} "
          f"{'plan s':>7} {'verify s':>9} {'arena/LB':>9} {'peak MiB':>9}")
    for n in args.nodes:
        cmd = [sys.executable, "-m", "memplan.benchmarks.scale", str(n), str(args.streams),
               "1" if args.with_size else "0"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        ratio = row["arena"] / row["lower_bound"] if row["lower_bound"] else 1.0
        print(f"{row['nodes']:>9} {row['tensors']:>9} {row['events']:>8} {row['hb_s']:>7.2f} "
              f"{row['lifetimes_s']:>7.2f} {row['greedy_s']:>9.2f} {row['plan_greedy_s']:>7.2f} "
              f"{row['verify_s']:>9.2f} {ratio:>9.4f} {row['peak_rss_mib']:>9.0f}", flush=True)
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1")))
