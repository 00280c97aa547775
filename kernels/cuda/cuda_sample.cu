/* cuda_sample.cu - the sampler on the device: one block per (item, channel) turns the CFG pair of
 * logit rows into a code, so a decode step sends B*C codes to the host instead of 2B*C*V logits.
 * The algorithm is lib/sampler.c's, step by step: guided = cond + s (cond - uncond) chooses the
 * top-k set (ties: lower index), the conditional logits inside it are sampled, PAD/BOS (and EOS on
 * channels > 0) masked, argmax (temperature 0 stops here), temperature, EOS rule, softmax, top-p
 * (the crossing token kept), softmax, inverse CDF of u = SplitMix64(seed, item, step, channel) in
 * vocabulary order. Reductions run in another order than the host's, so probabilities agree to
 * rounding, not bit for bit. */
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

/* Block-wide argmax (first maximal index) of row[V]. */
__device__ static int d_block_argmax(const float *row, int V, float *sv, int *si) {
    float bv = -INFINITY;
    int bi = V; /* none yet */
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        if (bi == V || row[v] > bv) bv = row[v], bi = v; /* ascending v per thread: first max kept */
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const float ov = sv[threadIdx.x + s];
            const int oi = si[threadIdx.x + s];
            if (oi < V && (si[threadIdx.x] == V || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])))
                sv[threadIdx.x] = ov, si[threadIdx.x] = oi;
        }
        __syncthreads();
    }
    const int r = si[0] == V ? 0 : si[0];
    __syncthreads();
    return r;
}

/* Block-wide sum in double. */
__device__ static double d_block_sum(double x, double *sd) {
    sd[threadIdx.x] = x;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sd[threadIdx.x] += sd[threadIdx.x + s];
        __syncthreads();
    }
    const double r = sd[0];
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

__global__ void k_sample(int32_t *codes, const float *logits, int C, int V, int eos, int top_k, float cfg_scale,
                         double temperature, double top_p, uint64_t seed, uint64_t step) {
    extern __shared__ unsigned char smem[];
    float *g = (float *)smem;   /* [V] guided logits */
    float *row = g + V;         /* [V] working logits */
    float *pr = row + V;        /* [V] probabilities */
    float *sv = pr + V;         /* [blockDim] reduction values */
    int *si = (int *)(sv + blockDim.x);
    double *sd = (double *)(((uintptr_t)(si + blockDim.x) + 7) & ~(uintptr_t)7);
    const int b = blockIdx.x / C, c = blockIdx.x % C;
    const float *uncond = logits + ((size_t)(2 * b) * C + c) * V;
    const float *cond = logits + ((size_t)(2 * b + 1) * C + c) * V;
    /* 1. CFG: guided logits choose the candidate set (no FMA contraction, as on the host) */
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        g[v] = __fadd_rn(cond[v], __fmul_rn(cfg_scale, __fsub_rn(cond[v], uncond[v])));
    __syncthreads();
    const int first_masked = c == 0 ? eos + 1 : eos;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        int rank = 0;
        for (int u = 0; u < V && rank < top_k; u++) rank += d_before(g[u], u, g[v], v);
        /* 2-3. outside the set, PAD/BOS/..., EOS on channels > 0: -inf */
        row[v] = (rank < top_k && v < first_masked) ? cond[v] : -INFINITY;
    }
    __syncthreads();
    const int best = d_block_argmax(row, V, sv, si);
    if (temperature == 0.0) {
        if (threadIdx.x == 0) codes[(size_t)b * C + c] = best;
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
    /* top-p: a candidate is removed when the mass ranked before it already exceeds top_p */
    if (top_p < 1.0) {
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            if (!(pr[v] > 0)) continue;
            float cum = 0.0f;
            int before = 0;
            for (int u = 0; u < V; u++)
                if (pr[u] > 0 && d_before(pr[u], u, pr[v], v)) cum += pr[u], before = 1;
            if (before && cum > (float)top_p) row[v] = -INFINITY;
        }
        __syncthreads();
        d_softmax(row, pr, V, mx, sd);
    }
    /* 8. inverse CDF in vocabulary order (one thread: the host's order exactly) */
    if (threadIdx.x == 0) {
        uint64_t h = d_mix64(seed);
        h = d_mix64(h ^ (uint64_t)b);
        h = d_mix64(h ^ step);
        h = d_mix64(h ^ (uint64_t)c);
        const double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
        double cum = 0;
        int pick = 0, found = 0;
        for (int v = 0; v < V && !found; v++) {
            if (pr[v] <= 0) continue;
            pick = v;
            cum += pr[v];
            found = u < cum;
        }
        codes[(size_t)b * C + c] = pick;
    }
}

dia_status cu_sample(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *a) {
    if (codes->dtype != DIA_I32 || logits->dtype != DIA_F32 || a->B < 1 || a->C < 1 || a->V < 1 ||
        dia_tensor_nelem(codes) != (int64_t)a->B * a->C || dia_tensor_nelem(logits) != (int64_t)2 * a->B * a->C * a->V)
        return dia_fail(DIA_ERR_INTERNAL, "sample: bad shapes (B %d, C %d, V %d)", a->B, a->C, a->V);
    const size_t shared = (size_t)3 * a->V * sizeof(float) + SAMPLE_THREADS * (sizeof(float) + sizeof(int)) + 8 +
                          SAMPLE_THREADS * sizeof(double);
    if (shared > 48 * 1024) return dia_fail(DIA_ERR_INTERNAL, "sample: vocabulary %d too large for the device sampler", a->V);
    k_sample<<<a->B * a->C, SAMPLE_THREADS, shared, cu_ctx(be)->stream>>>(
        (int32_t *)cu_ptr(codes), (const float *)cu_ptr(logits), a->C, a->V, a->eos, a->top_k, (float)a->cfg_scale,
        a->temperature, a->top_p, a->seed, a->step);
    CU_LAUNCHED("sample");
    return DIA_OK;
}
