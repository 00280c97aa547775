/* cuda_attention.cu - attention with scale 1, GQA and per-row key lengths over a (rows, kv_heads,
 * S, hd) cache; optional causal limit per query (prefill). Used for the decoder's self-attention
 * (decode and prefill), its cross-attention and the encoder.
 *
 * Flash-decoding style: the keys are cut into tiles (the keys a block takes per iteration) and
 * the tiles are dealt round-robin to `nsplit` blocks per (query, head) (block sp takes tiles sp,
 * sp + nsplit, ...: the work stays balanced whatever the filled length of a fixed-capacity cache);
 * a block runs an online softmax over its keys (lanes split head_dim), its warps are merged in
 * shared memory, and the nsplit (max, sum, unnormalised output) partials are merged either inside
 * a thread-block cluster (the nsplit blocks of a (query, head) are one cluster: they sum the
 * partials in rank order through distributed shared memory, no second kernel; the default) or by a
 * second kernel over partials in global memory (where clusters of that size cannot run, or with
 * DIA_CUDA_ATT_CLUSTER=0). (Merging in the last block of each head group, with a counter, was
 * tried: 5% slower per decode step at B = 1 on the H100.) Tiles past a row's length are skipped,
 * so the fixed-capacity cache costs nothing beyond the filled positions. nsplit is chosen so that
 * a decode step (few queries) still fills the GPU; big prefills use nsplit = 1 (no merge).
 *
 * K and V are f32 or bf16 (the backend's cache_dtype: bf16 when the weights are bf16): every kernel
 * is a template on the cache element type KT and converts to f32 on load; q, the partials and all
 * accumulation stay f32. The output (type OT) is f32, or bf16 where the decoder keeps GEMM-input
 * activations in bf16 (activation_dtype): the same values rounded once, as the GEMM would round
 * them. */
#include <math.h>
#include <stdlib.h>

#include <cooperative_groups.h>

#include "cuda_common.cuh"

#define ATT_WARPS 4
#define ATT_MAX_HD 256
#define ATT_MAX_SPLIT 256
#define ATT_MAX_CLUSTER 16 /* blocks per cluster when merging in the cluster (16: non-portable size) */

/* An integer environment knob (read per call: the tests switch them), default d, clamped to
 * [lo, hi]. */
static int64_t att_knob(const char *name, int64_t d, int64_t lo, int64_t hi) {
    const char *e = getenv(name);
    const int64_t v = e && *e ? atoll(e) : d;
    return v < lo ? lo : v > hi ? hi : v;
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
/* 8 bf16 (one 16-byte word) as f32 */
__device__ __forceinline__ void att_unpack8(const uint4 a, float *o) {
    att_bf2(a.x, o), att_bf2(a.y, o + 2), att_bf2(a.z, o + 4), att_bf2(a.w, o + 6);
}
/* A 16-byte read-only load that stays where it is written (the raw k_attn8 issues all of an
 * iteration's loads before it uses any) */
__device__ __forceinline__ uint4 att_ld16(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}
/* The online softmax step of one key: score d folds into (m, l); returns the factor of the old
 * output (sc) and the weight of the key's value (p). */
__device__ __forceinline__ void att_fold(float &m, float &l, float d, float &sc, float &p) {
    const float mn = fmaxf(m, d);
    sc = expf(m - mn), p = expf(d - mn);
    l = l * sc + p;
    m = mn;
}
/* Sums two partial dot products over the 8 lanes of a key group. */
__device__ __forceinline__ void att_sum8(float &a, float &b) {
#pragma unroll
    for (int off = 1; off < 8; off <<= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, off);
        b += __shfl_xor_sync(0xffffffffu, b, off);
    }
}
/* o[16] = o sc + p v for a value row held raw (two 16-byte words of bf16). */
__device__ __forceinline__ void att_acc_raw(float *o, const uint4 *rv, float sc, float p) {
#pragma unroll
    for (int j = 0; j < 2; j++) {
        float f[8];
        att_unpack8(rv[j], f);
#pragma unroll
        for (int e = 0; e < 8; e++) o[8 * j + e] = o[8 * j + e] * sc + p * f[e];
    }
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

/* Splits that get keys: one per `act` keys of the row (at least 1, at most nsplit), so a short
 * filled length in a long cache does not pay for merging empty splits (the merge through global
 * memory; the cluster merge takes all nsplit). Uniform over the blocks of a (query, head). */
__device__ __forceinline__ int att_active(int n, int nsplit, int act) {
    const int a = (n + act - 1) / act;
    return a < 1 ? 1 : a > nsplit ? nsplit : a;
}

/* The merge through global memory: every block of a (query, head group) stored its partials at
 * P0 (head gi, split sp at P0 + (gi * nsplit + sp) * (hd + 2)); the last of the nact blocks to
 * arrive (a counter per group) merges them in split order, so the result does not depend on which
 * block is last, writes the G heads' outputs (contiguous at out) and resets the counter for the
 * next launch. Every thread of the block must call it. */
template <typename OT>
__device__ void att_last_merge(OT *__restrict__ out, const float *P0, int nsplit, int nact, int G, int hd, int *cnt) {
    __shared__ int s_last;
    __threadfence(); /* this block's partials are visible before its arrival is counted */
    __syncthreads();
    if (threadIdx.x == 0) {
        s_last = atomicAdd(cnt, 1) == nact - 1;
        if (s_last) *cnt = 0; /* every block of the group has arrived: ready for the next launch */
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    for (int gi = 0; gi < G; gi++) att_merge(out + (size_t)gi * hd, P0 + (size_t)gi * nsplit * (hd + 2), nact, hd);
}

/* The merge inside a cluster: the nsplit blocks of one (query, head group) form a cluster (rank =
 * split), each with its partials in shared memory (max m[G], sum l[G], unnormalised output
 * o[G * hd] of its G heads, whose outputs are contiguous at out); block `rank` writes outputs rank
 * * blockDim + tid, ... and sums every output over the ranks in rank order (all loads of an output
 * issued first: distributed shared memory has a long latency). Every thread of every block of the
 * cluster must call it (two cluster barriers: the partials are complete, and no block leaves while
 * another reads its shared memory). */
template <typename OT>
__device__ void att_cluster_merge(OT *__restrict__ out, const float *cm_m, const float *cm_l, const float *cm_o, int G,
                                  int hd, int nsplit) {
    namespace cg = cooperative_groups;
    cg::cluster_group cl = cg::this_cluster();
    cl.sync();
    const int rank = (int)cl.block_rank();
    for (int idx = rank * (int)blockDim.x + (int)threadIdx.x; idx < G * hd; idx += nsplit * (int)blockDim.x) {
        const int gi = idx / hd;
        float m[ATT_MAX_CLUSTER], l[ATT_MAX_CLUSTER], o[ATT_MAX_CLUSTER];
#pragma unroll
        for (int q = 0; q < ATT_MAX_CLUSTER; q++)
            if (q < nsplit) {
                m[q] = *cl.map_shared_rank(cm_m + gi, q);
                l[q] = *cl.map_shared_rank(cm_l + gi, q);
                o[q] = *cl.map_shared_rank(cm_o + idx, q);
            }
        float M = -INFINITY;
#pragma unroll
        for (int q = 0; q < ATT_MAX_CLUSTER; q++)
            if (q < nsplit) M = fmaxf(M, m[q]);
        float L = 0.0f, acc = 0.0f;
#pragma unroll
        for (int q = 0; q < ATT_MAX_CLUSTER; q++)
            if (q < nsplit && m[q] != -INFINITY) {
                const float w = expf(m[q] - M);
                L += l[q] * w;
                acc += o[q] * w;
            }
        cu_put(out + idx, L > 0.0f ? acc / L : 0.0f);
    }
    cl.sync();
}

template <int HDJ, typename KT, typename OT>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attn(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q, const KT *__restrict__ K,
           const KT *__restrict__ V, const int32_t *__restrict__ len, const int32_t *__restrict__ qpos, int T,
           int Hq, int Hkv, int S, int hd, int nsplit, int cm, int *cnt, int act) {
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS], cm_m, cm_l;
    __shared__ float sm_o[ATT_WARPS][HDJ * 32], cm_o[HDJ * 32];
    const int bt = blockIdx.x, h = blockIdx.y, sp = blockIdx.z;
    const int r = bt / T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    cu_pdl_wait();
    int n = len[r];
    if (qpos) n = min(n, qpos[bt] + 1);
    n = max(0, min(n, S));
    const int nact = cm ? nsplit : att_active(n, nsplit, act);
    if (sp >= nact) return; /* uniform over the block; never with cm */
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
    for (int t0 = sp * ATT_WARPS; t0 < n; t0 += nact * ATT_WARPS) { /* tiles of ATT_WARPS keys */
        const int s = t0 + warp;
        if (s >= n) break;
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
        if (cm) cm_o[e] = acc;
        else if (nact == 1) cu_put(Out + orow + e, L > 0.0f ? acc / L : 0.0f);
        else P[2 + e] = acc;
    }
    if (threadIdx.x == 0) {
        if (cm) cm_m = M, cm_l = L;
        else if (nact > 1) P[0] = M, P[1] = L;
    }
    if (cm) att_cluster_merge(Out + orow, &cm_m, &cm_l, cm_o, 1, hd, nsplit);
    else if (nact > 1) att_last_merge(Out + orow, P - (size_t)sp * (hd + 2), nsplit, nact, 1, hd, cnt + (size_t)bt * Hq + h);
}

/* head_dim 32 / 64 / 128 (16-byte aligned rows): 8 lanes per key, so a warp works on 4 keys at
 * once and every lane issues float4 loads; each group of 8 lanes keeps its own online softmax
 * over keys grp, grp + 16, ... of the block's tiles (2 keys per iteration in flight), and the 16 groups of
 * the block are merged in shared memory. */
template <int EPL, typename KT, typename OT, bool RAW = false>
/* bf16 with head 128 (the cross-attention): 8 blocks per SM (64 registers, no spills; unbounded it
 * took 96 and ran 5 blocks per SM, 63% of the DRAM bandwidth at B = 64) */
__global__ void __launch_bounds__(ATT_WARPS * 32, sizeof(KT) == 2 && EPL == 16 ? 8 : 1)
    k_attn8(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q, const KT *__restrict__ K,
            const KT *__restrict__ V, const int32_t *__restrict__ len, const int32_t *__restrict__ qpos, int T,
            int Hq, int Hkv, int S, int hd, int nsplit, int cm, int *cnt, int act) {
    constexpr int HD = EPL * 8, NG = ATT_WARPS * 4;
    /* bf16 head 128 (the cross-attention): q in shared memory and the four rows of an iteration
     * loaded raw (unpacked where used), so that all of them are in flight at once within 64
     * registers, with each load instruction reading whole 128-byte runs of a row (RAW;
     * DIA_CUDA_ATT_RAW=0: the register form below) */
    constexpr bool RAWOK = RAW && sizeof(KT) == 2 && EPL == 16;
    __shared__ float sm_m[NG], sm_l[NG], cm_m, cm_l;
    __shared__ float sm_o[NG][HD], cm_o[HD];
    __shared__ __align__(16) float sq[RAWOK ? HD : 4];
    const int bt = blockIdx.x, h = blockIdx.y, sp = blockIdx.z;
    const int r = bt / T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 3, sl = lane & 7;
    const int grp = warp * 4 + g;
    cu_pdl_wait();
    int n = len[r];
    if (qpos) n = min(n, qpos[bt] + 1);
    n = max(0, min(n, S));
    const int nact = cm ? nsplit : att_active(n, nsplit, act);
    if (sp >= nact) return; /* uniform over the block; never with cm */
    const int kvh = h / (Hq / Hkv);
    const float4 *qv = (const float4 *)(Q + ((size_t)bt * Hq + h) * HD + sl * EPL);
    const size_t kv0 = ((size_t)r * Hkv + kvh) * (size_t)S * HD; /* this (row, kv head)'s first key */
    const KT *kb = K + kv0 + sl * EPL, *vb = V + kv0 + sl * EPL;
    float o[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) o[e] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    if constexpr (RAWOK) {
        const float4 *qh = (const float4 *)(Q + ((size_t)bt * Hq + h) * HD);
        if (threadIdx.x < HD / 4) ((float4 *)sq)[threadIdx.x] = qh[threadIdx.x];
        __syncthreads();
        /* lane sl holds elements j * 64 + sl * 8 + (0..7), j = 0, 1: each load instruction
         * reads 128 contiguous bytes of a row (whole sectors) */
        const KT *kr = K + kv0 + sl * 8, *vr = V + kv0 + sl * 8;
        for (int t0 = sp * 2 * NG; t0 < n; t0 += nact * 2 * NG) { /* tiles of 2 NG keys */
            const int sa = t0 + warp * 4 + g, sb = sa + NG;
            const bool va = sa < n, vb_ = sb < n;
            const uint4 *pka = (const uint4 *)(kr + (size_t)sa * HD), *pkb = (const uint4 *)(kr + (size_t)sb * HD);
            const uint4 *pva = (const uint4 *)(vr + (size_t)sa * HD), *pvb = (const uint4 *)(vr + (size_t)sb * HD);
            uint4 rka[2], rkb[2], rva[2], rvb[2];
#pragma unroll
            for (int j = 0; j < 2; j++) { /* + j * 64 elements = 8 uint4 */
                rka[j] = va ? att_ld16(pka + 8 * j) : make_uint4(0, 0, 0, 0);
                rkb[j] = vb_ ? att_ld16(pkb + 8 * j) : make_uint4(0, 0, 0, 0);
                rva[j] = va ? att_ld16(pva + 8 * j) : make_uint4(0, 0, 0, 0);
                rvb[j] = vb_ ? att_ld16(pvb + 8 * j) : make_uint4(0, 0, 0, 0);
            }
            float da = 0.0f, db = 0.0f;
#pragma unroll
            for (int j = 0; j < 2; j++) {
                float qf[8], fa[8], fb[8];
                const float4 *qs = (const float4 *)(sq + j * 64 + sl * 8);
                const float4 q0 = qs[0], q1 = qs[1];
                qf[0] = q0.x, qf[1] = q0.y, qf[2] = q0.z, qf[3] = q0.w, qf[4] = q1.x, qf[5] = q1.y, qf[6] = q1.z, qf[7] = q1.w;
                att_unpack8(rka[j], fa);
                att_unpack8(rkb[j], fb);
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    da = fmaf(qf[e], fa[e], da);
                    db = fmaf(qf[e], fb[e], db);
                }
            }
            att_sum8(da, db);
            float sc, p;
            if (va) att_fold(m, l, da, sc, p), att_acc_raw(o, rva, sc, p);
            if (vb_) att_fold(m, l, db, sc, p), att_acc_raw(o, rvb, sc, p);
        }
    }
    float q[EPL];
#pragma unroll
    for (int j = 0; j < EPL / 4; j++) {
        const float4 a = qv[j];
        q[4 * j] = a.x, q[4 * j + 1] = a.y, q[4 * j + 2] = a.z, q[4 * j + 3] = a.w;
    }
    for (int t0 = sp * 2 * NG; t0 < n && !RAWOK; t0 += nact * 2 * NG) { /* tiles of 2 NG keys */
        const int base = t0 + warp * 4;
        const int sa = base + g, sb = base + g + NG;
        const bool va = sa < n, vb_ = sb < n;
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
        att_sum8(da, db);
        float sc, p;
        if (va) {
            att_fold(m, l, da, sc, p);
#pragma unroll
            for (int e = 0; e < EPL; e++) o[e] = o[e] * sc + p * vA[e];
        }
        if (vb_) {
            att_fold(m, l, db, sc, p);
#pragma unroll
            for (int e = 0; e < EPL; e++) o[e] = o[e] * sc + p * vB[e];
        }
    }
    if (sl == 0) {
        sm_m[grp] = m;
        sm_l[grp] = l;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) sm_o[grp][RAWOK ? (e >> 3) * 64 + sl * 8 + (e & 7) : sl * EPL + e] = o[e];
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
        if (cm) cm_o[e] = acc;
        else if (nact == 1) cu_put(Out + orow + e, L > 0.0f ? acc / L : 0.0f);
        else P[2 + e] = acc;
    }
    if (threadIdx.x == 0) {
        if (cm) cm_m = M, cm_l = L;
        else if (nact > 1) P[0] = M, P[1] = L;
    }
    if (cm) att_cluster_merge(Out + orow, &cm_m, &cm_l, cm_o, 1, HD, nsplit);
    else if (nact > 1) att_last_merge(Out + orow, P - (size_t)sp * (HD + 2), nsplit, nact, 1, HD, cnt + (size_t)bt * Hq + h);
}

/* GQA-grouped variant of k_attn8: block (query, kv head, split) serves the G query heads that share
 * the kv head, so each key and value row is read once per block instead of once per query head.
 * Each group of LPK lanes takes U keys per iteration (keys base + g + u NG, in the same order as
 * U = 1): U = 1 for f32 caches; 4 for bf16 (twice the bytes in flight of f32: measured 6% faster
 * than U = 2 at 128 rows x 1500 keys, 156 vs 166 us on the H100). */
template <int HD, int G, int LPK, typename KT, typename OT>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attn8g(OT *__restrict__ Out, float *__restrict__ Part, const float *__restrict__ Q,
             const KT *__restrict__ K, const KT *__restrict__ V, const int32_t *__restrict__ len,
             const int32_t *__restrict__ qpos, int T, int Hq, int Hkv, int S, int hd, int nsplit, int cm, int *cnt, int act) {
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
    const int nact = cm ? nsplit : att_active(n, nsplit, act);
    if (sp >= nact) return; /* uniform over the block; never with cm */
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
    for (int t0 = sp * U * NG; t0 < n; t0 += nact * U * NG) { /* tiles of U NG keys */
        const int base = t0 + warp * GPW;
        float ka[U][EPL], vv[U][EPL], d[U][G];
        bool va[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int sa = base + g + u * NG;
            va[u] = sa < n;
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
    __shared__ float sm_w[NG][G], sm_L[G], sm_M[G], cm_o[G * HD];
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
        if (cm) {
            cm_o[idx] = acc;
        } else if (nact == 1) {
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
    if (cm) att_cluster_merge(Out + ((size_t)bt * Hq + kvh * G) * HD, sm_M, sm_L, cm_o, G, HD, nsplit);
    else if (nact > 1)
        att_last_merge(Out + ((size_t)bt * Hq + kvh * G) * HD, Part + ((size_t)bt * Hq + kvh * G) * nsplit * (HD + 2),
                       nsplit, nact, G, HD, cnt + (size_t)bt * Hkv + kvh);
}

template <typename KT, typename OT>
using att_kernel = void (*)(OT *, float *, const float *, const KT *, const KT *, const int32_t *, const int32_t *, int,
                            int, int, int, int, int, int, int *, int);

/* The kernel for (vec, grouped, G, hd) on cache element type KT, output type OT. */
template <typename KT, typename OT>
static att_kernel<KT, OT> att_pick(int hd, int vec, int grouped, int G, int raw) {
    const int hdj = (hd + 31) / 32;
    if (grouped && G == 4) return k_attn8g<128, 4, 16, KT, OT>;
    if (grouped) return k_attn8g<128, 2, 8, KT, OT>;
    if (vec && hd == 128) return raw ? k_attn8<16, KT, OT, true> : k_attn8<16, KT, OT>;
    if (vec && hd == 64) return k_attn8<8, KT, OT>;
    if (vec && hd == 32) return k_attn8<4, KT, OT>;
    if (hdj <= 1) return k_attn<1, KT, OT>;
    if (hdj <= 2) return k_attn<2, KT, OT>;
    if (hdj <= 4) return k_attn<4, KT, OT>;
    return k_attn<8, KT, OT>;
}

/* grid (queries, heads or kv heads, nsplit); cluster > 1: the nsplit blocks of a (query, head) are
 * one cluster of `cluster` = nsplit blocks along z (the merge inside the cluster). PDL when enabled. */
static cudaLaunchConfig_t att_config(dim3 grid, int cluster, cudaStream_t st, cudaLaunchAttribute *attr) {
    const dim3 cl(1, 1, (unsigned)cluster);
    return cu_config(grid, dim3(ATT_WARPS * 32), 0, st, cu_pdl_enabled(), cluster > 1 ? &cl : NULL, attr);
}

/* The largest cluster (<= want) of `kernel`'s blocks the device can run (1: none). */
static int att_cluster_fit(const void *kernel, int want) {
    for (int s = want; s > 1; s--) {
        cudaLaunchAttribute attr[2];
        const cudaLaunchConfig_t cfg = att_config(dim3(1, 1, (unsigned)s), s, 0, attr);
        if (cu_cluster_fits(kernel, &cfg)) return s;
    }
    return 1;
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
    /* DIA_CUDA_ATT_WANT: blocks per SM a decode attention aims at (default 4; comparisons) */
    const int64_t per_sm = att_knob("DIA_CUDA_ATT_WANT", 4, 1, 64);
    const int64_t base = R * T * Hq, want = per_sm * (int64_t)c->sm_count;
    int64_t nsplit = 1;
    if (blocks_base < want && S > 64) {
        nsplit = (want + blocks_base - 1) / blocks_base;
        const int64_t min_chunk = att_knob("DIA_CUDA_ATT_MINCHUNK", 32, 1, INT32_MAX); /* fewest keys per split */
        const int64_t max_split = (S + min_chunk - 1) / min_chunk;
        if (nsplit > max_split) nsplit = max_split;
        if (nsplit > ATT_MAX_SPLIT) nsplit = ATT_MAX_SPLIT;
    }
    const int bf16_cache = k->dtype == DIA_BF16, bf16_out = out->dtype == DIA_BF16;
    /* DIA_CUDA_ATT_RAW=0: the bf16 head-128 ungrouped kernel (cross-attention) in its register form */
    const int raw = (int)att_knob("DIA_CUDA_ATT_RAW", 1, 0, 1);
    const void *kern = bf16_cache ? (bf16_out ? (const void *)att_pick<__nv_bfloat16, __nv_bfloat16>((int)hd, vec, grouped, (int)G, raw)
                                              : (const void *)att_pick<__nv_bfloat16, float>((int)hd, vec, grouped, (int)G, raw))
                                  : (bf16_out ? (const void *)att_pick<float, __nv_bfloat16>((int)hd, vec, grouped, (int)G, 0)
                                              : (const void *)att_pick<float, float>((int)hd, vec, grouped, (int)G, 0));
    /* Many splits of a small grid (B = 1, 8): the merge inside a cluster of <= 16 blocks (fewer
     * splits than wanted where more would be: each block takes more tiles). Few splits of a big
     * grid: the merge through global memory, over the splits that got keys (DIA_CUDA_ATT_ACTIVE keys
     * each, default 256: at B = 64 one split up to 256 filled positions, three at 1,500). Measured on
     * the H100, docs/performance.md. DIA_CUDA_ATT_CLUSTER: largest cluster (0 or 1: never),
     * DIA_CUDA_ATT_CLUSTER_MIN: fewest splits that take a cluster (default 5). */
    int cluster = 1;
    if (nsplit >= att_knob("DIA_CUDA_ATT_CLUSTER_MIN", 5, 2, ATT_MAX_SPLIT)) {
        const int cmax = (int)att_knob("DIA_CUDA_ATT_CLUSTER", ATT_MAX_CLUSTER, 0, ATT_MAX_CLUSTER);
        if (cmax > 1) cluster = att_cluster_fit(kern, (int)(nsplit < cmax ? nsplit : cmax));
        if (cluster > 1) nsplit = cluster;
    }
    const int cm = cluster > 1, act = (int)att_knob("DIA_CUDA_ATT_ACTIVE", 256, 1, INT32_MAX);
    float *part = NULL;
    int *cnt = NULL;
    if (nsplit > 1 && !cm) {
        void *p;
        dia_status st = cu_scratch(be, CU_SCRATCH_ATTN, (size_t)(base * nsplit * (hd + 2)) * sizeof(float), &p);
        if (st != DIA_OK) return st;
        part = (float *)p;
        if ((st = cu_scratch(be, CU_SCRATCH_CNT, (size_t)base * sizeof(int), &p)) != DIA_OK) return st;
        cnt = (int *)p;
    }
    const dim3 grid((unsigned)(R * T), (unsigned)(grouped ? Hkv : Hq), (unsigned)nsplit);
    cudaLaunchAttribute attr[2];
    const cudaLaunchConfig_t cfg = att_config(grid, cluster, c->stream, attr);
    const int32_t *lp = (const int32_t *)cu_ptr(kv_len), *pp = qpos ? (const int32_t *)cu_ptr(qpos) : NULL;
    const float *qp = (const float *)cu_ptr(q);
    const int iT = (int)T, iHq = (int)Hq, iHkv = (int)Hkv, iS = (int)S, ihd = (int)hd, ins = (int)nsplit;
    const __nv_bfloat16 *kb = (const __nv_bfloat16 *)cu_ptr(k), *vb = (const __nv_bfloat16 *)cu_ptr(v);
    const float *kf = (const float *)cu_ptr(k), *vf = (const float *)cu_ptr(v);
    __nv_bfloat16 *ob = (__nv_bfloat16 *)cu_ptr(out);
    float *of = (float *)cu_ptr(out);
#define ATT_GO(KT, OT, o, kk, vv)                                                                                      \
    CU_CHECK(cudaLaunchKernelEx(&cfg, (att_kernel<KT, OT>)kern, o, part, qp, kk, vv, lp, pp, iT, iHq, iHkv, iS, ihd, ins, \
                                cm, cnt, act))
    if (bf16_cache && bf16_out) ATT_GO(__nv_bfloat16, __nv_bfloat16, ob, kb, vb);
    else if (bf16_cache) ATT_GO(__nv_bfloat16, float, of, kb, vb);
    else if (bf16_out) ATT_GO(float, __nv_bfloat16, ob, kf, vf);
    else ATT_GO(float, float, of, kf, vf);
#undef ATT_GO
    CU_LAUNCHED("attention");
    return DIA_OK;
}
