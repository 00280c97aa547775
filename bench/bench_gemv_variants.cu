/* bench_gemv_variants.cu - the design space of the decode GEMV (y[2, N] = x[2, K] . W^T, bf16 W,
 * f32 x and y) on the device, with cold L2 (weights rotate over copies larger than L2):
 *
 *   rows per warp NR, 16-byte loads per row and lane in flight U, double buffering, the load
 *   instruction (ld.global.nc = __ldg, L1::no_allocate, ld.global.cs), warps per block,
 *
 * each alone at the decode shapes of Dia-1.6B, and as the chain of one decoder step's projections
 * (18 x qkv, o, cq, co, gate_up, down, then logits) captured in a CUDA graph, with and without
 * programmatic dependent launch. Standalone (nvcc bench/bench_gemv_variants.cu -O3 -arch=sm_90);
 * used to choose kernels/cuda/cuda_gemv.cu's configuration, not part of the library. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                     \
    do {                                                                                          \
        cudaError_t e_ = (x);                                                                     \
        if (e_ != cudaSuccess) {                                                                  \
            fprintf(stderr, "%s: %s (line %d)\n", #x, cudaGetErrorString(e_), __LINE__);           \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

enum { LD_NC = 0, LD_NA = 1, LD_CS = 2 };

template <int LD>
__device__ __forceinline__ uint4 ldw(const uint4 *p) {
    uint4 v;
    if (LD == LD_NC) return __ldg(p);
    if (LD == LD_NA)
        asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    else
        asm volatile("ld.global.cs.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

template <int NR, int U, int LD>
__device__ __forceinline__ void ldrows(uint4 (&w)[NR][U], const uint4 *W, int K8, int g0) {
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int g = g0 + 32 * u;
            w[r][u] = g < K8 ? ldw<LD>(W + (size_t)r * K8 + g) : make_uint4(0, 0, 0, 0);
        }
}

template <int NR, int U>
__device__ __forceinline__ void fma_rows(float (&acc)[NR][2], const uint4 (&w)[NR][U], const float *X, int K, int K8,
                                         int g0) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int g = g0 + 32 * u;
        if (g >= K8) break;
#pragma unroll
        for (int m = 0; m < 2; m++) {
            const float4 a = __ldg((const float4 *)(X + (size_t)m * K) + 2 * g);
            const float4 b = __ldg((const float4 *)(X + (size_t)m * K) + 2 * g + 1);
            const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
            for (int r = 0; r < NR; r++) {
                const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&w[r][u];
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const float2 f = __bfloat1622float2(w2[j]);
                    acc[r][m] = fmaf(f.x, xv[2 * j], acc[r][m]);
                    acc[r][m] = fmaf(f.y, xv[2 * j + 1], acc[r][m]);
                }
            }
        }
    }
}

template <int NR, int U, int DB, int LD, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) k_gemv(float *Y, const float *X, const __nv_bfloat16 *Wb, int N, int K,
                                                     int pdl) {
    const int lane = threadIdx.x & 31, n0 = (blockIdx.x * WARPS + (threadIdx.x >> 5)) * NR;
    if (n0 >= N) return;
    const int K8 = K >> 3;
    const uint4 *W = (const uint4 *)Wb + (size_t)n0 * K8;
    float acc[NR][2] = {};
    uint4 cur[NR][U];
    ldrows<NR, U, LD>(cur, W, K8, lane);
    if (pdl) {
        asm volatile("griddepcontrol.wait;" ::: "memory");
        asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    }
    for (int g0 = lane; g0 < K8; g0 += 32 * U) {
        if (DB) {
            uint4 nxt[NR][U];
            ldrows<NR, U, LD>(nxt, W, K8, g0 + 32 * U);
            fma_rows<NR, U>(acc, cur, X, K, K8, g0);
#pragma unroll
            for (int r = 0; r < NR; r++)
#pragma unroll
                for (int u = 0; u < U; u++) cur[r][u] = nxt[r][u];
        } else {
            if (g0 != lane) ldrows<NR, U, LD>(cur, W, K8, g0);
            fma_rows<NR, U>(acc, cur, X, K, K8, g0);
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int m = 0; m < 2; m++) {
            float v = acc[r][m];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0) Y[(size_t)m * N + n0 + r] = v;
        }
}

typedef void (*kfn)(float *, const float *, const __nv_bfloat16 *, int, int, int);
struct variant {
    const char *name;
    kfn f;
    int nr, warps;
};

#define V(NR, U, DB, LD, W) {#NR "x" #U " db" #DB " ld" #LD " w" #W, k_gemv<NR, U, DB, LD, W>, NR, W}
static const variant variants[] = {
    V(1, 8, 0, 0, 8), V(1, 8, 1, 0, 8), V(1, 8, 0, 1, 8), V(1, 8, 1, 1, 8), V(1, 8, 0, 2, 8), V(1, 4, 1, 0, 8),
    V(1, 16, 0, 0, 8), V(1, 8, 0, 0, 4), V(1, 4, 1, 0, 4), V(2, 4, 0, 0, 8), V(2, 4, 1, 0, 8), V(2, 8, 0, 0, 8),
    V(2, 4, 1, 1, 4), V(4, 2, 0, 0, 8), V(4, 2, 1, 0, 8), V(4, 4, 0, 0, 8), V(4, 2, 1, 1, 4), V(2, 2, 1, 0, 4),
};
#define NV (int)(sizeof variants / sizeof variants[0])

struct shape {
    const char *name;
    int N, K;
};
static const shape shapes[] = {{"q|k|v 3072x2048", 3072, 2048}, {"o 2048x2048", 2048, 2048},
                               {"gate_up 16384x2048", 16384, 2048}, {"down 2048x8192", 2048, 8192},
                               {"logits 9252x2048", 9252, 2048}};

static void launch(const variant &v, cudaStream_t s, float *Y, const float *X, const __nv_bfloat16 *W, int N, int K,
                   int pdl) {
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const int per = v.warps * v.nr;
    cfg.gridDim = dim3((unsigned)((N + per - 1) / per));
    cfg.blockDim = dim3((unsigned)(v.warps * 32));
    cfg.stream = s;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = pdl ? 1 : 0;
    CK(cudaLaunchKernelEx(&cfg, v.f, Y, X, W, N, K, pdl));
}

int main(void) {
    const size_t pool_bytes = (size_t)3 << 30; /* the decoder's weights: every launch reads new memory */
    __nv_bfloat16 *pool;
    CK(cudaMalloc(&pool, pool_bytes));
    CK(cudaMemset(pool, 0x3c, pool_bytes));
    float *X, *Y;
    CK(cudaMalloc(&X, 2 * 16384 * sizeof(float)));
    CK(cudaMalloc(&Y, 2 * 16384 * sizeof(float)));
    CK(cudaMemset(X, 0, 2 * 16384 * sizeof(float)));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    /* one op alone, 40 launches over consecutive slices of the pool (cold L2) */
    printf("single GEMVs, M = 2, cold L2 (us per launch, TB/s)\n%-22s", "variant");
    for (const shape &sh : shapes) printf(" %20s", sh.name);
    printf("\n");
    for (int vi = 0; vi < NV; vi++) {
        printf("%-22s", variants[vi].name);
        for (const shape &sh : shapes) {
            const size_t bytes = (size_t)sh.N * sh.K * 2;
            const int n = 40;
            size_t off = 0;
            launch(variants[vi], s, Y, X, pool, sh.N, sh.K, 0);
            CK(cudaEventRecord(e0, s));
            for (int i = 0; i < n; i++) {
                if ((off + bytes) > pool_bytes) off = 0;
                launch(variants[vi], s, Y, X, pool + off / 2, sh.N, sh.K, 0);
                off += bytes;
            }
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            const double us = 1e3 * ms / n;
            printf(" %9.2f us %5.2f TB", us, bytes / (us * 1e6));
        }
        printf("\n");
    }
    /* the projections of a decode step as one CUDA graph (18 layers + logits), PDL off / on */
    printf("\none decode step's projections in a CUDA graph (18 x [qkv, o, cq, co, gate_up, down] + logits, 2.53 GB)\n");
    const int seqN[6] = {3072, 2048, 2048, 2048, 16384, 2048}, seqK[6] = {2048, 2048, 2048, 2048, 2048, 8192};
    for (int vi = 0; vi < NV; vi++)
        for (int pdl = 0; pdl < 2; pdl++) {
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
            size_t off = 0, tot = 0;
            for (int l = 0; l < 18; l++)
                for (int j = 0; j < 6; j++) {
                    launch(variants[vi], s, Y, X, pool + off / 2, seqN[j], seqK[j], pdl);
                    off += (size_t)seqN[j] * seqK[j] * 2;
                }
            launch(variants[vi], s, Y, X, pool + off / 2, 9252, 2048, pdl);
            tot = off + (size_t)9252 * 2048 * 2;
            CK(cudaStreamEndCapture(s, &g));
            CK(cudaGraphInstantiate(&ge, g, 0));
            CK(cudaGraphLaunch(ge, s));
            CK(cudaEventRecord(e0, s));
            for (int i = 0; i < 10; i++) CK(cudaGraphLaunch(ge, s));
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            const double step_s = 1e-3 * ms / 10;
            printf("%-22s pdl %d: %7.1f us per step, %.2f TB/s\n", variants[vi].name, pdl, 1e6 * step_s,
                   (double)tot / step_s / 1e12);
            CK(cudaGraphExecDestroy(ge));
            CK(cudaGraphDestroy(g));
        }
    return 0;
}
