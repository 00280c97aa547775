/* cpu_backend.h - private interface of the CPU backend (kernels/cpu). */
#ifndef DIA_CPU_BACKEND_H
#define DIA_CPU_BACKEND_H

#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "half.h"

struct dia_buffer {
    void *data;
    size_t size;
    int owned; /* 0: wraps caller memory (an mmap of weights) */
};

typedef struct cpu_ctx {
    int threads; /* the only state: ops keep no scratch here, so one backend (one model) serves
                    any number of threads at once */
} cpu_ctx;

static inline int cpu_threads(const dia_backend *be) { return ((const cpu_ctx *)be->ctx)->threads; }
/* Threads for a loop of `work` elements: 1 below 256k (waking the pool, and its spinning afterwards, costs more). */
static inline int cpu_par(const dia_backend *be, int64_t work) { return work < (1 << 18) ? 1 : cpu_threads(be); }

/* Pointer to the first element of a tensor view. */
static inline void *cpu_ptr(const dia_tensor *t) { return (char *)t->buf->data + t->offset; }

/* Element i of a float tensor of any float dtype, as f32. */
static inline float cpu_load(const void *base, dia_dtype dt, int64_t i) {
    switch (dt) {
    case DIA_F32: return ((const float *)base)[i];
    case DIA_BF16: return dia_bf16_to_f32(((const uint16_t *)base)[i]);
    case DIA_F16: return dia_f16_to_f32(((const uint16_t *)base)[i]);
    default: return 0.0f;
    }
}

/* Convert n elements of a float tensor (any float dtype) starting at element `first` to f32. */
void cpu_to_f32(float *dst, const void *src, dia_dtype dt, int64_t first, int64_t n);

/* op implementations, one file per family */
dia_status cpu_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                      int accumulate);
dia_status cpu_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps);
dia_status cpu_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta);
dia_status cpu_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok);
dia_status cpu_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h);
dia_status cpu_add(dia_backend *be, dia_tensor *y, const dia_tensor *x);
dia_status cpu_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start);
dia_status cpu_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                         const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos);
/* DAC codec ops (cpu_dac.c) */
dia_status cpu_conv1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, const dia_tensor *b,
                      int stride, int dilation, int pad);
dia_status cpu_conv_transpose1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                                const dia_tensor *b, int stride, int pad);
dia_status cpu_snake(dia_backend *be, dia_tensor *x, const dia_tensor *alpha);
dia_status cpu_tanh(dia_backend *be, dia_tensor *x);
dia_status cpu_codebook_lookup(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes);
dia_status cpu_codebook_nearest(dia_backend *be, dia_tensor *codes, const dia_tensor *x, const dia_tensor *codebook);

#endif
