/* cuda_elementwise.cu - embedding sum, SiLU-gated activation, residual add, KV-cache store (f32 or
 * bf16 cache).
 *
 * Range checks that the CPU backend performs on device data (token ids, cache positions) are done
 * on the host by the model code before it uploads them (lib/decoder.c validates tokens and the
 * cache capacity); here an out-of-range id or position is skipped instead of read or written, so a
 * bad input can never touch memory outside its tensor. */
#include "cuda_common.cuh"

#define EMBED_MAX_TABLES 16

struct embed_tables {
    const void *p[EMBED_MAX_TABLES];
    int64_t V[EMBED_MAX_TABLES];
    int dt[EMBED_MAX_TABLES];
};

__global__ void k_embed(float *Y, const int32_t *T, embed_tables tb, int n_tables, int64_t D) {
    const int64_t m = blockIdx.y;
    const int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (d >= D) return;
    float acc = 0.0f;
    for (int c = 0; c < n_tables; c++) {
        const int64_t id = T[m * n_tables + c];
        if (id < 0 || id >= tb.V[c]) continue;
        const float e = cu_load(tb.p[c], tb.dt[c], id * D + d);
        acc = c == 0 ? e : acc + e;
    }
    Y[m * D + d] = acc;
}

dia_status cu_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok) {
    const int64_t M = y->ne[0], D = y->ne[1];
    if (tok->ne[0] != M || (tok->ndim > 1 ? tok->ne[1] : 1) != n_tables || n_tables < 1 ||
        n_tables > EMBED_MAX_TABLES || y->dtype != DIA_F32 || tok->dtype != DIA_I32)
        return dia_fail(DIA_ERR_INTERNAL, "embed shapes");
    embed_tables tb;
    memset(&tb, 0, sizeof tb);
    for (int c = 0; c < n_tables; c++) {
        if (tables[c].ne[1] != D || !cu_is_float(tables[c].dtype))
            return dia_fail(DIA_ERR_INTERNAL, "embed table width");
        tb.p[c] = cu_ptr(&tables[c]);
        tb.V[c] = tables[c].ne[0];
        tb.dt[c] = (int)tables[c].dtype;
    }
    if (M == 0) return DIA_OK;
    if (M > 65535) return dia_fail(DIA_ERR_INTERNAL, "embed: %lld rows", (long long)M);
    dim3 grid(cu_blocks(D, 256), (unsigned)M);
    k_embed<<<grid, 256, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(y), (const int32_t *)cu_ptr(tok), tb, n_tables, D);
    CU_LAUNCHED("embed");
    return DIA_OK;
}

/* y = silu(gate) * up, f32 or rounded to bf16 (the down projection's input, see
 * activation_dtype); 4 consecutive outputs per thread when I % 4 == 0 (aligned rows), else 1 */
__device__ __forceinline__ float silu_gate(float g, float u) { return g / (1.0f + expf(-g)) * u; }
template <typename OT> __global__ void k_silu_mul(OT *Y, const float *H, int64_t M, int64_t I) {
    const int64_t n = M * I;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t m = i / I, j = i % I;
        cu_put(Y + i, silu_gate(H[m * 2 * I + j], H[m * 2 * I + I + j]));
    }
}

template <typename OT> __global__ void k_silu_mul4(OT *Y, const float4 *H, int64_t M, int64_t I4) {
    const int64_t n = M * I4;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t m = i / I4, j = i % I4;
        const float4 g = H[m * 2 * I4 + j], u = H[m * 2 * I4 + I4 + j];
        cu_store4(Y, i, make_float4(silu_gate(g.x, u.x), silu_gate(g.y, u.y), silu_gate(g.z, u.z), silu_gate(g.w, u.w)));
    }
}

dia_status cu_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h) {
    const int64_t M = h->ne[0], I = h->ne[1] / 2;
    if (y->ne[0] != M || y->ne[1] != I || (y->dtype != DIA_F32 && y->dtype != DIA_BF16) || h->dtype != DIA_F32)
        return dia_fail(DIA_ERR_INTERNAL, "silu_mul shapes");
    const int64_t n = M * I;
    if (n == 0) return DIA_OK;
    cudaStream_t st = cu_ctx(be)->stream;
    const int vec4 = I % 4 == 0 && (((uintptr_t)cu_ptr(h) | (uintptr_t)cu_ptr(y)) & 15) == 0;
    int64_t blocks = ((vec4 ? n / 4 : n) + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    const float *H = (const float *)cu_ptr(h);
    if (y->dtype == DIA_BF16) {
        __nv_bfloat16 *Y = (__nv_bfloat16 *)cu_ptr(y);
        if (vec4) k_silu_mul4<<<(unsigned)blocks, 256, 0, st>>>(Y, (const float4 *)H, M, I / 4);
        else k_silu_mul<<<(unsigned)blocks, 256, 0, st>>>(Y, H, M, I);
    } else {
        float *Y = (float *)cu_ptr(y);
        if (vec4) k_silu_mul4<<<(unsigned)blocks, 256, 0, st>>>(Y, (const float4 *)H, M, I / 4);
        else k_silu_mul<<<(unsigned)blocks, 256, 0, st>>>(Y, H, M, I);
    }
    CU_LAUNCHED("silu_mul");
    return DIA_OK;
}

__global__ void k_add(float *Y, const float *X, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        Y[i] += X[i];
}

dia_status cu_add(dia_backend *be, dia_tensor *y, const dia_tensor *x) {
    const int64_t n = dia_tensor_nelem(y);
    if (dia_tensor_nelem(x) != n || y->dtype != DIA_F32 || x->dtype != DIA_F32)
        return dia_fail(DIA_ERR_INTERNAL, "add shapes");
    if (n == 0) return DIA_OK;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    k_add<<<(unsigned)blocks, 256, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(y), (const float *)cu_ptr(x), n);
    CU_LAUNCHED("add");
    return DIA_OK;
}

/* src [R, T, H, hd] (f32) -> cache [R, H, S, hd] (f32 or bf16, rounded to nearest even) at
 * positions start[r] + t */

template <typename CT>
__global__ void k_kv_store(CT *Cache, const float *Src, const int32_t *start, int64_t R, int64_t T, int64_t H,
                           int64_t hd, int64_t S) {
    const int64_t n = R * T * H * hd;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t e = i % hd, h = (i / hd) % H, t = (i / (hd * H)) % T, r = i / (hd * H * T);
        const int64_t s = (int64_t)start[r] + t;
        if (s < 0 || s >= S) continue;
        cu_put(Cache + ((r * H + h) * S + s) * hd + e, Src[i]);
    }
}

dia_status cu_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start) {
    const int64_t R = src->ne[0], T = src->ne[1], H = src->ne[2], hd = src->ne[3], S = cache->ne[2];
    if (cache->ne[0] != R || cache->ne[1] != H || cache->ne[3] != hd ||
        (cache->dtype != DIA_F32 && cache->dtype != DIA_BF16) || src->dtype != DIA_F32 || start->dtype != DIA_I32)
        return dia_fail(DIA_ERR_INTERNAL, "kv_store shapes");
    const int64_t n = R * T * H * hd;
    if (n == 0) return DIA_OK;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    cudaStream_t st = cu_ctx(be)->stream;
    const float *sp = (const float *)cu_ptr(src);
    const int32_t *p0 = (const int32_t *)cu_ptr(start);
    if (cache->dtype == DIA_BF16)
        k_kv_store<<<(unsigned)blocks, 256, 0, st>>>((__nv_bfloat16 *)cu_ptr(cache), sp, p0, R, T, H, hd, S);
    else
        k_kv_store<<<(unsigned)blocks, 256, 0, st>>>((float *)cu_ptr(cache), sp, p0, R, T, H, hd, S);
    CU_LAUNCHED("kv_store");
    return DIA_OK;
}
