/* encoder.c - text to bytes, the text encoder (CFG pair per item) and the cross-attention K/V of
 * every decoder layer, computed once per encoded text.
 *
 * All items run together as 2B rows padded to the longest text (T = max_b L_b). Padded positions
 * are excluded as keys by the per-row key length, so every valid position computes exactly what
 * the reference computes on its text padded to text_length with the "valid<->valid" mask. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"
#include "ops.h"

DIA_API dia_status dia_tokenize(const char *text, int32_t *ids, size_t cap, size_t *len) {
    if (!text || !len || (cap && !ids)) return dia_fail(DIA_ERR_INVALID_ARG, "dia_tokenize: NULL argument");
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        int32_t v;
        if (!strncmp((const char *)p, "[S1]", 4)) v = 1, p += 4;
        else if (!strncmp((const char *)p, "[S2]", 4)) v = 2, p += 4;
        else v = *p++;
        if (n < cap) ids[n] = v;
        n++;
    }
    *len = n;
    return DIA_OK;
}

DIA_API void dia_encoder_state_free(dia_encoder_state *s) {
    if (!s) return;
    dia_backend *be = s->model->be;
    dia_tensor_free(be, &s->enc_out);
    dia_tensor_free(be, &s->cross_len);
    for (int i = 0; s->cross_k && i < s->model->cfg.dec_layers; i++) {
        dia_tensor_free(be, &s->cross_k[i]);
        dia_tensor_free(be, &s->cross_v[i]);
    }
    free(s->cross_k);
    free(s->cross_v);
    free(s->lengths);
    free(s);
}

/* Tokenize the batch into host ids [2B, T] (row 2b zeros, row 2b+1 the text) and lengths. */
static dia_status tokenize_batch(const dia_config *c, const char *const *texts, int B, unsigned flags, int *lengths,
                                 int32_t **ids_out, int *T_out) {
    int T = 0;
    for (int b = 0; b < B; b++) {
        if (!texts[b]) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: text %d is NULL", b);
        size_t n = 0;
        dia_tokenize(texts[b], NULL, 0, &n);
        if (n == 0) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: text %d is empty", b);
        if (n > (size_t)c->text_length) {
            if (!(flags & DIA_ENCODE_TRUNCATE))
                return dia_fail(DIA_ERR_TEXT_TOO_LONG,
                                "text %d is %zu bytes; the model takes at most %d (pass DIA_ENCODE_TRUNCATE to cut it)",
                                b, n, c->text_length);
            n = (size_t)c->text_length;
        }
        lengths[b] = (int)n;
        if ((int)n > T) T = (int)n;
    }
    int32_t *ids = calloc((size_t)(2 * B * T), sizeof(int32_t));
    if (!ids) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t *tmp = NULL;
    for (int b = 0; b < B; b++) {
        size_t n = 0;
        dia_tokenize(texts[b], NULL, 0, &n);
        int32_t *nt = realloc(tmp, n * sizeof(int32_t));
        if (!nt) {
            free(tmp);
            free(ids);
            return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        }
        tmp = nt;
        dia_tokenize(texts[b], tmp, n, &n);
        memcpy(ids + (size_t)(2 * b + 1) * T, tmp, (size_t)lengths[b] * sizeof(int32_t));
    }
    free(tmp);
    *ids_out = ids;
    *T_out = T;
    return DIA_OK;
}

DIA_API dia_status dia_encode(dia_model *m, const char *const *texts, int B, unsigned flags, dia_encoder_state **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: out is NULL");
    *out = NULL;
    if (!m || !texts) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: NULL model or texts");
    if (B < 1 || B > 4096) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: batch %d outside [1, 4096]", B);
    if (flags & ~DIA_ENCODE_TRUNCATE) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encode: unknown flags 0x%x", flags);
    const dia_config *c = &m->cfg;
    dia_backend *be = m->be;
    const dia_dtype cdt = dia_model_cache_dtype(m); /* attention caches: f32 on CPU */
    dia_encoder_state *s = calloc(1, sizeof *s);
    if (!s) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = m;
    s->batch = B;
    s->lengths = calloc((size_t)B, sizeof(int));
    s->cross_k = calloc((size_t)c->dec_layers, sizeof(dia_tensor));
    s->cross_v = calloc((size_t)c->dec_layers, sizeof(dia_tensor));
    int32_t *ids = NULL, *hpos = NULL, *hlen = NULL;
    dia_tensor tok = {0}, pos = {0}, start = {0}, x = {0}, xn = {0}, q = {0}, k = {0}, v = {0}, kc = {0}, vc = {0},
               att = {0}, h = {0}, mlp = {0};
    dia_status st = DIA_OK;
    if (!s->lengths || !s->cross_k || !s->cross_v) {
        st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    int T = 0;
    TRY(tokenize_batch(c, texts, B, flags, s->lengths, &ids, &T));
    s->max_len = T;
    const int64_t R = 2 * B, M = R * T, De = c->enc_width, H = c->enc_heads, KV = c->enc_kv_heads,
                  hd = c->enc_head_dim, I = c->enc_inter;
    /* host-side positions [R*T] and key lengths [R] */
    hpos = malloc((size_t)M * sizeof(int32_t));
    hlen = malloc((size_t)R * sizeof(int32_t));
    if (!hpos || !hlen) {
        st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    for (int64_t r = 0; r < R; r++) {
        hlen[r] = s->lengths[r / 2];
        for (int64_t t = 0; t < T; t++) hpos[r * T + t] = (int32_t)t;
    }
    /* scratch */
    {
        int64_t s_tok[1] = {M}, s_R[1] = {R}, s_x[2] = {M, De}, s_q[2] = {M, H * hd}, s_k[2] = {M, KV * hd},
                s_c[4] = {R, KV, T, hd}, s_h[2] = {M, 2 * I}, s_m[2] = {M, I};
        TRY(dia_tensor_alloc(be, DIA_I32, 1, s_tok, &tok));    /* i32 [R*T] byte ids          */
        TRY(dia_tensor_alloc(be, DIA_I32, 1, s_tok, &pos));    /* i32 [R*T] positions         */
        TRY(dia_tensor_alloc(be, DIA_I32, 1, s_R, &start));    /* i32 [R] zeros (store at 0)  */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_x, &x));        /* f32 [R*T, De] residual      */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_x, &xn));       /* f32 [R*T, De] normed        */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_q, &q));        /* f32 [R*T, H*hd]             */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_k, &k));        /* f32 [R*T, KV*hd]            */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_k, &v));        /* f32 [R*T, KV*hd]            */
        TRY(dia_tensor_alloc(be, cdt, 4, s_c, &kc));           /* cache dtype [R, KV, T, hd]  */
        TRY(dia_tensor_alloc(be, cdt, 4, s_c, &vc));           /* cache dtype [R, KV, T, hd]  */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_q, &att));      /* f32 [R*T, H*hd]             */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_h, &h));        /* f32 [R*T, 2I] gate | up     */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_m, &mlp));      /* f32 [R*T, I]                */
        TRY(dia_tensor_alloc(be, DIA_I32, 1, s_R, &s->cross_len)); /* i32 [R]                 */
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_x, &s->enc_out));
    }
    TRY(dia_tensor_upload(be, &tok, ids, (size_t)M * 4));
    TRY(dia_tensor_upload(be, &pos, hpos, (size_t)M * 4));
    TRY(dia_tensor_upload(be, &s->cross_len, hlen, (size_t)R * 4));
    TRY(be->ops->embed(be, &x, &m->enc_embed, 1, &tok));
    for (int l = 0; l < c->enc_layers; l++) {
        const enc_layer *L = &m->enc[l];
        /* x += o_proj(attention(rope(q), rope(k), v)) */
        TRY(be->ops->rmsnorm(be, &xn, &x, &L->pre_sa_norm, c->enc_eps));
        TRY(op_linear(be, &q, &xn, &L->wq, 0));
        TRY(op_linear(be, &k, &xn, &L->wk, 0));
        TRY(op_linear(be, &v, &xn, &L->wv, 0));
        dia_tensor q3 = as3(&q, M, H, hd), k3 = as3(&k, M, KV, hd);
        TRY(be->ops->rope(be, &q3, &pos, c->enc_theta));
        TRY(be->ops->rope(be, &k3, &pos, c->enc_theta));
        dia_tensor k4 = as4(&k, R, T, KV, hd), v4 = as4(&v, R, T, KV, hd);
        TRY(be->ops->kv_store(be, &kc, &k4, &start));
        TRY(be->ops->kv_store(be, &vc, &v4, &start));
        dia_tensor q4 = as4(&q, R, T, H, hd), a4 = as4(&att, R, T, H, hd);
        TRY(be->ops->attention(be, &a4, &q4, &kc, &vc, &s->cross_len, NULL));
        TRY(op_linear(be, &x, &att, &L->wo, 1));
        /* x += down(silu(gate) * up) */
        TRY(be->ops->rmsnorm(be, &xn, &x, &L->post_sa_norm, c->enc_eps));
        TRY(op_linear(be, &h, &xn, &L->gate_up, 0));
        TRY(be->ops->silu_mul(be, &mlp, &h));
        TRY(op_linear(be, &x, &mlp, &L->down, 1));
    }
    TRY(be->ops->rmsnorm(be, &s->enc_out, &x, &m->enc_norm, c->enc_eps));
    /* cross-attention K/V of every decoder layer: [R, CKV, T, chd] */
    {
        const int64_t CKV = c->cross_kv_heads, chd = c->cross_head_dim;
        dia_tensor ck = {0}, cv = {0};
        int64_t s_ck[2] = {M, CKV * chd}, s_cc[4] = {R, CKV, T, chd};
        TRY(dia_tensor_alloc(be, DIA_F32, 2, s_ck, &ck)); /* f32 [R*T, CKV*chd] */
        st = dia_tensor_alloc(be, DIA_F32, 2, s_ck, &cv);
        for (int l = 0; st == DIA_OK && l < c->dec_layers; l++) {
            st = dia_tensor_alloc(be, cdt, 4, s_cc, &s->cross_k[l]);
            if (st == DIA_OK) st = dia_tensor_alloc(be, cdt, 4, s_cc, &s->cross_v[l]);
            if (st == DIA_OK) st = op_linear(be, &ck, &s->enc_out, &m->dec[l].ck, 0);
            if (st == DIA_OK) st = op_linear(be, &cv, &s->enc_out, &m->dec[l].cv, 0);
            dia_tensor ck4 = as4(&ck, R, T, CKV, chd), cv4 = as4(&cv, R, T, CKV, chd);
            if (st == DIA_OK) st = be->ops->kv_store(be, &s->cross_k[l], &ck4, &start);
            if (st == DIA_OK) st = be->ops->kv_store(be, &s->cross_v[l], &cv4, &start);
        }
        dia_tensor_free(be, &ck);
        dia_tensor_free(be, &cv);
    }
fail:
    {
        dia_tensor *scratch[] = {&tok, &pos, &start, &x, &xn, &q, &k, &v, &kc, &vc, &att, &h, &mlp};
        for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) dia_tensor_free(be, scratch[i]);
    }
    free(ids);
    free(hpos);
    free(hlen);
    if (st != DIA_OK) {
        dia_encoder_state_free(s);
        return st;
    }
    *out = s;
    return DIA_OK;
}

DIA_API dia_status dia_encoder_state_batch(const dia_encoder_state *s, int *batch) {
    if (!s || !batch) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encoder_state_batch: NULL argument");
    *batch = s->batch;
    return DIA_OK;
}

DIA_API dia_status dia_encoder_state_length(const dia_encoder_state *s, int item, int *length) {
    if (!s || !length) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encoder_state_length: NULL argument");
    if (item < 0 || item >= s->batch)
        return dia_fail(DIA_ERR_INVALID_ARG, "item %d outside the batch of %d", item, s->batch);
    *length = s->lengths[item];
    return DIA_OK;
}

DIA_API dia_status dia_encoder_state_output(const dia_encoder_state *s, int item, float *out, size_t n) {
    if (!s || !out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_encoder_state_output: NULL argument");
    if (item < 0 || item >= s->batch)
        return dia_fail(DIA_ERR_INVALID_ARG, "item %d outside the batch of %d", item, s->batch);
    const size_t L = (size_t)s->lengths[item], D = (size_t)s->model->cfg.enc_width, T = (size_t)s->max_len;
    if (n < 2 * L * D) return dia_fail(DIA_ERR_CAPACITY, "output needs %zu floats, got %zu", 2 * L * D, n);
    dia_backend *be = s->model->be;
    for (size_t r = 0; r < 2; r++) {
        dia_status st = be->ops->download(be, s->enc_out.buf, s->enc_out.offset + ((2 * item + r) * T) * D * 4,
                                          out + r * L * D, L * D * 4);
        if (st != DIA_OK) return st;
    }
    return DIA_OK;
}
