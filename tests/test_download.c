/* test_download.c - `dia download` against a local hub look-alike (tests/hub_server.py on
 * 127.0.0.1): files land in the hub cache layout, sha256 checked, interrupted downloads resume,
 * and --model accepts the hub id afterwards. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static char g_tmp[256], g_dia[512];

static pid_t start_server(int fail_after, int *port) {
    char portfile[300];
    snprintf(portfile, sizeof portfile, "%s/port%d", g_tmp, fail_after);
    unlink(portfile);
    pid_t pid = fork();
    if (pid == 0) {
        char env[64];
        snprintf(env, sizeof env, "HUB_FAIL_AFTER=%d", fail_after);
        putenv(env);
        execlp("python3", "python3", "tests/hub_server.py", portfile, "test-org/dia-tiny=" FIXTURES "/dia-hf-bf16-sharded",
               "test-org/dac-tiny=" FIXTURES "/dac-hf", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* up to 10 s for python to start */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", port) == 1;
            fclose(f);
            if (ok) return pid;
        }
        usleep(100000);
    }
    kill(pid, SIGTERM);
    fail_msg("hub server did not start (python3 missing?)");
    return -1;
}

static void stop_server(pid_t pid) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static int run(const char *args, int port) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "HF_HUB_CACHE=%s/hub HF_ENDPOINT=http://127.0.0.1:%d %s %s 2>%s/err.txt", g_tmp, port,
             g_dia, args, g_tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state) {
    (void)state;
    const char *build = getenv("BUILD");
    snprintf(g_dia, sizeof g_dia, "%s/bin/dia", build ? build : "build");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/dia_download_test_%d", (int)getpid());
    mkdir(g_tmp, 0755);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_download_resume_and_use(void **state) {
    (void)state;
    int port = 0;
    /* a server that cuts every file after 100 kB: the download fails, partial files stay */
    pid_t pid = start_server(100000, &port);
    assert_int_not_equal(run("download test-org/dia-tiny", port), 0);
    stop_server(pid);
    char snap[600], cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s/hub/models--test-org--dia-tiny/blobs/*.incomplete >/dev/null 2>&1", g_tmp);
    assert_int_equal(system(cmd), 0);
    /* a healthy server: the download resumes and completes */
    pid = start_server(0, &port);
    assert_int_equal(run("download test-org/dia-tiny", port), 0);
    assert_int_equal(run("download test-org/dac-tiny", port), 0);
    assert_int_equal(run("download test-org/dac-tiny", port), 0); /* again: nothing to do, still fine */
    assert_int_not_equal(run("download test-org/absent", port), 0);
    assert_int_not_equal(run("download not-a-repo-id", port), 0);
    stop_server(pid);
    snprintf(cmd, sizeof cmd, "ls %s/hub/models--test-org--dia-tiny/blobs/*.incomplete >/dev/null 2>&1", g_tmp);
    assert_int_not_equal(system(cmd), 0);
    /* the snapshot holds byte-identical files */
    snprintf(snap, sizeof snap, "%s/hub/models--test-org--dia-tiny/snapshots", g_tmp);
    snprintf(cmd, sizeof cmd, "for f in " FIXTURES "/dia-hf-bf16-sharded/*; do cmp -s $f %s/*/$(basename $f) || exit 1; done",
             snap);
    assert_int_equal(system(cmd), 0);
    /* --model takes the hub id */
    assert_int_equal(run("generate --model test-org/dia-tiny --text '[S1] hi.' --max-tokens 40 --quiet "
                         "--codes-out /dev/null", port),
                     0);
    assert_int_not_equal(run("generate --model test-org/not-cached --text hi --codes-out /dev/null", port), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_download_resume_and_use)};
    return cmocka_run_group_tests_name("download", tests, setup, teardown);
}
