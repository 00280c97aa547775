/* dac_load.c - dia_dac_load / dia_dac_free / dia_dac_info: the DAC config.json and its
 * model.safetensors in the transformers (descript/dac_44khz) naming or the original descript
 * naming (encoder.block.N.block.M..., decoder.model.N...), strictly checked. Plain
 * weights are used in place from the mapping; weight-norm pairs (weight_g/weight_v or
 * parametrizations.weight.original0/1) are folded at load into owned f32 buffers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dac.h"
#include "half.h"
#include "log.h"
#include "model.h"

/* ---------------------------------------------------------------------------------------------
 * config.json
 * ------------------------------------------------------------------------------------------- */

static dia_status cfg_int(const cJSON *root, const char *what, const char *key, int lo, int hi, int dflt, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v && dflt >= 0) {
        *out = dflt;
        return DIA_OK;
    }
    if (!dia_json_whole(v, lo, hi))
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: %s is missing or not an integer in [%d, %d]", what, key, lo, hi);
    *out = (int)v->valuedouble;
    return DIA_OK;
}

static dia_status cfg_ratios(const cJSON *root, const char *what, const char *key, int *n, int *r) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    const int len = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (len < 1 || len > DAC_MAX_BLOCKS)
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: %s must be an array of 1 to %d integers", what, key, DAC_MAX_BLOCKS);
    for (int i = 0; i < len; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!dia_json_whole(v, 1, 64))
            return dia_fail(DIA_ERR_BAD_MODEL, "%s: %s[%d] is not an integer in [1, 64]", what, key, i);
        r[i] = (int)v->valuedouble;
    }
    *n = len;
    return DIA_OK;
}

dia_status dac_config_parse(const char *json, const char *what, dac_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: malformed JSON", what);
    }
    dia_status st;
    const int BIG = 1 << 16;
#define INT(key, lo, hi, dflt, dst) \
    if ((st = cfg_int(root, what, key, lo, hi, dflt, dst)) != DIA_OK) goto done
    INT("encoder_hidden_size", 1, BIG, -1, &c->enc_dim);
    INT("hidden_size", 1, BIG, -1, &c->latent);
    INT("decoder_hidden_size", 1, BIG, -1, &c->dec_dim);
    INT("n_codebooks", 1, DAC_MAX_CODEBOOKS, -1, &c->codebooks);
    INT("codebook_size", 1, 1 << 20, -1, &c->codebook_size);
    INT("codebook_dim", 1, 4096, -1, &c->codebook_dim);
    INT("sampling_rate", 1, 1 << 20, 44100, &c->sample_rate);
#undef INT
    if ((st = cfg_ratios(root, what, "downsampling_ratios", &c->n_down, c->down)) != DIA_OK) goto done;
    if ((st = cfg_ratios(root, what, "upsampling_ratios", &c->n_up, c->up)) != DIA_OK) goto done;
    int64_t pd = 1, pu = 1; /* (8 ratios of 64 overflow an int) */
    for (int i = 0; i < c->n_down; i++) pd *= c->down[i];
    for (int i = 0; i < c->n_up; i++) pu *= c->up[i];
    if (pd > (1 << 20) || pu > (1 << 20)) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: the product of downsampling_ratios (%lld) or of upsampling_ratios (%lld) "
                      "exceeds 2^20", what, (long long)pd, (long long)pu);
        goto done;
    }
    if ((st = cfg_int(root, what, "hop_length", 1, 1 << 20, (int)pd, &c->hop)) != DIA_OK) goto done;
    if (pd != c->hop || pu != c->hop) {
        st = dia_fail(DIA_ERR_BAD_MODEL,
                      "%s: hop_length %d must equal the product of downsampling_ratios (%d) and of upsampling_ratios "
                      "(%d)",
                      what, c->hop, (int)pd, (int)pu);
        goto done;
    }
    for (int i = 0; i < c->n_up; i++)
        if (c->up[i] % 2) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: upsampling_ratios[%d] = %d is odd (unsupported: the decoder would not "
                          "produce hop samples per frame)", what, i, c->up[i]);
            goto done;
        }
    if ((int64_t)c->enc_dim << c->n_down > BIG || c->dec_dim % (1 << c->n_up)) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: encoder_hidden_size * 2^%d is too large or decoder_hidden_size %d is not "
                      "divisible by 2^%d", what, c->n_down, c->dec_dim, c->n_up);
        goto done;
    }
    st = DIA_OK;
done:
    cJSON_Delete(root);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * weights
 * ------------------------------------------------------------------------------------------- */

/* Element i of a mapped float tensor, as f32. */
static float st_elem(const st_tensor *t, int64_t i) {
    switch (t->dtype) {
    case DIA_F32: {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4);
        return f;
    }
    case DIA_F16:
    case DIA_BF16: {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return t->dtype == DIA_BF16 ? dia_bf16_to_f32(h) : dia_f16_to_f32(h);
    }
    default: return 0.0f;
    }
}

typedef struct loader {
    dia_dac *d;
    int orig; /* 1: the original descript naming (encoder.block.N.block.M..., decoder.model.N...) */
    int prep; /* 1: give the convs taken now a bf16 [K, Cout, Cin] copy (dac_conv.wt) */
    char name[320];
} loader;

/* A view of a mapped tensor with shape ne[ndim]. */
static dia_tensor view_of(const dia_dac *d, const st_tensor *t, int ndim, const int64_t *ne) {
    dia_tensor v;
    memset(&v, 0, sizeof v);
    v.buf = d->wbufs[t->file];
    v.offset = (size_t)((const char *)t->data - (const char *)d->ar.maps[t->file].base);
    v.dtype = t->dtype;
    v.ndim = ndim;
    for (int i = 0; i < ndim; i++) v.ne[i] = ne[i];
    return v;
}

/* A backend tensor of dtype dt and shape ne[ndim], owned by the codec (freed with it). */
static dia_status own_alloc(dia_dac *d, dia_dtype dt, int ndim, const int64_t *ne, dia_tensor *out) {
    if (d->n_owned == d->cap_owned) {
        int cap = d->cap_owned ? 2 * d->cap_owned : 64;
        dia_buffer **p = realloc(d->owned, (size_t)cap * sizeof *p);
        if (!p) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        d->owned = p;
        d->cap_owned = cap;
    }
    dia_status st = dia_tensor_alloc(d->be, dt, ndim, ne, out);
    if (st == DIA_OK) d->owned[d->n_owned++] = out->buf;
    return st;
}

/* A backend f32 tensor of shape ne[ndim] holding `host`, owned by the codec. */
static dia_status own_tensor(dia_dac *d, const float *host, int ndim, const int64_t *ne, dia_tensor *out) {
    dia_status st = own_alloc(d, DIA_F32, ndim, ne, out);
    return st != DIA_OK ? st : dia_tensor_upload(d->be, out, host, dia_tensor_nbytes(out));
}

/* c->wt = bf16 [K, Cout, Cin] from the f32 weight `host` of shape `shape`: [Cout, Cin, K], or
 * [Cin, Cout, K] when transposed; owned by the codec. */
static dia_status own_prepared(dia_dac *d, const float *host, const int64_t *shape, int transposed, dac_conv *c) {
    const int64_t K = shape[2], Cout = transposed ? shape[1] : shape[0], Cin = transposed ? shape[0] : shape[1];
    const int64_t ne[3] = {K, Cout, Cin};
    uint16_t *h = malloc((size_t)(K * Cout * Cin) * sizeof(uint16_t)); /* [K, Cout, Cin] */
    if (!h) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t k = 0; k < K; k++)
        for (int64_t o = 0; o < Cout; o++)
            for (int64_t i = 0; i < Cin; i++)
                h[(k * Cout + o) * Cin + i] =
                    dia_f32_to_bf16(host[(transposed ? i * Cout + o : o * Cin + i) * K + k]);
    dia_status st = own_alloc(d, DIA_BF16, 3, ne, &c->wt);
    if (st == DIA_OK) st = dia_tensor_upload(d->be, &c->wt, h, dia_tensor_nbytes(&c->wt));
    free(h);
    return st;
}

static void set_name(loader *L, const char *fmt, ...) DIA_PRINTF(2, 3);
static void set_name(loader *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->name, sizeof L->name, fmt, ap);
    va_end(ap);
}

/* Snake alpha "<prefix>.alpha" [1, C, 1], viewed as [C]. */
static dia_status take_alpha(loader *L, const char *prefix, int64_t C, dia_tensor *out) {
    set_name(L, "%s.alpha", prefix);
    const int64_t shape[3] = {1, C, 1};
    st_tensor *t;
    dia_status st = st_take(&L->d->ar, L->name, 3, shape, &t);
    if (st == DIA_OK) *out = view_of(L->d, t, 1, &C);
    return st;
}

/* W = g * V / |V| per index of dim 0 (output channel of a conv, input channel of a transposed conv),
 * the plain L2 norm over the other dims: w f32 [shape[0], per]. */
static void fold_weight_norm(const st_tensor *g, const st_tensor *v, int64_t rows, int64_t per, float *w) {
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t j = 0; j < per; j++) {
            const double x = st_elem(v, r * per + j);
            ss += x * x;
        }
        const double scale = ss > 0 ? (double)st_elem(g, r) / sqrt(ss) : 0.0;
        for (int64_t j = 0; j < per; j++) w[r * per + j] = (float)(scale * (double)st_elem(v, r * per + j));
    }
}

/* A conv "<prefix>" with weight shape `shape` [3] (conv [Cout, Cin, K], transposed [Cin, Cout, K])
 * and bias [cout], stored as plain "weight", "weight_g"/"weight_v" or
 * "parametrizations.weight.original0"/"original1". If `neg` is not NULL it also receives -W, -b
 * as a second owned conv (for subtracting the projection from a residual). */
static dia_status take_conv(loader *L, const char *prefix, const int64_t *shape, int64_t cout, int stride,
                            int dilation, int pad, int transposed, dac_conv *c, dac_conv *neg) {
    dia_dac *d = L->d;
    st_archive *ar = &d->ar;
    dia_status st;
    const int64_t rows = shape[0], per = shape[1] * shape[2], n = rows * per;
    c->stride = stride;
    c->dilation = dilation;
    c->pad = pad;
    float *host = NULL; /* f32 [n] copy of W when folded or when `neg` needs it */
    char gname[320], vname[320];
    snprintf(gname, sizeof gname, "%s.weight_g", prefix);
    snprintf(vname, sizeof vname, "%s.weight_v", prefix);
    if (!st_find(ar, gname) && !st_find(ar, vname)) {
        snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", prefix);
        snprintf(vname, sizeof vname, "%s.parametrizations.weight.original1", prefix);
    }
    set_name(L, "%s.weight", prefix);
    if (st_find(ar, L->name) || (!st_find(ar, gname) && !st_find(ar, vname))) {
        st_tensor *t;
        if (!st_find(ar, L->name))
            return dia_fail(DIA_ERR_BAD_MODEL, "missing tensor %s (nor %s.weight_g/weight_v, nor "
                            "%s.parametrizations.weight.original0/original1)", L->name, prefix, prefix);
        if ((st = st_take(ar, L->name, 3, shape, &t)) != DIA_OK) return st;
        c->w = view_of(d, t, 3, shape);
        if (neg || L->prep) {
            host = malloc((size_t)n * sizeof(float));
            if (!host) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            for (int64_t i = 0; i < n; i++) host[i] = st_elem(t, i);
        }
    } else {
        st_tensor *g, *v;
        const int64_t gshape[3] = {rows, 1, 1};
        if ((st = st_take(ar, gname, 3, gshape, &g)) != DIA_OK) return st;
        if ((st = st_take(ar, vname, 3, shape, &v)) != DIA_OK) return st;
        host = malloc((size_t)n * sizeof(float)); /* [rows, per] */
        if (!host) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory folding %s", prefix);
        fold_weight_norm(g, v, rows, per, host);
        if ((st = own_tensor(d, host, 3, shape, &c->w)) != DIA_OK) {
            free(host);
            return st;
        }
    }
    set_name(L, "%s.bias", prefix);
    st_tensor *bt;
    if ((st = st_take(ar, L->name, 1, &cout, &bt)) != DIA_OK) {
        free(host);
        return st;
    }
    c->b = view_of(d, bt, 1, &cout);
    if (L->prep && (st = own_prepared(d, host, shape, transposed, c)) != DIA_OK) {
        free(host);
        return st;
    }
    if (neg) {
        *neg = *c;
        for (int64_t i = 0; i < n; i++) host[i] = -host[i];
        float *nb = malloc((size_t)cout * sizeof(float)); /* [cout] */
        if (!nb) st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t i = 0; st == DIA_OK && i < cout; i++) nb[i] = -st_elem(bt, i);
        if (st == DIA_OK) st = own_tensor(d, host, 3, shape, &neg->w);
        if (st == DIA_OK) st = own_tensor(d, nb, 1, &cout, &neg->b);
        free(nb);
    }
    free(host);
    return st;
}

static dia_status take_conv1d(loader *L, const char *prefix, int64_t cout, int64_t cin, int64_t k, int stride,
                              int dilation, int pad, dac_conv *c) {
    const int64_t shape[3] = {cout, cin, k};
    return take_conv(L, prefix, shape, cout, stride, dilation, pad, 0, c, NULL);
}

/* A residual unit: transformers "<prefix>.snake1/conv1/snake2/conv2", original
 * "<prefix>.block.0/1/2/3". */
static dia_status take_resunit(loader *L, const char *prefix, int64_t C, int dilation, dac_resunit *ru) {
    static const char *hf[4] = {"snake1", "conv1", "snake2", "conv2"}, *orig[4] = {"block.0", "block.1", "block.2",
                                                                                  "block.3"};
    const char **sub = L->orig ? orig : hf;
    char p[256];
    dia_status st;
    snprintf(p, sizeof p, "%s.%s", prefix, sub[0]);
    if ((st = take_alpha(L, p, C, &ru->snake1)) != DIA_OK) return st;
    snprintf(p, sizeof p, "%s.%s", prefix, sub[1]);
    if ((st = take_conv1d(L, p, C, C, 7, 1, dilation, 3 * dilation, &ru->conv1)) != DIA_OK) return st;
    snprintf(p, sizeof p, "%s.%s", prefix, sub[2]);
    if ((st = take_alpha(L, p, C, &ru->snake2)) != DIA_OK) return st;
    snprintf(p, sizeof p, "%s.%s", prefix, sub[3]);
    return take_conv1d(L, p, C, C, 1, 1, 1, 0, &ru->conv2);
}

static const int k_dilations[DAC_RES_UNITS] = {1, 3, 9};

/* Is the checkpoint in the original descript naming? Its first encoder conv is "encoder.block.0". */
static int original_layout(const st_archive *ar) {
    static const char *names[] = {"encoder.block.0.weight", "encoder.block.0.weight_v",
                                  "encoder.block.0.parametrizations.weight.original1"};
    for (int i = 0; i < 3; i++)
        if (st_find(ar, names[i])) return 1;
    return 0;
}

/* Tensor name prefixes, transformers (descript/dac_44khz) naming first, original second:
 *   encoder.conv1            encoder.block.0
 *   encoder.block.i.X        encoder.block.(i+1).block.{res units 0-2, snake 3, conv 4}
 *   encoder.snake1 / conv2   encoder.block.(n+1) / encoder.block.(n+2)
 *   decoder.conv1            decoder.model.0
 *   decoder.block.i.X        decoder.model.(i+1).block.{snake 0, conv_t 1, res units 2-4}
 *   decoder.snake1 / conv2   decoder.model.(n+1) / decoder.model.(n+2)
 *   quantizer.*              the same */
#define PFX(L, buf, hf_fmt, orig_fmt, ...) \
    snprintf(buf, sizeof buf, (L)->orig ? orig_fmt : hf_fmt, __VA_ARGS__)

static dia_status load_weights(dia_dac *d) {
    loader L = {.d = d, .orig = original_layout(&d->ar)};
    const dac_config *c = &d->cfg;
    dia_status st;
    char p[256];
    /* encoder: conv1, blocks (res units, snake, strided conv), snake, conv2 */
    snprintf(p, sizeof p, "%s", L.orig ? "encoder.block.0" : "encoder.conv1");
    if ((st = take_conv1d(&L, p, c->enc_dim, 1, 7, 1, 1, 3, &d->enc_conv1)) != DIA_OK) return st;
    int64_t ch = c->enc_dim;
    for (int i = 0; i < c->n_down; i++) {
        dac_block *b = &d->enc[i];
        b->cin = (int)ch;
        b->cout = (int)(2 * ch);
        b->stride = c->down[i];
        for (int r = 0; r < DAC_RES_UNITS; r++) {
            PFX(&L, p, "encoder.block.%d.res_unit%d", "encoder.block.%d.block.%d", L.orig ? i + 1 : i, L.orig ? r : r + 1);
            if ((st = take_resunit(&L, p, ch, k_dilations[r], &b->ru[r])) != DIA_OK) return st;
        }
        PFX(&L, p, "encoder.block.%d.snake1", "encoder.block.%d.block.3", L.orig ? i + 1 : i);
        if ((st = take_alpha(&L, p, ch, &b->snake)) != DIA_OK) return st;
        PFX(&L, p, "encoder.block.%d.conv1", "encoder.block.%d.block.4", L.orig ? i + 1 : i);
        const int s = b->stride;
        if ((st = take_conv1d(&L, p, 2 * ch, ch, 2 * s, s, 1, (s + 1) / 2, &b->conv)) != DIA_OK) return st;
        ch *= 2;
    }
    if (L.orig) snprintf(p, sizeof p, "encoder.block.%d", c->n_down + 1);
    else snprintf(p, sizeof p, "encoder.snake1");
    if ((st = take_alpha(&L, p, ch, &d->enc_snake)) != DIA_OK) return st;
    if (L.orig) snprintf(p, sizeof p, "encoder.block.%d", c->n_down + 2);
    else snprintf(p, sizeof p, "encoder.conv2");
    if ((st = take_conv1d(&L, p, c->latent, ch, 3, 1, 1, 1, &d->enc_conv2)) != DIA_OK) return st;
    /* quantizer */
    for (int q = 0; q < c->codebooks; q++) {
        dac_quantizer *Q = &d->q[q];
        snprintf(p, sizeof p, "quantizer.quantizers.%d.in_proj", q);
        if ((st = take_conv1d(&L, p, c->codebook_dim, c->latent, 1, 1, 1, 0, &Q->in_proj)) != DIA_OK) return st;
        snprintf(p, sizeof p, "quantizer.quantizers.%d.out_proj", q);
        const int64_t oshape[3] = {c->latent, c->codebook_dim, 1};
        if ((st = take_conv(&L, p, oshape, c->latent, 1, 1, 0, 0, &Q->out_proj, &Q->out_proj_neg)) != DIA_OK) return st;
        set_name(&L, "quantizer.quantizers.%d.codebook.weight", q);
        const int64_t cshape[2] = {c->codebook_size, c->codebook_dim};
        st_tensor *t;
        if ((st = st_take(&d->ar, L.name, 2, cshape, &t)) != DIA_OK) return st;
        Q->codebook = view_of(d, t, 2, cshape);
    }
    /* decoder: conv1, blocks (snake, transposed conv, res units), snake, conv2 (then tanh); in
     * bf16 mode every decoder conv also gets its bf16 [K, Cout, Cin] copy */
    L.prep = d->bf16;
    snprintf(p, sizeof p, "%s", L.orig ? "decoder.model.0" : "decoder.conv1");
    if ((st = take_conv1d(&L, p, c->dec_dim, c->latent, 7, 1, 1, 3, &d->dec_conv1)) != DIA_OK) return st;
    ch = c->dec_dim;
    for (int i = 0; i < c->n_up; i++) {
        dac_block *b = &d->dec[i];
        b->cin = (int)ch;
        b->cout = (int)(ch / 2);
        b->stride = c->up[i];
        PFX(&L, p, "decoder.block.%d.snake1", "decoder.model.%d.block.0", L.orig ? i + 1 : i);
        if ((st = take_alpha(&L, p, ch, &b->snake)) != DIA_OK) return st;
        PFX(&L, p, "decoder.block.%d.conv_t1", "decoder.model.%d.block.1", L.orig ? i + 1 : i);
        const int s = b->stride;
        const int64_t tshape[3] = {ch, ch / 2, 2 * s};
        if ((st = take_conv(&L, p, tshape, ch / 2, s, 1, (s + 1) / 2, 1, &b->conv, NULL)) != DIA_OK) return st;
        for (int r = 0; r < DAC_RES_UNITS; r++) {
            PFX(&L, p, "decoder.block.%d.res_unit%d", "decoder.model.%d.block.%d", L.orig ? i + 1 : i,
                L.orig ? r + 2 : r + 1);
            if ((st = take_resunit(&L, p, ch / 2, k_dilations[r], &b->ru[r])) != DIA_OK) return st;
        }
        ch /= 2;
    }
    if (L.orig) snprintf(p, sizeof p, "decoder.model.%d", c->n_up + 1);
    else snprintf(p, sizeof p, "decoder.snake1");
    if ((st = take_alpha(&L, p, ch, &d->dec_snake)) != DIA_OK) return st;
    if (L.orig) snprintf(p, sizeof p, "decoder.model.%d", c->n_up + 2);
    else snprintf(p, sizeof p, "decoder.conv2");
    if ((st = take_conv1d(&L, p, 1, ch, 7, 1, 1, 3, &d->dec_conv2)) != DIA_OK) return st;
    return st_check_all_used(&d->ar);
}

/* bf16 mode: d->code_tab[q] f32 [codebook_size, latent] = out_proj_q(codebook_q[n]) for every
 * code n (bias included), computed with the backend's own lookup and f32 conv (the arithmetic
 * the per-frame path does) and transposed on the host; decoding then sums table rows (embed). */
static dia_status build_code_tables(dia_dac *d) {
    dia_backend *be = d->be;
    const dac_config *c = &d->cfg;
    const int64_t N = c->codebook_size, D = c->codebook_dim, L = c->latent;
    dia_status st = DIA_OK;
    dia_tensor ids = {0}, e = {0}, z = {0};
    int32_t *hid = malloc((size_t)N * sizeof(int32_t));   /* [N] */
    float *hz = malloc((size_t)(L * N) * sizeof(float));  /* [L, N] */
    float *ht = malloc((size_t)(N * L) * sizeof(float));  /* [N, L] */
    if (!hid || !hz || !ht) st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory for the DAC code tables");
    for (int64_t n = 0; st == DIA_OK && n < N; n++) hid[n] = (int32_t)n;
    const int64_t ne_e[2] = {D, N}, ne_z[2] = {L, N}, ne_t[2] = {N, L};
    if (st == DIA_OK) st = dia_tensor_alloc(be, DIA_I32, 1, &N, &ids);   /* i32 [N] every code */
    if (st == DIA_OK) st = dia_tensor_alloc(be, DIA_F32, 2, ne_e, &e);   /* [D, N] code vectors */
    if (st == DIA_OK) st = dia_tensor_alloc(be, DIA_F32, 2, ne_z, &z);   /* [L, N] projected */
    if (st == DIA_OK) st = dia_tensor_upload(be, &ids, hid, (size_t)N * sizeof(int32_t));
    for (int q = 0; st == DIA_OK && q < c->codebooks; q++) {
        const dac_conv *op = &d->q[q].out_proj;
        st = be->ops->codebook_lookup(be, &e, &d->q[q].codebook, &ids);
        if (st == DIA_OK) st = be->ops->conv1d(be, &z, &e, &op->w, &op->b, 1, 1, 0);
        if (st == DIA_OK) st = dia_tensor_download(be, &z, hz, (size_t)(L * N) * sizeof(float));
        for (int64_t l = 0; st == DIA_OK && l < L; l++)
            for (int64_t n = 0; n < N; n++) ht[n * L + l] = hz[l * N + n];
        if (st == DIA_OK) st = own_tensor(d, ht, 2, ne_t, &d->code_tab[q]);
    }
    dia_tensor_free(be, &ids);
    dia_tensor_free(be, &e);
    dia_tensor_free(be, &z);
    free(hid);
    free(hz);
    free(ht);
    if (st == DIA_OK) d->have_code_tab = 1;
    return st;
}

/* Half-width (in frames) of what one output frame depends on: every "same" conv reaches
 * dilation (K-1)/2 positions each side at its rate, a transposed conv ceil(K/s) input positions. */
static void receptive_fields(dia_dac *d) {
    const dac_config *c = &d->cfg;
    double rf = 3.0; /* decoder.conv1 at 1 position per frame */
    double rate = 1.0;
    for (int i = 0; i < c->n_up; i++) {
        const int s = c->up[i];
        rf += ceil(2.0 * s / s) / rate;
        rate *= s;
        for (int r = 0; r < DAC_RES_UNITS; r++) rf += 3.0 * k_dilations[r] / rate;
    }
    rf += 3.0 / rate;
    d->dec_context = (int)ceil(rf) + 2;
    /* encoder, in samples at the input rate, then frames */
    double rs = 3.0; /* encoder.conv1 */
    rate = 1.0;      /* input samples per position */
    for (int i = 0; i < c->n_down; i++) {
        for (int r = 0; r < DAC_RES_UNITS; r++) rs += 3.0 * k_dilations[r] * rate;
        rs += (double)c->down[i] * rate; /* k 2s: s positions each side */
        rate *= c->down[i];
    }
    rs += 1.0 * rate; /* encoder.conv2, k 3 */
    d->enc_context = (int)ceil(rs / c->hop) + 2;
    /* frames per chunk: 256 bounds memory on the CPU (~50 MB of activations); the bf16 mode (a GPU)
     * takes 1024 (~600 MB), so up to 11.9 s decode as one segment, without recomputed context */
    d->chunk_frames = d->bf16 ? 1024 : 256;
}

DIA_API dia_status dia_dac_load(const char *path, const dia_options *opts, dia_dac **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_load: path is NULL or empty");
    dia_dac *d = calloc(1, sizeof *d);
    if (!d) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    if (!dia_is_dir(path) && !dia_file_exists(path)) {
        free(d);
        return dia_fail(DIA_ERR_IO, "DAC checkpoint %s: no such file or directory", path);
    }
    char cfg_path[4200];
    dia_config_path(cfg_path, sizeof cfg_path, path); /* in the directory, or beside the file */
    char *json = NULL;
    dia_status st = dia_read_text_file(cfg_path, &json, 1u << 20);
    if (st == DIA_OK) st = dac_config_parse(json, cfg_path, &d->cfg);
    free(json);
    if (st == DIA_OK) st = st_open(path, &d->ar);
    if (st == DIA_OK)
        st = dia_backend_new(opts ? opts->backend : "cpu", opts ? opts->threads : 0, opts ? opts->device : 0, &d->be);
    if (st == DIA_OK) {
        d->wbufs = calloc((size_t)(d->ar.n_maps > 0 ? d->ar.n_maps : 1), sizeof *d->wbufs);
        if (!d->wbufs) st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; st == DIA_OK && i < d->ar.n_maps; i++) {
            st = d->be->ops->wrap_host(d->be, d->ar.maps[i].base, d->ar.maps[i].size, &d->wbufs[i]);
            if (st == DIA_OK) d->n_wbufs = i + 1;
        }
    }
    if (st == DIA_OK) {
        /* dtype: f32 everywhere, or (CUDA: auto and bf16) the decoder's convs in bf16 (conv_bf16) */
        const char *dt = opts ? opts->dtype : "auto";
        const int can = d->be->ops->conv_bf16 && d->be->ops->snake_bf16;
        if (!strcmp(dt, "bf16") && !can)
            st = dia_fail(DIA_ERR_INVALID_ARG, "DAC dtype bf16: the %s backend computes the codec in f32 only "
                                               "(use dtype auto or f32)", d->be->ops->name);
        d->bf16 = strcmp(dt, "f32") && can ? 1 : 0;
    }
    if (st == DIA_OK) st = load_weights(d);
    if (st == DIA_OK && d->bf16 && d->cfg.codebooks <= DAC_MAX_TABLES) st = build_code_tables(d);
    if (st != DIA_OK) {
        dia_dac_free(d);
        return st;
    }
    receptive_fields(d);
    dia_log(DIA_LOG_INFO, "loaded DAC %s (%d codebooks of %d, hop %d, %d Hz, backend %s, decoder %s)", path,
            d->cfg.codebooks, d->cfg.codebook_size, d->cfg.hop, d->cfg.sample_rate, d->be->ops->name,
            d->bf16 ? "bf16" : "f32");
    *out = d;
    return DIA_OK;
}

DIA_API void dia_dac_free(dia_dac *d) {
    if (!d) return;
    if (d->be) {
        dac_work_release(d);
        for (int i = 0; i < d->n_owned; i++) d->be->ops->buffer_free(d->be, d->owned[i]);
        for (int i = 0; i < d->n_wbufs; i++) d->be->ops->buffer_free(d->be, d->wbufs[i]);
        dia_backend_free(d->be);
    }
    free(d->owned);
    free(d->wbufs);
    st_close(&d->ar);
    free(d);
}

DIA_API dia_status dia_dac_info(const dia_dac *d, const char *key, int64_t *value) {
    if (!d || !key || !value) return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_info: NULL argument");
    if (!strcmp(key, "sample_rate")) *value = d->cfg.sample_rate;
    else if (!strcmp(key, "hop_length")) *value = d->cfg.hop;
    else if (!strcmp(key, "codebooks")) *value = d->cfg.codebooks;
    else if (!strcmp(key, "codebook_size")) *value = d->cfg.codebook_size;
    else if (!strcmp(key, "context_frames")) *value = dac_context_frames(d);
    else return dia_fail(DIA_ERR_INVALID_ARG, "dia_dac_info: unknown key \"%s\"", key);
    return DIA_OK;
}
