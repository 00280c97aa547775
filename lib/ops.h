/* ops.h - small helpers the model code uses on top of the backend vtable. */
#ifndef DIA_OPS_H
#define DIA_OPS_H

#include "log.h"
#include "model.h"

/* Run `call`; on failure jump to `fail` with the status in `st`. */
#define TRY(call)                                \
    do {                                         \
        if ((st = (call)) != DIA_OK) goto fail;  \
    } while (0)

/* The projections of `a` (see dia_linear_args): the backend's fused op, or rmsnorm into a->scratch,
 * one matmul per weight and (gated) silu_mul from a->scratch_out. */
static inline dia_status op_linear_fused(dia_backend *be, const dia_linear_args *a) {
    if (be->ops->linear) return be->ops->linear(be, a);
    const dia_tensor *in = a->x;
    dia_status st = DIA_OK;
    if (a->norm_w) {
        st = be->ops->rmsnorm(be, a->scratch, a->x, a->norm_w, a->eps);
        in = a->scratch;
    }
    if (a->gated) {
        if (st == DIA_OK) st = be->ops->matmul(be, a->scratch_out, in, a->w[0], a->trans_w[0], 0);
        if (st != DIA_OK) return st;
        if (!a->accumulate) return be->ops->silu_mul(be, a->y[0], a->scratch_out);
        return dia_fail(DIA_ERR_INTERNAL, "linear: gated output with accumulate is not composed");
    }
    for (int i = 0; i < a->n && st == DIA_OK; i++)
        st = be->ops->matmul(be, a->y[i], in, a->w[i], a->trans_w[i], a->accumulate);
    return st;
}

/* y (+)= rmsnorm(x) * norm_w . W (norm_w NULL: x . W) for a loaded weight; scratch [M, K] holds
 * the normed input where the backend does not fuse. */
static inline dia_status op_linear_norm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *norm_w,
                                        float eps, dia_tensor *scratch, const dia_weight *w, int accumulate) {
    dia_linear_args a = {.x = x, .norm_w = norm_w, .eps = eps, .n = 1, .y = {y}, .w = {&w->t},
                         .trans_w = {w->trans}, .accumulate = accumulate, .scratch = scratch};
    return op_linear_fused(be, &a);
}

/* y[M,N] (+)= x[M,K] . W for a loaded weight in either layout. */
static inline dia_status op_linear(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_weight *w,
                                   int accumulate) {
    return op_linear_norm(be, y, x, NULL, 0.0f, NULL, w, accumulate);
}

/* RoPE on q and k, then k and v into the caches (see rope_kv_store in backend.h). */
static inline dia_status op_rope_kv_store(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v,
                                          dia_tensor *kcache, dia_tensor *vcache, const dia_tensor *pos,
                                          const dia_tensor *start, float theta) {
    if (be->ops->rope_kv_store) return be->ops->rope_kv_store(be, q, k, v, kcache, vcache, pos, start, theta);
    int64_t k3[3] = {k->ne[0] * k->ne[1], k->ne[2], k->ne[3]};
    dia_tensor kr = dia_tensor_view(k, 0, 3, k3);
    dia_status st = be->ops->rope(be, q, pos, theta);
    if (st == DIA_OK) st = be->ops->rope(be, &kr, pos, theta);
    if (st == DIA_OK) st = be->ops->kv_store(be, kcache, k, start);
    if (st == DIA_OK) st = be->ops->kv_store(be, vcache, v, start);
    return st;
}

/* The q|k|v projections of `a` and then RoPE and the cache stores on them (op_linear_fused, then
 * op_rope_kv_store; one op where the backend fuses them). */
static inline dia_status op_linear_rope_kv_store(dia_backend *be, const dia_linear_args *a, dia_tensor *q,
                                                 dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                                                 dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start,
                                                 float theta) {
    if (be->ops->linear_rope_kv_store)
        return be->ops->linear_rope_kv_store(be, a, q, k, v, kcache, vcache, pos, start, theta);
    dia_status st = op_linear_fused(be, a);
    return st != DIA_OK ? st : op_rope_kv_store(be, q, k, v, kcache, vcache, pos, start, theta);
}

/* Reshaped views of a contiguous tensor. */
static inline dia_tensor as2(const dia_tensor *t, int64_t a, int64_t b) {
    int64_t ne[2] = {a, b};
    return dia_tensor_view(t, 0, 2, ne);
}
static inline dia_tensor as3(const dia_tensor *t, int64_t a, int64_t b, int64_t c) {
    int64_t ne[3] = {a, b, c};
    return dia_tensor_view(t, 0, 3, ne);
}
static inline dia_tensor as4(const dia_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t ne[4] = {a, b, c, d};
    return dia_tensor_view(t, 0, 4, ne);
}

#endif
