/* test_pipeline.c - dia_generate's pipelined loop on the CPU: the CPU backend wrapped with a device
 * style sampler (the `sample` slot, feeding the next step's tokens forward) and asynchronous
 * downloads, so that CI (no GPU) runs the loop that launches step s + 1 before it has taken step
 * s's codes. The codes must equal the synchronous loop's with the same sampler, with and without
 * prompts, at the max_tokens limit and with EOS sampled mid-run (the step after it launched again). */
#include "test_util.h"

#include "backend.h"
#include "model.h"
#include "sampler.h"

static const char *TEXTS[2] = {"[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).",
                               "[S1] Second voice, caf\xc3\xa9 cr\xc3\xa8me."};

static const dia_backend_ops *g_cpu;      /* the CPU backend's own slots */
static dia_backend_ops g_sync, g_async;   /* + sample; + sample and the asynchronous downloads */
static int g_eos_row[2] = {-1, -1};       /* per item: the grid row whose channel 0 gets EOS on top */

/* The sample slot on the host: lib/sampler.c per item (as the device sampler must be), then the
 * fed-forward tokens. Item b's EOS logits of channel 0 get +100 at row g_eos_row[b]. */
static dia_status w_sample(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *a) {
    const size_t nl = (size_t)2 * a->B * a->C * a->V;
    float *lg = malloc(nl * sizeof(float)), *scratch = malloc((size_t)a->V * sizeof(float));
    int32_t *pick = malloc((size_t)a->B * a->C * sizeof(int32_t));
    assert_non_null(lg), assert_non_null(scratch), assert_non_null(pick);
    assert_int_equal(g_cpu->download(be, logits->buf, logits->offset, lg, nl * sizeof(float)), DIA_OK);
    dia_gen_params p;
    dia_gen_params_defaults(&p);
    p.cfg_scale = a->cfg_scale, p.temperature = a->temperature, p.top_p = a->top_p, p.top_k = a->top_k, p.seed = a->seed;
    for (int b = 0; b < a->B; b++) {
        float *uncond = lg + (size_t)(2 * b) * a->C * a->V, *cond = uncond + (size_t)a->C * a->V;
        if (b < 2 && (int64_t)a->step == g_eos_row[b]) uncond[a->eos] += 100.0f, cond[a->eos] += 100.0f;
        assert_int_equal(dia_sampler_pick(&p, cond, uncond, a->C, a->V, a->eos, (uint64_t)b, a->step, scratch,
                                          pick + (size_t)b * a->C),
                         DIA_OK);
    }
    const size_t nc = (size_t)a->B * a->C * sizeof(int32_t);
    assert_int_equal(g_cpu->upload(be, codes->buf, codes->offset, pick, nc), DIA_OK);
    if (a->feed) {
        int32_t *force = malloc(nc), *feed = malloc(2 * nc);
        assert_non_null(force), assert_non_null(feed);
        assert_int_equal(g_cpu->download(be, a->force->buf, a->force->offset, force, nc), DIA_OK);
        for (int i = 0; i < a->B * a->C; i++) {
            const int b = i / a->C, c = i % a->C;
            feed[(size_t)(2 * b) * a->C + c] = feed[(size_t)(2 * b + 1) * a->C + c] = force[i] >= 0 ? force[i] : pick[i];
        }
        assert_int_equal(g_cpu->upload(be, a->feed->buf, a->feed->offset, feed, 2 * nc), DIA_OK);
        free(force);
        free(feed);
    }
    free(lg);
    free(scratch);
    free(pick);
    return DIA_OK;
}

/* Asynchronous downloads, CPU style: the ops before have run, so the copy happens at the start. */
struct dia_async {
    void *host;
    size_t bytes;
};
static dia_status w_async_new(dia_backend *be, size_t bytes, dia_async **out) {
    (void)be;
    dia_async *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->host = malloc(bytes ? bytes : 1), a->bytes = bytes;
    assert_non_null(a->host);
    *out = a;
    return DIA_OK;
}
static void w_async_free(dia_backend *be, dia_async *a) {
    (void)be;
    if (a) free(a->host);
    free(a);
}
static dia_status w_download_start(dia_backend *be, const dia_buffer *src, size_t off, size_t bytes, dia_async *a) {
    assert_true(bytes <= a->bytes);
    return g_cpu->download(be, src, off, a->host, bytes);
}
static dia_status w_download_wait(dia_backend *be, dia_async *a, void *dst, size_t bytes) {
    (void)be;
    assert_true(bytes <= a->bytes);
    memcpy(dst, a->host, bytes);
    return DIA_OK;
}

/* dia_generate on m with the given slots; returns the codes, *again: steps launched again (-1: the
 * synchronous loop ran). */
static dia_codes *run(dia_model *m, const dia_backend_ops *ops, const dia_gen_params *p, const int32_t *const *prompts,
                      const int *pframes, int *again) {
    dia_codes *codes = NULL;
    m->be->ops = ops;
    g_relaunched = -1;
    const dia_status st = dia_generate(m, p, 2, TEXTS, prompts, pframes, NULL, NULL, &codes);
    m->be->ops = g_cpu;
    if (st != DIA_OK) fail_msg("dia_generate: %s", dia_last_error());
    *again = g_relaunched;
    return codes;
}

static void test_pipelined_equals_synchronous(void **state) {
    (void)state;
    dia_model *m = NULL;
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", NULL, &m), DIA_OK);
    g_cpu = m->be->ops;
    assert_null(g_cpu->sample); /* the CPU samples on the host: the wrapper adds the slots */
    g_sync = *g_cpu, g_sync.sample = w_sample;
    g_async = g_sync;
    g_async.async_new = w_async_new, g_async.async_free = w_async_free;
    g_async.download_start = w_download_start, g_async.download_wait = w_download_wait;
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "temperature", 1.2), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 48), DIA_OK);
    const int32_t *prompt = golden_i32("text0.greedy_codes", NULL);
    const int32_t *prompts[2] = {prompt, NULL};
    const int pframes[2] = {5, 0};
    dia_set_log_callback(count_relaunches, NULL);
    dia_set_log_level(DIA_LOG_DEBUG);
    /* EOS rows: none (only the max_tokens countdown, predicted: nothing launched again); item 1
     * at row 20; both items (item 0 after its 5-frame prompt) */
    const int eos_rows[3][2] = {{-1, -1}, {-1, 20}, {17, 12}};
    for (int run_i = 0; run_i < 3; run_i++) {
        for (int withp = 0; withp < 2; withp++) {
            g_eos_row[0] = eos_rows[run_i][0], g_eos_row[1] = eos_rows[run_i][1];
            assert_int_equal(dia_gen_params_set(p, "seed", 3 + run_i + withp), DIA_OK);
            int again_s, again_a;
            dia_codes *s = run(m, &g_sync, p, withp ? prompts : NULL, withp ? pframes : NULL, &again_s);
            dia_codes *a = run(m, &g_async, p, withp ? prompts : NULL, withp ? pframes : NULL, &again_a);
            assert_int_equal(again_s, -1); /* the synchronous loop logs no pipeline line */
            for (int i = 0; i < 2; i++) {
                assert_int_equal(dia_codes_frames(a, i), dia_codes_frames(s, i));
                assert_memory_equal(dia_codes_data(a, i), dia_codes_data(s, i), (size_t)dia_codes_frames(a, i) * 9 * 4);
            }
            printf("  pipelined == synchronous (EOS rows %d, %d; %s): %d and %d frames, %d steps launched again\n",
                   g_eos_row[0], g_eos_row[1], withp ? "prompt of 5 frames" : "no prompt", dia_codes_frames(a, 0),
                   dia_codes_frames(a, 1), again_a);
            /* frames at the limit: 48 - 15 - 1, less the prompt's */
            const int full0 = 32 - (withp ? 5 : 0), full1 = 32;
            if (run_i == 0) {
                assert_int_equal(again_a, 0);
                assert_int_equal(dia_codes_frames(a, 0), full0);
                assert_int_equal(dia_codes_frames(a, 1), full1);
            } else { /* each EOS makes the row after it differ from the fed one */
                const int ends = (g_eos_row[0] >= 0) + (g_eos_row[1] >= 0);
                assert_int_equal(again_a, ends);
                assert_true(dia_codes_frames(a, 1) < full1);
                if (g_eos_row[0] >= 0) assert_true(dia_codes_frames(a, 0) < full0);
            }
            dia_codes_free(s);
            dia_codes_free(a);
        }
    }
    dia_set_log_callback(NULL, NULL);
    dia_set_log_level(DIA_LOG_ERROR);
    dia_gen_params_free(p);
    dia_model_free(m);
}

int main(void) {
    dia_set_log_level(DIA_LOG_ERROR);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pipelined_equals_synchronous)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
