/* cpu_gemm.c - y = x . W through CBLAS sgemm. f32 weights are used in place; f16/bf16 weights are
 * converted to f32 one block at a time (about 4 MB of scratch), never as a whole copy. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu_backend.h"
#include "log.h"

#define GEMM_BLOCK_FLOATS (1 << 20)

void cpu_to_f32(float *dst, const void *src, dia_dtype dt, int64_t first, int64_t n) {
    if (dt == DIA_F32) {
        memcpy(dst, (const float *)src + first, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = cpu_load(src, dt, first + i);
}

dia_status cpu_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                      int accumulate) {
    const int64_t M = x->ne[0], K = x->ne[1];
    const int64_t N = trans_w ? w->ne[0] : w->ne[1];
    const int64_t wk = trans_w ? w->ne[1] : w->ne[0];
    if (x->ndim != 2 || w->ndim != 2 || y->ndim != 2 || wk != K || y->ne[0] != M || y->ne[1] != N ||
        x->dtype != DIA_F32 || y->dtype != DIA_F32)
        return dia_fail(DIA_ERR_INTERNAL, "matmul shapes: x[%lld,%lld] w[%lld,%lld] trans %d y[%lld,%lld]",
                        (long long)M, (long long)K, (long long)w->ne[0], (long long)w->ne[1], trans_w,
                        (long long)y->ne[0], (long long)y->ne[1]);
    const float *X = cpu_ptr(x);
    float *Y = cpu_ptr(y);
    const float beta0 = accumulate ? 1.0f : 0.0f;
    if (w->dtype == DIA_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_w ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                    X, (int)K, cpu_ptr(w), trans_w ? (int)K : (int)N, beta0, Y, (int)N);
        return DIA_OK;
    }
    const int threads = cpu_threads(be);
    if (trans_w) { /* W [N,K]: blocks of whole rows = blocks of output columns */
        int64_t nb = GEMM_BLOCK_FLOATS / K;
        if (nb < 1) nb = 1;
        if (nb > N) nb = N;
        float *scratch = malloc((size_t)(nb * K) * sizeof(float));
        if (!scratch) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "matmul scratch");
        for (int64_t n0 = 0; n0 < N; n0 += nb) {
            int64_t n = N - n0 < nb ? N - n0 : nb;
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t r = 0; r < n; r++) cpu_to_f32(scratch + r * K, cpu_ptr(w), w->dtype, (n0 + r) * K, K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)n, (int)K, 1.0f, X, (int)K, scratch,
                        (int)K, beta0, Y + n0, (int)N);
        }
        free(scratch);
    } else { /* W [K,N]: blocks of rows = slices of the contraction, accumulated */
        int64_t kb = GEMM_BLOCK_FLOATS / N;
        if (kb < 1) kb = 1;
        if (kb > K) kb = K;
        float *scratch = malloc((size_t)(kb * N) * sizeof(float));
        if (!scratch) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "matmul scratch");
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            int64_t k = K - k0 < kb ? K - k0 : kb;
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t r = 0; r < k; r++) cpu_to_f32(scratch + r * N, cpu_ptr(w), w->dtype, (k0 + r) * N, N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)k, 1.0f, X + k0, (int)K,
                        scratch, (int)N, k0 == 0 ? beta0 : 1.0f, Y, (int)N);
        }
        free(scratch);
    }
    return DIA_OK;
}
