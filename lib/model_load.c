/* model_load.c - dia_model_load: config + safetensors (single or sharded) in the transformers or the
 * nari-labs layout, strictly checked, weights used in place from the mapping. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"

typedef struct loader {
    dia_model *m;
    char name[256];
} loader;

dia_status model_own(dia_model *m, dia_tensor *t) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        dia_tensor *no = realloc(m->owned, sizeof(dia_tensor) * (size_t)cap);
        if (!no) {
            dia_tensor_free(m->be, t);
            return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        }
        m->owned = no;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = *t;
    return DIA_OK;
}

/* A backend tensor of an archive tensor, reshaped to 2-D [d0, d1] (or 1-D [d0]): a view of the
 * wrapped mapping, or (backends with weight_upload) an uploaded copy in the wanted dtype, stored
 * as [d1, d0] when `transpose` (only with weight_upload). */
static dia_status view_of(dia_model *m, const st_tensor *t, int ndim, int64_t d0, int64_t d1, int transpose,
                          dia_tensor *out) {
    dia_tensor v;
    memset(&v, 0, sizeof v);
    v.dtype = t->dtype;
    v.ndim = ndim;
    v.ne[0] = d0;
    v.ne[1] = ndim > 1 ? d1 : 0;
    if (m->be->ops->weight_upload) {
        dia_dtype want = ndim == 1 ? DIA_F32 : m->want_dtype; /* norm scales stay f32 */
        dia_status st = m->be->ops->weight_upload(m->be, t->data, t->dtype, ndim, v.ne, want, transpose, &v);
        if (st == DIA_OK) st = model_own(m, &v);
        if (st != DIA_OK) return st;
    } else {
        v.buf = m->wbufs[t->file];
        v.offset = (size_t)((const char *)t->data - (const char *)m->ar.maps[t->file].base);
    }
    *out = v;
    return DIA_OK;
}

static dia_status take(loader *L, int ndim, const int64_t *shape, const st_tensor **out) {
    st_tensor *t = NULL;
    dia_status st = st_take(&L->m->ar, L->name, ndim, shape, &t);
    *out = t;
    return st;
}

/* 1-D vector (norm scale) */
static dia_status take_vec(loader *L, int64_t n, dia_tensor *out, const char *fmt, ...) DIA_PRINTF(4, 5);
static dia_status take_vec(loader *L, int64_t n, dia_tensor *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->name, sizeof L->name, fmt, ap);
    va_end(ap);
    const st_tensor *t;
    dia_status st = take(L, 1, &n, &t);
    if (st == DIA_OK) st = view_of(L->m, t, 1, n, 0, 0, out);
    return st;
}

/* A linear map in -> out. transformers: [out, in] (trans). nari: (in..., out...) given by
 * nari_shape, flattened to [in, out]. */
static dia_status take_lin(loader *L, int64_t in, int64_t out, int nari_ndim, const int64_t *nari_shape, dia_weight *w,
                           const char *hf_name, const char *nari_name) {
    const st_tensor *t;
    dia_status st;
    if (L->m->layout_hf) {
        snprintf(L->name, sizeof L->name, "%s", hf_name);
        int64_t shape[2] = {out, in};
        if ((st = take(L, 2, shape, &t)) != DIA_OK) return st;
        if ((st = view_of(L->m, t, 2, out, in, 0, &w->t)) != DIA_OK) return st;
        w->trans = 1;
    } else {
        snprintf(L->name, sizeof L->name, "%s", nari_name);
        if ((st = take(L, nari_ndim, nari_shape, &t)) != DIA_OK) return st;
        /* a backend that copies the weights stores them as [out, in] too (its decode kernels want
         * nn.Linear rows); the CPU uses the mapping in place */
        const int tr = L->m->be->ops->weight_upload != NULL;
        if ((st = view_of(L->m, t, 2, in, out, tr, &w->t)) != DIA_OK) return st;
        w->trans = tr;
    }
    return DIA_OK;
}

static dia_status load_weights(dia_model *m) {
    loader L = {.m = m};
    const dia_config *c = &m->cfg;
    dia_status st;
    const int hf = m->layout_hf;
    char hn[256], nn[256];
    const int64_t De = c->enc_width, Dd = c->dec_width, C = c->channels, V = c->dec_vocab;
    /* encoder */
    {
        snprintf(L.name, sizeof L.name, hf ? "model.encoder.embedding.weight" : "encoder.embedding.weight");
        int64_t s[2] = {c->enc_vocab, De};
        const st_tensor *t;
        if ((st = take(&L, 2, s, &t)) != DIA_OK) return st;
        if ((st = view_of(m, t, 2, s[0], s[1], 0, &m->enc_embed)) != DIA_OK) return st;
    }
    const char *ep = hf ? "model.encoder" : "encoder";
    for (int i = 0; i < c->enc_layers; i++) {
        enc_layer *l = &m->enc[i];
        const int64_t H = c->enc_heads, KV = c->enc_kv_heads, hd = c->enc_head_dim, I = c->enc_inter;
        if ((st = take_vec(&L, De, &l->pre_sa_norm, "%s.layers.%d.pre_sa_norm.weight", ep, i)) != DIA_OK) return st;
        if ((st = take_vec(&L, De, &l->post_sa_norm, "%s.layers.%d.post_sa_norm.weight", ep, i)) != DIA_OK) return st;
#define LIN(field, in, out, nd, ...)                                                                     \
    do {                                                                                                 \
        int64_t ns[] = {__VA_ARGS__};                                                                    \
        if ((st = take_lin(&L, in, out, nd, ns, &l->field, hn, nn)) != DIA_OK) return st;                \
    } while (0)
#define NAMES(hfs, naris)                                                    \
    snprintf(hn, sizeof hn, "%s.layers.%d.%s.weight", ep, i, hfs);           \
    snprintf(nn, sizeof nn, "%s.layers.%d.%s.weight", ep, i, naris)
        NAMES("self_attention.q_proj", "self_attention.q_proj");
        LIN(wq, De, H * hd, 3, De, H, hd);
        NAMES("self_attention.k_proj", "self_attention.k_proj");
        LIN(wk, De, KV * hd, 3, De, KV, hd);
        NAMES("self_attention.v_proj", "self_attention.v_proj");
        LIN(wv, De, KV * hd, 3, De, KV, hd);
        NAMES("self_attention.o_proj", "self_attention.o_proj");
        LIN(wo, H * hd, De, 3, H, hd, De);
        NAMES("mlp.gate_up_proj", "mlp.wi_fused");
        LIN(gate_up, De, 2 * I, 3, De, 2, I);
        NAMES("mlp.down_proj", "mlp.wo");
        LIN(down, I, De, 2, I, De);
    }
    if ((st = take_vec(&L, De, &m->enc_norm, "%s.norm.weight", ep)) != DIA_OK) return st;
    /* decoder */
    const char *dp = hf ? "model.decoder" : "decoder";
    if (hf) {
        snprintf(L.name, sizeof L.name, "model.decoder.embeddings.embed.weight");
        int64_t s[2] = {C * V, Dd};
        const st_tensor *t;
        if ((st = take(&L, 2, s, &t)) != DIA_OK) return st;
        dia_tensor all;
        if ((st = view_of(m, t, 2, C * V, Dd, 0, &all)) != DIA_OK) return st;
        for (int ch = 0; ch < C; ch++) {
            int64_t ne[2] = {V, Dd};
            m->dec_embed[ch] = dia_tensor_view(&all, ch * V * Dd, 2, ne);
        }
    } else {
        for (int ch = 0; ch < C; ch++) {
            snprintf(L.name, sizeof L.name, "decoder.embeddings.%d.weight", ch);
            int64_t s[2] = {V, Dd};
            const st_tensor *t;
            if ((st = take(&L, 2, s, &t)) != DIA_OK) return st;
            if ((st = view_of(m, t, 2, V, Dd, 0, &m->dec_embed[ch])) != DIA_OK) return st;
        }
    }
    for (int i = 0; i < c->dec_layers; i++) {
        dec_layer *l = &m->dec[i];
        const int64_t H = c->dec_heads, KV = c->dec_kv_heads, hd = c->dec_head_dim, I = c->dec_inter;
        const int64_t CH = c->cross_heads, CKV = c->cross_kv_heads, chd = c->cross_head_dim;
        ep = dp;
        if ((st = take_vec(&L, Dd, &l->pre_sa_norm, "%s.layers.%d.pre_sa_norm.weight", dp, i)) != DIA_OK) return st;
        if ((st = take_vec(&L, Dd, &l->pre_ca_norm, "%s.layers.%d.pre_ca_norm.weight", dp, i)) != DIA_OK) return st;
        if ((st = take_vec(&L, Dd, &l->pre_mlp_norm, "%s.layers.%d.pre_mlp_norm.weight", dp, i)) != DIA_OK) return st;
        NAMES("self_attention.q_proj", "self_attention.q_proj");
        LIN(wq, Dd, H * hd, 3, Dd, H, hd);
        NAMES("self_attention.k_proj", "self_attention.k_proj");
        LIN(wk, Dd, KV * hd, 3, Dd, KV, hd);
        NAMES("self_attention.v_proj", "self_attention.v_proj");
        LIN(wv, Dd, KV * hd, 3, Dd, KV, hd);
        NAMES("self_attention.o_proj", "self_attention.o_proj");
        LIN(wo, H * hd, Dd, 3, H, hd, Dd);
        NAMES("cross_attention.q_proj", "cross_attention.q_proj");
        LIN(cq, Dd, CH * chd, 3, Dd, CH, chd);
        NAMES("cross_attention.k_proj", "cross_attention.k_proj");
        LIN(ck, De, CKV * chd, 3, De, CKV, chd);
        NAMES("cross_attention.v_proj", "cross_attention.v_proj");
        LIN(cv, De, CKV * chd, 3, De, CKV, chd);
        NAMES("cross_attention.o_proj", "cross_attention.o_proj");
        LIN(co, CH * chd, Dd, 3, CH, chd, Dd);
        NAMES("mlp.gate_up_proj", "mlp.wi_fused");
        LIN(gate_up, Dd, 2 * I, 3, Dd, 2, I);
        NAMES("mlp.down_proj", "mlp.wo");
        LIN(down, I, Dd, 2, I, Dd);
#undef NAMES
#undef LIN
    }
    if ((st = take_vec(&L, Dd, &m->dec_norm, "%s.norm.weight", dp)) != DIA_OK) return st;
    {
        int64_t ns[3] = {Dd, C, V};
        if ((st = take_lin(&L, Dd, C * V, 3, ns, &m->logits, "logits_dense.weight", "decoder.logits_dense.weight")) !=
            DIA_OK)
            return st;
    }
    m->wdtype = m->logits.t.dtype;
    return st_check_all_used(&m->ar);
}

/* "encoder_memory" = "host": the weights used once per text - the encoder's and the decoder's
 * cross-attention K/V projections (~650 MB in bf16 for Dia-1.6B) - move to host memory the
 * device reads over the bus (backends with buffer_to_host; elsewhere they already are in host
 * memory and this does nothing). dia_encode reads them from there, slower. */
static dia_status cold_weights_to_host(dia_model *m) {
    dia_backend *be = m->be;
    if (!be->ops->buffer_to_host || !be->ops->weight_upload) return DIA_OK;
    dia_status st = be->ops->buffer_to_host(be, m->enc_embed.buf);
    for (int l = 0; st == DIA_OK && l < m->cfg.enc_layers; l++) {
        const enc_layer *e = &m->enc[l];
        const dia_weight *w[6] = {&e->wq, &e->wk, &e->wv, &e->wo, &e->gate_up, &e->down};
        for (int i = 0; st == DIA_OK && i < 6; i++) st = be->ops->buffer_to_host(be, w[i]->t.buf);
    }
    for (int l = 0; st == DIA_OK && l < m->cfg.dec_layers; l++) {
        st = be->ops->buffer_to_host(be, m->dec[l].ck.t.buf);
        if (st == DIA_OK) st = be->ops->buffer_to_host(be, m->dec[l].cv.t.buf);
    }
    return st;
}

DIA_API dia_status dia_model_load(const char *path, const dia_options *opts, dia_model **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return dia_fail(DIA_ERR_INVALID_ARG, "dia_model_load: path is NULL or empty");
    if (!dia_is_dir(path) && !dia_file_exists(path))
        return dia_fail(DIA_ERR_IO, "%s: no such checkpoint directory or file", path);
    dia_model *m = calloc(1, sizeof *m);
    if (!m) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    char cfg_path[4200];
    dia_config_path(cfg_path, sizeof cfg_path, path); /* in the directory, or beside the file */
    char *json = NULL;
    dia_status st = dia_read_text_file(cfg_path, &json, 1u << 20);
    if (st == DIA_OK) st = dia_config_parse(json, cfg_path, &m->cfg);
    free(json);
    if (st == DIA_OK) st = st_open(path, &m->ar);
    if (st == DIA_OK) {
        const char *bname = opts ? opts->backend : "cpu";
        st = dia_backend_new(bname, opts ? opts->threads : 0, opts ? opts->device : 0, &m->be);
    }
    if (st == DIA_OK) {
        const char *dt = opts ? opts->dtype : "auto";
        if (!m->be->ops->weight_upload && !strcmp(dt, "bf16"))
            st = dia_fail(DIA_ERR_INVALID_ARG, "dtype bf16: the %s backend uses the weights as stored and computes in f32 "
                                               "(use dtype auto or f32)", m->be->ops->name);
        else if (!strcmp(dt, "f32")) m->want_dtype = DIA_F32;
        else if (!strcmp(dt, "bf16")) m->want_dtype = DIA_BF16;
        else m->want_dtype = m->be->ops->default_weight_dtype ? m->be->ops->default_weight_dtype(m->be) : DIA_F32;
    }
    if (st == DIA_OK && !m->be->ops->weight_upload) {
        m->wbufs = calloc((size_t)m->ar.n_maps, sizeof *m->wbufs);
        if (!m->wbufs) st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; st == DIA_OK && i < m->ar.n_maps; i++) {
            st = m->be->ops->wrap_host(m->be, m->ar.maps[i].base, m->ar.maps[i].size, &m->wbufs[i]);
            if (st == DIA_OK) m->n_wbufs = i + 1;
        }
    }
    if (st == DIA_OK) {
        m->layout_hf = st_find(&m->ar, "model.encoder.embedding.weight") != NULL;
        if (!m->layout_hf && !st_find(&m->ar, "encoder.embedding.weight"))
            st = dia_fail(DIA_ERR_BAD_MODEL,
                          "%s: neither model.encoder.embedding.weight (transformers layout) nor "
                          "encoder.embedding.weight (nari layout) found",
                          path);
    }
    if (st == DIA_OK) st = load_weights(m);
    if (st == DIA_OK && opts && opts->encoder_host) st = cold_weights_to_host(m);
    if (st != DIA_OK) {
        dia_model_free(m);
        return st;
    }
    dia_log(DIA_LOG_INFO, "loaded %s (%s layout, %s weights, backend %s)", path, m->layout_hf ? "transformers" : "nari",
            dia_dtype_name(m->wdtype), m->be->ops->name);
    *out = m;
    return DIA_OK;
}

DIA_API void dia_model_free(dia_model *m) {
    if (!m) return;
    if (m->be) {
        for (int i = 0; i < m->n_wbufs; i++) m->be->ops->buffer_free(m->be, m->wbufs[i]);
        for (int i = 0; i < m->n_owned; i++) dia_tensor_free(m->be, &m->owned[i]);
        dia_backend_free(m->be);
    }
    free(m->wbufs);
    free(m->owned);
    st_close(&m->ar);
    free(m);
}

DIA_API dia_status dia_model_info(const dia_model *m, const char *key, int64_t *value) {
    if (!m || !key || !value) return dia_fail(DIA_ERR_INVALID_ARG, "dia_model_info: NULL argument");
    const dia_config *c = &m->cfg;
    struct {
        const char *k;
        int64_t v;
    } tab[] = {
        {"text_length", c->text_length}, {"max_frames", c->max_frames},     {"channels", c->channels},
        {"vocab", c->dec_vocab},         {"encoder_width", c->enc_width},   {"decoder_width", c->dec_width},
        {"encoder_layers", c->enc_layers}, {"decoder_layers", c->dec_layers}, {"eos", c->eos},
        {"pad", c->pad},                 {"bos", c->bos},                   {"max_delay", c->max_delay},
        {"kv_heads", c->dec_kv_heads},   {"head_dim", c->dec_head_dim},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(key, tab[i].k)) {
            *value = tab[i].v;
            return DIA_OK;
        }
    if (!strcmp(key, "graphs")) { /* decode steps replayed as device graphs (CUDA graphs) */
        *value = m->be->ops->graph_run && m->be->ops->graphs_enabled ? m->be->ops->graphs_enabled(m->be) : 0;
        return DIA_OK;
    }
    int ch;
    char tail;
    if (sscanf(key, "delay.%d%c", &ch, &tail) == 1 && ch >= 0 && ch < c->channels) {
        *value = c->delay[ch];
        return DIA_OK;
    }
    return dia_fail(DIA_ERR_INVALID_ARG, "dia_model_info: unknown key \"%s\"", key);
}
