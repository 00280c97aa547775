/* cli_harness.h - running the `dia` CLI from cmocka tests: $BUILD/bin/dia (build/bin/dia by
 * default), a private temporary directory, the exit status and stderr of each run, and .npy inputs.
 * A test file defines CLI_TEST_NAME (the temporary directory's prefix) before including it. */
#ifndef DIA_CLI_HARNESS_H
#define DIA_CLI_HARNESS_H

#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static char g_dia[512];
static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    const char *build = getenv("BUILD");
    snprintf(g_dia, sizeof g_dia, "%s/bin/dia", build ? build : "build");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/%s_%d", CLI_TEST_NAME, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (g_golden_open) st_close(&g_golden);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run the CLI; returns the exit status; stderr goes to g_tmp/err.txt. */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2> %s/err.txt", g_dia, args, g_tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *read_err(void) {
    static char buf[4096];
    char path[300];
    snprintf(path, sizeof path, "%s/err.txt", g_tmp);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

/* Write a .npy (version 1.0) of `descr` ("<i4" / "<f4") and shape "(a, b)" or "(n,)". */
static void write_npy(const char *file, const char *descr, const char *shape, const void *data, size_t bytes) {
    char path[300], hdr[128];
    snprintf(path, sizeof path, "%s/%s", g_tmp, file);
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + n + 1) % 64) hdr[n++] = ' ';
    hdr[n++] = '\n';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff),
                                   (unsigned char)(n >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)n, f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

#endif
