/* cpu_gemm.c - y = x . W through CBLAS sgemm, parallel over blocks of output columns with OpenMP
 * (OpenBLAS itself runs single-threaded: one thread pool, no oversubscription; measured 27x faster
 * on the tiny model than OpenMP ops beside OpenBLAS's own threads on 2 cores). f32 weights are used
 * in place; f16/bf16 weights are converted to f32 per thread, one block of columns at a time, never
 * as a whole copy. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu_backend.h"
#include "log.h"

#define GEMM_BLOCK_FLOATS (1 << 18) /* per-thread conversion scratch: 1 MB */
#define GEMM_MIN_PARALLEL (1 << 22) /* M*N*K below this (~1 ms) runs on one thread: idle OpenMP threads spin */

void cpu_to_f32(float *dst, const void *src, dia_dtype dt, int64_t first, int64_t n) {
    if (dt == DIA_F32) {
        memcpy(dst, (const float *)src + first, (size_t)n * sizeof(float));
    } else if (dt == DIA_BF16) { /* a shift per element: vectorised by the compiler */
        const uint16_t *s = (const uint16_t *)src + first;
        for (int64_t i = 0; i < n; i++) {
            const uint32_t u = (uint32_t)s[i] << 16;
            memcpy(dst + i, &u, 4);
        }
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = cpu_load(src, dt, first + i);
    }
}

/* y[:, n0:n0+n] (+)= x . W[:, n0:n0+n] for one thread. */
static int gemm_cols(const float *X, const dia_tensor *w, int trans_w, float *Y,
                     int64_t M, int64_t N, int64_t K, int64_t n0, int64_t n, float beta0) {
    const void *W = cpu_ptr(w);
    if (w->dtype == DIA_F32) {
        const float *Wf = W;
        if (trans_w) /* W [N,K]: rows n0.. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)n, (int)K, 1.0f, X, (int)K,
                        Wf + n0 * K, (int)K, beta0, Y + n0, (int)N);
        else /* W [K,N]: columns n0.. with leading dimension N */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)n, (int)K, 1.0f, X, (int)K, Wf + n0,
                        (int)N, beta0, Y + n0, (int)N);
        return 0;
    }
    /* f16 / bf16: convert a block of columns of W at a time */
    int64_t nb = GEMM_BLOCK_FLOATS / K;
    if (nb < 1) nb = 1;
    if (nb > n) nb = n;
    /* [nb, K] (trans) or [K, nb]; per call, not per backend: a model may be used from several
     * threads at once (this path serves M > 8 rows: the encoder and prefill, not decode steps) */
    float *scratch = malloc((size_t)(nb * K) * sizeof(float));
    if (!scratch) return -1;
    for (int64_t c0 = n0; c0 < n0 + n; c0 += nb) {
        const int64_t cb = n0 + n - c0 < nb ? n0 + n - c0 : nb;
        if (trans_w) {
            cpu_to_f32(scratch, W, w->dtype, c0 * K, cb * K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)cb, (int)K, 1.0f, X, (int)K, scratch,
                        (int)K, beta0, Y + c0, (int)N);
        } else {
            for (int64_t k = 0; k < K; k++) cpu_to_f32(scratch + k * cb, W, w->dtype, k * N + c0, cb);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)cb, (int)K, 1.0f, X, (int)K, scratch,
                        (int)cb, beta0, Y + c0, (int)N);
        }
    }
    free(scratch);
    return 0;
}

/* Few rows (decode: M = 2B): a streaming kernel that reads each weight once, converting bf16 on the
 * fly, instead of sgemm (which packs the weights: an extra copy of every byte at M = 2). Columns
 * [n0, n0+n) of y[M, N]; each output is computed by one thread in a fixed order, so results do not
 * depend on the thread count. */
#define GEMV_MAX_ROWS 8
static inline float w_at(const void *W, dia_dtype dt, int64_t i) {
    if (dt == DIA_F32) return ((const float *)W)[i];
    const uint32_t u = (uint32_t)((const uint16_t *)W)[i] << 16; /* bf16 */
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* y[0:2, j:j+4] (+)= x[0:2, :] . W[j:j+4, :]^T: one pass over four weight rows (the B = 1 decode),
 * for f32 and bf16 storage; compiled for AVX-512, AVX2 and baseline x86-64. */
static inline float bf16_f32(const uint16_t *p) {
    const uint32_t u = (uint32_t)*p << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
#define BF16_LOAD(p) bf16_f32(p)
#define F32_LOAD(p) (*(p))
#define DEFINE_DOT_4X2(name, T, LOAD)                                                                          \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void name(             \
        const T *W, const float *X, float *Y, int64_t N, int64_t K, int64_t j, int accumulate) {                \
        const T *w0 = W + j * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;                                     \
        const float *x0 = X, *x1 = X + K;                                                                      \
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;          \
        _Pragma("omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)") for (int64_t k = 0; k < K; k++) {    \
            const float u = x0[k], v = x1[k];                                                                  \
            const float c0 = LOAD(w0 + k), c1 = LOAD(w1 + k), c2 = LOAD(w2 + k), c3 = LOAD(w3 + k);            \
            a0 += c0 * u, a1 += c1 * u, a2 += c2 * u, a3 += c3 * u;                                            \
            b0 += c0 * v, b1 += c1 * v, b2 += c2 * v, b3 += c3 * v;                                            \
        }                                                                                                      \
        const float r[2][4] = {{a0, a1, a2, a3}, {b0, b1, b2, b3}};                                            \
        for (int m = 0; m < 2; m++)                                                                            \
            for (int q = 0; q < 4; q++) Y[m * N + j + q] = accumulate ? Y[m * N + j + q] + r[m][q] : r[m][q];  \
    }
DEFINE_DOT_4X2(dot_4x2_f32, float, F32_LOAD)
DEFINE_DOT_4X2(dot_4x2_bf16, uint16_t, BF16_LOAD)

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void gemv_cols(const float *X, const dia_tensor *w, int trans_w, float *Y, int64_t M, int64_t N, int64_t K,
                      int64_t n0, int64_t n, int accumulate) {
    const void *W = cpu_ptr(w);
    const dia_dtype dt = w->dtype;
    if (trans_w) { /* W [N, K]: one dot product per output */
        int64_t j = n0;
        if (M == 2 && dt == DIA_F32) /* the B = 1 decode: two rows of x, four rows of W per pass */
            for (; j + 3 < n0 + n; j += 4) dot_4x2_f32((const float *)W, X, Y, N, K, j, accumulate);
        else if (M == 2 && dt == DIA_BF16)
            for (; j + 3 < n0 + n; j += 4) dot_4x2_bf16((const uint16_t *)W, X, Y, N, K, j, accumulate);
        for (; j < n0 + n; j++) {
            const int64_t row = j * K;
            for (int64_t m = 0; m < M; m++) {
                const float *xm = X + m * K;
                float acc = 0.0f;
                if (dt == DIA_F32) {
                    const float *wr = (const float *)W + row;
#pragma omp simd reduction(+ : acc)
                    for (int64_t k = 0; k < K; k++) acc += wr[k] * xm[k];
                } else {
#pragma omp simd reduction(+ : acc)
                    for (int64_t k = 0; k < K; k++) acc += w_at(W, dt, row + k) * xm[k];
                }
                Y[m * N + j] = accumulate ? Y[m * N + j] + acc : acc;
            }
        }
    } else { /* W [K, N]: rows of W scaled and summed into the block of y */
        float acc[GEMV_MAX_ROWS][256];
        for (int64_t c0 = n0; c0 < n0 + n; c0 += 256) {
            const int64_t nb = n0 + n - c0 < 256 ? n0 + n - c0 : 256;
            for (int64_t m = 0; m < M; m++)
                for (int64_t j = 0; j < nb; j++) acc[m][j] = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                const int64_t base = k * N + c0;
                for (int64_t m = 0; m < M; m++) {
                    const float xv = X[m * K + k];
                    float *am = acc[m];
#pragma omp simd
                    for (int64_t j = 0; j < nb; j++) am[j] += xv * w_at(W, dt, base + j);
                }
            }
            for (int64_t m = 0; m < M; m++)
                for (int64_t j = 0; j < nb; j++)
                    Y[m * N + c0 + j] = accumulate ? Y[m * N + c0 + j] + acc[m][j] : acc[m][j];
        }
    }
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
    int threads = cpu_threads(be);
    if (M * N * K < GEMM_MIN_PARALLEL) threads = 1;
    /* column blocks per thread, multiples of 16 for the micro-kernels */
    int64_t per = (N + threads - 1) / threads;
    per = (per + 15) / 16 * 16;
    if (M <= GEMV_MAX_ROWS && w->dtype != DIA_F16) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int t = 0; t < threads; t++) {
            const int64_t n0 = (int64_t)t * per;
            if (n0 < N) gemv_cols(X, w, trans_w, Y, M, N, K, n0, N - n0 < per ? N - n0 : per, accumulate);
        }
        return DIA_OK;
    }
    int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : failed) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        const int64_t n0 = (int64_t)t * per;
        if (n0 < N) failed |= gemm_cols(X, w, trans_w, Y, M, N, K, n0, N - n0 < per ? N - n0 : per, beta0);
    }
    if (failed) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "matmul scratch");
    return DIA_OK;
}
