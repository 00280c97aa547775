/* cuda_sample.cu - the sampler on the device: one block per (item, channel) turns the CFG pair of
 * logit rows into a code, so a decode step sends B*C codes to the host instead of 2B*C*V logits.
 * The algorithm is lib/sampler.c's, step by step: guided = cond + s (cond - uncond) chooses the
 * top-k set (ties: lower index), the conditional logits inside it are sampled, PAD/BOS (and EOS on
 * channels > 0) masked, argmax (temperature 0 stops here), temperature, EOS rule, softmax, top-p
 * (the crossing token kept), softmax, inverse CDF of u = SplitMix64(seed, item, step, channel) in
 * vocabulary order. Reductions run in another order than the host's, so probabilities agree to
 * rounding, not bit for bit.
 *
 * Work per block is kept near linear in V, and its chain of block barriers short (a block's latency
 * is the step's: at B = 1 only 9 blocks run). The top-k set comes from a radix select over
 * order-preserving 32-bit keys (8 bits per pass, stopping at the first pass whose bin of the k-th
 * key is taken whole) plus, for ties at the k-th value, a scan that admits them in index order.
 * The candidates are then compacted in vocabulary order with their logits, and warp 0 alone takes
 * the argmax, temperature, EOS rule and softmaxes over them (shuffles, no block barriers); top-p
 * compares every candidate with every other on all threads, and one thread walks the inverse CDF
 * in the host's order. (The first version compared every pair of tokens: 389 us per step at B = 1,
 * 814 us at B = 64 on the H100; the second ran every step over the whole vocabulary with block
 * reductions, ~40 block barriers: 20.9 us at B = 1.) */
#include <math.h>

#include "cuda_common.cuh"

#define SAMPLE_THREADS 256

__device__ static uint64_t d_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Order-preserving key of a guided logit for the ranking "value descending, then index ascending":
 * larger key = earlier; NaN ranks as -inf and -0 as +0 (they compare equal as floats, so the index
 * decides). Every key is >= 0 as an unsigned number. */
__device__ static uint32_t d_key(float x) {
    if (isnan(x)) x = -INFINITY;
    if (x == 0.0f) x = 0.0f;
    const uint32_t b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* Block-wide stream compaction in vocabulary order: emit(i, v) for the i-th v < V (ascending) with
 * flag(v); returns their count. Thread t takes the contiguous range [t per, (t + 1) per), so its
 * first index is the count of the threads before it: a warp scan by shuffles plus the totals of
 * the warps before. cnt: [32] ints of shared memory. */
template <typename F, typename E>
__device__ static int d_compact(int V, F flag, E emit, int *cnt) {
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
        if (flag(v)) emit(pos++, v);
    __syncthreads();
    return total;
}

/* The top-k set of the guided logits g[0 .. V) as a key threshold T: the set is every key > T and,
 * where *admit >= 0, the first *admit tokens (index order) whose key is T (ties at the k-th
 * value); *admit < 0: every key >= T. Radix select, 8 bits per pass from the top; it stops at the
 * first pass whose bin of the k-th key is taken whole (the set is then every key >= the bin's
 * prefix), usually the second or third. hist: [256] ints, res: [3] ints of shared memory. */
__device__ static uint32_t d_topk_threshold(const float *g, int V, int k, int *hist, int *res, int *admit) {
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
                res[0] = bin, res[1] = remaining - above, res[2] = hist[bin];
            }
        }
        __syncthreads();
        /* (no barrier after these reads: warp 0 writes res again only after the next pass's two) */
        prefix |= (uint32_t)res[0] << shift;
        mask |= 255u << shift;
        remaining = res[1];
        if (res[2] == remaining) { /* the bin taken whole (the same answer for every thread) */
            *admit = -1;
            return prefix;
        }
    }
    *admit = remaining; /* T is the k-th key itself; `remaining` of its ties are in */
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

/* Warp 0: probabilities pr[i] = exp(x[i] - mx) / sum over the n candidates (0 where x is -inf, as on
 * the host); returns the sum (0 or NaN: the host's probabilities are NaN everywhere). */
__device__ static double d_softmax(const float *x, float *pr, int n, float mx) {
    const int lane = threadIdx.x & 31;
    double part = 0;
    for (int i = lane; i < n; i += 32) {
        pr[i] = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx);
        part += pr[i];
    }
    const double sum = cu_warp_sum(part);
    for (int i = lane; i < n; i += 32) pr[i] = (float)(pr[i] / sum);
    __syncwarp();
    return sum;
}

__global__ void k_sample(int32_t *codes, int32_t *feed, const int32_t *force, const float *logits, int C, int V, int eos,
                         int top_k, float cfg_scale, double temperature, double top_p, uint64_t seed, uint64_t step) {
    extern __shared__ unsigned char smem[];
    float *g = (float *)smem;          /* [V] guided logits */
    float *cr = g + V;                 /* [V] conditional logits */
    int *cand = (int *)(cr + V);       /* [n <= V] the candidates' tokens, ascending */
    float *cx = (float *)(cand + V);   /* [n] their working logits */
    float *cp = cx + V;                /* [n] their probabilities (before: [V] ints, admitted ties) */
    int *cnt = (int *)(cp + V);        /* [32] scan counts */
    int *hist = cnt + 32;              /* [256] radix histogram, then [3] select results */
    const int b = blockIdx.x / C, c = blockIdx.x % C, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float *uncond = logits + ((size_t)(2 * b) * C + c) * V;
    const float *cond = logits + ((size_t)(2 * b + 1) * C + c) * V;
    cu_pdl_wait(); /* (launched early with PDL: the logits are the kernel before's) */
    /* 1. CFG: guided logits choose the candidate set (no FMA contraction, as on the host) */
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = cond[v];
        cr[v] = x, g[v] = __fadd_rn(x, __fmul_rn(cfg_scale, __fsub_rn(x, uncond[v])));
    }
    __syncthreads();
    /* 2. the candidates: the top_k first tokens in (guided desc, index asc) order, less PAD / BOS (and
     * EOS on channels > 0), in vocabulary order with their conditional logits */
    const int first_masked = c == 0 ? eos + 1 : eos;
    int admit = -1;
    const uint32_t T = top_k >= V ? 0u : d_topk_threshold(g, V, top_k, hist, hist + 256, &admit);
    int *tie_in = (int *)cp;
    if (admit >= 0) { /* ties at the k-th value: the first `admit` of them in index order */
        for (int v = threadIdx.x; v < V; v += blockDim.x) tie_in[v] = 0;
        d_compact(V, [&](int v) { return d_key(g[v]) == T; }, [&](int i, int v) { if (i < admit) tie_in[v] = 1; }, cnt);
    }
    const int n = d_compact(
        V,
        [&](int v) {
            const uint32_t key = d_key(g[v]);
            return v < first_masked && (key > T || (key == T && (admit < 0 || tie_in[v])));
        },
        [&](int i, int v) { cand[i] = v, cx[i] = cr[v]; }, cnt);
    /* 3. argmax of the candidates' logits (first maximal token; 0 where all are -inf, as the host's
     * argmax over the masked row), warp 0; temperature 0 stops here */
    int best = 0;
    float mx = -INFINITY;
    double sum = 0;
    if (warp == 0) {
        float bv = -INFINITY;
        int bi = V; /* none yet */
        for (int i = lane; i < n; i += 32)
            if (cx[i] > bv) bv = cx[i], bi = cand[i]; /* ascending per lane: the first max kept */
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (oi < V && (bi == V || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
        }
        best = bi == V ? 0 : bi;
        if (temperature == 0.0) {
            if (lane == 0) d_put(codes, feed, force, b, c, C, best);
        } else {
            /* 4. temperature (in double, as the host), 5. EOS rule, 7. softmax (6, top-k again, is a no-op) */
            for (int i = lane; i < n; i += 32) {
                float x = (float)(cx[i] / temperature);
                if (best == eos ? cand[i] < eos : cand[i] == eos) x = -INFINITY;
                cx[i] = x;
                mx = fmaxf(mx, x);
            }
            mx = cu_warp_max(mx);
            __syncwarp();
            sum = d_softmax(cx, cp, n, mx);
        }
    }
    if (temperature == 0.0) return;
    /* top-p: a candidate is removed when the mass ranked before it already exceeds top_p (all
     * threads). The mass is summed over the candidates (pr > 0) ranked before it in vocabulary order;
     * the host sums in rank order, so the two can differ by rounding at the boundary. */
    if (top_p < 1.0) {
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const float pv = cp[i];
            if (!(pv > 0)) continue;
            const int v = cand[i];
            float cum = 0.0f;
            int before = 0;
            for (int j = 0; j < n; j++) {
                const float pu = cp[j];
                const int u = cand[j];
                if (pu > 0 && (pu > pv || (pu == pv && u < v))) cum += pu, before = 1;
            }
            if (before && cum > (float)top_p) cx[i] = -INFINITY;
        }
        __syncthreads();
        if (warp == 0 && sum > 0) d_softmax(cx, cp, n, mx);
    }
    /* 8. inverse CDF in vocabulary order over the candidates with pr > 0, one thread: the host's
     * order exactly. A sum of 0 or NaN (every logit masked, or a NaN logit): the host's
     * probabilities are NaN for every token, and its inverse CDF returns the last, V - 1. */
    if (threadIdx.x == 0) {
        uint64_t h = d_mix64(seed);
        h = d_mix64(h ^ (uint64_t)b);
        h = d_mix64(h ^ step);
        h = d_mix64(h ^ (uint64_t)c);
        const double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
        double cum = 0;
        int pick = V - 1;
        if (sum > 0) {
            pick = 0;
            for (int i = 0; i < n; i++) {
                if (!(cp[i] > 0)) continue;
                pick = cand[i];
                cum += cp[i];
                if (u < cum) break;
            }
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
    const size_t shared = (size_t)5 * a->V * sizeof(float) + (32 + 256 + 3) * sizeof(int);
    if (shared > 48 * 1024) return dia_fail(DIA_ERR_INTERNAL, "sample: vocabulary %d too large for the device sampler", a->V);
    CU_CHECK(cu_launch(k_sample, dim3((unsigned)(a->B * a->C)), dim3(SAMPLE_THREADS), shared, cu_ctx(be)->stream,
                       (int32_t *)cu_ptr(codes), a->feed ? (int32_t *)cu_ptr(a->feed) : NULL,
                       a->force ? (const int32_t *)cu_ptr(a->force) : NULL, (const float *)cu_ptr(logits), a->C, a->V,
                       a->eos, a->top_k, (float)a->cfg_scale, a->temperature, a->top_p, a->seed, a->step));
    CU_LAUNCHED("sample");
    return DIA_OK;
}
