/* cuda_dac.cu - the DAC codec ops on the device: conv1d (im2col tiles + cublasSgemm),
 * conv_transpose1d (cublasSgemm into columns, then a deterministic gather overlap-add), Snake,
 * tanh, codebook lookup and nearest-code search (in double, as on the CPU).
 * Activations are f32 [C, T] (batch 1); weights may be f32, f16 or bf16 (converted to f32 in a
 * scratch buffer first). All GEMMs are true f32 (no TF32), the same as the CPU's sgemm. */
#include <math.h>
#include <stdlib.h>

#include "cuda_common.cuh"

/* Largest column tile (floats) an op uses: 64 MiB. */
#define DAC_TILE_FLOATS ((int64_t)1 << 24)

static unsigned grid_1d(int64_t n) {
    int64_t b = (n + 255) / 256;
    if (b > 65535) b = 65535;
    return (unsigned)(b < 1 ? 1 : b);
}

/* f32 device pointer to all of weight `w` (scratch copy if it is f16 / bf16) */
static dia_status weight_f32(dia_backend *be, const dia_tensor *w, const float **out) {
    if (w->dtype == DIA_F32) {
        *out = (const float *)cu_ptr(w);
        return DIA_OK;
    }
    if (!cu_is_float(w->dtype))
        return dia_fail(DIA_ERR_INTERNAL, "DAC weight of dtype %s is not a float type", dia_dtype_name(w->dtype));
    const int64_t n = dia_tensor_nelem(w);
    void *p;
    dia_status st = cu_scratch(be, CU_SCRATCH_W, (size_t)n * sizeof(float), &p);
    if (st == DIA_OK) st = cu_convert_to_f32(be, (float *)p, cu_ptr(w), w->dtype, n);
    *out = (const float *)p;
    return st;
}

__global__ void k_fill_bias(float *Y, int64_t rows, int64_t T, const void *b, int bdt) {
    const int64_t n = rows * T;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        Y[i] = b ? cu_load(b, bdt, i / T) : 0.0f;
}

/* col[r, j] = x[i, (t0 + j) stride + k dilation - pad] for r = i K + k, j < n */
__global__ void k_im2col(float *col, const float *X, int64_t CK, int64_t K, int64_t T, int64_t t0, int64_t n,
                         int stride, int dilation, int pad) {
    const int64_t tot = CK * n;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < tot;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = idx / n, j = idx % n, i = r / K, k = r % K;
        const int64_t s = (t0 + j) * stride + k * dilation - pad;
        col[idx] = (s >= 0 && s < T) ? X[i * T + s] : 0.0f;
    }
}

dia_status cu_conv1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, const dia_tensor *b,
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
    cuda_ctx *c = cu_ctx(be);
    const float *W;
    dia_status st = weight_f32(be, w, &W);
    if (st != DIA_OK) return st;
    float *Y = (float *)cu_ptr(y);
    const float *X = (const float *)cu_ptr(x);
    k_fill_bias<<<grid_1d(Cout * Tout), 256, 0, c->stream>>>(Y, Cout, Tout, b ? cu_ptr(b) : NULL,
                                                            b ? (int)b->dtype : 0);
    CU_LAUNCHED("fill_bias");
    const float one = 1.0f;
    const int64_t CK = Cin * K;
    if (K == 1 && stride == 1 && pad == 0) { /* pointwise: Y += W . X */
        CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)T, (int)Cout, (int)Cin, &one, X, (int)T, W,
                                 (int)Cin, &one, Y, (int)T));
        return DIA_OK;
    }
    int64_t tt = DAC_TILE_FLOATS / CK; /* output columns per tile */
    if (tt < 1) tt = 1;
    if (tt > Tout) tt = Tout;
    void *colp;
    if ((st = cu_scratch(be, CU_SCRATCH_COL, (size_t)(CK * tt) * sizeof(float), &colp)) != DIA_OK) return st;
    float *col = (float *)colp; /* [CK, n] */
    for (int64_t t0 = 0; t0 < Tout; t0 += tt) {
        const int64_t n = Tout - t0 < tt ? Tout - t0 : tt;
        k_im2col<<<grid_1d(CK * n), 256, 0, c->stream>>>(col, X, CK, K, T, t0, n, stride, dilation, pad);
        CU_LAUNCHED("im2col");
        /* Y[:, t0:t0+n] += W[Cout, CK] . col[CK, n] */
        CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)Cout, (int)CK, &one, col, (int)n, W,
                                 (int)CK, &one, Y + t0, (int)Tout));
    }
    return DIA_OK;
}

/* y[o, t] += col[o K + k, j - t0] over every (j in [t0, t0+n), k) with j stride + k - pad = t */
__global__ void k_col2out(float *Y, const float *col, int64_t Cout, int64_t K, int64_t Tout, int64_t t0, int64_t n,
                          int stride, int pad, int64_t tlo, int64_t tcount) {
    const int64_t tot = Cout * tcount;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < tot;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t o = idx / tcount, t = tlo + idx % tcount;
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) {
            const int64_t num = t + pad - k;
            if (num < 0 || num % stride) continue;
            const int64_t j = num / stride;
            if (j < t0 || j >= t0 + n) continue;
            acc += col[(o * K + k) * n + (j - t0)];
        }
        Y[o * Tout + t] += acc;
    }
}

dia_status cu_conv_transpose1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
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
    cuda_ctx *c = cu_ctx(be);
    const float *W;
    dia_status st = weight_f32(be, w, &W);
    if (st != DIA_OK) return st;
    float *Y = (float *)cu_ptr(y);
    const float *X = (const float *)cu_ptr(x);
    k_fill_bias<<<grid_1d(Cout * Tout), 256, 0, c->stream>>>(Y, Cout, Tout, b ? cu_ptr(b) : NULL,
                                                            b ? (int)b->dtype : 0);
    CU_LAUNCHED("fill_bias");
    const int64_t CoK = Cout * K;
    int64_t tt = DAC_TILE_FLOATS / CoK; /* input columns per tile */
    if (tt < 1) tt = 1;
    if (tt > T) tt = T;
    void *colp;
    if ((st = cu_scratch(be, CU_SCRATCH_COL, (size_t)(CoK * tt) * sizeof(float), &colp)) != DIA_OK) return st;
    float *col = (float *)colp; /* [Cout K, n] */
    const float one = 1.0f, zero = 0.0f;
    for (int64_t t0 = 0; t0 < T; t0 += tt) {
        const int64_t n = T - t0 < tt ? T - t0 : tt;
        /* col[ok, j] = sum_i W[i, ok] x[i, t0 + j]: column-major col (n x CoK) = X_sub (n x Cin) . W^T */
        CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)n, (int)CoK, (int)Cin, &one, X + t0, (int)T,
                                 W, (int)CoK, &zero, col, (int)n));
        int64_t tlo = t0 * stride - pad, thi = (t0 + n - 1) * stride - pad + K - 1;
        if (tlo < 0) tlo = 0;
        if (thi > Tout - 1) thi = Tout - 1;
        if (thi < tlo) continue;
        const int64_t tcount = thi - tlo + 1;
        k_col2out<<<grid_1d(Cout * tcount), 256, 0, c->stream>>>(Y, col, Cout, K, Tout, t0, n, stride, pad, tlo,
                                                                 tcount);
        CU_LAUNCHED("col2out");
    }
    return DIA_OK;
}

__global__ void k_snake(float *X, const void *A, int adt, int64_t C, int64_t T) {
    const int64_t n = C * T;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float a = cu_load(A, adt, i / T);
        const float inv = (float)(1.0 / ((double)a + 1e-9));
        const float s = sinf(a * X[i]);
        X[i] += inv * (s * s);
    }
}

dia_status cu_snake(dia_backend *be, dia_tensor *x, const dia_tensor *alpha) {
    if (x->ndim != 2 || x->dtype != DIA_F32 || dia_tensor_nelem(alpha) != x->ne[0] || !cu_is_float(alpha->dtype))
        return dia_fail(DIA_ERR_INTERNAL, "snake shapes: x[%lld,%lld], alpha of %lld", (long long)x->ne[0],
                        (long long)x->ne[1], (long long)dia_tensor_nelem(alpha));
    const int64_t C = x->ne[0], T = x->ne[1];
    if (C * T == 0) return DIA_OK;
    k_snake<<<grid_1d(C * T), 256, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(x), cu_ptr(alpha), (int)alpha->dtype, C, T);
    CU_LAUNCHED("snake");
    return DIA_OK;
}

__global__ void k_tanh(float *X, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        X[i] = tanhf(X[i]);
}

dia_status cu_tanh(dia_backend *be, dia_tensor *x) {
    if (x->dtype != DIA_F32) return dia_fail(DIA_ERR_INTERNAL, "tanh on a non-f32 tensor");
    const int64_t n = dia_tensor_nelem(x);
    if (n == 0) return DIA_OK;
    k_tanh<<<grid_1d(n), 256, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(x), n);
    CU_LAUNCHED("tanh");
    return DIA_OK;
}

__global__ void k_lookup(float *Y, const void *CB, int cdt, const int32_t *I, int64_t D, int64_t T) {
    const int64_t n = D * T;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t d = i / T, t = i % T;
        Y[i] = cu_load(CB, cdt, (int64_t)I[t] * D + d);
    }
}

dia_status cu_codebook_lookup(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes) {
    if (y->ndim != 2 || codebook->ndim != 2 || y->dtype != DIA_F32 || codes->dtype != DIA_I32 ||
        !cu_is_float(codebook->dtype) || y->ne[0] != codebook->ne[1] || dia_tensor_nelem(codes) != y->ne[1])
        return dia_fail(DIA_ERR_INTERNAL, "codebook_lookup shapes: y[%lld,%lld] codebook[%lld,%lld] codes of %lld",
                        (long long)y->ne[0], (long long)y->ne[1], (long long)codebook->ne[0],
                        (long long)codebook->ne[1], (long long)dia_tensor_nelem(codes));
    const int64_t D = y->ne[0], T = y->ne[1], N = codebook->ne[0];
    if (T == 0) return DIA_OK;
    /* the codes come from the user: check their range on the host (one small download) */
    int32_t *h = (int32_t *)malloc((size_t)T * sizeof(int32_t));
    if (!h) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    dia_status st = be->ops->download(be, codes->buf, codes->offset, h, (size_t)T * sizeof(int32_t));
    for (int64_t t = 0; st == DIA_OK && t < T; t++)
        if (h[t] < 0 || h[t] >= N)
            st = dia_fail(DIA_ERR_BAD_AUDIO, "DAC code %d at frame %lld is outside [0, %lld)", (int)h[t], (long long)t,
                          (long long)N);
    free(h);
    if (st != DIA_OK) return st;
    k_lookup<<<grid_1d(D * T), 256, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(y), cu_ptr(codebook),
                                                              (int)codebook->dtype, (const int32_t *)cu_ptr(codes), D, T);
    CU_LAUNCHED("codebook_lookup");
    return DIA_OK;
}

#define NEAREST_MAX_D 64

/* cn[n, :] = codebook[n, :] / max(|codebook[n, :]|, 1e-12), in double */
__global__ void k_norm_rows(double *cn, const void *CB, int cdt, int64_t N, int64_t D) {
    const int64_t n = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (n >= N) return;
    double ss = 0;
    for (int64_t d = 0; d < D; d++) {
        const double v = cu_load(CB, cdt, n * D + d);
        cn[n * D + d] = v;
        ss += v * v;
    }
    const double inv = 1.0 / fmax(sqrt(ss), 1e-12);
    for (int64_t d = 0; d < D; d++) cn[n * D + d] *= inv;
}

__global__ void k_nearest(int32_t *I, const float *X, const double *cn, int64_t N, int64_t D, int64_t T) {
    const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (t >= T) return;
    double e[NEAREST_MAX_D], ss = 0;
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
    I[t] = best;
}

dia_status cu_codebook_nearest(dia_backend *be, dia_tensor *codes, const dia_tensor *x, const dia_tensor *codebook) {
    if (x->ndim != 2 || codebook->ndim != 2 || x->dtype != DIA_F32 || codes->dtype != DIA_I32 ||
        !cu_is_float(codebook->dtype) || x->ne[0] != codebook->ne[1] || dia_tensor_nelem(codes) != x->ne[1])
        return dia_fail(DIA_ERR_INTERNAL, "codebook_nearest shapes: x[%lld,%lld] codebook[%lld,%lld] codes of %lld",
                        (long long)x->ne[0], (long long)x->ne[1], (long long)codebook->ne[0],
                        (long long)codebook->ne[1], (long long)dia_tensor_nelem(codes));
    const int64_t D = x->ne[0], T = x->ne[1], N = codebook->ne[0];
    if (D > NEAREST_MAX_D)
        return dia_fail(DIA_ERR_INTERNAL, "codebook_nearest: codebook dimension %lld above %d", (long long)D,
                        NEAREST_MAX_D);
    if (T == 0) return DIA_OK;
    cuda_ctx *c = cu_ctx(be);
    void *p;
    dia_status st = cu_scratch(be, CU_SCRATCH_COL, (size_t)(N * D) * sizeof(double), &p);
    if (st != DIA_OK) return st;
    k_norm_rows<<<cu_blocks(N, 128), 128, 0, c->stream>>>((double *)p, cu_ptr(codebook), (int)codebook->dtype, N, D);
    CU_LAUNCHED("codebook_norm");
    k_nearest<<<cu_blocks(T, 64), 64, 0, c->stream>>>((int32_t *)cu_ptr(codes), (const float *)cu_ptr(x),
                                                      (const double *)p, N, D, T);
    CU_LAUNCHED("codebook_nearest");
    return DIA_OK;
}
