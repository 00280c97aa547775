/* kvcache.c - the decoder self-attention cache: per layer K and V of shape
 * (rows, kv_heads, capacity, head_dim), preallocated, with a fill length per row. */
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "log.h"
#include "model.h"

DIA_API void dia_kvcache_free(dia_kvcache *c) {
    if (!c) return;
    dia_backend *be = c->model->be;
    for (int l = 0; l < c->model->cfg.dec_layers; l++) {
        if (c->k) dia_tensor_free(be, &c->k[l]);
        if (c->v) dia_tensor_free(be, &c->v[l]);
    }
    free(c->k);
    free(c->v);
    free(c->lengths);
    free(c);
}

DIA_API dia_status dia_kvcache_new(dia_model *m, int batch, int capacity, dia_kvcache **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_new: out is NULL");
    *out = NULL;
    if (!m) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_new: model is NULL");
    if (batch < 1 || batch > 4096) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_new: batch %d outside [1, 4096]", batch);
    if (capacity < 1 || capacity > m->cfg.max_frames)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_new: capacity %d outside [1, %d]", capacity, m->cfg.max_frames);
    dia_kvcache *c = calloc(1, sizeof *c);
    if (!c) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    c->model = m;
    c->batch = batch;
    c->rows = 2 * batch;
    c->capacity = capacity;
    c->lengths = calloc((size_t)c->rows, sizeof(int));
    c->k = calloc((size_t)m->cfg.dec_layers, sizeof(dia_tensor));
    c->v = calloc((size_t)m->cfg.dec_layers, sizeof(dia_tensor));
    dia_status st = (c->lengths && c->k && c->v) ? DIA_OK : dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t ne[4] = {c->rows, m->cfg.dec_kv_heads, capacity, m->cfg.dec_head_dim};
    const dia_dtype dt = dia_model_cache_dtype(m); /* f32 on CPU; bf16 where the backend says so */
    for (int l = 0; st == DIA_OK && l < m->cfg.dec_layers; l++) {
        st = dia_tensor_alloc(m->be, dt, 4, ne, &c->k[l]); /* [rows, kv_heads, capacity, head_dim] */
        if (st == DIA_OK) st = dia_tensor_alloc(m->be, dt, 4, ne, &c->v[l]);
    }
    if (st != DIA_OK) {
        dia_kvcache_free(c);
        return st;
    }
    *out = c;
    return DIA_OK;
}

DIA_API dia_status dia_kvcache_reset(dia_kvcache *c) {
    if (!c) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_reset: cache is NULL");
    for (int r = 0; r < c->rows; r++) c->lengths[r] = 0;
    return DIA_OK;
}

DIA_API dia_status dia_kvcache_truncate(dia_kvcache *c, int length) {
    if (!c) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_truncate: cache is NULL");
    if (length < 0) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_truncate: negative length %d", length);
    for (int r = 0; r < c->rows; r++)
        if (c->lengths[r] > length) c->lengths[r] = length;
    return DIA_OK;
}

DIA_API dia_status dia_kvcache_length(const dia_kvcache *c, int row, int *length) {
    if (!c || !length) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_length: NULL argument");
    if (row < 0 || row >= c->rows) return dia_fail(DIA_ERR_INVALID_ARG, "row %d outside [0, %d)", row, c->rows);
    *length = c->lengths[row];
    return DIA_OK;
}

DIA_API dia_status dia_kvcache_capacity(const dia_kvcache *c, int *capacity) {
    if (!c || !capacity) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_capacity: NULL argument");
    *capacity = c->capacity;
    return DIA_OK;
}

DIA_API dia_status dia_kvcache_read(const dia_kvcache *c, int layer, int which, int row, float *out, size_t n) {
    if (!c || !out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_read: NULL argument");
    const dia_config *cfg = &c->model->cfg;
    if (layer < 0 || layer >= cfg->dec_layers || (which != 0 && which != 1) || row < 0 || row >= c->rows)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_kvcache_read: layer %d, which %d or row %d out of range", layer,
                        which, row);
    const size_t H = (size_t)cfg->dec_kv_heads, hd = (size_t)cfg->dec_head_dim, L = (size_t)c->lengths[row],
                 S = (size_t)c->capacity;
    if (n < H * L * hd) return dia_fail(DIA_ERR_CAPACITY, "dia_kvcache_read: needs %zu floats, got %zu", H * L * hd, n);
    const dia_tensor *t = which ? &c->v[layer] : &c->k[layer];
    const size_t es = dia_dtype_size(t->dtype);
    dia_backend *be = c->model->be;
    uint16_t *tmp = t->dtype == DIA_F32 ? NULL : malloc(L * hd * es + 1); /* narrow cache: convert here */
    if (t->dtype != DIA_F32 && !tmp) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t h = 0; h < H; h++) {
        const size_t off = t->offset + (((size_t)row * H + h) * S) * hd * es;
        float *dst = out + h * L * hd;
        dia_status st = be->ops->download(be, t->buf, off, tmp ? (void *)tmp : (void *)dst, L * hd * es);
        if (st != DIA_OK) {
            free(tmp);
            return st;
        }
        for (size_t i = 0; tmp && i < L * hd; i++) dst[i] = dia_bf16_to_f32(tmp[i]);
    }
    free(tmp);
    return DIA_OK;
}
