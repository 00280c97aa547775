/* decoder.c - the audio decoder: T positions of the delayed token grid through the embedding sum,
 * the decoder layers (causal GQA self-attention over the KV cache, cross-attention to the
 * encoder, SiLU-gated MLP) and the logits head. Rows are the CFG pairs (2B). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"
#include "ops.h"

/* Graph keys are unique over the process: a state id and its scratch generation. */
static uint64_t next_graph_key(void) {
    static uint64_t counter;
    return __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
}

static void free_scratch(dia_decoder_state *s) {
    dia_backend *be = s->model->be;
    if (s->graph_key && be->ops->graph_release) be->ops->graph_release(be, s->graph_key);
    s->graph_key = 0;
    dia_tensor *t[] = {&s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->h, &s->mlp, &s->logits, &s->inputs, &s->codes};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) dia_tensor_free(be, t[i]);
    s->scratch_T = 0;
}

/* The dtype of the activations that only feed a projection, for a pass over M rows. */
static dia_dtype act_dtype(const dia_decoder_state *s, int64_t M) {
    dia_backend *be = s->model->be;
    return be->ops->activation_dtype ? be->ops->activation_dtype(be, s->model->wdtype, M) : DIA_F32;
}

dia_status dia_decoder_reserve(dia_decoder_state *s, int T) {
    /* kept while big enough and of the right activation dtype (a single step after a prefill may
     * want f32 activations where the prefill's rows wanted bf16) */
    if (T <= s->scratch_T && act_dtype(s, (int64_t)s->rows * T) == s->att.dtype) return DIA_OK;
    free_scratch(s);
    const dia_config *c = &s->model->cfg;
    dia_backend *be = s->model->be;
    const int64_t R = s->rows, M = R * T, D = c->dec_width, C = c->channels, V = c->dec_vocab;
    int64_t qw = (int64_t)c->dec_heads * c->dec_head_dim, cw = (int64_t)c->cross_heads * c->cross_head_dim;
    if (cw > qw) qw = cw; /* q and att serve self- and cross-attention */
    const int64_t kw = (int64_t)c->dec_kv_heads * c->dec_head_dim, I = c->dec_inter;
    int64_t s_x[2] = {M, D}, s_q[2] = {M, qw}, s_k[2] = {M, kw}, s_h[2] = {M, 2 * I}, s_m[2] = {M, I},
            s_l[2] = {M, C * V};
    dia_status st;
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_x, &s->x));        /* f32 [R*T, D] residual stream     */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_x, &s->xn));       /* f32 [R*T, D] normed input        */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_q, &s->q));        /* f32 [R*T, H*hd] queries          */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_k, &s->k));        /* f32 [R*T, KV*hd] new keys        */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_k, &s->v));        /* f32 [R*T, KV*hd] new values      */
    /* the attention and MLP outputs feed only a projection: the backend may keep them in bf16 */
    const dia_dtype adt = act_dtype(s, M);
    TRY(dia_tensor_alloc(be, adt, 2, s_q, &s->att));          /* f32|bf16 [R*T, H*hd] attention output */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_h, &s->h));        /* f32 [R*T, 2I] gate | up          */
    TRY(dia_tensor_alloc(be, adt, 2, s_m, &s->mlp));          /* f32|bf16 [R*T, I]                */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, s_l, &s->logits));   /* f32 [R*T, C*V]                   */
    int64_t s_in[1] = {M * C + M + 2 * R + R / 2 * C};
    TRY(dia_tensor_alloc(be, DIA_I32, 1, s_in, &s->inputs));       /* i32: the five below, one upload */
    int64_t s_codes[2] = {R / 2, C};
    TRY(dia_tensor_alloc(be, DIA_I32, 2, s_codes, &s->codes)); /* i32 [B, C] device-sampled frame */
    s->scratch_T = T;
    s->fed = 0;
    s->graph_key = next_graph_key();
    return DIA_OK;
fail:
    free_scratch(s);
    return st;
}

/* The views of s->inputs for a forward pass over T positions (the same offsets for every
 * single-position step, so a recorded step keeps reading the right places). */
static void set_input_views(dia_decoder_state *s, int T) {
    const int64_t R = s->rows, M = R * T, C = s->model->cfg.channels;
    int64_t s_tok[2] = {M, C}, s_pos[1] = {M}, s_r[1] = {R}, s_f[2] = {R / 2, C};
    s->tok = dia_tensor_view(&s->inputs, 0, 2, s_tok);             /* i32 [R*T, C] tokens          */
    s->pos = dia_tensor_view(&s->inputs, M * C, 1, s_pos);         /* i32 [R*T] positions          */
    s->start = dia_tensor_view(&s->inputs, M * C + M, 1, s_r);     /* i32 [R] cache write position */
    s->kvlen = dia_tensor_view(&s->inputs, M * C + M + R, 1, s_r); /* i32 [R] keys after the write */
    s->force = dia_tensor_view(&s->inputs, M * C + M + 2 * R, 2, s_f); /* i32 [B, C] fed-forward overrides */
}

DIA_API void dia_decoder_state_free(dia_decoder_state *s) {
    if (!s) return;
    for (int i = 0; i < 2; i++)
        if (s->pending[i]) s->model->be->ops->async_free(s->model->be, s->pending[i]);
    free_scratch(s);
    free(s->last_logits);
    free(s);
}

DIA_API dia_status dia_decoder_state_new(dia_model *m, const dia_encoder_state *enc, dia_kvcache *cache,
                                         dia_decoder_state **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_state_new: out is NULL");
    *out = NULL;
    if (!m || !enc || !cache) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_state_new: NULL argument");
    if (enc->model != m || cache->model != m)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_state_new: encoder state or cache belongs to another model");
    if (enc->batch != cache->batch)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_state_new: encoder batch %d != cache batch %d", enc->batch,
                        cache->batch);
    dia_decoder_state *s = calloc(1, sizeof *s);
    if (!s) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = m;
    s->enc = enc;
    s->cache = cache;
    s->rows = cache->rows;
    s->last_logits = calloc((size_t)s->rows * m->cfg.channels * m->cfg.dec_vocab, sizeof(float));
    dia_status st = s->last_logits ? dia_decoder_reserve(s, 1) : dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    if (st != DIA_OK) {
        dia_decoder_state_free(s);
        return st;
    }
    *out = s;
    return DIA_OK;
}

typedef struct layers_ctx {
    dia_decoder_state *s;
    int T;
} layers_ctx;

/* Embedding sum, decoder layers, final norm and logits head over T positions whose inputs (tokens,
 * positions, cache write positions, key lengths) are already in the scratch tensors. */
static dia_status run_layers(void *vctx) {
    const layers_ctx *lc = vctx;
    dia_decoder_state *s = lc->s;
    const int T = lc->T;
    dia_model *m = s->model;
    const dia_config *c = &m->cfg;
    dia_backend *be = m->be;
    dia_kvcache *cache = s->cache;
    const int64_t R = s->rows, M = R * T, C = c->channels, V = c->dec_vocab;
    const int64_t H = c->dec_heads, KV = c->dec_kv_heads, hd = c->dec_head_dim;
    const int64_t CH = c->cross_heads, chd = c->cross_head_dim;
    dia_tensor tok = as2(&s->tok, M, C), pos = as2(&s->pos, M, 1), qpos = as2(&s->pos, R, T);
    dia_tensor x = as2(&s->x, M, c->dec_width), xn = as2(&s->xn, M, c->dec_width);
    dia_tensor q = as2(&s->q, M, H * hd), k = as2(&s->k, M, KV * hd), v = as2(&s->v, M, KV * hd);
    dia_tensor att = as2(&s->att, M, H * hd), cq = as2(&s->q, M, CH * chd), catt = as2(&s->att, M, CH * chd);
    dia_tensor h = as2(&s->h, M, 2 * (int64_t)c->dec_inter), mlp = as2(&s->mlp, M, c->dec_inter);
    dia_tensor lg = as2(&s->logits, M, C * V), start = as2(&s->start, R, 1), kvlen = as2(&s->kvlen, R, 1);
    dia_status st;
    /* a single position: the backend may run all the layers as one op, with the embedding sum before
     * them and the logits head after them where it takes those too */
    int fused_layers = 0, fused_embed = 0, fused_head = 0;
    dia_decode_layer_w lw[DIA_MAX_LAYERS];
    dia_tensor p1 = as2(&s->pos, R, 1), cl = as2(&s->enc->cross_len, R, 1);
    dia_decode_layers_args da = {.n_layers = c->dec_layers, .layer = lw, .x = &x, .pos = &p1, .start = &start,
                                 .kvlen = &kvlen, .cross_len = &cl, .heads = (int)H, .kv_heads = (int)KV,
                                 .head_dim = (int)hd, .cross_heads = (int)CH, .cross_kv_heads = c->cross_kv_heads,
                                 .cross_head_dim = (int)chd, .eps = c->dec_eps, .theta = c->dec_theta,
                                 .out_trans = m->logits.trans}; /* (the ends: below) */
    if (T == 1 && be->ops->decode_layers_ok && be->ops->decode_layers) {
        for (int l = 0; l < c->dec_layers; l++) {
            dec_layer *L = &m->dec[l];
            const dia_weight *w[8] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->cq, &L->co, &L->gate_up, &L->down};
            lw[l] = (dia_decode_layer_w){.norm = {&L->pre_sa_norm, &L->pre_ca_norm, &L->pre_mlp_norm},
                                         .kcache = &cache->k[l], .vcache = &cache->v[l],
                                         .ck = &s->enc->cross_k[l], .cv = &s->enc->cross_v[l]};
            for (int i = 0; i < 8; i++) lw[l].w[i] = &w[i]->t, lw[l].trans_w[i] = w[i]->trans;
        }
        static const int ends[4] = {3, 1, 2, 0}; /* 1: the embedding, 2: the logits head */
        for (int i = 0; i < 4 && !fused_layers; i++) {
            da.tok = ends[i] & 1 ? &tok : NULL, da.embed = ends[i] & 1 ? m->dec_embed : NULL;
            da.n_embed = ends[i] & 1 ? (int)C : 0;
            da.out_norm = ends[i] & 2 ? &m->dec_norm : NULL, da.out_w = ends[i] & 2 ? &m->logits.t : NULL;
            da.logits = ends[i] & 2 ? &lg : NULL;
            fused_layers = be->ops->decode_layers_ok(be, &da);
            fused_embed = fused_layers && (ends[i] & 1), fused_head = fused_layers && (ends[i] & 2);
        }
    }
    if (!fused_embed) TRY(be->ops->embed(be, &x, m->dec_embed, (int)C, &tok)); /* x = sum_c E_c[tok[:, c]] */
    if (fused_layers) TRY(be->ops->decode_layers(be, &da));
    for (int l = 0; l < c->dec_layers && !fused_layers; l++) {
        const dec_layer *L = &m->dec[l];
        /* self-attention: q, k, v = rmsnorm(x) . (Wq, Wk, Wv); RoPE at absolute positions; causal
         * over the cache */
        dia_linear_args qkv = {.x = &x, .norm_w = &L->pre_sa_norm, .eps = c->dec_eps, .n = 3, .y = {&q, &k, &v},
                               .w = {&L->wq.t, &L->wk.t, &L->wv.t}, .trans_w = {L->wq.trans, L->wk.trans, L->wv.trans},
                               .scratch = &xn};
        dia_tensor q3 = as3(&q, M, H, hd), k4 = as4(&k, R, T, KV, hd), v4 = as4(&v, R, T, KV, hd);
        TRY(op_linear_rope_kv_store(be, &qkv, &q3, &k4, &v4, &cache->k[l], &cache->v[l], &pos, &start, c->dec_theta));
        dia_tensor q4 = as4(&q, R, T, H, hd), a4 = as4(&att, R, T, H, hd);
        TRY(be->ops->attention(be, &a4, &q4, &cache->k[l], &cache->v[l], &kvlen, &qpos));
        TRY(op_linear(be, &x, &att, &L->wo, 1)); /* x += att . Wo */
        /* cross-attention to the encoder output (no RoPE), keys limited to each row's text */
        TRY(op_linear_norm(be, &cq, &x, &L->pre_ca_norm, c->dec_eps, &xn, &L->cq, 0));
        dia_tensor cq4 = as4(&cq, R, T, CH, chd), ca4 = as4(&catt, R, T, CH, chd);
        TRY(be->ops->attention(be, &ca4, &cq4, &s->enc->cross_k[l], &s->enc->cross_v[l], &s->enc->cross_len, NULL));
        TRY(op_linear(be, &x, &catt, &L->co, 1));
        /* MLP: mlp = silu(h_gate) * h_up with h = rmsnorm(x) . Wgate_up; x += mlp . Wdown */
        dia_linear_args gu = {.x = &x, .norm_w = &L->pre_mlp_norm, .eps = c->dec_eps, .gated = 1, .n = 1, .y = {&mlp},
                              .w = {&L->gate_up.t}, .trans_w = {L->gate_up.trans}, .scratch = &xn, .scratch_out = &h};
        TRY(op_linear_fused(be, &gu));
        TRY(op_linear(be, &x, &mlp, &L->down, 1));
    }
    if (!fused_head) TRY(op_linear_norm(be, &lg, &x, &m->dec_norm, c->dec_eps, &xn, &m->logits, 0)); /* f32 [R*T, C*V] */
    return DIA_OK;
fail:
    return st;
}

/* The forward pass over T positions; tokens host int32 [B, T, C], or NULL (T = 1) for the tokens the
 * last launched step fed forward; force (NULL: none) host int32 [B, C] goes to s->force. */
static dia_status forward(dia_decoder_state *s, const int32_t *tokens, const int32_t *force, int T,
                          float *logits_out, int keep_last) {
    dia_model *m = s->model;
    const dia_config *c = &m->cfg;
    dia_backend *be = m->be;
    dia_kvcache *cache = s->cache;
    const int B = cache->batch;
    const int64_t R = s->rows, M = R * T, C = c->channels, V = c->dec_vocab;
    const int p0 = cache->lengths[0];
    for (int r = 1; r < R; r++)
        if (cache->lengths[r] != p0)
            return dia_fail(DIA_ERR_INVALID_ARG, "decoder: cache rows have different lengths (%d vs %d)",
                            cache->lengths[r], p0);
    if (p0 + T > cache->capacity)
        return dia_fail(DIA_ERR_CAPACITY, "decoder: %d positions at %d exceed the cache capacity %d", T, p0,
                        cache->capacity);
    for (int64_t i = 0; tokens && i < (int64_t)B * T * C; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return dia_fail(DIA_ERR_INVALID_ARG, "decoder: token %d at item %lld, position %lld, channel %lld is outside [0, %lld)",
                            tokens[i], (long long)(i / (T * C)), (long long)(i / C % T), (long long)(i % C), (long long)V);
    dia_status st;
    TRY(dia_decoder_reserve(s, T)); /* (a new scratch has no fed tokens) */
    if (!tokens && (T != 1 || !s->fed))
        return dia_fail(DIA_ERR_INTERNAL, "decoder: no tokens were fed forward for this step");
    /* host inputs, laid out as s->inputs: tokens [R*T, C] (both rows of an item get its tokens),
     * positions [R*T], cache write positions [R], key lengths [R], the sampler's force [B, C]; fed
     * tokens are on the device already, so the upload starts after them */
    const int64_t n_in = M * C + M + 2 * R + (force ? B * C : 0), first = tokens ? 0 : M * C;
    int32_t *hin = malloc((size_t)n_in * sizeof(int32_t));
    if (!hin) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t *htok = hin, *hpos = hin + M * C, *hr = hin + M * C + M;
    for (int64_t r = 0; r < R; r++) {
        if (tokens) memcpy(htok + r * T * C, tokens + (r / 2) * T * C, (size_t)(T * C) * sizeof(int32_t));
        for (int t = 0; t < T; t++) hpos[r * T + t] = p0 + t;
        hr[r] = p0;
        hr[R + r] = p0 + T;
    }
    if (force) memcpy(hr + 2 * R, force, (size_t)(B * C) * sizeof(int32_t));
    set_input_views(s, T);
    const int64_t n_up = n_in - first;
    dia_tensor in = dia_tensor_view(&s->inputs, first, 1, &n_up);
    st = dia_tensor_upload(be, &in, hin + first, (size_t)n_up * sizeof(int32_t));
    free(hin);
    if (st != DIA_OK) return st;
    s->fed = 0;

    /* the ops; a single-position step is a fixed sequence on fixed buffers, which a backend may
     * record once and replay (CUDA graphs) */
    layers_ctx lc = {s, T};
    if (T == 1 && be->ops->graph_run) TRY(be->ops->graph_run(be, s->graph_key, run_layers, &lc));
    else TRY(run_layers(&lc));
    dia_tensor lg = as2(&s->logits, M, C * V);
    if (logits_out) TRY(dia_tensor_download(be, &lg, logits_out, (size_t)(M * C * V) * 4));
    if (keep_last && T == 1) TRY(dia_tensor_download(be, &lg, s->last_logits, (size_t)(R * C * V) * 4));
    else if (keep_last)
        for (int64_t r = 0; r < R; r++) /* last position of each row */
            TRY(be->ops->download(be, lg.buf, lg.offset + (size_t)((r * T + T - 1) * C * V) * 4,
                                  s->last_logits + r * C * V, (size_t)(C * V) * 4));
    for (int64_t r = 0; r < R; r++) cache->lengths[r] = p0 + T;
    return DIA_OK;
fail:
    return st;
}

DIA_API dia_status dia_decoder_prefill(dia_decoder_state *s, const int32_t *tokens, int T, float *logits) {
    dia_clear_error();
    if (!s || !tokens) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_prefill: NULL argument");
    if (T < 1) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_prefill: T = %d, must be >= 1", T);
    return forward(s, tokens, NULL, T, logits, 1);
}

DIA_API dia_status dia_decoder_step(dia_decoder_state *s, const int32_t *tokens) {
    dia_clear_error();
    if (!s || !tokens) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_step: NULL argument");
    return forward(s, tokens, NULL, 1, NULL, 1);
}

/* One step whose frame the backend samples into s->codes (*codes_t: its view); with force (host
 * int32 [B, C]) the sampler also feeds the next step's tokens forward into s->tok. */
static dia_status step_and_sample(dia_decoder_state *s, const int32_t *tokens, const int32_t *force,
                                  const dia_sample_args *args, dia_tensor *codes_t) {
    dia_backend *be = s->model->be;
    if (!be->ops->sample) return dia_fail(DIA_ERR_INTERNAL, "backend %s has no device sampler", be->ops->name);
    dia_status st;
    TRY(forward(s, tokens, force, 1, NULL, 0));
    const int64_t R = s->rows, C = s->model->cfg.channels, V = s->model->cfg.dec_vocab;
    dia_tensor lg = as2(&s->logits, R, C * V), feed = as2(&s->tok, R, C);
    *codes_t = as2(&s->codes, R / 2, C);
    dia_sample_args a = *args;
    a.feed = force ? &feed : NULL, a.force = force ? &s->force : NULL;
    TRY(be->ops->sample(be, codes_t, &lg, &a));
    s->fed = force != NULL;
    return DIA_OK;
fail:
    return st;
}

dia_status dia_decoder_step_sample(dia_decoder_state *s, const int32_t *tokens, const dia_sample_args *args,
                                   int32_t *codes) {
    dia_tensor codes_t;
    dia_status st = step_and_sample(s, tokens, NULL, args, &codes_t);
    return st != DIA_OK ? st : dia_tensor_download(s->model->be, &codes_t, codes, dia_tensor_nbytes(&codes_t));
}

/* bytes of a step's device-sampled codes, int32 [B, C] */
static size_t codes_bytes(const dia_decoder_state *s) { return (size_t)(s->rows / 2 * s->model->cfg.channels) * sizeof(int32_t); }

int dia_decoder_can_launch(const dia_decoder_state *s) {
    const dia_backend_ops *o = s->model->be->ops;
    return o->sample && o->async_new && o->async_free && o->download_start && o->download_wait;
}

dia_status dia_decoder_step_launch(dia_decoder_state *s, const int32_t *tokens, const int32_t *force,
                                   const dia_sample_args *args, int slot) {
    dia_backend *be = s->model->be;
    if (!dia_decoder_can_launch(s) || !force || slot < 0 || slot > 1)
        return dia_fail(DIA_ERR_INTERNAL, "dia_decoder_step_launch: not available or bad arguments");
    const size_t bytes = codes_bytes(s);
    dia_status st;
    if (!s->pending[slot]) TRY(be->ops->async_new(be, bytes, &s->pending[slot]));
    dia_tensor codes_t;
    TRY(step_and_sample(s, tokens, force, args, &codes_t));
    return be->ops->download_start(be, codes_t.buf, codes_t.offset, bytes, s->pending[slot]);
fail:
    return st;
}

dia_status dia_decoder_step_collect(dia_decoder_state *s, int slot, int32_t *codes) {
    dia_backend *be = s->model->be;
    if (slot < 0 || slot > 1 || !s->pending[slot])
        return dia_fail(DIA_ERR_INTERNAL, "dia_decoder_step_collect: slot %d has no launched step", slot);
    return be->ops->download_wait(be, s->pending[slot], codes, codes_bytes(s));
}

void dia_decoder_step_unlaunch(dia_decoder_state *s) {
    (void)dia_kvcache_truncate(s->cache, s->cache->lengths[0] - 1); /* rows have equal lengths */
    s->fed = 0; /* the feed came from the step taken back */
}

DIA_API dia_status dia_decoder_logits(const dia_decoder_state *s, float *out, size_t n) {
    if (!s || !out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_decoder_logits: NULL argument");
    const size_t need = (size_t)s->rows * s->model->cfg.channels * s->model->cfg.dec_vocab;
    if (n < need) return dia_fail(DIA_ERR_CAPACITY, "dia_decoder_logits: needs %zu floats, got %zu", need, n);
    memcpy(out, s->last_logits, need * sizeof(float));
    return DIA_OK;
}
