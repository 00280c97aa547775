/* bench_util.h - what every benchmark program shares: a monotonic clock and a CHECK that ends the
 * program (exit status 1) with the failing call, its status and libdia's last error. Benchmarks
 * only: the library itself never exits. */
#ifndef DIA_BENCH_UTIL_H
#define DIA_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dia.h"

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHECK(call)                                                                                      \
    do {                                                                                                 \
        dia_status st_ = (call);                                                                         \
        if (st_ != DIA_OK) {                                                                             \
            fprintf(stderr, "%s: %s failed: %s: %s\n", __FILE__, #call, dia_status_string(st_), dia_last_error()); \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

#endif
