"""``python -m runtime.tools.gemm_bench``: the decode matrix products alone, every kernel shape, checked and timed.

Why: a decode step at batch 1..64 reads every weight once, so each MUL_MAT should cost its weight bytes
over the memory bandwidth whatever its row count. This tool measures exactly that for the Llama configs'
matrices: per (matrix, rows of x) the launch ``mul_mat_launch`` picks and every other gemm_tc shape
(build x warps per block x cluster size) beside it, and at one row the GEMV; for the FFN also the gate/up
pass (``gate_up+swiglu``: two copies of the matrix as gate and up, the registry's choice then every other). Each launch is first checked against
numpy (float64 of the same f16 weights and, for the tensor cores, x rounded to f16), with the output
poisoned with NaN, the rows past M fenced, and two runs compared bit for bit; then timed inside a CUDA
graph over enough copies of the matrix (rotated) that L2 holds none of it. The bandwidth it reports is
over a 4 GiB read (``l2_prefetch``) in the same process: the read roofline.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from ..bench import measure_read_bandwidth
from ..bits import same_bits
from ..cuda_util import graph_us, need_pycuda
from ..kernels import Launch, gemm_tc_launch, mul_mat_launch
from ..kernels.ops import GEMM_TC, PORTABLE_CLUSTER, TC_BUILDS, gemm_tc_fits, gemm_tc_swiglu_launch
from ..tool_args import ToolParser, results_json

SHAPES = {
    "8b": {"q_o": (4096, 4096), "k_v": (1024, 4096), "gate_up": (14336, 4096), "down": (4096, 14336),
           "lm_head": (128256, 4096)},
    "1b": {"q_o": (2048, 2048), "k_v": (512, 2048), "gate_up": (8192, 2048), "down": (2048, 8192),
           "lm_head": (32000, 2048)},
}


def _first_then_others(chosen: Launch | None, make, M: int, N: int, K: int, wgmma: bool) -> list[Launch]:
    """``chosen`` (if any), then ``make((build, warps, cluster size))`` for every gemm_tc shape that fits
    (every build; above its most rows of x, in groups) and launches something else."""
    out = [chosen] if chosen is not None else []
    seen = {(chosen.kernel, chosen.grid, chosen.block)} if chosen is not None else set()
    for build in [b for b in TC_BUILDS if b != "g" or wgmma]:
        # the build's compiled cluster sizes; past 8 (non-portable) only where the library launches them
        for cl in sorted(c for c, w in GEMM_TC if w == build and (c <= PORTABLE_CLUSTER or wgmma)):
            for warps in (8, 4):
                ln = make((build, warps, cl)) if gemm_tc_fits(M, N, K, warps, cl, build) else None
                if ln is not None and (ln.kernel, ln.grid, ln.block) not in seen:
                    out.append(ln)
    return out


def candidates(M: int, N: int, K: int, num_sms: int, wgmma: bool = False) -> list[Launch]:
    """The chosen launch first, then every other gemm_tc shape (and the WMMA kernel) for 2..64 rows."""
    out = _first_then_others(mul_mat_launch(0, 0, 0, M, N, K, num_sms, wgmma),
                             lambda c: gemm_tc_launch(0, 0, 0, M, N, K, c[1], c[2], c[0]), M, N, K, wgmma)
    if M >= 2 and N % 16 == 0 and K % 64 == 0:
        out.append(Launch("gemm_wmma_f16_f32", (N // 16, 1, 1), (128, 1, 1), (0, 0, 0, M, N, K)))
    return out


def swiglu_candidates(M: int, N: int, K: int, num_sms: int, wgmma: bool = False) -> list[Launch]:
    """The gate/up pass (gate and up [N, K] in one launch) the registry picks first, then every other
    (build, warps, cluster size) that fits."""
    return _first_then_others(gemm_tc_swiglu_launch(0, 0, 0, 0, M, N, K, num_sms, wgmma=wgmma),
                              lambda c: gemm_tc_swiglu_launch(0, 0, 0, 0, M, N, K, num_sms, c), M, N, K, wgmma)


def bind(ln: Launch, W: int, x: int, y: int) -> Launch:
    return Launch(ln.kernel, ln.grid, ln.block, (W, x, y) + tuple(ln.args[3:]))


def bind_swiglu(ln: Launch, Wg: int, Wu: int, x: int, y: int) -> Launch:
    return Launch(ln.kernel, ln.grid, ln.block, (Wg, Wu, x, y) + tuple(ln.args[4:]))


def _rotating(lib, stream, launches: list[Launch]):
    """One launch per call, cycling through ``launches`` (the matrix copies)."""
    k = [0]

    def issue() -> None:
        lib.launch(launches[k[0] % len(launches)], stream, pdl=False)
        k[0] += 1
    return issue


def run(lib, configs, rows, *, log=print) -> dict:
    import pycuda.driver as cuda

    stream = cuda.Stream()
    bw = measure_read_bandwidth(lib)["bytes_per_s"]   # the same 4 GiB read as runtime.bench's roofline
    log(f"read bandwidth (4 GiB, l2_prefetch): {bw / 1e12:.3f} TB/s")
    rng = np.random.default_rng(0)
    results = []
    for cfg in configs:
        for mname, (N, K) in SHAPES[cfg].items():
            wbytes = N * K * 2
            copies = max(1, math.ceil((512 << 20) / wbytes))   # rotate over >= 512 MB: L2 holds none of it
            Ws = [cuda.mem_alloc(wbytes) for _ in range(copies)]
            for i, w in enumerate(Ws):
                lib.funcs["fill_uniform_f16"].prepared_call((65535, 1, 1), (256, 1, 1), w, N * K, 11 + i,
                                                            float(np.sqrt(3.0 / K)))
            cuda.Context.synchronize()
            Wh = np.empty((N, K), np.float16)
            cuda.memcpy_dtoh(Wh, Ws[0])
            cols = np.arange(N) if N <= 4096 else np.sort(rng.choice(N, 4096, replace=False))   # checked outputs
            W64 = Wh[cols].astype(np.float64)
            Wu64 = None
            if mname == "gate_up" and copies >= 2:
                cuda.memcpy_dtoh(Wh, Ws[1])
                Wu64 = Wh[cols].astype(np.float64)
            Mmax = max(rows)
            x = cuda.mem_alloc(Mmax * K * 4)
            ypad = 1024                                   # fence past the M rows: must stay untouched
            y = cuda.mem_alloc((Mmax * N + ypad) * 4)
            for M in rows:
                xh = rng.standard_normal((M, K)).astype(np.float32)
                cuda.memcpy_htod(x, xh)
                refs = {tc: (xh.astype(np.float16) if tc else xh).astype(np.float64) @ W64.T for tc in (False, True)}
                # (label, launch, its copies over the rotation, reference, weight bytes read, tensor cores)
                jobs = [(mname, ln0, [bind(ln0, int(w), int(x), int(y)) for w in Ws], refs[ln0.kernel != "gemv_f16_f32"],
                         wbytes) for ln0 in candidates(M, N, K, lib.num_sms, lib.wgmma)]
                if mname == "gate_up" and Wu64 is not None and 2 <= M <= 64:   # the gate/up pass: copy i + 1 is up
                    xr = xh.astype(np.float16).astype(np.float64)
                    gv, uv = xr @ W64.T, xr @ Wu64.T
                    ref_sw = gv / (1 + np.exp(-gv)) * uv
                    for ln0 in swiglu_candidates(M, N, K, lib.num_sms, lib.wgmma):
                        pairs = [bind_swiglu(ln0, int(Ws[i]), int(Ws[(i + 1) % copies]), int(x), int(y))
                                 for i in range(copies)]
                        jobs.append(("gate_up+swiglu", ln0, pairs, ref_sw, 2 * wbytes))
                first = {}
                for label, ln0, bound, ref, nbytes in jobs:
                    chosen = label not in first
                    first[label] = True
                    tc = ln0.kernel != "gemv_f16_f32"
                    outs = []
                    for _ in range(2):
                        cuda.memset_d32(y, 0x7FC00000, Mmax * N + ypad)
                        lib.launch(bound[0], stream, pdl=False)
                        stream.synchronize()
                        got = np.empty(Mmax * N + ypad, np.float32)
                        cuda.memcpy_dtoh(got, y)
                        outs.append(got)
                    out = outs[0][:M * N].reshape(M, N)[:, cols]
                    fence_ok = bool(np.all(np.isnan(outs[0][M * N:])))
                    err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
                    same = same_bits(outs[0], outs[1])
                    us = statistics.median(graph_us(stream, _rotating(lib, stream, bound), reps=max(copies, 20),
                                                    trials=7))
                    row = {"config": cfg, "matrix": label, "N": N, "K": K, "M": M, "chosen": chosen,
                           "kernel": ln0.kernel, "grid": ln0.grid[0], "block": ln0.block[0], "us": round(us, 2),
                           "GBps": round(nbytes / us / 1e3, 1), "of_read_bw": round(nbytes / us * 1e6 / bw, 3),
                           "rel_err": err, "bitwise_repeat": same, "fence_intact": fence_ok,
                           "finite": bool(np.all(np.isfinite(outs[0][:M * N])))}
                    results.append(row)
                    flag = "" if (err < (5e-5 if tc else 1e-6) and same and fence_ok) else "  <-- CHECK FAILED"
                    log(f"{cfg} {label:8s} M={M:2d} {'*' if chosen else ' '} {ln0.kernel:18s} grid {ln0.grid[0]:5d} "
                        f"blk {ln0.block[0]:3d} {us:8.2f} us {row['GBps']:7.1f} GB/s {row['of_read_bw']:6.1%} "
                        f"err {err:.1e}{flag}")
            for w in Ws:
                w.free()
            x.free()
            y.free()
    return {"read_bandwidth_bytes_per_s": bw, "rows": results}


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.gemm_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="8b,1b", help="comma-separated Llama configs whose shapes run (default 8b,1b)")
    ap.add_argument("--rows", default="1,2,4,8,16,32,64", help="comma-separated rows, at most 64 (default 1,2,4,8,16,32,64)")
    ap.add_argument("--out", default="gemm_bench.json", help="results as JSON (default gemm_bench.json)")
    a = ap.parse_args(argv)
    from ..tool_args import ToolArgError, config_list, int_list, out_path, tool_error

    try:
        configs, rows = config_list(a.configs, known=SHAPES), int_list(a.rows, "--rows", hi=64)
        out_path(a.out)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("gemm_bench", exc)
    from ..kernels import KernelLibrary

    lib = KernelLibrary()
    res = run(lib, configs, rows)
    from memplan.files import atomic_write_text

    atomic_write_text(a.out, results_json(res, indent=1))
    bad = [r for r in res["rows"] if not (r["bitwise_repeat"] and r["fence_intact"] and r["finite"]
                                          and r["rel_err"] < (1e-6 if r["kernel"] == "gemv_f16_f32" else 5e-5))]
    print(f"{len(res['rows'])} launches checked, {len(bad)} failed")
    best: dict = {}
    for r in res["rows"]:
        key = (r["config"], r["matrix"], r["M"])
        if key not in best or r["us"] < best[key]["us"]:
            best[key] = r
    print("| config | matrix | M | chosen | us | of read bw | best | us |")
    print("| --- | --- | ---: | --- | ---: | ---: | --- | ---: |")
    for r in res["rows"]:
        if r["chosen"]:
            b = best[(r["config"], r["matrix"], r["M"])]
            print(f"| {r['config']} | {r['matrix']} | {r['M']} | {r['kernel']} g{r['grid']} b{r['block']} | {r['us']} | "
                  f"{r['of_read_bw']:.1%} | {b['kernel']} g{b['grid']} b{b['block']} | {b['us']} |")
    return 1 if bad else 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "gemm_bench"))
