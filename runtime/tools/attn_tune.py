"""``python -m runtime.tools.attn_tune``: time compile-time variants of the fused kernels (a tuning aid, not a test).

Why: the decode-attention kernel is latency-bound and its best shape (blocks per head, rows loaded up
front, registers per thread and so blocks per SM) is found by measuring, not by reasoning. Each variant
of ``attn_fused_f16`` is compiled with its ``-D`` knobs, checked against a float64 numpy attention, and
timed as 50 back-to-back launches in a CUDA graph (the per-launch time includes the in-graph launch gap,
as in ``runtime.tools.profile``); the unfused ROPE, KQ, SOFT_MAX, KQV, CONT sequence is timed the same way for
comparison. (A cluster-of-8 add+RMS-norm for one row measured 3.0 us vs 2.7 us for one block; dropped.)
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from ..cuda_util import graph_us, need_pycuda
from ..kernels import KERNEL_SOURCE, SIGNATURES, Launch
from ..tool_args import ToolArgError, ToolParser, config_list, out_path, results_json, tool_error

VARIANTS = {
    "old_combine": {"AF_VL": 0, "AF_PUSH": 0},
    "vl5_push": {"AF_VL": 5},
    "vl0_pull": {"AF_PUSH": 0},
    "vl8_push": {"AF_VL": 8},
    "vl5_push_u4": {"AF_VL": 5, "AF_U": 4},
    "cl8_u4_v0": {"AF_U": 4, "AF_VU": 0},
    "cl8_u5_v0": {"AF_U": 5, "AF_VU": 0},
    "cl8_u5_v0_b3": {"AF_U": 5, "AF_VU": 0, "AF_MINB": 3},
    "cl8_u5_v5": {"AF_U": 5, "AF_VU": 5},
    "cl8_u5_v5_b3": {"AF_U": 5, "AF_VU": 5, "AF_MINB": 3},
    "cl8_u8_v8": {"AF_U": 8, "AF_VU": 8},
    "cl4_u9_v0": {"AF_CL": 4, "AF_U": 9, "AF_VU": 0},
    "cl4_u9_v9": {"AF_CL": 4, "AF_U": 9, "AF_VU": 9},
    "cl4_u9_v0_b3": {"AF_CL": 4, "AF_U": 9, "AF_VU": 0, "AF_MINB": 3},
}


def _time(funcs, launches, stream, reps=50) -> float:
    """Microseconds per pass of ``launches`` in a CUDA graph (the first of 7 samples is a warm-up)."""
    def once() -> None:
        for f, ln in launches:
            funcs[f].prepared_async_call(ln.grid, ln.block, stream, *ln.args)

    return round(statistics.median(graph_us(stream, once, reps=reps, trials=7)[1:]), 3)


def _ref_attn(q, pos, K, V, mask, heads, G, d):
    x = q.astype(np.float64).reshape(heads, d)
    inv = 10000.0 ** (-(2.0 * np.arange(d // 2)) / d)
    th = float(pos) * inv
    c, s = np.cos(th), np.sin(th)
    r = np.empty_like(x)
    r[:, 0::2] = x[:, 0::2] * c - x[:, 1::2] * s
    r[:, 1::2] = x[:, 0::2] * s + x[:, 1::2] * c
    g = np.arange(heads) // (heads // G)
    Kh = K.astype(np.float64)[:, g, :]
    Vh = V.astype(np.float64)[:, g, :]
    z = np.einsum("hd,jhd->hj", r, Kh) / math.sqrt(d) + mask[None, :]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return np.einsum("hj,jhd->hd", p, Vh)


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.attn_tune")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated kernel variants (default all: {','.join(VARIANTS)})")
    ap.add_argument("--out", default="attn_tune.json", help="results as JSON (default attn_tune.json)")
    a = ap.parse_args(argv)
    try:   # an unknown variant ran as the default build, silently
        variants = config_list(a.variants, "--variants", known=["default", *VARIANTS], what="variant")
        out_path(a.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("attn_tune", exc)
    import pycuda.autoprimaryctx  # noqa: F401
    import pycuda.driver as cuda
    from pycuda.compiler import compile as nvcc_compile

    major, minor = cuda.Context.get_device().compute_capability()
    arch = f"sm_{major}{minor}"
    src = KERNEL_SOURCE.read_text()
    stream = cuda.Stream()
    rng = np.random.default_rng(0)

    def module(defs):
        cubin = nvcc_compile(src, arch=arch, no_extern_c=True,
                             options=["-O3"] + [f"-D{k}={v}" for k, v in defs.items()])
        mod = cuda.module_from_buffer(cubin)
        fs = {}
        for name in ("attn_fused_f16", "rope_f32", "attn_kq_f16", "softmax_mask_f32", "attn_kqv_cl_f16", "copy_u32",
                     "add_rms_norm4_f32"):
            f = mod.get_function(name)
            f.prepare(SIGNATURES.get(name, "PPPPPiif"))
            fs[name] = f
        return fs

    results = {"attention": {}}
    shapes = {"8b": (32, 8, 128, 513), "1b": (32, 8, 64, 513)}
    bufs = {}
    for key, (heads, G, d, n_kv) in shapes.items():
        q = rng.standard_normal(heads * d).astype(np.float32)
        K = rng.standard_normal((n_kv + 1, G, d)).astype(np.float16)
        V = rng.standard_normal((n_kv + 1, G, d)).astype(np.float16)
        mask = np.zeros(n_kv, np.float32)
        pos = np.array([n_kv - 1], np.int32)
        dev = {k: cuda.to_device(v) for k, v in (("q", q), ("K", K), ("V", V), ("mask", mask), ("pos", pos))}
        dev["out"] = cuda.mem_alloc(heads * d * 4)
        dev["qr"] = cuda.mem_alloc(heads * d * 4)
        dev["s"] = cuda.mem_alloc(heads * n_kv * 4)
        dev["o2"] = cuda.mem_alloc(heads * d * 4)
        bufs[key] = (dev, _ref_attn(q, pos[0], K[:n_kv], V[:n_kv], mask, heads, G, d))
    for vname in ["default"] + [v for v in variants if v != "default"]:   # (the default build once)
        defs = VARIANTS.get(vname, {})
        fs = module(defs)
        cl = defs.get("AF_CL", 8)
        for key, (heads, G, d, n_kv) in shapes.items():
            dev, ref = bufs[key]
            ln = Launch("attn_fused_f16", (cl * heads, 1, 1), (256, 1, 1),
                        (int(dev["q"]), int(dev["pos"]), int(dev["K"]), int(dev["V"]), int(dev["mask"]),
                         int(dev["out"]), n_kv, G, heads, d, 1.0 / math.sqrt(d), math.log2(10000.0)))
            cuda.memset_d32(dev["out"], 0x7FC00000, heads * d)
            fs["attn_fused_f16"].prepared_call(ln.grid, ln.block, *ln.args)
            got = cuda.from_device(dev["out"], (heads, d), np.float32)
            err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref)) if np.all(np.isfinite(got)) else float("inf")
            us = _time(fs, [("attn_fused_f16", ln)], stream)
            results["attention"][f"{vname}/{key}"] = {"us": us, "rel_err": err, "defs": defs}
            print(f"attn {vname:14s} {key}: {us:7.3f} us  rel err {err:.2e}", flush=True)
            if vname == "default":
                seq = [
                    ("rope_f32", Launch("rope_f32", (math.ceil(heads * d // 2 / 256), 1, 1), (256, 1, 1),
                                        (int(dev["q"]), int(dev["pos"]), int(dev["qr"]), 1, heads, d,
                                         math.log2(10000.0)))),
                    ("attn_kq_f16", Launch("attn_kq_f16", (math.ceil(n_kv / 8), G, 1), (256, 1, 1),
                                           (int(dev["K"]), int(dev["qr"]), int(dev["s"]), n_kv, G, heads, d,
                                            1.0 / math.sqrt(d)))),
                    ("softmax_mask_f32", Launch("softmax_mask_f32", (heads, 1, 1), (256, 1, 1),
                                                (int(dev["s"]), int(dev["mask"]), int(dev["s"]), n_kv, heads))),
                    ("attn_kqv_cl_f16", Launch("attn_kqv_cl_f16", (4 * heads, 1, 1), (512, 1, 1),
                                               (int(dev["V"]), int(dev["s"]), int(dev["o2"]), n_kv, G, heads, d))),
                    ("copy_u32", Launch("copy_u32", (math.ceil(heads * d / 256), 1, 1), (256, 1, 1),
                                        (int(dev["o2"]), int(dev["out"]), heads * d))),
                ]
                us = _time(fs, seq, stream)
                results["attention"][f"unfused/{key}"] = {"us": us}
                print(f"attn {'unfused (5)':14s} {key}: {us:7.3f} us", flush=True)
    from memplan.files import atomic_write_text

    atomic_write_text(a.out, results_json(results, indent=1))
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "attn_tune"))
