"""``python -m runtime.bench``: what running memplan plans on several streams buys on a real GPU.

For each Llama config and batch: decode step time and tokens/s for the same runtime and kernels as
(1) one stream, eager; (2) one stream, CUDA graph; (3) memplan multi-stream plans, CUDA graph (the
hand-made Q/K/V + gate/up streams, and ``memplan.graph_optimize``'s schedule where it exists); then the
same model in PyTorch (``runtime.torch_peer``, in a subprocess): eager, eager in a ``torch.cuda`` graph,
and ``torch.compile``d layers in a graph, because a multi-stream win only counts against the best
baseline a PyTorch user has, not against eager. Also: arena bytes of each plan vs the serial plan and vs
PyTorch's peak allocated activation memory, and the fraction of the HBM roofline each step reaches.

The roofline is weight bytes per step over the device's *read* bandwidth: a decode step streams its
weights and writes almost nothing, so a copy (read + write) understates what a step can reach. It is the
better of two measured reads of 4 GiB, the kernel library's ``l2_prefetch`` and PyTorch's reduction, so
neither side's read kernel alone defines 100%. The copy bandwidth is still reported, as an extra.

Modes are timed in interleaved rounds (CUDA events, medians), so clock drift hits all of them alike;
a timed batch is cut below ``--steps`` replays when the step is slow (``--timed-ms``), so large batches
cost no more wall time than small ones. ``summary`` condenses each config and batch into one row.
This is a benchmark, not a test: it asserts nothing except that every mode computes the same logits.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time

import numpy as np

from memplan.files import atomic_write_text

from .bits import same_bits
from .cuda_util import event_seconds, need_pycuda
from .kernels.ops import PDL_OFF_ROWS
from .models import llama as L
from .step import plan_step
from .tool_args import ToolParser, count_arg, results_json
from .torch_peer import READ_BYTES  # the same 4 GiB (far beyond L2) that PyTorch's read is timed on

#: bytes the copy bandwidth copies
COPY_BYTES = 2 << 30


def measure_read_bandwidth(lib, nbytes: int = READ_BYTES, reps: int = 10, block: int = 512) -> dict:
    """The kernel library's ``l2_prefetch`` (16-byte ``__ldcg`` loads, 4 in flight, grid-stride over
    4 blocks per SM) reading ``nbytes`` of random f16: ``{"bytes_per_s", "grid", "block"}``, bytes/s the
    median of ``reps`` timed launches (CUDA events) after two warm-up ones."""
    import pycuda.driver as cuda

    from .kernels import Launch

    buf = cuda.mem_alloc(nbytes)
    s = cuda.Stream()
    try:
        n = nbytes // 2   # random halves, not zeros: a read of constant data could be cheaper than a real one
        lib.launch(Launch("fill_uniform_f16", (min(max(1, n // 256), 65535), 1, 1), (256, 1, 1),
                          (int(buf), n, 12345, 1.0)), s, pdl=False)
        grid = 4 * lib.num_sms
        ln = Launch("l2_prefetch", (grid, 1, 1), (block, 1, 1), (int(buf), nbytes // 16, 0))
        for _ in range(2):
            lib.launch(ln, s, pdl=False)
        s.synchronize()
        times = event_seconds(s, lambda: lib.launch(ln, s, pdl=False), reps)
    finally:
        s.synchronize()
        buf.free()
    return {"bytes_per_s": nbytes / statistics.median(times), "grid": grid, "block": block}


def measure_copy_bandwidth(nbytes: int = COPY_BYTES, reps: int = 10) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (median):
    reported beside the read bandwidth, not used for the roofline."""
    import pycuda.driver as cuda

    a, b = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
    cuda.memset_d8(a, 1, nbytes)
    s = cuda.Stream()
    cuda.memcpy_dtod_async(b, a, nbytes, s)
    s.synchronize()
    times = event_seconds(s, lambda: cuda.memcpy_dtod_async(b, a, nbytes, s), reps)
    a.free()
    b.free()
    return 2 * nbytes / statistics.median(times)


def _peer(cmd: list[str], timeout: float, what: str, log=print) -> dict:
    """Run the PyTorch peer (``runtime.torch_peer``) and read the JSON object on its last line of output, or
    ``{"error": ...}`` saying why not (logged): it timed out, failed, or printed no such line. A timeout or an
    unreadable line was a traceback that ended the benchmark after its kernels compiled (the read bandwidth's)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        log(f"  {what} timed out after {exc.timeout}s")
        return {"error": f"timed out after {exc.timeout}s"}
    if p.returncode != 0:
        log(f"  {what} failed: {p.stderr[-2000:]}")
        return {"error": p.stderr[-2000:]}
    lines = p.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else None
    except ValueError:
        out = None
    if not isinstance(out, dict):
        log(f"  {what} printed no JSON object last: {p.stdout[-500:]!r}")
        return {"error": f"no JSON object on the last line of its output: {p.stdout[-500:]!r}"}
    return out


def torch_read_bandwidth(log=print) -> float | None:
    """PyTorch's read of 4 GiB in bytes/s (``runtime.torch_peer --read-bandwidth-only``), None if it fails."""
    out = _peer([sys.executable, "-m", "runtime.torch_peer", "--read-bandwidth-only"], 300, "torch read bandwidth", log)
    bw = out.get("read_bandwidth_bytes_per_s")
    if isinstance(bw, (int, float)) and not isinstance(bw, bool) and bw > 0:
        return float(bw)
    if "error" not in out:
        log(f"  torch read bandwidth: no positive read_bandwidth_bytes_per_s in {out!r}")
    return None


def bench_config(libs: dict, name: str, batch: int, *, steps: int, rounds: int, eager_steps: int, bandwidth: float,
                 torch_peer: bool, log=print, fuse: str = L.DEFAULT_FUSE, extra: bool = True,
                 torch_compile: bool = True, timed_ms: float = 250.0) -> dict:
    """``bandwidth``: the roofline's read bandwidth (bytes/s); ``fuse``: the graph's fusion groups
    (``runtime.models.llama.FUSE_MODES``); ``extra=False`` skips the prefetch and multi-stream eager
    modes; ``torch_compile=False`` skips the peer's torch.compile mode. A timed batch is ``steps`` graph
    replays (``eager_steps`` eager steps), fewer where the 1-stream graph step says it would take more
    than ``timed_ms`` (but at least 5 and 2)."""
    from .executor import Executor

    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, fuse)
    wbytes = L.weight_bytes(g)
    plans = {"serial": plan_step(g, batch=batch)}
    plans["multi_hand"] = plan_step(g, L.multi_stream_schedule(g, "hand"), batch=batch)
    plans["multi_opt"] = plan_step(g, L.multi_stream_schedule(g, "optimize", max_streams=3), batch=batch)
    inputs = L.make_inputs(cfg, seed=1)
    t0 = time.perf_counter()
    # the reference every mode's logits are compared with: the serial plan, plain launches (no PDL)
    ref_lib = next((lib for lib in libs.values() if not lib.pdl), None) or libs[""].with_pdl(False)
    ref = Executor(g, plans["serial"], inputs=inputs, random_weights_seed=1, library=ref_lib)
    exes = {"serial_plain": ref}
    for suffix, lib in libs.items():
        for k, p in plans.items():
            exes[k + suffix] = Executor(g, p, inputs=inputs, library=lib, weights_from=ref)
    base = exes["serial"]
    pf = L.prefetch_plan(g, cfg)
    for k in ("serial", "multi_hand") if extra else ():
        exes[k + "+prefetch"] = Executor(g, plans[k], inputs=inputs, library=libs[""], weights_from=ref, prefetch=pf)
    gn = {"+gn_big": 32 << 20, "+gn_on": 0} if extra and fuse == "runtime" else {}
    for k, v in gn.items():   # A/B of the GEMV+add+norm kernel (off by default): large matrices only / always
        exes["multi_hand" + k] = Executor(g, plans["multi_hand"], inputs=inputs, library=libs[""], weights_from=ref,
                                          gemv_norm_min=v)
    if extra:
        exes["multi_hand+kvpf"] = Executor(g, plans["multi_hand"], inputs=inputs, library=libs[""], weights_from=ref,
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
    same = {k: same_bits(o, outs["serial_plain"]) for k, o in outs.items()}
    finite = bool(np.all(np.isfinite(outs["serial_plain"])))
    est = statistics.median(exes["serial"].time_steps("graph", steps=2, repeats=3, warmup=1))
    cap = max(1, math.ceil(timed_ms / max(est, 1e-3)))
    n_steps = {"graph": min(steps, max(5, cap)), "eager": min(eager_steps, max(2, cap))}
    samples: dict[str, list[float]] = {lab: [] for lab, _, _ in modes}
    for _ in range(rounds):
        for lab, k, m in modes:
            samples[lab] += exes[k].time_steps(m, steps=n_steps[m], repeats=1, warmup=1)
    res_modes = {}
    for lab, k, _m in modes:
        ms = statistics.median(samples[lab])
        res_modes[lab] = {
            "ms_per_step": round(ms, 4),
            "ms_spread": [round(min(samples[lab]), 4), round(max(samples[lab]), 4)],
            "tokens_per_s": round(batch / (ms / 1e3), 1),
            "roofline_fraction": round(wbytes / bandwidth / (ms / 1e3), 6),   # (6: the summary rounds again)
            "arena_bytes": plans[k.split("+")[0]].arena_bytes,
            "streams": plans[k.split("+")[0]].streams,
            "events": len(plans[k.split("+")[0]].events),
        }
    for ex in reversed(list(exes.values())):
        ex.free()
    out = {
        "config": name, "batch": batch, "fuse": fuse, "fused_groups": base.fused_groups,
        "groups": len(g.groups()), "launches_per_step": sum(len(v) for v in base.node_launches.values()),
        "_logits": outs["serial_plain"],
        "layers": cfg.layers, "hidden": cfg.hidden, "ctx": cfg.ctx,
        "weight_bytes": wbytes, "roofline_ms": round(wbytes / bandwidth * 1e3, 4),
        "arena_serial_bytes": plans["serial"].arena_bytes,
        "arena_ratio_vs_serial": {k: round(p.arena_bytes / plans["serial"].arena_bytes, 4) for k, p in plans.items()},
        "same_logits_as_serial": same, "logits_finite": finite, "timed_steps": n_steps,
        "modes": res_modes,
    }
    out["multi_vs_single_graph_speedup"] = {}
    for suffix in (*libs, "+prefetch") if extra else libs:
        g1 = res_modes[f"1 stream graph{suffix}"]["ms_per_step"]
        for lab, v in res_modes.items():
            if lab.startswith("multi") and lab.endswith(f"graph{suffix}"):
                out["multi_vs_single_graph_speedup"][lab] = round(g1 / v["ms_per_step"], 4)
    if torch_peer:
        out["torch"] = t = run_torch_peer(name, batch, steps=steps, rounds=rounds, log=log, compile=torch_compile)
        for lab in TORCH_MODES:
            if "ms_per_step" in t.get(lab, {}):
                t[lab]["roofline_fraction"] = round(wbytes / bandwidth / (t[lab]["ms_per_step"] / 1e3), 6)
        if "error" in t.get("compile", {}):
            log(f"  torch.compile failed: {t['compile']['error'][-500:]}")
        elif t.get("compile_close_to_eager") is False:
            log(f"  torch.compile step differs from eager: rel err {t['compile_rel_err_vs_eager']:.3g}")
    return out


#: the peer's modes (``runtime.torch_peer``) and their labels in ``table``
TORCH_MODES = {"eager": "PyTorch eager", "graph": "PyTorch graph", "compile": "PyTorch compile graph"}


def run_torch_peer(name: str, batch: int, *, steps: int, rounds: int, log=print, compile: bool = True) -> dict:
    cmd = [sys.executable, "-m", "runtime.torch_peer", "--config", name, "--batch", str(batch),
           "--steps", str(steps), "--rounds", str(rounds), *(() if compile else ("--no-compile",))]
    return _peer(cmd, 500, "torch peer", log)


def _ms(mode) -> float | None:
    """A mode's ms/step, None where it is missing or failed (``{"error": ...}``)."""
    return mode.get("ms_per_step") if isinstance(mode, dict) else None


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
        for key, lab in TORCH_MODES.items():
            v = t.get(key)
            if _ms(v) is not None:
                rows.append(f"| {r['config']} | {r['batch']} | - | {lab} | {v['ms_per_step']:.3f} | "
                            f"{v['tokens_per_s']:.0f} | {v.get('roofline_fraction', 0):.1%} | "
                            f"peak act. {t.get('peak_activation_bytes', '?')} | {g1 / v['ms_per_step']:.3f}x |")
            elif isinstance(v, dict) and "error" in v:
                rows.append(f"| {r['config']} | {r['batch']} | - | {lab} | failed | - | - | - | - |")
    return "\n".join(rows)


SUMMARY_COLUMNS = ("config", "batch", "1 stream graph ms", "best multi-stream graph ms", "multi-stream speedup",
                   "roofline fraction (multi)", "step vs batch-1 step", "PyTorch eager graph ms",
                   "torch.compile graph ms", "memplan multi vs torch.compile")


def summary_rows(results: list[dict]) -> list[dict]:
    """One dict per (config, batch), keys ``SUMMARY_COLUMNS``, from the first result of each (the fusion
    mode listed first, the one the PyTorch peer ran beside). "best multi-stream graph" is the fastest mode
    whose label starts with "multi" and ends with "graph" (no prefetch or PDL variant); "multi-stream
    speedup" is the 1-stream graph's ms over it (above 1: multi-stream is faster); "step vs batch-1 step" its ms
    over the same config's at batch 1; "memplan multi vs torch.compile" torch.compile's ms over ours
    (above 1: ours is faster). Missing numbers are None; a failed torch.compile is "error"."""
    first: dict = {}
    for r in results:
        first.setdefault((r["config"], r["batch"]), r)
    best = {}
    for key, r in first.items():
        multi = {lab: v for lab, v in r["modes"].items() if lab.startswith("multi") and lab.endswith("graph")}
        best[key] = min(multi.items(), key=lambda kv: kv[1]["ms_per_step"]) if multi else None
    rows = []
    for (name, batch), r in first.items():
        g1 = r["modes"]["1 stream graph"]["ms_per_step"]
        b = best[(name, batch)]
        m = b[1]["ms_per_step"] if b else None
        b1 = best.get((name, 1))
        t = r.get("torch", {})
        tg, tc = _ms(t.get("graph")), _ms(t.get("compile"))
        compile_failed = isinstance(t.get("compile"), dict) and "error" in t["compile"]
        rows.append({
            "config": name, "batch": batch, "1 stream graph ms": g1, "best multi-stream graph ms": m,
            "best multi-stream mode": b[0] if b else None,
            "multi-stream speedup": g1 / m if m else None,
            "roofline fraction (multi)": b[1]["roofline_fraction"] if b else None,
            "step vs batch-1 step": m / b1[1]["ms_per_step"] if m and b1 else None,
            "PyTorch eager graph ms": tg,
            "torch.compile graph ms": "error" if compile_failed else tc,
            "memplan multi vs torch.compile": tc / m if m and tc else None,
        })
    return rows


# Issue 14's goals, per config the issue names: batch-1 roofline fraction and multi-stream speedup at batch
# 1; for every config, the step at batch 16 / 64 against its batch-1 step, and torch.compile at every batch.
GOAL_ROOFLINE_B1 = {"8b": 0.85, "1b": 0.70}
GOAL_MULTI_B1 = {"8b": 1.05, "1b": 1.10}
GOAL_STEP_RATIO = {16: 1.15, 64: 1.5}


def goals(results: list[dict], bandwidth: float | None = None, torch_bandwidth: float | None = None) -> list[dict]:
    """The issue's goals checked against one run: one dict per goal and config with ``goal``, ``config``,
    ``value``, ``target`` and ``met`` (None where the run lacks what the goal needs: a batch, a peer).
    The roofline goal is read twice where PyTorch's read was measured: at the run's roofline (the faster
    of the two 4 GiB reads, ``bandwidth``) and at PyTorch's read (``torch_bandwidth``), the issue's own
    definition ("a PyTorch read of 4 GiB runs at 4.2 TB/s").
    Why in the benchmark: a standing read off by hand drifts from the numbers it cites; this is computed
    from the same results as the summary, so the JSON carries its own verdict."""
    rows = {(r["config"], r["batch"]): r for r in summary_rows(results)}
    first: dict = {}
    for r in results:
        first.setdefault((r["config"], r["batch"]), r)
    out = []

    def add(goal: str, config: str, value, target: float, met) -> None:
        out.append({"goal": goal, "config": config, "value": value, "target": target, "met": met})

    for name in dict.fromkeys(c for c, _ in rows):
        b1 = rows.get((name, 1))
        if name in GOAL_ROOFLINE_B1:
            v = b1 and b1["roofline fraction (multi)"]
            add("batch-1 roofline fraction (multi-stream) >=", name, v, GOAL_ROOFLINE_B1[name],
                None if v is None else v >= GOAL_ROOFLINE_B1[name])
            if bandwidth and torch_bandwidth and torch_bandwidth != bandwidth:
                vt = v and v * bandwidth / torch_bandwidth   # a slower read: a longer roofline step
                add("batch-1 roofline fraction at PyTorch's read >=", name, vt, GOAL_ROOFLINE_B1[name],
                    None if vt is None else vt >= GOAL_ROOFLINE_B1[name])
        if name in GOAL_MULTI_B1:
            v = b1 and b1["multi-stream speedup"]
            r1 = first.get((name, 1))
            arena_same = None
            if r1 is not None and b1["best multi-stream mode"]:
                arena_same = (r1["modes"][b1["best multi-stream mode"]]["arena_bytes"]
                              == r1["modes"]["1 stream graph"]["arena_bytes"])
            add("batch-1 multi-stream over one stream >= (arena unchanged)", name, v, GOAL_MULTI_B1[name],
                None if v is None or arena_same is None else v >= GOAL_MULTI_B1[name] and arena_same)
        for batch, target in GOAL_STEP_RATIO.items():
            row = rows.get((name, batch))
            v = row and row["step vs batch-1 step"]
            if row is not None:
                add(f"batch-{batch} step over the batch-1 step <=", name, v, target,
                    None if v is None else v <= target)
        vs = [(b, row["memplan multi vs torch.compile"]) for (c, b), row in sorted(rows.items()) if c == name]
        known = [v for _, v in vs if v is not None]
        if known:
            add("faster than torch.compile in a CUDA graph at every batch (worst ratio) >", name, min(known), 1.0,
                min(known) > 1.0 if len(known) == len(vs) else None)
    return out


def goals_markdown(rows: list[dict]) -> str:
    """``goals`` as a markdown table: the value beside its target, met as yes / no / "-" (not measured)."""
    lines = ["| goal | config | value | target | met |", "| --- | --- | --- | --- | --- |"]
    for g in rows:
        pct = "roofline" in g["goal"]
        val = "-" if g["value"] is None else (f"{g['value']:.1%}" if pct else f"{g['value']:.3f}x")
        tgt = f"{g['target']:.0%}" if pct else f"{g['target']:.2f}x"
        met = "-" if g["met"] is None else ("yes" if g["met"] else "no")
        lines.append(f"| {g['goal']} | {g['config']} | {val} | {tgt} | {met} |")
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """``summary_rows`` as a markdown table (ms to 3 decimals, ratios as "1.234x", the roofline as %)."""
    def cell(col: str, v) -> str:
        if v is None:
            return "-"
        if isinstance(v, str) or col in ("config", "batch"):
            return str(v)
        if col.endswith(" ms"):
            return f"{v:.3f}"
        if col.startswith("roofline"):
            return f"{v:.1%}"
        return f"{v:.3f}x"

    rows = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + " --- |" * len(SUMMARY_COLUMNS)]
    for row in summary_rows(results):
        rows.append("| " + " | ".join(cell(c, row[c]) for c in SUMMARY_COLUMNS) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="1b,8b", help="comma-separated Llama configs (default 1b,8b)")
    ap.add_argument("--batches", default="1,4,16,64", help="comma-separated rows per step (default 1,4,16,64)")
    ap.add_argument("--steps", type=count_arg, default=50, help="graph replays per timed batch (at most)")
    ap.add_argument("--eager-steps", type=count_arg, default=5, help="eager steps per timed batch (at most)")
    ap.add_argument("--timed-ms", default="250",
                    help="fewer steps per timed batch where the 1-stream graph step says it would exceed this")
    ap.add_argument("--rounds", type=count_arg, default=5, help="interleaved timing rounds (median over them)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer and its read bandwidth")
    ap.add_argument("--no-torch-compile", action="store_true", help="skip the PyTorch torch.compile + graph mode")
    ap.add_argument("--no-pdl", action="store_true",
                    help="launch every kernel plainly (default: programmatic dependent launch where the executor's "
                         "'auto' policy takes it: every batch but runtime.kernels.ops.PDL_OFF_ROWS, those too where the "
                         "products read f16 activations, as the 17-64 token graphs do)")
    ap.add_argument("--pdl-ab", action="store_true",
                    help="also time every graph with plain launches (modes suffixed '+nopdl'), side by side")
    ap.add_argument("--fuse", default="runtime",
                    help="fusion modes of the graph to time, in order (runtime.models.llama.FUSE_MODES, e.g. "
                         "norms,runtime); the first is the one the PyTorch peer and the summary go with")
    ap.add_argument("--no-extra", action="store_true", help="skip the prefetch and multi-stream eager modes")
    ap.add_argument("--out", default="runtime_bench.json", help="results as JSON (default runtime_bench.json)")
    args = ap.parse_args(argv)
    from .tool_args import (
        ToolArgError,
        config_list,
        fuse_list,
        int_list,
        llama_graphs,
        out_path,
        repeats,
        tool_error,
    )
    from .tool_args import real as real_option

    try:
        fuses, configs, batches = fuse_list(args.fuse), config_list(args.configs), int_list(args.batches, "--batches")
        for v, opt in ((args.steps, "--steps"), (args.eager_steps, "--eager-steps"), (args.rounds, "--rounds")):
            repeats(v, opt)
        if args.pdl_ab and args.no_pdl:   # (the A/B was dropped silently: no '+nopdl' mode, nothing said)
            raise ToolArgError("--pdl-ab with --no-pdl: there are no PDL graphs to compare plain launches with")
        args.timed_ms = real_option(args.timed_ms, "--timed-ms")
        if not args.timed_ms > 0:
            raise ToolArgError(f"--timed-ms {args.timed_ms}: expected a positive number of milliseconds")
        llama_graphs(configs, batches, fuses)
        out_path(args.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("runtime.bench", exc)
    from .kernels import KernelLibrary
    from .kernels.library import pdl_supported

    t0 = time.perf_counter()
    lib = KernelLibrary(pdl=not args.no_pdl and pdl_supported())
    libs = {"": lib, "+nopdl": lib.with_pdl(False)} if args.pdl_ab and lib.pdl else {"": lib}
    import pycuda.driver as cuda

    dev = cuda.Context.get_device()
    print(f"device {dev.name()}; kernels compiled for {lib.arch} in {time.perf_counter() - t0:.1f}s", flush=True)
    rd = measure_read_bandwidth(lib, READ_BYTES)
    copy_bw = measure_copy_bandwidth(COPY_BYTES)
    torch_rd = None if args.no_torch else torch_read_bandwidth()
    bw = max(rd["bytes_per_s"], torch_rd or 0.0)
    print(f"read bandwidth ({READ_BYTES / 2**30:g} GiB): l2_prefetch {rd['bytes_per_s'] / 1e12:.3f} TB/s, PyTorch "
          f"{'-' if torch_rd is None else f'{torch_rd / 1e12:.3f}'} TB/s; roofline {bw / 1e12:.3f} TB/s; "
          f"copy {copy_bw / 1e12:.3f} TB/s (read+write)", flush=True)
    # bandwidth_bytes_per_s: the roofline's, as before (it was the copy bandwidth until the roofline became a read)
    head = {"device": dev.name(), "bandwidth_bytes_per_s": bw, "roofline_bandwidth_bytes_per_s": bw,
            "read_bandwidth_bytes_per_s": rd["bytes_per_s"], "torch_read_bandwidth_bytes_per_s": torch_rd,
            "read_bandwidth_kernel": f"l2_prefetch grid {rd['grid']} x block {rd['block']}",
            "read_bytes": READ_BYTES, "copy_bandwidth_bytes_per_s": copy_bw,
            "pdl": (f"auto (off at {PDL_OFF_ROWS.start}-{PDL_OFF_ROWS.stop - 1} rows unless the products read f16 x)"
                    if lib.pdl else "off")}
    results = []
    for name in configs:
        for b in batches:
            for i, fz in enumerate(fuses):
                print(f"{name} batch {b} fuse {fz}", flush=True)
                r = bench_config(libs, name, b, steps=args.steps, rounds=args.rounds, eager_steps=args.eager_steps,
                                 bandwidth=bw, torch_peer=not args.no_torch and i == 0, fuse=fz,
                                 extra=not args.no_extra, torch_compile=not args.no_torch_compile,
                                 timed_ms=args.timed_ms)
                logits = r.pop("_logits")
                if i == 0:
                    first_logits = logits
                else:   # same weights (seeded by tensor index, which the fusion modes share for weights)
                    r["logits_rel_diff_vs_" + fuses[0]] = L.rel_err(logits, first_logits)
                results.append(r)
                print(results_json({k: r[k] for k in ("multi_vs_single_graph_speedup", "same_logits_as_serial",
                                                    "fused_groups", "launches_per_step")}), flush=True)
                print(results_json({lab: v["ms_per_step"] for lab, v in r["modes"].items()}), flush=True)
            atomic_write_text(args.out, results_json({**head, "results": results}, indent=1))   # partial results
    print(table(results))
    md, gl = summary(results), goals(results, bw, torch_rd)
    print()
    print(md)
    print()
    print(goals_markdown(gl))
    atomic_write_text(args.out, results_json({**head, "results": results, "summary_markdown": md, "goals": gl},
                                           indent=1))
    print(f"total {time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    from .tool_args import run_main

    raise SystemExit(run_main(main, "runtime.bench"))
