/* cuda_gemv.cu - the fused projection (backend slot `linear`, see dia_linear_args in backend.h):
 *
 *   y_i[M, N_i] (+)= in . W_i  (i < n <= 3),  in = x | rmsnorm(x) * g | silu(x_gate) * x_up
 *
 * For decode shapes (M <= 4 rows, bf16 weights in nn.Linear layout [N_i, K]) this is one kernel:
 * every block stages `in` (computed from x: the norm or the SiLU gate is applied on the way) in
 * shared memory once, then its warps stream rows of the concatenated weights [sum N_i, K] with
 * 16-byte loads and accumulate in f32. The weights do not depend on earlier kernels, so with
 * programmatic dependent launch a block pulls its first rows into L2 before it waits for the
 * kernel before it (attention, the previous projection) to finish: the weight stream, which is the
 * whole cost of a decode step at B = 1, is not interrupted at every kernel boundary.
 * Other shapes and dtypes compose the unfused ops (rmsnorm / silu_mul into the scratch, matmul). */
#include <stdlib.h>

#include "cuda_common.cuh"

#define FG_WARPS 8
#define FG_MAX_SMEM (96 * 1024)

enum { FG_PLAIN = 0, FG_NORM = 1, FG_SILU = 2 };

struct fg_args {
    float *Y[3];               /* y_i [M, N_i] */
    const __nv_bfloat16 *W[3]; /* W_i [N_i, K] */
    int end[3];                /* cumulative row counts: rows [end[i-1], end[i]) belong to W_i */
    int nseg;
    const float *X; /* [M, ldx] */
    int ldx;
    const float *G; /* f32 [K] norm scale (FG_NORM) */
    float eps;
    int M, K, accumulate;
    int groups; /* (sum N_i) / NR */
};

static __device__ __forceinline__ void prefetch_l2(const void *p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* Row-group lookup: the weight row n (of the concatenation) -> segment and local row. */
static __device__ __forceinline__ int fg_seg(const fg_args &a, int n, int *local) {
    int s = 0;
    while (s < a.nseg - 1 && n >= a.end[s]) s++;
    *local = n - (s ? a.end[s - 1] : 0);
    return s;
}

template <int MT, int NR, int MODE>
__global__ void __launch_bounds__(FG_WARPS * 32) k_gemv_fused(const fg_args a) {
    constexpr int U = NR == 1 ? 8 : (NR == 2 ? 4 : 2); /* 16-byte loads in flight per row and lane */
    extern __shared__ float4 xs4[];                     /* [MT][K / 4]: the input rows */
    __shared__ double red[MT][FG_WARPS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tid = threadIdx.x;
    const int K = a.K, K8 = K >> 3, K4 = K >> 2;
    int grp = blockIdx.x * FG_WARPS + warp;
    /* before the wait: only weights are touched */
    if (grp < a.groups) {
        int nl;
        const int s = fg_seg(a, grp * NR, &nl);
        const char *p = (const char *)(a.W[s] + (size_t)nl * K);
        for (int off = lane * 128; off < NR * K * 2; off += 32 * 128) prefetch_l2(p + off);
    }
    cu_pdl_wait();
    float inv[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) inv[m] = 1.0f;
    if (MODE == FG_NORM) { /* sum of squares per row: f32 per thread, double across the block */
#pragma unroll
        for (int m = 0; m < MT; m++) {
            float ss = 0.0f;
            if (m < a.M) {
                const float4 *xr = (const float4 *)(a.X + (size_t)m * a.ldx);
                for (int k = tid; k < K4; k += FG_WARPS * 32) {
                    const float4 v = xr[k];
                    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
                }
            }
            double sd = ss;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) sd += __shfl_xor_sync(0xffffffffu, sd, o);
            if (lane == 0) red[m][warp] = sd;
        }
        __syncthreads();
#pragma unroll
        for (int m = 0; m < MT; m++) {
            double tot = 0.0;
#pragma unroll
            for (int i = 0; i < FG_WARPS; i++) tot += red[m][i];
            inv[m] = (float)(1.0 / sqrt(tot / (double)K + (double)a.eps));
        }
    }
    for (int i = tid; i < MT * K4; i += FG_WARPS * 32) {
        const int m = i / K4, k = i - m * K4;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (m < a.M) {
            const float4 *xr = (const float4 *)(a.X + (size_t)m * a.ldx);
            const float4 v = xr[k];
            if (MODE == FG_PLAIN) {
                o = v;
            } else if (MODE == FG_NORM) { /* as the rmsnorm op: x * r * g */
                const float4 g = ((const float4 *)a.G)[k];
                float r = 0.0f;
#pragma unroll
                for (int m2 = 0; m2 < MT; m2++)
                    if (m2 == m) r = inv[m2];
                o = make_float4(v.x * r * g.x, v.y * r * g.y, v.z * r * g.z, v.w * r * g.w);
            } else { /* as the silu_mul op: g / (1 + exp(-g)) * u */
                const float4 u = xr[K4 + k];
                o = make_float4(v.x / (1.0f + expf(-v.x)) * u.x, v.y / (1.0f + expf(-v.y)) * u.y,
                                v.z / (1.0f + expf(-v.z)) * u.z, v.w / (1.0f + expf(-v.w)) * u.w);
            }
        }
        xs4[i] = o;
    }
    __syncthreads();
    cu_pdl_trigger();
    for (; grp < a.groups; grp += gridDim.x * FG_WARPS) {
        int nl;
        const int s = fg_seg(a, grp * NR, &nl);
        const uint4 *Wv = (const uint4 *)(a.W[s] + (size_t)nl * K);
        float acc[NR][MT];
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int m = 0; m < MT; m++) acc[r][m] = 0.0f;
        for (int g0 = lane; g0 < K8; g0 += 32 * U) {
            uint4 wq[NR][U];
#pragma unroll
            for (int r = 0; r < NR; r++)
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int g = g0 + 32 * u;
                    wq[r][u] = g < K8 ? __ldg(Wv + (size_t)r * K8 + g) : make_uint4(0, 0, 0, 0);
                }
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int g = g0 + 32 * u;
                if (g >= K8) break;
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    const float4 x0 = xs4[m * K4 + 2 * g], x1 = xs4[m * K4 + 2 * g + 1];
                    const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
                    for (int r = 0; r < NR; r++) {
                        const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&wq[r][u];
#pragma unroll
                        for (int j = 0; j < 4; j++) {
                            const float2 f = __bfloat1622float2(w2[j]);
                            acc[r][m] = fmaf(f.x, xv[2 * j], acc[r][m]);
                            acc[r][m] = fmaf(f.y, xv[2 * j + 1], acc[r][m]);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int m = 0; m < MT; m++) {
                float v = acc[r][m];
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
                acc[r][m] = v;
            }
        if (lane == 0) {
            const int Ns = a.end[s] - (s ? a.end[s - 1] : 0);
#pragma unroll
            for (int m = 0; m < MT; m++) {
                if (m >= a.M) break;
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    float *y = a.Y[s] + (size_t)m * Ns + nl + r;
                    *y = a.accumulate ? *y + acc[r][m] : acc[r][m];
                }
            }
        }
    }
}

/* Tunables (benchmarks only): DIA_CUDA_GEMV_BPS = blocks per SM of the persistent grid (default
 * 4), DIA_CUDA_GEMV_NR = rows per warp (1, 2 or 4; default: the largest that keeps >= 2 blocks
 * per SM busy). */
static int env_int(const char *name, int def) {
    const char *e = getenv(name);
    return e && *e ? atoi(e) : def;
}

template <int MT, int NR, int MODE>
static dia_status fg_launch_mode(cuda_ctx *c, const fg_args &a, size_t smem, int bps) {
    /* opt in to > 48 KB of dynamic shared memory (per device, so on every launch: host-side only) */
    CU_CHECK(cudaFuncSetAttribute(k_gemv_fused<MT, NR, MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  FG_MAX_SMEM));
    int fit = 0; /* a persistent grid: no more blocks than can be resident at once */
    CU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, k_gemv_fused<MT, NR, MODE>, FG_WARPS * 32, smem));
    if (fit >= 1 && bps > fit) bps = fit;
    int blocks = (a.groups + FG_WARPS - 1) / FG_WARPS;
    if (blocks > c->sm_count * bps) blocks = c->sm_count * bps;
    CU_CHECK(cu_launch(k_gemv_fused<MT, NR, MODE>, dim3((unsigned)blocks), dim3(FG_WARPS * 32), smem, c->stream, a));
    return DIA_OK;
}

template <int MT, int NR>
static dia_status fg_launch_nr(cuda_ctx *c, const fg_args &a, int mode, size_t smem, int bps) {
    if (mode == FG_NORM) return fg_launch_mode<MT, NR, FG_NORM>(c, a, smem, bps);
    if (mode == FG_SILU) return fg_launch_mode<MT, NR, FG_SILU>(c, a, smem, bps);
    return fg_launch_mode<MT, NR, FG_PLAIN>(c, a, smem, bps);
}

template <int MT>
static dia_status fg_launch_mt(cuda_ctx *c, const fg_args &a, int nr, int mode, size_t smem, int bps) {
    if (nr == 4) return fg_launch_nr<MT, 4>(c, a, mode, smem, bps);
    if (nr == 2) return fg_launch_nr<MT, 2>(c, a, mode, smem, bps);
    return fg_launch_nr<MT, 1>(c, a, mode, smem, bps);
}

static int aligned16(const void *p) { return ((uintptr_t)p % 16) == 0; }

/* The fused kernel's conditions; *mt = rows rounded up to 1, 2 or 4. */
static int fused_ok(const dia_linear_args *a, int64_t M, int64_t K, int *mt) {
    if (M < 1 || M > 4 || K % 8 || K > INT32_MAX / 8) return 0;
    *mt = M == 1 ? 1 : (M == 2 ? 2 : 4);
    if ((size_t)*mt * (size_t)K * sizeof(float) > FG_MAX_SMEM) return 0;
    if (a->x->dtype != DIA_F32 || !aligned16(cu_ptr(a->x))) return 0;
    if (a->norm_w && (a->norm_w->dtype != DIA_F32 || a->norm_w->ne[0] != K || !aligned16(cu_ptr(a->norm_w))))
        return 0;
    for (int i = 0; i < a->n; i++) {
        const dia_tensor *w = a->w[i], *y = a->y[i];
        if (!a->trans_w[i] || w->dtype != DIA_BF16 || w->ndim != 2 || w->ne[1] != K || !aligned16(cu_ptr(w)))
            return 0;
        if (y->dtype != DIA_F32 || y->ndim != 2 || y->ne[0] != M || y->ne[1] != w->ne[0]) return 0;
    }
    return 1;
}

dia_status cu_linear(dia_backend *be, const dia_linear_args *a) {
    if (!a || !a->x || a->n < 1 || a->n > 3 || a->x->ndim != 2)
        return dia_fail(DIA_ERR_INTERNAL, "linear: bad arguments");
    const int64_t M = a->x->ne[0], K = a->silu_gate ? a->x->ne[1] / 2 : a->x->ne[1];
    int mt = 0;
    if (M == 0) return DIA_OK;
    if (fused_ok(a, M, K, &mt)) {
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
        f.ldx = (int)a->x->ne[1];
        f.G = a->norm_w ? (const float *)cu_ptr(a->norm_w) : NULL;
        f.eps = a->eps;
        f.M = (int)M;
        f.K = (int)K;
        f.accumulate = a->accumulate;
        /* rows per warp: all N_i divisible, and enough row groups for >= 2 blocks of 8 warps per SM */
        int nr = env_int("DIA_CUDA_GEMV_NR", 0);
        if (nr != 1 && nr != 2 && nr != 4) {
            nr = 1;
            for (int cand = 4; cand > 1; cand /= 2)
                if (tot / cand >= (int64_t)2 * FG_WARPS * c->sm_count) {
                    nr = cand;
                    break;
                }
        }
        for (int i = 0; i < a->n; i++)
            while (nr > 1 && a->w[i]->ne[0] % nr) nr /= 2;
        f.groups = (int)(tot / nr);
        const int mode = a->norm_w ? FG_NORM : (a->silu_gate ? FG_SILU : FG_PLAIN);
        const size_t smem = (size_t)mt * (size_t)K * sizeof(float);
        int bps = env_int("DIA_CUDA_GEMV_BPS", 4);
        if (bps < 1) bps = 1;
        if (mt == 1) return fg_launch_mt<1>(c, f, nr, mode, smem, bps);
        if (mt == 2) return fg_launch_mt<2>(c, f, nr, mode, smem, bps);
        return fg_launch_mt<4>(c, f, nr, mode, smem, bps);
    }
    /* composed: the input into the scratch, then one matmul per weight */
    const dia_tensor *in = a->x;
    dia_status st = DIA_OK;
    if (a->norm_w || a->silu_gate) {
        if (!a->scratch) return dia_fail(DIA_ERR_INTERNAL, "linear: no scratch for the input");
        st = a->norm_w ? cu_rmsnorm(be, a->scratch, a->x, a->norm_w, a->eps) : cu_silu_mul(be, a->scratch, a->x);
        in = a->scratch;
    }
    for (int i = 0; i < a->n && st == DIA_OK; i++) st = cu_matmul(be, a->y[i], in, a->w[i], a->trans_w[i], a->accumulate);
    return st;
}
