/* cuda_gemm.cu - y[M,N] (+)= x[M,K] . W on the device.
 *
 *   f32 W:            cublasSgemm, default math (no TF32): the parity mode.
 *   bf16 W, nn.Linear layout [N,K], M <= 4 (decode at B <= 2): an own GEMV-style kernel that
 *                     streams the bf16 weight once with 16-byte loads, keeps x in f32 and
 *                     accumulates in f32 (memory bound: the weights are the whole cost).
 *   bf16 W otherwise: x is rounded to bf16 in a scratch buffer and cublasGemmEx runs bf16 x bf16
 *                     with f32 accumulation and f32 output (tensor cores). (A naive wmma skinny GEMM
 *                     for 4 < M <= 128 was tried and measured 1.5-4x slower than cuBLAS here; cuBLASLt
 *                     with the fastest of its candidates timed per decode shape was tried too: the
 *                     single GEMMs got up to 35% faster, whole B = 64 steps did not (230 vs 233
 *                     steps/s), and the timing cost ~100 ms at the first step, so it was dropped.)
 *   f16 W:            converted to f32 in scratch, then cublasSgemm (not used by the loaders).
 * Row-major y = x . W is computed as the column-major y^T = op(W) . x^T. */

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
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const cublasOperation_t opw = trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldw = trans_w ? (int)K : (int)N;
    CUBLAS_CHECK(cublasGemmEx(c->blas, opw, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, cu_ptr(w), CUDA_R_16BF, ldw,
                              xb, CUDA_R_16BF, (int)K, &beta, Y, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    return DIA_OK;
}
