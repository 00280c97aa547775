/* test_model.c - golden tests of the Dia transformer on the tiny fixtures: tokenizer, encoder
 * output, teacher-forced logits (one prefill, and prefill + single steps), in every layout. */
#include <pthread.h>

#include "test_util.h"

static const char *TEXT0 = "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).";
static const char *TEXT1 = "[S1] Second voice, caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x94 UTF-8 bytes.";

#define C 9
#define V 1028
#define TF_T 24

static dia_model *load(const char *dir) {
    dia_model *m = NULL;
    char path[256];
    snprintf(path, sizeof path, FIXTURES "/%s", dir);
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "threads", "2"), DIA_OK);
    dia_status st = dia_model_load(path, o, &m);
    dia_options_free(o);
    if (st != DIA_OK) fail_msg("load %s: %s (%s)", dir, dia_status_string(st), dia_last_error());
    return m;
}

static void test_tokenize(void **state) {
    (void)state;
    const char *texts[2] = {TEXT0, TEXT1};
    const char *names[2] = {"text0.ids", "text1.ids"};
    for (int i = 0; i < 2; i++) {
        size_t n = 0, len = 0;
        const int32_t *want = golden_i32(names[i], &n);
        assert_int_equal(dia_tokenize(texts[i], NULL, 0, &len), DIA_OK);
        assert_int_equal(len, n);
        int32_t *ids = calloc(len, sizeof(int32_t));
        assert_int_equal(dia_tokenize(texts[i], ids, len, &len), DIA_OK);
        assert_memory_equal(ids, want, n * 4);
        free(ids);
    }
    assert_int_equal(dia_tokenize(NULL, NULL, 0, NULL), DIA_ERR_INVALID_ARG);
}

static void check_encoder(dia_model *m) {
    const char *texts[2] = {TEXT0, TEXT1};
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, texts, 2, 0, &enc), DIA_OK); /* a batch of two different lengths */
    const char *names[2] = {"text0.enc_out", "text1.enc_out"};
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        const float *want = golden_f32(names[i], &n);
        float *got = calloc(n, sizeof(float));
        int len = 0;
        assert_int_equal(dia_encoder_state_length(enc, i, &len), DIA_OK);
        assert_int_equal((size_t)len * 2 * 64, n);
        assert_int_equal(dia_encoder_state_output(enc, i, got, n), DIA_OK);
        assert_close(got, want, n, 1e-4);
        assert_int_equal(dia_encoder_state_output(enc, i, got, n - 1), DIA_ERR_CAPACITY);
        free(got);
    }
    dia_encoder_state_free(enc);
}

/* logits of text0.tf_tokens: [2, 24, 9, 1028] from one prefill, and from prefill(k) + steps */
static void check_tf_logits(dia_model *m, double tol) {
    size_t n = 0;
    const float *want = golden_f32("text0.tf_logits", &n);
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    assert_int_equal(n, 2 * TF_T * C * V);
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, &TEXT0, 1, 0, &enc), DIA_OK);
    dia_kvcache *cache = NULL;
    assert_int_equal(dia_kvcache_new(m, 1, 32, &cache), DIA_OK);
    dia_decoder_state *dec = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
    float *got = calloc(n, sizeof(float));
    assert_int_equal(dia_decoder_prefill(dec, tok, TF_T, got), DIA_OK);
    assert_close(got, want, n, tol);
    int len = 0;
    assert_int_equal(dia_kvcache_length(cache, 1, &len), DIA_OK);
    assert_int_equal(len, TF_T);

    /* causal: prefill k positions then single steps, position by position */
    const int k = 7;
    float *step = calloc(2 * C * V, sizeof(float));
    assert_int_equal(dia_kvcache_reset(cache), DIA_OK);
    assert_int_equal(dia_decoder_prefill(dec, tok, k, got), DIA_OK);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < k; t++)
            assert_close(got + ((size_t)r * k + t) * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V, tol);
    for (int t = k; t < TF_T; t++) {
        assert_int_equal(dia_decoder_step(dec, tok + t * C), DIA_OK);
        assert_int_equal(dia_decoder_logits(dec, step, 2 * C * V), DIA_OK);
        for (int r = 0; r < 2; r++) assert_close(step + (size_t)r * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V, tol);
    }
    /* truncate and redo the last 4 positions: same logits */
    assert_int_equal(dia_kvcache_truncate(cache, TF_T - 4), DIA_OK);
    assert_int_equal(dia_decoder_prefill(dec, tok + (TF_T - 4) * C, 4, got), DIA_OK);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 4; t++)
            assert_close(got + ((size_t)r * 4 + t) * C * V, want + ((size_t)r * TF_T + TF_T - 4 + t) * C * V, C * V, tol);
    free(step);
    free(got);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
}

static void test_hf_f32(void **state) {
    (void)state;
    dia_model *m = load("dia-hf");
    check_encoder(m);
    check_tf_logits(m, 1e-4);
    dia_model_free(m);
}

static void test_nari_f32(void **state) {
    (void)state;
    dia_model *m = load("dia-nari");
    check_encoder(m);
    check_tf_logits(m, 1e-4);
    dia_model_free(m);
}

/* bf16 weights, sharded: the weights themselves are rounded to bf16 (relative error 2^-9), so the
 * logits differ from the f32 model's by more than float error. Measured max |diff| is ~2e-2 on
 * logits of magnitude ~1; the stated tolerance is 5e-2. */
static void test_hf_bf16_sharded(void **state) {
    (void)state;
    dia_model *m = load("dia-hf-bf16-sharded");
    int64_t v = 0;
    assert_int_equal(dia_model_info(m, "decoder_layers", &v), DIA_OK);
    assert_int_equal(v, 2);
    check_tf_logits(m, 5e-2);
    dia_model_free(m);
}

/* Batch of two items gives the same logits per item as each alone. */
static void test_batch_equals_single(void **state) {
    (void)state;
    dia_model *m = load("dia-hf");
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    size_t n = 0;
    const float *want = golden_f32("text0.tf_logits", &n);
    const char *texts[2] = {TEXT1, TEXT0};
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, texts, 2, 0, &enc), DIA_OK);
    dia_kvcache *cache = NULL;
    assert_int_equal(dia_kvcache_new(m, 2, TF_T, &cache), DIA_OK);
    dia_decoder_state *dec = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
    int32_t *tok2 = calloc(2 * TF_T * C, sizeof(int32_t));
    memcpy(tok2, tok, TF_T * C * 4);
    memcpy(tok2 + TF_T * C, tok, TF_T * C * 4);
    float *got = calloc(4 * TF_T * C * V, sizeof(float));
    assert_int_equal(dia_decoder_prefill(dec, tok2, TF_T, got), DIA_OK);
    /* rows 2, 3 are item 1 = TEXT0 */
    assert_close(got + 2 * TF_T * C * V, want, n, 1e-4);
    /* full cache: one more step is a capacity error and writes nothing */
    assert_int_equal(dia_decoder_step(dec, tok2), DIA_ERR_CAPACITY);
    int len = 0;
    assert_int_equal(dia_kvcache_length(cache, 3, &len), DIA_OK);
    assert_int_equal(len, TF_T);
    free(got);
    free(tok2);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    dia_model_free(m);
}

/* One model used by several threads at once (dia.h: a model is read-only after loading): each
 * thread runs its own encoder/cache/decoder through the teacher-forced sequence. The bf16 model
 * also exercises the converted-weight GEMM path (encoder and prefill). */
typedef struct {
    dia_model *m;
    double tol, worst;
    int ok;
} thread_job;

static void *thread_run(void *arg) {
    thread_job *j = arg;
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    size_t n = 0;
    const float *want = golden_f32("text0.tf_logits", &n);
    dia_encoder_state *enc = NULL;
    dia_kvcache *cache = NULL;
    dia_decoder_state *dec = NULL;
    float *got = calloc(n, sizeof(float));
    j->ok = got && dia_encode(j->m, &TEXT0, 1, 0, &enc) == DIA_OK && dia_kvcache_new(j->m, 1, TF_T, &cache) == DIA_OK &&
            dia_decoder_state_new(j->m, enc, cache, &dec) == DIA_OK;
    for (int rep = 0; j->ok && rep < 3; rep++) {
        j->ok = dia_kvcache_reset(cache) == DIA_OK && dia_decoder_prefill(dec, tok, TF_T, got) == DIA_OK;
        const double d = j->ok ? max_abs_diff(got, want, n) : 1e9;
        if (d > j->worst) j->worst = d;
    }
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    free(got);
    return NULL;
}

static void test_shared_model_threads(void **state) {
    (void)state;
    golden("text0.tf_tokens"); /* open the goldens before the threads start */
    const char *dirs[2] = {"dia-hf", "dia-hf-bf16-sharded"};
    const double tols[2] = {1e-4, 5e-2};
    for (int d = 0; d < 2; d++) {
        dia_model *m = load(dirs[d]);
        thread_job jobs[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            jobs[i] = (thread_job){m, tols[d], 0, 0};
            assert_int_equal(pthread_create(&th[i], NULL, thread_run, &jobs[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            assert_true(jobs[i].ok);
            if (!(jobs[i].worst <= tols[d])) fail_msg("%s thread %d: max |diff| %g", dirs[d], i, jobs[i].worst);
        }
        dia_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_hf_f32),
        cmocka_unit_test(test_nari_f32),
        cmocka_unit_test(test_hf_bf16_sharded),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_shared_model_threads),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
