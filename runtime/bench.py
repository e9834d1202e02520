"""``python -m runtime.bench``: what running memplan plans on several streams buys on a real GPU.

For each Llama config and batch: decode step time and tokens/s for the same runtime and kernels as
(1) one stream, eager; (2) one stream, CUDA graph; (3) memplan multi-stream plans, CUDA graph (the
hand-made Q/K/V + gate/up streams, and ``memplan.graph_optimize``'s schedule where it exists); then the
same model in PyTorch (eager and ``torch.cuda.graphs``, cuBLAS; run in a subprocess,
``runtime.torch_peer``). Also: arena bytes of each plan vs the serial plan and vs PyTorch's peak
allocated activation memory, the device's copy bandwidth, and the fraction of the HBM roofline
(weight bytes per step / measured bandwidth, over the measured step time).

Modes are timed in interleaved rounds (CUDA events, medians), so clock drift hits all of them alike.
This is a benchmark, not a test: it asserts nothing except that every mode computes the same logits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

import memplan

from .models import llama as L


def measure_bandwidth(nbytes: int = 1 << 31, reps: int = 10) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (median)."""
    import pycuda.driver as cuda

    a, b = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
    cuda.memset_d8(a, 1, nbytes)
    s = cuda.Stream()
    cuda.memcpy_dtod_async(b, a, nbytes, s)
    s.synchronize()
    times = []
    for _ in range(reps):
        e0, e1 = cuda.Event(), cuda.Event()
        e0.record(s)
        cuda.memcpy_dtod_async(b, a, nbytes, s)
        e1.record(s)
        e1.synchronize()
        times.append(e0.time_till(e1) / 1e3)
    a.free()
    b.free()
    return 2 * nbytes / statistics.median(times)


def bench_config(libs: dict, name: str, batch: int, *, steps: int, rounds: int, eager_steps: int, bandwidth: float,
                 torch_peer: bool, log=print, fuse: str = L.DEFAULT_FUSE, extra: bool = True) -> dict:
    """``fuse``: the graph's fusion groups (``runtime.models.llama.FUSE_MODES``); ``extra=False`` skips
    the prefetch and multi-stream eager modes."""
    from .executor import Executor

    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, fuse)
    wbytes = L.weight_bytes(g)
    plans = {"serial": memplan.plan(g)}
    plans["multi_hand"] = memplan.plan(g, L.multi_stream_schedule(g, "hand"))
    if L.graph_optimize_fn() is not None:
        try:
            plans["multi_opt"] = memplan.plan(g, L.multi_stream_schedule(g, "optimize", max_streams=3))
        except Exception as exc:  # a concurrent engineer's code: report, don't die
            log(f"  graph_optimize failed: {exc!r}")
    inputs = L.make_inputs(cfg, seed=1)
    t0 = time.perf_counter()
    base = Executor(g, plans["serial"], inputs=inputs, random_weights_seed=1, library=libs[""])
    exes = {"serial": base}
    for suffix, lib in libs.items():
        for k, p in plans.items():
            if k + suffix not in exes:
                exes[k + suffix] = Executor(g, p, inputs=inputs, library=lib, weights_from=base)
    pf = L.prefetch_plan(g, cfg)
    for k in ("serial", "multi_hand") if extra else ():
        exes[k + "+prefetch"] = Executor(g, plans[k], inputs=inputs, library=libs[""], weights_from=base, prefetch=pf)
    gn = {"+gn_big": 32 << 20, "+gn_on": 0} if extra and fuse == "runtime" else {}
    for k, v in gn.items():   # A/B of the GEMV+add+norm kernel (off by default): large matrices only / always
        exes["multi_hand" + k] = Executor(g, plans["multi_hand"], inputs=inputs, library=libs[""], weights_from=base,
                                          gemv_norm_min=v)
    if extra:
        exes["multi_hand+kvpf"] = Executor(g, plans["multi_hand"], inputs=inputs, library=libs[""], weights_from=base,
                                           prefetch=L.kv_prefetch_plan(g, cfg))
    log(f"  setup {time.perf_counter() - t0:.1f}s; arenas " +
        ", ".join(f"{k}={p.arena_bytes}" for k, p in plans.items()))
    # modes: (label, executor key, eager|graph)
    modes = [("1 stream eager", "serial", "eager")]
    for suffix in libs:
        modes += [(f"{'1 stream' if k == 'serial' else k} graph{suffix}", k + suffix, "graph") for k in plans]
    if extra:
        modes += [("1 stream graph+prefetch", "serial+prefetch", "graph"),
                  ("multi_hand graph+prefetch", "multi_hand+prefetch", "graph"),
                  ("multi_hand eager", "multi_hand", "eager")]
        modes += [(f"multi_hand graph{k}", "multi_hand" + k, "graph") for k in (*gn, "+kvpf")]
    for _, k, m in modes:
        if m == "graph" and not exes[k].captured:
            exes[k].capture()
    # same logits from every executor (bitwise: same kernels, deterministic reductions)
    outs = {}
    for k, ex in exes.items():
        ex.replay(1) if ex.captured else ex.run()
        outs[k] = ex.read("logits")
    same = {k: bool(np.array_equal(o, outs["serial"])) for k, o in outs.items()}
    finite = bool(np.all(np.isfinite(outs["serial"])))
    samples: dict[str, list[float]] = {lab: [] for lab, _, _ in modes}
    for _ in range(rounds):
        for lab, k, m in modes:
            n = eager_steps if m == "eager" else steps
            samples[lab] += exes[k].time_steps(m, steps=n, repeats=1, warmup=1)
    res_modes = {}
    for lab, k, _m in modes:
        ms = statistics.median(samples[lab])
        res_modes[lab] = {
            "ms_per_step": round(ms, 4),
            "ms_spread": [round(min(samples[lab]), 4), round(max(samples[lab]), 4)],
            "tokens_per_s": round(batch / (ms / 1e3), 1),
            "roofline_fraction": round(wbytes / bandwidth / (ms / 1e3), 4),
            "arena_bytes": plans[k.split("+")[0]].arena_bytes,
            "streams": plans[k.split("+")[0]].streams,
            "events": len(plans[k.split("+")[0]].events),
        }
    for ex in reversed(list(exes.values())):
        ex.free()
    out = {
        "config": name, "batch": batch, "fuse": fuse, "fused_groups": base.fused_groups,
        "groups": len(g.groups()), "launches_per_step": sum(len(v) for v in base.node_launches.values()),
        "_logits": outs["serial"],
        "layers": cfg.layers, "hidden": cfg.hidden, "ctx": cfg.ctx,
        "weight_bytes": wbytes, "roofline_ms": round(wbytes / bandwidth * 1e3, 4),
        "arena_serial_bytes": plans["serial"].arena_bytes,
        "arena_ratio_vs_serial": {k: round(p.arena_bytes / plans["serial"].arena_bytes, 4) for k, p in plans.items()},
        "same_logits_as_serial": same, "logits_finite": finite,
        "modes": res_modes,
    }
    out["multi_vs_single_graph_speedup"] = {}
    for suffix in (*libs, "+prefetch") if extra else libs:
        g1 = res_modes[f"1 stream graph{suffix}"]["ms_per_step"]
        for lab, v in res_modes.items():
            if lab.startswith("multi") and lab.endswith(f"graph{suffix}"):
                out["multi_vs_single_graph_speedup"][lab] = round(g1 / v["ms_per_step"], 4)
    if torch_peer:
        out["torch"] = run_torch_peer(name, batch, steps=steps, rounds=rounds, log=log)
        if "graph" in out["torch"]:
            tg = out["torch"]["graph"]["ms_per_step"]
            out["torch"]["graph"]["roofline_fraction"] = round(wbytes / bandwidth / (tg / 1e3), 4)
            out["torch"]["eager"]["roofline_fraction"] = round(
                wbytes / bandwidth / (out["torch"]["eager"]["ms_per_step"] / 1e3), 4)
    return out


def run_torch_peer(name: str, batch: int, *, steps: int, rounds: int, log=print) -> dict:
    cmd = [sys.executable, "-m", "runtime.torch_peer", "--config", name, "--batch", str(batch),
           "--steps", str(steps), "--rounds", str(rounds)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    if p.returncode != 0:
        log(f"  torch peer failed: {p.stderr[-2000:]}")
        return {"error": p.stderr[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    """Markdown rows; "vs 1-stream graph" is relative to the first result's (fusion mode's) 1-stream graph
    of the same config and batch."""
    rows = ["| config | batch | fuse | mode | ms/step | tokens/s | HBM roofline | arena bytes | vs 1-stream graph |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    first: dict = {}
    for r in results:
        g1 = first.setdefault((r["config"], r["batch"]), r["modes"]["1 stream graph"]["ms_per_step"])
        fz = r.get("fuse", "norms")
        for lab, v in r["modes"].items():
            rows.append(f"| {r['config']} | {r['batch']} | {fz} | {lab} | {v['ms_per_step']:.3f} | "
                        f"{v['tokens_per_s']:.0f} | {v['roofline_fraction']:.1%} | {v['arena_bytes']} | "
                        f"{g1 / v['ms_per_step']:.3f}x |")
        t = r.get("torch", {})
        for lab in ("eager", "graph"):
            if lab in t:
                v = t[lab]
                rows.append(f"| {r['config']} | {r['batch']} | - | PyTorch {lab} | {v['ms_per_step']:.3f} | "
                            f"{v['tokens_per_s']:.0f} | {v.get('roofline_fraction', 0):.1%} | "
                            f"peak act. {t.get('peak_activation_bytes', '?')} | {g1 / v['ms_per_step']:.3f}x |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="1b,8b")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--steps", type=int, default=50, help="graph replays per timed batch")
    ap.add_argument("--eager-steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median over them)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--pdl", action="store_true",
                    help="also time programmatic-dependent-launch graphs (an experiment: not shown race-free)")
    ap.add_argument("--fuse", default="norms,runtime",
                    help="fusion modes of the graph to time, in order (runtime.models.llama.FUSE_MODES)")
    ap.add_argument("--no-extra", action="store_true", help="skip the prefetch and multi-stream eager modes")
    ap.add_argument("--out", default="runtime_bench.json")
    args = ap.parse_args(argv)
    from .kernels import KernelLibrary

    t0 = time.perf_counter()
    lib = KernelLibrary()
    libs = {"": lib, "+pdl": lib.with_pdl(True)} if args.pdl else {"": lib}
    import pycuda.driver as cuda

    dev = cuda.Context.get_device()
    print(f"device {dev.name()}; kernels compiled for {lib.arch} in {time.perf_counter() - t0:.1f}s", flush=True)
    bw = measure_bandwidth()
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s (read+write)", flush=True)
    results = []
    for name in args.configs.split(","):
        for b in (int(x) for x in args.batches.split(",")):
            for i, fz in enumerate(args.fuse.split(",")):
                print(f"{name} batch {b} fuse {fz}", flush=True)
                r = bench_config(libs, name, b, steps=args.steps, rounds=args.rounds, eager_steps=args.eager_steps,
                                 bandwidth=bw, torch_peer=not args.no_torch and i == 0, fuse=fz,
                                 extra=not args.no_extra)
                logits = r.pop("_logits")
                if i == 0:
                    first_logits = logits
                else:   # same weights (seeded by tensor index, which the fusion modes share for weights)
                    r["logits_rel_diff_vs_" + args.fuse.split(",")[0]] = L.rel_err(logits, first_logits)
                results.append(r)
                print(json.dumps({k: r[k] for k in ("multi_vs_single_graph_speedup", "same_logits_as_serial",
                                                    "fused_groups", "launches_per_step")}), flush=True)
                print(json.dumps({lab: v["ms_per_step"] for lab, v in r["modes"].items()}), flush=True)
            with open(args.out, "w") as f:
                json.dump({"device": dev.name(), "bandwidth_bytes_per_s": bw, "results": results}, f, indent=1)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
