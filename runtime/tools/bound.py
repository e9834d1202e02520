"""``python -m runtime.tools.bound``: how far a step is from streaming its weights, and why (a tuning
aid, not a test; results of the altered steps are wrong by design, only their times mean something).

The step's CUDA graph is timed as the executor builds it, then with launches taken out or swapped, the
plan and every other launch unchanged:

- ``gemv_only``: only the weight products (the add+norms, attention, ROPE and SwiGLU-only kernels removed);
- ``stream``: each weight product replaced by ``weight_stream`` over the same weight bytes (a plain
  grid-stride read that waits for its predecessor first, as a product must): the products' own cost at the
  same kernel boundaries;
- ``stream_early``: the same read started before the PDL wait: what overlapping a product's whole weight
  stream with the kernels before it could give (no real product can consume weights before its x exists,
  so this is a bound, not a design);
- ``full_stream`` / ``full_stream_early``: every other kernel kept, the products replaced as above;
- ``no_side`` (one-stream plan only): without the launches the hand-made multi-stream plan puts on its side
  streams (K's and V's products, ROPE and SET_ROWS): the step a multi-stream plan would give if its side
  streams and their joins cost nothing, so ``serial:full / serial:no_side`` bounds what side streams can
  gain over one stream with these kernels.

Session 13 (H200, 1B batch 1, one stream): full 0.853 ms, gemv_only 0.664, stream 0.612, stream_early 0.527,
full_stream 0.817, full_stream_early 0.709; the roofline at 4.54 TB/s is 0.458 (docs/runtime_log.md).
"""

from __future__ import annotations

import re
import statistics

from ..cuda_util import need_pycuda
from ..kernels import Launch
from ..kernels.ops import GEMM_TC, GEMM_TC_SWIGLU
from ..models import llama as L
from ..step import plan_step
from ..tool_args import ToolParser, count_arg, results_json

#: kernels that are not weight products (removed by ``gemv_only``)
NOT_PRODUCTS = re.compile(r"^(attn|rope|add_rms|rms_norm|swiglu_f32|binary|unary|cont|set_rows|silu|softmax|copy)")
#: the tensor-core products of 2..64 rows (every build), plain and with the SwiGLU epilogue
GEMM_TC_PLAIN_NAMES = frozenset(GEMM_TC.values())
GEMM_TC_SWIGLU_NAMES = frozenset(GEMM_TC_SWIGLU.values())
#: weight_stream blocks per SM (256 threads: a full SM)
STREAM_BLOCKS_PER_SM = 8


def _stream(ln: Launch, num_sms: int, early: bool) -> Launch:
    """``weight_stream`` over the bytes of a product's weights (GEMV or tensor-core GEMM) (``ln`` itself if it is not one)."""
    if ln.kernel == "gemv_f16_f32":
        W, _x, _y, N, K, _rpb = ln.args
        p1, n1, p2, n2 = W, N * K // 8, W, 0
    elif ln.kernel == "gemv_swiglu_f16_f32":
        Wg, Wu, _x, _y, N, K, _rpb = ln.args
        p1, n1, p2, n2 = Wg, N * K // 8, Wu, N * K // 8
    elif ln.kernel in GEMM_TC_SWIGLU_NAMES:
        Wg, Wu, _x, _y, _M, N, K = ln.args
        p1, n1, p2, n2 = Wg, N * K // 8, Wu, N * K // 8
    elif ln.kernel in GEMM_TC_PLAIN_NAMES:
        W, _x, _y, _M, N, K = ln.args
        p1, n1, p2, n2 = W, N * K // 8, W, 0
    else:
        return ln
    return Launch("weight_stream", (STREAM_BLOCKS_PER_SM * num_sms, 1, 1), (256, 1, 1), (p1, n1, p2, n2, 0, int(early)),
                  carveout=ln.carveout)   # the step's split, so the swap changes nothing else


def variants(num_sms: int) -> dict:
    """name -> (launches of one node -> its launches in the altered step)."""
    def products(v):
        return tuple(ln for ln in v if not NOT_PRODUCTS.search(ln.kernel))
    return {
        "full": lambda v: v,
        "gemv_only": products,
        "stream": lambda v: tuple(_stream(ln, num_sms, False) for ln in products(v)),
        "stream_early": lambda v: tuple(_stream(ln, num_sms, True) for ln in products(v)),
        "full_stream": lambda v: tuple(_stream(ln, num_sms, False) for ln in v),
        "full_stream_early": lambda v: tuple(_stream(ln, num_sms, True) for ln in v),
        # what each family of latency-bound kernels costs in the step (the step without it)
        "no_norm": lambda v: tuple(ln for ln in v if not re.match(r"(add_rms|rms_norm)", ln.kernel)),
        "no_attn": lambda v: tuple(ln for ln in v if not ln.kernel.startswith("attn")),
        "no_rope_set": lambda v: tuple(ln for ln in v if not re.match(r"(rope|set_rows)", ln.kernel)),
    }


def side_nodes(multi_plan) -> frozenset[str]:
    """The nodes ``multi_plan`` issues beside stream 0 (``no_side`` drops their launches)."""
    return frozenset(n for n, s in multi_plan.order if s != 0)


def bound(lib, name: str, rounds: int = 3, steps: int = 20, log=print, batch: int = 1) -> dict:
    """Per plan (serial, the hand-made multi-stream one) and variant: ms per step (median of ``rounds``)."""
    from ..executor import Executor

    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, "runtime")
    plans = {"serial": plan_step(g, batch=batch),
             "multi": plan_step(g, L.multi_stream_schedule(g, "hand"), batch=batch)}
    out = {"config": name, "batch": batch, "weight_bytes": L.weight_bytes(g), "ms": {}}
    side = side_nodes(plans["multi"])
    ref = None
    for pk, p in plans.items():
        ex = Executor(g, p, inputs=L.make_inputs(cfg, seed=1), library=lib,
                      random_weights_seed=1 if ref is None else None, weights_from=ref)
        ref = ref or ex
        launches = ex.program.launches
        orig = dict(launches)
        table = variants(lib.num_sms)
        if pk == "serial":
            table["no_side"] = None
        try:
            for vk, f in table.items():
                launches.update({k: (() if k in side else v) if f is None else f(v) for k, v in orig.items()})
                ex.release_graph()
                ex.capture()
                t = [statistics.median(ex.time_steps("graph", steps=steps, repeats=3)) for _ in range(rounds)]
                out["ms"][f"{pk}:{vk}"] = ms = round(statistics.median(t), 4)
                log(f"{name} b{batch} {pk:6s} {vk:18s} {ms:.4f} ms")
        finally:
            launches.update(orig)
    return out


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.bound")
    ap.add_argument("--configs", default="1b,8b", help="comma-separated Llama configs (default 1b,8b)")
    ap.add_argument("--rounds", type=count_arg, default=3, help="timing rounds (default 3)")
    ap.add_argument("--batches", default="1", help="comma-separated rows per step (default 1)")
    ap.add_argument("--out", default=None, help="also write the results as JSON (atomically)")
    a = ap.parse_args(argv)
    from ..tool_args import (
        ToolArgError,
        config_list,
        int_list,
        llama_graphs,
        out_path,
        repeats,
        tool_error,
    )

    try:
        configs, batches = config_list(a.configs), int_list(a.batches, "--batches")
        repeats(a.rounds, "--rounds")
        llama_graphs(configs, batches)
        out_path(a.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("bound", exc)
    from ..kernels import KernelLibrary
    from ..kernels.library import pdl_supported

    lib = KernelLibrary(pdl=pdl_supported())
    res = [bound(lib, c, a.rounds, batch=b) for c in configs for b in batches]
    if a.out:
        from memplan.files import atomic_write_text

        atomic_write_text(a.out, results_json(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "bound"))
