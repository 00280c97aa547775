/* test_audio.c - audio files: WAV / FLAC / OGG write-read round trips, a 48 kHz stereo file read as
 * a 44.1 kHz mono prompt, and clear errors for unreadable, empty and truncated files. */
#include <sndfile.h>
#include <unistd.h>

#include "test_util.h"

#define PI 3.14159265358979323846

static char g_path[256];

/* A unique temporary path with extension `ext`. */
static const char *tmp(const char *name) {
    snprintf(g_path, sizeof g_path, "/tmp/test_audio_%d_%s", (int)getpid(), name);
    return g_path;
}

static float *sine(size_t n, double freq, double rate, double amp) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * freq * (double)i / rate));
    return x;
}

static void roundtrip(const char *name, unsigned flags, double tol) {
    const size_t n = 22050;
    float *x = sine(n, 440.0, 44100.0, 0.5);
    const char *p = tmp(name);
    assert_int_equal(dia_audio_write(p, x, n, 44100, flags), DIA_OK);
    float *y = NULL;
    size_t m = 0;
    assert_int_equal(dia_audio_read(p, 44100, &y, &m), DIA_OK);
    assert_int_equal(m, n);
    printf("  %s round trip: max |diff| %.3g\n", name, max_abs_diff(x, y, n));
    assert_close(x, y, n, tol);
    dia_free(y);
    free(x);
    unlink(p);
}

static void test_wav_pcm16(void **s) { roundtrip("a.wav", 0, 1.0 / 32768 + 1e-6); }
static void test_wav_float(void **s) { roundtrip("b.WAV", DIA_AUDIO_FLOAT, 0.0); }
static void test_flac(void **s) { roundtrip("c.flac", 0, 1.0 / 32768 + 1e-6); }

/* Lossy: the length survives and the waveform is close (correlation with the input). */
static void test_ogg(void **s) {
    const size_t n = 44100;
    float *x = sine(n, 440.0, 44100.0, 0.5);
    const char *p = tmp("d.ogg");
    assert_int_equal(dia_audio_write(p, x, n, 44100, 0), DIA_OK);
    float *y = NULL;
    size_t m = 0;
    assert_int_equal(dia_audio_read(p, 44100, &y, &m), DIA_OK);
    assert_int_equal(m, n);
    double xy = 0, xx = 0, yy = 0;
    for (size_t i = 0; i < n; i++) xy += (double)x[i] * y[i], xx += (double)x[i] * x[i], yy += (double)y[i] * y[i];
    printf("  ogg correlation %.5f\n", xy / sqrt(xx * yy));
    assert_true(xy / sqrt(xx * yy) > 0.99);
    dia_free(y);
    free(x);
    unlink(p);
}

/* A 48 kHz stereo WAV (left: 0.6 sin 440 Hz, right: 0.2 sin 440 Hz) read as 44.1 kHz mono: the
 * average 0.4 sin 440 Hz, of the right length. */
static void test_resample_stereo(void **s) {
    const size_t n = 48000; /* 1 s */
    float *st = malloc(2 * n * sizeof *st);
    for (size_t i = 0; i < n; i++) {
        const double v = sin(2 * PI * 440.0 * (double)i / 48000.0);
        st[2 * i] = (float)(0.6 * v);
        st[2 * i + 1] = (float)(0.2 * v);
    }
    const char *p = tmp("e.wav");
    SF_INFO info = {.samplerate = 48000, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(p, SFM_WRITE, &info);
    assert_non_null(sf);
    assert_int_equal(sf_writef_float(sf, st, (sf_count_t)n), (sf_count_t)n);
    sf_close(sf);
    float *y = NULL;
    size_t m = 0;
    assert_int_equal(dia_audio_read(p, 44100, &y, &m), DIA_OK);
    assert_int_equal(m, 44100);
    double err = 0;
    for (size_t i = 1000; i < m - 1000; i++) { /* away from the edges */
        const double want = 0.4 * sin(2 * PI * 440.0 * (double)i / 44100.0);
        err = fmax(err, fabs(want - y[i]));
    }
    printf("  48 kHz stereo -> 44.1 kHz mono: %zu samples, max |diff| from the ideal sine %.3g\n", m, err);
    assert_true(err < 1e-3);
    dia_free(y);
    /* and down to 16 kHz */
    assert_int_equal(dia_audio_read(p, 16000, &y, &m), DIA_OK);
    assert_int_equal(m, 16000);
    dia_free(y);
    free(st);
    unlink(p);
}

static void expect_read_error(const char *p, dia_status want) {
    float *y = (float *)1;
    size_t m = 7;
    dia_status st = dia_audio_read(p, 44100, &y, &m);
    if (st != want) fail_msg("%s: got %s (%s), expected %s", p, dia_status_string(st), dia_last_error(),
                             dia_status_string(want));
    assert_null(y);
    assert_int_equal(m, 0);
    assert_true(strlen(dia_last_error()) > 0);
    printf("  %s -> %s: %s\n", p, dia_status_string(st), dia_last_error());
}

static void test_read_errors(void **s) {
    expect_read_error(tmp("does-not-exist.wav"), DIA_ERR_IO);
    const char *p = tmp("garbage.wav");
    write_file(p, "this is not audio at all, not even a little bit", 48);
    expect_read_error(p, DIA_ERR_BAD_AUDIO);
    unlink(p);
    p = tmp("empty.wav");
    write_file(p, "", 0);
    expect_read_error(p, DIA_ERR_BAD_AUDIO);
    unlink(p);
    /* a valid WAV header with no samples */
    p = tmp("noframes.wav");
    SF_INFO info = {.samplerate = 44100, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(p, SFM_WRITE, &info);
    assert_non_null(sf);
    sf_close(sf);
    expect_read_error(p, DIA_ERR_BAD_AUDIO);
    unlink(p);
    /* truncated WAV and FLAC: a valid file cut in half */
    const char *names[] = {"trunc.wav", "trunc.flac"};
    for (int k = 0; k < 2; k++) {
        float *x = sine(44100, 300.0, 44100.0, 0.5);
        char path[256];
        snprintf(path, sizeof path, "%s", tmp(names[k]));
        assert_int_equal(dia_audio_write(path, x, 44100, 44100, 0), DIA_OK);
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fclose(f);
        assert_int_equal(truncate(path, len / 2), 0);
        expect_read_error(path, DIA_ERR_BAD_AUDIO);
        unlink(path);
        free(x);
    }
    float *y;
    size_t m;
    assert_int_equal(dia_audio_read(NULL, 44100, &y, &m), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_read(tmp("x.wav"), 0, &y, &m), DIA_ERR_INVALID_ARG);
}

static void test_write_errors(void **s) {
    float x[16] = {0};
    assert_int_equal(dia_audio_write(tmp("a.mp4"), x, 16, 44100, 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write(tmp("noext"), x, 16, 44100, 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write(tmp("a.flac"), x, 16, 44100, DIA_AUDIO_FLOAT), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write(tmp("a.wav"), x, 0, 44100, 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write(tmp("a.wav"), NULL, 16, 44100, 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write(tmp("a.wav"), x, 16, 0, 0), DIA_ERR_INVALID_ARG);
    assert_int_equal(dia_audio_write("/nonexistent-dir/x/a.wav", x, 16, 44100, 0), DIA_ERR_IO);
    /* out-of-range samples are clipped in 16-bit PCM, not wrapped */
    float loud[4] = {2.0f, -3.0f, 0.5f, 1.0f};
    const char *p = tmp("clip.wav");
    assert_int_equal(dia_audio_write(p, loud, 4, 44100, 0), DIA_OK);
    float *y = NULL;
    size_t m = 0;
    assert_int_equal(dia_audio_read(p, 44100, &y, &m), DIA_OK);
    assert_int_equal(m, 4);
    assert_true(y[0] > 0.99f && y[1] < -0.99f && fabsf(y[2] - 0.5f) < 1e-4f);
    dia_free(y);
    unlink(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wav_pcm16),   cmocka_unit_test(test_wav_float),       cmocka_unit_test(test_flac),
        cmocka_unit_test(test_ogg),         cmocka_unit_test(test_resample_stereo), cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
