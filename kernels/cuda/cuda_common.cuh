/* cuda_common.cuh - private definitions shared by the CUDA backend's translation units.
 *
 * One stream per backend; every op is enqueued on it and nothing synchronises except download(),
 * sync() and the few ops that must read device data on the host (codebook_lookup's range check).
 * Every CUDA / cuBLAS error becomes a dia_status through dia_fail(); nothing aborts. */
#ifndef DIA_CUDA_COMMON_CUH
#define DIA_CUDA_COMMON_CUH

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
#include "log.h"
}

struct dia_buffer {
    void *ptr;   /* device memory, or the device's address of pinned host memory (host_mem) */
    size_t size; /* bytes */
    void *host_mem; /* buffer_to_host: the pinned, mapped host allocation (NULL: device memory) */
};

struct cu_graph_state; /* cuda_graph.cu */

enum {
    CU_SCRATCH_ATTN = 0,
    CU_SCRATCH_ACT = 1,
    CU_SCRATCH_W = 2,
    CU_SCRATCH_COL = 3,
    CU_SCRATCH_CNT = 4,
    CU_SCRATCH_STEP = 5, /* the decode-step kernel's activations, attention partials and barrier */
    CU_SCRATCH_N = 6
};

typedef struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int sm_count;
    int cc; /* compute capability, major * 10 + minor (0: unknown) */
    /* grow-only device scratch: attention partials, bf16 copies of activations, f32 weights, im2col
     * columns, attention merge counters (zeroed when allocated) */
    void *scratch[CU_SCRATCH_N];
    size_t scratch_size[CU_SCRATCH_N];
    void *blas_workspace; /* fixed cuBLAS workspace (no allocation inside graph capture) */
    cu_graph_state *graph;
    unsigned scratch_gen; /* bumped whenever a scratch buffer moves */
    /* the decode-step kernel's counters (the first `ds_zero_words` words of its scratch at ds_zero)
     * are known to be zero: each launch leaves them so (cuda_decode_step.cu) */
    void *ds_zero;
    size_t ds_zero_words;
    /* One model (one backend) may serve decoder states on several threads: every vtable entry
     * holds this recursive lock, so an op's kernels (and its use of the shared scratch and graph
     * state) are enqueued on the one stream without interleaving with another thread's. */
    pthread_mutex_t mu;
    int mu_ok;
} cuda_ctx;


static inline cuda_ctx *cu_ctx(dia_backend *be) { return (cuda_ctx *)be->ctx; }

struct cu_lock {
    pthread_mutex_t *m;
    explicit cu_lock(dia_backend *be) : m(&((cuda_ctx *)be->ctx)->mu) { pthread_mutex_lock(m); }
    ~cu_lock() { pthread_mutex_unlock(m); }
    cu_lock(const cu_lock &) = delete;
    cu_lock &operator=(const cu_lock &) = delete;
};

/* Device pointer to the first element of a view. */
static inline void *cu_ptr(const dia_tensor *t) { return (char *)t->buf->ptr + t->offset; }

#define CU_CHECK(call)                                                                                      \
    do {                                                                                                    \
        cudaError_t _e = (call);                                                                            \
        if (_e != cudaSuccess)                                                                              \
            return dia_fail(_e == cudaErrorMemoryAllocation ? DIA_ERR_OUT_OF_MEMORY : DIA_ERR_BACKEND,      \
                            "CUDA: %s failed: %s (%s:%d)", #call, cudaGetErrorString(_e), __FILE__, __LINE__); \
    } while (0)

/* After a kernel launch: a launch error (bad configuration, no device) as a status. */
#define CU_LAUNCHED(what)                                                                                    \
    do {                                                                                                     \
        cudaError_t _e = cudaGetLastError();                                                                 \
        if (_e != cudaSuccess)                                                                               \
            return dia_fail(DIA_ERR_BACKEND, "CUDA: kernel %s failed to launch: %s", what, cudaGetErrorString(_e)); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                               \
    do {                                                                                                 \
        cublasStatus_t _s = (call);                                                                      \
        if (_s != CUBLAS_STATUS_SUCCESS)                                                                 \
            return dia_fail(DIA_ERR_BACKEND, "cuBLAS: %s failed: %s (%s:%d)", #call, cublasGetStatusString(_s), \
                            __FILE__, __LINE__);                                                         \
    } while (0)

/* Grow-only scratch slot `which` to at least `bytes`. */
dia_status cu_scratch(dia_backend *be, int which, size_t bytes, void **out);

/* Graph replay (cuda_graph.cu): every memory call ends the current op segment first. */
dia_status cu_graph_init(dia_backend *be);
dia_status cu_graph_boundary(dia_backend *be);
void cu_graph_invalidate(dia_backend *be);
void cu_graph_destroy(dia_backend *be);
dia_status cu_graph_run(dia_backend *be, uint64_t key, dia_status (*record)(void *ctx), void *ctx);
void cu_graph_release(dia_backend *be, uint64_t key);
int cu_graphs_enabled(dia_backend *be);
/* cuda_sample.cu */
dia_status cu_sample(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *args);
dia_status cu_g_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                       int accumulate);
dia_status cu_g_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps);
dia_status cu_g_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta);
dia_status cu_g_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok);
dia_status cu_g_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h);
dia_status cu_g_add(dia_backend *be, dia_tensor *y, const dia_tensor *x);
dia_status cu_g_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start);
dia_status cu_g_linear(dia_backend *be, const dia_linear_args *a);
dia_status cu_g_rope_kv_store(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                              dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start, float theta);
dia_status cu_g_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                          const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos);

/* ---- programmatic dependent launch (PDL, sm_90) ----
 * Kernels launched with cu_launch() may start while the kernel before them in the stream is still
 * running: everything before cu_pdl_wait() must not read what earlier kernels write (weights only),
 * and cu_pdl_wait() returns once they have completed and their writes are visible. cu_pdl_trigger()
 * lets the next PDL kernel start early (its own pre-wait part, e.g. weight prefetch). Both are no-ops
 * for kernels launched without the attribute. DIA_CUDA_PDL=0 launches everything plainly. */
__device__ __forceinline__ void cu_pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void cu_pdl_trigger(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

int cu_pdl_enabled(void);

/* ---- warp reductions: every lane gets the sum (max) of the 32 lanes' v (butterfly, xor 16 .. 1) ---- */
template <typename T> __device__ __forceinline__ T cu_warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float cu_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* A launch configuration for cudaLaunchKernelEx: the PDL attribute when pdl, blocks in clusters of
 * cluster->x * y * z when cluster is not NULL. attr: room for two attributes, alive until the
 * launch. */
static inline cudaLaunchConfig_t cu_config(dim3 grid, dim3 block, size_t smem, cudaStream_t s, int pdl,
                                           const dim3 *cluster, cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    unsigned n = 0;
    if (pdl) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = cluster->x, attr[n].val.clusterDim.y = cluster->y;
        attr[n++].val.clusterDim.z = cluster->z;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
    return cfg;
}

/* Whether `kernel` can run with the clusters (and dynamic shared memory) of cfg on this device:
 * asked once per kernel, cluster size and shared memory, in one table for the process under its
 * own lock (backends of different models may run on different threads; one device per process in
 * practice); sizes above 8 take the non-portable opt-in. */
int cu_cluster_fits(const void *kernel, const cudaLaunchConfig_t *cfg);

/* kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled. */
template <typename... KArgs, typename... Args>
static cudaError_t cu_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                             Args... args) {
    cudaLaunchAttribute attr[2];
    const cudaLaunchConfig_t cfg = cu_config(grid, block, smem, s, cu_pdl_enabled(), NULL, attr);
    return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

/* Element i of a float tensor of any float dtype, as f32 (device). */
__device__ __forceinline__ float cu_load(const void *base, int dt, int64_t i) {
    switch (dt) {
    case DIA_F32: return ((const float *)base)[i];
    case DIA_BF16: return __bfloat162float(((const __nv_bfloat16 *)base)[i]);
    case DIA_F16: return __half2float(((const __half *)base)[i]);
    default: return 0.0f;
    }
}

/* Four consecutive outputs 4 i .. 4 i + 3 in one 16-byte (f32) or 8-byte (bf16, rounded to
 * nearest even) store. */
__device__ __forceinline__ void cu_store4(float *Y, int64_t i, float4 v) { ((float4 *)Y)[i] = v; }
__device__ __forceinline__ void cu_store4(__nv_bfloat16 *Y, int64_t i, float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 pk;
    pk.x = *(uint32_t *)&lo, pk.y = *(uint32_t *)&hi;
    ((uint2 *)Y)[i] = pk;
}

/* An element from f32 (cache entries, bf16 activations, normed GEMM inputs): as is, or rounded to
 * the nearest bf16 (ties to even). */
__device__ __forceinline__ void cu_put(float *p, float x) { *p = x; }
__device__ __forceinline__ void cu_put(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }

/* RoPE, shared by every kernel that applies it so that their results are bit-identical: the
 * cos / sin of pair j (x[j], x[j + hd/2]) at position pos, in double as the CPU computes them
 * (timescale theta^(2j/hd), the reference's division), and the rotation of one pair. */
__device__ __forceinline__ void cu_rope_cs(double theta, int j, int hd, int pos, double *c, double *s) {
    const double ts = pow(theta, (double)(2 * j) / (double)hd);
    sincos((double)pos / ts, s, c);
}
__device__ __forceinline__ void cu_rope_rot(double c, double s, double x1, double x2, float *y1, float *y2) {
    *y1 = (float)(x1 * c - x2 * s);
    *y2 = (float)(x2 * c + x1 * s);
}

static inline int cu_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static inline int cu_is_float(dia_dtype t) { return t == DIA_F32 || t == DIA_BF16 || t == DIA_F16; }

static inline unsigned cu_blocks(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

/* Convert n elements of a float tensor to f32 / bf16 on the device (stream order). */
dia_status cu_convert_to_f32(dia_backend *be, float *dst, const void *src, dia_dtype src_dt, int64_t n);
dia_status cu_convert_to_bf16(dia_backend *be, __nv_bfloat16 *dst, const void *src, dia_dtype src_dt, int64_t n);

/* op implementations (one file per family) */
dia_status cu_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                     int accumulate);
dia_status cu_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps);
dia_status cu_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta);
dia_status cu_linear(dia_backend *be, const dia_linear_args *a);
/* The decode kernel of cu_linear alone, for arguments it takes (cu_linear_fusable). */
int cu_linear_fusable(const dia_linear_args *a);
int cu_gemv_enabled(void); /* the <= 4-row GEMV: opt-in, DIA_CUDA_GEMV=1 */
dia_status cu_linear_fused(dia_backend *be, const dia_linear_args *a);
/* bf16 input rows (e.g. from cu_rmsnorm_bf16) times a bf16 weight: y[M,N] (+)= xb . W (cuBLAS). */
dia_status cu_matmul_bf16_input(dia_backend *be, dia_tensor *y, const __nv_bfloat16 *xb, int64_t M, int64_t K,
                                 const dia_tensor *w, int trans_w, int accumulate);
/* The batch-decode GEMM (cuda_gemm_rows.cu): y_i (+)= xb . W_i^T for n <= 3 bf16 nn.Linear weights
 * sharing the bf16 input xb [M, K], M <= 128; cu_gemm_rows_ok says whether it takes the shapes
 * (DIA_CUDA_GEMM_ROWS=0: never, cuBLAS instead). */
int cu_gemm_rows_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                    const int *trans_w, dia_tensor *const *y);
dia_status cu_gemm_rows(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                        const dia_tensor *const *w, dia_tensor *const *y, int accumulate);
/* The wgmma batch-decode GEMM (cuda_gemm_wgmma.cu, sm_90a): the same contract for 4 < M <= 128;
 * opt-in (cu_gemm_wgmma_ok is 0 unless DIA_CUDA_GEMM_WG=1 and the device has its sm_90a image). */
int cu_gemm_wgmma_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                     const int *trans_w, dia_tensor *const *y);
dia_status cu_gemm_wgmma(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                         const dia_tensor *const *w, dia_tensor *const *y, int accumulate);
/* y_i (+)= xb . W_i for n <= 3 bf16 weights sharing the bf16 input: the best of the above, else cuBLAS. */
dia_status cu_gemm_bf16_multi(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                              const dia_tensor *const *w, const int *trans_w, dia_tensor *const *y, int accumulate);
dia_status cu_rmsnorm_bf16(dia_backend *be, __nv_bfloat16 *y, const dia_tensor *x, const dia_tensor *w, float eps);
dia_status cu_rope_kv_store(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                            dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start, float theta);
/* linear (q|k|v) + rope_kv_store in one op: the RoPE and the cache stores in the epilogue of the
 * batch GEMM where it takes the call (cuda_gemm_rows.cu), else the two ops (cuda_gemv.cu). */
dia_status cu_linear_rope_kv_store(dia_backend *be, const dia_linear_args *a, dia_tensor *q, dia_tensor *k,
                                   const dia_tensor *v, dia_tensor *kcache, dia_tensor *vcache, const dia_tensor *pos,
                                   const dia_tensor *start, float theta);
dia_status cu_g_linear_rope_kv_store(dia_backend *be, const dia_linear_args *a, dia_tensor *q, dia_tensor *k,
                                     const dia_tensor *v, dia_tensor *kcache, dia_tensor *vcache,
                                     const dia_tensor *pos, const dia_tensor *start, float theta);
/* The RoPE + cache-store epilogue of cu_gemm_rows (q|k|v, head 128 = one feature tile; rows
 * m = r T + t at positions pos[m], stored at cache position start[r] + t of caches [R, KV, S, 128]). */
typedef struct cu_rope_epi {
    const int32_t *pos, *start;
    void *kc, *vc;
    int bf16, T, S, KV;
    double theta;
} cu_rope_epi;
dia_status cu_gemm_rows_rope(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, const dia_tensor *const *w,
                             dia_tensor *const *y, const cu_rope_epi *rope);
/* Every decoder layer of a 2-row decode step in one persistent kernel (cuda_decode_step.cu). */
int cu_decode_layers_ok(dia_backend *be, const dia_decode_layers_args *a);
dia_status cu_decode_layers(dia_backend *be, const dia_decode_layers_args *a);
int cu_g_decode_layers_ok(dia_backend *be, const dia_decode_layers_args *a);
dia_status cu_g_decode_layers(dia_backend *be, const dia_decode_layers_args *a);
dia_status cu_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok);
dia_status cu_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h);
dia_status cu_add(dia_backend *be, dia_tensor *y, const dia_tensor *x);
dia_status cu_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start);
dia_status cu_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                        const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos);
dia_status cu_conv1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, const dia_tensor *b,
                     int stride, int dilation, int pad);
dia_status cu_conv_transpose1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                               const dia_tensor *b, int stride, int pad);
dia_status cu_snake(dia_backend *be, dia_tensor *x, const dia_tensor *alpha);
dia_status cu_conv_bf16(dia_backend *be, const dia_conv_args *a); /* cuda_dac_conv.cu */
dia_status cu_snake_bf16(dia_backend *be, dia_tensor *ys, const dia_tensor *x, const dia_tensor *alpha);
dia_status cu_tanh(dia_backend *be, dia_tensor *x);
dia_status cu_codebook_lookup(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes);
dia_status cu_codebook_nearest(dia_backend *be, dia_tensor *codes, const dia_tensor *x, const dia_tensor *codebook);

#endif
