/* test_cli_dac.c - `dia dac-decode` and `dia dac-encode`: golden codes -> golden audio (.npy and
 * .wav), golden waveform -> golden codes (.npy and .wav input), and errors give a non-zero exit
 * with the library's message. Runs $BUILD/bin/dia (build/bin/dia by default). */
#define CLI_TEST_NAME "dia_cli_dac_test"
#include "cli_harness.h"

/* The data of a .npy file written by the CLI (after its header) into a malloc'd buffer. */
static void *read_npy(const char *file, const char *descr, size_t *bytes) {
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
    assert_non_null(strstr(hdr, descr));
    free(hdr);
    long start = ftell(f);
    fseek(f, 0, SEEK_END);
    *bytes = (size_t)(ftell(f) - start);
    fseek(f, start, SEEK_SET);
    void *p = malloc(*bytes + 1);
    assert_int_equal(fread(p, 1, *bytes, f), *bytes);
    fclose(f);
    return p;
}

static void test_decode(void **state) {
    size_t nc, na;
    const int32_t *codes = golden_i32("text0.greedy_codes", &nc); /* [112, 9] */
    const float *ref = golden_f32("text0.greedy_audio", &na);
    char shape[32], args[1024];
    snprintf(shape, sizeof shape, "(%zu, 9)", nc / 9);
    write_npy("codes.npy", "<i4", shape, codes, nc * 4);
    snprintf(args, sizeof args, "dac-decode --dac " FIXTURES "/dac-hf --codes %s/codes.npy --out %s/audio.npy", g_tmp,
             g_tmp);
    assert_int_equal(run(args), 0);
    size_t bytes;
    float *audio = read_npy("audio.npy", "'<f4'", &bytes);
    assert_int_equal(bytes, na * 4);
    assert_close(audio, ref, na, 1e-4);
    free(audio);
    /* to a float WAV is not the default: 16-bit PCM, so within one quantisation step */
    snprintf(args, sizeof args, "dac-decode --dac " FIXTURES "/dac-wn --codes %s/codes.npy --out %s/audio.wav", g_tmp,
             g_tmp);
    assert_int_equal(run(args), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/audio.wav", g_tmp);
    float *wav = NULL;
    size_t n = 0;
    assert_int_equal(dia_audio_read(path, 44100, &wav, &n), DIA_OK);
    assert_int_equal(n, na);
    assert_close(wav, ref, na, 1e-4 + 1.0 / 32768);
    dia_free(wav);
}

static void test_encode(void **state) {
    size_t nx, nc;
    const float *x = golden_f32("dac.encode_input", &nx);     /* [8192] */
    const int32_t *qn = golden_i32("dac.encode_codes", &nc); /* [9, 16] */
    char shape[32], args[1024];
    snprintf(shape, sizeof shape, "(%zu,)", nx);
    write_npy("input.npy", "<f4", shape, x, nx * 4);
    snprintf(args, sizeof args, "dac-encode --dac " FIXTURES "/dac-hf --in %s/input.npy --codes-out %s/codes.npy",
             g_tmp, g_tmp);
    assert_int_equal(run(args), 0);
    size_t bytes;
    int32_t *codes = read_npy("codes.npy", "'shape': (16, 9)", &bytes);
    assert_int_equal(bytes, nc * 4);
    for (int t = 0; t < 16; t++)
        for (int q = 0; q < 9; q++) assert_int_equal(codes[t * 9 + q], qn[q * 16 + t]);
    free(codes);
    /* from a float WAV file: the same samples, so the same codes */
    char path[300];
    snprintf(path, sizeof path, "%s/input.wav", g_tmp);
    assert_int_equal(dia_audio_write(path, x, nx, 44100, DIA_AUDIO_FLOAT), DIA_OK);
    snprintf(args, sizeof args, "dac-encode --dac " FIXTURES "/dac-wn --in %s --codes-out %s/codes2.npy", path, g_tmp);
    assert_int_equal(run(args), 0);
    codes = read_npy("codes2.npy", "'shape': (16, 9)", &bytes);
    for (int t = 0; t < 16; t++)
        for (int q = 0; q < 9; q++) assert_int_equal(codes[t * 9 + q], qn[q * 16 + t]);
    free(codes);
}

static void test_errors(void **state) {
    char args[1024];
    /* missing options */
    assert_int_not_equal(run("dac-decode --dac " FIXTURES "/dac-hf"), 0);
    assert_non_null(strstr(read_err(), "--codes"));
    assert_int_not_equal(run("dac-encode --dac"), 0);
    assert_int_not_equal(run("dac-encode --bogus 1"), 0);
    assert_non_null(strstr(read_err(), "--bogus"));
    /* a code out of range */
    int32_t bad[2 * 9] = {0};
    bad[9 + 4] = 4096;
    write_npy("bad.npy", "<i4", "(2, 9)", bad, sizeof bad);
    snprintf(args, sizeof args, "dac-decode --dac " FIXTURES "/dac-hf --codes %s/bad.npy --out %s/x.npy", g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "4096"));
    /* wrong number of columns */
    write_npy("bad8.npy", "<i4", "(2, 8)", bad, 16 * 4);
    snprintf(args, sizeof args, "dac-decode --dac " FIXTURES "/dac-hf --codes %s/bad8.npy --out %s/x.npy", g_tmp,
             g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "[2, 8]"));
    /* unknown output format, missing codec, unreadable input audio */
    snprintf(args, sizeof args, "dac-decode --dac " FIXTURES "/dac-hf --codes %s/bad.npy --out %s/x.mp3", g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "x.mp3"));
    snprintf(args, sizeof args, "dac-encode --dac %s/nodac --in %s/in.wav --codes-out %s/x.npy", g_tmp, g_tmp, g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "nodac"));
    snprintf(args, sizeof args, "dac-encode --dac " FIXTURES "/dac-hf --in %s/none.wav --codes-out %s/x.npy", g_tmp,
             g_tmp);
    assert_int_not_equal(run(args), 0);
    assert_non_null(strstr(read_err(), "none.wav"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
