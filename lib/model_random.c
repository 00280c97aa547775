/* model_random.c - a Dia model with random weights built in memory from a config (benchmarks of the
 * full-size architecture without a 6 GB checkpoint). Internal; not part of the public API. */
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "log.h"
#include "model.h"

typedef struct rnd {
    uint64_t s;
} rnd;

static float rnd_uniform(rnd *r) { /* xorshift64*, uniform in [-1, 1) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (float)((double)((r->s * 0x2545F4914F6CDD1Dull) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Allocate a weight [d0, d1] of dtype dt filled with uniform(-scale, scale) (+ offset). */
static dia_status rand_tensor(dia_model *m, rnd *r, int ndim, int64_t d0, int64_t d1, dia_dtype dt, float scale,
                              float offset, dia_tensor *out) {
    int64_t ne[2] = {d0, d1};
    dia_status st = dia_tensor_alloc(m->be, dt, ndim, ne, out);
    if (st == DIA_OK) st = model_own(m, out);
    if (st != DIA_OK) return st;
    const int64_t n = dia_tensor_nelem(out), chunk = 1 << 20;
    const size_t es = dia_dtype_size(dt);
    unsigned char *host = malloc((size_t)chunk * es);
    if (!host) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i0 = 0; i0 < n && st == DIA_OK; i0 += chunk) {
        const int64_t k = n - i0 < chunk ? n - i0 : chunk;
        for (int64_t i = 0; i < k; i++) {
            float v = offset + scale * rnd_uniform(r);
            if (dt == DIA_BF16) {
                const uint16_t h = dia_f32_to_bf16(v);
                memcpy(host + i * 2, &h, 2);
            } else {
                memcpy(host + i * 4, &v, 4);
            }
        }
        st = m->be->ops->upload(m->be, out->buf, out->offset + (size_t)i0 * es, host, (size_t)k * es);
    }
    free(host);
    return st;
}

dia_status dia_model_new_random(const char *config_json, const dia_options *opts, uint64_t seed, dia_dtype wdtype,
                                dia_model **out) {
    *out = NULL;
    if (wdtype != DIA_F32 && wdtype != DIA_BF16) return dia_fail(DIA_ERR_INVALID_ARG, "random model: f32 or bf16 weights");
    dia_model *m = calloc(1, sizeof *m);
    if (!m) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    dia_status st = dia_config_parse(config_json, "random model config", &m->cfg);
    if (st == DIA_OK)
        st = dia_backend_new(opts ? opts->backend : "cpu", opts ? opts->threads : 0, opts ? opts->device : 0, &m->be);
    rnd r = {seed * 0x9E3779B97F4A7C15ull + 1};
    const dia_config *c = &m->cfg;
    m->layout_hf = 1;
    m->wdtype = wdtype;
    m->want_dtype = wdtype;
    const int64_t De = c->enc_width, Dd = c->dec_width;
    /* scale ~ 1/sqrt(fan_in) keeps activations O(1) without a 1/sqrt(d) attention scale */
#define W(dst, out_f, in_f) \
    if (st == DIA_OK) st = rand_tensor(m, &r, 2, out_f, in_f, wdtype, 1.0f / (float)(in_f), 0.0f, &(dst).t), (dst).trans = 1
#define NORM(dst, n) \
    if (st == DIA_OK) st = rand_tensor(m, &r, 1, n, 0, DIA_F32, 0.1f, 1.0f, &(dst))
    if (st == DIA_OK) st = rand_tensor(m, &r, 2, c->enc_vocab, De, wdtype, 1.0f, 0.0f, &m->enc_embed);
    for (int i = 0; i < c->enc_layers; i++) {
        enc_layer *l = &m->enc[i];
        const int64_t qd = (int64_t)c->enc_heads * c->enc_head_dim, kd = (int64_t)c->enc_kv_heads * c->enc_head_dim;
        NORM(l->pre_sa_norm, De);
        NORM(l->post_sa_norm, De);
        W(l->wq, qd, De);
        W(l->wk, kd, De);
        W(l->wv, kd, De);
        W(l->wo, De, qd);
        W(l->gate_up, 2 * (int64_t)c->enc_inter, De);
        W(l->down, De, c->enc_inter);
    }
    NORM(m->enc_norm, De);
    for (int ch = 0; ch < c->channels; ch++)
        if (st == DIA_OK) st = rand_tensor(m, &r, 2, c->dec_vocab, Dd, wdtype, 1.0f, 0.0f, &m->dec_embed[ch]);
    for (int i = 0; i < c->dec_layers; i++) {
        dec_layer *l = &m->dec[i];
        const int64_t qd = (int64_t)c->dec_heads * c->dec_head_dim, kd = (int64_t)c->dec_kv_heads * c->dec_head_dim;
        const int64_t cqd = (int64_t)c->cross_heads * c->cross_head_dim,
                      ckd = (int64_t)c->cross_kv_heads * c->cross_head_dim;
        NORM(l->pre_sa_norm, Dd);
        NORM(l->pre_ca_norm, Dd);
        NORM(l->pre_mlp_norm, Dd);
        W(l->wq, qd, Dd);
        W(l->wk, kd, Dd);
        W(l->wv, kd, Dd);
        W(l->wo, Dd, qd);
        W(l->cq, cqd, Dd);
        W(l->ck, ckd, De);
        W(l->cv, ckd, De);
        W(l->co, Dd, cqd);
        W(l->gate_up, 2 * (int64_t)c->dec_inter, Dd);
        W(l->down, Dd, c->dec_inter);
    }
    NORM(m->dec_norm, Dd);
    W(m->logits, (int64_t)c->channels * c->dec_vocab, Dd);
#undef W
#undef NORM
    if (st != DIA_OK) {
        dia_model_free(m);
        return st;
    }
    *out = m;
    return DIA_OK;
}
