/* test_loader.c - strict parsing: safetensors headers (corrupt, truncated, overlapping, unknown
 * dtypes), sharded indexes, config.json in both schemas, missing / unexpected / mis-shaped
 * tensors; options; KV cache semantics; NULL handles. */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char g_dir[256];

static int setup(void **state) {
    (void)state;
    dia_set_log_level(DIA_LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/dia_loader_test_%d", (int)getpid());
    mkdir(g_dir, 0755);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* A safetensors file from a header string and a payload. */
static void write_st(const char *path, const char *header, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = strlen(header);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(header, 1, hl, f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static dia_status open_st(const char *header, const void *data, size_t n) {
    char path[300];
    snprintf(path, sizeof path, "%s/t.safetensors", g_dir);
    write_st(path, header, data, n);
    st_archive ar;
    dia_status st = st_open_file(path, &ar);
    if (st == DIA_OK) st_close(&ar);
    return st;
}

static void test_safetensors_parser(void **state) {
    (void)state;
    float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", data, 32), DIA_OK);
    assert_int_equal(open_st("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8), DIA_OK);
    /* truncated data */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", data, 16), DIA_ERR_BAD_MODEL);
    /* size not matching the shape */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 8), DIA_ERR_BAD_MODEL);
    /* unknown dtype */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8), DIA_ERR_BAD_MODEL);
    /* malformed JSON, not an object, missing fields */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",", data, 8), DIA_ERR_BAD_MODEL);
    assert_int_equal(open_st("[1,2]", data, 8), DIA_ERR_BAD_MODEL);
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", data, 8), DIA_ERR_BAD_MODEL);
    /* overlapping tensors */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 16),
                     DIA_ERR_BAD_MODEL);
    /* offsets past any integer type (UBSan: no defined conversion), fractional offsets and sizes, and a shape whose
     * element count wraps around to the (empty) data's 0 */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,3.7e30]}}", data, 8), DIA_ERR_BAD_MODEL);
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8.5]}}", data, 16), DIA_ERR_BAD_MODEL);
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", data, 8), DIA_ERR_BAD_MODEL);
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", data, 8),
                     DIA_ERR_BAD_MODEL);
    /* ... or whose byte count does (2^62 F32 elements: 2^64 bytes) */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", data, 8),
                     DIA_ERR_BAD_MODEL);
    /* negative / reversed offsets */
    assert_int_equal(open_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data, 8), DIA_ERR_BAD_MODEL);
    /* header length beyond the file, and a file shorter than the length field */
    char path[300];
    snprintf(path, sizeof path, "%s/short.safetensors", g_dir);
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0};
    write_file(path, huge, 8);
    st_archive ar;
    assert_int_equal(st_open_file(path, &ar), DIA_ERR_BAD_MODEL);
    write_file(path, huge, 3);
    assert_int_equal(st_open_file(path, &ar), DIA_ERR_BAD_MODEL);
    write_file(path, "", 0);
    assert_int_equal(st_open_file(path, &ar), DIA_ERR_BAD_MODEL);
    snprintf(path, sizeof path, "%s/missing.safetensors", g_dir);
    assert_int_equal(st_open_file(path, &ar), DIA_ERR_IO);
}

/* Copy a fixture model into g_dir/name, letting `edit` change the config JSON and the header. */
typedef void (*edit_fn)(cJSON *config, cJSON *header);

static const char *make_variant(const char *fixture, const char *name, edit_fn edit) {
    static char dir[300];
    char src[300], dst[400];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, name);
    mkdir(dir, 0755);
    size_t n;
    snprintf(src, sizeof src, FIXTURES "/%s/config.json", fixture);
    char *cfg_text = slurp(src, &n);
    cJSON *cfg = cJSON_Parse(cfg_text);
    snprintf(src, sizeof src, FIXTURES "/%s/model.safetensors", fixture);
    char *st = slurp(src, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)st[i];
    cJSON *hdr = cJSON_ParseWithLength(st + 8, (size_t)hl);
    assert_non_null(cfg);
    assert_non_null(hdr);
    edit(cfg, hdr);
    char *cfg_out = cJSON_PrintUnformatted(cfg), *hdr_out = cJSON_PrintUnformatted(hdr);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    write_file(dst, cfg_out, strlen(cfg_out));
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    write_st(dst, hdr_out, st + 8 + hl, n - 8 - hl);
    free(cfg_out);
    free(hdr_out);
    cJSON_Delete(cfg);
    cJSON_Delete(hdr);
    free(cfg_text);
    free(st);
    return dir;
}

static void no_edit(cJSON *c, cJSON *h) { (void)c, (void)h; }
static void rename_tensor(cJSON *c, cJSON *h) { /* -> missing AND unexpected */
    (void)c;
    cJSON *t = cJSON_DetachItemFromObject(h, "model.decoder.layers.1.mlp.down_proj.weight");
    cJSON_AddItemToObject(h, "model.decoder.layers.1.mlp.down_proj.weight_renamed", t);
}
static void extra_tensor(cJSON *c, cJSON *h) {
    (void)c;
    cJSON *t = cJSON_Duplicate(cJSON_GetObjectItem(h, "model.decoder.norm.weight"), 1);
    /* alias no bytes twice: give it an empty region at the end */
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[0]"));
    cJSON_ReplaceItemInObject(t, "data_offsets", cJSON_Parse("[0,0]"));
    cJSON_AddItemToObject(h, "model.decoder.extra.weight", t);
}
static void transpose_shape(cJSON *c, cJSON *h) { /* same bytes, wrong shape */
    (void)c;
    cJSON *t = cJSON_GetObjectItem(h, "model.decoder.layers.0.self_attention.k_proj.weight");
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[64,32]"));
}
static void int_dtype(cJSON *c, cJSON *h) {
    (void)c;
    cJSON *t = cJSON_GetObjectItem(h, "model.encoder.norm.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I32"));
}
static void drop_config_field(cJSON *c, cJSON *h) {
    (void)h;
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(c, "decoder_config"), "num_key_value_heads");
}
static void bad_delay(cJSON *c, cJSON *h) {
    (void)h;
    cJSON_ReplaceItemInObject(c, "delay_pattern", cJSON_Parse("[0,8,9]"));
}

static void huge_eps(cJSON *c, cJSON *h) { /* a positive number no float holds (UBSan: no defined conversion) */
    (void)h;
    cJSON *dec = cJSON_GetObjectItem(c, "decoder_config");
    cJSON_DeleteItemFromObject(dec, "norm_eps");
    cJSON_AddItemToObject(dec, "norm_eps", cJSON_CreateNumber(1e300));
}

static void expect_load(const char *dir, dia_status want, const char *msg_part) {
    dia_model *m = (dia_model *)(uintptr_t)1;
    dia_status st = dia_model_load(dir, NULL, &m);
    if (st != want) fail_msg("load %s: got %s, want %s (%s)", dir, dia_status_string(st), dia_status_string(want),
                             dia_last_error());
    if (st == DIA_OK) dia_model_free(m);
    else {
        assert_null(m);
        if (msg_part && !strstr(dia_last_error(), msg_part))
            fail_msg("error \"%s\" does not name \"%s\"", dia_last_error(), msg_part);
    }
}

static void test_model_strict(void **state) {
    (void)state;
    expect_load(make_variant("dia-hf", "same", no_edit), DIA_OK, NULL);
    expect_load(make_variant("dia-hf", "renamed", rename_tensor), DIA_ERR_BAD_MODEL, "down_proj");
    expect_load(make_variant("dia-hf", "extra", extra_tensor), DIA_ERR_BAD_MODEL, "model.decoder.extra.weight");
    expect_load(make_variant("dia-hf", "shape", transpose_shape), DIA_ERR_BAD_MODEL, "k_proj");
    expect_load(make_variant("dia-hf", "dtype", int_dtype), DIA_ERR_BAD_MODEL, "encoder.norm");
    expect_load(make_variant("dia-hf", "nokv", drop_config_field), DIA_ERR_BAD_MODEL, "num_key_value_heads");
    expect_load(make_variant("dia-nari", "delay", bad_delay), DIA_ERR_BAD_MODEL, "delay_pattern");
    expect_load(make_variant("dia-hf", "eps", huge_eps), DIA_ERR_BAD_MODEL, "norm_eps");
    /* malformed config.json */
    char path[400];
    const char *dir = make_variant("dia-hf", "badjson", no_edit);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_file(path, "{\"encoder_config\": {", 20);
    expect_load(dir, DIA_ERR_BAD_MODEL, "JSON");
    unlink(path);
    expect_load(dir, DIA_ERR_IO, "config.json");
    /* truncated weights file */
    dir = make_variant("dia-hf", "trunc", no_edit);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(truncate(path, 100000), 0);
    expect_load(dir, DIA_ERR_BAD_MODEL, "truncated");
    expect_load(g_dir, DIA_ERR_IO, NULL); /* a directory with no config.json */
    expect_load("", DIA_ERR_INVALID_ARG, NULL);
    assert_int_equal(dia_model_load(NULL, NULL, NULL), DIA_ERR_INVALID_ARG);
}

static void test_sharded_index_errors(void **state) {
    (void)state;
    char dir[300], cmd[800], path[400];
    snprintf(dir, sizeof dir, "%s/shards", g_dir);
    snprintf(cmd, sizeof cmd, "cp -r " FIXTURES "/dia-hf-bf16-sharded %s && chmod -R u+w %s", dir, dir);
    assert_int_equal(system(cmd), 0);
    expect_load(dir, DIA_OK, NULL);
    /* a shard is missing */
    snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", dir);
    snprintf(cmd, sizeof cmd, "mv %s %s.bak", path, path);
    assert_int_equal(system(cmd), 0);
    expect_load(dir, DIA_ERR_IO, "model-00002-of-00003");
    snprintf(cmd, sizeof cmd, "mv %s.bak %s", path, path);
    assert_int_equal(system(cmd), 0);
    /* the index names a tensor no shard has */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    size_t n;
    char *idx = slurp(path, &n);
    cJSON *j = cJSON_Parse(idx);
    cJSON_AddItemToObject(cJSON_GetObjectItem(j, "weight_map"), "ghost.weight",
                          cJSON_CreateString("model-00001-of-00003.safetensors"));
    char *out = cJSON_Print(j);
    write_file(path, out, strlen(out));
    expect_load(dir, DIA_ERR_BAD_MODEL, "ghost.weight");
    write_file(path, "{\"weight_map\": 3}", 17);
    expect_load(dir, DIA_ERR_BAD_MODEL, "weight_map");
    free(out);
    cJSON_Delete(j);
    free(idx);
}

static void test_options_and_nulls(void **state) {
    (void)state;
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "threads", "4"), DIA_OK);
    assert_int_equal(dia_options_set(o, "threads", "-1"), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_options_set(o, "threads", "abc"), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_options_set(o, "backend", "tpu"), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_options_set(o, "dtype", "int4"), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_options_set(o, "colour", "red"), DIA_ERR_INVALID_ARG);
    assert_non_null(strstr(dia_last_error(), "colour"));
    assert_int_equal(dia_options_set(o, "encoder_memory", "disk"), DIA_ERR_INVALID_ARG);
    assert_non_null(strstr(dia_last_error(), "encoder_memory"));
    assert_int_equal(dia_options_set(NULL, "threads", "1"), DIA_ERR_INVALID_ARG);
    /* the CPU backend does not convert weights: dtype bf16 is refused at load, f32 is fine */
    dia_model *m = NULL;
    assert_int_equal(dia_options_set(o, "dtype", "bf16"), DIA_OK);
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", o, &m), DIA_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(dia_last_error(), "bf16"));
    assert_int_equal(dia_options_set(o, "dtype", "f32"), DIA_OK);
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf-bf16-sharded", o, &m), DIA_OK);
    dia_model_free(m);
    /* encoder_memory=host: on the CPU the weights already are in host memory (accepted, no-op) */
    assert_int_equal(dia_options_set(o, "encoder_memory", "host"), DIA_OK);
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", o, &m), DIA_OK);
    dia_model_free(m);
    assert_int_equal(dia_options_set(o, "encoder_memory", "device"), DIA_OK);
    /* the cuda backend in a build or on a machine without it: a clear backend error */
    assert_int_equal(dia_options_set(o, "backend", "cuda"), DIA_OK);
    dia_status cst = dia_model_load(FIXTURES "/dia-hf", o, &m);
    if (cst != DIA_OK) assert_int_equal(cst, DIA_ERR_BACKEND);
    dia_model_free(m);
    dia_options_free(o);
    dia_options_free(NULL);
    dia_model_free(NULL);
    dia_encoder_state_free(NULL);
    dia_decoder_state_free(NULL);
    dia_kvcache_free(NULL);
    dia_codes_free(NULL);
    dia_gen_params_free(NULL);
    assert_string_equal(dia_status_string(DIA_OK), "ok");
    assert_string_equal(dia_version_string(), DIA_VERSION_STRING);
    assert_int_equal(dia_abi_version(), DIA_ABI_VERSION);
    int64_t v;
    assert_int_equal(dia_model_info(NULL, "channels", &v), DIA_ERR_INVALID_ARG);
    dia_encoder_state *e = NULL;
    assert_int_equal(dia_encode(NULL, NULL, 1, 0, &e), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_decoder_step(NULL, NULL), DIA_ERR_INVALID_ARG);
}

/* Cache semantics: prefill fills 0..T-1, a step writes at the index, per-row lengths, overflow
 * writes nothing, truncate; and the values stored are the K/V of those positions. */
static void test_kvcache(void **state) {
    (void)state;
    dia_model *m = NULL;
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", NULL, &m), DIA_OK);
    int64_t chan, bos, kvh, hd, maxf;
    assert_int_equal(dia_model_info(m, "channels", &chan), DIA_OK);
    assert_int_equal(dia_model_info(m, "bos", &bos), DIA_OK);
    assert_int_equal(dia_model_info(m, "kv_heads", &kvh), DIA_OK);
    assert_int_equal(dia_model_info(m, "head_dim", &hd), DIA_OK);
    assert_int_equal(dia_model_info(m, "max_frames", &maxf), DIA_OK);
    int64_t d8;
    assert_int_equal(dia_model_info(m, "delay.8", &d8), DIA_OK);
    assert_int_equal(d8, 15);
    assert_int_equal(dia_model_info(m, "delay.9", &d8), DIA_ERR_INVALID_ARG);
    dia_kvcache *c = NULL;
    assert_int_equal(dia_kvcache_new(m, 1, 0, &c), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_kvcache_new(m, 1, (int)maxf + 1, &c), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_kvcache_new(m, 0, 8, &c), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_kvcache_new(m, 1, 8, &c), DIA_OK);
    const char *text = "[S1] hi.";
    dia_encoder_state *enc = NULL, *enc2 = NULL;
    assert_int_equal(dia_encode(m, &text, 1, 0, &enc), DIA_OK);
    const char *two[2] = {text, text};
    assert_int_equal(dia_encode(m, two, 2, 0, &enc2), DIA_OK);
    dia_decoder_state *d = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc2, c, &d), DIA_ERR_INVALID_ARG); /* batch mismatch */
    assert_int_equal(dia_decoder_state_new(m, enc, c, &d), DIA_OK);
    int32_t tok[8 * 9];
    for (int i = 0; i < 8 * 9; i++) tok[i] = (i * 37) % 1024;
    int len, cap;
    assert_int_equal(dia_kvcache_capacity(c, &cap), DIA_OK);
    assert_int_equal(cap, 8);
    assert_int_equal(dia_decoder_prefill(d, tok, 5, NULL), DIA_OK);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(dia_kvcache_length(c, r, &len), DIA_OK);
        assert_int_equal(len, 5);
    }
    const size_t per = (size_t)(kvh * hd);
    float *k5 = calloc(per * 8, sizeof(float)), *k7 = calloc(per * 8, sizeof(float));
    assert_int_equal(dia_kvcache_read(c, 1, 0, 1, k5, per * 5), DIA_OK);
    assert_int_equal(dia_kvcache_read(c, 1, 0, 1, k5, per * 5 - 1), DIA_ERR_CAPACITY);
    assert_int_equal(dia_decoder_step(d, tok + 5 * 9), DIA_OK);
    assert_int_equal(dia_decoder_step(d, tok + 6 * 9), DIA_OK);
    assert_int_equal(dia_kvcache_length(c, 0, &len), DIA_OK);
    assert_int_equal(len, 7);
    assert_int_equal(dia_kvcache_read(c, 1, 0, 1, k7, per * 7), DIA_OK);
    /* positions 0..4 unchanged by the steps (k7 is [heads, 7, hd], k5 [heads, 5, hd]) */
    for (int64_t h = 0; h < kvh; h++)
        assert_memory_equal(k7 + h * 7 * hd, k5 + h * 5 * hd, (size_t)(5 * hd) * sizeof(float));
    /* overflow: 2 more positions do not fit in 8 -> error, nothing written */
    assert_int_equal(dia_decoder_prefill(d, tok, 2, NULL), DIA_ERR_CAPACITY);
    assert_int_equal(dia_kvcache_length(c, 1, &len), DIA_OK);
    assert_int_equal(len, 7);
    /* truncate to 5 and redo the steps: the same keys */
    assert_int_equal(dia_kvcache_truncate(c, 5), DIA_OK);
    assert_int_equal(dia_kvcache_truncate(c, -1), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_decoder_prefill(d, tok + 5 * 9, 2, NULL), DIA_OK);
    float *again = calloc(per * 8, sizeof(float));
    assert_int_equal(dia_kvcache_read(c, 1, 0, 1, again, per * 7), DIA_OK);
    assert_close(again, k7, per * 7, 1e-6);
    /* invalid token */
    int32_t badtok[9] = {0, 0, 0, 0, 5000, 0, 0, 0, 0};
    assert_int_equal(dia_decoder_step(d, badtok), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_kvcache_reset(c), DIA_OK);
    assert_int_equal(dia_kvcache_length(c, 1, &len), DIA_OK);
    assert_int_equal(len, 0);
    assert_int_equal(dia_kvcache_length(c, 2, &len), DIA_ERR_INVALID_ARG);
    free(again);
    free(k5);
    free(k7);
    dia_decoder_state_free(d);
    dia_encoder_state_free(enc);
    dia_encoder_state_free(enc2);
    dia_kvcache_free(c);
    /* text too long, unless truncation is asked for */
    char longtext[200];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    const char *lt = longtext;
    assert_int_equal(dia_encode(m, &lt, 1, 0, &enc), DIA_ERR_TEXT_TOO_LONG);
    assert_int_equal(dia_encode(m, &lt, 1, DIA_ENCODE_TRUNCATE, &enc), DIA_OK);
    assert_int_equal(dia_encoder_state_length(enc, 0, &len), DIA_OK);
    assert_int_equal(len, 128);
    dia_encoder_state_free(enc);
    const char *empty = "";
    assert_int_equal(dia_encode(m, &empty, 1, 0, &enc), DIA_ERR_INVALID_ARG);
    dia_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_parser), cmocka_unit_test(test_model_strict),
        cmocka_unit_test(test_sharded_index_errors), cmocka_unit_test(test_options_and_nulls),
        cmocka_unit_test(test_kvcache),
    };
    return cmocka_run_group_tests_name("loader", tests, setup, teardown);
}
