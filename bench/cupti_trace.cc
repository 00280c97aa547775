/* bench/cupti_trace.cc - a kernel timeline for any process, through CUPTI's activity API (the device
 * machine has no Nsight Systems). Built on the device machine and preloaded:
 *
 *   g++ -O2 -shared -fPIC -I/usr/local/cuda/include bench/cupti_trace.cc -o /tmp/libcupti_trace.so \
 *       -L/usr/local/cuda/lib64 -lcupti
 *   CUPTI_TRACE_OUT=/tmp/k.csv LD_PRELOAD=/tmp/libcupti_trace.so ./build-cuda/bench/bench_cuda ...
 *   python3 bench/trace_steps.py /tmp/k.csv
 *
 * Every kernel (also the nodes of replayed CUDA graphs) becomes a CSV line: start and duration in
 * ns (GPU timestamps) and the demangled name; with CUPTI_TRACE_COPIES=1 also every memcpy and
 * memset ("[memcpy HtoD 60 B]"). Not part of the library. */
#include <cupti.h>
#include <cxxabi.h>
#include <stdio.h>
#include <stdlib.h>

static FILE *out;

static void CUPTIAPI buf_request(uint8_t **buf, size_t *size, size_t *max_records) {
    *size = (size_t)16 << 20;
    *buf = (uint8_t *)aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buf_complete(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid) {
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *r = NULL;
    while (cuptiActivityGetNextRecord(buf, valid, &r) == CUPTI_SUCCESS) {
        if (r->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)r;
            static const char *kinds[] = {"?", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH", "PtoP"};
            fprintf(out, "%llu,%llu,\"[memcpy %s %llu B]\"\n", (unsigned long long)m->start,
                    (unsigned long long)(m->end - m->start), m->copyKind < 11 ? kinds[m->copyKind] : "?",
                    (unsigned long long)m->bytes);
            continue;
        }
        if (r->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
            const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)r;
            fprintf(out, "%llu,%llu,\"[memset %llu B]\"\n", (unsigned long long)m->start,
                    (unsigned long long)(m->end - m->start), (unsigned long long)m->bytes);
            continue;
        }
        if (r->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)r;
        int st = 0;
        char *dn = abi::__cxa_demangle(k->name, NULL, NULL, &st);
        const char *n = st == 0 && dn ? dn : k->name;
        fprintf(out, "%llu,%llu,\"", (unsigned long long)k->start, (unsigned long long)(k->end - k->start));
        for (const char *p = n; *p; p++) fputc(*p == '"' ? '\'' : *p, out);
        fputs("\"\n", out);
        free(dn);
    }
    free(buf);
}

static void finish(void) {
    cuptiActivityFlushAll(1);
    if (out) fclose(out);
    out = NULL;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("CUPTI_TRACE_OUT");
    out = fopen(path ? path : "/tmp/cupti_trace.csv", "w");
    if (!out) return;
    fputs("Start (ns),Duration (ns),Name\n", out);
    if (cuptiActivityRegisterCallbacks(buf_request, buf_complete) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS ||
        (getenv("CUPTI_TRACE_COPIES") && (cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY) != CUPTI_SUCCESS ||
                                          cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET) != CUPTI_SUCCESS))) {
        fprintf(stderr, "cupti_trace: CUPTI activity tracing unavailable\n");
        return;
    }
    atexit(finish);
}
