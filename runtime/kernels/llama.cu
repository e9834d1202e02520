// Kernels for a Llama-style layer at ggml granularity (one kernel per memplan node; views are free).
//
// Conventions (shared with runtime/kernels.py and the numpy reference in runtime/models/llama.py):
//   activations f32, row-major, contiguous; weights f16 [N, K] (ggml: ne0 = K is the fast dim);
//   MUL_MAT(W, x): y[m, n] = sum_k W[n, k] * x[m, k];  KV cache f16 [rows, kv_heads * head_dim].
// Every kernel that the graph marks in-place reads an element before writing it from the same thread,
// so `out` may alias `in`. Compiled by pycuda's SourceModule with no_extern_c=True for sm_90.

#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <mma.h>

namespace cg = cooperative_groups;

using namespace nvcuda;

// Programmatic dependent launch (Hopper). A kernel launched with programmatic stream serialization
// may start once every block of its predecessor on the stream has started (each block triggers its
// dependents first thing, `griddepcontrol.launch_dependents`, the wgmma build too since session 16:
// WG_TRIGGER); `griddepcontrol.wait` then blocks until
// that predecessor has completed and its memory operations are visible to this grid (PTX ISA). Every
// kernel waits before touching activations, and a kernel completes only after its own wait returned,
// so "finished" stays transitive along a stream exactly as without PDL. Before the wait a kernel may
// only read weights (the norm kernels read their norm weight there: NORM_W_EARLY); where a node of the
// step writes the tensor such a read takes (a KV cache), the registry marks the launch early=False and it
// is launched plainly (ops.EARLY_READS). The GEMV and gemm_tc issue their first weight loads there,
// so a launch's ramp overlaps its predecessor's tail. Launched without the PDL attribute, both
// instructions are no-ops, so one cubin serves plain and PDL launches with the same bits.
// (The first PDL experiment raced on the H100 with activations read through ld.global.nc and an older
// kernel set, cause not established: docs/runtime_log.md. `runtime.tools.pdl_check` and the GPU tests check
// this one, so far on the H200.)
// PDL_NO_WAIT compiles the wait out: only the GPU tests' negative control builds that.
__device__ __forceinline__ void pdl_start() {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}
__device__ __forceinline__ void pdl_wait() {
#ifndef PDL_NO_WAIT
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
#define PDL_ENTER() do { pdl_start(); pdl_wait(); } while (0)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide reductions; `sh` holds 32 floats. Safe to call repeatedly.
__device__ float block_sum(float v, float* sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

__device__ float block_max(float v, float* sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : -INFINITY;
        v = warp_max(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

// ---------------------------------------------------------------------------------------------
// RMS_NORM (optionally fused with the MUL by a broadcast weight of its fusion group).
// grid: rows, block: up to 1024. y may alias x.
extern "C" __global__ void rms_norm_f32(const float* x, const float* w, float* y, int H, int nw, float eps) {
    PDL_ENTER();
    __shared__ float sh[32];
    const float* xr = x + (long long)blockIdx.x * H;
    float* yr = y + (long long)blockIdx.x * H;
    float v[8];
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < 8; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        v[c] = i < H ? xr[i] : 0.0f;
        ss += v[c] * v[c];
    }
    for (int i = threadIdx.x + 8 * blockDim.x; i < H; i += blockDim.x) {
        const float u = xr[i];
        ss += u * u;
    }
    ss = block_sum(ss, sh);
    const float scale = rsqrtf(ss / (float)H + eps);
#pragma unroll
    for (int c = 0; c < 8; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        if (i < H) yr[i] = (w != nullptr) ? v[c] * scale * w[i % nw] : v[c] * scale;
    }
    for (int i = threadIdx.x + 8 * blockDim.x; i < H; i += blockDim.x) {
        const float u = xr[i] * scale;
        yr[i] = (w != nullptr) ? u * w[i % nw] : u;
    }
}

// NORM_W_EARLY (default 1): the norm weight (a weight: no step writes it) is loaded before the PDL wait, so
// its load (from DRAM: a step reads it once) is not a round trip after the block's reduction; the same
// values, so the same bits. H200, same process: 8B batch 1 4.209 -> 4.107 ms, 1B 0.825 -> 0.785 (3 streams).
#ifndef NORM_W_EARLY
#define NORM_W_EARLY 1
#endif
// This thread's float4s of the norm weight (w broadcast over nw elements), in the element mapping of the
// float4 norm kernels below: loaded before their PDL wait when NORM_W_EARLY (a weight: no step writes it).
__device__ __forceinline__ void norm_weight_early(const float* w, int H, int nw, float4 (&we)[4]) {
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        if (NORM_W_EARLY && w != nullptr && i < (H >> 2)) we[c] = reinterpret_cast<const float4*>(w)[i % (nw >> 2)];
    }
}

// float4 i of a row: stored as is, or rounded to four f16 (8 bytes)
__device__ __forceinline__ void store4(float* y, int i, float4 v) { reinterpret_cast<float4*>(y)[i] = v; }
__device__ __forceinline__ void store4(half* y, int i, float4 v) {
    __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
    uint2 u;
    u.x = *reinterpret_cast<unsigned*>(&lo);
    u.y = *reinterpret_cast<unsigned*>(&hi);
    reinterpret_cast<uint2*>(y)[i] = u;
}

// The same with float4 loads, at most 4 per thread kept in registers: one read of x. Needs H % 4 == 0,
// H / 4 <= 4 * blockDim.x and (with w) nw % 4 == 0. y of type TY: float, or half for the f16-output twin
// (f16_acts graphs; at the end of this file)
template <typename TY>
__device__ __forceinline__ void rms_norm4_body(const float* x, const float* w, TY* y, int H, int nw, float eps) {
    pdl_start();
    float4 we[4];
    norm_weight_early(w, H, nw, we);   // before the PDL wait (NORM_W_EARLY, above)
    pdl_wait();
    __shared__ float sh[32];
    const float4* xr = reinterpret_cast<const float4*>(x + (long long)blockIdx.x * H);
    TY* yr = y + (long long)blockIdx.x * H;
    const int H4 = H >> 2;
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        v[c] = i < H4 ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        ss += v[c].x * v[c].x + v[c].y * v[c].y + v[c].z * v[c].z + v[c].w * v[c].w;
    }
    ss = block_sum(ss, sh);
    const float scale = rsqrtf(ss / (float)H + eps);
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        if (i < H4) {
            float4 o = make_float4(v[c].x * scale, v[c].y * scale, v[c].z * scale, v[c].w * scale);
            if (w != nullptr) {
                const float4 wv = NORM_W_EARLY ? we[c] : reinterpret_cast<const float4*>(w)[i % (nw >> 2)];
                o.x *= wv.x; o.y *= wv.y; o.z *= wv.z; o.w *= wv.w;
            }
            store4(yr, i, o);
        }
    }
}

// y in f16 (f16_acts graphs: the norm feeds products only); the f32 kernel's values, rounded
extern "C" __global__ void rms_norm4_f32(const float* x, const float* w, float* y, int H, int nw, float eps) {
    rms_norm4_body(x, w, y, H, nw, eps);
}

// ADD (op 0) / MUL (op 1) with b broadcast over a's leading dims (b has nb elements). y may alias a.
extern "C" __global__ void binary_f32(const float* a, const float* b, float* y, long long n, long long nb, int op) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float u = a[i], v = b[nb == n ? i : i % nb];
        y[i] = op == 0 ? u + v : u * v;
    }
}

extern "C" __global__ void silu_f32(const float* x, float* y, long long n) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

// CONT of a contiguous tensor: a copy of n 32-bit words.
extern "C" __global__ void copy_u32(const unsigned int* x, unsigned int* y, long long n) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = x[i];
}

// ROPE, ggml "normal" mode: adjacent pairs (x[2i], x[2i+1]) rotate by pos * base^(-2i/d).
// x, y: [B, heads, d]; one thread per pair. y may alias x.
extern "C" __global__ void rope_f32(const float* x, const int* pos, float* y, int B, int heads, int d, float log2_base) {
    PDL_ENTER();
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const int half_d = d >> 1;
    const long long npairs = (long long)B * heads * half_d;
    if (i >= npairs) return;
    const int p = (int)(i % half_d);
    const int b = (int)(i / half_d / heads);
    const float theta = (float)pos[b] * exp2f(-(2.0f * (float)p / (float)d) * log2_base);
    float s, c;
    sincosf(theta, &s, &c);
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    y[2 * i] = x0 * c - x1 * s;
    y[2 * i + 1] = x0 * s + x1 * c;
}

// SET_ROWS: dst[idx[r], :] = f16(src[r, :]). grid (ceil(cols/256), rows). Rows outside [0, nrows) are skipped.
extern "C" __global__ void set_rows_f32_f16(const float* src, const int* idx, half* dst, int cols, int nrows) {
    PDL_ENTER();
    const int r = blockIdx.y;
    const long long row = idx[r];
    if (row < 0 || row >= nrows) return;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x)
        dst[row * cols + c] = __float2half(src[(long long)r * cols + c]);
}

// ---------------------------------------------------------------------------------------------
// Attention at ggml granularity: KQ (with the 1/sqrt(d) scale that ggml applies in soft_max_ext),
// SOFT_MAX with an additive mask, KQV. GQA: head h reads KV head h / (heads / kv_heads).

// kq[b, h, j] = scale * K[j, g, :] . q[b, h, :] for the heads h of KV head g; K: [n_kv, kv_heads, d] f16.
// One warp per (j, b, g): lanes read the K row once (8-byte loads) and dot it with every head of the group.
// grid (ceil(n_kv/8), B*kv_heads), block 256. Needs d % 4 == 0.
extern "C" __global__ void __launch_bounds__(256) attn_kq_f16(const half* Kc, const float* q,
                                                              float* out, int n_kv, int kv_heads, int heads,
                                                              int d, float scale) {
    PDL_ENTER();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int j = blockIdx.x * 8 + warp;
    if (j >= n_kv) return;
    const int b = blockIdx.y / kv_heads, g = blockIdx.y % kv_heads;
    const int grp = heads / kv_heads;
    const half* kr = Kc + ((long long)j * kv_heads + g) * d;
    for (int hh = 0; hh < grp; hh++) {
        const int h = g * grp + hh;
        const float* qr = q + ((long long)b * heads + h) * d;
        float acc = 0.0f;
        for (int e = lane * 4; e < d; e += 128) {
            const uint2 raw = *reinterpret_cast<const uint2*>(kr + e);
            const half2* kh = reinterpret_cast<const half2*>(&raw);
            const float2 k0 = __half22float2(kh[0]), k1 = __half22float2(kh[1]);
            const float4 qv = *reinterpret_cast<const float4*>(qr + e);
            acc += k0.x * qv.x + k0.y * qv.y + k1.x * qv.z + k1.y * qv.w;
        }
        acc = warp_sum(acc);
        if (lane == 0) out[((long long)b * heads + h) * n_kv + j] = acc * scale;
    }
}

// y[row, :] = softmax(x[row, :] + mask[row / heads, :]); grid: rows, block 256. y may alias x.
extern "C" __global__ void softmax_mask_f32(const float* x, const float* mask, float* y, int n, int heads) {
    PDL_ENTER();
    __shared__ float sh[32];
    const long long row = blockIdx.x;
    const float* xr = x + row * n;
    const float* mr = mask + (row / heads) * (long long)n;
    float* yr = y + row * n;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, xr[i] + mr[i]);
    mx = block_max(mx, sh);
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(xr[i] + mr[i] - mx);
    s = block_sum(s, sh);
    const float inv = 1.0f / s;
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = expf(xr[i] + mr[i] - mx) * inv;
}

// out[b, h, :] = sum_j p[b, h, j] * V[j, g(h), :]; V: [n_kv, kv_heads, d] f16. grid B*heads, block 1024:
// d/8 threads per slice (16-byte loads of 8 halves), the slices split the j range and are reduced in a
// fixed order (deterministic). Needs d % 8 == 0 and d <= 1024 (sh holds the S slices' rows and their G group sums:
// S * d + G * d <= 10 * 1024 floats for d <= 1024 at any block of whole d / 8 slices; a d of 4096 needs 12288).
extern "C" __global__ void __launch_bounds__(1024) attn_kqv_f16(const half* V, const float* p,
                                                                float* out, int n_kv, int kv_heads,
                                                                int heads, int d) {
    PDL_ENTER();
    __shared__ float sh[10 * 1024];
    const int bh = blockIdx.x;
    const int g = (bh % heads) / (heads / kv_heads);
    const int d8 = d >> 3;
    const int S = blockDim.x / d8;
    const int e8 = threadIdx.x % d8, s = threadIdx.x / d8;
    const float* pr = p + (long long)bh * n_kv;
    float acc[8];
#pragma unroll
    for (int c = 0; c < 8; c++) acc[c] = 0.0f;
    if (s < S) {
#pragma unroll 8
        for (int j = s; j < n_kv; j += S) {
            const uint4 raw = reinterpret_cast<const uint4*>(V + ((long long)j * kv_heads + g) * d)[e8];
            const half2* vh = reinterpret_cast<const half2*>(&raw);
            const float pj = pr[j];
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const float2 f = __half22float2(vh[c]);
                acc[2 * c] = fmaf(f.x, pj, acc[2 * c]);
                acc[2 * c + 1] = fmaf(f.y, pj, acc[2 * c + 1]);
            }
        }
    }
    if (s < S) {
#pragma unroll
        for (int c = 0; c < 8; c++) sh[s * d + e8 * 8 + c] = acc[c];
    }
    __syncthreads();
    // two-level fixed-order reduction over the S slices: groups of 8 slices, then the group sums
    const int G = (S + 7) >> 3;
    for (int t = threadIdx.x; t < G * d; t += blockDim.x) {
        const int gi = t / d, e = t % d;
        float r = 0.0f;
        for (int k = gi * 8; k < min(S, gi * 8 + 8); k++) r += sh[k * d + e];
        sh[gi * d + e + S * d] = r;   // past the slices' region (S * d + G * d <= 10 * 1024 floats for d <= 1024)
    }
    __syncthreads();
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float r = 0.0f;
        for (int gi = 0; gi < G; gi++) r += sh[S * d + gi * d + e];
        out[(long long)bh * d + e] = r;
    }
}

// The same split over a cluster of 4 blocks (Hopper): block r of the cluster takes every 4th slice of
// the j range, reduces its slices in shared memory, and block 0 adds the 4 partial rows through
// distributed shared memory in rank order (deterministic, no workspace). 4x the blocks of attn_kqv_f16
// for the 32 heads of a batch-1 decode step. grid 4 * B * heads, block 512. Needs d % 8 == 0, d <= 512.
extern "C" __global__ void __cluster_dims__(4, 1, 1) __launch_bounds__(512)
attn_kqv_cl_f16(const half* V, const float* p, float* out, int n_kv, int kv_heads, int heads, int d) {
    PDL_ENTER();
    __shared__ float sh[8 * 512 + 512];
    cg::cluster_group cluster = cg::this_cluster();
    const int rank = (int)cluster.block_rank();
    const int bh = blockIdx.x >> 2;
    const int g = (bh % heads) / (heads / kv_heads);
    const int d8 = d >> 3;
    const int S = blockDim.x / d8;                 // slices in this block
    const int e8 = threadIdx.x % d8, s = threadIdx.x / d8;
    const float* pr = p + (long long)bh * n_kv;
    float acc[8];
#pragma unroll
    for (int c = 0; c < 8; c++) acc[c] = 0.0f;
    if (s < S) {
#pragma unroll 4
        for (int j = rank * S + s; j < n_kv; j += 4 * S) {
            const uint4 raw = reinterpret_cast<const uint4*>(V + ((long long)j * kv_heads + g) * d)[e8];
            const half2* vh = reinterpret_cast<const half2*>(&raw);
            const float pj = pr[j];
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const float2 f = __half22float2(vh[c]);
                acc[2 * c] = fmaf(f.x, pj, acc[2 * c]);
                acc[2 * c + 1] = fmaf(f.y, pj, acc[2 * c + 1]);
            }
        }
#pragma unroll
        for (int c = 0; c < 8; c++) sh[s * d + e8 * 8 + c] = acc[c];
    }
    __syncthreads();
    float* part = sh + 8 * 512;                    // this block's partial row, d floats
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float r = 0.0f;
        for (int t = 0; t < S; t++) r += sh[t * d + e];
        part[e] = r;
    }
    cluster.sync();
    if (rank == 0) {
        for (int e = threadIdx.x; e < d; e += blockDim.x) {
            float r = 0.0f;
#pragma unroll
            for (int q = 0; q < 4; q++) r += cluster.map_shared_rank(part, q)[e];
            out[(long long)bh * d + e] = r;
        }
    }
    cluster.sync();                                // keep every block's shared memory until block 0 read it
}

// ---------------------------------------------------------------------------------------------
// Fused kernels for the fusion groups of memplan.examples.llama(fuse="runtime"): one launch per group
// instead of one per node, because at batch 1 these ops are latency-bound and the launch gaps between
// them inside a CUDA graph cost as much as the ops themselves (docs/runtime_log.md). The registry
// (runtime/kernels.py) only fuses a group when no byte a kernel writes is read by another thread of
// it (outputs disjoint from inputs, or in place at the same address).

// residual ADD then RMS_NORM * w: h = a + b; y = rms(h) * w. One block per row, float4, at most 4 float4
// per thread (H % 4 == 0, H / 4 <= 4 * blockDim.x, nw % 4 == 0). Both outputs are written after the
// block barrier, when the block has read its row: at one row, h and y may overlap a and b anywhere.
// Bitwise equal to binary_f32 (ADD) then rms_norm4_f32 (with w) at the same block size.
// y of type TY: float, or half for the f16-output twin (f16_acts graphs; at the end of this file)
template <typename TY>
__device__ __forceinline__ void add_rms_norm4_body(const float* a, const float* b, float* h, const float* w, TY* y,
                                                   int H, int nw, float eps) {
    pdl_start();
    float4 we[4];
    norm_weight_early(w, H, nw, we);
    pdl_wait();
    __shared__ float sh[32];
    const long long base = (long long)blockIdx.x * H;
    const float4* ar = reinterpret_cast<const float4*>(a + base);
    const float4* br = reinterpret_cast<const float4*>(b + base);
    float4* hr = reinterpret_cast<float4*>(h + base);
    TY* yr = y + base;
    const int H4 = H >> 2;
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        v[c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (i < H4) {
            const float4 u = ar[i], t = br[i];
            v[c] = make_float4(u.x + t.x, u.y + t.y, u.z + t.z, u.w + t.w);
        }
        ss += v[c].x * v[c].x + v[c].y * v[c].y + v[c].z * v[c].z + v[c].w * v[c].w;
    }
    ss = block_sum(ss, sh);
    const float scale = rsqrtf(ss / (float)H + eps);
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = threadIdx.x + c * blockDim.x;
        if (i < H4) {
            const float4 wv = NORM_W_EARLY ? we[c] : reinterpret_cast<const float4*>(w)[i % (nw >> 2)];
            hr[i] = v[c];
            store4(yr, i, make_float4(v[c].x * scale * wv.x, v[c].y * scale * wv.y, v[c].z * scale * wv.z,
                                      v[c].w * scale * wv.w));
        }
    }
}

// y in f16 (f16_acts graphs); h stays f32 (the residual stream)
extern "C" __global__ void add_rms_norm4_f32(const float* a, const float* b, float* h, const float* w, float* y,
                                             int H, int nw, float eps) {
    add_rms_norm4_body(a, b, h, w, y, H, nw, eps);
}

// SILU then MUL (SwiGLU): y = silu(g) * u; y may alias g.
extern "C" __global__ void swiglu_f32(const float* g, const float* u, float* y, long long n) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float v = g[i];
        const float s = v / (1.0f + expf(-v));
        y[i] = s * u[i];
    }
}

// ROPE then SET_ROWS: dst[idx[b], h * d + e] = f16(rope(x)[b, h, e]); x [B, heads, d]; one thread per pair.
extern "C" __global__ void rope_set_rows_f16(const float* x, const int* pos, const int* idx, half* dst, int B,
                                             int heads, int d, int nrows, float log2_base) {
    PDL_ENTER();
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const int half_d = d >> 1;
    const long long npairs = (long long)B * heads * half_d;
    if (i >= npairs) return;
    const int p = (int)(i % half_d);
    const int b = (int)(i / half_d / heads);
    const long long row = idx[b];
    if (row < 0 || row >= nrows) return;
    const float theta = (float)pos[b] * exp2f(-(2.0f * (float)p / (float)d) * log2_base);
    float s, c;
    sincosf(theta, &s, &c);
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    const long long col = 2 * (i % ((long long)heads * half_d));
    half* o = dst + row * (long long)heads * d + col;
    o[0] = __float2half(x0 * c - x1 * s);
    o[1] = __float2half(x0 * s + x1 * c);
}

// Decode attention in one kernel: [ROPE of q] -> KQ (scaled) + mask -> softmax -> KQV, written straight
// into the CONT output (same bytes). A cluster of AF_CL blocks per (b, h): block r takes the r-th
// contiguous chunk of the cache rows, keeps its scores in shared memory, computes its chunk's max, sum
// of exponentials and the exp-weighted V sum; block 0 combines the AF_CL partials through distributed
// shared memory in rank order (deterministic). The kernel is latency-bound, so every thread issues its
// first AF_U K rows (16-byte loads) and L2 prefetches of its chunk's V rows before anything else (one
// K round trip for chunks of up to AF_U * 256 / (d / 8) rows). Preloading V into registers as well
// (AF_VU > 0) measured slower on the H100: the registers cost blocks per SM (runtime.attn_tune).
// q: [B, heads, d] f32 (pos == nullptr: no ROPE); K, V: [n_kv, kv_heads, d] f16; mask [B, n_kv];
// out [B, heads, d]. Needs d % 8 == 0, d / 8 a power of two <= 32 (d <= 256),
// ceil(n_kv / AF_CL) <= AF_MAXCHUNK. grid AF_CL * B * heads, block 256.
// Tuning knobs (python -m runtime.attn_tune times variants): AF_CL blocks per head, AF_U K rows and AF_VU
// V rows per thread loaded up front (AF_VU 0: V is prefetched into L2 instead), AF_MINB blocks per SM.
#ifndef AF_CL
#define AF_CL 8
#endif
#define AF_MAXCHUNK 2048
#ifndef AF_U
#define AF_U 5
#endif
#ifndef AF_VU
#define AF_VU 0
#endif
#ifndef AF_MINB
#define AF_MINB 1
#endif
// AF_VL: V rows per thread loaded into registers right after the scores (their latency overlaps the
// softmax reductions; no gain measured over the L2 prefetch, so 0); AF_PUSH: every block stores its partial row, max and sum straight into block 0's
// shared memory (one cluster barrier, local reads) instead of block 0 reading the other blocks' (two)
#ifndef AF_VL
#define AF_VL 0
#endif
#ifndef AF_PUSH
#define AF_PUSH 1
#endif
// AF_START_SYNC: with AF_PUSH a block writes into block 0's shared memory before any cluster.sync, and CUDA
// allows distributed shared memory accesses only to blocks known to have started (compute-sanitizer's
// racecheck flagged every such store: "a block that might not have entered yet"). Every block arrives on the
// cluster barrier once it passed its PDL wait (relaxed: no memory ordering needed) and waits on it just
// before its first remote store, by when every block has long started. It is not free: H200, same process,
// CUDA graphs, 9 rounds (.wt-dev/ab_afsync.py), 1B batch 1 serial / 3-stream 0.8104 / 0.7630 ms without
// it, 0.8172 / 0.7659 with it (0.8197 / 0.7735 arriving before the PDL wait instead); the 8B within noise.
// 0 only for the negative control of the GPU sanitizer test.
#ifndef AF_START_SYNC
#define AF_START_SYNC 1
#endif
__device__ __forceinline__ float dot8h(const uint4 raw, const float* qv) {
    const half2* kh = reinterpret_cast<const half2*>(&raw);
    float acc = 0.0f;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const float2 f = __half22float2(kh[c]);
        acc = fmaf(f.x, qv[2 * c], acc);
        acc = fmaf(f.y, qv[2 * c + 1], acc);
    }
    return acc;
}

__device__ __forceinline__ void axpy8h(const uint4 raw, float pj, float* acc) {
    const half2* vh = reinterpret_cast<const half2*>(&raw);
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const float2 f = __half22float2(vh[c]);
        acc[2 * c] = fmaf(f.x, pj, acc[2 * c]);
        acc[2 * c + 1] = fmaf(f.y, pj, acc[2 * c + 1]);
    }
}

// D: the head size when it is a compile-time constant (ops.ATTN_MMA_DIMS: the lanes per row, the shuffle
// counts and the row loops are then fixed, as attn_mma's were), 0 for any other d; the same arithmetic, so
// the same bits.
template <int D>
__device__ __forceinline__ void attn_fused_body(const float* q, const int* pos, const half* Kc, const half* Vc,
                                                const float* mask, float* out, int n_kv, int kv_heads, int heads,
                                                int d_arg, float scale, float log2_base) {
    const int d = D ? D : d_arg;
    if (d != d_arg) __trap();                      // the registry launches each kernel for its own d
    PDL_ENTER();
#if AF_PUSH && AF_START_SYNC
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");   // waited on before the push
#endif
    __shared__ float sh[32];
    __shared__ float qs[256];
    __shared__ float sc[AF_MAXCHUNK];
    __shared__ float red[8 * 256];
#if AF_PUSH
    __shared__ float cpart[AF_CL * 256];
    __shared__ float cst[2 * AF_CL];
#else
    __shared__ float part[256];
    __shared__ float st[2];
#endif
    cg::cluster_group cluster = cg::this_cluster();
    const int rank = (int)cluster.block_rank();
    const int bh = blockIdx.x / AF_CL;
    const int b = bh / heads, hh = bh % heads;
    const int g = hh / (heads / kv_heads);
    const int tid = threadIdx.x;
    const int C = (n_kv + AF_CL - 1) / AF_CL;
    const int j0 = rank * C;
    const int nj = max(0, min(n_kv, j0 + C) - j0);
    const long long rs = (long long)kv_heads * d;        // halves between cache rows
    const half* Kg = Kc + (long long)(j0) * rs + (long long)g * d;
    const half* Vg = Vc + (long long)(j0) * rs + (long long)g * d;
    // scores: d/8 lanes per cache row, 32/(d/8) rows per warp, `step` rows per sweep of the block;
    // V sum: d/8 threads per slice, S slices striding the chunk
    const int d8 = d >> 3, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    const int rpw = 32 / d8, sub = lane / d8, e8 = lane % d8;
    const int step = nwarps * rpw;
    const int S = blockDim.x / d8, s = tid / d8;
    const int jk = warp * rpw + sub;
    uint4 kraw[AF_U];
#pragma unroll
    for (int u = 0; u < AF_U; u++) {
        const int j = jk + u * step;
        kraw[u] = j < nj ? *reinterpret_cast<const uint4*>(Kg + (long long)j * rs + e8 * 8) : make_uint4(0u, 0u, 0u, 0u);
    }
#if AF_VU > 0
    uint4 vraw[AF_VU];
#pragma unroll
    for (int u = 0; u < AF_VU; u++) {
        const int j = s + u * S;
        vraw[u] = j < nj ? *reinterpret_cast<const uint4*>(Vg + (long long)j * rs + e8 * 8) : make_uint4(0u, 0u, 0u, 0u);
    }
#else
    const int lines = (d * 2 + 127) / 128;        // pull this chunk's V rows toward L2 meanwhile
    for (int i = tid; i < nj * lines; i += blockDim.x)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(Vg + (long long)(i / lines) * rs + (i % lines) * 64));
#endif
    // q (rotated) into shared memory
    const float* qr = q + (long long)bh * d;
    const int half_d = d >> 1;
    for (int p = tid; p < half_d; p += blockDim.x) {
        const float x0 = qr[2 * p], x1 = qr[2 * p + 1];
        if (pos != nullptr) {
            const float theta = (float)pos[b] * exp2f(-(2.0f * (float)p / (float)d) * log2_base);
            float sn, cs;
            sincosf(theta, &sn, &cs);
            qs[2 * p] = x0 * cs - x1 * sn;
            qs[2 * p + 1] = x0 * sn + x1 * cs;
        } else {
            qs[2 * p] = x0;
            qs[2 * p + 1] = x1;
        }
    }
    __syncthreads();
    float qv[8];
#pragma unroll
    for (int c = 0; c < 8; c++) qv[c] = qs[e8 * 8 + c];
    const float* mr = mask + (long long)b * n_kv + j0;
#pragma unroll
    for (int u = 0; u < AF_U; u++) {
        const int j = jk + u * step;
        float acc = dot8h(kraw[u], qv);
        for (int o = d8 >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (e8 == 0 && j < nj) sc[j] = acc * scale + mr[j];
    }
    for (int jb = warp * rpw + AF_U * step; jb < nj; jb += step) {   // chunks past the preloaded rows
        const int j = jb + sub;
        float acc = 0.0f;
        if (j < nj) acc = dot8h(*reinterpret_cast<const uint4*>(Kg + (long long)j * rs + e8 * 8), qv);
        for (int o = d8 >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (e8 == 0 && j < nj) sc[j] = acc * scale + mr[j];
    }
    __syncthreads();
#if AF_VU == 0 && AF_VL > 0
    uint4 vl[AF_VL];
#pragma unroll
    for (int u = 0; u < AF_VL; u++) {
        const int j = s + u * S;
        vl[u] = j < nj ? *reinterpret_cast<const uint4*>(Vg + (long long)j * rs + e8 * 8) : make_uint4(0u, 0u, 0u, 0u);
    }
#endif
    // this chunk's max and sum of exponentials (a fully masked or empty chunk has weight 0)
    float m = -INFINITY;
    for (int i = tid; i < nj; i += blockDim.x) m = fmaxf(m, sc[i]);
    m = block_max(m, sh);
    float l = 0.0f;
    for (int i = tid; i < nj; i += blockDim.x) {
        const float e = m == -INFINITY ? 0.0f : expf(sc[i] - m);
        sc[i] = e;
        l += e;
    }
    l = block_sum(l, sh);
    float acc[8];
#pragma unroll
    for (int c = 0; c < 8; c++) acc[c] = 0.0f;
#if AF_VU > 0
#pragma unroll
    for (int u = 0; u < AF_VU; u++) {
        const int j = s + u * S;
        if (j < nj) axpy8h(vraw[u], sc[j], acc);
    }
    const int jv = s + AF_VU * S;
#elif AF_VL > 0
#pragma unroll
    for (int u = 0; u < AF_VL; u++) {
        const int j = s + u * S;
        if (j < nj) axpy8h(vl[u], sc[j], acc);
    }
    const int jv = s + AF_VL * S;
#else
    const int jv = s;
#endif
#pragma unroll 4
    for (int j = jv; j < nj; j += S)
        axpy8h(*reinterpret_cast<const uint4*>(Vg + (long long)j * rs + e8 * 8), sc[j], acc);
#pragma unroll
    for (int c = 0; c < 8; c++) red[s * d + e8 * 8 + c] = acc[c];
    __syncthreads();
#if AF_PUSH
#if AF_START_SYNC
    asm volatile("barrier.cluster.wait.aligned;" ::: "memory");   // every block of the cluster has started
#endif
    float* cpart0 = cluster.map_shared_rank(cpart, 0);
    for (int e = tid; e < d; e += blockDim.x) {
        float r = 0.0f;
        for (int t = 0; t < S; t++) r += red[t * d + e];
        cpart0[rank * 256 + e] = r;
    }
    if (tid == 0) {
        float* cst0 = cluster.map_shared_rank(cst, 0);
        cst0[rank] = m;
        cst0[AF_CL + rank] = l;
    }
    cluster.sync();                                // release/acquire: block 0 sees every block's stores
    if (rank != 0) return;
    float M = -INFINITY;
#pragma unroll
    for (int r = 0; r < AF_CL; r++) M = fmaxf(M, cst[r]);
    float wr[AF_CL];
    float L = 0.0f;
#pragma unroll
    for (int r = 0; r < AF_CL; r++) {
        wr[r] = cst[r] == -INFINITY ? 0.0f : expf(cst[r] - M);
        L += cst[AF_CL + r] * wr[r];
    }
    const float inv = 1.0f / L;
    for (int e = tid; e < d; e += blockDim.x) {
        float r = 0.0f;
#pragma unroll
        for (int q2 = 0; q2 < AF_CL; q2++) r += cpart[q2 * 256 + e] * wr[q2];
        out[(long long)bh * d + e] = r * inv;
    }
#else
    for (int e = tid; e < d; e += blockDim.x) {
        float r = 0.0f;
        for (int t = 0; t < S; t++) r += red[t * d + e];
        part[e] = r;
    }
    if (tid == 0) {
        st[0] = m;
        st[1] = l;
    }
    cluster.sync();
    if (rank == 0) {
        float M = -INFINITY;
#pragma unroll
        for (int r = 0; r < AF_CL; r++) M = fmaxf(M, cluster.map_shared_rank(st, r)[0]);
        float wr[AF_CL];
        float L = 0.0f;
#pragma unroll
        for (int r = 0; r < AF_CL; r++) {
            const float* o = cluster.map_shared_rank(st, r);
            wr[r] = o[0] == -INFINITY ? 0.0f : expf(o[0] - M);
            L += o[1] * wr[r];
        }
        const float inv = 1.0f / L;
        for (int e = tid; e < d; e += blockDim.x) {
            float r = 0.0f;
#pragma unroll
            for (int q2 = 0; q2 < AF_CL; q2++) r += cluster.map_shared_rank(part, q2)[e] * wr[q2];
            out[(long long)bh * d + e] = r * inv;
        }
    }
    cluster.sync();                                // keep every block's shared memory until block 0 read it
#endif
}
#define ATTN_FUSED_KERNEL(NAME, D)                                                                           \
    extern "C" __global__ void __cluster_dims__(AF_CL, 1, 1) __launch_bounds__(256, AF_MINB)                \
    NAME(const float* q, const int* pos, const half* Kc, const half* Vc, const float* mask, float* out,      \
         int n_kv, int kv_heads, int heads, int d, float scale, float log2_base) {                           \
        attn_fused_body<D>(q, pos, Kc, Vc, mask, out, n_kv, kv_heads, heads, d, scale, log2_base);          \
    }
ATTN_FUSED_KERNEL(attn_fused_f16, 0)
ATTN_FUSED_KERNEL(attn_fused_d64_f16, 64)
ATTN_FUSED_KERNEL(attn_fused_d128_f16, 128)

// Decode attention for several new tokens at once (batch B > 1): the same function as attn_fused_f16 (ROPE
// of q, scaled KQ + mask, softmax, KQV), computed so that the cache is read once per block of query rows
// instead of once per (token, head). At batch 64 attn_fused_f16 re-read every KV head's rows for each of
// its 64 tokens x 4 heads (600 MB from L2 per 8B layer, 310 us). A cluster of AB_CL blocks takes AB_QB
// query rows of one KV head g (row i: token i / grp, head g grp + i % grp); block r of it streams the r-th
// quarter of that head's cache rows in AB_TJ-row tiles through shared memory, keeping a running (max,
// sum, exp-weighted V sum) per query row (online softmax, tiles in order). Block 0 then combines the
// quarters in rank order through distributed shared memory (deterministic), as attn_fused_f16 combines its
// chunks. attn_batch1_f16 is the same without the split, for batches whose query blocks fill the chip.
// Threads: 16 per query row; for scores each takes 4 cache rows of the tile, for the V sum one 8-wide
// slice of d. Needs d % 8 == 0, d <= 128. grid (CL ceil(B grp / AB_QB), kv_heads), block 256.
// Elements 2 p and 2 p + 1 of query row qi of KV head g's query block (row qi: token qi / grp, head
// g grp + qi % grp), rotated by ROPE (ggml normal mode) at the token's position when pos is given; zeros
// for rows past nq (padding of the last block). Shared by the batched attention kernels.
__device__ __forceinline__ const float* q_row(const float* q, int qi, int grp, int g, int heads, int d) {
    const int b = qi / grp, h = g * grp + qi % grp;   // query row qi: token qi / grp, head g grp + qi % grp
    return q + ((long long)b * heads + h) * d;
}
__device__ __forceinline__ float rope_freq(int p, int d, float log2_base) {   // pair p's angle per position
    return exp2f(-(2.0f * (float)p / (float)d) * log2_base);
}
__device__ __forceinline__ float2 rope_rotate(float x0, float x1, float sn, float cs) {
    return make_float2(x0 * cs - x1 * sn, x0 * sn + x1 * cs);
}
__device__ __forceinline__ float2 rope_q_pair(const float* q, const int* pos, int qi, int nq, int grp, int g,
                                              int heads, int d, int p, float log2_base) {
    if (qi >= nq) return make_float2(0.0f, 0.0f);
    const float* qr = q_row(q, qi, grp, g, heads, d);
    const float x0 = qr[2 * p], x1 = qr[2 * p + 1];
    if (pos == nullptr) return make_float2(x0, x1);
    float sn, cs;
    sincosf((float)pos[qi / grp] * rope_freq(p, d, log2_base), &sn, &cs);
    return rope_rotate(x0, x1, sn, cs);
}
#define AB_QB 16
#define AB_TJ 64
#define AB_LDK 136
#define AB_CL 4
template <int CL>
__device__ __forceinline__ void attn_batch_body(const float* q, const int* pos, const half* Kc, const half* Vc,
                                                const float* mask, float* out, int B, int n_kv, int kv_heads,
                                                int heads, int d, float scale, float log2_base) {
    PDL_ENTER();
    // the K and V tiles; after the loop, block 0's copy holds every block's partial V sums [AB_CL][AB_QB][128]
    __shared__ __align__(16) unsigned char kvbuf[AB_TJ * AB_LDK * 2 + AB_TJ * 128 * 2];
    __shared__ __align__(16) float qs[AB_QB * 128];
    __shared__ float ps[AB_QB * AB_TJ];
    __shared__ float cst[AB_CL * AB_QB * 2];
    half* ks = reinterpret_cast<half*>(kvbuf);
    half* vs = ks + AB_TJ * AB_LDK;
    const int rank = CL > 1 ? (int)(blockIdx.x % CL) : 0;
    const int grp = heads / kv_heads, g = blockIdx.y, nq = B * grp, q0 = (blockIdx.x / CL) * AB_QB;
    const int tid = threadIdx.x, d8 = d >> 3, half_d = d >> 1;
    const int C = (n_kv + CL - 1) / CL, jb = min(n_kv, rank * C), je = min(n_kv, jb + C);
    const long long rs = (long long)kv_heads * d;          // halves between cache rows
    for (int t = tid; t < AB_QB * half_d; t += blockDim.x) {   // q rows, rotated, into shared memory
        const int i = t / half_d, p = t % half_d;
        const float2 y = rope_q_pair(q, pos, q0 + i, nq, grp, g, heads, d, p, log2_base);
        qs[i * 128 + 2 * p] = y.x;
        qs[i * 128 + 2 * p + 1] = y.y;
    }
    const int r = tid >> 4, js = tid & 15, qi = q0 + r;
    const bool valid = qi < nq;
    const float* mr = mask + (long long)(valid ? qi / grp : 0) * n_kv;
    const float* qv = qs + r * 128;
    float m = -INFINITY, l = 0.0f, acc[8];
#pragma unroll
    for (int c = 0; c < 8; c++) acc[c] = 0.0f;
    for (int j0 = jb; j0 < je; j0 += AB_TJ) {
        const int nt = min(AB_TJ, je - j0);
        __syncthreads();                                 // the previous tile is consumed (first: qs written)
        for (int c = tid; c < nt * d8; c += blockDim.x) {
            const int j = c / d8, e = c % d8;
            const long long off = (long long)(j0 + j) * rs + (long long)g * d + e * 8;
            *reinterpret_cast<uint4*>(ks + j * AB_LDK + e * 8) = *reinterpret_cast<const uint4*>(Kc + off);
            *reinterpret_cast<uint4*>(vs + j * 128 + e * 8) = *reinterpret_cast<const uint4*>(Vc + off);
        }
        __syncthreads();
        float sc[AB_TJ / 16];
        float tmax = -INFINITY;
#pragma unroll
        for (int u = 0; u < AB_TJ / 16; u++) {
            const int j = js + 16 * u;
            float z = -INFINITY;
            if (valid && j < nt) {
                float a = 0.0f;
                for (int e = 0; e < d8; e++) a += dot8h(*reinterpret_cast<const uint4*>(ks + j * AB_LDK + e * 8), qv + e * 8);
                z = a * scale + mr[j0 + j];
            }
            sc[u] = z;
            tmax = fmaxf(tmax, z);
        }
#pragma unroll
        for (int o = 8; o > 0; o >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
        const float mn = fmaxf(m, tmax);
        const float corr = m == -INFINITY ? 0.0f : expf(m - mn);
        float ls = 0.0f;
#pragma unroll
        for (int u = 0; u < AB_TJ / 16; u++) {
            const float e = sc[u] == -INFINITY ? 0.0f : expf(sc[u] - mn);
            ps[r * AB_TJ + js + 16 * u] = e;
            ls += e;
        }
#pragma unroll
        for (int o = 8; o > 0; o >>= 1) ls += __shfl_xor_sync(0xffffffffu, ls, o);
        l = l * corr + ls;
        m = mn;
#pragma unroll
        for (int c = 0; c < 8; c++) acc[c] *= corr;
        __syncwarp();                                    // this row's 16 threads wrote its probabilities
        if (js < d8)
            for (int j = 0; j < nt; j++) axpy8h(*reinterpret_cast<const uint4*>(vs + j * 128 + js * 8), ps[r * AB_TJ + j], acc);
    }
    if (CL == 1) {
        if (valid && js < d8) {
            const int b = qi / grp, h = g * grp + qi % grp;
            const float inv = 1.0f / l;
            float* o = out + ((long long)b * heads + h) * d + js * 8;
#pragma unroll
            for (int c = 0; c < 8; c++) o[c] = acc[c] * inv;
        }
        return;
    }
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();                                      // every block is done with its tiles (block 0's too)
    float* cpart0 = cluster.map_shared_rank(reinterpret_cast<float*>(kvbuf), 0);
    if (js < d8) {
#pragma unroll
        for (int c = 0; c < 8; c++) cpart0[(rank * AB_QB + r) * 128 + js * 8 + c] = acc[c];
    }
    if (js == 0) {
        float* cst0 = cluster.map_shared_rank(cst, 0);
        cst0[(rank * AB_QB + r) * 2] = m;
        cst0[(rank * AB_QB + r) * 2 + 1] = l;
    }
    cluster.sync();                                      // release/acquire: block 0 sees every block's stores
    if (rank != 0 || !valid || js >= d8) return;
    const float* cpart = reinterpret_cast<const float*>(kvbuf);
    float M = -INFINITY;
#pragma unroll
    for (int q2 = 0; q2 < CL; q2++) M = fmaxf(M, cst[(q2 * AB_QB + r) * 2]);
    float o8[8], L = 0.0f;
#pragma unroll
    for (int c = 0; c < 8; c++) o8[c] = 0.0f;
#pragma unroll
    for (int q2 = 0; q2 < CL; q2++) {
        const float mq = cst[(q2 * AB_QB + r) * 2];
        const float w = mq == -INFINITY ? 0.0f : expf(mq - M);
        L += cst[(q2 * AB_QB + r) * 2 + 1] * w;
#pragma unroll
        for (int c = 0; c < 8; c++) o8[c] += cpart[(q2 * AB_QB + r) * 128 + js * 8 + c] * w;
    }
    const int b = qi / grp, h = g * grp + qi % grp;
    const float inv = 1.0f / L;
    float* o = out + ((long long)b * heads + h) * d + js * 8;
#pragma unroll
    for (int c = 0; c < 8; c++) o[c] = o8[c] * inv;
}
extern "C" __global__ void __cluster_dims__(AB_CL, 1, 1) __launch_bounds__(256)
attn_batch_f16(const float* q, const int* pos, const half* Kc, const half* Vc, const float* mask, float* out, int B,
               int n_kv, int kv_heads, int heads, int d, float scale, float log2_base) {
    attn_batch_body<AB_CL>(q, pos, Kc, Vc, mask, out, B, n_kv, kv_heads, heads, d, scale, log2_base);
}
extern "C" __global__ void __launch_bounds__(256)
attn_batch1_f16(const float* q, const int* pos, const half* Kc, const half* Vc, const float* mask, float* out, int B,
                int n_kv, int kv_heads, int heads, int d, float scale, float log2_base) {
    attn_batch_body<1>(q, pos, Kc, Vc, mask, out, B, n_kv, kv_heads, heads, d, scale, log2_base);
}

// cp.async and mma.sync helpers (the tensor-core attention and GEMM)
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

// mma.sync m16n8k16 (f16 in, f32 accumulate), without `volatile`: a pure function of its operands, so the
// compiler may interleave independent accumulator chains; dependent ones keep their order, and the bits
__device__ __forceinline__ void mma_16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Decode attention on tensor cores (mma.sync m16n8k16), the same function as attn_fused_f16 for any batch.
// attn_batch_f16 computed scores and the V sum on CUDA cores in dependent chains: at 8B batch 16 it took
// 36 us per layer for 2 MB of cache (ncu: 12% occupancy, latency-bound). Here a block takes AM_QB = 16
// query rows of one KV head g (row i: token i / grp, head g grp + i % grp) and the CL-th part of the cache
// rows; each of its W warps (4, or 8 in the w8 kernels) streams 16-row steps of that part (warp w: rows
// 16 w, 16 w + 16 W, ...) through
// its own two shared-memory stages (cp.async, the next step in flight while this one computes, no block
// barrier), computing S = Q K^T (q rotated, scaled and rounded to f16 as the A fragments, K rows as B), an online
// softmax per query row in registers, and O += P V (P, rounded to f16, is the A fragment straight from S's
// accumulators; K's and V's B fragments by ldmatrix, V's transposed). The W warps' partial (max, sum, O) are combined in
// warp order in shared memory, then the cluster's CL blocks in rank order through distributed shared
// memory, each block finishing 1/CL of the outputs: deterministic, so a multi-stream step stays bitwise
// equal to one stream. Each thread of a combine owns one query row's d / (2 W) columns, so its softmax
// weights are computed once. Needs d % 16 == 0, 0 < d <= 128. grid (CL ceil(B grp / 16), kv_heads), block
// 32 W, cluster CL, dynamic shared memory ATTN_MMA_SMEM or ATTN_MMA_SMEM_W8 (ops.py):
// [W warps][2 stages][K, V][16][AM_LD] halves.
#define AM_QB 16
#define AM_LD 136
#define AM_OS 136   // floats between rows of a partial O (128 + 8: the combines read without bank conflicts)
__device__ __forceinline__ unsigned pack_half2(float lo, float hi) {
    const half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const unsigned*>(&h);
}
__device__ __forceinline__ void ldmatrix_x4(unsigned* r, const void* row) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned* r, const void* row) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a) : "memory");
}
// D: the head size when it is a compile-time constant (64, 128: ncu, 8B batch 4, a warp issued about 1000
// instructions per 16-row step with d at run time, a third of them copy addresses, branches over unrolled
// head-size loops and register moves), 0 for any other d.
// W: warps per block (4, or 8 to halve each warp's chain of cache steps where the grid leaves SMs to spare)
// TO: the output's type (half: the f16_acts graphs' attention output, which feeds the o projection only;
// the f32 values rounded once, so the same bits as the float kernel's output rounded to f16)
template <int CL, int D, int W, typename TO = float>
__device__ __forceinline__ void attn_mma_body(const float* q, const int* pos, const half* Kc, const half* Vc,
                                              const float* mask, TO* out, int B, int n_kv, int kv_heads,
                                              int heads, int d_arg, float scale, float log2_base) {
    extern __shared__ __align__(16) unsigned char am_smem[];
    __shared__ __align__(16) half qh[AM_QB * AM_LD];
    __shared__ __align__(16) float wml[W][AM_QB][2];       // per warp (max, sum); then [0]: the block's
    __shared__ float cw[CL][AM_QB];                        // combine weights per block (rank) and row
    __shared__ float cinv[AM_QB];
    static_assert(W == 4 || W == 8, "4 or 8 warps");
    constexpr int NT = 32 * W, CG = NT / AM_QB, QE = AM_QB * 64 / NT;   // threads, column groups, q pairs each
    const int d = D ? D : d_arg;
    const int rank = CL > 1 ? (int)(blockIdx.x % CL) : 0;
    const int grp = heads / kv_heads, g = blockIdx.y, nq = B * grp, q0 = (blockIdx.x / CL) * AM_QB;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gi = lane >> 2, t = lane & 3;
    const int d8 = d >> 3, half_d = d >> 1, DS = d >> 4;
    const int C = (n_kv + CL - 1) / CL, jb = min(n_kv, rank * C), je = min(n_kv, jb + C);
    const long long rs = (long long)kv_heads * d;          // halves between cache rows
    half* wbuf = reinterpret_cast<half*>(am_smem) + warp * 4 * 16 * AM_LD;   // [stage][K, V][16][AM_LD]
    // a lane's first row and 16-byte column of a step's copies, and rows per pass when d / 8 divides 32 (d =
    // 64, 128: no division per copy; ncu, 8B batch 64: the divisions were a tenth of the loop's stalls)
    const int lr = lane / d8, le = lane - lr * d8, rpass = 32 % d8 == 0 ? 32 / d8 : 0;
    const half* kb = Kc + (long long)g * d + le * 8;       // this lane's column of head g's K and V rows
    const half* vb = Vc + (long long)g * d + le * 8;
    auto issue = [&](int j0, int stage) {                  // rows past je: a real row, its scores masked
        half* ks = wbuf + stage * 2 * 16 * AM_LD;
        if (rpass) {
            const int passes = rpass ? 16 / rpass : 0;     // lr < rpass, so row lr + k rpass < 16
#pragma unroll
            for (int k = 0; k < passes; k++) {
                const int r = lr + k * rpass;
                const long long off = (long long)min(j0 + r, n_kv - 1) * rs;
                cp_async16(ks + r * AM_LD + le * 8, kb + off);
                cp_async16(ks + (16 + r) * AM_LD + le * 8, vb + off);
            }
        } else {
            for (int c = lane; c < 16 * d8; c += 32) {
                const int r = c / d8, e = c - r * d8;
                const long long off = (long long)min(j0 + r, n_kv - 1) * rs + (long long)g * d + e * 8;
                cp_async16(ks + r * AM_LD + e * 8, Kc + off);
                cp_async16(ks + (16 + r) * AM_LD + e * 8, Vc + off);
            }
        }
        cp_async_commit();
    };
    if (d <= 0 || (d & 15) || d > 128 || d != d_arg || blockDim.x != NT) __trap();   // the registry never launches these
    static_assert(W * AM_QB * AM_OS * 4 <= W * 2 * 2 * 16 * AM_LD * 2, "the partial O fits in the stages");
    PDL_ENTER();
    int j0 = jb + 16 * warp;
    if (j0 < je) issue(j0, 0);                             // the cache is in flight while q is rotated
    {
        // q is rotated as rope_q_pair does, bit for bit, but cheaper (ncu, 8B batch 16: the rotation was 38% of
        // the kernel's stall samples): every load is issued before the first use, and a thread computes a
        // pair's frequency and (sin, cos) only when its pair or token changes (grp heads share a token)
        float2 xv[QE];
        int pv[QE];
        if (NT % half_d == 0) {
            // a thread's pair is fixed and its row advances by NT / half_d per k: one division for the token and
            // head of its first row, then increments (ncu, 8B batch 4: the divisions of q_row per element were a
            // tenth of the kernel's instructions)
            const int step = NT / half_d;
            int qi = q0 + tid / half_d, b = qi / grp, r = qi - b * grp;
            const float* qp = q + (long long)g * grp * d + 2 * (tid % half_d);
#pragma unroll
            for (int k = 0; k < QE; k++) {
                xv[k] = make_float2(0.0f, 0.0f);
                pv[k] = 0;
                if (tid / half_d + k * step < AM_QB && qi < nq) {
                    xv[k] = *reinterpret_cast<const float2*>(qp + ((long long)b * heads + r) * d);
                    pv[k] = pos == nullptr ? 0 : pos[b];
                }
                qi += step;
                for (r += step; r >= grp; r -= grp) ++b;
            }
        } else {
#pragma unroll
            for (int k = 0; k < QE; k++) {
                const int e = tid + NT * k, i = e / half_d, qi = q0 + i;
                xv[k] = make_float2(0.0f, 0.0f);
                pv[k] = 0;
                if (e < AM_QB * half_d && qi < nq) {
                    xv[k] = *reinterpret_cast<const float2*>(q_row(q, qi, grp, g, heads, d) + 2 * (e - i * half_d));
                    pv[k] = pos == nullptr ? 0 : pos[qi / grp];
                }
            }
        }
        int lp = -1, lpos = 0;   // the pair and position of fr and (sn, cs); lpos -1: recompute
        float fr = 0.0f, sn = 0.0f, cs = 1.0f;
#pragma unroll
        for (int k = 0; k < QE; k++) {
            const int e = tid + NT * k, i = e / half_d, p = e - i * half_d;
            if (e < AM_QB * half_d) {
                float2 y = xv[k];
                if (pos != nullptr && q0 + i < nq) {
                    if (p != lp) {
                        fr = rope_freq(p, d, log2_base);
                        lp = p;
                        lpos = -1;
                    }
                    if (pv[k] != lpos || lpos == -1) {
                        sincosf((float)pv[k] * fr, &sn, &cs);
                        lpos = pv[k];
                    }
                    y = rope_rotate(xv[k].x, xv[k].y, sn, cs);
                }
                // scaled before it is rounded to f16: an f16 q overflows 65504 sqrt(d) later than the raw one
                *reinterpret_cast<half2*>(qh + i * AM_LD + 2 * p) = __floats2half2_rn(y.x * scale, y.y * scale);
            }
        }
    }
    __syncthreads();
    unsigned qa[8][4];                                     // Q's A fragments, k16 step s = d 16 s ..
#pragma unroll
    for (int s = 0; s < 8; s++) {
        if (s < DS) {
            qa[s][0] = *reinterpret_cast<const unsigned*>(qh + gi * AM_LD + 16 * s + 2 * t);
            qa[s][1] = *reinterpret_cast<const unsigned*>(qh + (gi + 8) * AM_LD + 16 * s + 2 * t);
            qa[s][2] = *reinterpret_cast<const unsigned*>(qh + gi * AM_LD + 16 * s + 2 * t + 8);
            qa[s][3] = *reinterpret_cast<const unsigned*>(qh + (gi + 8) * AM_LD + 16 * s + 2 * t + 8);
        }
    }
    // this thread's query rows gi and gi + 8: their mask rows (rows past nq read token 0's, never written)
    const float* mr0 = mask + (long long)(q0 + gi < nq ? (q0 + gi) / grp : 0) * n_kv;
    const float* mr1 = mask + (long long)(q0 + gi + 8 < nq ? (q0 + gi + 8) / grp : 0) * n_kv;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f, acc[16][4];
#pragma unroll
    for (int n = 0; n < 16; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    float mv[2][4];                                        // the mask values of a step's scores, a step ahead
    auto load_mask = [&](int j0) {
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = j0 + nt * 8 + 2 * t + (e & 1);
                mv[nt][e] = j < je ? (e < 2 ? mr0 : mr1)[j] : -INFINITY;
            }
    };
    load_mask(j0);
    // K's B fragments: matrix i of ldmatrix.x4 = cache rows 8 (i / 2) .., d columns 16 s + 8 (i & 1) .. (one
    // instruction for both n8 tiles of a k16 step, where two 32-bit loads per tile were)
    const int krow = ((lane >> 4) * 8 + (lane & 7)) * AM_LD + ((lane >> 3) & 1) * 8;
    for (int stage = 0; j0 < je; j0 += 16 * W, stage ^= 1) {
        if (j0 + 16 * W < je) {
            issue(j0 + 16 * W, stage ^ 1);                 // the other stage was consumed last step
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncwarp();                                      // every lane's copies of this stage landed
        const half* ks = wbuf + stage * 2 * 16 * AM_LD;
        const half* vs = ks + 16 * AM_LD;
        float sc[2][4];
#pragma unroll
        for (int nt = 0; nt < 2; nt++) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll
        for (int s = 0; s < 8; s++) {
            if (s < DS) {
                unsigned b[4];
                ldmatrix_x4(b, ks + krow + 16 * s);
                mma_16816(sc[0], qa[s], b[0], b[1]);
                mma_16816(sc[1], qa[s], b[2], b[3]);
            }
        }
        // sc[nt][e]: query row gi + 8 (e >> 1), cache row j0 + 8 nt + 2 t + (e & 1)
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 2; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float z = mv[nt][e] == -INFINITY ? -INFINITY : sc[nt][e] + mv[nt][e];
                sc[nt][e] = z;
                if (e < 2) mx0 = fmaxf(mx0, z);
                else mx1 = fmaxf(mx1, z);
            }
        }
        load_mask(j0 + 16 * W);                            // the next step's, in flight under this one's P V
#pragma unroll
        for (int o = 1; o <= 2; o <<= 1) {                 // the 4 threads of a quad hold a row's 16 columns
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o));
        }
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        const float c0 = m0 == -INFINITY ? 0.0f : expf(m0 - mn0), c1 = m1 == -INFINITY ? 0.0f : expf(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        // a masked score is -inf and expf(-inf) is 0; a row masked so far has the max -inf, taken as 0 (without a
        // branch per score: ncu counted a branch around each expf)
        const float ms0 = mn0 == -INFINITY ? 0.0f : mn0, ms1 = mn1 == -INFINITY ? 0.0f : mn1;
#pragma unroll
        for (int nt = 0; nt < 2; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) sc[nt][e] = expf(sc[nt][e] - (e < 2 ? ms0 : ms1));
        }
        l0 = l0 * c0 + (sc[0][0] + sc[0][1]) + (sc[1][0] + sc[1][1]);   // this thread's columns only
        l1 = l1 * c1 + (sc[0][2] + sc[0][3]) + (sc[1][2] + sc[1][3]);
        const unsigned pa[4] = {pack_half2(sc[0][0], sc[0][1]), pack_half2(sc[0][2], sc[0][3]),
                                pack_half2(sc[1][0], sc[1][1]), pack_half2(sc[1][2], sc[1][3])};
        // V's B fragments: matrix i of ldmatrix.x4.trans = cache rows 8 (i & 1) .., d columns 8 (2 p + i / 2) ..
        const half* vrow = vs + ((lane >> 3) & 1) * 8 * AM_LD + (lane & 7) * AM_LD + (lane >> 4) * 8;
#pragma unroll
        for (int p = 0; p < 8; p++) {
            if (2 * p < d8) {
                unsigned b[4];
                ldmatrix_x4_trans(b, vrow + p * 16);
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    float* a = acc[2 * p + h];
                    a[0] *= c0;
                    a[1] *= c0;
                    a[2] *= c1;
                    a[3] *= c1;
                    mma_16816(a, pa, b[2 * h], b[2 * h + 1]);
                }
            }
        }
        __syncwarp();                                      // every lane read this stage before it is refilled
    }
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, o);
        l1 += __shfl_xor_sync(0xffffffffu, l1, o);
    }
    __syncthreads();                                       // every warp is done with its stages
    float* wo = reinterpret_cast<float*>(am_smem);         // [W][AM_QB][AM_OS] the warps' partial O
#pragma unroll
    for (int n = 0; n < 16; n++) {
        if (n < d8) {
            *reinterpret_cast<float2*>(wo + (warp * AM_QB + gi) * AM_OS + n * 8 + 2 * t) = make_float2(acc[n][0], acc[n][1]);
            *reinterpret_cast<float2*>(wo + (warp * AM_QB + gi + 8) * AM_OS + n * 8 + 2 * t) = make_float2(acc[n][2], acc[n][3]);
        }
    }
    if (t == 0) {
        wml[warp][gi][0] = m0;
        wml[warp][gi][1] = l0;
        wml[warp][gi + 8][0] = m1;
        wml[warp][gi + 8][1] = l1;
    }
    __syncthreads();
    // the block's partial, in warp order, into warp 0's slot: thread (row i, column group cg) owns columns
    // cg, cg + CG, ... of row i (whole rows for the weights, spread columns for the banks)
    const int i = tid / CG, cg8 = tid % CG;
    float bw[W], M = -INFINITY, L = 0.0f;
#pragma unroll
    for (int w = 0; w < W; w++) M = fmaxf(M, wml[w][i][0]);
#pragma unroll
    for (int w = 0; w < W; w++) {
        const float mw = wml[w][i][0];
        bw[w] = mw == -INFINITY ? 0.0f : expf(mw - M);
        L += wml[w][i][1] * bw[w];
    }
    for (int c = cg8; c < d; c += CG) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < W; w++) o += wo[(w * AM_QB + i) * AM_OS + c] * bw[w];
        wo[i * AM_OS + c] = o;                             // only this thread reads or writes (i, c)
    }
    __syncthreads();                                       // every thread read the warps' (max, sum)
    if (cg8 == 0) {
        wml[0][i][0] = M;
        wml[0][i][1] = L;
    }
    const int qi = q0 + i, b = qi / grp, h = g * grp + qi % grp;
    if (CL == 1) {
        if (qi < nq) {
            const float inv = 1.0f / L;
            for (int c = cg8; c < d; c += CG) out[((long long)b * heads + h) * d + c] = (TO)(wo[i * AM_OS + c] * inv);
        }
        return;
    }
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();                                        // every block's partial is in its warp-0 slot
    if (tid < AM_QB) {                                     // every block: the weights of the CL partials
        float Mc = -INFINITY, Lc = 0.0f, mr[CL];
#pragma unroll
        for (int r = 0; r < CL; r++) {
            mr[r] = cluster.map_shared_rank(&wml[0][0][0], r)[tid * 2];
            Mc = fmaxf(Mc, mr[r]);
        }
#pragma unroll
        for (int r = 0; r < CL; r++) {
            const float w = mr[r] == -INFINITY ? 0.0f : expf(mr[r] - Mc);
            cw[r][tid] = w;
            Lc += cluster.map_shared_rank(&wml[0][0][0], r)[tid * 2 + 1] * w;
        }
        cinv[tid] = 1.0f / Lc;
    }
    __syncthreads();
    // block `rank` finishes columns [rank d / CL, (rank + 1) d / CL) of every row
    const int cb = rank * (d / CL), ce = rank == CL - 1 ? d : cb + d / CL;
    if (qi < nq) {
        for (int c = cb + cg8; c < ce; c += CG) {
            float o = 0.0f;
#pragma unroll
            for (int r = 0; r < CL; r++) o += cluster.map_shared_rank(wo, r)[i * AM_OS + c] * cw[r][i];
            out[((long long)b * heads + h) * d + c] = (TO)(o * cinv[i]);
        }
    }
    cluster.sync();                                        // keep every block's shared memory until all read it
}

// ---------------------------------------------------------------------------------------------
// MUL_MAT, f16 weights x f32 activations -> f32.

// Activations are read with plain (coherent) loads, never __ldg / const __restrict__ (ld.global.nc): under
// PDL a kernel starts while its predecessor still writes them, and the non-coherent path may then serve
// stale data (seen on the H100: batch-16 8B logits differed run to run until this was removed).
__device__ __forceinline__ float dot8(const uint4 wv, const float* xp) {
    const float4 x0 = reinterpret_cast<const float4*>(xp)[0];
    const float4 x1 = reinterpret_cast<const float4*>(xp)[1];
    const half2* h = reinterpret_cast<const half2*>(&wv);
    const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]);
    const float2 f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
    float a = f0.x * x0.x;
    a = fmaf(f0.y, x0.y, a);
    a = fmaf(f1.x, x0.z, a);
    a = fmaf(f1.y, x0.w, a);
    a = fmaf(f2.x, x1.x, a);
    a = fmaf(f2.y, x1.y, a);
    a = fmaf(f3.x, x1.z, a);
    a = fmaf(f3.y, x1.w, a);
    return a;
}

// gemm_tc's weight loads: a streamed 16-byte load (evict-first) that asks L2 for the whole 128-byte line on a
// miss. A lane's loads of one row are 64 bytes apart (the mma A layout puts 4 lanes on a row), so two
// instructions read each line; fetching it whole on the first miss measured 1-2% faster 8B steps at batch
// 16 and 64 on the H200 (256 bytes: 1-5% slower; the GEMV, whose warps read whole lines, gained nothing).
__device__ __forceinline__ uint4 ldw(const uint4* p) {
    uint4 v;
    asm("ld.global.cs.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// Batch-1 GEMV that streams W near memory bandwidth: 16-byte streaming loads (4 in flight per lane),
// a block of 8 warps covers `rpb` rows with 8/rpb warps splitting each row's K range, warp-shuffle
// then fixed-order shared-memory reduction. Needs K % 8 == 0. grid: ceil(N / rpb), block 256.
// gemv_row_sum returns true in the one thread that holds the sum of row *row_out. With W2, the N rows are
// virtual and interleave two matrices: row 2 i is W's row i, row 2 i + 1 is W2's row i.
__device__ __forceinline__ bool gemv_row_sum(const half* __restrict__ W, const half* __restrict__ W2, const float* x,
                                             int N, int K, int rpb, float* part, int* row_out, float* sum_out) {
    pdl_start();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wpr = 8 / rpb;                 // warps per row
    const int r = warp / wpr, wr = warp % wpr;
    const int row = blockIdx.x * rpb + r;
    const int step = wpr * 256;              // halves per sweep of this row's warps
    const int rr = row < N ? row : 0;
    const half* w = W2 == nullptr ? W + (long long)rr * K : ((rr & 1) ? W2 : W) + (long long)(rr >> 1) * K;
    int k = (wr * 32 + lane) * 8;
    uint4 wv[4];
    const bool full = row < N && k + 3 * step + 8 <= K;
    if (full) {                              // weights do not depend on earlier kernels: load before waiting
#pragma unroll
        for (int u = 0; u < 4; u++) wv[u] = __ldcs(reinterpret_cast<const uint4*>(w + k + u * step));
    }
    pdl_wait();
    float acc = 0.0f;
    if (full) {
        while (true) {
#pragma unroll
            for (int u = 0; u < 4; u++) acc += dot8(wv[u], x + k + u * step);
            k += 4 * step;
            if (k + 3 * step + 8 > K) break;
#pragma unroll
            for (int u = 0; u < 4; u++) wv[u] = __ldcs(reinterpret_cast<const uint4*>(w + k + u * step));
        }
    }
    if (row < N)
        for (; k + 8 <= K; k += step) acc += dot8(__ldcs(reinterpret_cast<const uint4*>(w + k)), x + k);
    acc = warp_sum(acc);
    *row_out = row;
    if (wpr == 1) {
        *sum_out = acc;
        return lane == 0 && row < N;
    }
    if (lane == 0) part[warp] = acc;
    __syncthreads();
    if (wr == 0 && lane == 0 && row < N) {
        float s = 0.0f;
        for (int t = 0; t < wpr; t++) s += part[r * wpr + t];
        *sum_out = s;
        return true;
    }
    return false;
}

extern "C" __global__ void __launch_bounds__(256) gemv_f16_f32(const half* __restrict__ W, const float* x,
                                                               float* y, int N, int K, int rpb) {
    __shared__ float part[8];
    int row;
    float s;
    if (gemv_row_sum(W, nullptr, x, N, K, rpb, part, &row, &s)) y[row] = s;
}

// Gate and up projections, SILU and MUL in one launch (batch 1): y[i] = silu(Wg[i] . x) * (Wu[i] . x). A
// block sums rpb virtual rows that interleave the two matrices (gate row i, up row i), each exactly as
// gemv_f16_f32 sums a row at rpb rows per block, so (for the same rpb) the result is bitwise that of two
// GEMVs, silu_f32 and binary_f32. y must not overlap x. Needs K % 8 == 0, rpb even. grid ceil(2 N / rpb),
// block 256.
extern "C" __global__ void __launch_bounds__(256) gemv_swiglu_f16_f32(const half* __restrict__ Wg,
                                                                      const half* __restrict__ Wu, const float* x,
                                                                      float* y, int N, int K, int rpb) {
    __shared__ float part[8];
    __shared__ float rs[8];
    int row;
    float s;
    if (gemv_row_sum(Wg, Wu, x, 2 * N, K, rpb, part, &row, &s)) rs[row - blockIdx.x * rpb] = s;
    __syncthreads();
    const int t = threadIdx.x;
    const int i = blockIdx.x * (rpb >> 1) + t;
    if (t < (rpb >> 1) && i < N) {
        const float v = rs[2 * t];
        const float g = v / (1.0f + expf(-v));
        y[i] = g * rs[2 * t + 1];
    }
}

// MUL_MAT + residual ADD + RMS_NORM * w in one launch (batch 1): h[n] = (W x)[n] + r[n]; the last block to
// finish (an atomic ticket on `counter`, after a fence per writer) normalises the whole h:
// y = rms(h) * w, with the first `nb` threads in the element mapping of rms_norm4_f32 at block nb, so the
// result is bitwise that of gemv_f16_f32, binary_f32 and rms_norm4_f32. It resets the counter for the
// next launch. y is written after every block finished, so it may overlap x and r; h may not.
// Needs N % 4 == 0, N / 4 <= 4 * nb, nb <= blockDim.x, nw % 4 == 0; counter zero before the first launch.
extern "C" __global__ void __launch_bounds__(256) gemv_add_rms_f16_f32(const half* __restrict__ W, const float* x,
                                                                       const float* r, float* h, const float* w,
                                                                       float* y, unsigned int* counter, int N,
                                                                       int K, int rpb, int nw, int nb, float eps) {
    __shared__ float part[8];
    __shared__ float sh[32];
    __shared__ unsigned int is_last;
    int row;
    float s;
    if (gemv_row_sum(W, nullptr, x, N, K, rpb, part, &row, &s)) h[row] = s + r[row];
    __threadfence();                         // this thread's h write is visible device-wide before the ticket
    __syncthreads();
    if (threadIdx.x == 0) is_last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const int t = threadIdx.x, H4 = N >> 2;
    const float4* h4 = reinterpret_cast<const float4*>(h);
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = t + c * nb;
        v[c] = (t < nb && i < H4) ? __ldcg(h4 + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        ss += v[c].x * v[c].x + v[c].y * v[c].y + v[c].z * v[c].z + v[c].w * v[c].w;
    }
    ss = block_sum(ss, sh);
    const float scale = rsqrtf(ss / (float)N + eps);
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int i = t + c * nb;
        if (t < nb && i < H4) {
            const float4 wv = reinterpret_cast<const float4*>(w)[i % (nw >> 2)];
            reinterpret_cast<float4*>(y)[i] = make_float4(v[c].x * scale * wv.x, v[c].y * scale * wv.y,
                                                          v[c].z * scale * wv.z, v[c].w * scale * wv.w);
        }
    }
    if (t == 0) *counter = 0u;
}

// Batched MUL_MAT for 2..64 rows of x on the tensor cores (WMMA 16x16x16, f16 in, f32 accumulate):
// a block of 4 warps computes 16 rows of W (16 outputs per x row); warps split K in 64-wide tiles,
// each stages its x tile as f16 in shared memory; partial sums are reduced in a fixed order.
// Needs N % 16 == 0, K % 64 == 0, M <= 64. grid: N / 16, block 128.
#define WG_WARPS 4
#define WG_TK 64
#define WG_LD (WG_TK + 8)
extern "C" __global__ void __launch_bounds__(128) gemm_wmma_f16_f32(const half* __restrict__ W, const float* x,
                                                                    float* y, int M, int N, int K) {
    PDL_ENTER();
    __shared__ __align__(128) unsigned char smem_raw[WG_WARPS * 64 * WG_LD * 2];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * 16;
    const int MT = (M + 15) >> 4;
    half* xs = reinterpret_cast<half*>(smem_raw) + warp * 64 * WG_LD;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4];
#pragma unroll
    for (int i = 0; i < 4; i++) wmma::fill_fragment(acc[i], 0.0f);
    const int T = K / WG_TK;
    for (int t = warp; t < T; t += WG_WARPS) {
        const int k0 = t * WG_TK;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[4];
#pragma unroll
        for (int s = 0; s < 4; s++) wmma::load_matrix_sync(a[s], W + (long long)n0 * K + k0 + s * 16, K);
        for (int i = lane; i < MT * 16 * 16; i += 32) {
            const int m = i >> 4, c = (i & 15) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (m < M) v = *reinterpret_cast<const float4*>(x + (long long)m * K + k0 + c);
            half2* dst = reinterpret_cast<half2*>(xs + m * WG_LD + c);
            dst[0] = __floats2half2_rn(v.x, v.y);
            dst[1] = __floats2half2_rn(v.z, v.w);
        }
        __syncwarp();
#pragma unroll
        for (int s = 0; s < 4; s++) {
#pragma unroll
            for (int mt = 0; mt < 4; mt++) {
                if (mt < MT) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b;
                    wmma::load_matrix_sync(b, xs + mt * 16 * WG_LD + s * 16, WG_LD);
                    wmma::mma_sync(acc[mt], a[s], b, acc[mt]);
                }
            }
        }
        __syncwarp();
    }
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem_raw);  // [WG_WARPS][4][256]
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
        if (mt < MT) wmma::store_matrix_sync(red + (warp * 4 + mt) * 256, acc[mt], 16, wmma::mem_col_major);
    __syncthreads();
    for (int i = threadIdx.x; i < MT * 256; i += blockDim.x) {
        const int mt = i >> 8, e = i & 255;
        const int c = e >> 4, r = e & 15;
        float v = 0.0f;
        for (int w = 0; w < WG_WARPS; w++) v += red[(w * 4 + mt) * 256 + e];
        const int m = mt * 16 + c;
        if (m < M) y[(long long)m * N + n0 + r] = v;
    }
}

// TC_TRIGGER: gemm_tc triggers its dependents at its start (1) or, as before session 15, not at all (0)
#ifndef WG_TRIGGER   // the same for the wgmma build (0: its dependents start when it exits; session 16)
#define WG_TRIGGER 1
#endif
#ifndef TC_TRIGGER
#define TC_TRIGGER 1
#endif

// Batched MUL_MAT for 2..64 rows of x that streams W at memory bandwidth (mma.sync m16n8k16, f16 in, f32
// accumulate). Decode reads every weight once, so the kernel is built like the GEMV that reaches 90% of
// the read bandwidth, not like a GEMM: every warp streams its own 16 rows of W straight from global memory
// into registers (16-byte loads, 16 of them in flight per lane, each reissued for the next super-tile as
// soon as its mma consumed it), with no block barrier between a load and its use. A first pipeline built
// the usual way (W tiles through a cp.async ring in shared memory, two block barriers per tile) reached
// only 20-50%: each tile waited for the slowest of the block's loads. The mma's k order is free, so a lane
// loads 8 consecutive halves of row g and of row g + 8 (its A fragment for two k16 steps) and takes the
// same 8 k positions of each x row for B. x (small, read by every block) is staged per 256-wide super-tile:
// each thread cp.async's its share of the f32 tile two super-tiles ahead and rounds its own share to f16
// (no barrier needed for that: a thread's own copies are visible to it), then one block barrier per
// super-tile publishes the f16 tile (double-buffered). Shapes with few rows of W split K over a cluster of
// CL blocks (Hopper), whose partial tiles are added in rank order through distributed shared memory
// (deterministic; no workspace, no atomics). x rows past M (padding to 16) repeat row M - 1; their outputs
// are not written. A block is 4 or 8 warps (BN = 64 or 128 rows of W): the host takes the fewest K splits
// that still put a block on (nearly) every SM, since a longer stream per warp amortises its ramp and tail.
// The _swiglu kernels read the gate and up matrices [N, K] in one pass and write silu(x Wg^T) * (x Wu^T)
// [M, N]: the bits of the two GEMMs (same cluster size) then swiglu_f32, one launch and no intermediates.
// More rows of x than a build takes (the narrow build above 16) are split into groups of 8 MTX rows, one
// block per (weight tile, group, cluster rank), the groups of a tile neighbours in launch order: they
// stream the tile at about the same time, so HBM serves it once and L2 the rest (8B down projection at 64
// rows: 71 us in four groups vs 84 in the 64-row build, H200, runtime.tools.gemm_bench).
// Needs N % BN == 0 (_swiglu: 2 N % BN), K % (ST CL) == 0, 1 <= M <= 64, x 16-byte aligned.
// grid (N / BN) * G * CL (_swiglu: 2 N / BN * G * CL; G = ceil(M / (8 MTX))), block 2 BN, dynamic shared
// memory tc_smem_bytes (ops.py).
// Two builds: up to 16 rows of x (MTX = 2 n8 tiles, U = 8: 256-wide super-tiles, 16 loads in flight per
// lane: 128 KB of weights in flight per SM with two 8-warp blocks) and up to 64 rows (MTX = 8, U = 4:
// 128-wide super-tiles; its 32 accumulators leave room for 8 loads per lane). ptxas (sm_90): 128-144
// registers for the 64-row build (one 8-warp block per SM), 128 for the split 16-row one (two 8-warp or
// four 4-warp blocks per SM; 162 before the epilogue moved into gemm_tc_store).
// WR m16 tiles of weight rows per warp (16 WR rows; a block 8 WR w rows): at 64 rows of x and WR = 1 a warp
// reads 4 bytes of x from shared memory per weight byte it streams, which bounds the 64-row build below
// the read bandwidth; with WR = 2 every B fragment feeds two tiles. Builds "m" (WR 2, MTX 4, U = TC_MU: 32
// x 32 per warp, 172-230 registers) and "t" (WR 2, MTX 8, U = TC_TU = 2: 32 x 64, 64-wide super-tiles,
// 174-178 registers; U = 4 needed 255 and spilled). Every build adds a row's products in the same k order,
// so one K split gives the same bits whatever the build and warps (GPU test).
// A staged f16 x row is ST + 32 halves, so a quarter-warp's 16-byte B loads hit distinct banks. The
// unsplit 16-row kernels are held to 128 registers (two 8-warp blocks per SM; a few address registers
// spill to L1 once per super-tile): at 166 registers, one block per SM, the 8B lm_head took 279 vs 265 us.

// swiglu_f32's arithmetic, so a fused gate/up GEMM gives the bits of the GEMMs then swiglu_f32
__device__ __forceinline__ float silu_mul(float v, float u) {
    const float s = v / (1.0f + expf(-v));
    return s * u;
}

// gemm_tc's results: acc[nt][2 h + e] holds W row n0 + 16 warp + g + 8 h (SW: gate row g, up row g + 8 of
// output ob + 8 warp + g) against x row 8 nt + 2 tq + e. CL == 1 stores them; a cluster first writes its
// partial tile to shared memory (the caller's x staging, which every warp is done reading) and adds the
// CL tiles in rank order through distributed shared memory.
template <int CL, int MTX, int WR, bool SW>
__device__ __forceinline__ void gemm_tc_store(const float (&acc)[WR][MTX][4], float* y, unsigned char* smem, int M,
                                              int N, int n0, int ob, int rank) {
    const int NT = blockDim.x, BN = (NT >> 1) * WR, MT = (M + 7) >> 3;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    if (CL == 1) {
#pragma unroll
        for (int h = 0; h < WR; h++) {
#pragma unroll
            for (int nt = 0; nt < MTX; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int m = nt * 8 + 2 * tq + (e & 1);
                    if (SW) {
                        if (e < 2 && nt < MT && m < M)
                            y[(long long)m * N + ob + (warp * WR + h) * 8 + g] = silu_mul(acc[h][nt][e], acc[h][nt][e + 2]);
                    } else {
                        const int n = n0 + (warp * WR + h) * 16 + g + 8 * (e >> 1);
                        if (nt < MT && m < M) y[(long long)m * N + n] = acc[h][nt][e];
                    }
                }
            }
        }
        return;
    }
    // (the same loop as above into shared memory; one loop for both changed the unsplit 32-row kernels'
    // codegen: 8B lm_head at 16 rows 290 vs 266 us, H200)
    float* red = reinterpret_cast<float*>(smem);   // [M][BN] partial tile of this block
#pragma unroll
    for (int h = 0; h < WR; h++) {
#pragma unroll
        for (int nt = 0; nt < MTX; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int m = nt * 8 + 2 * tq + (e & 1), r = (warp * WR + h) * 16 + g + 8 * (e >> 1);
                if (nt < MT && m < M) red[m * BN + r] = acc[h][nt][e];
            }
        }
    }
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();                           // every block's partial tile is written
    if (SW) {                                 // partial row r = 16 t + j (gate) pairs with r + 8 (up)
        const int HB = BN >> 1;
        for (int i = rank * NT + threadIdx.x; i < M * HB; i += CL * NT) {
            const int m = i / HB, c = i % HB, r = (c >> 3) * 16 + (c & 7);
            float gs = 0.0f, us = 0.0f;
#pragma unroll
            for (int q = 0; q < CL; q++) {
                const float* pq = cluster.map_shared_rank(red, q);
                gs += pq[m * BN + r];
                us += pq[m * BN + r + 8];
            }
            y[(long long)m * N + ob + c] = silu_mul(gs, us);
        }
    } else {
        for (int i = rank * NT + threadIdx.x; i < M * BN; i += CL * NT) {
            float sum = 0.0f;
#pragma unroll
            for (int q = 0; q < CL; q++) sum += cluster.map_shared_rank(red, q)[i];
            y[(long long)(i / BN) * N + n0 + i % BN] = sum;
        }
    }
    cluster.sync();                           // keep this block's shared memory until the others read it
}

template <int CL, int MTX, int TC_U, int WR, bool SW>
__device__ __forceinline__ void gemm_tc_body(const half* __restrict__ W, const half* __restrict__ W2, const float* x,
                                             float* y, int M, int N, int K) {
    constexpr int TC_ST = 32 * TC_U, TC_LDH = TC_ST + 32;
#if TC_TRIGGER
    // a gemm_tc triggers its dependents first thing, like every other kernel, now that a step's kernels
    // share one L1/shared-memory split (ops.TC_STEP_CARVEOUT). Before that (sessions 5-14) the trigger made
    // the step slower (8B batch 4 / 16: 6.30 / 7.05 ms against 5.29 / 5.58 without): an early dependent of
    // another split cannot share an SM with the running gemm_tc blocks. H200, same process, 3 streams:
    // 8B batch 16 4.716 -> 4.597 ms (one stream 5.019 -> 4.867), 1B batch 4 / 16 0.959 / 1.002 -> 0.927 /
    // 0.984, 8B batch 4 level; a trigger before the epilogue instead gained less (8B batch 16 4.643)
    pdl_start();
#endif
    extern __shared__ __align__(16) unsigned char tc_smem[];
    const int NT = blockDim.x, BN = (NT >> 1) * WR;   // 4 or 8 warps of 16 WR rows each
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int rank = CL > 1 ? (int)(blockIdx.x % CL) : 0;
    // more rows of x than the build takes (8 MTX): the blocks of one weight tile take 8 MTX rows each and
    // are neighbours in launch order (group index right after the cluster rank), so they stream the tile
    // together: one read from HBM, the others from L2
    const int GM = 8 * MTX, G = (M + GM - 1) / GM, tile = (int)(blockIdx.x / CL) / G, gi = (int)(blockIdx.x / CL) % G;
    x += (long long)gi * GM * K;
    y += (long long)gi * GM * N;
    M = min(GM, M - gi * GM);
    const int n0 = tile * BN;
    const int KC = K / CL, kbeg = rank * KC, T = KC / TC_ST;
    const int MP = (M + 15) & ~15, MT = (M + 7) >> 3;
    float* xf = reinterpret_cast<float*>(tc_smem);                                    // [MP][TC_ST] f32 staging
    half* xh = reinterpret_cast<half*>(xf + MP * TC_ST);                              // [2][MP][TC_LDH]
    // this thread's share of an x super-tile: float4 chunks c = tid + i NT (row c / (ST / 4))
    const int NX = MP * (TC_ST / 4) / NT;
    auto stage_x = [&](int j) {
        const float* src = x + kbeg + j * TC_ST;
#pragma unroll 1
        for (int i = 0; i < NX; i++) {
            const int c = threadIdx.x + i * NT, r = c / (TC_ST / 4), q = c % (TC_ST / 4);
            cp_async16(xf + r * TC_ST + q * 4, src + (long long)min(r, M - 1) * K + q * 4);
        }
        cp_async_commit();
    };
    auto round_x = [&](int j) {              // this thread's own staged chunks -> f16 buffer j & 1
        half* dst = xh + (j & 1) * MP * TC_LDH;
#pragma unroll 1
        for (int i = 0; i < NX; i++) {
            const int c = threadIdx.x + i * NT, r = c / (TC_ST / 4), q = c % (TC_ST / 4);
            const float4 v = *reinterpret_cast<const float4*>(xf + r * TC_ST + q * 4);
            half2* d = reinterpret_cast<half2*>(dst + r * TC_LDH + q * 4);
            d[0] = __floats2half2_rn(v.x, v.y);
            d[1] = __floats2half2_rn(v.z, v.w);
        }
    };
    // SW (gate and up in one pass, SwiGLU epilogue): a warp's rows g are gate rows and rows g + 8 the same up
    // rows, so one thread holds both sums of an output; its outputs start at ob + 8 warp (N: output width)
    const int ob = tile * (BN >> 1);
    // m16 tile h of the warp: rows w0[h] (g) and w1[h] (g + 8)
    const half* w0[WR];
    const half* w1[WR];
#pragma unroll
    for (int h = 0; h < WR; h++) {
        const int t = warp * WR + h;
        w0[h] = SW ? W + (long long)(ob + t * 8 + g) * K + kbeg + tq * 8 : W + (long long)(n0 + t * 16 + g) * K + kbeg + tq * 8;
        w1[h] = SW ? W2 + (long long)(ob + t * 8 + g) * K + kbeg + tq * 8 : w0[h] + 8LL * K;
    }
    uint4 wa[WR][TC_U], wb[WR][TC_U];
    // weights never depend on earlier kernels: start streaming them before waiting (PDL)
#pragma unroll
    for (int u = 0; u < TC_U; u++) {
#pragma unroll
        for (int h = 0; h < WR; h++) {
            wa[h][u] = ldw(reinterpret_cast<const uint4*>(w0[h] + u * 32));
            wb[h][u] = ldw(reinterpret_cast<const uint4*>(w1[h] + u * 32));
        }
    }
    pdl_wait();
    stage_x(0);
    cp_async_wait<0>();
    round_x(0);
    if (T > 1) stage_x(1);
    __syncthreads();
    float acc[WR][MTX][4];
#pragma unroll
    for (int h = 0; h < WR; h++)
#pragma unroll
        for (int i = 0; i < MTX; i++) acc[h][i][0] = acc[h][i][1] = acc[h][i][2] = acc[h][i][3] = 0.0f;
    for (int j = 0; j < T; j++) {
        const half* xb = xh + (j & 1) * MP * TC_LDH + g * TC_LDH + tq * 8;
        const bool more = j + 1 < T;
        const uint4* n0p[WR];
        const uint4* n1p[WR];
#pragma unroll
        for (int h = 0; h < WR; h++) {
            n0p[h] = reinterpret_cast<const uint4*>(w0[h] + (j + 1) * TC_ST);   // next super-tile, row g
            n1p[h] = reinterpret_cast<const uint4*>(w1[h] + (j + 1) * TC_ST);   // and row g + 8
        }
#pragma unroll
        for (int u = 0; u < TC_U; u++) {
            unsigned a0[WR][4], a1[WR][4];
#pragma unroll
            for (int h = 0; h < WR; h++) {
                a0[h][0] = wa[h][u].x; a0[h][1] = wb[h][u].x; a0[h][2] = wa[h][u].y; a0[h][3] = wb[h][u].y;   // k slots 0-3
                a1[h][0] = wa[h][u].z; a1[h][1] = wb[h][u].z; a1[h][2] = wa[h][u].w; a1[h][3] = wb[h][u].w;   // 4-7
                if (more) {                  // reissue this register's load for the next super-tile
                    wa[h][u] = ldw(n0p[h] + u * 4);
                    wb[h][u] = ldw(n1p[h] + u * 4);
                }
            }
            // every tile's a0 product, then every a1 product: each accumulator still takes a0's then a1's (the
            // same bits), but no mma waits on the one right before it. Each a1 product right behind its a0
            // one (HMMA latency exposed, one to two warps per scheduler) took 2-9% longer on the registry's
            // launches (H200, runtime.tools.gemm_bench: 8B q/o at 64 rows 25.5 vs 23.3 us, 1B down 27.2 vs 25.4)
            uint4 b[MTX];
#pragma unroll
            for (int nt = 0; nt < MTX; nt++)
                if (nt < MT) b[nt] = *reinterpret_cast<const uint4*>(xb + nt * 8 * TC_LDH + u * 32);
#pragma unroll
            for (int nt = 0; nt < MTX; nt++)
                if (nt < MT)
#pragma unroll
                    for (int h = 0; h < WR; h++) mma_16816(acc[h][nt], a0[h], b[nt].x, b[nt].y);
#pragma unroll
            for (int nt = 0; nt < MTX; nt++)
                if (nt < MT)
#pragma unroll
                    for (int h = 0; h < WR; h++) mma_16816(acc[h][nt], a1[h], b[nt].z, b[nt].w);
            asm volatile("" ::: "memory");   // keep the next chunk's B loads here: hoisted, they spill
        }
        if (more) {
            cp_async_wait<0>();              // this thread's share of super-tile j + 1 landed
            round_x(j + 1);                  // buffer (j + 1) & 1 was last read before the previous barrier
            // stage_x overwrites the f32 words this thread just read: its own reads, whose values the
            // conversion above consumed, so the copies cannot overtake them
            if (j + 2 < T) stage_x(j + 2);
        }
        __syncthreads();
    }
    gemm_tc_store<CL, MTX, WR, SW>(acc, y, tc_smem, M, N, n0, ob, rank);   // x is consumed (barrier above)
}

// gemm_wg: the product on Hopper's warpgroup tensor cores (wgmma, sm_90a) for up to 64 rows of x, both
// operands from shared memory, fed by the tensor memory accelerator (TMA). The registry takes it from 33 rows,
// and from 17 on matrices of few tiles (ops._wg_split).
// Why: at 64 rows the register builds keep the tensor pipe 23-33% busy at 30-50% of the read bandwidth
// (ncu, session 9): mma.sync peaks near 430 TFLOPS on the H200, and a warp's loads, x fragments and products
// serialise behind 1-2 warps per scheduler. wgmma is about twice as fast and asynchronous. Why TMA: the
// same loop fed by per-thread cp.async (16-byte copies, 8 per thread per stage) streamed at 1.8 TB/s
// whatever its depth, fence or copy pattern (ncu: 2 warps per scheduler issuing every 8.3 cycles). Why big
// boxes: TMA boxes of 8 weight rows streamed at 2.2 TB/s, of 64 at 2.8, of 128 at 3.0, of 256 at 3.9 (8B
// lm_head at 64 rows). Why 256 weight rows per block: the f32 x a block stages is then half the bytes of
// its weights, not as many, and the x ring, not the weight ring, was what ran dry at 128.
// One thread issues the copies: per 64-k stage one box of the block's 256 weight rows (128-byte swizzle: the
// layout wgmma reads; SW: 128 gate rows then the same 128 up rows), on a ring of WG_STAGES, WG_STAGES - 1
// ahead, and one box of 64 rows of f32 x (rows past M read as zero) on a ring of WG_XSTAGES, all ahead;
// each stage completes on its own mbarrier. The block rounds stage j + 1's x to f16 (into the same swizzled
// layout) while stage j's products run; one barrier per stage.
// Bits: the tensor cores add k in natural order, 16 per instruction, where the mma.sync builds pair k = 8 tq
// + 0..3: this build's bits differ from theirs, but every plan of a graph launches the same build for the
// same product, and its SwiGLU twin adds each row's products exactly as its plain kernel does (the K split
// is the same, the cluster adds the partial tiles in rank order from zero, as gemm_tc_store does).
// Warpgroup wg holds weight rows 64 (WG_WT wg + h), h < WG_WT, of the block (two m64 tiles).
// Arguments: tensor maps (runtime.kernels.library: weights [N, K] f16 in boxes of 64 k x 256 rows, SW 128;
// x [M, K] f32 in boxes of 64 x 64), y, M, N, K; needs M <= 64, N % 256 == 0 (SW: N % 128), K % 64 == 0, K >= 64 CL
// and tc_smem_bytes(M, "g") of dynamic shared memory (ops.py).
#ifndef WG_WT
#define WG_WT 2
#endif
#ifndef WG_STAGES
#define WG_STAGES 4
#endif
#define WG_KT 64
#ifndef WG_XSTAGES
#define WG_XSTAGES 4
#endif
struct alignas(64) TmaMap {   // a CUtensorMap, passed by value (__grid_constant__)
    unsigned long long v[16];
};
__device__ __forceinline__ unsigned long long wg_desc_sw128(unsigned addr) {
    // K-major, 128-byte swizzle: rows of 128 bytes, 8-row atoms 1024 bytes apart (stride byte offset);
    // the leading byte offset is unused in this mode (PTX ISA, warpgroup matrix descriptors)
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) |
           (1ull << 62);
}
__device__ __forceinline__ void wg_fence_acc(float (&d)[32]) {   // the accumulators are the asm's, not the compiler's
#pragma unroll
    for (int i = 0; i < 32; i++) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void wg_mma_64x64(float (&d)[32], unsigned long long da, unsigned long long db) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, "
                 "%10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, "
                 "%29, %30, %31}, %32, %33, 1, 1, 1, 0, 0;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db));
#else
    __trap();   // no sm_90a: the registry never picks this build then (KernelLibrary.wgmma)
#endif
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile(
        "{\n .reg .pred p;\n WAIT_%=:\n"
        " mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
        " @!p bra WAIT_%=;\n}" ::"r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void tma_load_2d(unsigned dst, const TmaMap* map, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
template <int CL, bool SW>
__device__ __forceinline__ void gemm_wg_body(const TmaMap* tw, const TmaMap* tw2, const TmaMap* tx, float* y, int M,
                                             int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int WT = WG_WT, NT = 256, BN = 128 * WT, S = WG_STAGES, SX = WG_XSTAGES, KT = WG_KT;
    constexpr int WB = BN * KT * 2, XF = 64 * KT * 4, XH = 64 * KT * 2;   // bytes per stage: W, f32 x, f16 x
    static_assert(S >= 2 && SX >= 2 && KT * 2 == 128, "gemm_wg: 128-byte rows, two stages at least");
    extern __shared__ __align__(16) unsigned char tc_smem[];
    // the swizzled tiles need 1024-byte alignment: tc_smem_bytes asks for 1 KB more
    const unsigned raw = (unsigned)__cvta_generic_to_shared(tc_smem), base = (raw + 1023) & ~1023u;
    unsigned char* sm = tc_smem + (base - raw);
    // [S] weight stages, [SX] f32 x stages, [2] f16 x stages, then an mbarrier per weight and per x stage
    const unsigned wring = base, xring = wring + S * WB, xh = xring + SX * XF, wbar = xh + 2 * XH, xbar = wbar + 8 * S;
    const float* xf = reinterpret_cast<const float*>(sm + S * WB);
    unsigned char* xhp = sm + S * WB + SX * XF;
    const int wg = threadIdx.x >> 7, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rank = CL > 1 ? (int)(blockIdx.x % CL) : 0;
    const int tile = (int)(blockIdx.x / CL), n0 = tile * BN, ob = tile * (BN >> 1);
    // rank r streams stages [r TK / CL, (r + 1) TK / CL) of the TK = K / 64 (K / (64 CL) each when that
    // divides): any cluster size, so the registry can fill one wave of SMs (ops._wg_split)
    const int TK = K / KT, kbeg = rank * TK / CL * KT, T = (rank + 1) * TK / CL - rank * TK / CL;
    if (T < 1) __trap();   // K < 64 CL: no stage to wait on (gemm_tc_fits refuses it; a hang otherwise)
    if (threadIdx.x == 0) {
        for (int s = 0; s < S + SX; s++) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(wbar + 8 * s) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    // x rows past M: zero in both f16 buffers (their columns of the product are never stored)
    for (int i = threadIdx.x; i < 2 * XH / 16; i += NT) reinterpret_cast<uint4*>(xhp)[i] = make_uint4(0, 0, 0, 0);
    __syncthreads();
    // thread 0 issues the copies: a weight stage is one box of BN rows x 64 k (SW: BN / 2 gate rows, then the
    // same up rows; boxes of 8 rows streamed at half the rate, two of 64 rows 5-7% slower than one of 128), an
    // x stage one box of 64 rows
    auto issue_w = [&](int s) {
        const unsigned slot = s % S, bar = wbar + 8 * slot;
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(WB) : "memory");
        if (SW) {
            tma_load_2d(wring + slot * WB, tw, kbeg + s * KT, ob, bar);
            tma_load_2d(wring + slot * WB + WB / 2, tw2, kbeg + s * KT, ob, bar);
        } else {
            tma_load_2d(wring + slot * WB, tw, kbeg + s * KT, n0, bar);
        }
    };
    auto issue_x = [&](int s) {
        const unsigned slot = s % SX, bar = xbar + 8 * slot;
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(XF) : "memory");
        tma_load_2d(xring + slot * XF, tx, kbeg + s * KT, 0, bar);
    };
    // this thread's share of rounding a stage: chunk c = tid + i NT is row c / 16, float4 c % 16; it goes to
    // row r's 16-byte slot (c % 16) / 2 XOR (r % 8), as the 128-byte swizzle places it
    auto round_x = [&](int s) {
        const float* src = xf + (s % SX) * (XF / 4);
        unsigned char* dst = xhp + (s & 1) * XH;
#pragma unroll
        for (int i = 0; i < XF / 16 / NT; i++) {
            const int c = threadIdx.x + i * NT, r = c >> 4, cq = c & 15;
            if (r < M) {
                const float4 v = *reinterpret_cast<const float4*>(src + r * KT + cq * 4);
                __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
                uint2 u;
                u.x = *reinterpret_cast<unsigned*>(&lo);
                u.y = *reinterpret_cast<unsigned*>(&hi);
                *reinterpret_cast<uint2*>(dst + r * 128 + ((((cq >> 1) ^ (r & 7)) << 4) | ((cq & 1) << 3))) = u;
            }
        }
    };
    const bool issuer = threadIdx.x == 0;
#if WG_TRIGGER
    pdl_start();
#endif
    // weights never depend on earlier kernels: start streaming them before waiting (PDL)
    if (issuer)
        for (int s = 0; s < S - 1 && s < T; s++) issue_w(s);
    pdl_wait();
    if (issuer)
        for (int s = 0; s < SX && s < T; s++) issue_x(s);
    mbar_wait(xbar, 0);
    round_x(0);
    float d[WT][32];
#pragma unroll
    for (int h = 0; h < WT; h++)
#pragma unroll
        for (int i = 0; i < 32; i++) d[h][i] = 0.0f;
#pragma unroll 1
    for (int j = 0; j < T; j++) {
        mbar_wait(wbar + 8 * (j % S), (j / S) & 1);                                  // weight stage j landed
        if (j + 1 < T) mbar_wait(xbar + 8 * ((j + 1) % SX), ((j + 1) / SX) & 1);   // x stage j + 1 landed
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");   // stage j - 1's products read their slot
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");     // the rounding -> wgmma's reads
        __syncthreads();
        if (issuer) {   // into the slots of weight stage j - 1 and x stage j (rounded before the barrier)
            if (j + S - 1 < T) issue_w(j + S - 1);
            if (j + SX < T) issue_x(j + SX);
        }
        const unsigned b = xh + (j & 1) * XH;
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int s = 0; s < KT / 16; s++)
#pragma unroll
            for (int h = 0; h < WT; h++)   // warpgroup wg: weight rows 64 (WT wg + h) of the stage
                wg_mma_64x64(d[h], wg_desc_sw128(wring + (j % S) * WB + (WT * wg + h) * 64 * 128 + 32 * s),
                             wg_desc_sw128(b + 32 * s));
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        if (j + 1 < T) round_x(j + 1);   // buffer (j + 1) & 1: stage j - 1's, whose products are done
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int h = 0; h < WT; h++) wg_fence_acc(d[h]);
    __syncthreads();                 // every warpgroup is done with the ring: the epilogue reuses it
    // d[h][4 t + e]: weight row 64 (WT wg + h) + 16 (warp % 4) + g + 8 (e >> 1) of the block, x row 8 t + 2 tq +
    // (e & 1). Unsplit plain products are stored from registers; otherwise the partial tile goes through
    // shared memory ([M][BN]; SW: rows < BN / 2 are the gate rows, the others the same up rows) and a cluster
    // adds its tiles in rank order from zero, as gemm_tc_store does
    const int g = lane >> 2, tq = lane & 3;
    auto row = [&](int h, int i) { return 64 * (WT * wg + h) + 16 * (warp & 3) + g + 8 * ((i >> 1) & 1); };
    auto xrow = [&](int i) { return (i >> 2) * 8 + 2 * tq + (i & 1); };
    if (CL == 1 && !SW) {
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++)
                if (xrow(i) < M) y[(long long)xrow(i) * N + n0 + row(h, i)] = d[h][i];
        return;
    }
    float* red = reinterpret_cast<float*>(sm);
#pragma unroll
    for (int h = 0; h < WT; h++)
#pragma unroll
        for (int i = 0; i < 32; i++)
            if (xrow(i) < M) red[xrow(i) * BN + row(h, i)] = d[h][i];
    constexpr int OUT = SW ? BN / 2 : BN;   // outputs per block
    if (CL == 1) {                          // SW, unsplit
        __syncthreads();
        for (int i = threadIdx.x; i < M * OUT; i += NT)
            y[(long long)(i / OUT) * N + ob + i % OUT] = silu_mul(red[(i / OUT) * BN + i % OUT], red[(i / OUT) * BN + OUT + i % OUT]);
        return;
    }
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    for (int i = rank * NT + threadIdx.x; i < M * OUT; i += CL * NT) {
        const int m = i / OUT, c = i % OUT;
        float gs = 0.0f, us = 0.0f;
#pragma unroll
        for (int q = 0; q < CL; q++) {
            const float* pq = cluster.map_shared_rank(red, q);
            gs += pq[m * BN + c];
            if (SW) us += pq[m * BN + OUT + c];
        }
        if (SW)
            y[(long long)m * N + ob + c] = silu_mul(gs, us);
        else
            y[(long long)m * N + n0 + c] = gs;
    }
    cluster.sync();
#else
    __trap();
#endif
}

// attn_mma: one kernel per cluster size (cache rows split over CL blocks) for any head size, and one per
// cluster size and usual head size (d = 64, 128; ops.ATTN_MMA_DIMS) whose body knows d at compile time (its
// own kernel, not a branch of the generic one: ncu counted instruction-fetch stalls once one kernel held the
// three bodies). The same arithmetic in the same order, so the same bits for the same d.
// (TO: the output's type; the f16-output twins, name + "h", are instantiated at the end of this file)
#define ATTN_MMA_KERNEL_T(NAME, CL, D, W, ATTR, TO)                                                          \
    extern "C" __global__ void ATTR __launch_bounds__(32 * W)                                                \
    NAME(const float* q, const int* pos, const half* Kc, const half* Vc, const float* mask, TO* out, int B,   \
         int n_kv, int kv_heads, int heads, int d, float scale, float log2_base) {                           \
        attn_mma_body<CL, D, W, TO>(q, pos, Kc, Vc, mask, out, B, n_kv, kv_heads, heads, d, scale, log2_base); \
    }
#define ATTN_MMA_KERNEL(NAME, CL, D, W, ATTR) ATTN_MMA_KERNEL_T(NAME, CL, D, W, ATTR, float)
#define ATTN_MMA_KERNEL_SET(K, CL, SFX, ATTR)                                                                \
    K(attn_mma##SFX##_f16, CL, 0, 4, ATTR)                                                                   \
    K(attn_mma##SFX##_d64_f16, CL, 64, 4, ATTR)                                                              \
    K(attn_mma##SFX##_d128_f16, CL, 128, 4, ATTR)                                                            \
    K(attn_mma##SFX##_d64w8_f16, CL, 64, 8, ATTR)                                                            \
    K(attn_mma##SFX##_d128w8_f16, CL, 128, 8, ATTR)
#define ATTN_MMA_KERNELS(CL, SFX, ATTR) ATTN_MMA_KERNEL_SET(ATTN_MMA_KERNEL, CL, SFX, ATTR)
ATTN_MMA_KERNELS(1, , )
ATTN_MMA_KERNELS(2, 2, __cluster_dims__(2, 1, 1))
ATTN_MMA_KERNELS(4, 4, __cluster_dims__(4, 1, 1))
ATTN_MMA_KERNELS(8, 8, __cluster_dims__(8, 1, 1))

#define TC_CLUSTER_1
#define TC_CLUSTER_2 __cluster_dims__(2, 1, 1)
#define TC_CLUSTER_4 __cluster_dims__(4, 1, 1)
#define TC_CLUSTER_8 __cluster_dims__(8, 1, 1)
// one build (cluster size, n8 tiles, chunks per super-tile, weight m16 tiles per warp, launch bounds) as a
// plain kernel and its gate/up SwiGLU twin; GEMM_TC_BUILDS: the builds "", "w", "t", "m" (ops.TC_BUILDS)
#define GEMM_TC_KERNELS(NAME, CL, MTX, U, WR, LB)                                                         \
    extern "C" __global__ void TC_CLUSTER_##CL __launch_bounds__ LB                                         \
    NAME##_f16_f32(const half* __restrict__ W, const float* x, float* y, int M, int N, int K) {              \
        gemm_tc_body<CL, MTX, U, WR, false>(W, nullptr, x, y, M, N, K);                                     \
    }                                                                                                        \
    extern "C" __global__ void TC_CLUSTER_##CL __launch_bounds__ LB                                         \
    NAME##_swiglu_f16_f32(const half* __restrict__ Wg, const half* __restrict__ Wu, const float* x, float* y, \
                          int M, int N, int K) {                                                             \
        gemm_tc_body<CL, MTX, U, WR, true>(Wg, Wu, x, y, M, N, K);                                          \
    }
#ifndef TC_TU
#define TC_TU 2
#endif
#ifndef TC_MU
#define TC_MU 4
#endif
#define GEMM_TC_BUILDS(CL, SFX, LB1)                                                                         \
    GEMM_TC_KERNELS(gemm_tc##SFX, CL, 2, 8, 1, LB1)                                                          \
    GEMM_TC_KERNELS(gemm_tc##SFX##w, CL, 8, 4, 1, (256))                                                     \
    GEMM_TC_KERNELS(gemm_tc##SFX##t, CL, 8, TC_TU, 2, (256))                                                 \
    GEMM_TC_KERNELS(gemm_tc##SFX##m, CL, 4, TC_MU, 2, (256))
GEMM_TC_BUILDS(1, , (256, 2))
GEMM_TC_BUILDS(2, 2, (256))
GEMM_TC_BUILDS(4, 4, (256))
GEMM_TC_BUILDS(8, 8, (256))
// a cluster of 16 small blocks (non-portable: KernelLibrary allows it per kernel), so a small matrix can split
// K in 16 and each warp's chain of dependent weight loads is half as long
#define TC_CLUSTER_16 __cluster_dims__(16, 1, 1)
GEMM_TC_BUILDS(16, 16, (256))
// the wgmma build "g" (gemm_wg_body; sm_90a): tensor maps for W (and the SwiGLU pass's up matrix) and x
#define GEMM_WG_KERNELS(NAME, CL)                                                                           \
    extern "C" __global__ void TC_CLUSTER_##CL __launch_bounds__(256, 1)                                     \
    NAME##_f16_f32(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, \
                   int K) {                                                                                  \
        gemm_wg_body<CL, false>(&tw, nullptr, &tx, y, M, N, K);                                              \
    }                                                                                                        \
    extern "C" __global__ void TC_CLUSTER_##CL __launch_bounds__(256, 1)                                     \
    NAME##_swiglu_f16_f32(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu,              \
                          const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) {                \
        gemm_wg_body<CL, true>(&tg, &tu, &tx, y, M, N, K);                                                   \
    }
GEMM_WG_KERNELS(gemm_tcg, 1)
GEMM_WG_KERNELS(gemm_tc2g, 2)
GEMM_WG_KERNELS(gemm_tc4g, 4)
GEMM_WG_KERNELS(gemm_tc8g, 8)
#define TC_CLUSTER_3 __cluster_dims__(3, 1, 1)
#define TC_CLUSTER_5 __cluster_dims__(5, 1, 1)
#define TC_CLUSTER_6 __cluster_dims__(6, 1, 1)
GEMM_WG_KERNELS(gemm_tc3g, 3)   // sizes between the powers of two: one wave of SMs (ops._wg_split)
GEMM_WG_KERNELS(gemm_tc5g, 5)
GEMM_WG_KERNELS(gemm_tc6g, 6)

// Any shape: one thread per output. The slow, always-correct path.
extern "C" __global__ void gemm_naive_f16_f32(const half* __restrict__ W, const float* x,
                                              float* y, int M, int N, int K) {
    PDL_ENTER();
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= (long long)M * N) return;
    const int m = (int)(i / N), n = (int)(i % N);
    const half* w = W + (long long)n * K;
    const float* xr = x + (long long)m * K;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc = fmaf(__half2float(w[k]), xr[k], acc);
    y[i] = acc;
}

// ---------------------------------------------------------------------------------------------
// Test and setup helpers.

// Pull `nbytes` of a weight into L2 (16-byte L2-only loads, 4 in flight per thread); a side stream runs
// it while latency-bound kernels (attention) leave HBM idle, so the next GEMV finds its weights in L2.
// Weights are never written by the step, so this needs no ordering beyond the stream fork and join.
extern "C" __global__ void l2_prefetch(const uint4* p, long long n16, unsigned int* sink) {
    PDL_ENTER();                             // (always launched plainly today; the wait keeps the rule uniform)
    unsigned int acc = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n16; i += 4 * stride) {
        const uint4 a = __ldcg(p + i), b = __ldcg(p + i + stride), c = __ldcg(p + i + 2 * stride),
                    d = __ldcg(p + i + 3 * stride);
        acc ^= a.x ^ b.y ^ c.z ^ d.w;
    }
    for (; i < n16; i += stride) acc ^= __ldcg(p + i).x;
    if (acc == 0x9e3779b9u && sink != nullptr) sink[0] = acc;   // keeps the loads; practically never taken
}

// A read of weight bytes shaped like a weight product but computing nothing (runtime.tools.bound): the
// concatenation of p1 [n1] and p2 [n2] (16-byte units) streamed grid-stride, 4 loads in flight per thread.
// early != 0 loads before the PDL wait (at the end; only weights are read, so nothing is racy): a bound on
// what a product could gain from overlapping its whole stream with the kernels before it.
extern "C" __global__ void weight_stream(const uint4* p1, long long n1, const uint4* p2, long long n2,
                                         unsigned int* sink, int early) {
    pdl_start();
    if (!early) pdl_wait();
    unsigned int acc = 0;
    const long long n16 = n1 + n2, stride = (long long)gridDim.x * blockDim.x;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n16; i += 4 * stride) {
        uint4 v[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const long long j = i + u * stride;
            v[u] = __ldcs(j < n1 ? p1 + j : p2 + (j - n1));
        }
        acc ^= v[0].x ^ v[1].y ^ v[2].z ^ v[3].w;
    }
    for (; i < n16; i += stride) acc ^= __ldcs(i < n1 ? p1 + i : p2 + (i - n1)).x;
    if (early) pdl_wait();
    if (acc == 0x9e3779b9u && sink != nullptr) sink[0] = acc;   // keeps the loads; practically never taken
}

// Busy-wait about `cycles` SM clocks: the jitter mode puts one before a node to shake interleavings.
extern "C" __global__ void spin(long long cycles) {
    PDL_ENTER();
    const long long t0 = clock64();
    while (clock64() - t0 < cycles) {
    }
}

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// p[i] = f16(uniform(-scale, scale)), counter-based so the result does not depend on the launch shape.
extern "C" __global__ void fill_uniform_f16(half* p, unsigned long long n, unsigned long long seed, float scale) {
    PDL_ENTER();
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long r = splitmix64(seed * 0x100000001b3ULL + i);
        const float u = (float)(r >> 40) * (1.0f / 16777216.0f);
        p[i] = __float2half((2.0f * u - 1.0f) * scale);
    }
}

// =============================================================================================
// The f16-activation kernels (session 22), kept together: the library loads them only for a step that
// launches them (runtime.kernels.library.ON_DEMAND; loaded with the library, the 1B batch-1 3-stream step
// measured 0.785 ms against 0.763, with the same launches and the same code for every kernel it runs).

extern "C" __global__ void rms_norm4_f32_f16(const float* x, const float* w, half* y, int H, int nw, float eps) {
    rms_norm4_body(x, w, y, H, nw, eps);
}

extern "C" __global__ void add_rms_norm4_f32_f16(const float* a, const float* b, float* h, const float* w, half* y,
                                                 int H, int nw, float eps) {
    add_rms_norm4_body(a, b, h, w, y, H, nw, eps);
}

// binary_f32 and swiglu_f32 with y rounded to f16 (f16_acts graphs); y must not overlap the inputs (its
// elements are half as wide: element i would land on an input's element i / 2)
extern "C" __global__ void binary_f32_f16(const float* a, const float* b, half* y, long long n, long long nb, int op) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float u = a[i], v = b[nb == n ? i : i % nb];
        y[i] = __float2half_rn(op == 0 ? u + v : u * v);
    }
}
extern "C" __global__ void swiglu_f32_f16(const float* g, const float* u, half* y, long long n) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float v = g[i];
        const float s = v / (1.0f + expf(-v));
        y[i] = __float2half_rn(s * u[i]);
    }
}

// CONT of f32 into f16 (an f16_acts graph's attention output, its group run node by node): y must not
// overlap x (half-width elements)
extern "C" __global__ void cast_f32_f16(const float* x, half* y, long long n) {
    PDL_ENTER();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = __float2half_rn(x[i]);
}

// gemm_ws: the product for 2..64 rows of an f16 x (f16_acts graphs: the norms, the SwiGLU pass and the
// attention write the activations that feed products in f16), warp-specialised (sm_90a).
// Why (session 22, H200, docs/runtime_log.md): a block of the "g" build above stages f32 x and rounds it itself,
// and its one thread that issues the copies waits at every stage's block barrier; here one producer warp
// streams weights and x through a ring of S stages (full / empty mbarriers, no block barrier in the loop)
// and x arrives in f16, TMA'd straight into the swizzled layout wgmma reads: half the x bytes per stage, no
// rounding pass. The same pipeline fed f32 x (rounded by the consumers) was barely faster than the "g"
// build: the x bytes are what bounded it. 1B step at 64 rows, q / o / gate-up+SwiGLU / down chained with PDL
// in a graph: 46.9 us per layer against 65.7 for the f32-x launches.
// NC consumer warpgroups of WT m64 weight tiles (BN = 64 WT NC weight rows per block), one producer warp
// (block 128 NC + 32). Stage j: weights k in [64 j, 64 j + 64) of the block's rows (SW: BN / 2 gate rows,
// then the same up rows: a warpgroup's tile 0 is gate rows 64 wg, tile 1 the same up rows, so one thread
// holds both sums of an output) and the same k of the 64 x rows (rows past M and k past K read as zero: the
// tensor maps' bounds). K is split over a cluster of CL blocks (the launch's cluster dimension; argument CL
// says the same and is checked), partial tiles added in rank order through distributed shared memory, as
// gemm_tc_store does: deterministic, no atomics. Bits: k in natural order, 16 per instruction, like "g".
// SW writes y [M, N] in f16 (OUTH), the plain kernel f32. Needs K % 8 == 0 (16-byte rows for TMA), M <= 64.
#ifndef WS_STAGES1
#define WS_STAGES1 8
#endif
template <int NC, int WT, int S, bool SW, bool OUTH>
__device__ __forceinline__ void gemm_ws_body(const TmaMap* tw, const TmaMap* tw2, const TmaMap* tx, void* yv, int M,
                                             int N, int K, int CLarg) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BN = 64 * WT * NC, WB = BN * 128, XB = 64 * 128, SB = WB + XB;
    static_assert(!SW || WT == 2, "gemm_ws SwiGLU: a warpgroup's tile 0 is gate rows, tile 1 the same up rows");
    extern __shared__ __align__(16) unsigned char tc_smem[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(tc_smem), base = (raw + 1023) & ~1023u;
    unsigned char* sm = tc_smem + (base - raw);
    const unsigned full = base + S * SB, empty = full + 8 * S;
    cg::cluster_group cluster = cg::this_cluster();
    const int CL = (int)cluster.num_blocks(), rank = (int)cluster.block_rank();
    if (CL != CLarg || blockDim.x != 128 * NC + 32) __trap();   // launched as ops.gemm_ws_launch says
    const int tile = (int)(blockIdx.x / CL), n0 = tile * BN, ob = tile * (BN / 2);
    const int TK = (K + 63) / 64, kbeg = rank * TK / CL * 64, T = (rank + 1) * TK / CL - rank * TK / CL;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wg = warp >> 2;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * s) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(empty + 8 * s), "r"(NC * 128) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
#if WG_TRIGGER
    pdl_start();
#endif
    auto issue_w = [&](int j, int s) {   // weights never depend on earlier kernels: issued before the PDL wait
        if (SW) {
            tma_load_2d(base + s * SB, tw, kbeg + j * 64, ob, full + 8 * s);
            tma_load_2d(base + s * SB + WB / 2, tw2, kbeg + j * 64, ob, full + 8 * s);
        } else {
            tma_load_2d(base + s * SB, tw, kbeg + j * 64, n0, full + 8 * s);
        }
    };
    float d[WT][32];
    if (wg == NC) {                      // the producer warp: one lane issues every copy
        if (lane == 0) {
            const int P = T < S ? T : S;
            for (int j = 0; j < P; j++) {
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * j), "r"(SB) : "memory");
                issue_w(j, j);
            }
            pdl_wait();
            for (int j = 0; j < P; j++) tma_load_2d(base + j * SB + WB, tx, kbeg + j * 64, 0, full + 8 * j);
            for (int j = S; j < T; j++) {
                const int s = j % S;
                mbar_wait(empty + 8 * s, ((j / S) - 1) & 1);   // both warpgroups' products of stage j - S are done
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * s), "r"(SB) : "memory");
                issue_w(j, s);
                tma_load_2d(base + s * SB + WB, tx, kbeg + j * 64, 0, full + 8 * s);
            }
        } else {
            pdl_wait();
        }
    } else {
        pdl_wait();                      // (the output may be an earlier kernel's input: write after it)
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++) d[h][i] = 0.0f;
#pragma unroll 1
        for (int j = 0; j < T; j++) {
            const int s = j % S;
            mbar_wait(full + 8 * s, (j / S) & 1);
            const unsigned wb = base + s * SB, xb = wb + WB;
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
            for (int ks = 0; ks < 4; ks++)
#pragma unroll
                for (int h = 0; h < WT; h++)
                    wg_mma_64x64(d[h], wg_desc_sw128(wb + (SW ? h * NC + wg : WT * wg + h) * 64 * 128 + 32 * ks),
                                 wg_desc_sw128(xb + 32 * ks));
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");   // stage j - 1's products are done
            if (j > 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * ((j - 1) % S)) : "memory");
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
        for (int h = 0; h < WT; h++) wg_fence_acc(d[h]);
    }
    __syncthreads();                     // every copy landed and was read: the epilogue reuses the ring
    // d[h][i]: weight row 16 (warp % 4) + g + 8 ((i >> 1) & 1) of tile h's 64, x row 8 (i >> 2) + 2 tq + (i & 1)
    const int g = lane >> 2, tq = lane & 3;
    auto lrow = [&](int i) { return 16 * (warp & 3) + g + 8 * ((i >> 1) & 1); };
    auto xrow = [&](int i) { return (i >> 2) * 8 + 2 * tq + (i & 1); };
    auto put = [&](int m, int n, float v) {
        if (OUTH) reinterpret_cast<half*>(yv)[(long long)m * N + n] = __float2half_rn(v);
        else reinterpret_cast<float*>(yv)[(long long)m * N + n] = v;
    };
    if (CL == 1) {
        if (wg < NC) {
#pragma unroll
            for (int i = 0; i < 32; i++) {
                if (xrow(i) >= M) continue;
                if (SW) {
                    const int n = ob + 64 * wg + lrow(i);
                    if (n < N) put(xrow(i), n, silu_mul(d[0][i], d[1][i]));
                } else {
#pragma unroll
                    for (int h = 0; h < WT; h++) {
                        const int n = n0 + 64 * (WT * wg + h) + lrow(i);
                        if (n < N) put(xrow(i), n, d[h][i]);
                    }
                }
            }
        }
        return;
    }
    float* red = reinterpret_cast<float*>(sm);   // [M][BN] partial tile (SW: gate rows, then the same up rows)
    if (wg < NC) {
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++)
                if (xrow(i) < M) red[xrow(i) * BN + (SW ? h * NC + wg : WT * wg + h) * 64 + lrow(i)] = d[h][i];
    }
    cluster.sync();
    const int NT = blockDim.x, OUT = SW ? BN / 2 : BN;
    for (int i = rank * NT + threadIdx.x; i < M * OUT; i += CL * NT) {
        const int m = i / OUT, c = i % OUT, n = (SW ? ob : n0) + c;
        float gs = 0.0f, us = 0.0f;
#pragma unroll 1
        for (int q = 0; q < CL; q++) {
            const float* pq = cluster.map_shared_rank(red, q);
            gs += pq[m * BN + c];
            if (SW) us += pq[m * BN + OUT + c];
        }
        if (n < N) put(m, n, SW ? silu_mul(gs, us) : gs);
    }
    cluster.sync();                      // keep this block's shared memory until the others read it
#else
    __trap();
#endif
}
// the builds (ops.WS_BUILDS): plain BN 64 (one consumer warpgroup, 8 stages), 128 (one warpgroup of two tiles,
// 8 stages) and 256 (two warpgroups, 4 stages: more weight rows per x byte, for products wider than a wave of
// 64-row blocks, the LM head), SwiGLU BN 128 (64 gate + 64 up rows, one warpgroup, 8 stages) and BN 256 (two
// warpgroups, 4 stages); cluster size from the launch
extern "C" __global__ void __launch_bounds__(160, 1)
gemm_ws_f16x(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K, int CL) {
    gemm_ws_body<1, 1, WS_STAGES1, false, false>(&tw, nullptr, &tx, y, M, N, K, CL);
}
extern "C" __global__ void __launch_bounds__(160, 1)
gemm_ws2_f16x(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K, int CL) {
    gemm_ws_body<1, 2, 8, false, false>(&tw, nullptr, &tx, y, M, N, K, CL);
}
extern "C" __global__ void __launch_bounds__(288, 1)
gemm_ws4_f16x(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K, int CL) {
    gemm_ws_body<2, 2, 4, false, false>(&tw, nullptr, &tx, y, M, N, K, CL);
}
extern "C" __global__ void __launch_bounds__(160, 1)
gemm_ws2_swiglu_f16x(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu,
                     const __grid_constant__ TmaMap tx, half* y, int M, int N, int K, int CL) {
    gemm_ws_body<1, 2, 8, true, true>(&tg, &tu, &tx, y, M, N, K, CL);
}
extern "C" __global__ void __launch_bounds__(288, 1)
gemm_ws4_swiglu_f16x(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu,
                     const __grid_constant__ TmaMap tx, half* y, int M, int N, int K, int CL) {
    gemm_ws_body<2, 2, 4, true, true>(&tg, &tu, &tx, y, M, N, K, CL);
}

// f16 x without Hopper's features (or K % 8 != 0): one thread per output, the slow always-correct path;
// the _swiglu one writes silu(x Wg^T) * (x Wu^T) in f16
extern "C" __global__ void gemm_naive_f16x(const half* __restrict__ W, const half* x, float* y, int M, int N, int K) {
    PDL_ENTER();
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= (long long)M * N) return;
    const int m = (int)(i / N), n = (int)(i % N);
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += __half2float(W[(long long)n * K + k]) * __half2float(x[(long long)m * K + k]);
    y[i] = s;
}
extern "C" __global__ void gemm_naive_swiglu_f16x(const half* __restrict__ Wg, const half* __restrict__ Wu, const half* x,
                                                  half* y, int M, int N, int K) {
    PDL_ENTER();
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= (long long)M * N) return;
    const int m = (int)(i / N), n = (int)(i % N);
    float gs = 0.0f, us = 0.0f;
    for (int k = 0; k < K; k++) {
        const float xv = __half2float(x[(long long)m * K + k]);
        gs += __half2float(Wg[(long long)n * K + k]) * xv;
        us += __half2float(Wu[(long long)n * K + k]) * xv;
    }
    y[i] = __float2half_rn(silu_mul(gs, us));
}

// attn_mma's f16-output twins (name + "h", ops.ATTN_MMA_H): the same bodies, the output rounded to f16
#define ATTN_MMA_H_KERNEL(NAME, CL, D, W, ATTR) ATTN_MMA_KERNEL_T(NAME##h, CL, D, W, ATTR, half)
#define ATTN_MMA_H_KERNELS(CL, SFX, ATTR) ATTN_MMA_KERNEL_SET(ATTN_MMA_H_KERNEL, CL, SFX, ATTR)
ATTN_MMA_H_KERNELS(1, , )
ATTN_MMA_H_KERNELS(2, 2, __cluster_dims__(2, 1, 1))
ATTN_MMA_H_KERNELS(4, 4, __cluster_dims__(4, 1, 1))
ATTN_MMA_H_KERNELS(8, 8, __cluster_dims__(8, 1, 1))
