/* test_cli.c - the `dia` command line contract: greedy codes through `dia generate` equal the
 * goldens (single, prompt, batch with {i}), and errors give a non-zero exit and a message. */
#define CLI_TEST_NAME "dia_cli_test"
#include "cli_harness.h"

/* Compare an int32 [frames, 9] .npy file (header skipped) with a golden tensor. */
static void expect_npy(const char *file, const char *golden_name) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", g_tmp, file);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char pre[10];
    assert_int_equal(fread(pre, 1, 10, f), 10);
    assert_memory_equal(pre, "\x93NUMPY", 6);
    const int hlen = pre[8] | (pre[9] << 8);
    char *hdr = calloc((size_t)hlen + 1, 1);
    assert_int_equal(fread(hdr, 1, (size_t)hlen, f), (size_t)hlen);
    assert_non_null(strstr(hdr, "'descr': '<i4'"));
    size_t n = 0;
    const int32_t *want = golden_i32(golden_name, &n);
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%zu, 9)", n / 9);
    assert_non_null(strstr(hdr, shape));
    int32_t *got = calloc(n + 1, 4);
    assert_int_equal(fread(got, 4, n + 1, f), n); /* exactly n values follow */
    assert_memory_equal(got, want, n * 4);
    free(got);
    free(hdr);
    fclose(f);
}

static const char *GREEDY = "--temperature 0 --max-tokens 128 --cfg-scale 3 --cfg-filter-top-k 45 --quiet";

static void test_generate_single_and_prompt(void **state) {
    (void)state;
    char args[2048];
    snprintf(args, sizeof args,
             "generate --model " FIXTURES "/dia-hf --text '[S1] Hello from a tiny model. [S2] It only speaks noise "
             "(laughs).' %s --codes-out %s/t0.npy",
             GREEDY, g_tmp);
    assert_int_equal(run(args), 0);
    expect_npy("t0.npy", "text0.greedy_codes");
    /* the same text from a file, with a prompt given as .npy */
    size_t n = 0;
    const int32_t *prompt = golden_i32("prompt.codes", &n);
    char path[300];
    write_npy("prompt.npy", "<i4", "(20, 9)", prompt, n * 4);
    snprintf(path, sizeof path, "%s/text0.txt", g_tmp);
    write_file(path, "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).\n", 66);
    snprintf(args, sizeof args,
             "generate --model " FIXTURES "/dia-nari --text-file %s/text0.txt --prompt-codes %s/prompt.npy %s "
             "--codes-out %s/p0.npy",
             g_tmp, g_tmp, GREEDY, g_tmp);
    assert_int_equal(run(args), 0);
    expect_npy("p0.npy", "text0.prompt_greedy_codes");
    /* batch: item 0 without prompt, item 1 with it */
    snprintf(args, sizeof args,
             "generate --model " FIXTURES "/dia-hf --text-file %s/text0.txt --text-file %s/text0.txt "
             "--prompt-codes - --prompt-codes %s/prompt.npy %s --codes-out %s/b{i}.npy",
             g_tmp, g_tmp, g_tmp, GREEDY, g_tmp);
    assert_int_equal(run(args), 0);
    expect_npy("b0.npy", "batch.item0.greedy_codes");
    expect_npy("b1.npy", "batch.item1.greedy_codes");
}

/* Text to WAV end to end, and a voice prompt read from an audio file (its transcript prepended). */
static void test_generate_audio(void **state) {
    (void)state;
    char args[2048], path[300];
    snprintf(args, sizeof args,
             "generate --model " FIXTURES "/dia-hf --dac " FIXTURES "/dac-hf --text '[S1] Hello from a tiny model. "
             "[S2] It only speaks noise (laughs).' %s --codes-out %s/a.npy --out %s/a.wav",
             GREEDY, g_tmp, g_tmp);
    assert_int_equal(run(args), 0);
    expect_npy("a.npy", "text0.greedy_codes");
    /* the WAV holds the DAC decode of those codes: 112 frames x 512 samples at 44.1 kHz, 16-bit */
    snprintf(path, sizeof path, "%s/a.wav", g_tmp);
    float *audio = NULL;
    size_t n = 0;
    assert_int_equal(dia_audio_read(path, 44100, &audio, &n), DIA_OK);
    size_t gn = 0;
    const float *want = golden_f32("text0.greedy_audio", &gn);
    assert_int_equal(n, gn);
    assert_close(audio, want, n, 1.0 / 32768 + 1e-4); /* 16-bit quantisation */
    dia_free(audio);
    /* that WAV as a voice prompt for a new line */
    snprintf(args, sizeof args,
             "generate --model " FIXTURES "/dia-hf --dac " FIXTURES "/dac-hf --audio-prompt %s/a.wav "
             "--prompt-text '[S1] Hello.' --text '[S2] Yes.' --max-tokens 200 --quiet --codes-out %s/v.npy "
             "--out %s/v.wav",
             g_tmp, g_tmp, g_tmp);
    assert_int_equal(run(args), 0);
    snprintf(path, sizeof path, "%s/v.wav", g_tmp);
    assert_int_equal(dia_audio_read(path, 44100, &audio, &n), DIA_OK);
    assert_true(n > 0 && n % 512 == 0);
    dia_free(audio);
    /* --audio-prompt without its transcript, or without --dac, is refused */
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --dac " FIXTURES "/dac-hf --audio-prompt %s/a.wav "
             "--text hi --codes-out %s/x.npy", g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "--prompt-text"));
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --text hi --out %s/x.wav", g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "--dac"));
    /* an unreadable prompt file */
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --dac " FIXTURES "/dac-hf --audio-prompt %s/none.wav "
             "--prompt-text hi --text hi --codes-out %s/x.npy", g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "none.wav"));
}

static void test_generate_errors(void **state) {
    (void)state;
    char args[2048];
    /* negative temperature */
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --text hi --temperature -1 --codes-out %s/x.npy",
             g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "temperature"));
    /* max_tokens beyond the model */
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --text hi --max-tokens 5000 --codes-out %s/x.npy",
             g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "max_tokens"));
    /* missing model directory */
    snprintf(args, sizeof args, "generate --model %s/nope --text hi --codes-out %s/x.npy", g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "nope"));
    /* batch without {i} */
    snprintf(args, sizeof args, "generate --model " FIXTURES "/dia-hf --text a --text b --codes-out %s/x.npy", g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "{i}"));
    /* unknown option and command */
    assert_int_not_equal(run("generate --bogus 1"), 0);
    assert_int_not_equal(run("frobnicate"), 0);
    assert_int_equal(run("--version"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_single_and_prompt),
        cmocka_unit_test(test_generate_audio),
        cmocka_unit_test(test_generate_errors),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
