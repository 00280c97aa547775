/* cuda_sample.cu - the sampler on the device: one block per (item, channel) turns the CFG pair of
 * logit rows into a code, so a decode step sends B*C codes to the host instead of 2B*C*V logits.
 * The algorithm is lib/sampler.c's, step by step: guided = cond + s (cond - uncond) chooses the
 * top-k set (ties: lower index), the conditional logits inside it are sampled, PAD/BOS (and EOS on
 * channels > 0) masked, argmax (temperature 0 stops here), temperature, EOS rule, softmax, top-p
 * (the crossing token kept), softmax, inverse CDF of u = SplitMix64(seed, item, step, channel) in
 * vocabulary order. Reductions run in another order than the host's, so probabilities agree to
 * rounding, not bit for bit.
 *
 * Work per block is kept near linear in V (a block's latency is the step's, at B = 1 only 9 blocks
 * run): the top-k set comes from a radix select over order-preserving 32-bit keys (4 passes of 8
 * bits) plus a scan that admits the tied threshold values in index order; top-p and the inverse CDF
 * walk the compacted candidate list (ascending vocabulary order, so every sum is taken in the
 * host's order) instead of the whole vocabulary. (The first version compared every pair of
 * tokens: 389 us per step at B = 1, 814 us at B = 64 on the H100.) */
#include <math.h>

#include "cuda_common.cuh"

#define SAMPLE_THREADS 256

__device__ static uint64_t d_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* a ranks before b: value descending, then index ascending (NaN counts as -inf) */
__device__ static bool d_before(float a, int ia, float b, int ib) {
    if (isnan(a)) a = -INFINITY;
    if (isnan(b)) b = -INFINITY;
    return a > b || (a == b && ia < ib);
}

/* (bv, bi) takes (ov, oi) if that ranks first: larger value, then lower index; bi == V: none yet. */
__device__ static void d_argmax_take(float &bv, int &bi, float ov, int oi, int V) {
    if (oi < V && (bi == V || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
}

/* Block-wide argmax (first maximal index) of row[V]: warp shuffles, then the warps' results in
 * warp order (every thread the same). sv, si: [32] of shared memory. */
__device__ static int d_block_argmax(const float *row, int V, float *sv, int *si) {
    float bv = -INFINITY;
    int bi = V; /* none yet */
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        if (bi == V || row[v] > bv) bv = row[v], bi = v; /* ascending v per thread: first max kept */
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        d_argmax_take(bv, bi, ov, oi, V);
    }
    if ((threadIdx.x & 31) == 0) sv[threadIdx.x >> 5] = bv, si[threadIdx.x >> 5] = bi;
    __syncthreads();
    bv = -INFINITY, bi = V;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) d_argmax_take(bv, bi, sv[w], si[w], V);
    __syncthreads(); /* sv, si are reused */
    return bi == V ? 0 : bi;
}

/* Block-wide sum in double (warp shuffles, then the warp sums in warp order). sd: [32] doubles. */
__device__ static double d_block_sum(double x, double *sd) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    if ((threadIdx.x & 31) == 0) sd[threadIdx.x >> 5] = x;
    __syncthreads();
    double r = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r += sd[w];
    __syncthreads();
    return r;
}

/* probs[v] = exp(row[v] - mx) / sum (0 where row is -inf). */
__device__ static void d_softmax(const float *row, float *pr, int V, float mx, double *sd) {
    double part = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        pr[v] = row[v] == -INFINITY ? 0.0f : expf(row[v] - mx);
        part += pr[v];
    }
    const double sum = d_block_sum(part, sd);
    for (int v = threadIdx.x; v < V; v += blockDim.x) pr[v] = (float)(pr[v] / sum);
    __syncthreads();
}

/* Order-preserving key of a guided logit for the ranking of d_before: larger key = earlier;
 * NaN ranks as -inf and -0 as +0 (they compare equal as floats, so the index decides). */
__device__ static uint32_t d_key(float x) {
    if (isnan(x)) x = -INFINITY;
    if (x == 0.0f) x = 0.0f;
    const uint32_t b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* Block-wide stream compaction in vocabulary order: out[0 .. n) = the v < V with flag(v), ascending;
 * returns n. Thread t takes the contiguous range [t per, (t + 1) per), so its output offset is the
 * count of the threads before it: a warp scan by shuffles plus the totals of the warps before.
 * cnt: [32] ints of shared memory. */
template <typename F>
__device__ static int d_compact(int V, F flag, int *out, int *cnt) {
    const int per = (V + blockDim.x - 1) / blockDim.x, v0 = threadIdx.x * per, v1 = min(V, v0 + per);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int n = 0;
    for (int v = v0; v < v1; v++) n += flag(v) ? 1 : 0;
    int incl = n;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
        const int o = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += o;
    }
    if (lane == 31) cnt[warp] = incl;
    __syncthreads();
    int pos = incl - n, total = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) {
        if (w < warp) pos += cnt[w];
        total += cnt[w];
    }
    for (int v = v0; v < v1; v++)
        if (flag(v)) out[pos++] = v;
    __syncthreads();
    return total;
}

/* The key of the k-th element (1-based) in descending key order of g[0 .. V): radix select, 8 bits
 * per pass from the top. hist: [256] ints of shared memory; res: [2] ints of shared memory. */
__device__ static uint32_t d_kth_key(const float *g, int V, int k, int *hist, int *res) {
    uint32_t prefix = 0, mask = 0;
    int remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            const uint32_t key = d_key(g[v]);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1);
        }
        __syncthreads();
        if (threadIdx.x < 32) { /* warp 0: lane l sums bins 255 - 8l .. 248 - 8l (descending) */
            const int lane = threadIdx.x;
            int sum = 0;
            for (int j = 0; j < 8; j++) sum += hist[255 - 8 * lane - j];
            int incl = sum;
            for (int off = 1; off < 32; off <<= 1) {
                const int o = __shfl_up_sync(0xffffffffu, incl, off);
                if (lane >= off) incl += o;
            }
            const unsigned hit = __ballot_sync(0xffffffffu, incl >= remaining);
            const int first = __ffs(hit) - 1; /* the lane whose bins hold the k-th element */
            if (lane == first) {
                int above = incl - sum;
                int bin = 255 - 8 * lane;
                for (int j = 0; j < 8; j++, bin--) {
                    if (above + hist[bin] >= remaining) break;
                    above += hist[bin];
                }
                res[0] = bin;
                res[1] = remaining - above;
            }
        }
        __syncthreads();
        prefix |= (uint32_t)res[0] << shift;
        mask |= 255u << shift;
        remaining = res[1];
        __syncthreads();
    }
    return prefix;
}

/* The code of (b, c), and the next step's tokens when the step feeds them forward (feed: both rows
 * of item b; force >= 0 replaces the code there). */
__device__ static void d_put(int32_t *codes, int32_t *feed, const int32_t *force, int b, int c, int C, int code) {
    codes[(size_t)b * C + c] = code;
    if (feed) {
        const int f = force[(size_t)b * C + c];
        feed[(size_t)(2 * b) * C + c] = feed[(size_t)(2 * b + 1) * C + c] = f >= 0 ? f : code;
    }
}

__global__ void k_sample(int32_t *codes, int32_t *feed, const int32_t *force, const float *logits, int C, int V, int eos,
                         int top_k, float cfg_scale, double temperature, double top_p, uint64_t seed, uint64_t step) {
    extern __shared__ unsigned char smem[];
    float *g = (float *)smem;   /* [V] guided logits */
    float *row = g + V;         /* [V] working logits */
    float *pr = row + V;        /* [V] probabilities */
    int *cand = (int *)(pr + V); /* [V] compacted indices */
    float *sv = (float *)(cand + V); /* [32] reduction values (one per warp) */
    int *si = (int *)(sv + 32);      /* [32] reduction indices, scan counts */
    int *hist = si + 32;             /* [256] radix histogram, then [2] select results */
    double *sd = (double *)(((uintptr_t)(hist + 258) + 7) & ~(uintptr_t)7);
    const int b = blockIdx.x / C, c = blockIdx.x % C;
    const float *uncond = logits + ((size_t)(2 * b) * C + c) * V;
    const float *cond = logits + ((size_t)(2 * b + 1) * C + c) * V;
    /* 1. CFG: guided logits choose the candidate set (no FMA contraction, as on the host) */
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        g[v] = __fadd_rn(cond[v], __fmul_rn(cfg_scale, __fsub_rn(cond[v], uncond[v])));
    __syncthreads();
    const int first_masked = c == 0 ? eos + 1 : eos;
    /* the top_k first tokens in (guided desc, index asc) order: keys above the k-th key, then the
     * tokens at the k-th key in index order until top_k are in */
    if (top_k >= V) {
        for (int v = threadIdx.x; v < V; v += blockDim.x) row[v] = v < first_masked ? cond[v] : -INFINITY;
        __syncthreads();
    } else {
        const uint32_t kth = d_kth_key(g, V, top_k, hist, hist + 256);
        const int n_eq = d_compact(V, [&](int v) { return d_key(g[v]) == kth; }, cand, si);
        (void)n_eq;
        int *n_gt = hist; /* tokens strictly above the k-th key */
        if (threadIdx.x == 0) *n_gt = 0;
        __syncthreads();
        int mine = 0;
        for (int v = threadIdx.x; v < V; v += blockDim.x) mine += d_key(g[v]) > kth ? 1 : 0;
        atomicAdd(n_gt, mine);
        __syncthreads();
        const int admit = top_k - *n_gt; /* the first `admit` tied tokens (>= 1) */
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            const uint32_t key = d_key(g[v]);
            row[v] = (key > kth && v < first_masked) ? cond[v] : -INFINITY;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < admit; i += blockDim.x)
            if (cand[i] < first_masked) row[cand[i]] = cond[cand[i]];
        __syncthreads();
    }
    const int best = d_block_argmax(row, V, sv, si);
    if (temperature == 0.0) {
        if (threadIdx.x == 0) d_put(codes, feed, force, b, c, C, best);
        return;
    }
    /* 4. temperature (in double, as the host), 5. EOS rule */
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float x = (float)(row[v] / temperature);
        if (best == eos ? v < eos : v == eos) x = -INFINITY;
        row[v] = x;
    }
    __syncthreads();
    /* 6. (top-k again: a no-op) 7. softmax */
    const float mx = row[d_block_argmax(row, V, sv, si)];
    d_softmax(row, pr, V, mx, sd);
    /* top-p: a candidate is removed when the mass ranked before it already exceeds top_p; the sum
     * runs over the candidates (pr > 0) in vocabulary order, as on the host */
    if (top_p < 1.0) {
        const int n = d_compact(V, [&](int v) { return pr[v] > 0; }, cand, si);
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const int v = cand[i];
            float cum = 0.0f;
            int before = 0;
            for (int j = 0; j < n; j++) {
                const int u = cand[j];
                if (d_before(pr[u], u, pr[v], v)) cum += pr[u], before = 1;
            }
            if (before && cum > (float)top_p) row[v] = -INFINITY;
        }
        __syncthreads();
        d_softmax(row, pr, V, mx, sd);
    }
    /* 8. inverse CDF in vocabulary order over the tokens with pr > 0 or NaN (the host skips only
     * pr <= 0; NaN arises when every logit is masked), one thread: the host's order exactly */
    const int n = d_compact(V, [&](int v) { return !(pr[v] <= 0); }, cand, si);
    if (threadIdx.x == 0) {
        uint64_t h = d_mix64(seed);
        h = d_mix64(h ^ (uint64_t)b);
        h = d_mix64(h ^ step);
        h = d_mix64(h ^ (uint64_t)c);
        const double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
        double cum = 0;
        int pick = 0, found = 0;
        for (int i = 0; i < n && !found; i++) {
            const int v = cand[i];
            pick = v;
            cum += pr[v];
            found = u < cum;
        }
        d_put(codes, feed, force, b, c, C, pick);
    }
}

dia_status cu_sample(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *a) {
    if (codes->dtype != DIA_I32 || logits->dtype != DIA_F32 || a->B < 1 || a->C < 1 || a->V < 1 ||
        dia_tensor_nelem(codes) != (int64_t)a->B * a->C || dia_tensor_nelem(logits) != (int64_t)2 * a->B * a->C * a->V)
        return dia_fail(DIA_ERR_INTERNAL, "sample: bad shapes (B %d, C %d, V %d)", a->B, a->C, a->V);
    if (!a->feed != !a->force ||
        (a->feed && (a->feed->dtype != DIA_I32 || a->force->dtype != DIA_I32 ||
                     dia_tensor_nelem(a->feed) != (int64_t)2 * a->B * a->C || dia_tensor_nelem(a->force) != (int64_t)a->B * a->C)))
        return dia_fail(DIA_ERR_INTERNAL, "sample: bad feed / force tensors");
    const size_t shared = (size_t)4 * a->V * sizeof(float) + 32 * (sizeof(float) + sizeof(int)) + 258 * sizeof(int) +
                          8 + 32 * sizeof(double);
    if (shared > 48 * 1024) return dia_fail(DIA_ERR_INTERNAL, "sample: vocabulary %d too large for the device sampler", a->V);
    k_sample<<<a->B * a->C, SAMPLE_THREADS, shared, cu_ctx(be)->stream>>>(
        (int32_t *)cu_ptr(codes), a->feed ? (int32_t *)cu_ptr(a->feed) : NULL,
        a->force ? (const int32_t *)cu_ptr(a->force) : NULL, (const float *)cu_ptr(logits), a->C, a->V, a->eos, a->top_k, (float)a->cfg_scale,
        a->temperature, a->top_p, a->seed, a->step);
    CU_LAUNCHED("sample");
    return DIA_OK;
}
