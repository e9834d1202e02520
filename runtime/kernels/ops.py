"""One node's kernels: which CUDA kernel (grid, block, arguments) computes a node of each op family.

``Launch`` is the record every executor issues and the emulator runs; ``node_launches`` maps one node to
zero or more of them (views and ``COPY_OP``'s zero-byte copies cost nothing; a ``COPY`` node is one
``MEMCPY`` pseudo-launch, a device-to-device copy). The helpers here (shapes, dtypes, grids, overlap
checks) are shared with the fused kernels of ``runtime.kernels.fused``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from memplan import Graph
from memplan.errors import MemplanError
from memplan.ops import COPY_OP, VIEW_OPS

RMS_EPS = 1e-5
ROPE_BASE = 10000.0
#: Executor default for ``gemv_norm_min``: the GEMV+add+RMS-norm kernel (last block normalises) is off,
#: since it measured 0.2-0.3% slower per 8B step on the H100 than a GEMV then the add+norm kernel
GEMV_NORM_OFF = 1 << 62
#: attn_fused_f16: blocks per (batch row, head) and most cache rows per block (AF_CL, AF_MAXCHUNK)
ATTN_CLUSTER = 8
ATTN_MAXCHUNK = 2048
#: attn_fused_f16 and its kernels that know the head size at compile time (ATTN_MMA_DIMS; the same bits)
ATTN_FUSED = {0: "attn_fused_f16", 64: "attn_fused_d64_f16", 128: "attn_fused_d128_f16"}
ATTN_FUSED_NAMES = frozenset(ATTN_FUSED.values())
#: attn_batch_f16: query rows per block; used once a KV head has at least this many query rows per block
#: times 4 (batch x heads per KV head), below which too few blocks would share the work
ATTN_BATCH_ROWS = 16
#: attn_batch_f16: blocks (a cluster) that split one query block's cache rows, used while the query
#: blocks alone would leave most SMs idle (attn_batch1_f16 otherwise: at 8B batch 64 the split cost
#: 81 vs 62 us per layer, at batch 16 it saved 58 -> 36)
ATTN_BATCH_CLUSTER = 4
#: attn_mma (tensor cores): the kernel per cluster size (cache rows split over that many blocks of 4 warps
#: with 16 query rows each), the query rows per block, and the smallest batch x heads-per-KV-head that
#: takes it rather than attn_fused_f16 (below that attn_fused_f16's 8-block split of each (token, head)
#: keeps more SMs busy than 16-row blocks can). Batch 1 always keeps attn_fused_f16 (f32 q)
def _attn_mma_name(cl: int, d: int = 0, warps: int = 4) -> str:
    """llama.cu's ATTN_MMA_KERNELS names: cluster size, head size (0: any), 8 warps."""
    return f"attn_mma{'' if cl == 1 else cl}{f'_d{d}' if d else ''}{'w8' if warps == 8 else ''}_f16"


ATTN_MMA = {cl: _attn_mma_name(cl) for cl in (1, 2, 4, 8)}
#: ... and per cluster size and head size in ATTN_MMA_DIMS, the kernels whose body knows d at compile time
#: (the same bits as the generic kernel's for that d; at 8B and 1B shapes 15-35% faster, the d = 64 ones
#: on about 115 registers instead of 168)
ATTN_MMA_DIMS = (64, 128)
ATTN_MMA_SPEC = {(cl, d): _attn_mma_name(cl, d) for cl in ATTN_MMA for d in ATTN_MMA_DIMS}
#: ... and those with 8 warps per block instead of 4 (a block's cache rows over twice the warps, so each
#: warp's chain of 16-row steps halves; 256 threads, twice the stages' shared memory)
ATTN_MMA_W8 = {(cl, d): _attn_mma_name(cl, d, 8) for cl in ATTN_MMA for d in ATTN_MMA_DIMS}
ATTN_MMA_W8_NAMES = frozenset(ATTN_MMA_W8.values())
ATTN_MMA_NAMES = frozenset(ATTN_MMA.values()) | frozenset(ATTN_MMA_SPEC.values()) | ATTN_MMA_W8_NAMES
#: ... each with a twin writing its output in f16 (name + "h": the f16_acts graphs' attention output)
ATTN_MMA_H = {name: name + "h" for name in sorted(ATTN_MMA_NAMES)}
ATTN_MMA_H_NAMES = frozenset(ATTN_MMA_H.values())
ATTN_MMA_ROWS = 16
ATTN_MMA_MIN_ROWS = 8
#: attn_mma: blocks per SM the cache-row split may fill (``attn_mma_cluster``)
ATTN_MMA_BLOCKS_PER_SM = 1
#: attn_mma with 8 warps per block (``attn_mma_split``; 4 disables it), and the blocks per SM its clusters of
#: 4 or 8 may take: a margin under one wave (one 256-thread block per SM: H200, one wave holds 30 clusters
#: of 4 or 15 of 8, 120 blocks of 132 SMs)
ATTN_MMA_WARPS_MAX = 8
ATTN_MMA_W8_WAVE = 0.9
#: attn_mma's dynamic shared memory: per warp two stages of a 16-row K and V tile (rows of 136 halves)
ATTN_MMA_SMEM = 4 * 2 * 2 * 16 * 136 * 2
ATTN_MMA_SMEM_W8 = 2 * ATTN_MMA_SMEM
#: The L1/shared-memory split (percent of the most shared memory) asked for every launch of a step whose
#: products run on tensor cores, GEMVs and copies aside (``registry.plan_launches``). An SM changes its
#: split only when it is empty, so a kernel whose split differs from the one running cannot start there
#: early (PDL) or beside a kernel of another stream; left to the driver, the norms (no shared memory: the
#: most L1) and the gemm_tc kernels (tens of KB of shared memory per block) alternate splits. 40% rounds up
#: to the H200's 100 KB configuration: two blocks of the 16-row build (34 KB each: what its 8-warp blocks'
#: registers allow, and what the steps' 4-warp grids of it need) or five of the 32 x 32 build (18 KB) per
#: SM, and 156 KB of L1 stay for the streamed weights (attn_mma's 8-warp blocks take their own, larger
#: split). H200, one
#: process, 3 streams, ms, the driver's choice -> 40 / 50 / 60%: 8B batch 4 4.587 -> 4.467 / 4.490 / 4.583,
#: 16 4.769 -> 4.655 / 4.694 / 4.788, 64 5.935 -> 5.789 / 5.798 / 5.816; 1B batch 4 1.005 -> 0.954 / 0.953
#: / 0.947, 16 1.067 -> 0.995 / 1.002 / 1.006, 64 1.437 -> 1.436 (one stream within 1.5%; 75%: 8B batch 16
#: 4.94, the streaming products short of L1; 100%: 6.04). Batch-1 steps keep the driver's choice: the GEMV
#: reads x through L1 (every kernel at 50%: 8B 4.10 -> 4.71 ms; all but the GEMVs: 4.16).
TC_STEP_CARVEOUT = 40
#: the pseudo-kernel of a COPY node: args (src, dst, nbytes), a device-to-device copy (cuMemcpyDtoDAsync)
MEMCPY = "memcpy"
#: gemm_tc builds (llama.cu GEMM_TC_BUILDS): "" up to 16 rows of x, 16 weight rows per warp (256-wide
#: super-tiles); "w" up to 64 rows, 16 weight rows per warp (128-wide); "t" up to 64 rows, 32 weight rows per
#: warp (64-wide); "m" up to 32 rows, 32 weight rows per warp (128-wide); "g" up to 64 rows, Hopper's
#: warpgroup products (wgmma, sm_90a only: ``KernelLibrary.wgmma``), weights and x copied by TMA through
#: shared-memory rings of 64-wide stages, 8-warp blocks of 256 weight rows (llama.cu gemm_wg_body)
TC_BUILDS = ("", "w", "t", "m", "g")
#: the wgmma build's weight and x ring stages (llama.cu WG_STAGES, WG_XSTAGES)
WG_STAGES = 4
WG_XSTAGES = 4
#: the tensor-core GEMM per (cluster size, build): K split over a cluster of that many blocks
#: the wgmma build's cluster sizes: between the powers of two too, so a K split can fill one wave of SMs
WG_CLUSTERS = (1, 2, 3, 4, 5, 6, 8)
#: the register builds' cluster sizes; 16 is past the portable 8 (PORTABLE_CLUSTER): its kernels are allowed a
#: non-portable cluster when loaded and always launched through cuda.bindings (``KernelLibrary``)
TC_CLUSTERS = (1, 2, 4, 8, 16)
PORTABLE_CLUSTER = 8
GEMM_TC = {(cl, w): f"gemm_tc{'' if cl == 1 else cl}{w}_f16_f32" for w in TC_BUILDS
           for cl in (WG_CLUSTERS if w == "g" else TC_CLUSTERS)}
#: the same reading gate and up matrices in one pass, with the SwiGLU epilogue (args Wg, Wu, x, y, M, N, K)
GEMM_TC_SWIGLU = {k: v.replace("_f16_f32", "_swiglu_f16_f32") for k, v in GEMM_TC.items()}
GEMM_TC_NAMES = frozenset(GEMM_TC.values()) | frozenset(GEMM_TC_SWIGLU.values())
#: the wgmma build's kernels: launched with tensor maps (``KernelLibrary``), on sm_90a only
GEMM_WG_NAMES = frozenset(v for (_cl, w), v in (*GEMM_TC.items(), *GEMM_TC_SWIGLU.items()) if w == "g")
#: the kernels compiled with a cluster of more than PORTABLE_CLUSTER blocks
NONPORTABLE_CLUSTER_NAMES = frozenset(v for (cl, _w), v in (*GEMM_TC.items(), *GEMM_TC_SWIGLU.items())
                                      if cl > PORTABLE_CLUSTER)
#: the build (one of TC_BUILDS) of every gemm_tc kernel, plain or SwiGLU
TC_BUILD = {name: w for (_cl, w), name in (*GEMM_TC.items(), *GEMM_TC_SWIGLU.items())}
#: k per super-tile of each build, the most rows of x it takes, and weight rows per warp
TC_ST = {"": 256, "w": 128, "t": 64, "m": 128, "g": 64}
TC_MAX_ROWS = {"": 16, "w": 64, "t": 64, "m": 32, "g": 64}
TC_WARP_ROWS = {"": 16, "w": 16, "t": 32, "m": 32, "g": 32}
#: gemm_ws (llama.cu gemm_ws_body, sm_90a): the products of an f16 x (f16_acts graphs), warp-specialised, per
#: kernel (consumer warpgroups, m64 weight tiles per warpgroup, ring stages): plain BN 64 / 128 / 256; SwiGLU BN
#: 128 / 256
WS_BUILDS = {"gemm_ws_f16x": (1, 1, 8), "gemm_ws2_f16x": (1, 2, 8), "gemm_ws4_f16x": (2, 2, 4),
             "gemm_ws2_swiglu_f16x": (1, 2, 8), "gemm_ws4_swiglu_f16x": (2, 2, 4)}
WS_PLAIN = "gemm_ws_f16x"
#: the plain builds (one weight matrix, f32 y)
WS_PLAIN_NAMES = frozenset({WS_PLAIN, "gemm_ws2_f16x", "gemm_ws4_f16x"})
WS_NAMES = frozenset(WS_BUILDS)
#: the SwiGLU builds (gate and up matrices, f16 y)
WS_SWIGLU_NAMES = WS_NAMES - WS_PLAIN_NAMES
#: the always-correct products of an f16 x (no sm_90a, K % 8, unaligned rows, more than 64 rows)
NAIVE_F16X = "gemm_naive_f16x"
NAIVE_SWIGLU_F16X = "gemm_naive_swiglu_f16x"


def ws_smem_bytes(name: str) -> int:
    """A gemm_ws launch's dynamic shared memory: the ring (weights and f16 x per stage, two mbarriers each)
    and 1 KB to align the swizzled tiles."""
    nc, wt, st = WS_BUILDS[name]
    return st * (64 * wt * nc * 128 + 64 * 128) + 16 * st + 1024


#: per kernel: the positions of the arguments it writes a tensor through (what a fused group materialises)
WRITES = {
    "rms_norm_f32": (2,), "rms_norm4_f32": (2,), "binary_f32": (2,), "silu_f32": (1,), "copy_u32": (1,),
    "rope_f32": (2,), "set_rows_f32_f16": (2,), "attn_kq_f16": (2,), "softmax_mask_f32": (2,),
    "attn_kqv_f16": (2,), "attn_kqv_cl_f16": (2,), "add_rms_norm4_f32": (2, 4), "swiglu_f32": (2,),
    "rope_set_rows_f16": (3,), "attn_batch_f16": (5,), "attn_batch1_f16": (5,),
    "gemv_f16_f32": (2,), "gemv_add_rms_f16_f32": (3, 5), "gemv_swiglu_f16_f32": (3,), "gemm_wmma_f16_f32": (2,), "gemm_naive_f16_f32": (2,), MEMCPY: (1,),
    **{name: (2,) for name in GEMM_TC.values()}, **{name: (3,) for name in GEMM_TC_SWIGLU.values()},
    **{name: (5,) for name in sorted(ATTN_MMA_NAMES | ATTN_FUSED_NAMES)},
    **{name: (5,) for name in sorted(ATTN_MMA_H_NAMES)}, "cast_f32_f16": (1,),
    "binary_f32_f16": (2,), "rms_norm4_f32_f16": (2,), "add_rms_norm4_f32_f16": (2, 4), "swiglu_f32_f16": (2,),
    **{name: (2,) for name in sorted(WS_PLAIN_NAMES)}, **{name: (3,) for name in sorted(WS_SWIGLU_NAMES)}, NAIVE_F16X: (2,), NAIVE_SWIGLU_F16X: (3,),
}


#: per kernel: the positions of the arguments it reads before its PDL wait (weights: llama.cu's PDL note).
#: A launch whose such argument is a tensor some node of the step writes (a KV cache written by SET_ROWS and
#: multiplied by a 2-D MUL_MAT, ggml's KQV) must not start before its predecessor ends.
EARLY_READS = {
    "gemv_f16_f32": (0,), "gemv_add_rms_f16_f32": (0,), "gemv_swiglu_f16_f32": (0, 1),
    "add_rms_norm4_f32": (3,), "rms_norm4_f32": (1,), "add_rms_norm4_f32_f16": (3,), "rms_norm4_f32_f16": (1,),
    **{name: (0,) for name in sorted(WS_PLAIN_NAMES)}, **{name: (0, 1) for name in sorted(WS_SWIGLU_NAMES)},
    **{name: (0,) for name in GEMM_TC.values()}, **{name: (0, 1) for name in GEMM_TC_SWIGLU.values()},
}


#: per kernel: the byte alignment each of its pointer arguments needs, by argument position (llama.cu; a
#: position past the tuple is no pointer). Scalar accesses need their element's alignment (f32, i32: 4; f16:
#: 2); vector ones 8 (uint2 / float2 / a half4 store) or 16 (float4, uint4, cp.async of 16 bytes, TMA tensor
#: maps' base addresses); wmma's load_matrix_sync 32. A misaligned vector access faults on the GPU: the
#: registry takes a kernel these allow (``aligned``) or refuses the node (``registry.plan_launches``). Arena
#: offsets are multiples of the graph's alignment (256 by default, but 1 is allowed) and a view may start at
#: any byte of its root, so a user's graph can hand any kernel any address. (Row strides: the shape rules
#: that pick each kernel keep them multiples of the same alignment: H % 4, K % 8, d % 8.)
ALIGN: dict[str, tuple[int, ...]] = {
    "rms_norm_f32": (4, 4, 4), "rms_norm4_f32": (16, 16, 16), "rms_norm4_f32_f16": (16, 16, 8),
    "binary_f32": (4, 4, 4), "binary_f32_f16": (4, 4, 2), "silu_f32": (4, 4), "copy_u32": (4, 4),
    "cast_f32_f16": (4, 2), "rope_f32": (4, 4, 4), "set_rows_f32_f16": (4, 4, 2), "softmax_mask_f32": (4, 4, 4),
    "attn_kq_f16": (8, 16, 4), "attn_kqv_f16": (16, 4, 4), "attn_kqv_cl_f16": (16, 4, 4),
    "add_rms_norm4_f32": (16, 16, 16, 16, 16), "add_rms_norm4_f32_f16": (16, 16, 16, 16, 8),
    "swiglu_f32": (4, 4, 4), "swiglu_f32_f16": (4, 4, 2), "rope_set_rows_f16": (4, 4, 4, 2),
    # q, pos, K, V, mask, out: K and V by 16-byte loads (attn_mma: cp.async), attn_mma's q by float2
    **{name: (4, 4, 16, 16, 4, 4) for name in sorted(ATTN_FUSED_NAMES | {"attn_batch_f16", "attn_batch1_f16"})},
    **{name: (8, 4, 16, 16, 4, 4) for name in sorted(ATTN_MMA_NAMES)},
    **{name: (8, 4, 16, 16, 4, 2) for name in sorted(ATTN_MMA_H_NAMES)},
    "gemv_f16_f32": (16, 16, 4), "gemv_swiglu_f16_f32": (16, 16, 16, 4),
    "gemv_add_rms_f16_f32": (16, 16, 4, 16, 16, 16, 4),   # W, x, r, h, w, y, counter
    "gemm_wmma_f16_f32": (32, 16, 4), "gemm_naive_f16_f32": (2, 4, 4),
    **{name: (16, 16, 4) for name in GEMM_TC.values()}, **{name: (16, 16, 16, 4) for name in GEMM_TC_SWIGLU.values()},
    **{name: (16, 16, 4) for name in sorted(WS_PLAIN_NAMES)}, **{name: (16, 16, 16, 2) for name in sorted(WS_SWIGLU_NAMES)},
    NAIVE_F16X: (2, 2, 4), NAIVE_SWIGLU_F16X: (2, 2, 2, 2), MEMCPY: (1, 1),
}


class KernelError(MemplanError, ValueError):
    """A node the registry has no kernel for (names the node): memplan's own error (``MemplanError``), as the
    executors' ``ExecutorError`` is."""


@dataclass(frozen=True)
class Launch:
    """One kernel launch. ``early`` False: never a programmatic dependent launch (PDL), because the kernel
    reads, before its PDL wait, a tensor that a node of the step writes (``EARLY_READS``; the registry
    decides, ``registry.plan_launches``). ``carveout``: the share of the SM's L1/shared memory, in percent,
    preferred for shared memory at this launch (-1: the driver's choice; ``TC_STEP_CARVEOUT``)."""
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: tuple
    early: bool = True
    carveout: int = -1


#: CUDA's launch limits: grid x up to 2**31 - 1 blocks, y and z up to 65535; at most 1024 threads per block
GRID_X_MAX = (1 << 31) - 1
GRID_YZ_MAX = 65535
BLOCK_THREADS_MAX = 1024
#: the most dynamic shared memory a block may ask for (Hopper: 227 KB)
SMEM_MAX = 227 * 1024
INT32 = (-(1 << 31), (1 << 31) - 1)


#: per gemm_tc kernel its cluster size; per attn_mma kernel (cluster size, head size compiled in or 0, warps)
_TC_CLUSTER = {name: cl for (cl, _w), name in (*GEMM_TC.items(), *GEMM_TC_SWIGLU.items())}
_MMA_SHAPE = {**{name: (cl, 0, 4) for cl, name in ATTN_MMA.items()},
              **{name: (cl, d, 4) for (cl, d), name in ATTN_MMA_SPEC.items()},
              **{name: (cl, d, 8) for (cl, d), name in ATTN_MMA_W8.items()}}


def _chunks(n: int, most: int) -> list[tuple[int, int]]:
    """(first, count) of ``n`` items in runs of at most ``most``: a launch per run where a grid dimension
    counts the items."""
    return [(i, min(most, n - i)) for i in range(0, n, most)]


def launch_problem(ln: Launch, signature: str | None = None) -> str | None:
    """What makes ``ln`` a launch its kernel does not compute in full (llama.cu's "Needs ..." and "grid ..."
    comments), or None: CUDA's launch limits (``GRID_X_MAX``, ``GRID_YZ_MAX``, ``BLOCK_THREADS_MAX``),
    integer arguments that fit the kernel's parameter types (``signature``, ``library.SIGNATURES``: "i" is a
    32-bit int), and per kernel the shape rules it states. Why: the emulator computes every output of a
    launch whatever its grid, and the GPU refuses a grid past its limits only when the step runs (or traps
    in the kernel); a launch rule that broke a kernel's precondition would pass every CPU test unseen. The
    registry refuses such a launch naming the node (``registry.plan_launches``), the emulator asks it of every
    launch it runs, and the launch-rule property tests ask it of every rule's result."""
    k, a, (gx, gy, gz), (bx, by, bz) = ln.kernel, ln.args, ln.grid, ln.block
    if not (1 <= gx <= GRID_X_MAX and 1 <= gy <= GRID_YZ_MAX and 1 <= gz <= GRID_YZ_MAX):
        return f"grid {ln.grid} is past CUDA's limits (x 1..{GRID_X_MAX}, y and z 1..{GRID_YZ_MAX})"
    if not (min(bx, by, bz) >= 1 and bx * by * bz <= BLOCK_THREADS_MAX and bz <= 64):
        return f"block {ln.block} is past CUDA's limits (1..{BLOCK_THREADS_MAX} threads)"
    if ln.carveout > 100:   # (negative: the driver's choice; TC_STEP_CARVEOUT=150 was CUDA's invalid value at launch)
        return f"shared memory carveout {ln.carveout}% is past CUDA's 0..100"
    for i, c in enumerate(signature or ""):
        if c == "i" and i < len(a) and not INT32[0] <= a[i] <= INT32[1]:
            return f"argument {i} ({a[i]}) does not fit the kernel's 32-bit int"
    if k == MEMCPY:
        return None
    threads = bx * by * bz
    if k in ("rms_norm_f32", "rms_norm4_f32", "rms_norm4_f32_f16"):
        H, nw = a[3], a[4]
        if threads % 32:
            return f"block of {threads} threads is not whole warps (its block reduction)"
        if k != "rms_norm_f32" and (H % 4 or H // 4 > 4 * threads or (a[1] and nw % 4)):
            return f"H {H} (nw {nw}) over {threads} threads: needs H % 4 == 0, H / 4 <= 4 x threads, nw % 4 == 0"
    elif k in ("add_rms_norm4_f32", "add_rms_norm4_f32_f16"):
        H, nw = a[5], a[6]
        if threads % 32 or H % 4 or H // 4 > 4 * threads or nw % 4:
            return f"H {H} (nw {nw}) over {threads} threads: needs H % 4 == 0, H / 4 <= 4 x threads, nw % 4 == 0"
    elif k in ("gemv_f16_f32", "gemv_swiglu_f16_f32"):
        N, K, rpb = a[-3:]
        rows = 2 * N if k == "gemv_swiglu_f16_f32" else N
        if threads != 256 or K % 8 or rpb not in (1, 2, 4, 8) or (k == "gemv_swiglu_f16_f32" and rpb % 2):
            return f"K {K}, {rpb} rows per block, block {ln.block}: needs K % 8 == 0, rpb of 1, 2, 4, 8 (even for SwiGLU), 256 threads"
        if gx != math.ceil(rows / rpb):
            return f"grid {gx} for {rows} rows at {rpb} per block"
    elif k == "gemv_add_rms_f16_f32":
        N, K, rpb, nw, nb = a[7], a[8], a[9], a[10], a[11]
        if threads != 256 or K % 8 or rpb not in (1, 2, 4, 8) or N % 4 or N // 4 > 4 * nb or nb > threads or nw % 4:
            return f"N {N}, K {K}, nb {nb}, nw {nw}: needs K % 8, N % 4 == 0, N / 4 <= 4 nb, nb <= 256, nw % 4 == 0"
        if gx != math.ceil(N / rpb):
            return f"grid {gx} for {N} rows at {rpb} per block"
    elif k == "gemm_wmma_f16_f32":
        M, N, K = a[3:6]
        if not 1 <= M <= 64 or N % 16 or K % 64 or gx != N // 16 or threads != 128:
            return f"M {M}, N {N}, K {K}, grid {ln.grid}: needs 1 <= M <= 64, N % 16 == 0, K % 64 == 0, grid N / 16, 128 threads"
    elif k in TC_BUILD:
        build = TC_BUILD[k]
        cl = _TC_CLUSTER[k]
        swiglu = k in GEMM_TC_SWIGLU.values()
        M, N, K = a[4:7] if swiglu else a[3:6]
        warps = threads // 32
        rows = 2 * N if swiglu else N
        bn = TC_WARP_ROWS[build] * warps
        if build == "g":
            ok = warps == 8 and N % (128 if swiglu else 256) == 0 and K % 64 == 0 and K >= 64 * cl
        else:
            ok = warps in (4, 8) and rows % bn == 0 and K % (TC_ST[build] * cl) == 0
        if not (ok and 1 <= M <= 64 and threads % 32 == 0):
            return f"M {M}, N {N}, K {K}, {warps} warps, cluster {cl}: not a shape the {build!r} build takes"
        if gx != rows // bn * tc_groups(M, build) * cl:
            return f"grid {gx} for {rows} weight rows in blocks of {bn}, {tc_groups(M, build)} row groups, cluster {cl}"
        if dynamic_smem(ln) > min(SMEM_LIMITS[k], SMEM_MAX):
            return f"{dynamic_smem(ln)} bytes of shared memory, over the kernel's {SMEM_LIMITS[k]}"
    elif k in WS_NAMES:
        nc, wt, _st = WS_BUILDS[k]
        *_, M, N, K, cl = a
        outs = 64 * wt * nc // (1 if k in WS_PLAIN_NAMES else 2)
        if tuple(ln.block) != (32 + 128 * nc, 1, 1):
            return "its block"
        if not 1 <= cl <= PORTABLE_CLUSTER or gx % cl or (gy, gz) != (1, 1):
            return f"cluster {cl}"
        if not 1 <= M <= 64 or K % 8:
            return f"{M} rows, K {K}"
        if gx // cl * outs < N:
            return f"{gx // cl} blocks of {outs} outputs for N {N}"
    elif k in ATTN_MMA_NAMES or k in ATTN_MMA_H_NAMES:
        B, n_kv, G, heads, D = a[6:11]
        base = k[:-1] if k in ATTN_MMA_H_NAMES else k
        cl, fixed, warps = _MMA_SHAPE[base]
        if not attn_mma_takes(D) or (fixed and D != fixed) or threads != 32 * warps or heads % G:
            return f"head size {D}, {threads} threads: needs d % 16 == 0, 0 < d <= 128 (the kernel's own d), {32 * warps} threads"
        if (gx, gy) != (cl * math.ceil(B * (heads // G) / ATTN_MMA_ROWS), G):
            return f"grid {ln.grid} for {B} tokens x {heads // G} heads per KV head over {G} KV heads, cluster {cl}"
    elif k in ATTN_FUSED_NAMES:
        n_kv, G, heads, D = a[6:10]
        fixed = next((dd for dd, name in ATTN_FUSED.items() if name == k), 0)
        if not attn_fused_takes(D, n_kv) or (fixed and D != fixed) or threads != 256 or gx % (ATTN_CLUSTER * heads):
            return f"head size {D}, {n_kv} cache rows, grid {ln.grid}: not what attn_fused takes"
    elif k in ("attn_batch_f16", "attn_batch1_f16"):
        B, n_kv, G, heads, D = a[6:11]
        cl = ATTN_BATCH_CLUSTER if k == "attn_batch_f16" else 1
        if D % 8 or not 0 < D <= 128 or threads != 256 or heads % G:
            return f"head size {D}: needs d % 8 == 0, d <= 128, 256 threads"
        if (gx, gy) != (cl * math.ceil(B * (heads // G) / ATTN_BATCH_ROWS), G):
            return f"grid {ln.grid} for {B} tokens x {heads // G} heads per KV head over {G} KV heads"
    elif k == "attn_kq_f16":
        n_kv, G, D = a[3], a[4], a[6]
        if D % 4 or threads != 256 or gx != math.ceil(n_kv / 8) or gy % G:
            return f"head size {D}, {n_kv} cache rows, grid {ln.grid}: needs d % 4 == 0, grid (ceil(n_kv / 8), B x G)"
    elif k in ("attn_kqv_f16", "attn_kqv_cl_f16"):
        D = a[6]
        # (attn_kqv_f16 keeps its slices' sums and their group sums in one __shared__ float[10 * 1024]: S * d + G * d
        # floats, which d <= 1024 keeps inside it at any block; 8192 passed a d of 4096 over 1024 threads, 12288)
        most = 512 if k == "attn_kqv_cl_f16" else 1024
        if D % 8 or not 0 < D <= most or threads % (D // 8) or (k == "attn_kqv_cl_f16" and threads != 512):
            return f"head size {D}, {threads} threads: needs d % 8 == 0, d <= {most}, whole d / 8 slices"
    return None


def misaligned(ln: Launch) -> tuple[int, int] | None:
    """(argument position, bytes) of the first pointer argument of ``ln`` not aligned as its kernel needs
    (``ALIGN``), or None."""
    for i, need in enumerate(ALIGN.get(ln.kernel, ())):
        if ln.args[i] % need:
            return i, need
    return None


def aligned(ln: Launch) -> bool:
    """Whether every pointer argument of ``ln`` is aligned as its kernel needs (``ALIGN``)."""
    return misaligned(ln) is None


def _shape(graph: Graph, tid: str) -> list[int]:
    t = graph.tensor(tid)
    if "shape" not in t.attrs:
        raise KernelError(f"tensor {tid!r} has no 'shape' attr: the runtime needs shapes")
    return [int(s) for s in t.attrs["shape"]]


def _dtype(graph: Graph, tid: str) -> str:
    return str(graph.tensor(tid).attrs.get("dtype", "f32"))


def _numel(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def _ew_grid(n: int, block: int = 256) -> tuple[int, int, int]:
    return (max(1, min(math.ceil(n / block), 8192)), 1, 1)


def copy_launch(src: int, dst: int, nbytes: int) -> Launch:
    """A bit-for-bit copy of ``nbytes`` (whole 32-bit words) from ``src`` to ``dst`` on the launching stream:
    a CONT, and every staging copy a kernel then reads instead of bytes its own output overlaps."""
    return Launch("copy_u32", _ew_grid(nbytes // 4), (256, 1, 1), (src, dst, nbytes // 4))


def scratch_copy(src: int, dst: int, nbytes: int) -> Launch:
    """A bit-for-bit copy of ``nbytes`` into a scratch buffer (bytes it does not overlap): ``copy_launch`` where they
    are whole words on 4-byte boundaries, else the ``MEMCPY`` pseudo-launch, which takes any size and alignment. Why:
    staging copied with ``copy_u32`` alone, so an input of an odd number of f16 elements (x of [1, 5] under a
    product planned in place over it) could not be staged and the verified plan was refused."""
    ln = copy_launch(src, dst, nbytes)
    return ln if nbytes % 4 == 0 and aligned(ln) else Launch(MEMCPY, (1, 1, 1), (1, 1, 1), (src, dst, nbytes))


def gemv_rows_per_block(n_rows: int, num_sms: int) -> int:
    """Rows per 8-warp block: as many as still leave two blocks per SM (small N splits K instead). More
    rows per block means fewer warps per row, so each warp streams a longer run of its row with its loads
    always in flight; on the H200 8 rows beat 2 on every large matrix (lm_head 245 vs 265 us, down 29.9
    vs 32.0, q 10.6 vs 12.0: runtime.tools.profile, docs/runtime_log.md), where the H100 had favoured 2 for
    the largest. K does not enter: a long row only lengthens each warp's stream."""
    for rpb in (8, 4, 2):
        if math.ceil(n_rows / rpb) >= 2 * num_sms:
            return rpb
    return 1


def attn_mma_cluster(units: int, n_kv: int, num_sms: int) -> int:
    """Blocks that split one attn_mma query block's cache rows: the most of 8, 4, 2 that keep the grid
    within ATTN_MMA_BLOCKS_PER_SM blocks per SM and give every warp at least one 16-row step; else 1. A
    block's life is a fixed latency (q, the first cache step, two combines) plus about 0.5-0.7 us per
    16-row step of each warp, so a wider split pays only while its blocks run side by side with nothing
    else on their SM: H200, ctx 512 (``runtime.tools.attn_bench``, the kernels that know d), 8B (d 128) at
    batch 16 / 32 / 64 (32 / 64 / 128 query blocks x KV heads) best with 4 / 2 / 1 blocks each (10.2 / 11.7
    / 14.6 us against 10.8 / 12.3 / 15.1 at two blocks per SM), the 1B (d 64) likewise (7.6 / 8.0 / 9.1 us)."""
    for cl in (8, 4, 2):
        if units * cl <= ATTN_MMA_BLOCKS_PER_SM * num_sms and math.ceil(n_kv / cl) >= 64:
            return cl
    return 1


def attn_mma_split(units: int, n_kv: int, num_sms: int, d: int) -> tuple[int, int]:
    """(cluster size, warps per block) of attn_mma for ``units`` query blocks x KV heads. Where a kernel
    knows d, 8 warps split a block's cache rows (each warp's chain of 16-row steps halves; one 256-thread
    block per SM) in the widest cluster whose grid fits one wave (all SMs for clusters of 1-2,
    ATTN_MMA_W8_WAVE of them for 4-8) while a block keeps 64 rows; else 4 warps (``attn_mma_cluster``).
    H200, ctx 512, best of every (cluster, warps) pair each time: 8B batch 4 / 16 / 32 / 64 7.1 / 10.0 /
    10.6 / 12.2 us (8 warps in 8 / 2 / 2 / 1) against 8.0 / 10.1 / 11.4 / 14.7 with 4; the 1B 5.8 / 7.3 / 7.6
    / 8.2 against 6.4 / 7.5 / 7.9 / 8.8. Clusters of 4 at batch 16 (128 blocks, past the 120 one wave of
    them holds) took 16 us."""
    if ATTN_MMA_WARPS_MAX >= 8 and d in ATTN_MMA_DIMS:
        for cl in (8, 4, 2, 1):
            cap = num_sms if cl <= 2 else ATTN_MMA_W8_WAVE * num_sms
            if units * cl <= cap and (cl == 1 or math.ceil(n_kv / cl) >= 64):
                return cl, 8
    return attn_mma_cluster(units, n_kv, num_sms), 4


def attn_mma_kernel(cl: int, d: int, warps: int = 4) -> str:
    """The attn_mma kernel for clusters of ``cl``, head size ``d`` and ``warps`` (4, or 8 where ATTN_MMA_DIMS
    has d) per block: its own where ATTN_MMA_DIMS has d."""
    if warps == 8:
        return ATTN_MMA_W8[(cl, d)]
    return ATTN_MMA_SPEC.get((cl, d), ATTN_MMA[cl])


def attn_mma_smem(name: str) -> int:
    """Dynamic shared memory of an attn_mma kernel (or its f16-output twin): two K/V stages per warp."""
    name = name[:-1] if name in ATTN_MMA_H_NAMES else name
    return ATTN_MMA_SMEM_W8 if name in ATTN_MMA_W8_NAMES else ATTN_MMA_SMEM


def attn_mma_takes(D: int) -> bool:
    """attn_mma's head sizes: multiples of 16 up to 128 (it streams any cache length in 16-row steps)."""
    return D % 16 == 0 and 0 < D <= 128


def attn_fused_takes(D: int, n_kv: int) -> bool:
    """attn_fused's (and attn_batch's, up to d 128) head sizes and cache lengths: d / 8 a power of two up
    to 32, at most ATTN_CLUSTER x ATTN_MAXCHUNK cache rows (each block keeps its chunk's scores)."""
    d8 = D // 8
    return D > 0 and D % 8 == 0 and d8 <= 32 and not d8 & (d8 - 1) and math.ceil(n_kv / ATTN_CLUSTER) <= ATTN_MAXCHUNK


def attention_on_tensor_cores(B: int, grp: int, D: int) -> bool:
    """Whether ``attention_launch`` takes attn_mma for B tokens, ``grp`` query heads per KV head and head
    size D."""
    return B >= 2 and B * grp >= ATTN_MMA_MIN_ROWS and attn_mma_takes(D)


def attention_launch(q: int, pos: int, K: int, V: int, mask: int, out: int, B: int, n_kv: int, G: int, heads: int,
                     D: int, num_sms: int, out_f16: bool = False, tensor_cores: bool = True) -> Launch:
    """The decode-attention kernel (ROPE of q at ``pos`` unless 0, scaled KQ + mask, softmax, KQV) for B
    tokens, ``heads`` query heads over G KV heads of size D and ``n_kv`` cache rows: tensor cores
    (attn_mma) for 2+ tokens once a KV head has ATTN_MMA_MIN_ROWS query rows and D is a multiple of 16 up
    to 128 (batch 1 keeps attn_fused_f16's f32 q and probabilities, and its accuracy); attn_batch* for
    other head sizes with many query rows per KV head; else attn_fused_f16. The one rule the registry and
    ``runtime.tools.attn_bench`` share. KernelError for a shape no kernel takes (the fused group checks
    the same before it asks; a direct caller gets the error instead of a launch that would trap).
    ``out_f16``: the output in f16 (attn_mma's twins; KernelError where another kernel would be needed).
    ``tensor_cores`` False: never attn_mma (whose float2 loads need q on 8 bytes; the others read it by words)."""
    if B < 1 or n_kv < 1 or G < 1 or heads < G or heads % G or D < 8 or D % 8:
        raise KernelError(f"attention: no kernel for {B} tokens, {heads} heads over {G} KV heads of size {D} "
                          f"and {n_kv} cache rows (needs heads a multiple of the KV heads, d a positive multiple of 8)")
    mma = tensor_cores and attention_on_tensor_cores(B, heads // G, D)
    if not mma and not attn_fused_takes(D, n_kv):
        raise KernelError(f"attention: head size {D} at {B} tokens and {n_kv} cache rows needs d / 8 a power of "
                          f"two up to 32 and at most {ATTN_CLUSTER * ATTN_MAXCHUNK} cache rows (or the tensor-core "
                          f"kernel: 2+ tokens, {ATTN_MMA_MIN_ROWS}+ query rows per KV head, d a multiple of 16 up to 128)")
    grp = heads // G
    scalars = (n_kv, G, heads, D, 1.0 / math.sqrt(D), math.log2(ROPE_BASE))
    ptrs = (q, pos, K, V, mask, out)
    if mma:
        qblocks = math.ceil(B * grp / ATTN_MMA_ROWS)
        cl, warps = attn_mma_split(qblocks * G, n_kv, num_sms, D)
        name = attn_mma_kernel(cl, D, warps)
        return Launch(ATTN_MMA_H[name] if out_f16 else name, (cl * qblocks, G, 1), (32 * warps, 1, 1),
                      ptrs + (B, *scalars))
    if out_f16:
        raise KernelError(f"attention: an f16 output at {B} tokens, {grp} query rows per KV head and head size {D} "
                          "needs the tensor-core kernel (2+ tokens, 8+ rows per KV head, d a multiple of 16 up to 128)")
    if B * grp >= 4 * ATTN_BATCH_ROWS and D <= 128:   # several tokens: read each KV head once per block
        qblocks = math.ceil(B * grp / ATTN_BATCH_ROWS)
        split = qblocks * G < num_sms // 2
        return Launch("attn_batch_f16" if split else "attn_batch1_f16",
                      ((ATTN_BATCH_CLUSTER if split else 1) * qblocks, G, 1), (256, 1, 1), ptrs + (B, *scalars))
    return Launch(ATTN_FUSED.get(D, ATTN_FUSED[0]), (ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1), ptrs + scalars)


def tc_build(M: int) -> str:
    """The gemm_tc build that takes M rows of x in one block: the narrow one keeps twice the weight loads
    in flight."""
    return "" if M <= TC_MAX_ROWS[""] else "w"


#: 17..64 rows of x take a 32-rows-per-warp build on matrices with at least this many 16-row warp tiles
#: per SM (the FFN and LM heads of the 8B and 1B configs); otherwise the narrow build in groups of 16 rows
#: (``tc_choice``)
TC_WIDE_TILES_PER_SM = 3
#: the widest matrices (the LM heads), at least this many 32-row warp tiles per SM, take 32 weight rows per
#: warp at any row count (``tc_choice``)
TC_WIDEST_TILES_PER_SM = 6


def tc_groups(M: int, build: str) -> int:
    """Blocks per weight tile: M rows of x in groups of the build's most (llama.cu gemm_tc_body)."""
    return math.ceil(M / TC_MAX_ROWS[build])


def tc_smem_bytes(M: int, build: str) -> int:
    """Dynamic shared memory of a gemm_tc launch: the f32 x super-tile it stages and two f16 copies, for
    the rows of x one block takes (the build's most; more rows are split over blocks), or a cluster's
    partial tile (those rows by an 8-warp block's weight rows) if that is more."""
    st = TC_ST[build]
    if build == "g":   # the ring (weights, f32 x, an mbarrier each), two f16 x stages and 1 KB to align, any M
        return WG_STAGES * (8 * TC_WARP_ROWS["g"] * st * 2 + 8) + WG_XSTAGES * (64 * st * 4 + 8) + 2 * 64 * st * 2 + 1024
    mb = min(M, TC_MAX_ROWS[build])
    mp = 16 * math.ceil(mb / 16)   # a block's rows of x
    return max(mp * st * 4 + 2 * mp * (st + 32) * 2, mb * 8 * TC_WARP_ROWS[build] * 4)


#: the most dynamic shared memory a gemm_tc launch asks for (the wgmma build: 209 KB; the register builds at
#: most 72 KB)
TC_SMEM_MAX = max(tc_smem_bytes(TC_MAX_ROWS[b], b) for b in TC_BUILDS)
#: the most dynamic shared memory of each kernel that asks for more than the 48 KB a block gets unasked
#: (set as the kernel's limit when the library loads)
SMEM_LIMITS = {**{name: tc_smem_bytes(TC_MAX_ROWS[TC_BUILD[name]], TC_BUILD[name]) for name in GEMM_TC_NAMES},
               **{name: attn_mma_smem(name) for name in ATTN_MMA_NAMES | ATTN_MMA_H_NAMES},
               **{name: ws_smem_bytes(name) for name in WS_NAMES}}


def dynamic_smem(ln: Launch) -> int:
    """Bytes of dynamic shared memory ``ln`` is launched with (0 for every kernel but gemm_tc and attn_mma)."""
    if ln.kernel in ATTN_MMA_NAMES or ln.kernel in ATTN_MMA_H_NAMES:
        return attn_mma_smem(ln.kernel)
    if ln.kernel in WS_NAMES:
        return ws_smem_bytes(ln.kernel)
    build = TC_BUILD.get(ln.kernel)
    if build is None:
        return 0
    rows = ln.args[3] if ln.kernel in GEMM_TC.values() else ln.args[4]   # SwiGLU: Wg, Wu, x, y, M, ...
    return tc_smem_bytes(rows, build)


def gemm_tc_fits(M: int, N: int, K: int, warps: int, cl: int, build: str | None = None) -> bool:
    """Whether gemm_tc computes W [N, K] x [M, K] with ``warps`` (4 or 8) of 16 rows per block and K split
    over ``cl`` blocks (llama.cu: whole W tiles, whole super-tiles per block); ``build`` defaults to the
    one that takes M rows in one block (the narrow build takes any M up to 64 in groups of 16; the wgmma
    build splits K's 64-k stages as evenly as they go, over any of WG_CLUSTERS). W and x
    must also start on 16 bytes, as for every vector kernel here (``ALIGN``; ``product_launch`` takes the
    naive kernel for operands that do not)."""
    build = tc_build(M) if build is None else build
    # the wgmma build splits K's 64-k stages as evenly as they go (llama.cu gemm_wg_body); the others evenly
    k_ok = K % TC_ST[build] == 0 and K // TC_ST[build] >= cl if build == "g" else K % (TC_ST[build] * cl) == 0
    return (warps in ((8,) if build == "g" else (4, 8)) and 1 <= M <= 64 and N > 0 and K > 0 and N % (TC_WARP_ROWS[build] * warps) == 0
            and k_ok and (cl, build) in GEMM_TC)


def gemm_tc_launch(W: int, x: int, y: int, M: int, N: int, K: int, warps: int, cl: int,
                   build: str | None = None) -> Launch:
    """The gemm_tc launch record for one shape (``gemm_tc_fits``): a block per (weight tile, group of
    rows of x, cluster rank)."""
    build = tc_build(M) if build is None else build
    return Launch(GEMM_TC[cl, build], (N // (TC_WARP_ROWS[build] * warps) * cl * tc_groups(M, build), 1, 1),
                  (32 * warps, 1, 1), (W, x, y, M, N, K))


def gemm_tc_swiglu_launch(Wg: int, Wu: int, x: int, y: int, M: int, N: int, K: int, num_sms: int,
                          choice: tuple[str, int, int] | None = None, wgmma: bool = False) -> Launch | None:
    """silu(x Wg^T) * (x Wu^T) in one gemm_tc pass over both [N, K] matrices, built, split over K and
    blocked like each of the two GEMMs (``tc_choice``, or ``choice`` = (build, warps, cluster size)), so
    the result is theirs then swiglu_f32 bit for bit; None if no shape fits. A warp reads half its build's
    weight rows from each matrix."""
    if choice is None:
        choice = _swiglu_choice(M, N, K, num_sms, wgmma)
    if choice is None or N % (TC_WARP_ROWS[choice[0]] // 2 * choice[1]):
        return None
    build, warps, cl = choice
    return Launch(GEMM_TC_SWIGLU[cl, build], (N // (TC_WARP_ROWS[build] // 2 * warps) * cl * tc_groups(M, build), 1, 1),
                  (32 * warps, 1, 1), (Wg, Wu, x, y, M, N, K))


def _swiglu_choice(M: int, N: int, K: int, num_sms: int, wgmma: bool = False) -> tuple[str, int, int] | None:
    """(build, warps, cluster size) of the gate/up pass. Its bits depend on the K split only (every register
    build and warp count adds a row's products in the same order; the wgmma build has its own bits, so its
    GEMMs' pass is its own SwiGLU twin), so it keeps each GEMM's split (``tc_choice``)
    and, since it reads 2 N weight rows, takes the build and warps of a 2N-row matrix when that has the
    same split (8B FFN at 64 rows: the 32 x 64 build, 93 vs 111 us, ``runtime.tools.gemm_bench``); else
    above 32 rows the 32 x 64 build rather than groups of 32, which would stream both matrices twice (1B
    FFN at 64 rows 33 vs 41 us); else the GEMMs' build in the 2N-row matrix's warps (1B FFN at 4 rows: 8
    warps 21.9 vs 4 warps 25.6 us)."""
    choice = tc_choice(M, N, K, num_sms, wgmma) if 2 <= M <= 64 else None
    if choice is None:
        return None
    build, warps, cl = choice
    if build == "g":   # the wgmma build's bits are its own: its twin, in the same split
        return choice
    pair = tc_choice(M, 2 * N, K, num_sms, wgmma)
    if pair is not None and pair[0] == "g":
        pair = None
    if pair is not None and pair[2] == cl and N % (TC_WARP_ROWS[pair[0]] // 2 * pair[1]) == 0:
        return pair
    if build == "m" and M > TC_MAX_ROWS["m"] and gemm_tc_fits(M, N, K, warps, cl, "t"):
        return "t", warps, cl
    if pair is not None and N % (TC_WARP_ROWS[build] // 2 * pair[1]) == 0:
        return build, pair[1], cl
    return choice


def gemm_tc_shape(M: int, N: int, K: int, num_sms: int, build: str | None = None) -> tuple[int, int] | None:
    """(warps per block, cluster size) of the tensor-core GEMM for W [N, K] and M rows (``build``: as in
    ``gemm_tc_fits``), or None if none fits. Each warp streams its 16 rows over its K range; a longer
    stream amortises the ramp and tail (the 8B FFN matrix took 34 us unsplit vs 40 split in two on the
    H200), but the chip needs about six streaming warps per SM to keep HBM busy
    (runtime.tools.gemm_bench). So: the fewest K splits that give that many warps; split matrices in
    4-warp blocks (spread over more SMs: 8B down projection at 16 rows 41 vs 59 us), unsplit ones in
    8-warp blocks (FFN gate 38 vs 44 us; 64 rows: lm_head 535 vs 632 us), except a narrow-build (up to 16
    rows) matrix with at least three waves of 4-warp blocks, whose 4-warp blocks balance better (16 rows:
    8B lm_head 282 vs 299 us, 1B 40.4 vs 42.0); a matrix too small for that takes the most warps it can
    get."""
    build = tc_build(M) if build is None else build
    fits = [(cl, w) for cl in (1, 2, 4, 8) for w in (4, 8) if gemm_tc_fits(M, N, K, w, cl, build)]
    if not fits:
        return None
    for cl, w in fits:
        if N // 16 * cl >= 6 * num_sms:
            many_waves = build == "" and N // 64 >= 3 * num_sms and (1, 4) in fits
            return (8 if cl == 1 and (1, 8) in fits and not many_waves else w), cl
    cl, w = max(fits, key=lambda f: (N // 16 * f[0], -f[1], -f[0]))
    return w, cl


#: a register build that the rule gives 8 K splits takes 16 (a non-portable cluster; Hopper, with
#: ``wgmma``), up to 16 rows of x (where it was measured; above, rows come in groups of blocks), when 8
#: leave fewer blocks than SMs and each block at least this many k: its warps' chains of
#: dependent weight loads (a DRAM round trip per super-tile) are then half as long. Only the 1B down
#: projection at 2-16 rows qualifies among the Llama matrices; H200, same-process steps, 3 streams: 1B batch
#: 16 0.974 -> 0.917 ms, 8 0.942 -> 0.897, 4 0.927 -> 0.883, 2 0.932 -> 0.861 (session 17). Every 8-split
#: product in 16 lost on the 8B (batch 16 4.64 -> 5.00) and on the 1B q/o (gemm_bench 6.98 -> 7.39 us).
TC_SPLIT16_MIN_K = 1024


def tc_choice(M: int, N: int, K: int, num_sms: int, wgmma: bool = False) -> tuple[str, int, int] | None:
    """``_tc_choice``, with 16 K splits instead of 8 for a register build whose 8 splits leave SMs without a
    block and each block a long stream (``TC_SPLIT16_MIN_K``), where clusters of 16 can be launched
    (``wgmma``: Hopper and cuda.bindings, which set the kernels' non-portable cluster attribute)."""
    choice = _tc_choice(M, N, K, num_sms, wgmma)
    if (wgmma and M <= TC_MAX_ROWS[""] and choice is not None and choice[0] != "g" and choice[2] == 8
            and K // 8 >= TC_SPLIT16_MIN_K):
        build, warps, _cl = choice
        blocks = gemm_tc_launch(0, 0, 0, M, N, K, warps, 8, build).grid[0]
        if blocks < num_sms and gemm_tc_fits(M, N, K, warps, 16, build):
            return build, warps, 16
    return choice


def _tc_choice(M: int, N: int, K: int, num_sms: int, wgmma: bool = False) -> tuple[str, int, int] | None:
    """(build, warps, cluster size) of the tensor-core GEMM for M (1..64) rows of x, or None if none fits.
    Up to 16 rows: a matrix neither wide nor small the 32 x 32 build in 4-warp blocks (``_mid_split``),
    an LM head the same in 8-warp blocks, any other the narrow build (``gemm_tc_shape``). Above, where a
    warp's 16 weight rows meet 64 rows of x, every warp reads four bytes of x from shared memory per weight
    byte it streams, and shared memory, not HBM, bounds the product; so on wide matrices (``TC_WIDE_TILES_PER_SM`` 16-row tiles per SM: FFN
    and LM heads) a warp takes 32 weight rows: up to 32 rows of x the "m" build (32 x 32 per warp, groups of
    32 rows above), and on the widest (six 32-row tiles per SM: LM heads) the "t" build (32 x 64) above 32
    rows. Other matrices take the narrow build in groups of 16 rows (each weight tile from HBM once, its
    groups neighbours in launch order, and G times from L2; ``_rows_split``). ``runtime.tools.gemm_bench``
    on the H200, weights rotated so L2 holds none (docs/runtime_log.md): 8B lm_head at 64 rows 377 vs 454 us
    (the 16-row-per-warp 64-row build), 32 rows 268 vs 322; 8B FFN gate 54 vs 60 and 37 vs 43. Any other
    build that fits if the chosen one does not. With ``wgmma`` (sm_90a, ``KernelLibrary.wgmma``), above 32
    rows a matrix whose K splits over enough blocks takes the wgmma build, from 17 rows a matrix of few tiles
    and long streams (``_wg_split``)."""
    if not 1 <= M <= 64:
        return None
    if wgmma:
        cl = _wg_split(M, N, K, num_sms)
        if cl is not None:
            return "g", 8, cl
    if M <= TC_MAX_ROWS[""]:
        if N // 16 < TC_WIDE_TILES_PER_SM * num_sms:
            shape = _mid_split(M, N, K, num_sms)
            if shape is not None:
                return "m", *shape
        if N // 32 >= TC_WIDEST_TILES_PER_SM * num_sms:   # LM heads: 32 rows per warp (8B 264 vs 272 us)
            shape = _blocks_split(M, N, K, num_sms, "m")
            if shape is not None:
                return "m", *shape
        for build in ("", "w"):
            shape = gemm_tc_shape(M, N, K, num_sms, build)
            if shape is not None:
                return build, *shape
        return None
    order: tuple[str, ...] = ("", "w")
    if N // 16 >= TC_WIDE_TILES_PER_SM * num_sms:
        if M > TC_MAX_ROWS["m"]:
            order = ("t", "m", "", "w") if N // 32 >= TC_WIDEST_TILES_PER_SM * num_sms else ("m", "t", "", "w")
        elif N // 32 >= TC_WIDE_TILES_PER_SM * num_sms:
            order = ("m", "", "w")
        else:
            order = ("", "m", "w")
    for build in order:
        shape = _rows_split(M, N, K, num_sms, build) if build in ("", "w") else _blocks_split(M, N, K, num_sms, build)
        if shape is not None:
            return build, *shape
    return None


#: the wgmma build: the fewest K splits that give at least this many blocks per SM, each streaming at least
#: WG_MIN_STAGES stages of 64 k (``_wg_split``)
WG_BLOCKS_PER_SM = 0.4
WG_MIN_STAGES = 8
#: ... except for matrices of at most WG_FILL_TILES tiles per SM: as many blocks as one wave of clusters
#: holds, WG_WAVE per SM for clusters of 3 or more (H200, one 209 KB block per SM: 117 of 132 SMs in clusters
#: of 3, 120 of 4, 110 of 5, 102 of 6, 105 of 7, 120 of 8; cuOccupancyMaxActiveClusters), every SM for 1 or 2
WG_FILL_TILES = 0.125
WG_WAVE = 0.75
#: the fewest rows of x that take the wgmma build (``tc_choice``)
WG_MIN_ROWS = 33
#: ... and of a matrix of few tiles (``WG_FILL_TILES``), whose K splits fill a wave of SMs, if every block
#: then streams WG_FILL_MIN_STAGES stages at least
WG_FILL_MIN_ROWS = 17
WG_FILL_MIN_STAGES = 16


def _wg_split(M: int, N: int, K: int, num_sms: int) -> int | None:
    """Cluster size of the wgmma build ("g", 8 warps, 256 weight rows per block, one block per SM) for
    17..64 rows of x, or None. Each block streams at least ``WG_MIN_STAGES`` stages (its ring holds 4;
    shorter streams are mostly ramp) and the blocks number ``WG_BLOCKS_PER_SM`` per SM at least. A matrix of
    few tiles (``WG_FILL_TILES`` per SM: the hidden-size ones, q/o and down) takes as many blocks as one
    wave of clusters holds, since a block streams at most about 36 GB/s (8B down at 64 rows, clusters of 4
    -> 6, 64 -> 96 blocks: 50 -> 43 us, q/o 20 -> 18); a wider one the fewest splits that give enough blocks
    (the gate/up pass, which shares its GEMMs' split, runs twice their blocks: 8B 68 us unsplit, 76 in two).
    From 17 to 32 rows (``WG_FILL_MIN_ROWS``) only a matrix of few tiles whose blocks then stream
    ``WG_FILL_MIN_STAGES`` stages: the down projections (same-process step, multi-stream: 8B batch 32 5.97
    -> 5.76 ms, 24 5.82 -> 5.61, 17 5.88 -> 5.65; 1B 1.48 -> 1.42, 1.48 -> 1.38, 1.43 -> 1.36). With the 8B
    q/o too (10 stages) one stream gained but the multi-stream step lost 1-2%: its one block per SM
    crowds out the K/V products the side streams run beside q.
    H200, ``runtime.tools.gemm_bench`` at 64 rows against the register builds the registry picked: 8B lm_head
    267 vs 351 us, FFN gate/up pass 67 vs 92, down 50 vs 70, q/o 20 vs 23; 1B lm_head 40 vs 47, gate/up pass
    27 vs 32, down 20 vs 25. The K/V matrices (too few blocks) and the 1B q/o (4 stages per block at 64
    blocks) lost (8B K/V 12.8 vs 13.3 us only at 8 splits; 1B q/o 10.6 vs 9.6) and keep the register builds,
    as do wide matrices at 32 rows and fewer (8B lm_head 261 vs 247 us at 32 rows) and everything at 16 or
    fewer (the down projections from 9 rows: 8B batch 16 5.26 -> 5.28 ms, 1B 1.18 -> 1.22)."""
    tiles = N // (TC_WARP_ROWS["g"] * 8)
    few = tiles <= WG_FILL_TILES * num_sms
    if M < WG_MIN_ROWS and (M < WG_FILL_MIN_ROWS or not few):
        return None
    fits = [cl for cl in WG_CLUSTERS if gemm_tc_fits(M, N, K, 8, cl, "g") and K // TC_ST["g"] // cl >= WG_MIN_STAGES]
    if few:
        wave = [cl for cl in fits if tiles * cl <= (1 if cl <= 2 else WG_WAVE) * num_sms]
        cl = max(wave, key=lambda c: tiles * c, default=None)
    else:
        cl = next((c for c in fits if tiles * c >= WG_BLOCKS_PER_SM * num_sms), None)
    if cl is None or tiles * cl < WG_BLOCKS_PER_SM * num_sms:
        return None
    return cl if M >= WG_MIN_ROWS or K // TC_ST["g"] // cl >= WG_FILL_MIN_STAGES else None


#: a matrix that is neither wide nor small takes, up to 16 rows of x, the 32 x 32 build in 4-warp blocks if
#: its K can be split over enough blocks for this many per SM (``_mid_split``)
TC_MID_BLOCKS_PER_SM = 0.9


def _mid_split(M: int, N: int, K: int, num_sms: int) -> tuple[int, int] | None:
    """(4, cluster size) of the 32 x 32 build ("m") in 4-warp blocks for a matrix that is neither wide nor
    small, up to 16 rows of x: the most K splits that keep at most two blocks per SM, if they give at least
    ``TC_MID_BLOCKS_PER_SM``; else None (the narrow build's rules). Since every 32-k chunk issues its a0 then
    its a1 products (llama.cu), the 32 x 32 warp tile, which reads half the x per weight byte, beats the narrow
    build on these: H200, ``runtime.tools.gemm_bench``, 8B q/o at 2 / 16 rows 13.3 / 13.8 vs 16.5 / 15.0 us,
    8B down 35.6 / 34.6 vs 42.2 / 39.3, 1B q/o 6.6 / 6.9 vs 7.2 / 7.1; the 8B and 1B K/V matrices (64 and 32
    blocks at the most splits) stay narrow (7.1 vs 7.5, 4.2 vs 4.8). The 8B step with it, same process:
    batch 4 5.06 vs 5.26 ms, batch 16 5.30 vs 5.44 (multi-stream graphs; one stream 5.25 vs 5.56, 5.56 vs
    5.78). At 17-32 rows it was mixed (8B batch 32 multi-stream 6.24 vs 6.04 ms, 1B 1.41 vs 1.51): not taken."""
    tiles = N // (TC_WARP_ROWS["m"] * 4)   # blocks per K split (one group: at most 16 rows)
    fits = [cl for cl in (1, 2, 4, 8) if gemm_tc_fits(M, N, K, 4, cl, "m") and tiles * cl <= 2 * num_sms]
    if not fits or tiles * fits[-1] < TC_MID_BLOCKS_PER_SM * num_sms:
        return None
    return 4, fits[-1]


def _splits_that_fit(M: int, N: int, K: int, build: str) -> tuple[int, list[int]] | None:
    """8 warps per block (4 if the weight tiles need them) and the cluster sizes that fit with them."""
    for warps in (8, 4):
        cls = [cl for cl in (1, 2, 4, 8) if gemm_tc_fits(M, N, K, warps, cl, build)]
        if cls:
            return warps, cls
    return None


def _blocks_split(M: int, N: int, K: int, num_sms: int, build: str) -> tuple[int, int] | None:
    """(warps, cluster size) of the 32-rows-per-warp builds: 8-warp blocks (4 if the tiles need them) and
    the fewest K splits that give 0.8 blocks per SM (at 170-230 registers a block of 8 warps has the SM to
    itself), else the most that fit. 8B FFN gate at 64 rows (two groups): 112 blocks 54 us vs 224 blocks
    (split in two) 63; 1B: 64 blocks 29 us vs 128 blocks 21 (``runtime.tools.gemm_bench``)."""
    fit = _splits_that_fit(M, N, K, build)
    if fit is None:
        return None
    warps, cls = fit
    blocks = N // (TC_WARP_ROWS[build] * warps) * tc_groups(M, build)
    for cl in cls:
        if blocks * cl >= 0.8 * num_sms:
            return warps, cl
    return warps, cls[-1]


def _rows_split(M: int, N: int, K: int, num_sms: int, build: str) -> tuple[int, int] | None:
    """(warps, cluster size) above 16 rows of x: 8-warp blocks (4 if the tiles need them) and the fewest K
    splits, at least two, that give the HBM stream ``7.5`` (64-row build) or ``1.9`` (narrow groups, whose
    G blocks per tile add warps that read from L2) weight-streaming warps per SM (64 rows: 8B lm_head 448
    vs 512 us unsplit, FFN gate 59 vs 69; 8B down in groups 71 vs 109 unsplit and 97 split in four, 1B
    down 28 vs 38 split in four); else the most splits that fit. Fitted on the 8B and 1B matrices at 32
    and 64 rows (``runtime.tools.gemm_bench``)."""
    fit = _splits_that_fit(M, N, K, build)
    if fit is None:
        return None
    warps, cls = fit
    per_sm = 7.5 if build == "w" else 1.9
    for cl in cls:
        if cl >= 2 and N // 16 * cl >= per_sm * num_sms:
            return warps, cl
    return warps, cls[-1]


def mul_mat_launch(W: int, x: int, y: int, M: int, N: int, K: int, num_sms: int = 132, wgmma: bool = False) -> Launch:
    """f16 W [N, K] times f32 x [M, K] -> y [M, N]: GEMV at batch 1, tensor cores up to 64, else naive (by
    shape alone: ``product_launch`` also asks the addresses)."""
    if M == 1 and K % 8 == 0:
        rpb = gemv_rows_per_block(N, num_sms)
        return Launch("gemv_f16_f32", (math.ceil(N / rpb), 1, 1), (256, 1, 1), (W, x, y, N, K, rpb))
    choice = tc_choice(M, N, K, num_sms, wgmma) if 2 <= M <= 64 else None
    if choice is not None:
        build, warps, cl = choice
        return gemm_tc_launch(W, x, y, M, N, K, warps, cl, build)
    if 1 <= M <= 64 and N % 16 == 0 and K % 64 == 0:
        return Launch("gemm_wmma_f16_f32", (N // 16, 1, 1), (128, 1, 1), (W, x, y, M, N, K))
    return Launch("gemm_naive_f16_f32", (math.ceil(M * N / 128), 1, 1), (128, 1, 1), (W, x, y, M, N, K))


def product_launch(W: int, x: int, y: int, M: int, N: int, K: int, num_sms: int = 132, wgmma: bool = False) -> Launch:
    """``mul_mat_launch`` at these addresses: its kernel, or gemm_naive_f16_f32 on the same arguments where a
    pointer it reads by vector loads is not aligned as they need (``ALIGN``: a user's view at an odd offset,
    a graph of alignment under 16; the GEMV, gemm_tc and gemm_wmma would fault). One thread per output,
    element loads. (``mul_mat_launch`` itself is the shape rule that tools and tests ask with any address.)"""
    ln = mul_mat_launch(W, x, y, M, N, K, num_sms, wgmma)
    if aligned(ln):
        return ln
    return Launch("gemm_naive_f16_f32", (math.ceil(M * N / 128), 1, 1), (128, 1, 1), (W, x, y, M, N, K))


#: gemm_ws cluster sizes: at most the portable 8 (``ws_cluster``)
WS_MAX_CLUSTER = PORTABLE_CLUSTER


def ws_cluster(tiles: int, K: int, num_sms: int) -> int:
    """The K split of a gemm_ws launch of ``tiles`` weight tiles. Few tiles (K and V): split in two. Alone
    they ran fastest over about 64 SMs (1B K/V at 64 rows: 5.3 us in 8 x 8 blocks, 6.4 in 8 x 4), but in a
    step they run beside q on the side streams, and their blocks took q's SMs: H200, 3-stream step, same
    process (session 23), 1B at 17 / 24 / 32 / 48 / 64 rows 1.044 / 1.102 / 1.075 / 1.124 / 1.163 ms with 64
    blocks each, 1.018 / 1.028 / 1.033 / 1.055 / 1.085 split in two, 1.018 / 1.035 / 1.056 / 1.039 / 1.063
    unsplit; 8B at 32 / 64 5.060 / 5.220 -> 4.980 / 5.066 (split in two). One stream pays 0-5% for it (1B
    at 32: 1.167 -> 1.191; 8B 5.451 -> 5.516). Many tiles: one block per tile unless K is long
    enough that a split still streams 40 stages per block and one wave holds it (clusters of 3 or more are
    placed per GPC: a wave of them holds about 3/4 of the SMs). H200, 64 rows, us (session 22): 1B q/o
    7.8 (32 blocks) vs 9.3 (64); 1B down 15.8 (32 x 3) vs 17.9 (x 2) vs 21.8 (x 4); 8B down 36.2 (64 x 2) vs
    41.9 (x 1) vs 45.4 (x 3)."""
    tk = -(-K // 64)
    if tiles < 32:
        return max(1, min(2, tk // 2))
    cl = 1
    while (cl < WS_MAX_CLUSTER and tk / (cl + 1) >= 40
           and tiles * (cl + 1) <= (num_sms if cl + 1 <= 2 else 0.75 * num_sms)):
        cl += 1
    return cl


def ws_plain_build(N: int, num_sms: int) -> str:
    """The plain gemm_ws build of an N-row product: 64-row blocks while one wave holds them; wider products
    (an LM head) take 256-row blocks, which read each x byte once per 256 weight rows instead of 64."""
    return WS_PLAIN if -(-N // 64) <= num_sms else "gemm_ws4_f16x"


def _ws_ok(M: int, K: int, addrs, wgmma: bool) -> bool:
    """Whether gemm_ws takes the product: sm_90a, at most 64 rows, 16-byte rows and 16-byte aligned
    operands (the tensor maps' requirements)."""
    return wgmma and 1 <= M <= 64 and K % 8 == 0 and all(a % 16 == 0 for a in addrs)


def mul_mat_f16x_launch(W: int, x: int, y: int, M: int, N: int, K: int, num_sms: int = 132,
                        wgmma: bool = False) -> Launch:
    """f16 W [N, K] times an f16 x [M, K] -> f32 y [M, N]: gemm_ws (sm_90a, up to 64 rows), else naive."""
    if _ws_ok(M, K, (W, x), wgmma):
        name = ws_plain_build(N, num_sms)
        nc, wt, _st = WS_BUILDS[name]
        tiles = -(-N // (64 * wt * nc))
        cl = ws_cluster(tiles, K, num_sms)
        return Launch(name, (tiles * cl, 1, 1), (32 + 128 * nc, 1, 1), (W, x, y, M, N, K, cl))
    return Launch(NAIVE_F16X, (math.ceil(M * N / 128), 1, 1), (128, 1, 1), (W, x, y, M, N, K))


def swiglu_f16x_launch(Wg: int, Wu: int, x: int, y: int, M: int, N: int, K: int, num_sms: int = 132,
                       wgmma: bool = False) -> Launch:
    """silu(x Wg^T) * (x Wu^T) -> f16 y [M, N] for an f16 x, gate and up [N, K] read in one pass: gemm_ws's
    SwiGLU builds (blocks of 64 gate + 64 up rows while they fit one wave, else 128 + 128: 1B 22.8 us, 8B
    62.7 at 64 rows, against 27.1 and 67.1 for the f32-x pass), else naive."""
    if _ws_ok(M, K, (Wg, Wu, x), wgmma):
        name = "gemm_ws2_swiglu_f16x" if -(-2 * N // 128) <= num_sms else "gemm_ws4_swiglu_f16x"
        nc, wt, _st = WS_BUILDS[name]
        tiles = -(-2 * N // (64 * wt * nc))
        cl = ws_cluster(tiles, K, num_sms)
        return Launch(name, (tiles * cl, 1, 1), (32 + 128 * nc, 1, 1), (Wg, Wu, x, y, M, N, K, cl))
    return Launch(NAIVE_SWIGLU_F16X, (math.ceil(M * N / 128), 1, 1), (128, 1, 1), (Wg, Wu, x, y, M, N, K))


#: rows of x (a step's weight products') at which its kernels launch plainly by default
#: (``Executor(pdl_policy="auto")``; programmatic dependent launch at every other count). Measured side by
#: side on the H200 (multi-stream graphs, docs/runtime_log.md): PDL gained at batch 1 (8B 4%, 1B 9%, session 8)
#: and 16 (8B 0.4%, 1B 4.5%); session 16, with one split per step and the wgmma build triggering early
#: (``WG_TRIGGER``, as built): at 48 / 64 rows 8B 1.2% / 1.4%, 1B 4.1% / 4.0% faster; at 24 / 32 rows the
#: 8B 0.9% / 1.0% slower, the 1B 2.2% / 1.8% faster (without the trigger: 8B 2.4% / 3.5% slower, 1B 3.8% /
#: 2.3% faster): a wash, left plain as before. Session 22: a step whose products read f16 x (gemm_ws, which
#: streams its weights before its PDL wait) takes PDL at these rows too: 1B at 24 / 32 rows 1.243 / 1.262 ms
#: plain, 1.109 / 1.149 with PDL (3 streams, one process).
PDL_OFF_ROWS = range(17, 33)


def pdl_by_default(rows: int, f16_x: bool = False) -> bool:
    """Whether a step whose weight products have ``rows`` rows of x (``f16_x``: some of them an f16 x, the
    runtime's f16-activation graphs) launches with PDL by default."""
    return f16_x or rows not in PDL_OFF_ROWS


def weight_products_read_f16(graph: Graph) -> bool:
    """Whether a MUL_MAT by a 2-D weight in ``graph`` multiplies an f16 x (gemm_ws or its naive twin)."""
    # (a shape attr that is no list is the registry's KernelError later, not a TypeError here)
    return any(n.op == "MUL_MAT" and len(n.inputs) == 2 and graph.tensors[graph.root[graph.node_inputs[ni][0]]].kind == "weight"
               and isinstance(shp := graph.tensor(n.inputs[0]).attrs.get("shape"), (list, tuple)) and len(shp) == 2
               and graph.tensor(n.inputs[1]).attrs.get("dtype") == "f16"
               for ni, n in enumerate(graph.nodes))


def weight_product_rows(graph: Graph) -> int:
    """The most rows of x that a MUL_MAT by a weight multiplies in ``graph`` (0 if it has none). A weight
    is a tensor whose root has kind "weight" and that no node writes (a KV cache is weight-kind but
    written by SET_ROWS: its products are attention, not weight streaming); views count as their root."""
    written = {graph.root[t] for outs in graph.node_outputs for t in outs}
    rows = 0
    for ni, n in enumerate(graph.nodes):
        if n.op != "MUL_MAT" or len(n.inputs) != 2:
            continue
        w = graph.root[graph.node_inputs[ni][0]]
        if graph.tensors[w].kind != "weight" or w in written:
            continue
        shp = graph.tensor(n.inputs[1]).attrs.get("shape")
        if shp is None:
            continue   # no shape: the registry says so
        # (as ``check_node`` refuses it: ``int()`` of each dim was a raw ValueError or TypeError here, from
        # ``plan_step`` and the executors' PDL policy, for a shape ['a'], 16 or [None, 16])
        if (not isinstance(shp, (list, tuple)) or not shp
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shp)):
            raise KernelError(f"node {n.id!r}: tensor {n.inputs[1]!r} has shape {shp!r}, not a list of positive "
                              "integers")
        rows = max(rows, _numel(list(shp)) // shp[-1])
    return rows


def _rows(graph: Graph, tid: str) -> int:
    shp = _shape(graph, tid)
    return _numel(shp) // shp[-1]


def _overlaps(graph: Graph, addr, a: str, b: str) -> bool:
    """Whether tensors ``a`` and ``b`` share a byte at their bound addresses."""
    aa, ab = addr(a), addr(b)
    return aa < ab + graph.tensor(b).size and ab < aa + graph.tensor(a).size


def over_inputs(graph: Graph, node) -> list[str]:
    """The outputs of ``node`` that a plan may put over its inputs: its in-place outputs, and every output that is a
    view of the root of one of its inputs (a node writing one view of a tensor and reading another, as a KV cache's
    rows moved within it, ``CONT(view) -> view``: the contract's rule 3 is about two roots, so nothing keeps such
    views apart). Only the in-place ones were staged: a copy moving rows [512, 1536) of a root to [0, 1024) ran as
    ``copy_u32`` over its own source (blocks overwrote elements others had yet to read), a product into the view of
    its x's bytes wrote rows of y while other blocks still read x."""
    roots = {graph.root[graph.tensor_index[i]] for i in node.inputs}
    return list(dict.fromkeys([o for o, _i in node.inplace]
                              + [o for o in node.outputs if graph.root[graph.tensor_index[o]] in roots]))


def _alias_ok(graph: Graph, addr, writes, reads) -> bool:
    """A fused kernel may write a tensor over one it reads only in place (same start address: the same
    thread reads an element before writing it); any other overlap is left to separate kernels."""
    return not any(addr(r) != addr(w) and _overlaps(graph, addr, w, r) for w in writes for r in reads)


def _f16_out_ok(graph: Graph, addr, y: str, reads) -> bool:
    """An f16 output (f16_acts graphs) may not overlap what its kernel reads at all, in place included: its
    elements are half as wide, so element i lands on an f32 input's element i / 2, which another thread
    may not have read yet."""
    return not any(_overlaps(graph, addr, y, r) for r in reads)


def _rms_norm(graph: Graph, addr, x: str, w: str | None, y: str) -> Launch:
    shp = _shape(graph, x)
    H = shp[-1]
    rows = _numel(shp) // H
    nw = _numel(_shape(graph, w)) if w else 1
    args = (addr(x), addr(w) if w else 0, addr(y), H, nw, RMS_EPS)
    # float4 path, at most 4 float4 per thread; also for a lone RMS_NORM (no w): then a norm group run node
    # by node (RMS_NORM, then MUL) sums the squares in the order of its fused kernels, bit for bit
    # (x, w or y not on 16 bytes, or an f16 y not on 8: its float4 accesses would fault; the scalar kernel)
    if H % 4 == 0 and H // 4 <= 4 * 1024 and (w is None or nw % 4 == 0):
        block = min(1024, max(32, 32 * math.ceil(H / 16 / 32)))
        four = Launch("rms_norm4_f32", (rows, 1, 1), (block, 1, 1), args)
        if aligned(replace(four, kernel="rms_norm4_f32_f16") if _dtype(graph, y) == "f16" else four):
            return four
    block = min(1024, max(32, 32 * math.ceil(H / 4 / 32)))
    return Launch("rms_norm_f32", (rows, 1, 1), (block, 1, 1), args)


def broadcast_problem(graph: Graph, x: str, b: str) -> str | None:
    """Why repeating ``b``'s elements in order over ``x`` (binary_f32 and the fused norms read element i of a row
    block as ``b[i % nb]``) is not the broadcast ``b``'s shape means, or None. ggml's repeat (each dimension of
    ``b`` divides ``x``'s) is a flat repeat when ``b``'s shape, leading 1s aside, is ``x``'s trailing dimensions
    but for its first, which divides ``x``'s there: [H], [1, H] or [2] over [B, H]. A column ([B, 1] over [B, H]:
    row b scaled by element b) was run as a flat repeat, silently other values than the graph means."""
    xs, bs = _shape(graph, x), _shape(graph, b)
    if _numel(bs) in (1, _numel(xs)):
        return None   # one scalar ([1], [1, 1]: every element), or elementwise whatever the split into dimensions
    while bs and bs[0] == 1:
        bs = bs[1:]
    k = len(bs)
    if k and k <= len(xs) and bs[1:] == xs[len(xs) - k + 1:] and xs[len(xs) - k] % bs[0] == 0:
        return None
    return (f"{b!r} of shape {_shape(graph, b)} broadcasts over {x!r} of shape {xs} other than the kernels repeat "
            "it (its elements in order: its shape must be the other's trailing dimensions, the first one dividing)")


def commuted(graph: Graph, ins) -> tuple[str, str]:
    """An ADD's or MUL's operands as binary_f32 takes them: the one it repeats (``b[i % nb]``) second. Both ops
    commute bit for bit (IEEE ``a + b == b + a``, ``a * b == b * a``; NaN payloads aside), so a smaller,
    broadcast first operand (``ADD(b [H], x [B, H])``, ``MUL(s [1], x)``) is passed second: the kernel read
    only the first operand's elements and refused it. Equal element counts keep the graph's order."""
    a, b = ins
    return (b, a) if _numel(_shape(graph, a)) < _numel(_shape(graph, b)) else (a, b)


def _nested(graph: Graph, a: str, b: str) -> bool:
    """Whether tensors ``a`` and ``b`` of one root lie one inside the other (their bytes in the root)."""
    ia, ib = graph.tensor_index[a], graph.tensor_index[b]
    (lo_a, hi_a), (lo_b, hi_b) = ((graph.root_offset[i], graph.root_offset[i] + graph.tensors[i].size) for i in (ia, ib))
    return (lo_b <= lo_a and hi_a <= hi_b) or (lo_a <= lo_b and hi_b <= hi_a)


def view_op_outputs_apart(graph: Graph, node) -> list[str]:
    """The outputs of view op ``node`` that are no view of its input's bytes: of another root than its inputs', or
    (one input) at other bytes of its root than the input's (neither range holds the other). ``_view_op_launches``
    copies its input into such an output; the others it launches nothing for."""
    ins = node.inputs
    roots = {graph.root[graph.tensor_index[t]] for t in ins}
    return [o for o in node.outputs if graph.root[graph.tensor_index[o]] not in roots
            or (len(ins) == 1 and not _nested(graph, o, ins[0]))]


def _view_op_launches(graph: Graph, addr, node) -> list[Launch]:
    """A view op (``VIEW_OPS``: RESHAPE, VIEW, ...) launches nothing where its output is a view of its input's root:
    the graph says they are the same bytes. An output of another root (a RESHAPE into an intermediate of its own,
    valid per the contract, which leaves op semantics to the backend) was launched nothing too, so its bytes were
    never written and its readers read whatever the plan had left there (the input a plan reused them from): now it
    is a byte copy of its input, what sharing the bytes means, and KernelError naming the node where it cannot be one
    (another size, other operand counts than one input and one output, or a copy off a word onto its input). So is
    the output of one input that is a view of the input's root at other bytes than the input's (neither range holds
    the other: ``RESHAPE(R[1:3]) -> R[0:2]``): it launched nothing, so it held the root's old bytes there ([0, 1]
    where the reshape of [1, 2] is [1, 2]), silently."""
    ins, outs = node.inputs, node.outputs
    apart = view_op_outputs_apart(graph, node)
    if not apart:
        return []
    y = apart[0]
    if len(ins) != 1 or len(outs) != 1 or graph.tensor(ins[0]).size != graph.tensor(y).size:
        raise KernelError(f"node {node.id!r}: {node.op} writes nothing, and its output {y!r} is no view of its input's "
                          f"bytes; as a byte copy it needs 1 input and 1 output of one size, not {len(ins)} and "
                          f"{len(outs)} ({', '.join(f'{t!r} of {graph.tensor(t).size} B' for t in (*ins, *outs))})")
    x, size = ins[0], graph.tensor(y).size
    if size == 0 or addr(x) == addr(y):   # (an in-place pair planned at one address: its bytes are there)
        return []
    ln = copy_launch(addr(x), addr(y), size)
    if size % 4 == 0 and aligned(ln):
        return [ln]   # (a shifted in-place pair: the registry stages the input, as for a CONT)
    if _overlaps(graph, addr, y, x):
        raise KernelError(f"node {node.id!r}: {node.op} copies {size} bytes, not whole aligned words, with its output "
                          f"{y!r} over its input {x!r} (a byte copy must not overlap what it reads)")
    return [Launch(MEMCPY, (1, 1, 1), (1, 1, 1), (addr(x), addr(y), size))]


def node_launches(graph: Graph, addr, ni: int, num_sms: int, wgmma: bool = False) -> list[Launch]:
    """The kernels of node ``ni`` alone (KernelError names a node no kernel computes)."""
    node = graph.nodes[ni]
    op, ins, outs = node.op, node.inputs, node.outputs
    if op in VIEW_OPS:
        return _view_op_launches(graph, addr, node)
    if op == COPY_OP:
        n = graph.tensor(outs[0]).size
        return [Launch(MEMCPY, (1, 1, 1), (1, 1, 1), (addr(ins[0]), addr(outs[0]), n))] if n else []
    if op == "RMS_NORM":
        return [_rms_norm(graph, addr, ins[0], None, outs[0])]
    if op in ("ADD", "MUL"):
        _require_f32(graph, node.id, ins)
        half = _dtype(graph, outs[0]) == "f16"
        if not half:
            _require_f32(graph, node.id, outs)
        elif not _f16_out_ok(graph, addr, outs[0], ins):
            raise KernelError(f"node {node.id!r}: its f16 output {outs[0]!r} overlaps an f32 input (no kernel "
                              "writes half-width elements over the ones it reads)")
        x, b = commuted(graph, ins)
        n, nb = _numel(_shape(graph, x)), _numel(_shape(graph, b))
        if nb == 0 or n % nb:
            raise KernelError(f"node {node.id!r}: cannot broadcast {nb} elements over {n}")
        if (why := broadcast_problem(graph, x, b)) is not None:
            raise KernelError(f"node {node.id!r}: {why}")
        return [Launch("binary_f32_f16" if half else "binary_f32", _ew_grid(n), (256, 1, 1),
                       (addr(x), addr(b), addr(outs[0]), n, nb, 0 if op == "ADD" else 1))]
    if op == "SILU":
        n = _numel(_shape(graph, ins[0]))
        return [Launch("silu_f32", _ew_grid(n), (256, 1, 1), (addr(ins[0]), addr(outs[0]), n))]
    if op == "CONT":
        size = graph.tensor(outs[0]).size
        if _dtype(graph, outs[0]) == "f16" and _dtype(graph, ins[0]) == "f32":   # f16_acts: rounds as it copies
            n = size // 2
            if graph.tensor(ins[0]).size != 4 * n or size % 2 or not _f16_out_ok(graph, addr, outs[0], ins):
                raise KernelError(f"node {node.id!r}: a CONT from f32 to f16 needs as many elements in and out and "
                                  "an output that does not overlap its input")
            return [Launch("cast_f32_f16", _ew_grid(n), (256, 1, 1), (addr(ins[0]), addr(outs[0]), n))]
        if graph.tensor(ins[0]).size != size:
            raise KernelError(f"node {node.id!r}: CONT needs an output of its input's size ({size} and "
                              f"{graph.tensor(ins[0]).size} bytes)")
        if size % 4:
            # (an f16 tensor of an odd element count, [1, 3]: no whole words for copy_u32, so it was refused; a byte copy
            # takes any size, where it does not overlap its input)
            if addr(outs[0]) == addr(ins[0]):
                # an in-place CONT planned on its input (``inplace {y: x}``: memplan puts an exact pair's output at
                # its input's first byte): its bytes are there already, so nothing is launched, as for a view op
                # (review of round 76: such a plan of a valid graph was refused, where an f16 [1, 4] ran in place)
                return []
            if _overlaps(graph, addr, outs[0], ins[0]):
                raise KernelError(f"node {node.id!r}: CONT of {size} bytes, not whole words, with its output over its "
                                  "input (a byte copy must not overlap what it reads)")
            return [Launch(MEMCPY, (1, 1, 1), (1, 1, 1), (addr(ins[0]), addr(outs[0]), size))]
        ln = copy_launch(addr(ins[0]), addr(outs[0]), size)
        if not aligned(ln) and addr(outs[0]) == addr(ins[0]):
            return []   # (an in-place CONT off a word, at its input's address: its bytes are there; was refused)
        if not aligned(ln) and not _overlaps(graph, addr, outs[0], ins[0]):   # (f16 views off a word)
            return [Launch(MEMCPY, (1, 1, 1), (1, 1, 1), (addr(ins[0]), addr(outs[0]), size))]   # any alignment
        return [ln]
    if op == "ROPE":
        B, heads, d = _shape(graph, ins[0])
        n = B * heads * d // 2
        return [Launch("rope_f32", (math.ceil(n / 256), 1, 1), (256, 1, 1),
                       (addr(ins[0]), addr(ins[1]), addr(outs[0]), B, heads, d, math.log2(ROPE_BASE)))]
    if op == "SET_ROWS":
        src, idx = ins
        rows = _numel(_shape(graph, idx))
        cols = _numel(_shape(graph, src)) // rows
        dst = _shape(graph, outs[0])
        if _dtype(graph, outs[0]) != "f16" or dst[-1] != cols:
            raise KernelError(f"node {node.id!r}: SET_ROWS needs an f16 destination with {cols} columns")
        # a block row per source row (blockIdx.y): more rows than a grid's y holds go in several launches,
        # each over its rows of src and idx (a prefill of 65536+ tokens was an invalid launch on the GPU)
        return [Launch("set_rows_f32_f16", (math.ceil(cols / 256), n, 1), (256, 1, 1),
                       (addr(src) + 4 * r0 * cols, addr(idx) + 4 * r0, addr(outs[0]), cols, dst[0]))
                for r0, n in _chunks(rows, GRID_YZ_MAX)]
    if op == "SOFT_MAX":
        shp = _shape(graph, ins[0])
        n = shp[-1]
        heads = shp[-2] if len(shp) >= 3 else 1
        # (one warp per row with an online max/sum measured 2.8x slower on the H100 at n=513)
        return [Launch("softmax_mask_f32", (_numel(shp) // n, 1, 1), (256, 1, 1),
                       (addr(ins[0]), addr(ins[1]), addr(outs[0]), n, heads))]
    if op == "MUL_MAT":
        return _mul_mat(graph, addr, ni, num_sms, wgmma)
    raise KernelError(f"node {node.id!r}: no kernel for op {op!r}")


#: bytes per element of the dtypes the kernels know (a tensor without a dtype attr is f32)
DTYPE_BYTES = {"f32": 4, "f16": 2, "i32": 4}
#: inputs per op with a kernel (each has one output)
ARITY = {"ADD": 2, "MUL": 2, "SILU": 1, "RMS_NORM": 1, "CONT": 1, "ROPE": 2, "SET_ROWS": 2, "SOFT_MAX": 2,
         "MUL_MAT": 2}


def copy_problem(graph: Graph, ni: int) -> None:
    """A ``COPY`` node moves one tensor's bytes into one tensor (``memplan.devices`` makes them so); the
    contract lets a hand-made graph give it other operands, which the verifier accepts. The runtime copies
    the output's size from the first input: a second input was never read, a second output never written,
    none at all was a raw IndexError, and an output larger than its input read past the input."""
    node = graph.nodes[ni]
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        raise KernelError(f"node {node.id!r}: COPY takes 1 input and 1 output, not {len(node.inputs)} and "
                          f"{len(node.outputs)}")
    src, dst = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    if dst.size > src.size:
        raise KernelError(f"node {node.id!r}: COPY writes {dst.size} bytes into {dst.id!r} from {src.id!r} of "
                          f"{src.size} bytes (it would read past it)")


def check_node(graph: Graph, ni: int) -> None:
    """KernelError naming the node and tensor, before any launch is built, where the attrs of a node's
    tensors disagree with what its kernel would touch. The kernels take every element count from the
    ``shape`` attrs and never see a tensor's byte ``size``: a shape or dtype that disagrees with the size,
    or an output with fewer elements than its kernel writes, would read or write past the tensor (into its
    arena neighbours, or past an allocation on the device). Also refused: operand counts other than the
    op's (an extra input was silently ignored, an extra output never written) and dims that are not
    positive integers (zero divided, negative ones broadcast from deep inside numpy)."""
    node = graph.nodes[ni]
    op = node.op
    if op == COPY_OP:
        copy_problem(graph, ni)
        return
    if op in VIEW_OPS or op not in ARITY:
        return   # views take byte sizes; an unknown op is node_launches' error
    if len(node.inputs) != ARITY[op] or len(node.outputs) != 1:
        raise KernelError(f"node {node.id!r}: {op} takes {ARITY[op]} input(s) and 1 output, not "
                          f"{len(node.inputs)} and {len(node.outputs)}")
    for tid in (*node.inputs, *node.outputs):
        t = graph.tensor(tid)
        dt = _dtype(graph, tid)
        if dt not in DTYPE_BYTES:
            raise KernelError(f"node {node.id!r}: tensor {tid!r} has dtype {dt!r}, which no kernel takes "
                              f"(one of {', '.join(DTYPE_BYTES)})")
        if "shape" not in t.attrs:
            continue   # the ops that need it say so (_shape); CONT copies bytes
        shp = t.attrs["shape"]
        if (not isinstance(shp, (list, tuple)) or not shp
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shp)):
            raise KernelError(f"node {node.id!r}: tensor {tid!r} has shape {shp!r}, not a list of positive integers")
        if _numel(list(shp)) * DTYPE_BYTES[dt] != t.size:
            raise KernelError(f"node {node.id!r}: tensor {tid!r} is {t.size} bytes, but its shape {list(shp)} of "
                              f"{dt} is {_numel(list(shp)) * DTYPE_BYTES[dt]}")
    ins, out = node.inputs, node.outputs[0]
    if op == "CONT" or "shape" not in graph.tensor(out).attrs:
        return
    n_out = _numel(_shape(graph, out))

    def need(n: int, what: str) -> None:
        if n_out != n:
            raise KernelError(f"node {node.id!r}: output {out!r} has {n_out} elements, the {op} kernel writes "
                              f"{n} ({what})")

    if op in ("ADD", "MUL"):
        big = commuted(graph, ins)[0]
        need(_numel(_shape(graph, big)), f"those of {big!r}")
    elif op in ("SILU", "RMS_NORM", "ROPE", "SOFT_MAX"):
        need(_numel(_shape(graph, ins[0])), f"those of {ins[0]!r}")
    if op in ("RMS_NORM", "SILU"):
        _require_f32(graph, node.id, (ins[0], out))
    elif op == "ROPE":
        shp = _shape(graph, ins[0])
        if len(shp) != 3 or shp[2] % 2:
            raise KernelError(f"node {node.id!r}: ROPE needs x of shape [tokens, heads, even head dim], not {shp}")
        _require_f32(graph, node.id, (ins[0], out))
        if _dtype(graph, ins[1]) != "i32" or _numel(_shape(graph, ins[1])) != shp[0]:
            raise KernelError(f"node {node.id!r}: ROPE needs {shp[0]} i32 positions in {ins[1]!r}")
    elif op == "SET_ROWS":
        src, idx = ins
        rows, dst = _numel(_shape(graph, idx)), _shape(graph, out)
        if _dtype(graph, idx) != "i32" or _dtype(graph, src) != "f32" or _numel(_shape(graph, src)) % rows:
            raise KernelError(f"node {node.id!r}: SET_ROWS needs f32 rows in {src!r} and one i32 index per row "
                              f"in {idx!r}")
        if n_out != dst[0] * dst[-1]:
            raise KernelError(f"node {node.id!r}: SET_ROWS needs a destination [rows, columns], not {dst}")
    elif op == "SOFT_MAX":
        shp = _shape(graph, ins[0])
        heads = shp[-2] if len(shp) >= 3 else 1
        rows = _numel(shp) // shp[-1]
        _require_f32(graph, node.id, (*ins, out))
        if _numel(_shape(graph, ins[1])) != rows // heads * shp[-1]:
            raise KernelError(f"node {node.id!r}: mask {ins[1]!r} needs {rows // heads * shp[-1]} elements "
                              f"(one row of {shp[-1]} per token)")
    elif op == "MUL_MAT":
        sa, sb = _shape(graph, ins[0]), _shape(graph, ins[1])
        if len(sa) == 2:
            if sb[-1] != sa[1]:
                raise KernelError(f"node {node.id!r}: MUL_MAT rows of {ins[1]!r} have {sb[-1]} elements, the "
                                  f"weight {ins[0]!r} K={sa[1]}")
            need(_numel(sb) // sa[1] * sa[0], f"{sa[0]} per row of {ins[1]!r}")
        elif len(sa) == 3 and len(sb) == 3:
            need(sb[0] * sb[1] * _shape(graph, out)[-1], "a row per token and head")


def _require_f32(graph: Graph, nid: str, tids) -> None:
    for t in tids:
        if _dtype(graph, t) != "f32":
            raise KernelError(f"node {nid!r}: tensor {t!r} is {_dtype(graph, t)}, the kernel needs f32")


def _from_softmax(graph: Graph, tid: str) -> bool:
    """Whether ``tid`` holds a SOFT_MAX's values: its producer is one, or it is (a view of, a view op's, a CONT's or a
    COPY's output of) a tensor that does. How a 3-D MUL_MAT whose head size equals its cache rows tells KQV (it
    multiplies probabilities) from KQ: only the producer itself was asked, so probabilities reshaped (a RESHAPE into a
    view, as ggml's graphs do) or copied (a CONT) on their way to the KQV were multiplied as KQ, silently."""
    ti = graph.tensor_index[tid]
    for _ in range(len(graph.tensors) + 1):
        p = graph.producer[ti]
        if p >= 0:
            node = graph.nodes[p]
            if node.op == "SOFT_MAX":
                return True
            if not ((node.op in VIEW_OPS or node.op in ("CONT", COPY_OP)) and len(graph.node_inputs[p]) == 1):
                return False
            ti = graph.node_inputs[p][0]
        elif graph.tensors[ti].view_of is not None:
            ti = graph.tensor_index[graph.tensors[ti].view_of]
        else:
            return False
    return False


def _mul_mat(graph: Graph, addr, ni: int, num_sms: int, wgmma: bool = False) -> list[Launch]:
    node = graph.nodes[ni]
    a, b = node.inputs
    y = node.outputs[0]
    sa, sb, sy = _shape(graph, a), _shape(graph, b), _shape(graph, y)
    xh = _dtype(graph, b) == "f16" and len(sa) == 2   # an f16 activation (f16_acts graphs)
    if _dtype(graph, a) != "f16" or (_dtype(graph, b) != "f32" and not xh) or _dtype(graph, y) != "f32":
        raise KernelError(f"node {node.id!r}: MUL_MAT needs f16 x f32 -> f32, or f16 weights [N, K] x f16 -> f32 "
                          f"(got {_dtype(graph, a)} x {_dtype(graph, b)} -> {_dtype(graph, y)})")
    if len(sa) == 2:
        N, K = sa
        if _numel(sb) % K:
            raise KernelError(f"node {node.id!r}: x has {_numel(sb)} elements, not a multiple of K={K}")
        launch = mul_mat_f16x_launch if xh else product_launch
        return [launch(addr(a), addr(b), addr(y), _numel(sb) // K, N, K, num_sms, wgmma)]
    if len(sa) == 3 and len(sb) == 3 and len(sy) == 3:
        R, G, D = sa
        B, heads, X = sb
        if heads % G:
            raise KernelError(f"node {node.id!r}: {heads} heads do not group over {G} KV heads")
        kq = X == D and sy[-1] == R
        kqv = X == R and sy[-1] == D
        if kq and kqv:  # d == n_kv: the probabilities come out of a SOFT_MAX
            kqv = _from_softmax(graph, b)
            kq = not kqv
        if (kq or kqv) and (D % 8 or D < 8):
            raise KernelError(f"node {node.id!r}: head dim {D} must be a positive multiple of 8")
        if kq:   # blockIdx.y is (token, KV head): tokens past what a grid's y holds go in further launches
            per = max(1, GRID_YZ_MAX // G)
            lns = [Launch("attn_kq_f16", (math.ceil(R / 8), n * G, 1), (256, 1, 1),
                          (addr(a), addr(b) + 4 * b0 * heads * D, addr(y) + 4 * b0 * heads * R, R, G, heads, D,
                           1.0 / math.sqrt(D))) for b0, n in _chunks(B, per)]
            return lns
        if kqv:
            d8 = D // 8
            if D > 1024:
                raise KernelError(f"node {node.id!r}: head dim {D} is over 1024")
            if D <= 512 and 512 % d8 == 0:   # a cluster of 4 blocks per head (Hopper)
                return [Launch("attn_kqv_cl_f16", (4 * B * heads, 1, 1), (512, 1, 1),
                               (addr(a), addr(b), addr(y), R, G, heads, D))]
            return [Launch("attn_kqv_f16", (B * heads, 1, 1), ((1024 // d8) * d8, 1, 1),
                           (addr(a), addr(b), addr(y), R, G, heads, D))]
    raise KernelError(f"node {node.id!r}: no MUL_MAT kernel for shapes {sa} x {sb} -> {sy}")
