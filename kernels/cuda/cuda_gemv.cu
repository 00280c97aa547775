/* cuda_gemv.cu - the fused projection (backend slot `linear`, see dia_linear_args in backend.h):
 *
 *   y_i[M, N_i] (+)= in . W_i  (i < n <= 3),  in = x or rmsnorm(x) * g
 *   gated:  y[M, N/2] (+)= silu(in . W_gate) * (in . W_up)
 *
 * For decode shapes (M <= 4 rows, bf16 weights in nn.Linear layout [N_i, K]) this is one kernel,
 * used by default only for the logits head (the batched path of the fourth session is the default
 * for the other projections at every row count; DIA_CUDA_GEMV=1 takes them all here, see gemv_for):
 * each warp owns NR weight rows of the concatenation [sum N_i, K] (gated: NR/2 gate rows and the
 * matching up rows), streams them once with 16-byte loads (several in flight per lane) and reads
 * x from L1. RMSNorm folds in as rmsnorm(x) . w = (sum_k x_k g_k w_k) / rms(x): the warp sums x^2
 * on the same pass (so no separate norm kernel and no normed copy of x); the SiLU gate is applied
 * to the two accumulators of an output column before the store.
 * Weight batches are double-buffered (the next batch is in flight while one is used) and bypass
 * L1, which keeps x. The weights do not depend on earlier kernels: with programmatic dependent
 * launch a warp issues its first batch before it waits for the previous kernel to finish.
 * Other shapes and dtypes compose the unfused ops (rmsnorm into the scratch, matmul, silu_mul). */
#include <stdlib.h>

#include "cuda_common.cuh"
#include "cuda_splitk.cuh"

#define FG_WARPS 4 /* measured: 4 warps per block beat 8 (bench/bench_gemv_variants.cu) */

struct fg_args {
    float *Y[3];               /* y_i [M, N_i] (gated: y_0 [M, half]) */
    const __nv_bfloat16 *W[3]; /* W_i [N_i, K] */
    int end[3];                /* cumulative row counts: rows [end[i-1], end[i]) belong to W_i */
    int nseg;
    const float *X; /* f32 [M, K] */
    const float *G; /* f32 [K] norm scale, or NULL */
    float eps;
    int M, K, accumulate;
    int half;   /* gated: rows [0, half) gate, [half, 2 half) up */
    int groups; /* warps with work */
};

/* A 16-byte weight load that bypasses L1 (weights are read once; L1 keeps x). */
static __device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

template <int NR, int U>
static __device__ __forceinline__ void load_rows(uint4 (&wq)[NR][U], const uint4 *const (&Wr)[NR], int g0, int K8) {
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int g = g0 + 32 * u;
            wq[r][u] = g < K8 ? ld_stream(Wr[r] + g) : make_uint4(0, 0, 0, 0);
        }
}

template <int MT, int NR, int NORM, int GATED>
__global__ void __launch_bounds__(FG_WARPS * 32) k_gemv_fused(const fg_args a) {
    constexpr int U = NR == 4 ? 2 : (NR == 2 ? 4 : 8); /* 16-byte loads per row and lane per batch */
    constexpr int NP = NR / 2;                         /* gated: output columns per warp */
    const int lane = threadIdx.x & 31, grp = blockIdx.x * FG_WARPS + (threadIdx.x >> 5);
    const int K = a.K, K8 = K >> 3;
    if (grp >= a.groups) return;
    /* this warp's rows */
    const uint4 *Wr[NR];
    int s = 0, col0 = 0; /* segment and first output column */
    if (GATED) {
        col0 = grp * NP;
#pragma unroll
        for (int r = 0; r < NR; r++) {
            const int n = r < NP ? col0 + r : a.half + col0 + r - NP;
            Wr[r] = (const uint4 *)(a.W[0] + (size_t)n * K);
        }
    } else {
        const int n0 = grp * NR;
        while (s < a.nseg - 1 && n0 >= a.end[s]) s++;
        col0 = n0 - (s ? a.end[s - 1] : 0);
#pragma unroll
        for (int r = 0; r < NR; r++) Wr[r] = (const uint4 *)(a.W[s] + (size_t)(col0 + r) * K);
    }
    /* the first batch of weights is loaded before the wait (weights do not depend on earlier
     * kernels); every batch is in flight while the previous one is used */
    uint4 cur[NR][U];
    load_rows<NR, U>(cur, Wr, lane, K8);
    cu_pdl_wait();
    float acc[NR][MT], ss[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        ss[m] = 0.0f;
#pragma unroll
        for (int r = 0; r < NR; r++) acc[r][m] = 0.0f;
    }
    for (int g0 = lane; g0 < K8; g0 += 32 * U) {
        uint4 nxt[NR][U];
        load_rows<NR, U>(nxt, Wr, g0 + 32 * U, K8);
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int g = g0 + 32 * u;
            if (g >= K8) break;
            float gv[8];
            if (NORM) {
                const float4 g0v = __ldg((const float4 *)a.G + 2 * g), g1v = __ldg((const float4 *)a.G + 2 * g + 1);
                gv[0] = g0v.x, gv[1] = g0v.y, gv[2] = g0v.z, gv[3] = g0v.w;
                gv[4] = g1v.x, gv[5] = g1v.y, gv[6] = g1v.z, gv[7] = g1v.w;
            }
#pragma unroll
            for (int m = 0; m < MT; m++) {
                if (m >= a.M) break;
                const float4 x0 = __ldg((const float4 *)(a.X + (size_t)m * K) + 2 * g);
                const float4 x1 = __ldg((const float4 *)(a.X + (size_t)m * K) + 2 * g + 1);
                float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
                if (NORM) {
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        ss[m] = fmaf(xv[j], xv[j], ss[m]);
                        xv[j] *= gv[j];
                    }
                }
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&cur[r][u];
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const float2 f = __bfloat1622float2(w2[j]);
                        acc[r][m] = fmaf(f.x, xv[2 * j], acc[r][m]);
                        acc[r][m] = fmaf(f.y, xv[2 * j + 1], acc[r][m]);
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int u = 0; u < U; u++) cur[r][u] = nxt[r][u];
    }
    cu_pdl_trigger(); /* the next kernel may start loading its weights during the reductions */
#pragma unroll
    for (int m = 0; m < MT; m++) {
        ss[m] = cu_warp_sum(ss[m]);
#pragma unroll
        for (int r = 0; r < NR; r++) acc[r][m] = cu_warp_sum(acc[r][m]);
    }
    if (lane) return;
#pragma unroll
    for (int m = 0; m < MT; m++) {
        if (m >= a.M) break;
        const float inv = NORM ? (float)(1.0 / sqrt((double)ss[m] / (double)K + (double)a.eps)) : 1.0f;
        if (GATED) {
#pragma unroll
            for (int p = 0; p < NP; p++) {
                const float gt = acc[p][m] * inv, up = acc[NP + p][m] * inv;
                float *y = a.Y[0] + (size_t)m * a.half + col0 + p;
                const float v = gt / (1.0f + expf(-gt)) * up;
                *y = a.accumulate ? *y + v : v;
            }
        } else {
            const int Ns = a.end[s] - (s ? a.end[s - 1] : 0);
#pragma unroll
            for (int r = 0; r < NR; r++) {
                float *y = a.Y[s] + (size_t)m * Ns + col0 + r;
                const float v = acc[r][m] * inv;
                *y = a.accumulate ? *y + v : v;
            }
        }
    }
}

/* DIA_CUDA_GEMV_NR = rows per warp (1, 2 or 4; gated 2 or 4) overrides the choice (benchmarks);
 * read once. */
static int forced_rows_per_warp(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DIA_CUDA_GEMV_NR");
        v = e && *e ? atoi(e) : 0;
    }
    return v;
}

template <int MT, int NR, int NORM, int GATED>
static dia_status fg_launch4(cuda_ctx *c, const fg_args &a) {
    const unsigned blocks = (unsigned)((a.groups + FG_WARPS - 1) / FG_WARPS);
    CU_CHECK(cu_launch(k_gemv_fused<MT, NR, NORM, GATED>, dim3(blocks), dim3(FG_WARPS * 32), 0, c->stream, a));
    return DIA_OK;
}

template <int MT, int NR>
static dia_status fg_launch_nr(cuda_ctx *c, const fg_args &a, int norm, int gated) {
    if (gated) return norm ? fg_launch4<MT, NR, 1, 1>(c, a) : fg_launch4<MT, NR, 0, 1>(c, a);
    return norm ? fg_launch4<MT, NR, 1, 0>(c, a) : fg_launch4<MT, NR, 0, 0>(c, a);
}

template <int MT>
static dia_status fg_launch_mt(cuda_ctx *c, const fg_args &a, int nr, int norm, int gated) {
    if (nr == 4) return fg_launch_nr<MT, 4>(c, a, norm, gated);
    if (nr == 2) return fg_launch_nr<MT, 2>(c, a, norm, gated);
    return fg_launch_nr<MT, 1>(c, a, norm, gated);
}

/* DIA_CUDA_GEMV: 1 (every projection of <= 4 rows), 0 (none), -1 unset (see gemv_for). The fused
 * GEMV is not the default for the projections: since the batched path gained bf16 activations, the
 * q|k|v GEMM in one launch and the faster norm / SiLU kernels, decode steps are faster on it at 2
 * and 4 rows too (H100, dia_generate: B = 1 545 vs 477 steps/s, B = 2 546 vs 351). */
static int gemv_knob(void) {
    const char *e = getenv("DIA_CUDA_GEMV");
    return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : -1;
}

int cu_gemv_enabled(void) { return gemv_knob() == 1; }

/* Where the <= 4-row GEMV is used: everywhere with DIA_CUDA_GEMV=1, nowhere with 0; by default for
 * a single weight whose output width is not a multiple of 64, the logits head (9 x 1028 outputs),
 * for which cuBLAS picks a 16 x 16 wmma kernel (H100, B = 1: 26.6 us for its 38 MB, plus a separate
 * RMSNorm kernel). */
static int gemv_for(const dia_linear_args *a) {
    const int k = gemv_knob();
    return k >= 0 ? k : a->n == 1 && !a->gated && a->w[0]->ne[0] % 64 != 0;
}

/* The fused kernel's conditions (x [M, K] f32 with M <= 4, bf16 nn.Linear weights, f32 scale). */
static int fused_ok(const dia_linear_args *a, int64_t M, int64_t K) {
    if (M < 1 || M > 4 || K % 8 || K > INT32_MAX / 8 || !gemv_for(a)) return 0;
    if (a->x->dtype != DIA_F32 || !cu_aligned16(cu_ptr(a->x))) return 0;
    if (a->norm_w && (a->norm_w->dtype != DIA_F32 || a->norm_w->ne[0] != K || !cu_aligned16(cu_ptr(a->norm_w))))
        return 0;
    if (a->gated && (a->n != 1 || a->w[0]->ne[0] % 2 || a->y[0]->ne[1] * 2 != a->w[0]->ne[0])) return 0;
    for (int i = 0; i < a->n; i++) {
        const dia_tensor *w = a->w[i], *y = a->y[i];
        if (!a->trans_w[i] || w->dtype != DIA_BF16 || w->ndim != 2 || w->ne[1] != K || !cu_aligned16(cu_ptr(w)) ||
            w->buf->host_mem) /* host-memory weights go through cuBLAS (copied to the device first) */
            return 0;
        if (y->dtype != DIA_F32 || y->ndim != 2 || y->ne[0] != M || (!a->gated && y->ne[1] != w->ne[0])) return 0;
    }
    return 1;
}

int cu_linear_fusable(const dia_linear_args *a) {
    return a && a->x && a->x->ndim == 2 && a->n >= 1 && a->n <= 3 && fused_ok(a, a->x->ne[0], a->x->ne[1]);
}

/* The decode kernel for `a` (cu_linear_fusable(a) holds). */
dia_status cu_linear_fused(dia_backend *be, const dia_linear_args *a) {
    const int64_t M = a->x->ne[0], K = a->x->ne[1];
    cuda_ctx *c = cu_ctx(be);
    fg_args f;
    memset(&f, 0, sizeof f);
    int64_t tot = 0;
    for (int i = 0; i < a->n; i++) {
        f.Y[i] = (float *)cu_ptr(a->y[i]);
        f.W[i] = (const __nv_bfloat16 *)cu_ptr(a->w[i]);
        tot += a->w[i]->ne[0];
        if (tot > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "linear too large");
        f.end[i] = (int)tot;
    }
    f.nseg = a->n;
    f.X = (const float *)cu_ptr(a->x);
    f.G = a->norm_w ? (const float *)cu_ptr(a->norm_w) : NULL;
    f.eps = a->eps;
    f.M = (int)M;
    f.K = (int)K;
    f.accumulate = a->accumulate;
    f.half = a->gated ? (int)(tot / 2) : 0;
    /* rows per warp (bench/bench_gemv_variants.cu, H100, cold L2, M = 2): 4 rows x 2 loads for
     * the wide matrices (gate_up 16384 x 2048: 2.59 TB/s), 2 rows x 4 loads for the rest (down
     * 2048 x 8192: 1.98 TB/s; the 2048 x 2048 ones are latency-bound at ~7 us) */
    const int64_t cols = a->gated ? tot / 2 : tot;
    int nr = forced_rows_per_warp();
    if (nr != 1 && nr != 2 && nr != 4) nr = tot >= 8192 ? 4 : 2;
    if (a->gated) {
        if (nr < 2) nr = 2;
        if (cols % (nr / 2)) nr = 2;
        f.groups = (int)(cols / (nr / 2));
    } else {
        for (int i = 0; i < a->n; i++)
            while (nr > 1 && a->w[i]->ne[0] % nr) nr /= 2;
        f.groups = (int)(tot / nr);
    }
    const int norm = a->norm_w != NULL;
    if (M == 1) return fg_launch_mt<1>(c, f, nr, norm, a->gated);
    if (M == 2) return fg_launch_mt<2>(c, f, nr, norm, a->gated);
    return fg_launch_mt<4>(c, f, nr, norm, a->gated);
}

/* The bf16 GEMM operand of `a` (f32 x, n elements): rmsnorm(x) * g rounded, or x rounded. */
static dia_status gemm_input_bf16(dia_backend *be, __nv_bfloat16 *xb, const dia_linear_args *a, int64_t n) {
    return a->norm_w ? cu_rmsnorm_bf16(be, xb, a->x, a->norm_w, a->eps) : cu_convert_to_bf16(be, xb, cu_ptr(a->x), DIA_F32, n);
}

dia_status cu_linear(dia_backend *be, const dia_linear_args *a) {
    if (!a || !a->x || a->n < 1 || a->n > 3 || a->x->ndim != 2 || (a->gated && a->n != 1))
        return dia_fail(DIA_ERR_INTERNAL, "linear: bad arguments");
    const int64_t M = a->x->ne[0], K = a->x->ne[1];
    if (M == 0) return DIA_OK;
    if (fused_ok(a, M, K)) return cu_linear_fused(be, a);
    /* bf16 x (activations the decoder keeps in bf16): no norm, the GEMMs on it directly */
    if (a->x->dtype == DIA_BF16) {
        if (a->norm_w || a->gated) return dia_fail(DIA_ERR_INTERNAL, "linear: bf16 input with a norm or gate");
        return cu_gemm_bf16_multi(be, (const __nv_bfloat16 *)cu_ptr(a->x), M, K, a->n, a->w, a->trans_w, a->y,
                                  a->accumulate);
    }
    /* composed. bf16 weights (batches): the input rounded to bf16 once (normed on the way) for
     * every weight's GEMM */
    dia_status st = DIA_OK;
    int all_bf16 = a->x->dtype == DIA_F32;
    for (int i = 0; i < a->n; i++) all_bf16 = all_bf16 && a->w[i]->dtype == DIA_BF16;
    if (all_bf16 && (!a->norm_w || a->norm_w->dtype == DIA_F32) && (!a->gated || (a->scratch_out && !a->accumulate))) {
        void *xb;
        if ((st = cu_scratch(be, CU_SCRATCH_ACT, (size_t)(M * K) * sizeof(__nv_bfloat16), &xb)) != DIA_OK) return st;
        __nv_bfloat16 *xbp = (__nv_bfloat16 *)xb;
        st = gemm_input_bf16(be, xbp, a, M * K);
        if (a->gated) {
            if (st == DIA_OK) st = cu_matmul_bf16_input(be, a->scratch_out, xbp, M, K, a->w[0], a->trans_w[0], 0);
            return st != DIA_OK ? st : cu_silu_mul(be, a->y[0], a->scratch_out);
        }
        return st != DIA_OK ? st : cu_gemm_bf16_multi(be, xbp, M, K, a->n, a->w, a->trans_w, a->y, a->accumulate);
    }
    /* composed in f32: the normed input into the scratch, one matmul per weight, the SiLU gate */
    const dia_tensor *in = a->x;
    if (a->norm_w) {
        if (!a->scratch) return dia_fail(DIA_ERR_INTERNAL, "linear: no scratch for the normed input");
        st = cu_rmsnorm(be, a->scratch, a->x, a->norm_w, a->eps);
        in = a->scratch;
    }
    if (a->gated) {
        if (!a->scratch_out || a->accumulate) return dia_fail(DIA_ERR_INTERNAL, "linear: gated output needs scratch_out");
        if (st == DIA_OK) st = cu_matmul(be, a->scratch_out, in, a->w[0], a->trans_w[0], 0);
        return st != DIA_OK ? st : cu_silu_mul(be, a->y[0], a->scratch_out);
    }
    for (int i = 0; i < a->n && st == DIA_OK; i++) st = cu_matmul(be, a->y[i], in, a->w[i], a->trans_w[i], a->accumulate);
    return st;
}

/* q|k|v = rmsnorm(x) . (Wq, Wk, Wv), then RoPE on q and k and k, v into the caches: where the batch
 * GEMM of cuda_gemm_rows.cu takes the three projections (bf16 weights, <= 128 rows, head 128), the
 * RoPE and the stores are its epilogue (one kernel less per layer, the same bits: the shared RoPE
 * helpers); else cu_linear, then cu_rope_kv_store. DIA_CUDA_QKV_ROPE=0: always the two
 * (comparisons). */
dia_status cu_linear_rope_kv_store(dia_backend *be, const dia_linear_args *a, dia_tensor *q, dia_tensor *k,
                                   const dia_tensor *v, dia_tensor *kcache, dia_tensor *vcache, const dia_tensor *pos,
                                   const dia_tensor *start, float theta) {
    if (!a || !a->x || a->n != 3 || a->x->ndim != 2 || a->gated || !q || !k || !v || !kcache || !vcache || !pos || !start)
        return dia_fail(DIA_ERR_INTERNAL, "linear_rope_kv_store: bad arguments");
    const int64_t M = a->x->ne[0], K = a->x->ne[1];
    const char *e = getenv("DIA_CUDA_QKV_ROPE");
    int ok = !(e && e[0] == '0') && M > 0 && !a->accumulate && a->x->dtype == DIA_F32 &&
             (!a->norm_w || a->norm_w->dtype == DIA_F32) && !fused_ok(a, M, K);
    for (int i = 0; i < 3 && ok; i++) ok = a->w[i]->dtype == DIA_BF16;
    /* the shapes rope_kv_store takes, on the projections' outputs, head 128 (one feature tile) */
    const int64_t hd = q->ndim == 3 ? q->ne[2] : 0, R = k->ndim == 4 ? k->ne[0] : 0, T = k->ndim == 4 ? k->ne[1] : 0;
    const int64_t KV = k->ndim == 4 ? k->ne[2] : 0, S = kcache->ndim == 4 ? kcache->ne[2] : 0;
    ok = ok && hd == SK_TILE && q->ne[0] == M && R * T == M && k->ne[3] == hd && v->ndim == 4 && v->ne[0] == R &&
         v->ne[1] == T && v->ne[2] == KV && v->ne[3] == hd && kcache->ndim == 4 && kcache->ne[0] == R &&
         kcache->ne[1] == KV && kcache->ne[3] == hd && vcache->ndim == 4 && vcache->ne[0] == R &&
         vcache->ne[1] == KV && vcache->ne[2] == S && vcache->ne[3] == hd && kcache->dtype == vcache->dtype &&
         (kcache->dtype == DIA_F32 || kcache->dtype == DIA_BF16) && q->dtype == DIA_F32 && k->dtype == DIA_F32 &&
         v->dtype == DIA_F32 && pos->dtype == DIA_I32 && pos->ne[0] == M && start->dtype == DIA_I32 &&
         start->ne[0] == R && S <= INT32_MAX && cu_ptr(q) == cu_ptr(a->y[0]) && cu_ptr(k) == cu_ptr(a->y[1]) &&
         cu_ptr(v) == cu_ptr(a->y[2]) && a->y[0]->ne[1] == q->ne[1] * hd && a->y[1]->ne[1] == KV * hd &&
         a->y[2]->ne[1] == KV * hd && !cu_gemm_wgmma_ok(NULL, M, K, 3, a->w, a->trans_w, a->y);
    void *xb = NULL;
    dia_status st;
    if (ok) {
        if ((st = cu_scratch(be, CU_SCRATCH_ACT, (size_t)(M * K) * sizeof(__nv_bfloat16), &xb)) != DIA_OK) return st;
        ok = cu_gemm_rows_ok((const __nv_bfloat16 *)xb, M, K, 3, a->w, a->trans_w, a->y);
    }
    if (!ok) {
        st = cu_linear(be, a);
        return st != DIA_OK ? st : cu_rope_kv_store(be, q, k, v, kcache, vcache, pos, start, theta);
    }
    __nv_bfloat16 *xbp = (__nv_bfloat16 *)xb;
    st = gemm_input_bf16(be, xbp, a, M * K);
    if (st != DIA_OK) return st;
    cu_rope_epi re;
    memset(&re, 0, sizeof re);
    re.pos = (const int32_t *)cu_ptr(pos), re.start = (const int32_t *)cu_ptr(start);
    re.kc = cu_ptr(kcache), re.vc = cu_ptr(vcache);
    re.bf16 = kcache->dtype == DIA_BF16, re.T = (int)T, re.S = (int)S, re.KV = (int)KV, re.theta = (double)theta;
    return cu_gemm_rows_rope(be, xbp, M, K, a->w, a->y, &re);
}
