"""``python -m runtime.aten.profile_gap MODEL``: where memplan's 1-stream step spends GPU time that torch's
own run of the same exported program does not.

Both run eagerly (no CUDA graph, so the profiler sees kernel names) under ``torch.profiler``; the table
lists CUDA kernel time per kernel name, torch vs memplan, largest differences first, and the totals. A
gap that is not in kernel time is launch or dependency gaps inside the captured graph.
"""

from __future__ import annotations

import collections


def kernel_us(torch, fn, iters: int) -> dict[str, float]:
    """Microseconds of CUDA kernel time per call, by kernel name."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    out: dict[str, float] = collections.defaultdict(float)
    for e in prof.key_averages():
        if getattr(getattr(e, "device_type", None), "name", "") != "CUDA":
            continue  # CPU-side op events: their device time is their kernels', counted below
        us = getattr(e, "self_device_time_total", None)
        if us is None:
            us = getattr(e, "self_cuda_time_total", 0.0)
        out[e.key[:90]] += us / iters
    return dict(out)


def main(argv=None) -> int:
    from ..tool_args import MAX_REPEATS, ToolArgError, ToolParser, count_in, need_torch_cuda, one_name, tool_error
    from .bench_models import CNNS, LLM_SIZES

    models = (*CNNS, *LLM_SIZES)
    ap = ToolParser(prog="python -m runtime.aten.profile_gap")
    ap.add_argument("model", nargs="?", default="inception_v3-b1", help=f"one of {', '.join(models)}")
    ap.add_argument("--iters", type=count_in(1, MAX_REPEATS), default=20, help="profiled calls of each run (default 20)")
    ap.add_argument("--top", type=count_in(1), default=25, help="kernel names listed")
    a = ap.parse_args(argv)
    try:   # an unknown model, --iters 0 (a division by zero) or no GPU were tracebacks, after the imports
        one_name(a.model, "model", models, what="model")
        need_torch_cuda()
    except ToolArgError as exc:
        return tool_error("runtime.aten.profile_gap", exc)
    import torch

    from . import compile as aten_compile
    from .bench_models import build
    from .program import load_program

    bm = build(a.model, "cuda", torch.bfloat16, False)
    program = load_program(bm.module, bm.args, bm.kwargs, exported=bm.exported)
    exported = program.exported.module()
    step = aten_compile(bm.module, bm.args, kwargs=bm.kwargs, streams=1, cuda_graph=False, program=program)

    def torch_run():
        with torch.no_grad():
            exported(*bm.args, **bm.kwargs)

    def memplan_run():
        step(*bm.args, **bm.kwargs)

    t, m = kernel_us(torch, torch_run, a.iters), kernel_us(torch, memplan_run, a.iters)
    keys = sorted(set(t) | set(m), key=lambda k: -abs(m.get(k, 0.0) - t.get(k, 0.0)))
    print(f"{'kernel':<90} {'torch us':>9} {'memplan us':>10} {'diff':>8}")
    for k in keys[:a.top]:
        print(f"{k:<90} {t.get(k, 0.0):>9.1f} {m.get(k, 0.0):>10.1f} {m.get(k, 0.0) - t.get(k, 0.0):>8.1f}")
    print(f"{'TOTAL kernel time per call':<90} {sum(t.values()):>9.1f} {sum(m.values()):>10.1f} "
          f"{sum(m.values()) - sum(t.values()):>8.1f}")
    print(f"launches per call: {step.stats}")
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.profile_gap"))
