"""``python -m runtime.tools.profile``: where a step's time goes, kernel by kernel (a tuning aid, not a test).

Each distinct launch of a config's step (same kernel, grid, block and scalar arguments) is captured
50 times back to back in a CUDA graph on one stream and timed by replay, so the number is the kernel's
time plus the in-graph launch gap — what it costs inside the step's graph. Weighted by how often the
step launches it, the sum is compared with the measured single-stream graph step; GEMVs also report
their achieved bandwidth.
"""

from __future__ import annotations

import statistics

from memplan.files import atomic_write_text

from ..cuda_util import graph_us, need_pycuda
from ..models import llama as L
from ..step import plan_step
from ..tool_args import ToolParser, count_arg, results_json


def _key(ln):
    return (ln.kernel, ln.grid, ln.block, tuple(a for a in ln.args if not (isinstance(a, int) and a > 1 << 32)))


def profile(lib, name: str, batch: int, reps: int = 50, kernels: dict | None = None,
            fuse: str = L.DEFAULT_FUSE) -> dict:
    from ..executor import Executor

    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, fuse)
    ex = Executor(g, plan_step(g, batch=cfg.batch), inputs=L.make_inputs(cfg), random_weights_seed=1, library=lib)
    step = statistics.median(ex.time_steps("graph", steps=20, repeats=5))
    groups: dict = {}
    for nid, _ in ex.plan.order:
        for ln in ex.node_launches[nid]:
            k = _key(ln)
            groups.setdefault(k, [ln, 0, nid])[1] += 1
    s = ex.streams[0]
    rows = []
    for _k, (ln, count, nid) in groups.items():
        variants = [ln] + [v(ln) for v in (kernels or {}).get(ln.kernel, [])]
        for var in variants:
            if var is None:
                continue
            ex.synchronize()
            us = statistics.median(graph_us(s, lambda var=var: lib.launch(var, s), reps=reps, trials=5))
            row = {"kernel": var.kernel + ("" if var is ln else "_v"), "args": [a for a in var.args if a < 1 << 32],
                   "example_node": nid, "count": count, "us": round(us, 3),
                   "total_us": round(us * count, 1), "grid": var.grid, "block": var.block}
            n = _weight_bytes(g, ex.addr_of, var) if var.kernel.startswith(("gemv", "gemm")) else 0
            if n:
                row["GBps"] = round(n / us / 1e3, 1)
            rows.append(row)
    ex.free()
    rows.sort(key=lambda r: -r["total_us"])
    base_total = sum(r["total_us"] for r in rows if r["kernel"] == _base_kernel(r))
    return {"config": name, "batch": batch, "step_ms_graph_1stream": round(step, 4),
            "sum_of_kernels_ms": round(base_total / 1e3, 4), "rows": rows}


def _weight_bytes(graph, addr_of, launch) -> int:
    """Bytes of the weight matrices a launch streams: the weights whose device address is one of its
    arguments. Why not the node's first input: a fused group's launches hang on its last node (a MUL or
    an add+norm), whose first input is an activation (the 1B gate/up pass read as 26 GB/s)."""
    at = {addr_of[t.id]: t.size for t in graph.tensors if t.kind == "weight" and t.id in addr_of}
    return sum(at.get(a, 0) for a in {a for a in launch.args if isinstance(a, int)})


def _base_kernel(r) -> str | None:
    return r["kernel"] if not r["kernel"].endswith("_v") else None


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.profile")
    ap.add_argument("--configs", default="8b", help="comma-separated Llama configs (default 8b)")
    ap.add_argument("--batch", type=count_arg, default=1, help="rows per step (default 1)")
    ap.add_argument("--fuse", default=L.DEFAULT_FUSE, choices=L.FUSE_MODES, help=f"fusion mode (default {L.DEFAULT_FUSE})")
    ap.add_argument("--out", default="runtime_profile.json", help="results as JSON (default runtime_profile.json)")
    a = ap.parse_args(argv)
    from ..tool_args import ToolArgError, at_least, config_list, llama_graphs, out_path, tool_error

    try:
        configs = config_list(a.configs)
        at_least(a.batch, "--batch", 1)
        llama_graphs(configs, [a.batch], [a.fuse])
        out_path(a.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("profile", exc)
    from ..kernels import KernelLibrary

    lib = KernelLibrary()
    from ..kernels import Launch

    def gemv_rpb(r):
        def f(ln):
            W, x, y, N, K, _ = ln.args
            return Launch(ln.kernel, (-(-N // r), 1, 1), ln.block, (W, x, y, N, K, r))
        return f

    variants = {"gemv_f16_f32": [gemv_rpb(1), gemv_rpb(2), gemv_rpb(8)]}
    res = [profile(lib, c, a.batch, kernels=variants, fuse=a.fuse) for c in configs]
    atomic_write_text(a.out, results_json(res, indent=1))
    for r in res:
        print(f"{r['config']} b{r['batch']}: step {r['step_ms_graph_1stream']} ms, kernels sum {r['sum_of_kernels_ms']} ms")
        for row in r["rows"]:
            print(f"  {row['kernel']:22s} x{row['count']:4d} {row['us']:8.2f} us  total {row['total_us']:8.1f} us  "
                  f"{row.get('GBps', '')} {row['grid']} {row['block']} {row['example_node']}")
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "profile"))
