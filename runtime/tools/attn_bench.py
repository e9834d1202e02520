"""``python -m runtime.tools.attn_bench``: every decode-attention kernel on one shape, side by side (a tuning
aid, not a test).

Why: which attention kernel (attn_fused_f16, attn_batch*, attn_mma with 1/2/4/8 blocks per query block,
and for head sizes 64 and 128 their own kernels, attn_mma's with 4 and 8 warps) is fastest depends on the
batch and the SM count, and the registry's rules (``ATTN_MMA_MIN_ROWS``, ``attn_mma_split``,
``attn_mma_cluster``) are read off this table. Each launch is timed inside a CUDA graph (50 back to back,
median of 5), so the number includes the in-graph launch gap, as in a step. The registry's choice is
printed beside the times.
"""

from __future__ import annotations

import statistics
import sys

from ..cuda_util import need_pycuda
from ..tool_args import ToolParser, count_arg, int_list, out_path, results_json


def kernels_taking(d: int, n_kv: int) -> tuple[bool, bool, bool]:
    """Whether attn_fused_f16, attn_batch* and attn_mma* take head size d over n_kv cache rows (llama.cu:
    attn_fused needs d / 8 a power of two up to 32 and at most ATTN_CLUSTER x ATTN_MAXCHUNK rows, attn_batch
    the same d and d <= 128, attn_mma a multiple of 16 up to 128): the table times only those, since a kernel
    launched past its limits traps (and leaves the context unusable) or writes past its shared memory."""
    from ..kernels.ops import attn_fused_takes, attn_mma_takes

    return attn_fused_takes(d, n_kv), attn_fused_takes(d, 1) and d <= 128, attn_mma_takes(d)


def launches(ptrs: tuple[int, ...], d: int, B: int, ctx: int, num_sms: int, heads: int = 32, G: int = 8) -> dict:
    """What ``bench`` times for head size d, B tokens and ``ctx`` cached rows, over the six pointers ``ptrs`` (q,
    pos, K, V, mask, out): the registry's choice under "registry", then every kernel that takes the shape. Pure,
    so ``main`` checks each launch (``launch_problem``: CUDA's limits, 32-bit arguments) before the library is
    built; a batch or ctx past them reached the GPU run (a host allocation failing as "out of memory", after the
    kernels compiled)."""
    from ..kernels import ATTN_CLUSTER, ATTN_FUSED, ATTN_MMA, Launch
    from ..kernels.ops import ATTN_BATCH_CLUSTER, ATTN_BATCH_ROWS, ATTN_MMA_ROWS, attention_launch, attn_mma_kernel

    n_kv = ctx + B
    chosen = attention_launch(*ptrs, B, n_kv, G, heads, d, num_sms)   # the registry's rule
    tail = (B, *chosen.args[-6:])          # every kernel ends with n_kv, G, heads, d, scale, log2 base
    grp = heads // G
    lns = {"registry": chosen}
    fused_ok, batch_ok, mma_ok = kernels_taking(d, n_kv)
    if fused_ok:
        lns["attn_fused_f16"] = Launch("attn_fused_f16", (ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1), ptrs + tail[1:])
        if ATTN_FUSED.get(d):   # the kernel that knows d at compile time, beside the generic one
            lns[ATTN_FUSED[d]] = Launch(ATTN_FUSED[d], (ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1), ptrs + tail[1:])
    if batch_ok and B * grp >= ATTN_BATCH_ROWS:   # a full query block: the batched kernels take it
        qb = -(-B * grp // ATTN_BATCH_ROWS)
        lns["attn_batch_f16"] = Launch("attn_batch_f16", (ATTN_BATCH_CLUSTER * qb, G, 1), (256, 1, 1), ptrs + tail)
        lns["attn_batch1_f16"] = Launch("attn_batch1_f16", (qb, G, 1), (256, 1, 1), ptrs + tail)
    mq = -(-B * grp // ATTN_MMA_ROWS)
    for cl, name in ATTN_MMA.items() if mma_ok else ():
        lns[name] = Launch(name, (cl * mq, G, 1), (128, 1, 1), ptrs + tail)
        spec = attn_mma_kernel(cl, d)
        if spec != name:   # the kernels that know d at compile time (4 and 8 warps), beside the generic one
            lns[spec] = Launch(spec, (cl * mq, G, 1), (128, 1, 1), ptrs + tail)
            w8 = attn_mma_kernel(cl, d, 8)
            lns[w8] = Launch(w8, (cl * mq, G, 1), (256, 1, 1), ptrs + tail)
    return lns


def bench(lib, d: int, B: int, heads: int = 32, G: int = 8, ctx: int = 512) -> dict:
    import numpy as np
    import pycuda.driver as cuda

    from ..cuda_util import graph_us

    n_kv = ctx + B
    rng = np.random.default_rng(B)
    arrays = (rng.standard_normal((B, heads, d)).astype(np.float32), (ctx + np.arange(B)).astype(np.int32),
              rng.standard_normal((n_kv, G, d)).astype(np.float16), rng.standard_normal((n_kv, G, d)).astype(np.float16),
              np.zeros((B, n_kv), np.float32))
    dev = [cuda.to_device(a) for a in arrays]
    out = cuda.mem_alloc(B * heads * d * 4)
    s = cuda.Stream()
    try:
        lns = launches(tuple(int(x) for x in dev) + (int(out),), d, B, ctx, lib.num_sms, heads, G)
        row = {"d": d, "B": B, "ctx": ctx, "registry": lns.pop("registry").kernel}
        for k, ln in lns.items():
            row[k] = round(statistics.median(graph_us(s, lambda ln=ln: lib.launch(ln, s), reps=50, trials=5)), 2)
        return row
    finally:
        for x in (*dev, out):
            x.free()


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.attn_bench")
    ap.add_argument("--dims", default="128,64", help="head dims")
    ap.add_argument("--batches", default="1,2,4,8,16,32,64", help="comma-separated rows (default 1,2,4,8,16,32,64)")
    ap.add_argument("--ctx", type=count_arg, default=512, help="cached context length (default 512)")
    ap.add_argument("--out", default="attn_bench.json", help="results as JSON (default attn_bench.json)")
    a = ap.parse_args(argv)
    from memplan.files import atomic_write_text

    from ..kernels import KernelError, KernelLibrary
    from ..kernels.registry import launch_problem

    try:   # every launch checked before the library compiles: a bad one is one line, not a trap on the GPU
        dims, batches = int_list(a.dims, "--dims"), int_list(a.batches, "--batches", lo=0)
        if a.ctx < 0:
            raise ValueError(f"--ctx {a.ctx} is negative")
        for d in dims:
            for B in batches:
                for name, ln in launches(tuple(range(16, 112, 16)), d, B, a.ctx, 132).items():
                    if (why := launch_problem(ln)) is not None:
                        raise ValueError(f"--dims {d}, --batches {B}, --ctx {a.ctx}: {ln.kernel} ({name}): {why}")
        out_path(a.out)
        need_pycuda()
    except (ValueError, KernelError) as exc:
        print(f"attn_bench: error: {exc}", file=sys.stderr)
        return 2
    lib = KernelLibrary()
    res = []
    for d in dims:
        for B in batches:
            res.append(bench(lib, d, B, ctx=a.ctx))
            print(res[-1], flush=True)
    atomic_write_text(a.out, results_json(res, indent=1))
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "attn_bench"))
