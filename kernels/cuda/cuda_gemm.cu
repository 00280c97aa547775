/* cuda_gemm.cu - y[M,N] (+)= x[M,K] . W on the device.
 *
 *   f32 W:            cublasSgemm, default math (no TF32): the parity mode.
 *   bf16 W, nn.Linear layout [N,K], M <= 4, opt-in (DIA_CUDA_GEMV=1): the GEMV of cuda_gemv.cu
 *                     (streams the bf16 weight once, x in f32, f32 accumulation).
 *   bf16 W otherwise: x is rounded to bf16 in a scratch buffer; several weights on one input
 *                     (q|k|v) at <= 128 rows take cuda_gemm_rows.cu's split-K kernel in one
 *                     launch, else cublasGemmEx runs bf16 x bf16 with f32 accumulation and f32
 *                     output (the opt-in wgmma GEMM of cuda_gemm_wgmma.cu: see there). (A naive wmma skinny GEMM
 *                     for 4 < M <= 128 was tried and measured 1.5-4x slower than cuBLAS here; cuBLASLt
 *                     with the fastest of its candidates timed per decode shape was tried too: the
 *                     single GEMMs got up to 35% faster, whole B = 64 steps did not (230 vs 233
 *                     steps/s), and the timing cost ~100 ms at the first step, so it was dropped.)
 *   f16 W:            converted to f32 in scratch, then cublasSgemm (not used by the loaders).
 *   W in host memory (option encoder_memory=host): copied to a device scratch by DMA first.
 *   bf16 x (with bf16 W): used as the GEMM operand directly (cu_matmul_bf16_input).
 * Row-major y = x . W is computed as the column-major y^T = op(W) . x^T. */
#include "cuda_common.cuh"

/* Where a GEMM reads weight w: its own memory, or for a weight moved to host memory
 * (buffer_to_host) a device copy of it in the CU_SCRATCH_W slot, made in stream order by one DMA
 * (cuBLAS then reads device memory; one such weight per GEMM at a time). */
static dia_status weight_ptr(dia_backend *be, const dia_tensor *w, const void **out) {
    *out = cu_ptr(w);
    if (!w->buf->host_mem) return DIA_OK;
    const size_t bytes = dia_tensor_nbytes(w);
    void *p;
    dia_status st = cu_scratch(be, CU_SCRATCH_W, bytes, &p);
    if (st != DIA_OK) return st;
    CU_CHECK(cudaMemcpyAsync(p, (const char *)w->buf->host_mem + w->offset, bytes, cudaMemcpyHostToDevice,
                             cu_ctx(be)->stream));
    *out = p;
    return DIA_OK;
}

dia_status cu_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                     int accumulate) {
    const int64_t M = x->ne[0], K = x->ne[1];
    const int64_t N = trans_w ? w->ne[0] : w->ne[1];
    const int64_t wk = trans_w ? w->ne[1] : w->ne[0];
    if (x->ndim != 2 || w->ndim != 2 || y->ndim != 2 || wk != K || y->ne[0] != M || y->ne[1] != N ||
        (x->dtype != DIA_F32 && !(x->dtype == DIA_BF16 && w->dtype == DIA_BF16)) || y->dtype != DIA_F32 ||
        !cu_is_float(w->dtype))
        return dia_fail(DIA_ERR_INTERNAL, "matmul shapes: x[%lld,%lld] w[%lld,%lld] trans %d y[%lld,%lld]",
                        (long long)M, (long long)K, (long long)w->ne[0], (long long)w->ne[1], trans_w,
                        (long long)y->ne[0], (long long)y->ne[1]);
    if (M == 0 || N == 0) return DIA_OK;
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "matmul too large");
    /* bf16 x (activations the decoder keeps in bf16, see activation_dtype): the GEMM operand as is */
    if (x->dtype == DIA_BF16)
        return cu_matmul_bf16_input(be, y, (const __nv_bfloat16 *)cu_ptr(x), M, K, w, trans_w, accumulate);
    cuda_ctx *c = cu_ctx(be);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    float *Y = (float *)cu_ptr(y);
    const float *X = (const float *)cu_ptr(x);
    const cublasOperation_t opw = trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldw = trans_w ? (int)K : (int)N;
    if (w->dtype == DIA_F32 || w->dtype == DIA_F16) {
        const void *wp;
        dia_status wst = weight_ptr(be, w, &wp);
        if (wst != DIA_OK) return wst;
        const float *Wp = (const float *)wp;
        if (w->dtype == DIA_F16) {
            void *tmp;
            dia_status st = cu_scratch(be, CU_SCRATCH_W, (size_t)(N * K) * sizeof(float), &tmp);
            if (st != DIA_OK) return st;
            if (w->buf->host_mem) return dia_fail(DIA_ERR_INTERNAL, "matmul: f16 weight in host memory");
            if ((st = cu_convert_to_f32(be, (float *)tmp, cu_ptr(w), w->dtype, N * K)) != DIA_OK) return st;
            Wp = (const float *)tmp;
        }
        CUBLAS_CHECK(cublasSgemm(c->blas, opw, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, Wp, ldw, X, (int)K, &beta,
                                 Y, (int)N));
        return DIA_OK;
    }
    /* bf16 weights: the decode GEMV of cuda_gemv.cu for up to 4 rows (nn.Linear layout) */
    {
        dia_linear_args a;
        memset(&a, 0, sizeof a);
        a.x = x, a.n = 1, a.y[0] = y, a.w[0] = w, a.trans_w[0] = trans_w, a.accumulate = accumulate;
        if (cu_linear_fusable(&a)) return cu_linear_fused(be, &a);
    }
    void *xb;
    dia_status st = cu_scratch(be, CU_SCRATCH_ACT, (size_t)(M * K) * sizeof(__nv_bfloat16), &xb);
    if (st != DIA_OK) return st;
    if ((st = cu_convert_to_bf16(be, (__nv_bfloat16 *)xb, X, DIA_F32, M * K)) != DIA_OK) return st;
    return cu_matmul_bf16_input(be, y, (const __nv_bfloat16 *)xb, M, K, w, trans_w, accumulate);
}

/* One bf16 weight through cuBLAS. */
static dia_status cublas_bf16(dia_backend *be, dia_tensor *y, const __nv_bfloat16 *xb, int64_t M, int64_t K,
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
    const void *wp;
    dia_status st = weight_ptr(be, w, &wp);
    if (st != DIA_OK) return st;
    CUBLAS_CHECK(cublasGemmEx(c->blas, opw, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, wp, CUDA_R_16BF, ldw,
                              xb, CUDA_R_16BF, (int)K, &beta, Y, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    return DIA_OK;
}

/* y_i (+)= xb . W_i for n <= 3 bf16 weights on one bf16 input: the wgmma GEMM where enabled
 * (DIA_CUDA_GEMM_WG=1, cuda_gemm_wgmma.cu), else the mma.sync split-K GEMM where it is chosen
 * (cuda_gemm_rows.cu: several weights; DIA_CUDA_GEMM_ROWS=2 forces it, also ahead of wgmma), else
 * cuBLAS per weight. */
dia_status cu_gemm_bf16_multi(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                              const dia_tensor *const *w, const int *trans_w, dia_tensor *const *y, int accumulate) {
    const char *e = getenv("DIA_CUDA_GEMM_ROWS");
    const int rows_forced = e && e[0] == '2';
    if (!rows_forced && cu_gemm_wgmma_ok(xb, M, K, n, w, trans_w, y))
        return cu_gemm_wgmma(be, xb, M, K, n, w, y, accumulate);
    if (cu_gemm_rows_ok(xb, M, K, n, w, trans_w, y)) return cu_gemm_rows(be, xb, M, K, n, w, y, accumulate);
    dia_status st = DIA_OK;
    for (int i = 0; i < n && st == DIA_OK; i++) st = cublas_bf16(be, y[i], xb, M, K, w[i], trans_w[i], accumulate);
    return st;
}

dia_status cu_matmul_bf16_input(dia_backend *be, dia_tensor *y, const __nv_bfloat16 *xb, int64_t M, int64_t K,
                                 const dia_tensor *w, int trans_w, int accumulate) {
    return cu_gemm_bf16_multi(be, xb, M, K, 1, &w, &trans_w, &y, accumulate);
}
