"""``python -m runtime.bench_multi_gpu``: one GPU vs a pipeline split over several (a benchmark, not a test).

Tokens/s of an 8B-like decode (batch 1) and prefill (batch > 1) on 1 GPU (``runtime.executor``, serial
plan) vs split over N GPUs (``runtime.multi_gpu``: eager and per-device CUDA graphs), the per-device
arenas, and the bytes copied between devices per step. It asserts nothing; it reports whether the split
step computes the one-GPU logits bit for bit.
"""

from __future__ import annotations

import statistics
import time

import memplan
from memplan.files import atomic_write_text

from .bits import same_bits
from .cuda_util import need_pycuda
from .layout import layout
from .tool_args import ToolParser, count_arg, results_json


def plans(name: str, batch: int, devices: int):
    """The step graph of config ``name`` at ``batch``, its one-GPU plan and its split over ``devices`` GPUs
    (``memplan.plan_devices``: the split and its verified plan). CPU only, so ``main`` makes every one before a
    GPU is touched: a split memplan refuses (more devices than the graph has stages) is then one line, not a
    traceback after the kernels compiled and earlier configs ran."""
    from .models import llama as L

    g = L.build_graph(L.config(name, batch=batch))
    split, multi = memplan.plan_devices(g, devices)
    memplan.verify(split.graph, multi)
    return g, memplan.plan(g), split, multi


def bench_config(name: str, batch: int, devices: int, *, steps: int, rounds: int, log=print, planned=None) -> dict:
    """1 GPU (runtime.executor, serial plan) vs ``devices`` GPUs (this module): tokens/s, arenas, copies.
    ``planned``: ``plans(name, batch, devices)`` if already made."""
    from .executor import Executor
    from .models import llama as L
    from .multi_gpu import MultiGpuExecutor

    g, single, split, multi = planned or plans(name, batch, devices)
    inputs = L.make_inputs(L.config(name, batch=batch), seed=1)
    lay = layout(split.graph, multi)
    t0 = time.perf_counter()
    one = Executor(g, single, inputs=inputs, random_weights_seed=1)
    many = MultiGpuExecutor(split.graph, multi, inputs=inputs, random_weights_seed=1)
    log(f"  setup {time.perf_counter() - t0:.1f}s")
    one.run()
    many.run()
    same_eager = same_bits(one.read("logits"), many.read("logits"))
    many.capture()
    many.replay(1)
    same_graph = same_bits(one.read("logits"), many.read("logits"))
    one.capture()
    samples: dict[str, list[float]] = {"1 GPU graph": [], f"{devices} GPUs eager": [], f"{devices} GPUs graph": []}
    for _ in range(rounds):
        samples["1 GPU graph"] += one.time_steps("graph", steps=steps, repeats=1, warmup=1)
        samples[f"{devices} GPUs eager"] += many.time_steps("eager", steps=max(steps // 10, 1), repeats=1, warmup=1)
        samples[f"{devices} GPUs graph"] += many.time_steps("graph", steps=steps, repeats=1, warmup=1)
    modes = {}
    for k, v in samples.items():
        ms = statistics.median(v)
        modes[k] = {"ms_per_step": round(ms, 4), "tokens_per_s": round(batch / (ms / 1e3), 1),
                    "ms_spread": [round(min(v), 4), round(max(v), 4)]}
    many.free()
    one.free()
    return {
        "config": name, "batch": batch, "devices": devices, "modes": modes,
        "same_logits_eager": same_eager, "same_logits_graph": same_graph,
        "single_arena_bytes": single.arena_bytes, "device_arena_bytes": list(multi.device_arena_bytes),
        "weight_bytes_per_device": list(split.weight_bytes), "copy_bytes_per_step": lay.copy_bytes,
        "copies": len(lay.transfers), "cross_device_events": len(lay.cross_events),
        "stage_cost_us": list(split.stage_cost_us),
    }


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.bench_multi_gpu", description="1 GPU vs a pipeline split "
                                 "over several GPUs: tokens/s, per-device arenas, bytes copied between devices")
    ap.add_argument("--configs", default="8b", help="comma-separated Llama configs (default 8b)")
    ap.add_argument("--batches", default="1,32", help="1: decode; >1: prefill of that many tokens")
    ap.add_argument("--devices", type=count_arg, default=2, help="GPUs to split over (default 2)")
    ap.add_argument("--steps", type=count_arg, default=20, help="timed steps per round (default 20)")
    ap.add_argument("--rounds", type=count_arg, default=5, help="timing rounds (default 5)")
    ap.add_argument("--out", default="multi_gpu_bench.json", help="results as JSON (default multi_gpu_bench.json)")
    args = ap.parse_args(argv)
    from memplan.planfile import MAX_STREAMS

    from .tool_args import (
        ToolArgError,
        at_least,
        at_most,
        config_list,
        int_list,
        llama_graphs,
        out_path,
        repeats,
        tool_error,
    )

    try:
        configs, batches = config_list(args.configs), int_list(args.batches, "--batches")
        at_least(args.devices, "--devices", 1)
        for v, opt in ((args.steps, "--steps"), (args.rounds, "--rounds")):
            repeats(v, opt)
        at_most(args.devices, "--devices", MAX_STREAMS)
        llama_graphs(configs, batches)
        planned = {}
        for name in configs:
            for b in batches:
                try:
                    planned[name, b] = plans(name, b, args.devices)
                except memplan.MemplanError as exc:
                    raise ToolArgError(f"--devices {args.devices}, config {name} at batch {b}: {exc}") from None
        out_path(args.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("bench_multi_gpu", exc)
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() < args.devices:
        return tool_error("bench_multi_gpu", ToolArgError(f"--devices {args.devices}: needs {args.devices} GPUs, "
                                                          f"{cuda.Device.count()} visible"))
    results = []
    for name in configs:
        for b in batches:
            print(f"{name} batch {b} over {args.devices} GPUs", flush=True)
            r = bench_config(name, b, args.devices, steps=args.steps, rounds=args.rounds, planned=planned[name, b])
            results.append(r)
            print(results_json(r), flush=True)
            atomic_write_text(args.out, results_json(results, indent=1))
    print("| config | batch | mode | ms/step | tokens/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        for k, v in r["modes"].items():
            print(f"| {r['config']} | {r['batch']} | {k} | {v['ms_per_step']:.3f} | {v['tokens_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    from .tool_args import run_main

    raise SystemExit(run_main(main, "bench_multi_gpu"))
