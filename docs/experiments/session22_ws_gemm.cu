// Experiment (session 22): a warp-specialised wgmma product for 17..64 rows of x with f16 x in global memory.
#include <cooperative_groups.h>
#include <cuda_fp16.h>
namespace cg = cooperative_groups;

struct alignas(64) TmaMap { unsigned long long v[16]; };
__device__ __forceinline__ float silu_mul(float v, float u) {
    const float s = v / (1.0f + expf(-v));
    return s * u;
}

__device__ __forceinline__ void pdl_start() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ unsigned long long desc_sw128(unsigned addr) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) |
           (1ull << 62);
}
__device__ __forceinline__ void fence_acc(float (&d)[32]) {
#pragma unroll
    for (int i = 0; i < 32; i++) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void mma64(float (&d)[32], unsigned long long da, unsigned long long db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, "
                 "%10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, "
                 "%29, %30, %31}, %32, %33, 1, 1, 1, 0, 0;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db));
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n .reg .pred p;\n WAIT_%=:\n"
                 " mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 " @!p bra WAIT_%=;\n}" ::"r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void tma2d(unsigned dst, const TmaMap* map, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}

// NC consumer warpgroups of WT m64 weight tiles each (BN = 64 WT NC weight rows per block), one producer warp;
// a ring of S stages of (BN x 64 k weights, 64 x 64 k f16 x), full and empty mbarriers, no block barrier
// in the loop. K split over a cluster of CL blocks (cluster dims from the launch), partial tiles added in
// rank order through DSMEM.
template <int NC, int WT, int S, bool SW = false, bool OUTH = false>
__device__ __forceinline__ void ws_body(const TmaMap* tw, const TmaMap* tw2, const TmaMap* tx, float* y, int M, int N, int K) {
    constexpr int BN = 64 * WT * NC, WB = BN * 128, XB = 64 * 128, SB = WB + XB;
    static_assert(!SW || WT == 2, "SwiGLU: a warpgroup's tile 0 is gate rows, tile 1 the same up rows");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
    unsigned char* sm = smem_raw + (base - raw);
    const unsigned full = base + S * SB, empty = full + 8 * S;
    cg::cluster_group cluster = cg::this_cluster();
    const int CL = (int)cluster.num_blocks();
    const int rank = (int)cluster.block_rank();
    const int tile = (int)(blockIdx.x / CL), n0 = tile * BN, ob = tile * (BN / 2);
    const int TK = K / 64, kbeg = rank * TK / CL * 64, T = (rank + 1) * TK / CL - rank * TK / CL;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wg = warp >> 2;
    // stage layout of the weights: plain: BN rows from n0; SW: BN / 2 gate rows from ob, then the same up rows
    auto issue_w = [&](int j, int s) {
        if (SW) {
            tma2d(base + s * SB, tw, kbeg + j * 64, ob, full + 8 * s);
            tma2d(base + s * SB + WB / 2, tw2, kbeg + j * 64, ob, full + 8 * s);
        } else {
            tma2d(base + s * SB, tw, kbeg + j * 64, n0, full + 8 * s);
        }
    };
    // m64 tile h of warpgroup wg: plain rows 64 (WT wg + h); SW: gate rows 64 wg (h = 0), up rows the same (h = 1)
    auto tile_off = [&](int h) { return SW ? (h * NC + wg) * 64 * 128 : (WT * wg + h) * 64 * 128; };
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * s) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(empty + 8 * s), "r"(NC * 128) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    pdl_start();
    float d[WT][32];
    if (wg == NC) {   // producer warp
        if (lane == 0) {
            const int P = T < S ? T : S;
            for (int j = 0; j < P; j++) {
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * j), "r"(SB) : "memory");
                issue_w(j, j);
            }
            pdl_wait();
            for (int j = 0; j < P; j++) tma2d(base + j * SB + WB, tx, kbeg + j * 64, 0, full + 8 * j);
            for (int j = S; j < T; j++) {
                const int s = j % S;
                mbar_wait(empty + 8 * s, ((j / S) - 1) & 1);
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * s), "r"(SB) : "memory");
                issue_w(j, s);
                tma2d(base + s * SB + WB, tx, kbeg + j * 64, 0, full + 8 * s);
            }
        } else {
            pdl_wait();
        }
    } else {
        pdl_wait();
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
                    mma64(d[h], desc_sw128(wb + tile_off(h) + 32 * ks), desc_sw128(xb + 32 * ks));
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
            if (j > 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * ((j - 1) % S)) : "memory");
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
        for (int h = 0; h < WT; h++) fence_acc(d[h]);
    }
    __syncthreads();   // the ring is free: the epilogue reuses it
    const int g = lane >> 2, tq = lane & 3;
    auto row = [&](int h, int i) { return 64 * (WT * wg + h) + 16 * (warp & 3) + g + 8 * ((i >> 1) & 1); };
    auto xrow = [&](int i) { return (i >> 2) * 8 + 2 * tq + (i & 1); };
    auto put = [&](long long idx, float v) {
        if (OUTH) reinterpret_cast<half*>(y)[idx] = __float2half_rn(v); else y[idx] = v;
    };
    if (CL == 1) {
        if (wg < NC) {
#pragma unroll
            for (int i = 0; i < 32; i++) {
                if (xrow(i) >= M) continue;
                if (SW) {
                    put((long long)xrow(i) * N + ob + 64 * wg + row(0, i) - 64 * (WT * wg), silu_mul(d[0][i], d[1][i]));
                } else {
#pragma unroll
                    for (int h = 0; h < WT; h++) put((long long)xrow(i) * N + n0 + row(h, i), d[h][i]);
                }
            }
        }
        return;
    }
    float* red = reinterpret_cast<float*>(sm);   // [M][BN]: plain rows; SW: gate rows then up rows (BN / 2 each)
    if (wg < NC) {
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++) {
                const int r = SW ? (h * NC + wg) * 64 + row(0, i) - 64 * (WT * wg) : row(h, i);
                if (xrow(i) < M) red[xrow(i) * BN + r] = d[h][i];
            }
    }
    cluster.sync();
    const int NT = blockDim.x, OUT = SW ? BN / 2 : BN;
    for (int i = rank * NT + threadIdx.x; i < M * OUT; i += CL * NT) {
        const int m = i / OUT, c = i % OUT;
        float gs = 0.0f, us = 0.0f;
        for (int q = 0; q < CL; q++) {
            const float* pq = cluster.map_shared_rank(red, q);
            gs += pq[m * BN + c];
            if (SW) us += pq[m * BN + OUT + c];
        }
        put((long long)m * N + (SW ? ob : n0) + c, SW ? silu_mul(gs, us) : gs);
    }
    cluster.sync();
}

#define WS_KERNEL(NC, WT, S) \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    ws_##NC##_##WT##_##S(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        ws_body<NC, WT, S>(&tw, nullptr, &tx, y, M, N, K); \
    }
#define WSS_KERNEL(NC, WT, S) \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    wss_##NC##_##WT##_##S(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        ws_body<NC, WT, S, true, false>(&tg, &tu, &tx, y, M, N, K); \
    } \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    wssh_##NC##_##WT##_##S(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        ws_body<NC, WT, S, true, true>(&tg, &tu, &tx, y, M, N, K); \
    }
WSS_KERNEL(2, 2, 4)
WSS_KERNEL(2, 2, 5)
WSS_KERNEL(1, 2, 6)
WSS_KERNEL(1, 2, 8)
WS_KERNEL(2, 2, 4)
WS_KERNEL(2, 2, 5)
WS_KERNEL(1, 2, 6)
WS_KERNEL(1, 2, 8)
WS_KERNEL(2, 1, 6)
WS_KERNEL(2, 1, 8)
WS_KERNEL(1, 1, 8)
WS_KERNEL(1, 1, 12)

// ---- variant R: f32 x, x as the register A operand (rounded to f16 in registers), weights as B from smem ----
__device__ __forceinline__ void mmar128(float (&d)[64], const unsigned (&a)[4], unsigned long long db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 0;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
__device__ __forceinline__ void mmar256(float (&d)[128], const unsigned (&a)[4], unsigned long long db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, 1, 1, 1, 0;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
template <int NW>
__device__ __forceinline__ void mmar(float (&d)[NW / 2], const unsigned (&a)[4], unsigned long long db) {
    if constexpr (NW == 128) mmar128(d, a, db); else mmar256(d, a, db);
}
// NC consumer warpgroups of NW weight rows each (wgmma N; SW: NW / 2 gate rows then the same up rows), one
// producer warp; stage = NC boxes of weights (64 k) + two boxes of f32 x (64 rows x 32 k, 128-byte swizzle)
template <int NC, int NW, int S, bool SW>
__device__ __forceinline__ void wr_body(const TmaMap* tw, const TmaMap* tw2, const TmaMap* tx, float* y, int M, int N,
                                        int K) {
    constexpr int ND = NW / 2, BN = NW * NC, WB = BN * 128, XB = 16384, SB = WB + XB;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
    unsigned char* sm = smem_raw + (base - raw);
    const unsigned full = base + S * SB, empty = full + 8 * S;
    cg::cluster_group cluster = cg::this_cluster();
    const int CL = (int)cluster.num_blocks();
    const int rank = (int)cluster.block_rank();
    const int tile = (int)(blockIdx.x / CL), n0 = tile * BN, ob = tile * (BN / 2);
    const int TK = K / 64, kbeg = rank * TK / CL * 64, T = (rank + 1) * TK / CL - rank * TK / CL;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wg = warp >> 2, g = lane >> 2, tq = lane & 3;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * s) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(empty + 8 * s), "r"(NC * 128) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    pdl_start();
    float d[ND];
    if (wg == NC) {
        if (lane == 0) {
            auto issue_w = [&](int j, int s) {
                const unsigned wb = base + s * SB;
                const int k = kbeg + j * 64;
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    if (SW) {
                        tma2d(wb + c * NW * 128, tw, k, ob + c * (NW / 2), full + 8 * s);
                        tma2d(wb + c * NW * 128 + (NW / 2) * 128, tw2, k, ob + c * (NW / 2), full + 8 * s);
                    } else {
                        tma2d(wb + c * NW * 128, tw, k, n0 + c * NW, full + 8 * s);
                    }
                }
            };
            auto issue_x = [&](int j, int s) {
                const unsigned xb = base + s * SB + WB;
                const int k = kbeg + j * 64;
                tma2d(xb, tx, k, 0, full + 8 * s);
                tma2d(xb + 8192, tx, k + 32, 0, full + 8 * s);
            };
            const int P = T < S ? T : S;
            for (int j = 0; j < P; j++) {
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * j), "r"(SB) : "memory");
                issue_w(j, j);
            }
            pdl_wait();
            for (int j = 0; j < P; j++) issue_x(j, j);
            for (int j = S; j < T; j++) {
                const int s = j % S;
                mbar_wait(empty + 8 * s, ((j / S) - 1) & 1);
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * s), "r"(SB) : "memory");
                issue_w(j, s);
                issue_x(j, s);
            }
        } else {
            pdl_wait();
        }
    } else {
        pdl_wait();
#pragma unroll
        for (int i = 0; i < ND; i++) d[i] = 0.0f;
        const int r0 = 16 * (warp & 3) + g;
        auto load_a = [&](unsigned (&a)[4][4], const unsigned char* xs) {
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                const unsigned char* bx = xs + (ks >> 1) * 8192;
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int r = r0 + 8 * (q & 1), c = (ks & 1) * 16 + 2 * tq + 8 * (q >> 1);
                    const float2 v = *reinterpret_cast<const float2*>(bx + r * 128 + ((((c >> 2) ^ g) & 7) << 4) + (c & 3) * 4);
                    __half2 h = __floats2half2_rn(v.x, v.y);
                    a[ks][q] = *reinterpret_cast<unsigned*>(&h);
                }
            }
        };
        auto step = [&](int j, unsigned (&a)[4][4], unsigned (&ap)[4][4]) {
            const int s = j % S;
            mbar_wait(full + 8 * s, (j / S) & 1);
            load_a(a, sm + s * SB + WB);
            const unsigned wb = base + s * SB + wg * NW * 128;
            unsigned long long db[4];
#pragma unroll
            for (int ks = 0; ks < 4; ks++) db[ks] = desc_sw128(wb + 32 * ks);
#pragma unroll
            for (int i = 0; i < ND; i++) asm volatile("" : "+f"(d[i])::"memory");
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mmar<NW>(d, a[ks], db[ks]);
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
#pragma unroll
            for (int ks = 0; ks < 4; ks++)
#pragma unroll
                for (int q = 0; q < 4; q++) asm volatile("" : "+r"(ap[ks][q])::"memory");
            if (j > 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * ((j - 1) % S)) : "memory");
        };
        unsigned aA[4][4] = {}, aB[4][4] = {};
#pragma unroll 1
        for (int j = 0; j < T; j += 2) {
            step(j, aA, aB);
            if (j + 1 < T) step(j + 1, aB, aA);
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
        for (int i = 0; i < ND; i++) asm volatile("" : "+f"(d[i])::"memory");
    }
    __syncthreads();
    // d[4 t + e]: x row 16 (warp % 4) + g + 8 (e >> 1), weight column 8 t + 2 tq + (e & 1) of the warpgroup
    const int mrow = 16 * (warp & 3) + g;
    if (CL == 1 && wg < NC) {
#pragma unroll
        for (int t = 0; t < (SW ? ND / 8 : ND / 4); t++) {
#pragma unroll
            for (int hi = 0; hi < 2; hi++) {
                const int m = mrow + 8 * hi, col = 8 * t + 2 * tq;
                if (m >= M) continue;
                if (SW) {
                    const int u = t + NW / 16;
                    float2 v = make_float2(silu_mul(d[4 * t + 2 * hi], d[4 * u + 2 * hi]),
                                           silu_mul(d[4 * t + 2 * hi + 1], d[4 * u + 2 * hi + 1]));
                    *reinterpret_cast<float2*>(y + (long long)m * N + ob + wg * (NW / 2) + col) = v;
                } else {
                    *reinterpret_cast<float2*>(y + (long long)m * N + n0 + wg * NW + col) =
                        make_float2(d[4 * t + 2 * hi], d[4 * t + 2 * hi + 1]);
                }
            }
        }
    }
    if (CL == 1) return;
    float* red = reinterpret_cast<float*>(sm);   // [M][BN]
    if (wg < NC) {
#pragma unroll
        for (int t = 0; t < ND / 4; t++)
#pragma unroll
            for (int hi = 0; hi < 2; hi++) {
                const int m = mrow + 8 * hi, col = wg * NW + 8 * t + 2 * tq;
                if (m < M) *reinterpret_cast<float2*>(red + m * BN + col) = make_float2(d[4 * t + 2 * hi], d[4 * t + 2 * hi + 1]);
            }
    }
    cluster.sync();
    const int NT = blockDim.x, OUT = SW ? BN / 2 : BN;
    for (int i = rank * NT + threadIdx.x; i < M * OUT; i += CL * NT) {
        const int m = i / OUT, c = i % OUT;
        const int gc = SW ? (c / (NW / 2)) * NW + c % (NW / 2) : c;
        float gs = 0.0f, us = 0.0f;
        for (int q = 0; q < CL; q++) {
            const float* pq = cluster.map_shared_rank(red, q);
            gs += pq[m * BN + gc];
            if (SW) us += pq[m * BN + gc + NW / 2];
        }
        y[(long long)m * N + (SW ? ob : n0) + c] = SW ? silu_mul(gs, us) : gs;
    }
    cluster.sync();
}
#define WR_KERNEL(NC, NW, S) \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    wr_##NC##_##NW##_##S(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        wr_body<NC, NW, S, false>(&tw, nullptr, &tx, y, M, N, K); \
    } \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    wrs_##NC##_##NW##_##S(const __grid_constant__ TmaMap tg, const __grid_constant__ TmaMap tu, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        wr_body<NC, NW, S, true>(&tg, &tu, &tx, y, M, N, K); \
    }
WR_KERNEL(1, 128, 6)
WR_KERNEL(1, 128, 4)
WR_KERNEL(2, 128, 4)
WR_KERNEL(1, 256, 4)
WR_KERNEL(1, 256, 3)

// ---- variant C: f32 x streamed by the producer (plain 64 x 64 boxes), rounded to f16 by the consumers into a
// triple-buffered swizzled tile (named barrier among the consumers), both wgmma operands from smem ----
template <int NC, int WT, int S>
__device__ __forceinline__ void wc_body(const TmaMap* tw, const TmaMap* tx, float* y, int M, int N, int K) {
    constexpr int BN = 64 * WT * NC, WB = BN * 128, XF = 64 * 64 * 4, SB = WB + XF, XH = 64 * 128, NCT = NC * 128;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
    unsigned char* sm = smem_raw + (base - raw);
    const unsigned xh = base + S * SB, full = xh + 3 * XH, empty = full + 8 * S;
    unsigned char* xhp = sm + S * SB;
    cg::cluster_group cluster = cg::this_cluster();
    const int CL = (int)cluster.num_blocks();
    const int rank = (int)cluster.block_rank();
    const int tile = (int)(blockIdx.x / CL), n0 = tile * BN;
    const int TK = K / 64, kbeg = rank * TK / CL * 64, T = (rank + 1) * TK / CL - rank * TK / CL;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wg = warp >> 2;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * s) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(empty + 8 * s), "r"(NCT) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    pdl_start();
    float d[WT][32];
    if (wg == NC) {
        if (lane == 0) {
            const int P = T < S ? T : S;
            for (int j = 0; j < P; j++) {
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * j), "r"(SB) : "memory");
                tma2d(base + j * SB, tw, kbeg + j * 64, n0, full + 8 * j);
            }
            pdl_wait();
            for (int j = 0; j < P; j++) tma2d(base + j * SB + WB, tx, kbeg + j * 64, 0, full + 8 * j);
            for (int j = S; j < T; j++) {
                const int s = j % S;
                mbar_wait(empty + 8 * s, ((j / S) - 1) & 1);
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * s), "r"(SB) : "memory");
                tma2d(base + s * SB, tw, kbeg + j * 64, n0, full + 8 * s);
                tma2d(base + s * SB + WB, tx, kbeg + j * 64, 0, full + 8 * s);
            }
        } else {
            pdl_wait();
        }
    } else {
        pdl_wait();
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++) d[h][i] = 0.0f;
#pragma unroll 1
        for (int j = 0; j < T; j++) {
            const int s = j % S;
            mbar_wait(full + 8 * s, (j / S) & 1);
            const float* src = reinterpret_cast<const float*>(sm + s * SB + WB);
            unsigned char* dst = xhp + (j % 3) * XH;
#pragma unroll
            for (int i = 0; i < 1024 / NCT; i++) {
                const int c = threadIdx.x + i * NCT, r = c >> 4, cq = c & 15;
                const float4 v = *reinterpret_cast<const float4*>(src + r * 64 + cq * 4);
                __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
                uint2 u;
                u.x = *reinterpret_cast<unsigned*>(&lo);
                u.y = *reinterpret_cast<unsigned*>(&hi);
                *reinterpret_cast<uint2*>(dst + r * 128 + ((((cq >> 1) ^ (r & 7)) << 4) | ((cq & 1) << 3))) = u;
            }
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            asm volatile("bar.sync 1, %0;" ::"r"(NCT) : "memory");
            // the f32 stage is consumed (rounded): W stays until the products are done
            const unsigned wb = base + s * SB, xb = xh + (j % 3) * XH;
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
            for (int ks = 0; ks < 4; ks++)
#pragma unroll
                for (int h = 0; h < WT; h++)
                    mma64(d[h], desc_sw128(wb + (WT * wg + h) * 64 * 128 + 32 * ks), desc_sw128(xb + 32 * ks));
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
            if (j > 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * ((j - 1) % S)) : "memory");
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
        for (int h = 0; h < WT; h++) fence_acc(d[h]);
    }
    __syncthreads();
    const int g = lane >> 2, tq = lane & 3;
    auto row = [&](int h, int i) { return 64 * (WT * wg + h) + 16 * (warp & 3) + g + 8 * ((i >> 1) & 1); };
    auto xrow = [&](int i) { return (i >> 2) * 8 + 2 * tq + (i & 1); };
    if (CL == 1) {
        if (wg < NC) {
#pragma unroll
            for (int h = 0; h < WT; h++)
#pragma unroll
                for (int i = 0; i < 32; i++)
                    if (xrow(i) < M) y[(long long)xrow(i) * N + n0 + row(h, i)] = d[h][i];
        }
        return;
    }
    float* red = reinterpret_cast<float*>(sm);
    if (wg < NC) {
#pragma unroll
        for (int h = 0; h < WT; h++)
#pragma unroll
            for (int i = 0; i < 32; i++)
                if (xrow(i) < M) red[xrow(i) * BN + row(h, i)] = d[h][i];
    }
    cluster.sync();
    const int NT = blockDim.x;
    for (int i = rank * NT + threadIdx.x; i < M * BN; i += CL * NT) {
        float sum = 0.0f;
        for (int q = 0; q < CL; q++) sum += cluster.map_shared_rank(red, q)[i];
        y[(long long)(i / BN) * N + n0 + i % BN] = sum;
    }
    cluster.sync();
}
#define WC_KERNEL(NC, WT, S) \
    extern "C" __global__ void __launch_bounds__(128 * NC + 32, 1) \
    wc_##NC##_##WT##_##S(const __grid_constant__ TmaMap tw, const __grid_constant__ TmaMap tx, float* y, int M, int N, int K) { \
        wc_body<NC, WT, S>(&tw, &tx, y, M, N, K); \
    }
WC_KERNEL(2, 2, 4)
WC_KERNEL(1, 2, 6)
WC_KERNEL(2, 1, 6)
WC_KERNEL(1, 1, 8)
