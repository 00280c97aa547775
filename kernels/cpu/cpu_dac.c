/* cpu_dac.c - the DAC codec ops on the CPU: conv1d (im2col tiles + sgemm), conv_transpose1d
 * (sgemm into columns, then overlap-add), Snake, tanh, codebook lookup and nearest-code search.
 * Activations are f32 [C, T] (batch 1); weights may be f32, f16 or bf16. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "log.h"

/* Columns per sgemm call. Every call has exactly this many columns (the last tile is padded with
 * zeros): OpenBLAS then computes every column the same way wherever it sits, so a chunk of a
 * sequence gives bit-identical values to the whole sequence (its path, and so its rounding,
 * depends on N). It also bounds the column buffer to [Cin K, 256] floats. */
#define DAC_TILE_COLS 256

/* Threads for `work` multiply-adds: one below ~4M (idle OpenMP threads cost more than they save). */
static int dac_par(const dia_backend *be, int64_t work) { return work < ((int64_t)1 << 22) ? 1 : cpu_threads(be); }

/* An f32 pointer to all of weight tensor `w`: the tensor itself if it is f32, else a converted
 * copy returned in *owned (free() it). */
static dia_status weight_f32(const dia_backend *be, const dia_tensor *w, const float **out, float **owned) {
    *owned = NULL;
    if (w->dtype == DIA_F32) {
        *out = cpu_ptr(w);
        return DIA_OK;
    }
    if (w->dtype != DIA_F16 && w->dtype != DIA_BF16)
        return dia_fail(DIA_ERR_INTERNAL, "DAC weight of dtype %s is not a float type", dia_dtype_name(w->dtype));
    const int64_t n = dia_tensor_nelem(w);
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); /* [n] */
    if (!p) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory converting a DAC weight of %lld elements",
                            (long long)n);
    const void *src = cpu_ptr(w);
    const int64_t chunk = 1 << 16;
#pragma omp parallel for num_threads(dac_par(be, n)) schedule(static)
    for (int64_t i = 0; i < n; i += chunk) cpu_to_f32(p + i, src, w->dtype, i, n - i < chunk ? n - i : chunk);
    *out = p;
    *owned = p;
    return DIA_OK;
}

/* Every row o of Y[rows, T] set to b[o] (or 0 without a bias). */
static void fill_bias(const dia_backend *be, float *Y, int64_t rows, int64_t T, const dia_tensor *b) {
#pragma omp parallel for num_threads(dac_par(be, rows * T)) schedule(static)
    for (int64_t o = 0; o < rows; o++) {
        const float v = b ? cpu_load(cpu_ptr(b), b->dtype, o) : 0.0f;
        float *yr = Y + o * T;
        for (int64_t t = 0; t < T; t++) yr[t] = v;
    }
}

/* C[M, NB] = A . B[Kd, NB] in fixed blocks of DAC_ROWS rows, for G tiles at once, parallel over
 * (tile, row block). A is [M, Kd] (trans 0) or stored [Kd, M] (trans 1); tile g has B at
 * B + g * Kd * NB and C at C + g * M * NB. Every sgemm call has the same shape whatever the
 * sequence length, so the rounding of a column never depends on where the sequence was cut. */
#define DAC_ROWS 64
static void gemm_tiles(const dia_backend *be, int trans, const float *A, const float *B, float *C, int64_t M,
                       int64_t Kd, int64_t NB, int64_t G) {
    const int64_t nrb = (M + DAC_ROWS - 1) / DAC_ROWS;
#pragma omp parallel for collapse(2) num_threads(dac_par(be, M * Kd * NB * G)) schedule(dynamic)
    for (int64_t g = 0; g < G; g++)
        for (int64_t rb = 0; rb < nrb; rb++) {
            const int64_t m0 = rb * DAC_ROWS, m = M - m0 < DAC_ROWS ? M - m0 : DAC_ROWS;
            const float *Ab = trans ? A + m0 : A + m0 * Kd;
            cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)m, (int)NB, (int)Kd, 1.0f,
                        Ab, trans ? (int)M : (int)Kd, B + g * Kd * NB, (int)NB, 0.0f, C + g * M * NB + m0 * NB,
                        (int)NB);
        }
}

/* Tiles processed together: one per thread, at most ~16M floats of buffers. */
static int64_t tile_group(const dia_backend *be, int64_t ntiles, int64_t floats_per_tile) {
    int64_t G = cpu_threads(be);
    while (G > 1 && G * floats_per_tile > ((int64_t)1 << 24)) G--;
    return G < ntiles ? G : ntiles;
}

dia_status cpu_conv1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, const dia_tensor *b,
                      int stride, int dilation, int pad) {
    if (x->ndim != 2 || w->ndim != 3 || y->ndim != 2 || x->dtype != DIA_F32 || y->dtype != DIA_F32 || stride < 1 ||
        dilation < 1 || pad < 0)
        return dia_fail(DIA_ERR_INTERNAL, "conv1d: bad arguments (ndim/dtype/stride %d/dilation %d/pad %d)", stride,
                        dilation, pad);
    const int64_t Cin = x->ne[0], T = x->ne[1], Cout = w->ne[0], K = w->ne[2];
    const int64_t span = (int64_t)dilation * (K - 1) + 1;
    const int64_t Tout = T + 2 * (int64_t)pad >= span ? (T + 2 * (int64_t)pad - span) / stride + 1 : 0;
    if (w->ne[1] != Cin || y->ne[0] != Cout || y->ne[1] != Tout || Tout < 1 || (b && dia_tensor_nelem(b) != Cout))
        return dia_fail(DIA_ERR_INTERNAL,
                        "conv1d shapes: x[%lld,%lld] w[%lld,%lld,%lld] y[%lld,%lld], expected Tout %lld",
                        (long long)Cin, (long long)T, (long long)w->ne[0], (long long)w->ne[1], (long long)K,
                        (long long)y->ne[0], (long long)y->ne[1], (long long)Tout);
    const float *X = cpu_ptr(x); /* [Cin, T] */
    float *Y = cpu_ptr(y);       /* [Cout, Tout] */
    const float *W;              /* [Cout, Cin * K] */
    float *Wown;
    dia_status st = weight_f32(be, w, &W, &Wown);
    if (st != DIA_OK) return st;
    const int64_t CK = Cin * K, NB = DAC_TILE_COLS, ntiles = (Tout + NB - 1) / NB;
    const int64_t G = tile_group(be, ntiles, (CK + Cout) * NB);
    float *col = malloc((size_t)(G * CK * NB) * sizeof(float));   /* G x [Cin * K, NB] */
    float *acc = malloc((size_t)(G * Cout * NB) * sizeof(float)); /* G x [Cout, NB] */
    if (!col || !acc) {
        free(col);
        free(acc);
        free(Wown);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "conv1d: out of memory for %lld column tiles of %lld x %lld",
                        (long long)G, (long long)CK, (long long)NB);
    }
    for (int64_t tile0 = 0; tile0 < ntiles; tile0 += G) {
        const int64_t g_n = ntiles - tile0 < G ? ntiles - tile0 : G;
        /* im2col: col[g][i*K + k, j] = x[i, (t0 + j) stride + k dilation - pad], zero outside */
#pragma omp parallel for collapse(2) num_threads(dac_par(be, g_n * CK * NB * 8)) schedule(static)
        for (int64_t g = 0; g < g_n; g++)
            for (int64_t r = 0; r < CK; r++) {
                const int64_t t0 = (tile0 + g) * NB, n = Tout - t0 < NB ? Tout - t0 : NB;
                const int64_t i = r / K, k = r % K, off = k * dilation - pad;
                const float *xr = X + i * T;
                float *cr = col + (g * CK + r) * NB;
                for (int64_t j = 0; j < n; j++) {
                    const int64_t s = (t0 + j) * stride + off;
                    cr[j] = (s >= 0 && s < T) ? xr[s] : 0.0f;
                }
                for (int64_t j = n; j < NB; j++) cr[j] = 0.0f;
            }
        gemm_tiles(be, 0, W, col, acc, Cout, CK, NB, g_n);
#pragma omp parallel for collapse(2) num_threads(dac_par(be, g_n * Cout * NB * 8)) schedule(static)
        for (int64_t g = 0; g < g_n; g++)
            for (int64_t o = 0; o < Cout; o++) {
                const int64_t t0 = (tile0 + g) * NB, n = Tout - t0 < NB ? Tout - t0 : NB;
                const float bo = b ? cpu_load(cpu_ptr(b), b->dtype, o) : 0.0f;
                const float *ar = acc + (g * Cout + o) * NB;
                float *yr = Y + o * Tout + t0;
                for (int64_t j = 0; j < n; j++) yr[j] = ar[j] + bo;
            }
    }
    free(acc);
    free(col);
    free(Wown);
    return DIA_OK;
}

dia_status cpu_conv_transpose1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                                const dia_tensor *b, int stride, int pad) {
    if (x->ndim != 2 || w->ndim != 3 || y->ndim != 2 || x->dtype != DIA_F32 || y->dtype != DIA_F32 || stride < 1 ||
        pad < 0)
        return dia_fail(DIA_ERR_INTERNAL, "conv_transpose1d: bad arguments (ndim/dtype/stride %d/pad %d)", stride, pad);
    const int64_t Cin = x->ne[0], T = x->ne[1], Cout = w->ne[1], K = w->ne[2];
    const int64_t Tout = (T - 1) * stride - 2 * (int64_t)pad + K;
    if (w->ne[0] != Cin || y->ne[0] != Cout || y->ne[1] != Tout || Tout < 1 || T < 1 ||
        (b && dia_tensor_nelem(b) != Cout))
        return dia_fail(DIA_ERR_INTERNAL,
                        "conv_transpose1d shapes: x[%lld,%lld] w[%lld,%lld,%lld] y[%lld,%lld], expected Tout %lld",
                        (long long)Cin, (long long)T, (long long)w->ne[0], (long long)w->ne[1], (long long)K,
                        (long long)y->ne[0], (long long)y->ne[1], (long long)Tout);
    const float *X = cpu_ptr(x); /* [Cin, T] */
    float *Y = cpu_ptr(y);       /* [Cout, Tout] */
    const float *W;              /* [Cin, Cout * K] */
    float *Wown;
    dia_status st = weight_f32(be, w, &W, &Wown);
    if (st != DIA_OK) return st;
    fill_bias(be, Y, Cout, Tout, b);
    const int64_t CoK = Cout * K, NB = DAC_TILE_COLS, ntiles = (T + NB - 1) / NB;
    const int64_t G = tile_group(be, ntiles, (CoK + Cin) * NB);
    float *col = malloc((size_t)(G * CoK * NB) * sizeof(float)); /* G x [Cout * K, NB] */
    float *xt = malloc((size_t)(G * Cin * NB) * sizeof(float));   /* G x [Cin, NB] input tiles, zero-padded */
    if (!col || !xt) {
        free(col);
        free(xt);
        free(Wown);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "conv_transpose1d: out of memory for %lld column tiles of %lld x %lld",
                        (long long)G, (long long)CoK, (long long)NB);
    }
    for (int64_t tile0 = 0; tile0 < ntiles; tile0 += G) {
        const int64_t g_n = ntiles - tile0 < G ? ntiles - tile0 : G;
#pragma omp parallel for collapse(2) num_threads(dac_par(be, g_n * Cin * NB * 8)) schedule(static)
        for (int64_t g = 0; g < g_n; g++)
            for (int64_t i = 0; i < Cin; i++) {
                const int64_t t0 = (tile0 + g) * NB, n = T - t0 < NB ? T - t0 : NB;
                float *xr = xt + (g * Cin + i) * NB;
                memcpy(xr, X + i * T + t0, (size_t)n * sizeof(float));
                for (int64_t j = n; j < NB; j++) xr[j] = 0.0f;
            }
        /* col[g][o*K + k, j] = sum_i W[i, o, k] x[i, t0 + j] */
        gemm_tiles(be, 1, W, xt, col, CoK, Cin, NB, g_n);
        /* overlap-add: y[o, (t0 + j) s + k - pad] += col[g][o*K + k, j], tile by tile in increasing
         * input order, so every output sums its terms in the same order however the input was cut */
        for (int64_t g = 0; g < g_n; g++) {
            const int64_t t0 = (tile0 + g) * NB, n = T - t0 < NB ? T - t0 : NB;
            const float *cg = col + g * CoK * NB;
#pragma omp parallel for num_threads(dac_par(be, Cout * n * K * 8)) schedule(static)
            for (int64_t o = 0; o < Cout; o++) {
                float *yr = Y + o * Tout;
                for (int64_t j = 0; j < n; j++) {
                    const int64_t base = (t0 + j) * stride - pad;
                    for (int64_t k = 0; k < K; k++) {
                        const int64_t t = base + k;
                        if (t >= 0 && t < Tout) yr[t] += cg[(o * K + k) * NB + j];
                    }
                }
            }
        }
    }
    free(xt);
    free(col);
    free(Wown);
    return DIA_OK;
}

dia_status cpu_snake(dia_backend *be, dia_tensor *x, const dia_tensor *alpha) {
    if (x->ndim != 2 || x->dtype != DIA_F32 || dia_tensor_nelem(alpha) != x->ne[0])
        return dia_fail(DIA_ERR_INTERNAL, "snake shapes: x[%lld,%lld], alpha of %lld", (long long)x->ne[0],
                        (long long)x->ne[1], (long long)dia_tensor_nelem(alpha));
    const int64_t C = x->ne[0], T = x->ne[1];
    float *X = cpu_ptr(x); /* [C, T] */
    const void *A = cpu_ptr(alpha);
#pragma omp parallel for num_threads(dac_par(be, C * T * 16)) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float a = cpu_load(A, alpha->dtype, c);
        const float inv = (float)(1.0 / ((double)a + 1e-9));
        float *xr = X + c * T;
        for (int64_t t = 0; t < T; t++) {
            const float s = sinf(a * xr[t]);
            xr[t] += inv * (s * s);
        }
    }
    return DIA_OK;
}

dia_status cpu_tanh(dia_backend *be, dia_tensor *x) {
    if (x->dtype != DIA_F32) return dia_fail(DIA_ERR_INTERNAL, "tanh on a non-f32 tensor");
    const int64_t n = dia_tensor_nelem(x);
    float *X = cpu_ptr(x);
#pragma omp parallel for num_threads(dac_par(be, n * 16)) schedule(static)
    for (int64_t i = 0; i < n; i++) X[i] = tanhf(X[i]);
    return DIA_OK;
}

dia_status cpu_codebook_lookup(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes) {
    (void)be;
    if (y->ndim != 2 || codebook->ndim != 2 || y->dtype != DIA_F32 || codes->dtype != DIA_I32 ||
        y->ne[0] != codebook->ne[1] || dia_tensor_nelem(codes) != y->ne[1])
        return dia_fail(DIA_ERR_INTERNAL, "codebook_lookup shapes: y[%lld,%lld] codebook[%lld,%lld] codes of %lld",
                        (long long)y->ne[0], (long long)y->ne[1], (long long)codebook->ne[0],
                        (long long)codebook->ne[1], (long long)dia_tensor_nelem(codes));
    const int64_t D = y->ne[0], T = y->ne[1], N = codebook->ne[0];
    const int32_t *Ix = cpu_ptr(codes); /* [T] */
    float *Y = cpu_ptr(y);             /* [D, T] */
    const void *CB = cpu_ptr(codebook); /* [N, D] */
    for (int64_t t = 0; t < T; t++) {
        if (Ix[t] < 0 || Ix[t] >= N)
            return dia_fail(DIA_ERR_BAD_AUDIO, "DAC code %d at frame %lld is outside [0, %lld)", (int)Ix[t],
                            (long long)t, (long long)N);
        for (int64_t d = 0; d < D; d++) Y[d * T + t] = cpu_load(CB, codebook->dtype, (int64_t)Ix[t] * D + d);
    }
    return DIA_OK;
}

dia_status cpu_codebook_nearest(dia_backend *be, dia_tensor *codes, const dia_tensor *x, const dia_tensor *codebook) {
    if (x->ndim != 2 || codebook->ndim != 2 || x->dtype != DIA_F32 || codes->dtype != DIA_I32 ||
        x->ne[0] != codebook->ne[1] || dia_tensor_nelem(codes) != x->ne[1])
        return dia_fail(DIA_ERR_INTERNAL, "codebook_nearest shapes: x[%lld,%lld] codebook[%lld,%lld] codes of %lld",
                        (long long)x->ne[0], (long long)x->ne[1], (long long)codebook->ne[0],
                        (long long)codebook->ne[1], (long long)dia_tensor_nelem(codes));
    const int64_t D = x->ne[0], T = x->ne[1], N = codebook->ne[0];
    const float *X = cpu_ptr(x);  /* [D, T] */
    int32_t *Ix = cpu_ptr(codes);  /* [T] */
    const void *CB = cpu_ptr(codebook);
    double *cn = malloc((size_t)(N * D) * sizeof(double)); /* [N, D] L2-normalised codebook rows */
    if (!cn) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "codebook_nearest: out of memory");
    for (int64_t n = 0; n < N; n++) {
        double ss = 0;
        for (int64_t d = 0; d < D; d++) {
            const double v = cpu_load(CB, codebook->dtype, n * D + d);
            cn[n * D + d] = v;
            ss += v * v;
        }
        const double inv = 1.0 / fmax(sqrt(ss), 1e-12); /* F.normalize: x / max(|x|, eps) */
        for (int64_t d = 0; d < D; d++) cn[n * D + d] *= inv;
    }
    double *xn = malloc((size_t)(T * D) * sizeof(double)); /* [T, D] L2-normalised columns of x */
    if (!xn) {
        free(cn);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "codebook_nearest: out of memory");
    }
#pragma omp parallel for num_threads(dac_par(be, T * N * D)) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        double *e = xn + t * D, ss = 0;
        for (int64_t d = 0; d < D; d++) {
            e[d] = X[d * T + t];
            ss += e[d] * e[d];
        }
        const double inv = 1.0 / fmax(sqrt(ss), 1e-12);
        for (int64_t d = 0; d < D; d++) e[d] *= inv;
        int32_t best = 0; /* the first of equal maxima, as torch's argmax */
        double best_sim = -INFINITY;
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += e[d] * cn[n * D + d];
            if (s > best_sim) {
                best_sim = s;
                best = (int32_t)n;
            }
        }
        Ix[t] = best;
    }
    free(xn);
    free(cn);
    return DIA_OK;
}
