/* cuda_attention.cu - attention with scale 1, GQA and per-row key lengths over a (rows, kv_heads,
 * S, hd) cache; optional causal limit per query (prefill). Used for the decoder's self-attention
 * (decode and prefill), its cross-attention and the encoder.
 *
 * Flash-decoding style: the key range [0, S) is split into `nsplit` chunks; block (query, head,
 * chunk) runs an online softmax over its chunk with one warp per key (lanes split head_dim), the
 * warps of a block are merged in shared memory, and when nsplit > 1 a second kernel merges the
 * per-chunk (max, sum, unnormalised output) triples. (Merging in the last block of each head
 * group, with a counter, was tried: 5% slower per decode step at B = 1 on the H100.) Chunks past a row's length exit at once, so
 * the fixed-capacity cache costs nothing beyond the filled positions. nsplit is chosen so that a
 * decode step (few queries) still fills the GPU; big prefills use nsplit = 1 (no merge pass).
 *
 * K and V are f32 or bf16 (the backend's cache_dtype: bf16 when the weights are bf16): every kernel
 * is a template on the cache element type KT and converts to f32 on load; q, the partials and all
 * accumulation stay f32. The output (type OT) is f32, or bf16 where the decoder keeps GEMM-input
 * activations in bf16 (activation_dtype): the same values rounded once, as the GEMM would round
 * them. */
#include <math.h>
#include <stdlib.h>

#include "cuda_common.cuh"

#define ATT_WARPS 4
#define ATT_MAX_HD 256
#define ATT_MAX_SPLIT 256

/* DIA_CUDA_ATT_MINCHUNK: fewest keys per split of a decode attention (default 32; comparisons) */
static int att_min_chunk(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DIA_CUDA_ATT_MINCHUNK");
        v = e && atoi(e) > 0 ? atoi(e) : 32;
    }
    return v;
}

/* one cache element as f32 */
__device__ __forceinline__ float att_f(float x) { return x; }
__device__ __forceinline__ float att_f(__nv_bfloat16 x) { return __bfloat162float(x); }

/* N consecutive cache elements (16-byte aligned row, N a multiple of 4) as f32; zeros if !ok */
template <int N>
__device__ __forceinline__ void att_row(const float *p, bool ok, float *o) {
#pragma unroll
    for (int j = 0; j < N / 4; j++) {
        const float4 a = ok ? __ldg((const float4 *)p + j) : make_float4(0, 0, 0, 0);
        o[4 * j] = a.x, o[4 * j + 1] = a.y, o[4 * j + 2] = a.z, o[4 * j + 3] = a.w;
    }
}
__device__ __forceinline__ void att_bf2(unsigned w, float *o) { /* element 2i in the low half */
    o[0] = __uint_as_float(w << 16);
    o[1] = __uint_as_float(w & 0xffff0000u);
}
template <int N>
__device__ __forceinline__ void att_row(const __nv_bfloat16 *p, bool ok, float *o) {
    if constexpr (N % 8 == 0) {
#pragma unroll
        for (int j = 0; j < N / 8; j++) {
            const uint4 a = ok ? __ldg((const uint4 *)p + j) : make_uint4(0, 0, 0, 0);
            att_bf2(a.x, o + 8 * j), att_bf2(a.y, o + 8 * j + 2), att_bf2(a.z, o + 8 * j + 4), att_bf2(a.w, o + 8 * j + 6);
        }
    } else {
#pragma unroll
        for (int j = 0; j < N / 4; j++) {
            const uint2 a = ok ? __ldg((const uint2 *)p + j) : make_uint2(0, 0);
            att_bf2(a.x, o + 4 * j), att_bf2(a.y, o + 4 * j + 2);
        }
    }
}

/* Merge the nsplit (max, sum, unnormalised output) triples of one (query, head) into out[hd]: the
 * split weights are computed once (block-wide max, then one expf per split) and every thread sums
 * one output element over the splits. */
template <typename OT>
__device__ void att_merge(OT *__restrict__ out, const float *__restrict__ P, int nsplit, int hd) {
    __shared__ float w[ATT_MAX_SPLIT];
    __shared__ float red[32];
    const int tid = threadIdx.x, nw = (blockDim.x + 31) / 32;
    float M = -INFINITY;
    for (int i = tid; i < nsplit; i += blockDim.x) M = fmaxf(M, __ldcg(P + (size_t)i * (hd + 2)));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    if ((tid & 31) == 0) red[tid >> 5] = M;
    __syncthreads();
    M = -INFINITY;
    for (int i = 0; i < nw; i++) M = fmaxf(M, red[i]);
    __syncthreads();
    float L = 0.0f;
    for (int i = tid; i < nsplit; i += blockDim.x) {
        const float mi = __ldcg(P + (size_t)i * (hd + 2));
        const float wi = mi == -INFINITY ? 0.0f : expf(mi - M);
        w[i] = wi;
        L += __ldcg(P + (size_t)i * (hd + 2) + 1) * wi;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
    if ((tid & 31) == 0) red[tid >> 5] = L;
    __syncthreads();
    L = 0.0f;
    for (int i = 0; i < nw; i++) L += red[i];
    for (int e = tid; e < hd; e += blockDim.x) {
        float acc = 0.0f;
        for (int i = 0; i < nsplit; i++)
            if (w[i] != 0.0f) acc += __ldcg(P + (size_t)i * (hd + 2) + 2 + e) * w[i];
        cu_put(out + e, L > 0.0f ? acc / L : 0.0f);
    }
    __syncthreads(); /* w and red are reused by the next merge of this block */
}

/* The merge of the splits: one block per (query, head). */
template <typename OT>
__global__ void k_attn_combine(OT *__restrict__ Out, const float *__restrict__ Part, int nsplit, int hd) {
    cu_pdl_wait();
    const size_t row = blockIdx.x;
    att_merge(Out + row * hd, Part + row * nsplit * (hd + 2), nsplit, hd);
}

template <int HDJ, typename KT, typename OT>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attn(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q, const KT *__restrict__ K,
           const KT *__restrict__ V, const int32_t *__restrict__ len, const int32_t *__restrict__ qpos, int T,
           int Hq, int Hkv, int S, int hd, int nsplit, int chunk) {
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS];
    __shared__ float sm_o[ATT_WARPS][HDJ * 32];
    const int bt = blockIdx.x, h = blockIdx.y, sp = blockIdx.z;
    const int r = bt / T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    cu_pdl_wait();
    int n = len[r];
    if (qpos) n = min(n, qpos[bt] + 1);
    n = max(0, min(n, S));
    const int s0 = sp * chunk, s1 = min(s0 + chunk, n);
    const int kvh = h / (Hq / Hkv);
    const float *qv = Q + ((size_t)bt * Hq + h) * hd;
    const KT *kb = K + ((size_t)r * Hkv + kvh) * (size_t)S * hd;
    const KT *vb = V + ((size_t)r * Hkv + kvh) * (size_t)S * hd;
    float q[HDJ], o[HDJ];
#pragma unroll
    for (int j = 0; j < HDJ; j++) {
        const int e = lane + 32 * j;
        q[j] = e < hd ? qv[e] : 0.0f;
        o[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int s = s0 + warp; s < s1; s += ATT_WARPS) {
        const KT *kr = kb + (size_t)s * hd;
        float d = 0.0f;
#pragma unroll
        for (int j = 0; j < HDJ; j++) {
            const int e = lane + 32 * j;
            if (e < hd) d = fmaf(q[j], att_f(kr[e]), d);
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
        const float mn = fmaxf(m, d);
        const float sc = expf(m - mn), p = expf(d - mn);
        l = l * sc + p;
        const KT *vr = vb + (size_t)s * hd;
#pragma unroll
        for (int j = 0; j < HDJ; j++) {
            const int e = lane + 32 * j;
            o[j] = o[j] * sc + (e < hd ? p * att_f(vr[e]) : 0.0f);
        }
        m = mn;
    }
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < HDJ; j++) sm_o[warp][lane + 32 * j] = o[j];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sm_m[w]);
    float wt[ATT_WARPS], L = 0.0f;
#pragma unroll
    for (int w = 0; w < ATT_WARPS; w++) {
        wt[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - M);
        L += sm_l[w] * wt[w];
    }
    const size_t orow = ((size_t)bt * Hq + h) * hd;
    float *P = Part + (((size_t)bt * Hq + h) * nsplit + sp) * (hd + 2);
    for (int e = threadIdx.x; e < hd; e += ATT_WARPS * 32) {
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < ATT_WARPS; w++) acc += sm_o[w][e] * wt[w];
        if (nsplit == 1) cu_put(Out + orow + e, L > 0.0f ? acc / L : 0.0f);
        else P[2 + e] = acc;
    }
    if (nsplit > 1 && threadIdx.x == 0) {
        P[0] = M;
        P[1] = L;
    }
}

/* head_dim 32 / 64 / 128 (16-byte aligned rows): 8 lanes per key, so a warp works on 4 keys at
 * once and every lane issues float4 loads; each group of 8 lanes keeps its own online softmax
 * over keys grp, grp + 16, ... of the chunk (2 keys per iteration in flight), and the 16 groups of
 * the block are merged in shared memory. */
template <int EPL, typename KT, typename OT>
/* bf16 with head 128 (the cross-attention): 8 blocks per SM (64 registers, no spills; unbounded it
 * took 96 and ran 5 blocks per SM, 63% of the DRAM bandwidth at B = 64) */
__global__ void __launch_bounds__(ATT_WARPS * 32, sizeof(KT) == 2 && EPL == 16 ? 8 : 1)
    k_attn8(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q, const KT *__restrict__ K,
            const KT *__restrict__ V, const int32_t *__restrict__ len, const int32_t *__restrict__ qpos, int T,
            int Hq, int Hkv, int S, int nsplit, int chunk) {
    constexpr int HD = EPL * 8, NG = ATT_WARPS * 4;
    __shared__ float sm_m[NG], sm_l[NG];
    __shared__ float sm_o[NG][HD];
    const int bt = blockIdx.x, h = blockIdx.y, sp = blockIdx.z;
    const int r = bt / T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 3, sl = lane & 7;
    const int grp = warp * 4 + g;
    cu_pdl_wait();
    int n = len[r];
    if (qpos) n = min(n, qpos[bt] + 1);
    n = max(0, min(n, S));
    const int s0 = sp * chunk, s1 = min(s0 + chunk, n);
    const int kvh = h / (Hq / Hkv);
    const float4 *qv = (const float4 *)(Q + ((size_t)bt * Hq + h) * HD + sl * EPL);
    const KT *kb = K + ((size_t)r * Hkv + kvh) * (size_t)S * HD + sl * EPL;
    const KT *vb = V + ((size_t)r * Hkv + kvh) * (size_t)S * HD + sl * EPL;
    float q[EPL], o[EPL];
#pragma unroll
    for (int j = 0; j < EPL / 4; j++) {
        const float4 a = qv[j];
        q[4 * j] = a.x, q[4 * j + 1] = a.y, q[4 * j + 2] = a.z, q[4 * j + 3] = a.w;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) o[e] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int base = s0 + warp * 4; base < s1; base += 2 * NG) {
        const int sa = base + g, sb = base + g + NG;
        const bool va = sa < s1, vb_ = sb < s1;
        float ka[EPL], kb2[EPL], vA[EPL], vB[EPL];
        att_row<EPL>(kb + (size_t)sa * HD, va, ka);
        att_row<EPL>(kb + (size_t)sb * HD, vb_, kb2);
        att_row<EPL>(vb + (size_t)sa * HD, va, vA);
        att_row<EPL>(vb + (size_t)sb * HD, vb_, vB);
        float da = 0.0f, db = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            da = fmaf(q[e], ka[e], da);
            db = fmaf(q[e], kb2[e], db);
        }
#pragma unroll
        for (int off = 1; off < 8; off <<= 1) {
            da += __shfl_xor_sync(0xffffffffu, da, off);
            db += __shfl_xor_sync(0xffffffffu, db, off);
        }
        if (va) {
            const float mn = fmaxf(m, da);
            const float sc = expf(m - mn), p = expf(da - mn);
            l = l * sc + p;
#pragma unroll
            for (int e = 0; e < EPL; e++) o[e] = o[e] * sc + p * vA[e];
            m = mn;
        }
        if (vb_) {
            const float mn = fmaxf(m, db);
            const float sc = expf(m - mn), p = expf(db - mn);
            l = l * sc + p;
#pragma unroll
            for (int e = 0; e < EPL; e++) o[e] = o[e] * sc + p * vB[e];
            m = mn;
        }
    }
    if (sl == 0) {
        sm_m[grp] = m;
        sm_l[grp] = l;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) sm_o[grp][sl * EPL + e] = o[e];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NG; w++) M = fmaxf(M, sm_m[w]);
    float L = 0.0f;
#pragma unroll
    for (int w = 0; w < NG; w++)
        if (sm_m[w] != -INFINITY) L += sm_l[w] * expf(sm_m[w] - M);
    const size_t orow = ((size_t)bt * Hq + h) * HD;
    float *P = Part + (((size_t)bt * Hq + h) * nsplit + sp) * (HD + 2);
    for (int e = threadIdx.x; e < HD; e += ATT_WARPS * 32) {
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < NG; w++)
            if (sm_m[w] != -INFINITY) acc += sm_o[w][e] * expf(sm_m[w] - M);
        if (nsplit == 1) cu_put(Out + orow + e, L > 0.0f ? acc / L : 0.0f);
        else P[2 + e] = acc;
    }
    if (nsplit > 1 && threadIdx.x == 0) {
        P[0] = M;
        P[1] = L;
    }
}

/* GQA-grouped variant of k_attn8: block (query, kv head, chunk) serves the G query heads that share
 * the kv head, so each key and value row is read once per block instead of once per query head.
 * Each group of LPK lanes takes U keys per iteration (keys base + g + u NG, in the same order as
 * U = 1): U = 1 for f32 caches; 4 for bf16 (twice the bytes in flight of f32: measured 6% faster
 * than U = 2 at 128 rows x 1500 keys, 156 vs 166 us on the H100). */
template <int HD, int G, int LPK, typename KT, typename OT>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attn8g(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q,
             const KT *__restrict__ K, const KT *__restrict__ V, const int32_t *__restrict__ len,
             const int32_t *__restrict__ qpos, int T, int Hq, int Hkv, int S, int nsplit, int chunk) {
    constexpr int EPL = HD / LPK, GPW = 32 / LPK, NG = ATT_WARPS * GPW; /* LPK lanes per key */
    constexpr int U = sizeof(KT) == sizeof(float) ? 1 : 4;
    __shared__ float sm_m[NG][G], sm_l[NG][G];
    __shared__ float sm_o[NG][G * HD];
    const int bt = blockIdx.x, kvh = blockIdx.y, sp = blockIdx.z;
    const int r = bt / T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane / LPK, sl = lane % LPK;
    const int grp = warp * GPW + g;
    cu_pdl_wait();
    int n = len[r];
    if (qpos) n = min(n, qpos[bt] + 1);
    n = max(0, min(n, S));
    const int s0 = sp * chunk, s1 = min(s0 + chunk, n);
    const KT *kb = K + ((size_t)r * Hkv + kvh) * (size_t)S * HD + sl * EPL;
    const KT *vb = V + ((size_t)r * Hkv + kvh) * (size_t)S * HD + sl * EPL;
    float q[G][EPL], o[G][EPL], m[G], l[G];
#pragma unroll
    for (int gi = 0; gi < G; gi++) {
        const float4 *qv = (const float4 *)(Q + ((size_t)bt * Hq + kvh * G + gi) * HD + sl * EPL);
#pragma unroll
        for (int j = 0; j < EPL / 4; j++) {
            const float4 a = qv[j];
            q[gi][4 * j] = a.x, q[gi][4 * j + 1] = a.y, q[gi][4 * j + 2] = a.z, q[gi][4 * j + 3] = a.w;
        }
#pragma unroll
        for (int e = 0; e < EPL; e++) o[gi][e] = 0.0f;
        m[gi] = -INFINITY;
        l[gi] = 0.0f;
    }
    for (int base = s0 + warp * GPW; base < s1; base += U * NG) {
        float ka[U][EPL], vv[U][EPL], d[U][G];
        bool va[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int sa = base + g + u * NG;
            va[u] = sa < s1;
            att_row<EPL>(kb + (size_t)sa * HD, va[u], ka[u]);
            att_row<EPL>(vb + (size_t)sa * HD, va[u], vv[u]);
        }
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int gi = 0; gi < G; gi++) {
                d[u][gi] = 0.0f;
#pragma unroll
                for (int e = 0; e < EPL; e++) d[u][gi] = fmaf(q[gi][e], ka[u][e], d[u][gi]);
            }
#pragma unroll
        for (int off = 1; off < LPK; off <<= 1)
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int gi = 0; gi < G; gi++) d[u][gi] += __shfl_xor_sync(0xffffffffu, d[u][gi], off);
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (!va[u]) continue;
#pragma unroll
            for (int gi = 0; gi < G; gi++) {
                const float mn = fmaxf(m[gi], d[u][gi]);
                const float sc = expf(m[gi] - mn), p = expf(d[u][gi] - mn);
                l[gi] = l[gi] * sc + p;
#pragma unroll
                for (int e = 0; e < EPL; e++) o[gi][e] = o[gi][e] * sc + p * vv[u][e];
                m[gi] = mn;
            }
        }
    }
#pragma unroll
    for (int gi = 0; gi < G; gi++) {
        if (sl == 0) {
            sm_m[grp][gi] = m[gi];
            sm_l[grp][gi] = l[gi];
        }
#pragma unroll
        for (int e = 0; e < EPL; e++) sm_o[grp][gi * HD + sl * EPL + e] = o[gi][e];
    }
    __syncthreads();
    __shared__ float sm_w[NG][G], sm_L[G], sm_M[G];
    if (threadIdx.x < G) {
        const int gi = threadIdx.x;
        float M = -INFINITY, L = 0.0f;
        for (int w = 0; w < NG; w++) M = fmaxf(M, sm_m[w][gi]);
        for (int w = 0; w < NG; w++) {
            const float wt = sm_m[w][gi] == -INFINITY ? 0.0f : expf(sm_m[w][gi] - M);
            sm_w[w][gi] = wt;
            L += sm_l[w][gi] * wt;
        }
        sm_M[gi] = M;
        sm_L[gi] = L;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < G * HD; idx += ATT_WARPS * 32) {
        const int gi = idx / HD, e = idx % HD;
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < NG; w++) acc += sm_o[w][idx] * sm_w[w][gi];
        const float L = sm_L[gi];
        const int h = kvh * G + gi;
        if (nsplit == 1) {
            cu_put(Out + ((size_t)bt * Hq + h) * HD + e, L > 0.0f ? acc / L : 0.0f);
        } else {
            float *P = Part + (((size_t)bt * Hq + h) * nsplit + sp) * (HD + 2);
            P[2 + e] = acc;
            if (e == 0) {
                P[0] = sm_M[gi];
                P[1] = L;
            }
        }
    }
}

/* Pick the kernel for (vec, grouped, G, hd) and launch it on cache element type KT, output type OT. */
template <typename KT, typename OT>
static void att_launch(cudaStream_t st, dim3 grid, OT *out, float *part, const float *q, const KT *k, const KT *v,
                       const int32_t *len, const int32_t *qpos, int T, int Hq, int Hkv, int S, int hd, int nsplit,
                       int chunk, int vec, int grouped, int G) {
    const int hdj = (hd + 31) / 32;
    const dim3 blk(ATT_WARPS * 32);
#define ATT_LAUNCH(J) cu_launch(k_attn<J, KT, OT>, grid, blk, 0, st, out, part, q, k, v, len, qpos, T, Hq, Hkv, S, hd, nsplit, chunk)
#define ATT8_LAUNCH(E) cu_launch(k_attn8<E, KT, OT>, grid, blk, 0, st, out, part, q, k, v, len, qpos, T, Hq, Hkv, S, nsplit, chunk)
#define ATT8G_LAUNCH(GG) \
    cu_launch(k_attn8g<128, GG, (GG == 4 ? 16 : 8), KT, OT>, grid, blk, 0, st, out, part, q, k, v, len, qpos, T, Hq, Hkv, S, \
              nsplit, chunk)
    if (grouped && G == 4) ATT8G_LAUNCH(4);
    else if (grouped) ATT8G_LAUNCH(2);
    else if (vec && hd == 128) ATT8_LAUNCH(16);
    else if (vec && hd == 64) ATT8_LAUNCH(8);
    else if (vec && hd == 32) ATT8_LAUNCH(4);
    else if (hdj <= 1) ATT_LAUNCH(1);
    else if (hdj <= 2) ATT_LAUNCH(2);
    else if (hdj <= 4) ATT_LAUNCH(4);
    else ATT_LAUNCH(8);
#undef ATT_LAUNCH
#undef ATT8_LAUNCH
#undef ATT8G_LAUNCH
}

dia_status cu_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                        const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos) {
    const int64_t R = q->ne[0], T = q->ne[1], Hq = q->ne[2], hd = q->ne[3];
    const int64_t Hkv = k->ne[1], S = k->ne[2];
    if (q->ndim != 4 || k->ndim != 4 || k->ne[0] != R || k->ne[3] != hd || Hkv < 1 || Hq % Hkv ||
        out->ne[0] != R || out->ne[1] != T || out->ne[2] != Hq || out->ne[3] != hd || v->ne[0] != R ||
        v->ne[1] != Hkv || v->ne[2] != S || v->ne[3] != hd || hd < 1 || hd > ATT_MAX_HD || q->dtype != DIA_F32 ||
        (k->dtype != DIA_F32 && k->dtype != DIA_BF16) || v->dtype != k->dtype ||
        (out->dtype != DIA_F32 && out->dtype != DIA_BF16) ||
        kv_len->dtype != DIA_I32 || (qpos && qpos->dtype != DIA_I32))
        return dia_fail(DIA_ERR_INTERNAL, "attention shapes");
    if (R * T == 0 || Hq == 0) return DIA_OK;
    if (R * T > INT32_MAX || Hq > 65535 || S > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "attention too large");
    cuda_ctx *c = cu_ctx(be);
    /* split the keys so that a decode step still has >= ~4 blocks per SM */
    const int vec = (hd == 32 || hd == 64 || hd == 128) && ((uintptr_t)cu_ptr(q) | (uintptr_t)cu_ptr(k) |
                                                             (uintptr_t)cu_ptr(v)) % 16 == 0;
    /* GQA grouping (decode: few queries, so K/V reads dominate): head_dim 128 with 2 or 4 query heads
     * per kv head */
    const int64_t G = Hq / Hkv;
    const int grouped = vec && hd == 128 && (G == 2 || G == 4);
    const int64_t blocks_base = grouped ? R * T * Hkv : R * T * Hq;
    const char *we = getenv("DIA_CUDA_ATT_WANT"); /* blocks per SM a decode attention aims at (comparisons) */
    const int64_t per_sm = we && atoi(we) > 0 ? atoi(we) : (vec ? 8 : 4);
    const int64_t base = R * T * Hq, want = per_sm * (int64_t)c->sm_count;
    int64_t nsplit = 1;
    if (blocks_base < want && S > 64) {
        nsplit = (want + blocks_base - 1) / blocks_base;
        const int64_t min_chunk = att_min_chunk();
        const int64_t max_split = (S + min_chunk - 1) / min_chunk;
        if (nsplit > max_split) nsplit = max_split;
        if (nsplit > ATT_MAX_SPLIT) nsplit = ATT_MAX_SPLIT;
    }
    const int64_t chunk = (S + nsplit - 1) / nsplit;
    float *part = NULL;
    if (nsplit > 1) {
        void *p;
        dia_status st = cu_scratch(be, CU_SCRATCH_ATTN, (size_t)(base * nsplit * (hd + 2)) * sizeof(float), &p);
        if (st != DIA_OK) return st;
        part = (float *)p;
    }
    dim3 grid((unsigned)(R * T), (unsigned)(grouped ? Hkv : Hq), (unsigned)nsplit);
    const int32_t *lp = (const int32_t *)cu_ptr(kv_len), *pp = qpos ? (const int32_t *)cu_ptr(qpos) : NULL;
    const float *qp = (const float *)cu_ptr(q);
    const int bf16_cache = k->dtype == DIA_BF16, bf16_out = out->dtype == DIA_BF16;
#define ATT_ARGS lp, pp, (int)T, (int)Hq, (int)Hkv, (int)S, (int)hd, (int)nsplit, (int)chunk, vec, grouped, (int)G
    const __nv_bfloat16 *kb = (const __nv_bfloat16 *)cu_ptr(k), *vb = (const __nv_bfloat16 *)cu_ptr(v);
    const float *kf = (const float *)cu_ptr(k), *vf = (const float *)cu_ptr(v);
    __nv_bfloat16 *ob = (__nv_bfloat16 *)cu_ptr(out);
    float *of = (float *)cu_ptr(out);
    if (bf16_cache && bf16_out) att_launch(c->stream, grid, ob, part, qp, kb, vb, ATT_ARGS);
    else if (bf16_cache) att_launch(c->stream, grid, of, part, qp, kb, vb, ATT_ARGS);
    else if (bf16_out) att_launch(c->stream, grid, ob, part, qp, kf, vf, ATT_ARGS);
    else att_launch(c->stream, grid, of, part, qp, kf, vf, ATT_ARGS);
#undef ATT_ARGS
    CU_LAUNCHED("attention");
    if (nsplit > 1) {
        const int threads = hd <= 32 ? 32 : (hd <= 64 ? 64 : 128);
        if (bf16_out)
            CU_CHECK(cu_launch(k_attn_combine<__nv_bfloat16>, dim3((unsigned)base), dim3(threads), 0, c->stream, ob,
                               (const float *)part, (int)nsplit, (int)hd));
        else
            CU_CHECK(cu_launch(k_attn_combine<float>, dim3((unsigned)base), dim3(threads), 0, c->stream, of,
                               (const float *)part, (int)nsplit, (int)hd));
    }
    return DIA_OK;
}
