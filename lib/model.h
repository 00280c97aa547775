/* model.h - internal definitions of the Dia model, its states and the KV cache. */
#ifndef DIA_MODEL_H
#define DIA_MODEL_H

#include "backend.h"
#include "dia.h"
#include "safetensors.h"

#define DIA_MAX_CHANNELS 16
#define DIA_MAX_LAYERS 64

typedef struct dia_config {
    /* encoder */
    int enc_vocab, enc_width, enc_inter, enc_layers, enc_heads, enc_kv_heads, enc_head_dim, text_length;
    float enc_eps, enc_theta;
    /* decoder */
    int dec_vocab, channels, dec_width, dec_inter, dec_layers, dec_heads, dec_kv_heads, dec_head_dim;
    int cross_heads, cross_kv_heads, cross_head_dim, max_frames;
    float dec_eps, dec_theta;
    int bos, eos, pad;
    int delay[DIA_MAX_CHANNELS];
    int max_delay;
} dia_config;

/* Parse config.json in the transformers schema or the nari-labs schema (both seen for
 * Dia-1.6B-0626). DIA_ERR_BAD_MODEL naming the field on error. */
dia_status dia_config_parse(const char *json, const char *what, dia_config *cfg);

/* A weight: a tensor view plus its layout (1 = nn.Linear [out, in]; 0 = DenseGeneral [in, out]). */
typedef struct dia_weight {
    dia_tensor t;
    int trans;
} dia_weight;

typedef struct enc_layer {
    dia_tensor pre_sa_norm, post_sa_norm;
    dia_weight wq, wk, wv, wo, gate_up, down;
} enc_layer;

typedef struct dec_layer {
    dia_tensor pre_sa_norm, pre_ca_norm, pre_mlp_norm;
    dia_weight wq, wk, wv, wo;         /* self-attention */
    dia_weight cq, ck, cv, co;         /* cross-attention */
    dia_weight gate_up, down;
} dec_layer;

struct dia_model {
    dia_config cfg;
    dia_backend *be;
    st_archive ar;
    dia_buffer **wbufs; /* one wrapped buffer per mapped file */
    int n_wbufs;
    dia_tensor *owned;  /* weights uploaded by weight_upload (backends that copy) */
    int n_owned, cap_owned;
    dia_dtype want_dtype; /* weight dtype asked of weight_upload */
    int layout_hf;      /* 1: transformers layout, 0: nari layout */
    dia_dtype wdtype;   /* storage dtype of the big weights */
    dia_tensor enc_embed;
    enc_layer enc[DIA_MAX_LAYERS];
    dia_tensor enc_norm;
    dia_tensor dec_embed[DIA_MAX_CHANNELS];
    dec_layer dec[DIA_MAX_LAYERS];
    dia_tensor dec_norm;
    dia_weight logits;
};

/* Record a backend tensor the model owns (freed by dia_model_free); on failure t is freed. */
dia_status model_own(dia_model *m, dia_tensor *t);

struct dia_options {
    char backend[16];
    int threads;
    char dtype[8];
    int device;
    int encoder_host; /* "encoder_memory" = "host": once-per-text weights in host memory */
};

struct dia_encoder_state {
    dia_model *model;
    int batch;
    int max_len;       /* max_b L_b */
    int *lengths;      /* [B] */
    dia_tensor enc_out;   /* f32 [2B, max_len, enc_width] (rows padded with zeros) */
    dia_tensor cross_len; /* i32 [2B]: key length per row */
    dia_tensor *cross_k;  /* per decoder layer: f32 [2B, cross_kv_heads, max_len, cross_head_dim] */
    dia_tensor *cross_v;
};

struct dia_kvcache {
    dia_model *model;
    int batch, rows, capacity;
    int *lengths;        /* [rows] on the host */
    dia_tensor *k, *v;   /* per decoder layer: f32 [rows, kv_heads, capacity, head_dim] */
};

struct dia_decoder_state {
    dia_model *model;
    const dia_encoder_state *enc;
    dia_kvcache *cache;
    int rows, scratch_T; /* scratch buffers are sized for scratch_T positions */
    uint64_t graph_key;  /* key of the recorded single-position step (0: none); new per scratch */
    /* scratch, sized [rows * scratch_T, ...] */
    dia_tensor x, xn, q, k, v, att, h, mlp, logits, codes;
    dia_tensor inputs;                /* i32: tok | pos | start | kvlen | force, uploaded at once per forward */
    dia_tensor tok, pos, start, kvlen, force; /* views of inputs */
    int fed;                 /* tok holds the tokens the last launched step's sampler fed forward */
    dia_async *pending[2];   /* launched steps' codes on their way to the host (dia_decoder_step_launch) */
    float *last_logits; /* host [rows, C, V] of the last position */
};

/* The dtype of attention caches for this model (f32 unless the backend stores them narrower). */
static inline dia_dtype dia_model_cache_dtype(const dia_model *m) {
    return m->be->ops->cache_dtype ? m->be->ops->cache_dtype(m->be, m->want_dtype) : DIA_F32;
}

/* Internal (benchmarks): a model with random weights from a config.json text, in memory. */
dia_status dia_model_new_random(const char *config_json, const dia_options *opts, uint64_t seed, dia_dtype wdtype,
                                dia_model **out);

/* Internal: make sure the decoder scratch holds T positions. */
dia_status dia_decoder_reserve(dia_decoder_state *st, int T);
/* Internal (generation): one step whose frame is sampled on the device (backend `sample` slot);
 * codes: host int32 [B, C]. The logits stay on the device (dia_decoder_logits is not updated). */
dia_status dia_decoder_step_sample(dia_decoder_state *st, const int32_t *tokens, const dia_sample_args *args,
                                   int32_t *codes);
/* Internal (pipelined generation; backends with `sample` and the asynchronous downloads, see
 * dia_decoder_can_launch): dia_decoder_step_sample split so that the host need not wait for a
 * step's codes before it launches the next. dia_decoder_step_launch enqueues one step and returns:
 * tokens host int32 [B, C], or NULL for the tokens the previously launched step fed forward; its
 * sampler feeds the next step's tokens, force int32 [B, C] (>= 0: that value, -1: the sampled
 * code). Its codes arrive in area `slot` (0 or 1; a slot holds one launched step):
 * dia_decoder_step_collect waits for them. dia_decoder_step_unlaunch takes back the last launched
 * step's cache position (its codes are then never collected; the next launch overwrites it). */
int dia_decoder_can_launch(const dia_decoder_state *st);
dia_status dia_decoder_step_launch(dia_decoder_state *st, const int32_t *tokens, const int32_t *force,
                                   const dia_sample_args *args, int slot);
dia_status dia_decoder_step_collect(dia_decoder_state *st, int slot, int32_t *codes);
void dia_decoder_step_unlaunch(dia_decoder_state *st);

#endif
