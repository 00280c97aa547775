/* test_dac.c - the DAC codec against the reference goldens: decode (plain and weight-norm
 * checkpoints), encoder latent and RVQ codes, the whole pipeline's audio, chunked == whole, strict
 * loading errors and out-of-range codes. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#include "dac.h"

#define DAC_HF FIXTURES "/dac-hf"
#define DAC_WN FIXTURES "/dac-wn"

static dia_dac *load(const char *path) {
    dia_dac *d = NULL;
    dia_status st = dia_dac_load(path, NULL, &d);
    if (st != DIA_OK) fail_msg("dia_dac_load(%s): %s: %s", path, dia_status_string(st), dia_last_error());
    return d;
}

/* golden codes [Q, n] (codebook-major) -> [n, Q] */
static int32_t *transpose_codes(const int32_t *qn, int Q, int n) {
    int32_t *c = malloc((size_t)Q * n * sizeof *c);
    assert_non_null(c);
    for (int q = 0; q < Q; q++)
        for (int t = 0; t < n; t++) c[t * Q + q] = qn[q * n + t];
    return c;
}

static void check_decode_golden(const char *path) {
    dia_dac *d = load(path);
    size_t nc, na;
    const int32_t *qn = golden_i32("dac.decode_codes", &nc);
    const float *ref = golden_f32("dac.decode_audio", &na);
    const int n = (int)(nc / 9);
    int32_t *codes = transpose_codes(qn, 9, n);
    float *audio = NULL;
    size_t samples = 0;
    assert_int_equal(dia_dac_decode(d, codes, n, &audio, &samples), DIA_OK);
    assert_int_equal(samples, na);
    assert_int_equal(samples, (size_t)n * 512);
    printf("  decode %s: max |diff| %.3g\n", path, max_abs_diff(audio, ref, na));
    assert_close(audio, ref, na, 1e-4);
    dia_free(audio);
    free(codes);
    dia_dac_free(d);
}

static void test_decode_plain(void **s) { check_decode_golden(DAC_HF); }
static void test_decode_weight_norm(void **s) { check_decode_golden(DAC_WN); }

static void test_info(void **s) {
    dia_dac *d = load(DAC_HF);
    int64_t v;
    assert_int_equal(dia_dac_info(d, "sample_rate", &v), DIA_OK);
    assert_int_equal(v, 44100);
    assert_int_equal(dia_dac_info(d, "hop_length", &v), DIA_OK);
    assert_int_equal(v, 512);
    assert_int_equal(dia_dac_info(d, "codebooks", &v), DIA_OK);
    assert_int_equal(v, 9);
    assert_int_equal(dia_dac_info(d, "codebook_size", &v), DIA_OK);
    assert_int_equal(v, 1024);
    assert_int_equal(dia_dac_info(d, "nonsense", &v), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_info(NULL, "hop_length", &v), DIA_ERR_INVALID_ARG);
    dia_dac_free(d);
    d = load(DAC_HF "/model.safetensors"); /* a file path, config.json beside it */
    assert_int_equal(dia_dac_info(d, "codebooks", &v), DIA_OK);
    assert_int_equal(v, 9);
    dia_dac_free(d);
    dia_dac_free(NULL);
}

/* The largest |x[i]| (the scale of the encoder's latents, for tolerances relative to it). */
static double peak_abs(const float *x, size_t n) {
    double peak = 0;
    for (size_t i = 0; i < n; i++) peak = fabs(x[i]) > peak ? fabs(x[i]) : peak;
    return peak;
}

static void check_encode_golden(const char *path) {
    dia_dac *d = load(path);
    size_t nx, nl, nc;
    const float *x = golden_f32("dac.encode_input", &nx);
    const float *lat_ref = golden_f32("dac.encode_latent", &nl);
    const int32_t *qn = golden_i32("dac.encode_codes", &nc);
    const int n = (int)(nx / 512);
    assert_int_equal(nl, (size_t)64 * n);
    float *lat = malloc(nl * sizeof *lat); /* [64, n] */
    assert_int_equal(dac_encode_latent_range(d, x, n, 0, n, lat), DIA_OK);
    /* The random fixture's latent reaches ~2.4e5 (activations grow through the random blocks), so
     * float32 rounding alone is ~1e-5 of that: the tolerance is relative to the peak. */
    const double peak = peak_abs(lat_ref, nl);
    printf("  encoder latent %s: max |diff| %.3g, peak %.3g, relative %.3g\n", path, max_abs_diff(lat, lat_ref, nl),
           peak, max_abs_diff(lat, lat_ref, nl) / peak);
    assert_close(lat, lat_ref, nl, 1e-4 * peak);
    int32_t *codes = NULL;
    int frames = 0;
    assert_int_equal(dia_dac_encode(d, x, nx, &codes, &frames), DIA_OK);
    assert_int_equal(frames, n);
    int32_t *want = transpose_codes(qn, 9, n);
    assert_memory_equal(codes, want, (size_t)n * 9 * sizeof(int32_t));
    dia_free(codes);
    /* not a multiple of hop: right-padded with zeros to whole frames */
    float *cut = calloc((size_t)n * 512, sizeof *cut);
    memcpy(cut, x, 8000 * sizeof *cut);
    int32_t *c1 = NULL, *c2 = NULL;
    int f1 = 0, f2 = 0;
    assert_int_equal(dia_dac_encode(d, x, 8000, &c1, &f1), DIA_OK);
    assert_int_equal(dia_dac_encode(d, cut, (size_t)n * 512, &c2, &f2), DIA_OK);
    assert_int_equal(f1, n);
    assert_int_equal(f2, n);
    assert_memory_equal(c1, c2, (size_t)n * 9 * sizeof(int32_t));
    dia_free(c1);
    dia_free(c2);
    free(cut);
    free(want);
    free(lat);
    dia_dac_free(d);
}

static void test_encode_plain(void **s) { check_encode_golden(DAC_HF); }
static void test_encode_weight_norm(void **s) { check_encode_golden(DAC_WN); }

static void test_pipeline_audio(void **s) {
    dia_dac *d = load(DAC_HF);
    size_t nc, na;
    const int32_t *codes = golden_i32("text0.greedy_codes", &nc); /* [112, 9] */
    const float *ref = golden_f32("text0.greedy_audio", &na);
    float *audio = NULL;
    size_t samples = 0;
    assert_int_equal(dia_dac_decode(d, codes, (int)(nc / 9), &audio, &samples), DIA_OK);
    assert_int_equal(samples, na);
    printf("  greedy pipeline audio: max |diff| %.3g\n", max_abs_diff(audio, ref, na));
    assert_close(audio, ref, na, 1e-4);
    dia_free(audio);
    dia_dac_free(d);
}

/* Chunked decoding (dia_dac_decode in small chunks, dac_decode_range piece by piece) equals one
 * whole-sequence pass, to float rounding: bit for bit where the BLAS's sums do not depend on the
 * matrices' widths, within ~3e-5 where they do (OpenBLAS 0.3.21's Haswell kernels, e.g. on an AMD
 * EPYC with AVX-512 that it does not know); a chunk with too little context is off by > 1e-3. */
#define CHUNK_TOL 1e-4
static void test_chunked_decode(void **s) {
    dia_dac *d = load(DAC_HF);
    size_t nc;
    const int32_t *codes = golden_i32("text0.greedy_codes", &nc);
    const int n = (int)(nc / 9);
    float *whole = malloc((size_t)n * 512 * sizeof *whole);
    assert_int_equal(dac_decode_range(d, codes, n, 0, n, whole), DIA_OK); /* one segment */
    assert_true(dac_context_frames(d) >= 11);
    assert_true(dac_context_frames(d) < n / 4);
    d->chunk_frames = 13;
    float *audio = NULL;
    size_t samples = 0;
    assert_int_equal(dia_dac_decode(d, codes, n, &audio, &samples), DIA_OK);
    assert_int_equal(samples, (size_t)n * 512);
    printf("  chunked (13 frames) vs whole: max |diff| %.3g\n", max_abs_diff(audio, whole, samples));
    assert_close(audio, whole, samples, CHUNK_TOL);
    /* uneven pieces, as a streaming caller would ask for them */
    float *pieces = malloc((size_t)n * 512 * sizeof *pieces);
    const int sizes[] = {1, 7, 30, 2, 50};
    int f = 0;
    for (int i = 0; f < n; i++) {
        int cnt = sizes[i % 5];
        if (cnt > n - f) cnt = n - f;
        assert_int_equal(dac_decode_range(d, codes, n, f, cnt, pieces + (size_t)f * 512), DIA_OK);
        f += cnt;
    }
    printf("  uneven pieces vs whole: max |diff| %.3g\n", max_abs_diff(pieces, whole, samples));
    assert_close(pieces, whole, samples, CHUNK_TOL);
    /* the test has teeth: with too little context the chunks differ from the whole */
    const int ctx = d->dec_context;
    d->dec_context = 4;
    float *audio2 = NULL;
    assert_int_equal(dia_dac_decode(d, codes, n, &audio2, &samples), DIA_OK);
    printf("  chunked with 4 frames of context instead of %d: max |diff| %.3g\n", ctx,
           max_abs_diff(audio2, whole, samples));
    assert_true(max_abs_diff(audio2, whole, samples) > 1e-3);
    dia_free(audio2);
    d->dec_context = ctx;
    /* bad ranges */
    assert_int_equal(dac_decode_range(d, codes, n, n - 1, 2, pieces), DIA_ERR_INVALID_ARG);
    assert_int_equal(dac_decode_range(d, codes, n, -1, 2, pieces), DIA_ERR_INVALID_ARG);
    assert_int_equal(dac_decode_range(d, codes, n, 0, 0, pieces), DIA_ERR_INVALID_ARG);
    free(pieces);
    dia_free(audio);
    free(whole);
    dia_dac_free(d);
}

/* Chunked encoding equals one whole pass, on a signal longer than the encoder's context. */
static void test_chunked_encode(void **s) {
    dia_dac *d = load(DAC_WN);
    size_t nx;
    const float *x = golden_f32("dac.encode_input", &nx); /* 16 frames */
    const int n = 64;
    float *sig = malloc((size_t)n * 512 * sizeof *sig); /* 4 copies, each scaled differently */
    for (int i = 0; i < n * 512; i++) sig[i] = x[i % nx] * (0.5f + 0.25f * (float)(i / nx));
    float *whole = malloc((size_t)64 * n * sizeof *whole), *part = malloc((size_t)64 * n * sizeof *part);
    assert_int_equal(dac_encode_latent_range(d, sig, n, 0, n, whole), DIA_OK);
    assert_true(d->enc_context < n / 4);
    const int cnt = 9; /* pieces [f, f + 9) */
    for (int f = 0; f < n; f += cnt) {
        const int c = n - f < cnt ? n - f : cnt;
        float *tmp = malloc((size_t)64 * c * sizeof *tmp);
        assert_int_equal(dac_encode_latent_range(d, sig, n, f, c, tmp), DIA_OK);
        for (int l = 0; l < 64; l++) memcpy(part + (size_t)l * n + f, tmp + (size_t)l * c, (size_t)c * sizeof *tmp);
        free(tmp);
    }
    const double peak = peak_abs(whole, (size_t)64 * n);
    printf("  chunked encoder latent vs whole: max |diff| %.3g, peak %.3g\n", max_abs_diff(part, whole, (size_t)64 * n), peak);
    assert_close(part, whole, (size_t)64 * n, 1e-5 * peak); /* (float rounding, relative to the peak, as above) */
    /* dia_dac_encode chunked vs not: codes from the same latent (up to float rounding) */
    int32_t *c1 = NULL, *c2 = NULL;
    int f1 = 0, f2 = 0;
    d->chunk_frames = 0;
    assert_int_equal(dia_dac_encode(d, sig, (size_t)n * 512, &c1, &f1), DIA_OK);
    d->chunk_frames = 10;
    assert_int_equal(dia_dac_encode(d, sig, (size_t)n * 512, &c2, &f2), DIA_OK);
    assert_int_equal(f1, n);
    assert_int_equal(f2, n);
    int same = 0;
    for (int i = 0; i < n * 9; i++) same += c1[i] == c2[i];
    printf("  chunked vs whole encode: %d of %d codes equal\n", same, n * 9);
    assert_int_equal(same, n * 9); /* the latents are bit-identical, so are the codes */
    dia_free(c1);
    dia_free(c2);
    free(whole);
    free(part);
    free(sig);
    dia_dac_free(d);
}

static void test_bad_codes(void **s) {
    dia_dac *d = load(DAC_HF);
    int32_t codes[4 * 9];
    for (int i = 0; i < 4 * 9; i++) codes[i] = i * 17 % 1024;
    float *audio = NULL;
    size_t samples = 0;
    codes[2 * 9 + 3] = 1024;
    assert_int_equal(dia_dac_decode(d, codes, 4, &audio, &samples), DIA_ERR_BAD_AUDIO);
    assert_null(audio);
    assert_non_null(strstr(dia_last_error(), "1024"));
    codes[2 * 9 + 3] = -1;
    assert_int_equal(dia_dac_decode(d, codes, 4, &audio, &samples), DIA_ERR_BAD_AUDIO);
    float out[4 * 512];
    assert_int_equal(dac_decode_range(d, codes, 4, 0, 1, out), DIA_ERR_BAD_AUDIO);
    codes[2 * 9 + 3] = 5;
    assert_int_equal(dia_dac_decode(d, codes, 0, &audio, &samples), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_decode(d, NULL, 4, &audio, &samples), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_decode(d, codes, 4, &audio, &samples), DIA_OK);
    dia_free(audio);
    int32_t *c = NULL;
    int frames = 0;
    float x[10] = {0};
    assert_int_equal(dia_dac_encode(d, x, 0, &c, &frames), DIA_ERR_INVALID_ARG);
    x[3] = NAN;
    assert_int_equal(dia_dac_encode(d, x, 10, &c, &frames), DIA_ERR_BAD_AUDIO);
    assert_null(c);
    dia_dac_free(d);
}

/* ---------------------------------------------------------------------------------------------
 * strict loading: variants of the fixtures written to a temporary directory
 * ------------------------------------------------------------------------------------------- */

static char g_tmpdir[256];

static void *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *p = malloc((size_t)n);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

typedef void (*header_edit)(cJSON *header);

/* Copy `src` (a checkpoint directory) to g_tmpdir with its safetensors header edited by `edit`
 * (data unchanged) and config.json replaced by `config` if not NULL. */
static void make_variant(const char *src, header_edit edit, const char *config) {
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    unsigned char *file = read_all(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)file[i] << (8 * i);
    char *htext = malloc(hlen + 1);
    memcpy(htext, file + 8, hlen);
    htext[hlen] = 0;
    cJSON *h = cJSON_Parse(htext);
    assert_non_null(h);
    if (edit) edit(h);
    char *out = cJSON_PrintUnformatted(h);
    size_t olen = strlen(out), padded = (olen + 7) & ~(size_t)7;
    snprintf(path, sizeof path, "%s/model.safetensors", g_tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    fwrite(lenb, 1, 8, f);
    fwrite(out, 1, olen, f);
    for (size_t i = olen; i < padded; i++) fputc(' ', f);
    fwrite(file + 8 + hlen, 1, len - 8 - hlen, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/config.json", src);
    size_t clen;
    char *cfg = read_all(path, &clen);
    snprintf(path, sizeof path, "%s/config.json", g_tmpdir);
    write_file(path, config ? config : cfg, config ? strlen(config) : clen);
    free(cfg);
    cJSON_free(out);
    cJSON_Delete(h);
    free(htext);
    free(file);
}

static void rename_key(cJSON *h, const char *from, const char *to) {
    cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(h, from);
    assert_non_null(item);
    cJSON_AddItemToObject(h, to, item);
}

static void edit_drop_bias(cJSON *h) { rename_key(h, "decoder.block.1.res_unit2.conv1.bias", "junk.bias"); }
static void edit_reshape(cJSON *h) {
    /* same bytes, wrong shape: [32, 64, 7] -> [32, 448, 1] */
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "decoder.conv1.weight");
    cJSON *shape = cJSON_CreateIntArray((const int[]){32, 448, 1}, 3);
    cJSON_ReplaceItemInObjectCaseSensitive(t, "shape", shape);
}
static void edit_extra(cJSON *h) {
    /* an extra tensor aliasing the bytes of a real one (the archive rejects the overlap; the
     * n_codebooks case below exercises the loader's own "unexpected tensor" check) */
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "decoder.conv2.bias");
    cJSON_AddItemToObject(h, "decoder.conv3.bias", cJSON_Duplicate(t, 1));
}
/* parametrizations.weight.original0/1 -> old-style weight_g / weight_v */
static void edit_old_weight_norm(cJSON *h) {
    int n = cJSON_GetArraySize(h);
    char **names = calloc((size_t)n, sizeof *names);
    int k = 0;
    for (cJSON *it = h->child; it; it = it->next)
        if (strstr(it->string, ".parametrizations.weight.original")) names[k++] = strdup(it->string);
    assert_true(k > 100);
    for (int i = 0; i < k; i++) {
        char to[512];
        char *p = strstr(names[i], ".parametrizations.weight.original");
        const char last = names[i][strlen(names[i]) - 1];
        snprintf(to, sizeof to, "%.*s.weight_%s", (int)(p - names[i]), names[i], last == '0' ? "g" : "v");
        rename_key(h, names[i], to);
        free(names[i]);
    }
    free(names);
}
static void edit_drop_v(cJSON *h) {
    rename_key(h, "decoder.block.0.conv_t1.parametrizations.weight.original1", "junk");
}

static void expect_load_error(dia_status want, const char *needle) {
    dia_dac *d = (dia_dac *)1;
    dia_status st = dia_dac_load(g_tmpdir, NULL, &d);
    if (st != want)
        fail_msg("load gave %s (%s), expected %s", dia_status_string(st), dia_last_error(), dia_status_string(want));
    assert_null(d);
    if (needle && !strstr(dia_last_error(), needle))
        fail_msg("error \"%s\" does not name \"%s\"", dia_last_error(), needle);
}

static void test_strict_loading(void **s) {
    make_variant(DAC_HF, edit_drop_bias, NULL);
    expect_load_error(DIA_ERR_BAD_MODEL, "decoder.block.1.res_unit2.conv1.bias");
    make_variant(DAC_HF, edit_reshape, NULL);
    expect_load_error(DIA_ERR_BAD_MODEL, "decoder.conv1.weight");
    make_variant(DAC_HF, edit_extra, NULL);
    expect_load_error(DIA_ERR_BAD_MODEL, "decoder.conv3.bias");
    make_variant(DAC_WN, edit_drop_v, NULL);
    expect_load_error(DIA_ERR_BAD_MODEL, "decoder.block.0.conv_t1.parametrizations.weight.original1");
    make_variant(DAC_HF, NULL, "{\"encoder_hidden_size\": 4, ");
    expect_load_error(DIA_ERR_BAD_MODEL, "config.json");
    make_variant(DAC_HF, NULL, "{\"encoder_hidden_size\": 4}");
    expect_load_error(DIA_ERR_BAD_MODEL, "hidden_size");
    make_variant(DAC_HF, NULL,
                 "{\"encoder_hidden_size\": 4, \"hidden_size\": 64, \"decoder_hidden_size\": 32, \"n_codebooks\": 9,"
                 "\"codebook_size\": 1024, \"codebook_dim\": 8, \"downsampling_ratios\": [2, 4, 8, 8],"
                 "\"upsampling_ratios\": [8, 8, 4, 4], \"hop_length\": 512}");
    expect_load_error(DIA_ERR_BAD_MODEL, "upsampling_ratios");
    /* ratios whose product no int holds (64^8: UBSan's signed overflow before the check) */
    make_variant(DAC_HF, NULL,
                 "{\"encoder_hidden_size\": 4, \"hidden_size\": 64, \"decoder_hidden_size\": 32, \"n_codebooks\": 9,"
                 "\"codebook_size\": 1024, \"codebook_dim\": 8, \"downsampling_ratios\": [64, 64, 64, 64, 64, 64, 64, 64],"
                 "\"upsampling_ratios\": [8, 8, 4, 2], \"hop_length\": 512}");
    expect_load_error(DIA_ERR_BAD_MODEL, "exceeds 2^20");
    /* wrong size in config: every tensor mis-shaped, the first one is named */
    make_variant(DAC_HF, NULL,
                 "{\"encoder_hidden_size\": 8, \"hidden_size\": 64, \"decoder_hidden_size\": 32, \"n_codebooks\": 9,"
                 "\"codebook_size\": 1024, \"codebook_dim\": 8, \"downsampling_ratios\": [2, 4, 8, 8],"
                 "\"upsampling_ratios\": [8, 8, 4, 2], \"hop_length\": 512}");
    expect_load_error(DIA_ERR_BAD_MODEL, "encoder.conv1.weight");
    /* fewer codebooks than stored: the extra quantizers are unexpected */
    make_variant(DAC_HF, NULL,
                 "{\"encoder_hidden_size\": 4, \"hidden_size\": 64, \"decoder_hidden_size\": 32, \"n_codebooks\": 8,"
                 "\"codebook_size\": 1024, \"codebook_dim\": 8, \"downsampling_ratios\": [2, 4, 8, 8],"
                 "\"upsampling_ratios\": [8, 8, 4, 2], \"hop_length\": 512}");
    expect_load_error(DIA_ERR_BAD_MODEL, "quantizers.8");
    /* missing files */
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", g_tmpdir);
    unlink(path);
    expect_load_error(DIA_ERR_IO, NULL);
    snprintf(path, sizeof path, "%s/config.json", g_tmpdir);
    unlink(path);
    expect_load_error(DIA_ERR_IO, "config.json");
    dia_dac *d = NULL;
    assert_int_equal(dia_dac_load("/nonexistent-dac-dir", NULL, &d), DIA_ERR_IO);
    assert_non_null(strstr(dia_last_error(), "/nonexistent-dac-dir"));
    assert_int_equal(dia_dac_load(NULL, NULL, &d), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_load(DAC_HF, NULL, NULL), DIA_ERR_INVALID_ARG);
    /* the CPU computes the codec in f32 only: dtype bf16 is refused, auto and f32 load */
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "dtype", "bf16"), DIA_OK);
    assert_int_equal(dia_dac_load(DAC_HF, o, &d), DIA_ERR_INVALID_ARG);
    assert_null(d);
    assert_non_null(strstr(dia_last_error(), "bf16"));
    assert_int_equal(dia_options_set(o, "dtype", "auto"), DIA_OK);
    assert_int_equal(dia_dac_load(DAC_HF, o, &d), DIA_OK);
    dia_dac_free(d);
    dia_options_free(o);
}

/* The original descript name of a transformers DAC tensor (weight norm as weight_g / weight_v, as
 * in descript's weights.pth), into out. */
static void original_name(const char *hf, char *out, size_t cap) {
    char rest[256] = "", sub[64] = "";
    int i = 0, r = 0, n = 0;
    const char *ru_subs[4] = {"snake1", "conv1", "snake2", "conv2"};
    char tail[256];
    const char *p = strstr(hf, ".parametrizations.weight.original");
    if (p) snprintf(tail, sizeof tail, "%.*s.weight_%s", (int)(p - hf), hf, p[strlen(p) - 1] == '0' ? "g" : "v");
    else snprintf(tail, sizeof tail, "%s", hf);
    hf = tail;
    if (sscanf(hf, "encoder.block.%d.res_unit%d.%63[^.].%255s%n", &i, &r, sub, rest, &n) == 4) {
        int k = 0;
        while (k < 4 && strcmp(sub, ru_subs[k])) k++;
        snprintf(out, cap, "encoder.block.%d.block.%d.block.%d.%s", i + 1, r - 1, k, rest);
    } else if (sscanf(hf, "decoder.block.%d.res_unit%d.%63[^.].%255s", &i, &r, sub, rest) == 4) {
        int k = 0;
        while (k < 4 && strcmp(sub, ru_subs[k])) k++;
        snprintf(out, cap, "decoder.model.%d.block.%d.block.%d.%s", i + 1, r + 1, k, rest);
    } else if (sscanf(hf, "encoder.block.%d.%63[^.].%255s", &i, sub, rest) == 3)
        snprintf(out, cap, "encoder.block.%d.block.%d.%s", i + 1, strcmp(sub, "snake1") ? 4 : 3, rest);
    else if (sscanf(hf, "decoder.block.%d.%63[^.].%255s", &i, sub, rest) == 3)
        snprintf(out, cap, "decoder.model.%d.block.%d.%s", i + 1, strcmp(sub, "snake1") ? 1 : 0, rest);
    else if (sscanf(hf, "encoder.%63[^.].%255s", sub, rest) == 2)
        snprintf(out, cap, "encoder.block.%d.%s", !strcmp(sub, "conv1") ? 0 : !strcmp(sub, "snake1") ? 5 : 6, rest);
    else if (sscanf(hf, "decoder.%63[^.].%255s", sub, rest) == 2)
        snprintf(out, cap, "decoder.model.%d.%s", !strcmp(sub, "conv1") ? 0 : !strcmp(sub, "snake1") ? 5 : 6, rest);
    else snprintf(out, cap, "%s", hf); /* quantizer.*: the same */
}

static void edit_original_names(cJSON *h) {
    int n = cJSON_GetArraySize(h), k = 0;
    char **names = calloc((size_t)n, sizeof *names);
    for (cJSON *it = h->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__")) names[k++] = strdup(it->string);
    for (int i = 0; i < k; i++) {
        char to[512];
        original_name(names[i], to, sizeof to);
        rename_key(h, names[i], to);
        free(names[i]);
    }
    free(names);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(h, "decoder.model.2.block.3.block.1.weight_v"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(h, "encoder.block.6.weight_g"));
}

static void edit_original_drop(cJSON *h) {
    edit_original_names(h);
    rename_key(h, "decoder.model.1.block.1.weight_v", "junk");
}

/* The original descript naming (encoder.block.N.block.M..., decoder.model.N...) with weight_g /
 * weight_v loads and matches the goldens; its errors name the original tensor names. */
static void test_original_names(void **s) {
    make_variant(DAC_WN, edit_original_names, NULL);
    check_decode_golden(g_tmpdir);
    check_encode_golden(g_tmpdir);
    make_variant(DAC_WN, edit_original_drop, NULL);
    expect_load_error(DIA_ERR_BAD_MODEL, "decoder.model.1.block.1.weight_v");
}

/* Old-style weight_g / weight_v names load and decode like the plain checkpoint. */
static void test_old_weight_norm_names(void **s) {
    make_variant(DAC_WN, edit_old_weight_norm, NULL);
    check_decode_golden(g_tmpdir);
}

/* Values rounded to bfloat16 (and flushed to 0 below 2^-14, so that float16 holds them exactly). */
static float round_bf16(float v) {
    if (fabsf(v) < 6.2e-5f) return 0.0f;
    uint32_t u;
    memcpy(&u, &v, 4);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

static uint16_t to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return (uint16_t)(u >> 16);
}

static uint16_t to_f16(float v) { /* exact for the values round_bf16 produces */
    uint32_t u;
    memcpy(&u, &v, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    if ((u & 0x7fffffffu) == 0) return (uint16_t)sign;
    const int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | ((uint32_t)exp << 10) | ((u >> 13) & 0x3ff));
}

/* Copy the plain DAC to g_tmpdir with every tensor rounded to bf16 values and stored as `dtype`
 * ("F32", "BF16" or "F16"). */
static void make_rounded(const char *dtype) {
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/model.safetensors", DAC_HF);
    unsigned char *file = read_all(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)file[i] << (8 * i);
    char *htext = malloc(hlen + 1);
    memcpy(htext, file + 8, hlen);
    htext[hlen] = 0;
    cJSON *h = cJSON_Parse(htext);
    const int esz = strcmp(dtype, "F32") ? 2 : 4;
    unsigned char *data = malloc(len); /* the new data section (never larger) */
    size_t off = 0;
    for (cJSON *t = h->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        const size_t b0 = (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
        const size_t b1 = (size_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
        const size_t n = (b1 - b0) / 4;
        for (size_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, file + 8 + hlen + b0 + 4 * i, 4);
            v = round_bf16(v);
            if (esz == 4) memcpy(data + off + 4 * i, &v, 4);
            else {
                const uint16_t hv = dtype[0] == 'B' ? to_bf16(v) : to_f16(v);
                memcpy(data + off + 2 * i, &hv, 2);
            }
        }
        cJSON_ReplaceItemInObjectCaseSensitive(t, "dtype", cJSON_CreateString(dtype));
        const double no[2] = {(double)off, (double)(off + n * esz)};
        cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", cJSON_CreateDoubleArray(no, 2));
        off += n * esz;
    }
    char *out = cJSON_PrintUnformatted(h);
    size_t olen = strlen(out), padded = (olen + 7) & ~(size_t)7;
    snprintf(path, sizeof path, "%s/model.safetensors", g_tmpdir);
    FILE *f = fopen(path, "wb");
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    fwrite(lenb, 1, 8, f);
    fwrite(out, 1, olen, f);
    for (size_t i = olen; i < padded; i++) fputc(' ', f);
    fwrite(data, 1, off, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/config.json", DAC_HF);
    size_t clen;
    char *cfg = read_all(path, &clen);
    snprintf(path, sizeof path, "%s/config.json", g_tmpdir);
    write_file(path, cfg, clen);
    free(cfg);
    cJSON_free(out);
    cJSON_Delete(h);
    free(data);
    free(htext);
    free(file);
}

/* BF16 and F16 checkpoints decode and encode exactly like an F32 one holding the same values. */
static void test_half_weights(void **s) {
    size_t nc, nx;
    const int32_t *qn = golden_i32("dac.decode_codes", &nc);
    const float *x = golden_f32("dac.encode_input", &nx);
    const int n = (int)(nc / 9);
    int32_t *codes = transpose_codes(qn, 9, n);
    const char *dtypes[3] = {"F32", "BF16", "F16"};
    float *ref = NULL;
    int32_t *ref_codes = NULL;
    for (int k = 0; k < 3; k++) {
        make_rounded(dtypes[k]);
        dia_dac *d = load(g_tmpdir);
        float *audio = NULL;
        size_t samples = 0;
        int32_t *ec = NULL;
        int frames = 0;
        assert_int_equal(dia_dac_decode(d, codes, n, &audio, &samples), DIA_OK);
        assert_int_equal(dia_dac_encode(d, x, nx, &ec, &frames), DIA_OK);
        if (k == 0) {
            ref = audio;
            ref_codes = ec;
        } else {
            printf("  %s weights vs the same values in F32: max |diff| %.3g\n", dtypes[k],
                   max_abs_diff(audio, ref, samples));
            assert_close(audio, ref, samples, 0.0);
            assert_memory_equal(ec, ref_codes, (size_t)frames * 9 * sizeof(int32_t));
            dia_free(audio);
            dia_free(ec);
        }
        dia_dac_free(d);
    }
    dia_free(ref);
    dia_free(ref_codes);
    free(codes);
}

static int setup(void **s) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_dac_%d", (int)getpid());
    mkdir(g_tmpdir, 0700);
    return 0;
}

static int teardown(void **s) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", g_tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", g_tmpdir);
    unlink(path);
    rmdir(g_tmpdir);
    if (g_golden_open) st_close(&g_golden);
    return 0;
}


/* Streaming through the public API: frames arrive one at a time; a chunk of 16 frames is decoded
 * with dia_dac_decode_range as soon as context_frames more are known (the tail when the sequence
 * ends). The streamed audio equals the whole decode to float rounding (CHUNK_TOL: bit for bit where
 * the BLAS's sums do not depend on the widths), and the golden within 1e-4. */
static void test_streaming_decode_range(void **s) {
    (void)s;
    dia_dac *dac = load(DAC_HF);
    size_t n = 0;
    const int32_t *codes = golden_i32("text0.greedy_codes", &n);
    const int frames = (int)(n / 9);
    int64_t ctx = 0, hop = 0;
    assert_int_equal(dia_dac_info(dac, "context_frames", &ctx), DIA_OK);
    assert_int_equal(dia_dac_info(dac, "hop_length", &hop), DIA_OK);
    assert_true(ctx > 0);
    float *whole = NULL;
    size_t ns = 0;
    assert_int_equal(dia_dac_decode(dac, codes, frames, &whole, &ns), DIA_OK);
    float *streamed = calloc((size_t)frames * (size_t)hop, sizeof(float));
    int done = 0, calls = 0;
    for (int known = 1; known <= frames; known++) { /* frame `known - 1` just arrived */
        while (done < known && (known - done >= 16 + ctx || known == frames)) {
            const int count = known == frames ? known - done : 16;
            assert_int_equal(dia_dac_decode_range(dac, codes, known, done, count, streamed + (size_t)done * hop), DIA_OK);
            done += count;
            calls++;
        }
    }
    assert_int_equal(done, frames);
    assert_true(calls > 3);
    printf("  streamed vs whole: max |diff| %.3g\n", max_abs_diff(streamed, whole, ns));
    assert_close(streamed, whole, ns, CHUNK_TOL);
    size_t gn = 0;
    const float *want = golden_f32("text0.greedy_audio", &gn);
    assert_int_equal(gn, ns);
    assert_close(streamed, want, gn, 1e-4);
    /* bad ranges and codes */
    assert_int_equal(dia_dac_decode_range(dac, codes, frames, frames - 2, 4, streamed), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_decode_range(dac, codes, frames, -1, 4, streamed), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_dac_decode_range(NULL, codes, frames, 0, 4, streamed), DIA_ERR_INVALID_ARG);
    int32_t bad[20 * 9];
    memcpy(bad, codes, sizeof bad);
    bad[3 * 9 + 2] = 1024;
    assert_int_equal(dia_dac_decode_range(dac, bad, 20, 0, 8, streamed), DIA_ERR_BAD_AUDIO);
    free(streamed);
    dia_free(whole);
    dia_dac_free(dac);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_decode_plain),
        cmocka_unit_test(test_decode_weight_norm),
        cmocka_unit_test(test_encode_plain),
        cmocka_unit_test(test_encode_weight_norm),
        cmocka_unit_test(test_pipeline_audio),
        cmocka_unit_test(test_chunked_decode),
        cmocka_unit_test(test_streaming_decode_range),
        cmocka_unit_test(test_chunked_encode),
        cmocka_unit_test(test_bad_codes),
        cmocka_unit_test(test_strict_loading),
        cmocka_unit_test(test_old_weight_norm_names),
        cmocka_unit_test(test_half_weights),
        cmocka_unit_test(test_original_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
