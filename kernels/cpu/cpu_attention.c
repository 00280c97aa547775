/* cpu_attention.c - scaled-by-one dot-product attention with GQA over a (rows, kv_heads, S, hd)
 * cache, per-row key lengths and an optional causal limit. One (row, query, head) per task. */
#include <math.h>
#include <stdlib.h>

#include "cpu_backend.h"
#include "log.h"

dia_status cpu_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                         const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos) {
    const int64_t R = q->ne[0], T = q->ne[1], Hq = q->ne[2], hd = q->ne[3];
    const int64_t Hkv = k->ne[1], S = k->ne[2];
    if (k->ne[0] != R || k->ne[3] != hd || Hq % Hkv || out->ne[0] != R || out->ne[1] != T)
        return dia_fail(DIA_ERR_INTERNAL, "attention shapes");
    const float *Q = cpu_ptr(q), *K = cpu_ptr(k), *Vv = cpu_ptr(v);
    float *O = cpu_ptr(out);
    const int32_t *len = cpu_ptr(kv_len);
    const int32_t *qp = qpos ? cpu_ptr(qpos) : NULL;
    const int64_t group = Hq / Hkv;
    int failed = 0;
#pragma omp parallel num_threads(cpu_par(be, R * T * Hq * (int64_t)S * hd))
    {
        float *score = malloc((size_t)S * sizeof(float));
        if (!score) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for collapse(3) schedule(static)
        for (int64_t r = 0; r < R; r++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < Hq; h++) {
                    if (!score) continue;
                    int64_t n = len[r];
                    if (qp && qp[r * T + t] + 1 < n) n = qp[r * T + t] + 1;
                    if (n > S) n = S;
                    const float *qv = Q + ((r * T + t) * Hq + h) * hd;
                    const float *kb = K + (r * Hkv + h / group) * S * hd;
                    const float *vb = Vv + (r * Hkv + h / group) * S * hd;
                    float *o = O + ((r * T + t) * Hq + h) * hd;
                    float mx = -INFINITY;
                    for (int64_t s = 0; s < n; s++) {
                        float d = 0.0f;
#pragma omp simd reduction(+ : d)
                        for (int64_t i = 0; i < hd; i++) d += qv[i] * kb[s * hd + i];
                        score[s] = d;
                        if (d > mx) mx = d;
                    }
                    double sum = 0.0;
                    for (int64_t s = 0; s < n; s++) {
                        score[s] = expf(score[s] - mx);
                        sum += score[s];
                    }
                    for (int64_t i = 0; i < hd; i++) o[i] = 0.0f;
                    if (n == 0) continue;
                    const float inv = (float)(1.0 / sum);
                    for (int64_t s = 0; s < n; s++) {
                        const float p = score[s] * inv;
#pragma omp simd
                        for (int64_t i = 0; i < hd; i++) o[i] += p * vb[s * hd + i];
                    }
                }
        free(score);
    }
    if (failed) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "attention scratch");
    return DIA_OK;
}
