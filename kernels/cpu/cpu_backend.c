/* cpu_backend.c - CPU backend: host memory and the op table. */
#include "cpu_backend.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

static void cpu_destroy(dia_backend *be) {
    free(be->ctx);
    free(be);
}

static dia_status cpu_set_threads(dia_backend *be, int threads) {
    if (threads < 0) return dia_fail(DIA_ERR_INVALID_ARG, "threads must be >= 0 (0 = all cores), got %d", threads);
    cpu_ctx *c = be->ctx;
    const int n = threads > 0 ? threads : omp_get_num_procs();
    c->threads = n;
    /* Parallelism comes from our OpenMP loops (cpu_gemm.c); OpenBLAS runs single-threaded so that
     * two thread pools do not fight over the cores. */
    openblas_set_num_threads(1);
    return DIA_OK;
}

static dia_status cpu_alloc(dia_backend *be, size_t bytes, dia_buffer **out) {
    (void)be;
    *out = NULL;
    dia_buffer *b = calloc(1, sizeof *b);
    /* 64-byte aligned, zero-filled (a fresh KV cache reads as zeros) */
    size_t sz = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    /* big buffers (weights of random models, KV caches) on 2 MB pages where the kernel allows it:
     * streaming reads then cross fewer page boundaries (prefetchers stop at 4 kB pages) */
    const size_t huge = (size_t)2 << 20;
    const size_t align = sz >= huge ? huge : 64;
    if (sz >= huge) sz = (sz + huge - 1) & ~(huge - 1);
    if (b && posix_memalign(&p, align, sz ? sz : 64) != 0) p = NULL;
    if (p && sz >= huge) madvise(p, sz, MADV_HUGEPAGE);
    if (!b || !p) {
        free(b);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of host memory", bytes);
    }
    memset(p, 0, sz);
    b->data = p;
    b->size = bytes;
    b->owned = 1;
    *out = b;
    return DIA_OK;
}

static dia_status cpu_wrap_host(dia_backend *be, const void *host, size_t bytes, dia_buffer **out) {
    (void)be;
    dia_buffer *b = calloc(1, sizeof *b);
    if (!b) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    b->data = (void *)host;
    b->size = bytes;
    b->owned = 0;
    *out = b;
    return DIA_OK;
}

static void cpu_buffer_free(dia_backend *be, dia_buffer *b) {
    (void)be;
    if (!b) return;
    if (b->owned) free(b->data);
    free(b);
}

static dia_status cpu_upload(dia_backend *be, dia_buffer *dst, size_t off, const void *src, size_t n) {
    (void)be;
    if (off + n > dst->size) return dia_fail(DIA_ERR_INTERNAL, "upload past the end of a buffer");
    memcpy((char *)dst->data + off, src, n);
    return DIA_OK;
}

static dia_status cpu_download(dia_backend *be, const dia_buffer *src, size_t off, void *dst, size_t n) {
    (void)be;
    if (off + n > src->size) return dia_fail(DIA_ERR_INTERNAL, "download past the end of a buffer");
    memcpy(dst, (const char *)src->data + off, n);
    return DIA_OK;
}

static dia_status cpu_copy(dia_backend *be, dia_buffer *dst, size_t doff, const dia_buffer *src, size_t soff,
                           size_t n) {
    (void)be;
    if (doff + n > dst->size || soff + n > src->size) return dia_fail(DIA_ERR_INTERNAL, "copy past a buffer end");
    memmove((char *)dst->data + doff, (const char *)src->data + soff, n);
    return DIA_OK;
}

static dia_status cpu_sync(dia_backend *be) {
    (void)be;
    return DIA_OK;
}

static const dia_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .wrap_host = cpu_wrap_host,
    .buffer_free = cpu_buffer_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .embed = cpu_embed,
    .silu_mul = cpu_silu_mul,
    .add = cpu_add,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .conv1d = cpu_conv1d,
    .conv_transpose1d = cpu_conv_transpose1d,
    .snake = cpu_snake,
    .tanh_ = cpu_tanh,
    .codebook_lookup = cpu_codebook_lookup,
    .codebook_nearest = cpu_codebook_nearest,
};

dia_status dia_backend_cpu_new(int threads, dia_backend **out) {
    *out = NULL;
    dia_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    be->ops = &cpu_ops;
    be->ctx = c;
    dia_status st = cpu_set_threads(be, threads);
    if (st != DIA_OK) {
        cpu_destroy(be);
        return st;
    }
    *out = be;
    return DIA_OK;
}
