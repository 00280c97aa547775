/* test_generate.c - generation against the reference: greedy codes (alone, after a prompt, as a
 * batch), the sampler's final distribution, seeded reproducibility, streaming, bad parameters. */
#include "test_util.h"

static const char *TEXT0 = "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).";
static const char *TEXT1 = "[S1] Second voice, caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x94 UTF-8 bytes.";

static dia_model *g_model;

static int setup(void **state) {
    (void)state;
    dia_set_log_level(DIA_LOG_ERROR);
    dia_status st = dia_model_load(FIXTURES "/dia-hf", NULL, &g_model);
    if (st != DIA_OK) fail_msg("load: %s", dia_last_error());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    dia_model_free(g_model);
    return 0;
}

static dia_gen_params *greedy_params(void) {
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "temperature", 0.0), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 128), DIA_OK);
    return p;
}

static void expect_codes(const dia_codes *codes, int item, const char *golden_name) {
    size_t n = 0;
    const int32_t *want = golden_i32(golden_name, &n);
    assert_int_equal((size_t)dia_codes_frames(codes, item) * 9, n);
    assert_memory_equal(dia_codes_data(codes, item), want, n * 4);
}

static void test_greedy_text0_text1(void **state) {
    (void)state;
    dia_gen_params *p = greedy_params();
    const char *names[2] = {"text0.greedy_codes", "text1.greedy_codes"};
    const char *texts[2] = {TEXT0, TEXT1};
    for (int i = 0; i < 2; i++) {
        dia_codes *codes = NULL;
        assert_int_equal(dia_generate(g_model, p, 1, &texts[i], NULL, NULL, NULL, NULL, &codes), DIA_OK);
        assert_int_equal(dia_codes_batch(codes), 1);
        expect_codes(codes, 0, names[i]);
        dia_codes_free(codes);
    }
    dia_gen_params_free(p);
}

static void test_greedy_prompt(void **state) {
    (void)state;
    dia_gen_params *p = greedy_params();
    size_t n = 0;
    const int32_t *prompt = golden_i32("prompt.codes", &n);
    const int frames = (int)(n / 9);
    dia_codes *codes = NULL;
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, &prompt, &frames, NULL, NULL, &codes), DIA_OK);
    expect_codes(codes, 0, "text0.prompt_greedy_codes");
    dia_codes_free(codes);
    dia_gen_params_free(p);
}

static void test_greedy_batch(void **state) {
    (void)state;
    dia_gen_params *p = greedy_params();
    size_t n = 0;
    const int32_t *prompt = golden_i32("prompt.codes", &n);
    const char *texts[2] = {TEXT0, TEXT0};
    const int32_t *prompts[2] = {NULL, prompt};
    const int frames[2] = {0, (int)(n / 9)};
    dia_codes *codes = NULL;
    assert_int_equal(dia_generate(g_model, p, 2, texts, prompts, frames, NULL, NULL, &codes), DIA_OK);
    assert_int_equal(dia_codes_batch(codes), 2);
    expect_codes(codes, 0, "batch.item0.greedy_codes");
    expect_codes(codes, 1, "batch.item1.greedy_codes");
    dia_codes_free(codes);
    dia_gen_params_free(p);
}

/* A batch of 8 (sampling runs in parallel over items): each item equals its golden single run. */
static void test_greedy_batch8(void **state) {
    (void)state;
    dia_gen_params *p = greedy_params();
    size_t n = 0;
    const int32_t *prompt = golden_i32("prompt.codes", &n);
    const char *texts[8];
    const int32_t *prompts[8];
    int frames[8];
    for (int i = 0; i < 8; i++) {
        texts[i] = (i % 3 == 2) ? TEXT1 : TEXT0;
        prompts[i] = (i % 3 == 1) ? prompt : NULL;
        frames[i] = (i % 3 == 1) ? (int)(n / 9) : 0;
    }
    dia_codes *codes = NULL;
    assert_int_equal(dia_generate(g_model, p, 8, texts, prompts, frames, NULL, NULL, &codes), DIA_OK);
    for (int i = 0; i < 8; i++)
        expect_codes(codes, i, i % 3 == 0 ? "text0.greedy_codes" : i % 3 == 1 ? "text0.prompt_greedy_codes"
                                                                              : "text1.greedy_codes");
    dia_codes_free(codes);
    dia_gen_params_free(p);
}

static void test_sampler_probs(void **state) {
    (void)state;
    const float *cond = golden_f32("sampler.cond", NULL), *uncond = golden_f32("sampler.uncond", NULL);
    size_t n = 0;
    const float *want = golden_f32("sampler.probs", &n);
    assert_int_equal(n, 9 * 9 * 1028);
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK); /* defaults: cfg 3, temperature 1.2, top_p 0.95, k 45 */
    float *probs = calloc(9 * 1028, sizeof(float));
    for (int r = 0; r < 9; r++) {
        assert_int_equal(dia_sampler_probs(p, cond + r * 9 * 1028, uncond + r * 9 * 1028, probs), DIA_OK);
        assert_close(probs, want + r * 9 * 1028, 9 * 1028, 1e-5);
    }
    /* the last row has EOS on top of channel 0: EOS is certain */
    assert_true(probs[1024] == 1.0f);
    free(probs);
    dia_gen_params_free(p);
}

typedef struct {
    int count[2];
    int32_t frames[2][128][9];
    int cancel_at;
} stream_rec;

static int on_frame(int item, int frame, const int32_t *codes, void *user) {
    stream_rec *r = user;
    if (frame != r->count[item]) return 1; /* out of order: cancel, the test sees it */
    memcpy(r->frames[item][frame], codes, 9 * 4);
    r->count[item]++;
    return r->cancel_at >= 0 && r->count[0] + r->count[1] >= r->cancel_at;
}

static void test_stream_and_seed(void **state) {
    (void)state;
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 96), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "seed", 42), DIA_OK);
    const char *texts[2] = {TEXT0, TEXT1};
    stream_rec *r1 = calloc(1, sizeof *r1), *r2 = calloc(1, sizeof *r2);
    r1->cancel_at = r2->cancel_at = -1;
    dia_codes *a = NULL, *b = NULL;
    assert_int_equal(dia_generate(g_model, p, 2, texts, NULL, NULL, on_frame, r1, &a), DIA_OK);
    assert_int_equal(dia_generate(g_model, p, 2, texts, NULL, NULL, on_frame, r2, &b), DIA_OK);
    for (int i = 0; i < 2; i++) {
        const int n = dia_codes_frames(a, i);
        assert_true(n > 0);
        assert_int_equal(n, dia_codes_frames(b, i));
        assert_memory_equal(dia_codes_data(a, i), dia_codes_data(b, i), (size_t)n * 9 * 4); /* same seed */
        assert_int_equal(r1->count[i], n);                                                   /* every frame streamed */
        assert_memory_equal(r1->frames[i], dia_codes_data(a, i), (size_t)n * 9 * 4);
    }
    /* another seed gives other codes */
    assert_int_equal(dia_gen_params_set(p, "seed", 43), DIA_OK);
    dia_codes *c = NULL;
    assert_int_equal(dia_generate(g_model, p, 2, texts, NULL, NULL, NULL, NULL, &c), DIA_OK);
    assert_true(dia_codes_frames(c, 0) != dia_codes_frames(a, 0) ||
                memcmp(dia_codes_data(c, 0), dia_codes_data(a, 0), (size_t)dia_codes_frames(a, 0) * 36) != 0);
    /* cancelling from the callback */
    stream_rec *r3 = calloc(1, sizeof *r3);
    r3->cancel_at = 3;
    dia_codes *d = NULL;
    assert_int_equal(dia_generate(g_model, p, 2, texts, NULL, NULL, on_frame, r3, &d), DIA_ERR_CANCELLED);
    assert_null(d);
    dia_codes_free(a);
    dia_codes_free(b);
    dia_codes_free(c);
    free(r1);
    free(r2);
    free(r3);
    dia_gen_params_free(p);
}

static void test_bad_parameters(void **state) {
    (void)state;
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    double v = 0;
    assert_int_equal(dia_gen_params_get(p, "max_tokens", &v), DIA_OK);
    assert_true(v == 3072);
    assert_int_equal(dia_gen_params_get(p, "temperature", &v), DIA_OK);
    assert_true(v == 1.2);
    assert_int_equal(dia_gen_params_set(p, "temperature", -0.5), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "top_p", 0.0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "top_p", 1.5), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "cfg_filter_top_k", 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "cfg_filter_top_k", 2.5), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "no_such_key", 1), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_gen_params_set(p, "cfg_scale", -1), DIA_ERR_INVALID_ARG);
    dia_codes *codes = (dia_codes *)(uintptr_t)1;
    /* max_tokens beyond the model's 256 frames (default 3072) */
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, NULL, NULL, NULL, NULL, &codes), DIA_ERR_INVALID_ARG);
    assert_null(codes);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 64), DIA_OK);
    /* a prompt that does not fit before the max_tokens limit */
    size_t n = 0;
    const int32_t *prompt = golden_i32("prompt.codes", &n);
    int32_t *longp = calloc(60 * 9, sizeof(int32_t));
    int frames = 60;
    const int32_t *pp = longp;
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, &pp, &frames, NULL, NULL, &codes), DIA_ERR_INVALID_ARG);
    /* codes out of range in a prompt */
    memcpy(longp, prompt, n * 4);
    longp[5] = 1024;
    frames = 20;
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, &pp, &frames, NULL, NULL, &codes), DIA_ERR_BAD_AUDIO);
    longp[5] = -3;
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, &pp, &frames, NULL, NULL, &codes), DIA_ERR_BAD_AUDIO);
    /* text longer than the model's text length (128 bytes) */
    char longtext[300];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    const char *lt = longtext;
    assert_int_equal(dia_generate(g_model, p, 1, &lt, NULL, NULL, NULL, NULL, &codes), DIA_ERR_TEXT_TOO_LONG);
    /* NULL and zero sizes */
    assert_int_equal(dia_generate(NULL, p, 1, &TEXT0, NULL, NULL, NULL, NULL, &codes), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_generate(g_model, p, 0, &TEXT0, NULL, NULL, NULL, NULL, &codes), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_generate(g_model, p, 1, &TEXT0, NULL, NULL, NULL, NULL, NULL), DIA_ERR_INVALID_ARG);
    free(longp);
    dia_gen_params_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_text0_text1), cmocka_unit_test(test_greedy_prompt),
        cmocka_unit_test(test_greedy_batch),       cmocka_unit_test(test_greedy_batch8),
        cmocka_unit_test(test_sampler_probs),
        cmocka_unit_test(test_stream_and_seed),    cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests_name("generate", tests, setup, teardown);
}
