/* dac.c - the DAC codec forward passes over the backend vtable: codes -> audio (RVQ lookup +
 * decoder) and audio -> codes (encoder + residual vector quantisation), both in chunks with enough
 * context that a chunk equals the whole-sequence result, so memory stays bounded. */
#include <stdlib.h>
#include <string.h>

#include "dac.h"
#include "log.h"

#define TRY(call)                               \
    do {                                        \
        if ((st = (call)) != DIA_OK) goto fail; \
    } while (0)

/* The codec's three activation buffers (dac_work, dac.h): at least `cap` floats each, grown on
 * demand. Device backends keep them for the next call (allocating device memory is slow; freed by
 * dia_dac_free); on the CPU work_done frees them after each segment, as before. */
static dia_status work_get(dia_dac *d, int64_t cap, dac_work **out) {
    dac_work *w = &d->work;
    *out = w;
    if (w->cap >= cap) return DIA_OK;
    dac_work_release(d);
    for (int i = 0; i < 3; i++) {
        dia_status st = dia_tensor_alloc(d->be, DIA_F32, 1, &cap, &w->buf[i]); /* [cap] */
        if (st != DIA_OK) {
            dac_work_release(d);
            return st;
        }
    }
    w->cap = cap;
    return DIA_OK;
}

void dac_work_release(dia_dac *d) {
    for (int i = 0; i < 3; i++) dia_tensor_free(d->be, &d->work.buf[i]);
    d->work.cap = 0;
}

/* After a segment: keep the buffers on device backends (weight_upload marks them), free them on
 * the CPU. Returns st. */
static dia_status work_done(dia_dac *d, dia_status st) {
    if (!d->be->ops->weight_upload) dac_work_release(d);
    return st;
}

/* View [C, T] of work buffer i. */
static dia_tensor wv(const dac_work *w, int i, int64_t C, int64_t T) {
    const int64_t ne[2] = {C, T};
    return dia_tensor_view(&w->buf[i], 0, 2, ne);
}

static dia_status conv(dia_backend *be, const dac_conv *c, dia_tensor *y, const dia_tensor *x) {
    return be->ops->conv1d(be, y, x, &c->w, &c->b, c->stride, c->dilation, c->pad);
}

/* x[C, T] (in buffer xi) += conv2(snake2(conv1(snake1(x)))), using the two other buffers. */
static dia_status resunit(dia_backend *be, const dac_resunit *ru, dac_work *w, int xi, int64_t C, int64_t T) {
    const int a = (xi + 1) % 3, b = (xi + 2) % 3;
    dia_tensor x = wv(w, xi, C, T), ta = wv(w, a, C, T), tb = wv(w, b, C, T);
    dia_status st;
    if ((st = be->ops->copy(be, ta.buf, ta.offset, x.buf, x.offset, dia_tensor_nbytes(&x))) != DIA_OK) return st;
    if ((st = be->ops->snake(be, &ta, &ru->snake1)) != DIA_OK) return st;
    if ((st = conv(be, &ru->conv1, &tb, &ta)) != DIA_OK) return st;
    if ((st = be->ops->snake(be, &tb, &ru->snake2)) != DIA_OK) return st;
    if ((st = conv(be, &ru->conv2, &ta, &tb)) != DIA_OK) return st;
    return be->ops->add(be, &x, &ta);
}

/* ---------------------------------------------------------------------------------------------
 * decoder
 * ------------------------------------------------------------------------------------------- */

/* Largest [C, T] activation of decoding n frames. */
static int64_t dec_peak(const dia_dac *d, int64_t n) {
    const dac_config *c = &d->cfg;
    int64_t peak = (int64_t)c->latent * n, T = n;
    if ((int64_t)c->codebook_dim * n > peak) peak = (int64_t)c->codebook_dim * n;
    if ((int64_t)c->dec_dim * n > peak) peak = (int64_t)c->dec_dim * n;
    for (int i = 0; i < c->n_up; i++) {
        T *= d->dec[i].stride;
        if ((int64_t)d->dec[i].cout * T > peak) peak = (int64_t)d->dec[i].cout * T;
    }
    return peak;
}

/* Time-major views of work buffer i for the bf16 mode: f32 [T, C], and bf16 [T, C] (an f32 buffer
 * of cap elements holds 2 cap bf16). */
static dia_tensor wt32(const dac_work *w, int i, int64_t T, int64_t C) { return wv(w, i, T, C); }
static dia_tensor wt16(const dac_work *w, int i, int64_t T, int64_t C) {
    dia_tensor t = wv(w, i, T, C);
    t.dtype = DIA_BF16;
    return t;
}

/* One conv_bf16: out = b + conv(x); y (f32, accumulate: +=) and/or ys = bf16(snake(y, alpha_out)). */
static dia_status conv16(dia_backend *be, const dac_conv *c, int transposed, const dia_tensor *x, dia_tensor *y,
                         int accumulate, dia_tensor *ys, const dia_tensor *alpha_out) {
    const dia_conv_args a = {.y = y, .ys = ys, .x = x, .w = &c->wt, .b = &c->b, .alpha_out = alpha_out,
                             .transposed = transposed, .stride = c->stride, .dilation = c->dilation, .pad = c->pad,
                             .accumulate = accumulate};
    return be->ops->conv_bf16(be, &a);
}

/* The decoder after the quantizer in bf16 mode: z f32 [latent, n] (or [n, latent] with
 * z_time_major) in buffer 0 -> audio f32 [n hop] into out. Activations are time-major [T, C] from
 * here on. Buffer 0 then holds the f32 residual stream x; buffers 1 and 2 alternate as the bf16
 * operands, each conv writing the next one's (its output through the Snake that follows), so a
 * residual unit is two kernels: ts = snake2(conv1(xs)); x += conv2(ts) and xs = (next Snake)(x). */
static dia_status decode_blocks_bf16(dia_dac *d, dac_work *w, int64_t n, int z_time_major, float *out) {
    dia_backend *be = d->be;
    const dac_config *c = &d->cfg;
    dia_status st;
    int in = 1; /* the bf16 buffer holding the current operand */
    {
        /* z to bf16 [n, latent]: transposed from [latent, n], or (already [n, latent]) converted as
         * one row [1, n latent] -> [n latent, 1] */
        dia_tensor z = wv(w, 0, c->latent, n), zs = wt16(w, in, n, c->latent);
        if (z_time_major) z = wv(w, 0, 1, n * c->latent), zs = wt16(w, in, n * c->latent, 1);
        if ((st = be->ops->snake_bf16(be, &zs, &z, NULL)) != DIA_OK) return st;
        zs = wt16(w, in, n, c->latent);
        dia_tensor ys = wt16(w, 3 - in, n, c->dec_dim); /* [n, dec_dim] */
        const dia_tensor *next = c->n_up > 0 ? &d->dec[0].snake : &d->dec_snake;
        if ((st = conv16(be, &d->dec_conv1, 0, &zs, NULL, 0, &ys, next)) != DIA_OK) return st;
        in = 3 - in;
    }
    int64_t C = c->dec_dim, T = n;
    for (int i = 0; i < c->n_up; i++) {
        const dac_block *blk = &d->dec[i];
        const int64_t Tn = T * blk->stride;
        dia_tensor xs = wt16(w, in, T, C), x = wt32(w, 0, Tn, blk->cout), nx = wt16(w, 3 - in, Tn, blk->cout);
        if ((st = conv16(be, &blk->conv, 1, &xs, &x, 0, &nx, &blk->ru[0].snake1)) != DIA_OK) return st;
        in = 3 - in;
        C = blk->cout;
        T = Tn;
        for (int r = 0; r < DAC_RES_UNITS; r++) {
            const dac_resunit *ru = &blk->ru[r];
            const dia_tensor *next = r + 1 < DAC_RES_UNITS ? &blk->ru[r + 1].snake1
                                     : i + 1 < c->n_up     ? &d->dec[i + 1].snake
                                                           : &d->dec_snake;
            dia_tensor cur = wt16(w, in, T, C), ts = wt16(w, 3 - in, T, C); /* [T, C] */
            if ((st = conv16(be, &ru->conv1, 0, &cur, NULL, 0, &ts, &ru->snake2)) != DIA_OK) return st;
            if ((st = conv16(be, &ru->conv2, 0, &ts, &x, 1, &cur, next)) != DIA_OK) return st;
        }
    }
    dia_tensor xs = wt16(w, in, T, C), y = wt32(w, 0, T, 1); /* [n hop, C] -> [n hop, 1] */
    if ((st = conv16(be, &d->dec_conv2, 0, &xs, &y, 0, NULL, NULL)) != DIA_OK) return st;
    if ((st = be->ops->tanh_(be, &y)) != DIA_OK) return st;
    return dia_tensor_download(be, &y, out, (size_t)T * sizeof(float));
}

/* decode_segment in bf16 mode with code tables: z[n, latent] = sum_q code_tab[q][codes[:, q]] as
 * one embedding sum (the codes are already [frames, Q], the embed op's token layout). */
static dia_status decode_segment_tables(dia_dac *d, const int32_t *codes, int a, int b, float *out) {
    dia_backend *be = d->be;
    const int64_t n = b - a, Q = d->cfg.codebooks;
    dac_work *w = NULL;
    dia_status st = work_get(d, dec_peak(d, n), &w);
    if (st != DIA_OK) return work_done(d, st);
    dia_tensor ids = wv(w, 2, n, Q); /* i32 [n, Q] in buffer 2 (free until conv1 writes it) */
    ids.dtype = DIA_I32;
    if ((st = dia_tensor_upload(be, &ids, codes + (int64_t)a * Q, (size_t)(n * Q) * sizeof(int32_t))) != DIA_OK)
        return work_done(d, st);
    dia_tensor z = wv(w, 0, n, d->cfg.latent); /* [n, latent] */
    if ((st = be->ops->embed(be, &z, d->code_tab, (int)Q, &ids)) != DIA_OK) return work_done(d, st);
    return work_done(d, decode_blocks_bf16(d, w, n, 1, out));
}

/* Decode frames [a, b) of codes int32 [frames, Q] as one segment into out f32 [(b - a) * hop]. */
static dia_status decode_segment(dia_dac *d, const int32_t *codes, int a, int b, float *out) {
    dia_backend *be = d->be;
    const dac_config *c = &d->cfg;
    const int64_t n = b - a, Q = c->codebooks;
    dia_status st = DIA_OK;
    dac_work *w = NULL;
    dia_tensor tok = {0};
    /* (the embed op takes up to 65535 rows; longer single segments take the per-codebook path) */
    if (d->have_code_tab && n <= 65535) return decode_segment_tables(d, codes, a, b, out);
    int32_t *host = malloc((size_t)(Q * n) * sizeof(int32_t)); /* [Q, n] codes, codebook-major */
    if (!host) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t q = 0; q < Q; q++)
        for (int64_t t = 0; t < n; t++) host[q * n + t] = codes[(a + t) * Q + q];
    const int64_t tne[2] = {Q, n};
    TRY(work_get(d, dec_peak(d, n), &w));
    TRY(dia_tensor_alloc(be, DIA_I32, 2, tne, &tok)); /* i32 [Q, n] */
    TRY(dia_tensor_upload(be, &tok, host, (size_t)(Q * n) * sizeof(int32_t)));
    /* z[latent, n] (buffer 0) = sum_q out_proj_q(codebook_q[codes_q]) */
    for (int64_t q = 0; q < Q; q++) {
        const int64_t one = n;
        dia_tensor tq = dia_tensor_view(&tok, q * n, 1, &one); /* i32 [n] */
        dia_tensor e = wv(w, 1, c->codebook_dim, n);          /* [codebook_dim, n] */
        TRY(be->ops->codebook_lookup(be, &e, &d->q[q].codebook, &tq));
        dia_tensor z = wv(w, q == 0 ? 0 : 2, c->latent, n); /* [latent, n] */
        TRY(conv(be, &d->q[q].out_proj, &z, &e));
        if (q > 0) {
            dia_tensor acc = wv(w, 0, c->latent, n);
            TRY(be->ops->add(be, &acc, &z));
        }
    }
    if (d->bf16) {
        st = decode_blocks_bf16(d, w, n, 0, out);
        goto fail;
    }
    /* conv1: [latent, n] -> [dec_dim, n] (buffer 1) */
    {
        dia_tensor z = wv(w, 0, c->latent, n), y = wv(w, 1, c->dec_dim, n);
        TRY(conv(be, &d->dec_conv1, &y, &z));
    }
    int cur = 1;
    int64_t C = c->dec_dim, T = n;
    for (int i = 0; i < c->n_up; i++) {
        const dac_block *blk = &d->dec[i];
        dia_tensor x = wv(w, cur, C, T); /* [cin, T] */
        const int nx = (cur + 1) % 3;
        dia_tensor y = wv(w, nx, blk->cout, T * blk->stride); /* [cout, T s] */
        TRY(be->ops->snake(be, &x, &blk->snake));
        TRY(be->ops->conv_transpose1d(be, &y, &x, &blk->conv.w, &blk->conv.b, blk->conv.stride, blk->conv.pad));
        cur = nx;
        C = blk->cout;
        T *= blk->stride;
        for (int r = 0; r < DAC_RES_UNITS; r++) TRY(resunit(be, &blk->ru[r], w, cur, C, T));
    }
    {
        dia_tensor x = wv(w, cur, C, T);           /* [C, n hop] */
        dia_tensor y = wv(w, (cur + 1) % 3, 1, T); /* [1, n hop] */
        TRY(be->ops->snake(be, &x, &d->dec_snake));
        TRY(conv(be, &d->dec_conv2, &y, &x));
        TRY(be->ops->tanh_(be, &y));
        TRY(dia_tensor_download(be, &y, out, (size_t)T * sizeof(float)));
    }
fail:
    dia_tensor_free(be, &tok);
    free(host);
    return work_done(d, st);
}

int dac_context_frames(const dia_dac *d) { return d ? d->dec_context : 0; }

dia_status dac_decode_range(dia_dac *d, const int32_t *codes, int frames, int first, int count, float *out) {
    if (!d || !codes || !out || frames < 1 || first < 0 || count < 1 || first > frames - count)
        return dia_fail(DIA_ERR_INVALID_ARG, "dac_decode_range: bad arguments (frames %d, first %d, count %d)", frames,
                        first, count);
    const int Q = d->cfg.codebooks;
    const int a = first - d->dec_context > 0 ? first - d->dec_context : 0;
    const int b = first + count + d->dec_context < frames ? first + count + d->dec_context : frames;
    for (int64_t i = (int64_t)a * Q; i < (int64_t)b * Q; i++)
        if (codes[i] < 0 || codes[i] >= d->cfg.codebook_size)
            return dia_fail(DIA_ERR_BAD_AUDIO, "DAC code %d at frame %lld, codebook %lld is outside [0, %d)", codes[i],
                            (long long)(i / Q), (long long)(i % Q), d->cfg.codebook_size);
    const int64_t hop = d->cfg.hop;
    float *seg = out; /* [(b - a) hop] */
    if (a != first || b != first + count) {
        seg = malloc((size_t)((b - a) * hop) * sizeof(float));
        if (!seg) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory for %d decoded frames", b - a);
    }
    dia_status st = decode_segment(d, codes, a, b, seg);
    if (seg != out) {
        if (st == DIA_OK) memcpy(out, seg + (first - a) * hop, (size_t)(count * hop) * sizeof(float));
        free(seg);
    }
    return st;
}

DIA_API dia_status dia_dac_decode_range(dia_dac *d, const int32_t *codes, int frames, int first, int count, float *out) {
    dia_clear_error();
    return dac_decode_range(d, codes, frames, first, count, out);
}

DIA_API dia_status dia_dac_decode(dia_dac *d, const int32_t *codes, int frames, float **audio, size_t *samples) {
    dia_clear_error();
    if (audio) *audio = NULL;
    if (samples) *samples = 0;
    if (!d || !codes || !audio || !samples || frames < 1)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_decode: NULL argument or frames %d < 1", frames);
    const int64_t Q = d->cfg.codebooks, hop = d->cfg.hop;
    for (int64_t i = 0; i < (int64_t)frames * Q; i++)
        if (codes[i] < 0 || codes[i] >= d->cfg.codebook_size)
            return dia_fail(DIA_ERR_BAD_AUDIO, "DAC code %d at frame %lld, codebook %lld is outside [0, %d)", codes[i],
                            (long long)(i / Q), (long long)(i % Q), d->cfg.codebook_size);
    float *pcm = malloc((size_t)(frames * hop) * sizeof(float)); /* [frames hop] */
    if (!pcm) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory for %d frames of audio", frames);
    const int chunk = d->chunk_frames > 0 ? d->chunk_frames : frames;
    for (int f = 0; f < frames; f += chunk) {
        const int cnt = frames - f < chunk ? frames - f : chunk;
        dia_status st = dac_decode_range(d, codes, frames, f, cnt, pcm + (int64_t)f * hop);
        if (st != DIA_OK) {
            free(pcm);
            return st;
        }
    }
    *audio = pcm;
    *samples = (size_t)(frames * hop);
    return DIA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * encoder
 * ------------------------------------------------------------------------------------------- */

/* Largest [C, T] activation of encoding n frames. */
static int64_t enc_peak(const dia_dac *d, int64_t n) {
    const dac_config *c = &d->cfg;
    int64_t T = n * c->hop, peak = T;
    for (int i = 0; i < c->n_down; i++) {
        if ((int64_t)d->enc[i].cin * T > peak) peak = (int64_t)d->enc[i].cin * T;
        T /= d->enc[i].stride;
        if ((int64_t)d->enc[i].cout * T > peak) peak = (int64_t)d->enc[i].cout * T;
    }
    if ((int64_t)c->latent * n > peak) peak = (int64_t)c->latent * n;
    return peak;
}

/* Encode audio frames [a, b) (samples [a hop, b hop) of `audio`) as one segment: latent f32
 * [latent, b - a] into out. */
static dia_status encode_segment(dia_dac *d, const float *audio, int a, int b, float *out) {
    dia_backend *be = d->be;
    const dac_config *c = &d->cfg;
    const int64_t n = b - a;
    dia_status st = DIA_OK;
    dac_work *w = NULL;
    TRY(work_get(d, enc_peak(d, n), &w));
    int64_t C = 1, T = n * c->hop;
    {
        dia_tensor x = wv(w, 0, 1, T); /* [1, n hop] */
        TRY(dia_tensor_upload(be, &x, audio + (int64_t)a * c->hop, (size_t)T * sizeof(float)));
        dia_tensor y = wv(w, 1, c->enc_dim, T); /* [enc_dim, n hop] */
        TRY(conv(be, &d->enc_conv1, &y, &x));
        C = c->enc_dim;
    }
    int cur = 1;
    for (int i = 0; i < c->n_down; i++) {
        const dac_block *blk = &d->enc[i];
        for (int r = 0; r < DAC_RES_UNITS; r++) TRY(resunit(be, &blk->ru[r], w, cur, C, T));
        dia_tensor x = wv(w, cur, C, T); /* [cin, T] */
        TRY(be->ops->snake(be, &x, &blk->snake));
        const int nx = (cur + 1) % 3;
        dia_tensor y = wv(w, nx, blk->cout, T / blk->stride); /* [cout, T / s] */
        TRY(conv(be, &blk->conv, &y, &x));
        cur = nx;
        C = blk->cout;
        T /= blk->stride;
    }
    {
        dia_tensor x = wv(w, cur, C, T); /* [C, n] */
        TRY(be->ops->snake(be, &x, &d->enc_snake));
        dia_tensor y = wv(w, (cur + 1) % 3, c->latent, n); /* [latent, n] */
        TRY(conv(be, &d->enc_conv2, &y, &x));
        TRY(dia_tensor_download(be, &y, out, (size_t)(c->latent * n) * sizeof(float)));
    }
fail:
    return work_done(d, st);
}

dia_status dac_encode_latent_range(dia_dac *d, const float *audio, int frames, int first, int count, float *out) {
    if (!d || !audio || !out || frames < 1 || first < 0 || count < 1 || first > frames - count)
        return dia_fail(DIA_ERR_INVALID_ARG, "dac_encode_latent_range: bad arguments (frames %d, first %d, count %d)",
                        frames, first, count);
    const int a = first - d->enc_context > 0 ? first - d->enc_context : 0;
    const int b = first + count + d->enc_context < frames ? first + count + d->enc_context : frames;
    const int64_t L = d->cfg.latent, n = b - a;
    float *seg = malloc((size_t)(L * n) * sizeof(float)); /* [latent, b - a] */
    if (!seg) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory for %d encoded frames", b - a);
    dia_status st = encode_segment(d, audio, a, b, seg);
    if (st == DIA_OK)
        for (int64_t l = 0; l < L; l++)
            memcpy(out + l * count, seg + l * n + (first - a), (size_t)count * sizeof(float));
    free(seg);
    return st;
}

dia_status dac_quantize(dia_dac *d, const float *latent, int frames, int32_t *codes) {
    if (!d || !latent || !codes || frames < 1) return dia_fail(DIA_ERR_INVALID_ARG, "dac_quantize: bad arguments");
    dia_backend *be = d->be;
    const dac_config *c = &d->cfg;
    const int64_t n = frames, Q = c->codebooks;
    dia_status st = DIA_OK;
    dia_tensor res = {0}, ze = {0}, zq = {0}, idx = {0};
    int32_t *host = malloc((size_t)(Q * n) * sizeof(int32_t)); /* [Q, n] */
    if (!host) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    const int64_t rne[2] = {c->latent, n}, ene[2] = {c->codebook_dim, n}, ine[2] = {Q, n};
    TRY(dia_tensor_alloc(be, DIA_F32, 2, rne, &res)); /* residual [latent, n] */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, rne, &zq));  /* -out_proj(codebook[idx]) [latent, n] */
    TRY(dia_tensor_alloc(be, DIA_F32, 2, ene, &ze));  /* [codebook_dim, n] */
    TRY(dia_tensor_alloc(be, DIA_I32, 2, ine, &idx)); /* i32 [Q, n] */
    TRY(dia_tensor_upload(be, &res, latent, (size_t)(c->latent * n) * sizeof(float)));
    for (int64_t q = 0; q < Q; q++) {
        const dac_quantizer *Qz = &d->q[q];
        dia_tensor iq = dia_tensor_view(&idx, q * n, 1, &n); /* i32 [n] */
        TRY(conv(be, &Qz->in_proj, &ze, &res));
        TRY(be->ops->codebook_nearest(be, &iq, &ze, &Qz->codebook));
        TRY(be->ops->codebook_lookup(be, &ze, &Qz->codebook, &iq)); /* raw (un-normalised) code vectors */
        TRY(conv(be, &Qz->out_proj_neg, &zq, &ze));
        TRY(be->ops->add(be, &res, &zq)); /* residual -= out_proj(code) */
    }
    TRY(dia_tensor_download(be, &idx, host, (size_t)(Q * n) * sizeof(int32_t)));
    for (int64_t t = 0; t < n; t++)
        for (int64_t q = 0; q < Q; q++) codes[t * Q + q] = host[q * n + t];
fail:
    dia_tensor_free(be, &res);
    dia_tensor_free(be, &zq);
    dia_tensor_free(be, &ze);
    dia_tensor_free(be, &idx);
    free(host);
    return st;
}

DIA_API dia_status dia_dac_encode(dia_dac *d, const float *audio, size_t samples, int32_t **codes, int *frames) {
    dia_clear_error();
    if (codes) *codes = NULL;
    if (frames) *frames = 0;
    if (!d || !audio || !codes || !frames || samples == 0)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_encode: NULL argument or no samples");
    const int64_t hop = d->cfg.hop, Q = d->cfg.codebooks, L = d->cfg.latent;
    const int64_t n = ((int64_t)samples + hop - 1) / hop;
    if (n > (1 << 24)) return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_encode: %zu samples is too long", samples);
    for (size_t i = 0; i < samples; i++)
        if (!(audio[i] == audio[i]) || audio[i] > 1e30f || audio[i] < -1e30f)
            return dia_fail(DIA_ERR_BAD_AUDIO, "dia_dac_encode: sample %zu is not a finite number", i);
    dia_status st = DIA_OK;
    float *padded = NULL, *latent = NULL;
    int32_t *out = NULL;
    const float *x = audio;
    if ((size_t)(n * hop) != samples) { /* right-pad with zeros to whole frames */
        padded = calloc((size_t)(n * hop), sizeof(float)); /* [n hop] */
        if (!padded) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(padded, audio, samples * sizeof(float));
        x = padded;
    }
    latent = malloc((size_t)(L * n) * sizeof(float)); /* [latent, n] */
    out = malloc((size_t)(Q * n) * sizeof(int32_t));  /* [n, Q] */
    if (!latent || !out) {
        st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    const int chunk = d->chunk_frames > 0 ? d->chunk_frames : (int)n;
    float *part = NULL; /* [latent, chunk] */
    for (int64_t f = 0; f < n; f += chunk) {
        const int cnt = (int)(n - f < chunk ? n - f : chunk);
        if (cnt == n) {
            TRY(dac_encode_latent_range(d, x, (int)n, 0, (int)n, latent));
            break;
        }
        if (!part && !(part = malloc((size_t)(L * chunk) * sizeof(float)))) {
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            goto fail;
        }
        st = dac_encode_latent_range(d, x, (int)n, (int)f, cnt, part);
        if (st != DIA_OK) {
            free(part);
            goto fail;
        }
        for (int64_t l = 0; l < L; l++) memcpy(latent + l * n + f, part + l * cnt, (size_t)cnt * sizeof(float));
    }
    free(part);
    TRY(dac_quantize(d, latent, (int)n, out));
    *codes = out;
    *frames = (int)n;
    out = NULL;
fail:
    free(out);
    free(latent);
    free(padded);
    return st;
}
