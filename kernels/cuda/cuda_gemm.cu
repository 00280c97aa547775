/* cuda_gemm.cu - y[M,N] (+)= x[M,K] . W on the device.
 *
 *   f32 W:            cublasSgemm, default math (no TF32): the parity mode.
 *   bf16 W, nn.Linear layout [N,K], M <= 4 (decode at B <= 2): an own GEMV-style kernel that
 *                     streams the bf16 weight once with 16-byte loads, keeps x in f32 and
 *                     accumulates in f32 (memory bound: the weights are the whole cost).
 *   bf16 W otherwise: x is rounded to bf16 in a scratch buffer and cuBLASLt runs bf16 x bf16 with
 *                     f32 accumulation and f32 output (tensor cores). The algorithm of each GEMM
 *                     shape is chosen once by timing cuBLASLt's candidates (at decode shapes the
 *                     default heuristic often picks too few blocks to stream the weights);
 *                     DIA_CUDA_LT=0 uses cublasGemmEx with the default algorithm instead. (A naive
 *                     wmma skinny GEMM for 4 < M <= 128 was tried and measured 1.5-4x slower.)
 *   f16 W:            converted to f32 in scratch, then cublasSgemm (not used by the loaders).
 * Row-major y = x . W is computed as the column-major y^T = op(W) . x^T. */
#include <math.h>
#include <stdlib.h>

#include "cuda_common.cuh"

#define GEMV_WARPS 8

/* Warp w of the grid owns NR consecutive output columns n (rows of W [N,K]); each lane walks K in
 * steps of 8 elements (one 16-byte load per row of W, two float4 loads per row of x). U groups of
 * W loads per row are issued before any arithmetic so that enough bytes are in flight per warp
 * (the kernel is bound by DRAM latency x bandwidth, not by arithmetic). */
template <int MT, int NR>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv_bf16(float *__restrict__ Y, const float *__restrict__ X, const __nv_bfloat16 *__restrict__ W, int M, int N,
                int K, int accumulate) {
    constexpr int U = NR == 1 ? 8 : (NR == 2 ? 4 : 2);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n0 = (blockIdx.x * GEMV_WARPS + warp) * NR;
    if (n0 >= N) return;
    float acc[NR][MT];
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int m = 0; m < MT; m++) acc[r][m] = 0.0f;
    const uint4 *Wv = (const uint4 *)W;
    const int K8 = K >> 3; /* 16-byte groups per row */
    for (int g0 = lane; g0 < K8; g0 += 32 * U) {
        uint4 wq[NR][U];
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int g = g0 + 32 * u;
                wq[r][u] = (g < K8 && n0 + r < N) ? __ldg(Wv + (size_t)(n0 + r) * K8 + g) : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int g = g0 + 32 * u;
            if (g >= K8) break;
#pragma unroll
            for (int m = 0; m < MT; m++) {
                if (m >= M) break;
                const float4 a = __ldg((const float4 *)(X + (size_t)m * K) + 2 * g);
                const float4 b = __ldg((const float4 *)(X + (size_t)m * K) + 2 * g + 1);
                const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&wq[r][u];
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
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int m = 0; m < MT; m++) {
            float v = acc[r][m];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            acc[r][m] = v;
        }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < NR; r++) {
            const int n = n0 + r;
            if (n >= N) break;
#pragma unroll
            for (int m = 0; m < MT; m++)
                if (m < M) {
                    float *y = Y + (size_t)m * N + n;
                    *y = accumulate ? *y + acc[r][m] : acc[r][m];
                }
        }
    }
}

template <int MT>
static void launch_gemv_mt(cudaStream_t s, float *Y, const float *X, const __nv_bfloat16 *W, int M, int N, int K,
                           int acc, int nr) {
    const int per_block = GEMV_WARPS * nr;
    const unsigned grid = (unsigned)((N + per_block - 1) / per_block);
    if (nr == 4) k_gemv_bf16<MT, 4><<<grid, GEMV_WARPS * 32, 0, s>>>(Y, X, W, M, N, K, acc);
    else if (nr == 2) k_gemv_bf16<MT, 2><<<grid, GEMV_WARPS * 32, 0, s>>>(Y, X, W, M, N, K, acc);
    else k_gemv_bf16<MT, 1><<<grid, GEMV_WARPS * 32, 0, s>>>(Y, X, W, M, N, K, acc);
}

/* The GEMV streams W once but reads x[m] from L1 for every row of W: used for M <= 4 (B <= 2).
 * (Measured on the H100: at M = 16 it is L1-bound, 30 us for 2048x2048 against cuBLAS's 16 us.) */
static int gemv_ok(const dia_tensor *x, const dia_tensor *w, int trans_w, int64_t M, int64_t N, int64_t K) {
    if (!trans_w || w->dtype != DIA_BF16 || K % 8) return 0;
    if (M > 4) return 0;
    if (((uintptr_t)cu_ptr(w)) % 16 || ((uintptr_t)cu_ptr(x)) % 16) return 0;
    return 1;
}

/* ---- bf16 GEMMs with more than 4 rows: cuBLASLt, one timed algorithm choice per shape ---- */
#define LT_MAX_PLANS 64
#define LT_CANDIDATES 16

typedef struct lt_plan {
    int64_t M, N, K;
    int trans, acc, used;
    cublasLtMatmulAlgo_t algo;
} lt_plan;

struct cu_lt_cache {
    lt_plan p[LT_MAX_PLANS];
    int n, next;
};

void cu_lt_destroy(cuda_ctx *c) {
    if (c->lt) cublasLtDestroy(c->lt);
    c->lt = NULL;
    free(c->lt_cache);
    c->lt_cache = NULL;
}

static int lt_enabled(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DIA_CUDA_LT");
        v = !(e && e[0] == '0');
    }
    return v;
}

/* The descriptors of y^T[N, M] = op(W) . xb^T (column-major), destroyed with the object. */
struct lt_descs {
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t a = NULL, b = NULL, c = NULL;
    ~lt_descs() {
        if (op) cublasLtMatmulDescDestroy(op);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (c) cublasLtMatrixLayoutDestroy(c);
    }
};

static dia_status lt_describe(lt_descs *d, int64_t M, int64_t N, int64_t K, int trans) {
    const cublasOperation_t ta = trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    /* W: nn.Linear [N, K] row-major = column-major K x N (op T); DenseGeneral [K, N] = N x K (op N) */
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->a, CUDA_R_16BF, trans ? K : N, trans ? N : K, trans ? K : N));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->b, CUDA_R_16BF, K, M, K));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->c, CUDA_R_32F, N, M, N));
    return DIA_OK;
}

static dia_status lt_run(cuda_ctx *c, const lt_descs &d, const cublasLtMatmulAlgo_t *algo, float *Y, const void *xb,
                         const void *W, int acc) {
    const float alpha = 1.0f, beta = acc ? 1.0f : 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(c->lt, d.op, &alpha, W, d.a, xb, d.b, &beta, Y, d.c, Y, d.c, algo, c->blas_workspace,
                                c->blas_workspace_size, c->stream));
    return DIA_OK;
}

/* Time `reps` runs of one candidate into a scratch output (never into y: accumulate would add). */
static float lt_time(cuda_ctx *c, const lt_descs &d, const cublasLtMatmulAlgo_t *algo, float *tmp, const void *xb,
                     const void *W) {
    cudaEvent_t e0, e1;
    if (cudaEventCreate(&e0) != cudaSuccess) return INFINITY;
    if (cudaEventCreate(&e1) != cudaSuccess) {
        cudaEventDestroy(e0);
        return INFINITY;
    }
    float ms = INFINITY;
    if (lt_run(c, d, algo, tmp, xb, W, 0) == DIA_OK && cudaEventRecord(e0, c->stream) == cudaSuccess) {
        int ok = 1;
        for (int i = 0; i < 5 && ok; i++) ok = lt_run(c, d, algo, tmp, xb, W, 0) == DIA_OK;
        if (ok && cudaEventRecord(e1, c->stream) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess)
            cudaEventElapsedTime(&ms, e0, e1);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    dia_clear_error(); /* a failing candidate is skipped, not reported */
    return ms;
}

static dia_status lt_matmul(dia_backend *be, float *Y, const void *xb, const void *W, int64_t M, int64_t N, int64_t K,
                            int trans, int acc) {
    cuda_ctx *c = cu_ctx(be);
    if (!c->lt_cache && !(c->lt_cache = (cu_lt_cache *)calloc(1, sizeof(cu_lt_cache))))
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    cu_lt_cache *cache = c->lt_cache;
    lt_descs d;
    dia_status st = lt_describe(&d, M, N, K, trans);
    if (st != DIA_OK) return st;
    for (int i = 0; i < cache->n; i++) {
        lt_plan *p = &cache->p[i];
        if (p->M == M && p->N == N && p->K == K && p->trans == trans && p->acc == acc)
            return lt_run(c, d, &p->algo, Y, xb, W, acc);
    }
    cublasLtMatmulPreference_t pref = NULL;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t res[LT_CANDIDATES];
    int nres = 0;
    cublasStatus_t bs = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &c->blas_workspace_size, sizeof c->blas_workspace_size);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasLtMatmulAlgoGetHeuristic(c->lt, d.op, d.a, d.b, d.c, d.c, pref, LT_CANDIDATES, res, &nres);
    cublasLtMatmulPreferenceDestroy(pref);
    if (bs != CUBLAS_STATUS_SUCCESS || nres < 1)
        return dia_fail(DIA_ERR_BACKEND, "cuBLASLt: no algorithm for a bf16 GEMM %lldx%lldx%lld: %s", (long long)M,
                        (long long)N, (long long)K, cublasGetStatusString(bs));
    /* candidates are timed only for the GEMMs of decode steps (issued eagerly through graph_run:
     * their shapes repeat thousands of times); the encoder's and prefill's shapes vary with the
     * text and run once, and under graph capture nothing can be timed: the heuristic's first
     * choice, not remembered */
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    if (!cu_graph_in_step(be) || cudaStreamIsCapturing(c->stream, &cap) != cudaSuccess ||
        cap != cudaStreamCaptureStatusNone)
        return lt_run(c, d, &res[0].algo, Y, xb, W, acc);
    int best = 0;
    float best_ms = INFINITY, first_ms = INFINITY;
    float *tmp = NULL;
    if (nres > 1 && cudaMalloc(&tmp, (size_t)(M * N) * sizeof(float)) == cudaSuccess) {
        for (int i = 0; i < nres; i++) {
            const float ms = lt_time(c, d, &res[i].algo, tmp, xb, W);
            if (i == 0) first_ms = ms;
            if (ms < best_ms) best_ms = ms, best = i;
        }
        cudaFree(tmp);
    }
    cudaGetLastError();
    dia_log(DIA_LOG_DEBUG, "cuBLASLt bf16 GEMM M=%lld N=%lld K=%lld: candidate %d of %d, %.1f us (heuristic's first %.1f us)",
            (long long)M, (long long)N, (long long)K, best, nres, 1e3f * best_ms / 5, 1e3f * first_ms / 5);
    lt_plan *p = cache->n < LT_MAX_PLANS ? &cache->p[cache->n++] : &cache->p[cache->next++ % LT_MAX_PLANS];
    p->M = M, p->N = N, p->K = K, p->trans = trans, p->acc = acc, p->algo = res[best].algo;
    return lt_run(c, d, &p->algo, Y, xb, W, acc);
}

dia_status cu_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                     int accumulate) {
    const int64_t M = x->ne[0], K = x->ne[1];
    const int64_t N = trans_w ? w->ne[0] : w->ne[1];
    const int64_t wk = trans_w ? w->ne[1] : w->ne[0];
    if (x->ndim != 2 || w->ndim != 2 || y->ndim != 2 || wk != K || y->ne[0] != M || y->ne[1] != N ||
        x->dtype != DIA_F32 || y->dtype != DIA_F32 || !cu_is_float(w->dtype))
        return dia_fail(DIA_ERR_INTERNAL, "matmul shapes: x[%lld,%lld] w[%lld,%lld] trans %d y[%lld,%lld]",
                        (long long)M, (long long)K, (long long)w->ne[0], (long long)w->ne[1], trans_w,
                        (long long)y->ne[0], (long long)y->ne[1]);
    if (M == 0 || N == 0) return DIA_OK;
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "matmul too large");
    cuda_ctx *c = cu_ctx(be);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    float *Y = (float *)cu_ptr(y);
    const float *X = (const float *)cu_ptr(x);
    const cublasOperation_t opw = trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldw = trans_w ? (int)K : (int)N;
    if (w->dtype == DIA_F32 || w->dtype == DIA_F16) {
        const float *Wp = (const float *)cu_ptr(w);
        if (w->dtype == DIA_F16) {
            void *tmp;
            dia_status st = cu_scratch(be, CU_SCRATCH_W, (size_t)(N * K) * sizeof(float), &tmp);
            if (st != DIA_OK) return st;
            if ((st = cu_convert_to_f32(be, (float *)tmp, cu_ptr(w), w->dtype, N * K)) != DIA_OK) return st;
            Wp = (const float *)tmp;
        }
        CUBLAS_CHECK(cublasSgemm(c->blas, opw, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, Wp, ldw, X, (int)K, &beta,
                                 Y, (int)N));
        return DIA_OK;
    }
    /* bf16 weights */
    if (gemv_ok(x, w, trans_w, M, N, K)) {
        const __nv_bfloat16 *Wp = (const __nv_bfloat16 *)cu_ptr(w);
        const int nr = N / 4 >= 2048 ? 4 : (N / 2 >= 2048 ? 2 : 1);
        if (M == 1) launch_gemv_mt<1>(c->stream, Y, X, Wp, (int)M, (int)N, (int)K, accumulate, nr);
        else if (M == 2) launch_gemv_mt<2>(c->stream, Y, X, Wp, (int)M, (int)N, (int)K, accumulate, nr);
        else launch_gemv_mt<4>(c->stream, Y, X, Wp, (int)M, (int)N, (int)K, accumulate, nr);
        CU_LAUNCHED("gemv_bf16");
        return DIA_OK;
    }
    void *xb;
    dia_status st = cu_scratch(be, CU_SCRATCH_ACT, (size_t)(M * K) * sizeof(__nv_bfloat16), &xb);
    if (st != DIA_OK) return st;
    if ((st = cu_convert_to_bf16(be, (__nv_bfloat16 *)xb, X, DIA_F32, M * K)) != DIA_OK) return st;
    return cu_matmul_bf16_input(be, y, (const __nv_bfloat16 *)xb, M, K, w, trans_w, accumulate);
}

dia_status cu_matmul_bf16_input(dia_backend *be, dia_tensor *y, const __nv_bfloat16 *xb, int64_t M, int64_t K,
                                 const dia_tensor *w, int trans_w, int accumulate) {
    const int64_t N = trans_w ? w->ne[0] : w->ne[1];
    if (w->dtype != DIA_BF16 || w->ndim != 2 || (trans_w ? w->ne[1] : w->ne[0]) != K || y->dtype != DIA_F32 ||
        y->ne[0] != M || y->ne[1] != N || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return dia_fail(DIA_ERR_INTERNAL, "bf16 matmul shapes");
    cuda_ctx *c = cu_ctx(be);
    float *Y = (float *)cu_ptr(y);
    if (lt_enabled() && c->lt) return lt_matmul(be, Y, xb, cu_ptr(w), M, N, K, trans_w, accumulate);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const cublasOperation_t opw = trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldw = trans_w ? (int)K : (int)N;
    CUBLAS_CHECK(cublasGemmEx(c->blas, opw, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, cu_ptr(w), CUDA_R_16BF, ldw,
                              xb, CUDA_R_16BF, (int)K, &beta, Y, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    return DIA_OK;
}
