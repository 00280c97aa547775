/* test_util.h - shared helpers for the cmocka tests: fixture paths and golden tensors. */
#ifndef DIA_TEST_UTIL_H
#define DIA_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dia.h"
#include "safetensors.h"

#define FIXTURES "tests/fixtures/tiny"

/* The golden tensors of tests/fixtures/tiny/golden.safetensors (opened once per test binary). */
static st_archive g_golden;
static int g_golden_open;

static inline const st_tensor *golden(const char *name) {
    if (!g_golden_open) {
        dia_status st = st_open_file(FIXTURES "/golden.safetensors", &g_golden);
        if (st != DIA_OK) fail_msg("cannot open golden.safetensors: %s", dia_status_string(st));
        g_golden_open = 1;
    }
    const st_tensor *t = st_find(&g_golden, name);
    if (!t) fail_msg("golden tensor %s missing", name);
    return t;
}

static inline const float *golden_f32(const char *name, size_t *n) {
    const st_tensor *t = golden(name);
    assert_int_equal(t->dtype, DIA_F32);
    if (n) *n = t->nbytes / 4;
    return (const float *)t->data;
}

static inline const int32_t *golden_i32(const char *name, size_t *n) {
    const st_tensor *t = golden(name);
    assert_int_equal(t->dtype, DIA_I32);
    if (n) *n = t->nbytes / 4;
    return (const int32_t *)t->data;
}

/* max |a - b| over n floats */
static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

#define assert_close(a, b, n, tol)                                                              \
    do {                                                                                        \
        double _d = max_abs_diff((a), (b), (n));                                                \
        if (!(_d <= (tol))) fail_msg("max |diff| %.3g above tolerance %.3g", _d, (double)(tol)); \
    } while (0)

/* dia_generate's debug line of a pipelined run: how many steps it launched again after an EOS (-1:
 * none seen since reset; install with dia_set_log_callback and DIA_LOG_DEBUG). */
static int g_relaunched = -1;
static inline void count_relaunches(dia_log_level level, const char *msg, void *user) {
    (void)level, (void)user;
    int steps, again;
    if (sscanf(msg, "generate: %d steps pipelined, %d launched again", &steps, &again) == 2) g_relaunched = again;
}

/* Write `len` bytes of data to the file at path (created or truncated). */
static inline void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

#endif
