/* cpu_ops.c - element-wise and row-wise transformer ops: RMSNorm, RoPE, embedding sum, SiLU-gated
 * MLP activation, residual add, KV-cache store. Plain loops, parallel over rows. */
#include <math.h>

#include "cpu_backend.h"
#include "log.h"

dia_status cpu_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps) {
    const int64_t M = x->ne[0], D = x->ne[1];
    if (w->ne[0] != D || y->ne[0] != M || y->ne[1] != D) return dia_fail(DIA_ERR_INTERNAL, "rmsnorm shapes");
    const float *X = cpu_ptr(x);
    float *Y = cpu_ptr(y);
    const void *W = cpu_ptr(w);
#pragma omp parallel for num_threads(cpu_par(be, M * D)) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = X + m * D;
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        const float r = (float)(1.0 / sqrt(ss / (double)D + (double)eps));
        float *yr = Y + m * D;
        for (int64_t d = 0; d < D; d++) yr[d] = xr[d] * r * cpu_load(W, w->dtype, d);
    }
    return DIA_OK;
}

dia_status cpu_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta) {
    const int64_t M = x->ne[0], H = x->ne[1], hd = x->ne[2], half = hd / 2;
    if (x->ndim != 3 || pos->ne[0] != M || hd % 2) return dia_fail(DIA_ERR_INTERNAL, "rope shapes");
    float *X = cpu_ptr(x);
    const int32_t *P = cpu_ptr(pos);
#pragma omp parallel for num_threads(cpu_par(be, M * H * hd)) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        for (int64_t j = 0; j < half; j++) {
            /* angle = position / timescale, timescale = theta^(2j/hd) (the reference's division) */
            const double ts = pow((double)theta, (double)(2 * j) / (double)hd);
            const double a = (double)P[m] / ts;
            const double c = cos(a), s = sin(a);
            for (int64_t h = 0; h < H; h++) {
                float *v = X + (m * H + h) * hd;
                const double x1 = v[j], x2 = v[j + half];
                v[j] = (float)(x1 * c - x2 * s);
                v[j + half] = (float)(x2 * c + x1 * s);
            }
        }
    }
    return DIA_OK;
}

dia_status cpu_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok) {
    const int64_t M = y->ne[0], D = y->ne[1];
    if (tok->ne[0] != M || (tok->ndim > 1 ? tok->ne[1] : 1) != n_tables) return dia_fail(DIA_ERR_INTERNAL, "embed shapes");
    float *Y = cpu_ptr(y);
    const int32_t *T = cpu_ptr(tok);
    for (int c = 0; c < n_tables; c++)
        if (tables[c].ne[1] != D) return dia_fail(DIA_ERR_INTERNAL, "embed table width");
    for (int64_t m = 0; m < M; m++)
        for (int c = 0; c < n_tables; c++) {
            const int64_t V = tables[c].ne[0], id = T[m * n_tables + c];
            if (id < 0 || id >= V) return dia_fail(DIA_ERR_INVALID_ARG, "token %lld outside [0, %lld)", (long long)id,
                                                   (long long)V);
        }
#pragma omp parallel for num_threads(cpu_par(be, M * D)) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        float *yr = Y + m * D;
        for (int c = 0; c < n_tables; c++) {
            const int64_t id = T[m * n_tables + c];
            const void *tb = cpu_ptr(&tables[c]);
            for (int64_t d = 0; d < D; d++) {
                const float e = cpu_load(tb, tables[c].dtype, id * D + d);
                yr[d] = c == 0 ? e : yr[d] + e;
            }
        }
    }
    return DIA_OK;
}

dia_status cpu_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h) {
    const int64_t M = h->ne[0], I = h->ne[1] / 2;
    if (y->ne[0] != M || y->ne[1] != I) return dia_fail(DIA_ERR_INTERNAL, "silu_mul shapes");
    const float *Hp = cpu_ptr(h);
    float *Y = cpu_ptr(y);
#pragma omp parallel for num_threads(cpu_par(be, M * I)) schedule(static)
    for (int64_t m = 0; m < M; m++)
        for (int64_t i = 0; i < I; i++) {
            const float g = Hp[m * 2 * I + i], u = Hp[m * 2 * I + I + i];
            Y[m * I + i] = g / (1.0f + expf(-g)) * u;
        }
    return DIA_OK;
}

dia_status cpu_add(dia_backend *be, dia_tensor *y, const dia_tensor *x) {
    const int64_t n = dia_tensor_nelem(y);
    if (dia_tensor_nelem(x) != n) return dia_fail(DIA_ERR_INTERNAL, "add shapes");
    float *Y = cpu_ptr(y);
    const float *X = cpu_ptr(x);
#pragma omp parallel for num_threads(cpu_par(be, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) Y[i] += X[i];
    return DIA_OK;
}

dia_status cpu_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start) {
    (void)be;
    const int64_t R = src->ne[0], T = src->ne[1], H = src->ne[2], hd = src->ne[3], S = cache->ne[2];
    if (cache->ne[0] != R || cache->ne[1] != H || cache->ne[3] != hd || cache->dtype != DIA_F32 ||
        src->dtype != DIA_F32 || start->dtype != DIA_I32)
        return dia_fail(DIA_ERR_INTERNAL, "kv_store shapes or dtypes (the CPU backend keeps f32 caches)");
    const int32_t *st = cpu_ptr(start);
    const float *X = cpu_ptr(src);
    float *Cp = cpu_ptr(cache);
    for (int64_t r = 0; r < R; r++) {
        if (st[r] < 0 || st[r] + T > S) return dia_fail(DIA_ERR_CAPACITY, "kv_store past the cache end");
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++)
                memcpy(Cp + ((r * H + h) * S + st[r] + t) * hd, X + ((r * T + t) * H + h) * hd,
                       (size_t)hd * sizeof(float));
    }
    return DIA_OK;
}
