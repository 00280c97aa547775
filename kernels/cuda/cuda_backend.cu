/* cuda_backend.cu - the CUDA backend: device memory, the stream and cuBLAS handle, weight upload
 * (f32 / f16 / bf16 -> bf16 or f32 on the device) and the op table. */
#include <stdlib.h>

#include "cuda_common.cuh"

/* ---------------------------------------------------------------------------------------------
 * dtype conversion kernels
 * ------------------------------------------------------------------------------------------- */
__global__ void k_to_f32(float *dst, const void *src, int dt, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = cu_load(src, dt, i);
}

__global__ void k_to_bf16(__nv_bfloat16 *dst, const void *src, int dt, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(cu_load(src, dt, i));
}

/* dst[c, r] = src[r, c] for src [R, C] of any float dtype, dst f32 or bf16 (32 x 32 tiles). */
template <typename DT>
__global__ void k_transpose_to(DT *dst, const void *src, int dt, int64_t R, int64_t C) {
    __shared__ float tile[32][33];
    const int64_t r0 = (int64_t)blockIdx.y * 32, c0 = (int64_t)blockIdx.x * 32;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        const int64_t r = r0 + i, c = c0 + threadIdx.x;
        if (r < R && c < C) tile[i][threadIdx.x] = cu_load(src, dt, r * C + c);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        const int64_t c = c0 + i, r = r0 + threadIdx.x;
        if (r < R && c < C) {
            if constexpr (sizeof(DT) == 4) dst[c * R + r] = tile[threadIdx.x][i];
            else dst[c * R + r] = __float2bfloat16_rn(tile[threadIdx.x][i]);
        }
    }
}

static unsigned grid_for(int64_t n) {
    int64_t b = (n + 255) / 256;
    if (b > 65535) b = 65535;
    if (b < 1) b = 1;
    return (unsigned)b;
}

dia_status cu_convert_to_f32(dia_backend *be, float *dst, const void *src, dia_dtype src_dt, int64_t n) {
    if (n <= 0) return DIA_OK;
    k_to_f32<<<grid_for(n), 256, 0, cu_ctx(be)->stream>>>(dst, src, (int)src_dt, n);
    CU_LAUNCHED("to_f32");
    return DIA_OK;
}

dia_status cu_convert_to_bf16(dia_backend *be, __nv_bfloat16 *dst, const void *src, dia_dtype src_dt, int64_t n) {
    if (n <= 0) return DIA_OK;
    k_to_bf16<<<grid_for(n), 256, 0, cu_ctx(be)->stream>>>(dst, src, (int)src_dt, n);
    CU_LAUNCHED("to_bf16");
    return DIA_OK;
}

dia_status cu_scratch(dia_backend *be, int which, size_t bytes, void **out) {
    cuda_ctx *c = cu_ctx(be);
    if (bytes > c->scratch_size[which]) {
        if (c->scratch[which]) {
            /* the old scratch may still be read by enqueued work */
            CU_CHECK(cudaStreamSynchronize(c->stream));
            c->scratch_gen++;
            cu_graph_invalidate(be); /* a captured graph may point at the old scratch */
            cudaFree(c->scratch[which]);
            c->scratch[which] = NULL;
            c->scratch_size[which] = 0;
        }
        size_t sz = bytes + bytes / 4 + 4096; /* some headroom: fewer regrowths */
        CU_CHECK(cudaMalloc(&c->scratch[which], sz));
        c->scratch_size[which] = sz;
        c->ds_zero = NULL; /* (a new buffer at the old address: the decode step clears its counters again) */
        /* counters start at zero (their users leave them at zero) */
        if (which == CU_SCRATCH_CNT) CU_CHECK(cudaMemsetAsync(c->scratch[which], 0, sz, c->stream));
    }
    *out = c->scratch[which];
    return DIA_OK;
}

int cu_cluster_fits(const void *kernel, const cudaLaunchConfig_t *cfg) {
    unsigned size = 1;
    for (unsigned i = 0; i < cfg->numAttrs; i++)
        if (cfg->attrs[i].id == cudaLaunchAttributeClusterDimension)
            size = cfg->attrs[i].val.clusterDim.x * cfg->attrs[i].val.clusterDim.y * cfg->attrs[i].val.clusterDim.z;
    if (size <= 1) return 1;
    static struct { const void *k; unsigned size; size_t smem; int ok; } known[64];
    static int nknown;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    int ok = -1;
    for (int i = 0; i < nknown && ok < 0; i++)
        if (known[i].k == kernel && known[i].size == size && known[i].smem == cfg->dynamicSmemBytes) ok = known[i].ok;
    if (ok < 0) {
        int n = 0;
        const int asked =
            (size <= 8 || cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess) &&
            (cfg->dynamicSmemBytes == 0 || /* the opt-in above 48 KiB */
             cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg->dynamicSmemBytes) ==
                 cudaSuccess) &&
            cudaOccupancyMaxActiveClusters(&n, kernel, cfg) == cudaSuccess;
        if (!asked) (void)cudaGetLastError(); /* an unsupported size is an answer, not an error */
        ok = asked && n > 0;
        if (!ok) dia_log(DIA_LOG_INFO, "cuda: clusters of %u blocks of a kernel do not fit; smaller ones are used", size);
        if (nknown < 64) known[nknown].k = kernel, known[nknown].size = size, known[nknown].smem = cfg->dynamicSmemBytes,
                         known[nknown++].ok = ok;
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * memory
 * ------------------------------------------------------------------------------------------- */
static void cuda_destroy(dia_backend *be) {
    if (!be) return;
    cuda_ctx *c = cu_ctx(be);
    if (c) {
        if (c->mu_ok) pthread_mutex_lock(&c->mu);
        cu_graph_boundary(be);
        cu_graph_destroy(be);
        if (c->stream) cudaStreamSynchronize(c->stream);
        if (c->blas_workspace) cudaFree(c->blas_workspace);
        for (int i = 0; i < CU_SCRATCH_N; i++)
            if (c->scratch[i]) cudaFree(c->scratch[i]);
        if (c->blas) cublasDestroy(c->blas);
        if (c->stream) cudaStreamDestroy(c->stream);
        if (c->mu_ok) {
            pthread_mutex_unlock(&c->mu);
            pthread_mutex_destroy(&c->mu);
        }
        free(c);
    }
    free(be);
}

static dia_status cuda_set_threads(dia_backend *be, int threads) {
    (void)be;
    if (threads < 0) return dia_fail(DIA_ERR_INVALID_ARG, "threads must be >= 0 (0 = all cores), got %d", threads);
    return DIA_OK; /* host threads do not matter to this backend */
}

static dia_status cuda_alloc(dia_backend *be, size_t bytes, dia_buffer **out) {
    cu_lock lock_(be);
    *out = NULL;
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK) return gst;
    dia_buffer *b = (dia_buffer *)calloc(1, sizeof *b);
    if (!b) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t sz = bytes ? bytes : 1;
    cudaError_t e = cudaMalloc(&b->ptr, sz);
    if (e != cudaSuccess) {
        free(b);
        cudaGetLastError();
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "CUDA: cannot allocate %zu bytes of device memory: %s", bytes,
                        cudaGetErrorString(e));
    }
    b->size = bytes;
    /* zero-filled, as on the CPU (a fresh KV cache reads as zeros) */
    e = cudaMemsetAsync(b->ptr, 0, sz, cu_ctx(be)->stream);
    if (e != cudaSuccess) {
        cudaFree(b->ptr);
        free(b);
        return dia_fail(DIA_ERR_BACKEND, "CUDA: cudaMemsetAsync failed: %s", cudaGetErrorString(e));
    }
    *out = b;
    return DIA_OK;
}

static void cuda_buffer_free(dia_backend *be, dia_buffer *b) {
    cu_lock lock_(be);
    if (!b) return;
    cu_graph_boundary(be); /* held-back ops may read b: launch them first (an error is logged) */
    if (b->host_mem) {
        cudaStreamSynchronize(cu_ctx(be)->stream); /* pending work may still read it */
        cudaFreeHost(b->host_mem);
    } else {
        cudaFree(b->ptr); /* synchronises with pending work on the device */
    }
    free(b);
}

/* buffer_to_host: the contents into pinned host memory mapped into the device's address space
 * (ops read it in place over the bus), the device memory freed. */
static dia_status cuda_buffer_to_host(dia_backend *be, dia_buffer *b) {
    cu_lock lock_(be);
    if (!b || b->host_mem) return DIA_OK;
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK) return gst;
    void *h = NULL, *dptr = NULL;
    cudaError_t e = cudaHostAlloc(&h, b->size ? b->size : 1, cudaHostAllocMapped);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "CUDA: cannot allocate %zu bytes of pinned host memory: %s", b->size,
                        cudaGetErrorString(e));
    }
    cudaStream_t s = cu_ctx(be)->stream;
    if ((e = cudaMemcpyAsync(h, b->ptr, b->size, cudaMemcpyDeviceToHost, s)) != cudaSuccess ||
        (e = cudaStreamSynchronize(s)) != cudaSuccess || (e = cudaHostGetDevicePointer(&dptr, h, 0)) != cudaSuccess) {
        cudaFreeHost(h);
        return dia_fail(DIA_ERR_BACKEND, "CUDA: moving a weight to host memory failed: %s", cudaGetErrorString(e));
    }
    cudaFree(b->ptr);
    b->ptr = dptr;
    b->host_mem = h;
    return DIA_OK;
}

/* Small copies between steps as kernels. A copy engine's operation between two kernels costs the
 * stream ~4-7 us of switching (trace of a B = 1 decode step: k_sample, 36 bytes of codes down, 60
 * bytes of inputs up, the next step's kernel), a kernel ~1.5 us. Uploads of up to CU_SMALL_COPY
 * bytes travel in the kernel's parameters (copied at the launch: the source may be freed, as
 * with a copy from pageable memory); async downloads of up to CU_SMALL_COPY bytes are stored by
 * a kernel into the mapped pinned area. DIA_CUDA_SMALL_COPY=0: copies only (comparisons). */
#define CU_SMALL_COPY 1024
struct cu_small_bytes {
    unsigned char b[CU_SMALL_COPY];
};

__global__ void k_upload_small(unsigned char *dst, const cu_small_bytes src, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src.b[i];
}

__global__ void k_download_small(unsigned char *dst, const unsigned char *src, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
    __threadfence_system(); /* (the host reads them after the event behind this kernel) */
}

/* A switch that is on unless the environment sets it to 0, read once into *v (-1: not yet). */
static int cu_env_on(const char *name, int *v) {
    if (*v < 0) {
        const char *e = getenv(name);
        *v = !(e && e[0] == '0');
    }
    return *v;
}

static int cu_small_copy(size_t n) {
    static int v = -1;
    return cu_env_on("DIA_CUDA_SMALL_COPY", &v) && n <= CU_SMALL_COPY;
}

static dia_status cuda_upload(dia_backend *be, dia_buffer *dst, size_t off, const void *src, size_t n) {
    cu_lock lock_(be);
    if (off + n > dst->size) return dia_fail(DIA_ERR_INTERNAL, "upload past the end of a buffer");
    if (!n) return DIA_OK;
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK) return gst;
    if (cu_small_copy(n)) {
        cu_small_bytes p;
        memcpy(p.b, src, n);
        k_upload_small<<<1, 256, 0, cu_ctx(be)->stream>>>((unsigned char *)dst->ptr + off, p, (int)n);
        CU_LAUNCHED("upload_small");
        return DIA_OK;
    }
    /* From pageable memory the driver stages the source before returning: `src` may be freed. */
    CU_CHECK(cudaMemcpyAsync((char *)dst->ptr + off, src, n, cudaMemcpyHostToDevice, cu_ctx(be)->stream));
    return DIA_OK;
}

/* A copy of n bytes of src at off into host memory dst, enqueued after the held-back ops (the
 * caller holds the lock and waits for it). dst_dev: dst mapped into the device's address space, or
 * NULL; where given, a small copy is stored there by a kernel. */
static dia_status enqueue_download(dia_backend *be, const dia_buffer *src, size_t off, void *dst, void *dst_dev, size_t n) {
    if (off + n > src->size) return dia_fail(DIA_ERR_INTERNAL, "download past the end of a buffer");
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK || !n) return gst;
    if (dst_dev && cu_small_copy(n)) {
        k_download_small<<<1, 256, 0, cu_ctx(be)->stream>>>((unsigned char *)dst_dev, (const unsigned char *)src->ptr + off, (int)n);
        CU_LAUNCHED("download_small");
        return DIA_OK;
    }
    CU_CHECK(cudaMemcpyAsync(dst, (const char *)src->ptr + off, n, cudaMemcpyDeviceToHost, cu_ctx(be)->stream));
    return DIA_OK;
}

static dia_status cuda_download(dia_backend *be, const dia_buffer *src, size_t off, void *dst, size_t n) {
    cu_lock lock_(be);
    if (!n && off <= src->size) return DIA_OK; /* nothing to wait for */
    dia_status st = enqueue_download(be, src, off, dst, NULL, n);
    if (st != DIA_OK) return st;
    CU_CHECK(cudaStreamSynchronize(cu_ctx(be)->stream));
    return DIA_OK;
}

/* Downloads that do not wait: pinned staging (so the copy is truly asynchronous) and an event. */
struct dia_async {
    void *host;      /* pinned, `bytes` */
    void *dev;       /* the same, mapped into the device's address space (NULL: not mapped) */
    size_t bytes;
    cudaEvent_t done; /* recorded after the last copy started into `host` */
    int started;
};

static dia_status cuda_async_new(dia_backend *be, size_t bytes, dia_async **out) {
    cu_lock lock_(be);
    *out = NULL;
    dia_async *a = (dia_async *)calloc(1, sizeof *a);
    if (!a) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    cudaError_t e = cudaHostAlloc(&a->host, bytes ? bytes : 1, cudaHostAllocMapped);
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(a);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "CUDA: cannot allocate %zu bytes of pinned host memory: %s", bytes,
                        cudaGetErrorString(e));
    }
    if (cudaHostGetDevicePointer(&a->dev, a->host, 0) != cudaSuccess) { /* (then copies, as for large areas) */
        cudaGetLastError();
        a->dev = NULL;
        dia_log(DIA_LOG_DEBUG, "CUDA: pinned area of %zu bytes not mapped into the device: downloads by copy", bytes);
    }
    if ((e = cudaEventCreateWithFlags(&a->done, cudaEventDisableTiming)) != cudaSuccess) {
        cudaGetLastError();
        cudaFreeHost(a->host);
        free(a);
        return dia_fail(DIA_ERR_BACKEND, "CUDA: cannot create an event: %s", cudaGetErrorString(e));
    }
    a->bytes = bytes;
    *out = a;
    return DIA_OK;
}

static void cuda_async_free(dia_backend *be, dia_async *a) {
    cu_lock lock_(be);
    if (!a) return;
    cudaEventSynchronize(a->done); /* a copy into it may be in flight */
    cudaEventDestroy(a->done);
    cudaFreeHost(a->host);
    free(a);
}

static dia_status cuda_download_start(dia_backend *be, const dia_buffer *src, size_t off, size_t n, dia_async *a) {
    cu_lock lock_(be);
    if (n > a->bytes) return dia_fail(DIA_ERR_INTERNAL, "download_start: %zu bytes into a %zu-byte area", n, a->bytes);
    dia_status st = enqueue_download(be, src, off, a->host, a->dev, n);
    if (st != DIA_OK) return st;
    CU_CHECK(cudaEventRecord(a->done, cu_ctx(be)->stream));
    a->started = 1;
    return DIA_OK;
}

static dia_status cuda_download_wait(dia_backend *be, dia_async *a, void *dst, size_t n) {
    if (!a->started || n > a->bytes) return dia_fail(DIA_ERR_INTERNAL, "download_wait: no copy of %zu bytes started", n);
    (void)be; /* no lock: another thread's ops may go on while this one waits */
    CU_CHECK(cudaEventSynchronize(a->done));
    memcpy(dst, a->host, n);
    return DIA_OK;
}

static dia_status cuda_copy(dia_backend *be, dia_buffer *dst, size_t doff, const dia_buffer *src, size_t soff,
                            size_t n) {
    cu_lock lock_(be);
    if (doff + n > dst->size || soff + n > src->size) return dia_fail(DIA_ERR_INTERNAL, "copy past a buffer end");
    if (!n) return DIA_OK;
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK) return gst;
    CU_CHECK(cudaMemcpyAsync((char *)dst->ptr + doff, (const char *)src->ptr + soff, n, cudaMemcpyDeviceToDevice,
                             cu_ctx(be)->stream));
    return DIA_OK;
}

static dia_status cuda_sync(dia_backend *be) {
    cu_lock lock_(be);
    dia_status gst = cu_graph_boundary(be);
    if (gst != DIA_OK) return gst;
    CU_CHECK(cudaStreamSynchronize(cu_ctx(be)->stream));
    return DIA_OK;
}

/* Weights from host memory (the mapping): copied to the device as-is. */
static dia_status cuda_wrap_host(dia_backend *be, const void *host, size_t bytes, dia_buffer **out) {
    cu_lock lock_(be);
    dia_status st = cuda_alloc(be, bytes, out);
    if (st != DIA_OK) return st;
    st = cuda_upload(be, *out, 0, host, bytes);
    if (st != DIA_OK) {
        cuda_buffer_free(be, *out);
        *out = NULL;
    }
    return st;
}

/* A weight tensor of dtype `want` (F32 or BF16) from host data of dtype `src`: uploaded as stored
 * and converted (and transposed, see backend.h) on the device when asked. */
static dia_status cuda_weight_upload(dia_backend *be, const void *host, dia_dtype src, int ndim, const int64_t *ne,
                                     dia_dtype want, int transpose, dia_tensor *out) {
    cu_lock lock_(be);
    if (!cu_is_float(src)) return dia_fail(DIA_ERR_BAD_MODEL, "weight of dtype %s is not a float type", dia_dtype_name(src));
    if (want != DIA_F32 && want != DIA_BF16) want = DIA_F32;
    if (ndim < 1 || ndim > 4 || (transpose && ndim != 2))
        return dia_fail(DIA_ERR_INTERNAL, "weight_upload: ndim %d (transpose %d)", ndim, transpose);
    int64_t sne[4] = {0, 0, 0, 0};
    for (int i = 0; i < ndim; i++) sne[i] = ne[i];
    if (transpose) sne[0] = ne[1], sne[1] = ne[0];
    dia_tensor t;
    memset(&t, 0, sizeof t);
    dia_status st = dia_tensor_alloc(be, want, ndim, sne, &t);
    if (st != DIA_OK) return st;
    const int64_t n = dia_tensor_nelem(&t);
    const size_t src_bytes = (size_t)n * dia_dtype_size(src);
    if (src == want && !transpose) {
        st = cuda_upload(be, t.buf, 0, host, src_bytes);
    } else {
        void *tmp = NULL;
        cudaError_t e = cudaMalloc(&tmp, src_bytes ? src_bytes : 1);
        if (e != cudaSuccess) {
            cudaGetLastError();
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "CUDA: cannot allocate %zu bytes to convert a weight: %s", src_bytes,
                          cudaGetErrorString(e));
        } else {
            cudaStream_t s = cu_ctx(be)->stream;
            e = cudaMemcpyAsync(tmp, host, src_bytes, cudaMemcpyHostToDevice, s);
            if (e != cudaSuccess) {
                st = dia_fail(DIA_ERR_BACKEND, "CUDA: weight upload failed: %s", cudaGetErrorString(e));
            } else if (transpose && n > 0) {
                const dim3 grid((unsigned)((ne[1] + 31) / 32), (unsigned)((ne[0] + 31) / 32)), blk(32, 8);
                if (ne[0] / 32 >= 65535) st = dia_fail(DIA_ERR_BAD_MODEL, "weight of %lld rows is too large", (long long)ne[0]);
                else if (want == DIA_F32) k_transpose_to<float><<<grid, blk, 0, s>>>((float *)cu_ptr(&t), tmp, (int)src, ne[0], ne[1]);
                else k_transpose_to<__nv_bfloat16><<<grid, blk, 0, s>>>((__nv_bfloat16 *)cu_ptr(&t), tmp, (int)src, ne[0], ne[1]);
                if (st == DIA_OK) {
                    e = cudaGetLastError();
                    if (e != cudaSuccess) st = dia_fail(DIA_ERR_BACKEND, "CUDA: weight transpose failed: %s", cudaGetErrorString(e));
                }
            } else if (want == DIA_F32) {
                st = cu_convert_to_f32(be, (float *)cu_ptr(&t), tmp, src, n);
            } else {
                st = cu_convert_to_bf16(be, (__nv_bfloat16 *)cu_ptr(&t), tmp, src, n);
            }
            cudaFree(tmp); /* waits for the conversion */
        }
    }
    if (st != DIA_OK) {
        dia_tensor_free(be, &t);
        return st;
    }
    *out = t;
    return DIA_OK;
}

/* Programmatic dependent launch: on unless DIA_CUDA_PDL=0 (read once). */
int cu_pdl_enabled(void) {
    static int v = -1;
    return cu_env_on("DIA_CUDA_PDL", &v);
}

static dia_dtype cuda_default_weight_dtype(dia_backend *be) {
    (void)be;
    return DIA_BF16;
}

/* Attention caches (KV cache, cross K/V): bf16 with bf16 weights (halves the attention traffic and
 * the cache memory; kv_store rounds, attention accumulates in f32), f32 in the f32 parity mode.
 * DIA_CUDA_CACHE_F32=1 keeps f32 caches with bf16 weights (for comparisons). */
static dia_dtype cuda_cache_dtype(dia_backend *be, dia_dtype weight_dtype) {
    (void)be;
    const char *e = getenv("DIA_CUDA_CACHE_F32");
    if (e && e[0] == '1') return DIA_F32;
    return weight_dtype == DIA_BF16 ? DIA_BF16 : DIA_F32;
}

/* Activations that only feed a projection: bf16 where the projection is a bf16 tensor-core GEMM
 * (bf16 weights; not for the opt-in GEMV of <= 4 rows, which reads f32 activations) - the attention
 * and SiLU kernels round once instead of a separate conversion pass before each GEMM.
 * DIA_CUDA_ACT_BF16=0 keeps f32 (comparisons). */
static dia_dtype cuda_activation_dtype(dia_backend *be, dia_dtype weight_dtype, int64_t rows) {
    (void)be;
    const char *e = getenv("DIA_CUDA_ACT_BF16");
    if (e && e[0] == '0') return DIA_F32;
    return weight_dtype == DIA_BF16 && (rows > 4 || !cu_gemv_enabled()) ? DIA_BF16 : DIA_F32;
}

/* DAC ops end the graph segment (codebook_lookup reads device data on the host). */
static dia_status g_conv1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, const dia_tensor *b,
                           int stride, int dilation, int pad) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_conv1d(be, y, x, w, b, stride, dilation, pad);
}
static dia_status g_conv_transpose1d(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                                     const dia_tensor *b, int stride, int pad) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_conv_transpose1d(be, y, x, w, b, stride, pad);
}
static dia_status g_snake(dia_backend *be, dia_tensor *x, const dia_tensor *alpha) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_snake(be, x, alpha);
}
static dia_status g_conv_bf16(dia_backend *be, const dia_conv_args *a) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_conv_bf16(be, a);
}
static dia_status g_snake_bf16(dia_backend *be, dia_tensor *ys, const dia_tensor *x, const dia_tensor *alpha) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_snake_bf16(be, ys, x, alpha);
}
static dia_status g_tanh(dia_backend *be, dia_tensor *x) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_tanh(be, x);
}
static dia_status g_codebook_lookup(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_codebook_lookup(be, y, codebook, codes);
}
static dia_status g_codebook_nearest(dia_backend *be, dia_tensor *codes, const dia_tensor *x, const dia_tensor *codebook) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_codebook_nearest(be, codes, x, codebook);
}

/* The device sampler ends the segment too (its codes are downloaded right after). */
static dia_status g_sample(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *a) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_sample(be, codes, logits, a);
}

static dia_backend_ops make_ops(void) {
    dia_backend_ops o;
    memset(&o, 0, sizeof o);
    o.name = "cuda";
    o.destroy = cuda_destroy;
    o.set_threads = cuda_set_threads;
    o.alloc = cuda_alloc;
    o.wrap_host = cuda_wrap_host;
    o.buffer_free = cuda_buffer_free;
    o.upload = cuda_upload;
    o.download = cuda_download;
    o.copy = cuda_copy;
    o.sync = cuda_sync;
    o.async_new = cuda_async_new;
    o.async_free = cuda_async_free;
    o.download_start = cuda_download_start;
    o.download_wait = cuda_download_wait;
    o.weight_upload = cuda_weight_upload;
    o.buffer_to_host = cuda_buffer_to_host;
    o.default_weight_dtype = cuda_default_weight_dtype;
    o.graph_run = cu_graph_run;
    o.graph_release = cu_graph_release;
    o.graphs_enabled = cu_graphs_enabled;
    o.cache_dtype = cuda_cache_dtype;
    o.activation_dtype = cuda_activation_dtype;
    o.sample = g_sample;
    o.matmul = cu_g_matmul;
    o.rmsnorm = cu_g_rmsnorm;
    o.rope = cu_g_rope;
    o.embed = cu_g_embed;
    o.silu_mul = cu_g_silu_mul;
    o.add = cu_g_add;
    o.kv_store = cu_g_kv_store;
    o.attention = cu_g_attention;
    o.linear = cu_g_linear;
    o.rope_kv_store = cu_g_rope_kv_store;
    o.linear_rope_kv_store = cu_g_linear_rope_kv_store;
    o.decode_layers_ok = cu_g_decode_layers_ok;
    o.decode_layers = cu_g_decode_layers;
    o.conv1d = g_conv1d;
    o.conv_transpose1d = g_conv_transpose1d;
    o.snake = g_snake;
    o.conv_bf16 = g_conv_bf16;
    o.snake_bf16 = g_snake_bf16;
    o.tanh_ = g_tanh;
    o.codebook_lookup = g_codebook_lookup;
    o.codebook_nearest = g_codebook_nearest;
    return o;
}

/* DIA_CUDA_SAMPLE=0: sample on the host (logits downloaded every step); DIA_CUDA_FUSED=0: no fused
 * slots (lib/ composes linear and rope_kv_store from the basic ops, the behaviour before them);
 * DIA_CUDA_ASYNC=0: no asynchronous downloads (dia_generate waits for each step's codes before it
 * launches the next step). All for comparisons. */
static dia_backend_ops make_ops_variant(int variant) {
    dia_backend_ops o = make_ops();
    if (variant & 1) o.sample = NULL;
    if (variant & 2)
        o.linear = NULL, o.rope_kv_store = NULL, o.linear_rope_kv_store = NULL, o.decode_layers_ok = NULL,
        o.decode_layers = NULL;
    if (variant & 4) o.async_new = NULL, o.async_free = NULL, o.download_start = NULL, o.download_wait = NULL;
    return o;
}
static const dia_backend_ops cuda_ops_variants[8] = {make_ops_variant(0), make_ops_variant(1), make_ops_variant(2),
                                                      make_ops_variant(3), make_ops_variant(4), make_ops_variant(5),
                                                      make_ops_variant(6), make_ops_variant(7)};

extern "C" dia_status dia_backend_cuda_new(int device, dia_backend **out) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError(); /* clear the sticky-free error so later calls are not confused */
        return dia_fail(DIA_ERR_BACKEND, "CUDA backend: no usable device (%s)",
                        e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (device < 0 || device >= count)
        return dia_fail(DIA_ERR_BACKEND, "CUDA backend: device %d does not exist (%d devices)", device, count);
    CU_CHECK(cudaSetDevice(device));
    dia_backend *be = (dia_backend *)calloc(1, sizeof *be);
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const char *samp = getenv("DIA_CUDA_SAMPLE"), *fused = getenv("DIA_CUDA_FUSED"), *async = getenv("DIA_CUDA_ASYNC");
    be->ops = &cuda_ops_variants[(samp && samp[0] == '0' ? 1 : 0) + (fused && fused[0] == '0' ? 2 : 0) +
                                 (async && async[0] == '0' ? 4 : 0)];
    be->ctx = c;
    c->device = device;
    dia_status st = DIA_OK;
    {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        if (pthread_mutex_init(&c->mu, &a) == 0) c->mu_ok = 1;
        else st = dia_fail(DIA_ERR_BACKEND, "CUDA backend: cannot create its lock");
        pthread_mutexattr_destroy(&a);
    }
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        c->stream = NULL;
        st = dia_fail(DIA_ERR_BACKEND, "CUDA: cannot create a stream: %s", cudaGetErrorString(e));
    }
    if (st == DIA_OK) {
        cublasStatus_t s = cublasCreate(&c->blas);
        if (s != CUBLAS_STATUS_SUCCESS) {
            c->blas = NULL;
            st = dia_fail(DIA_ERR_BACKEND, "cuBLAS: cannot create a handle: %s", cublasGetStatusString(s));
        }
    }
    if (st == DIA_OK) {
        /* f32 GEMMs stay true f32 (no TF32) for parity with the CPU; bf16 GEMMs accumulate in f32 */
        /* DIA_CUDA_TF32=1 (opt-in, not for parity): f32 GEMMs (the f32 mode, the DAC) on TF32 tensor cores */
        const char *tf32 = getenv("DIA_CUDA_TF32");
        const cublasMath_t math = tf32 && tf32[0] == '1' ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
        if (cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS ||
            cublasSetMathMode(c->blas, math) != CUBLAS_STATUS_SUCCESS)
            st = dia_fail(DIA_ERR_BACKEND, "cuBLAS: cannot configure the handle");
    }
    if (st == DIA_OK) {
        /* a fixed workspace (after cublasSetStream, which resets it): no allocation under capture */
        const size_t ws = (size_t)32 << 20;
        if ((e = cudaMalloc(&c->blas_workspace, ws)) != cudaSuccess) {
            c->blas_workspace = NULL;
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "CUDA: cannot allocate the cuBLAS workspace: %s", cudaGetErrorString(e));
        } else if (cublasSetWorkspace(c->blas, c->blas_workspace, ws) != CUBLAS_STATUS_SUCCESS) {
            st = dia_fail(DIA_ERR_BACKEND, "cuBLAS: cannot set the workspace");
        }
    }
    if (st == DIA_OK) st = cu_graph_init(be);
    if (st == DIA_OK) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, device) == cudaSuccess) {
            c->sm_count = p.multiProcessorCount;
            c->cc = p.major * 10 + p.minor;
            dia_log(DIA_LOG_INFO, "CUDA backend on device %d: %s, %d SMs, %.1f GiB", device, p.name,
                    p.multiProcessorCount, (double)p.totalGlobalMem / (1 << 30));
        } else {
            c->sm_count = 100;
        }
    }
    if (st != DIA_OK) {
        cuda_destroy(be);
        return st;
    }
    *out = be;
    return DIA_OK;
}
