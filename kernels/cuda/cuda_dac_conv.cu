/* cuda_dac_conv.cu - the DAC decoder's bf16 tensor-core convolution (backend slots conv_bf16 and
 * snake_bf16, see dia_conv_args in lib/backend.h): an implicit GEMM
 *     out[t, o] = b[o] + sum_{tap, i} W[tap, o, i] . x[t + offset(tap), i]
 * on mma.sync m16n8k16 (bf16 operands, f32 accumulation). No im2col buffer: a block stages the
 * bf16 input window its output tile needs and the weights of every tap for a chunk of 16, 32 or 64
 * input channels (cp.async, 2-4 stages: later chunks load while this one computes; ldmatrix
 * fragments), then runs all taps over them. Activations are time-major [T, C] (a window row is
 * contiguous channels, and any tap offset is a row shift). The epilogue adds the bias, optionally
 * accumulates into the f32 output, and writes the next layer's operand (Snake, then bf16) so Snake
 * runs once per element. A transposed conv (stride s) is s stride-1 convolutions, one per output
 * phase, each with ceil(K / s) taps; a block computes one. Convs with <= 4 output channels take a
 * direct kernel. The tile and chunk sizes per shape were chosen by measurement
 * (bench_cuda_ops --dac; docs/performance.md). */
#include "cuda_common.cuh"
#include "cuda_mma.cuh"

/* A block is 8 warps: 2 along the output channels (MI m16 tiles each: BM = 32 MI = 32, 64 or 96
 * channels per block) x 4 along time (32 columns each: BN = 128 per block). */
#define CV_BN 128      /* output columns per block */
#define CV_THREADS 256 /* 8 warps */
#define CV_MAX_SMEM (200 * 1024)
#define CV_EU 8 /* epilogue rows per batch */

typedef struct conv_params {
    const __nv_bfloat16 *x;   /* [T, Cin] */
    float *y;                 /* [Tout, Cout] or NULL */
    __nv_bfloat16 *ys;        /* [Tout, Cout] or NULL */
    const __nv_bfloat16 *w;   /* [K, Cout, Cin] */
    const void *b, *alpha;    /* bias [Cout], alpha_out [Cout], or NULL */
    int bdt, adt;             /* their dtypes */
    int Cin, Cout, T, Tout, K;
    int dil, pad, stride;     /* stride: transposed only */
    int transposed, accumulate;
    int ntaps_max;            /* K, or ceil(K / stride) transposed */
    int n_mtiles, n_phases;   /* block index = (col tile, phase, m tile), m tile fastest */
} conv_params;

/* Snake of one value with inv = 1 / (alpha + 1e-9) precomputed (snake_inv: in f32, as PyTorch's
 * (alpha + 1e-9).reciprocal()). */
static __device__ __forceinline__ float snake1(float v, float a, float inv) {
    const float s = sinf(a * v);
    return v + inv * (s * s);
}

static __device__ __forceinline__ float snake_inv(float a) { return 1.0f / (a + 1e-9f); }

/* Stage the weights of every tap and the input window of BK input channels from c0 (rows of BK
 * channels; rows outside the input or channels past Cin are zeros): 16-byte cp.async pieces when
 * Cin is a multiple of 8, else element by element (small models only). Commits one group. */
template <int BM, int BK>
static __device__ __forceinline__ void load_chunk(const conv_params &p, __nv_bfloat16 *Ws, __nv_bfloat16 *Xs,
                                                  int c0, int o0, int phase, int ntaps, int jb, int win) {
    if ((p.Cin & 7) == 0) {
        constexpr int PR = BK / 8, LD = BK + 8; /* 16-byte pieces per row, row pitch */
        for (int v = threadIdx.x; v < ntaps * BM * PR; v += CV_THREADS) {
            const int q8 = (v % PR) * 8, o = (v / PR) % BM, tap = v / (BM * PR);
            const int k = p.transposed ? phase + tap * p.stride : tap, oc = o0 + o, c = c0 + q8;
            const bool ok = oc < p.Cout && c < p.Cin;
            cp_async16(&Ws[(tap * BM + o) * LD + q8], ok ? p.w + ((size_t)k * p.Cout + oc) * p.Cin + c : p.w, ok);
        }
        for (int v = threadIdx.x; v < win * PR; v += CV_THREADS) {
            const int q8 = (v % PR) * 8, r = v / PR, j = jb + r, c = c0 + q8;
            const bool ok = j >= 0 && j < p.T && c < p.Cin;
            cp_async16(&Xs[r * LD + q8], ok ? p.x + (size_t)j * p.Cin + c : p.x, ok);
        }
    } else {
        const __nv_bfloat16 zero = __float2bfloat16(0.0f);
        constexpr int LD = BK + 8;
        for (int v = threadIdx.x; v < ntaps * BM * BK; v += CV_THREADS) {
            const int ci = v % BK, o = (v / BK) % BM, tap = v / (BM * BK);
            const int k = p.transposed ? phase + tap * p.stride : tap, oc = o0 + o, c = c0 + ci;
            Ws[(tap * BM + o) * LD + ci] = oc < p.Cout && c < p.Cin ? p.w[((size_t)k * p.Cout + oc) * p.Cin + c] : zero;
        }
        for (int v = threadIdx.x; v < win * BK; v += CV_THREADS) {
            const int ci = v % BK, r = v / BK, j = jb + r, c = c0 + ci;
            Xs[r * LD + ci] = j >= 0 && j < p.T && c < p.Cin ? p.x[(size_t)j * p.Cin + c] : zero;
        }
    }
    cp_async_commit();
}

/* The epilogue of both conv kernels: the block's tile (warp fragments acc, warps 2 x 4 over
 * 32 MI channels x 128 times) plus bias, optionally accumulated into y, and the next operand ys. */
template <int MI>
static __device__ __forceinline__ void conv_epilogue(const conv_params &p, float (&acc)[MI][4][4], int o0, int n0,
                                                     int phase) {
    constexpr int BM = 32 * MI, EP = BM + 4; /* EP: staging pitch in floats */
    extern __shared__ __align__(16) unsigned char cv_smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
    const int wm = (warp & 1) * (16 * MI), wn = (warp >> 1) * 32;
    /* epilogue: the tile through shared memory as Es[n][o] (pitch EP floats: conflict-free
     * fragment stores), then rows of BM output channels per output time, 4 channels per thread:
     * coalesced 16-byte f32 and 8-byte bf16 accesses on the [Tout, Cout] outputs */
    cp_async_wait<0>();
    __syncthreads();
    float *Es = (float *)cv_smem; /* [BN][EP] */
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int ol = wm + mi * 16 + g + (e >> 1) * 8, nl = wn + ni * 8 + 2 * tq + (e & 1);
                Es[nl * EP + ol] = acc[mi][ni][e];
            }
    __syncthreads();
    const bool vec = (p.Cout & 3) == 0;
    /* threads per row of BM channels, 4 each; a thread keeps its 4 channels on every row */
    constexpr int TPR = BM / 4, RPP = CV_THREADS / TPR;
    if (tid >= TPR * RPP) return;
    const int ol = (tid % TPR) * 4, o = o0 + ol;
    if (o >= p.Cout) return;
    const int cnt = p.Cout - o < 4 ? p.Cout - o : 4;
    float bias[4] = {0.0f, 0.0f, 0.0f, 0.0f}, al[4] = {0.0f, 0.0f, 0.0f, 0.0f}, inv[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int e = 0; e < cnt; e++) {
        if (p.b) bias[e] = cu_load(p.b, p.bdt, o + e);
        if (p.alpha) al[e] = cu_load(p.alpha, p.adt, o + e), inv[e] = snake_inv(al[e]);
    }
    /* rows in batches of CV_EU: the accumulated y of a whole batch is read before any is written,
     * so a thread has CV_EU loads in flight instead of waiting out one latency per row */
    for (int nb = tid / TPR; nb < CV_BN; nb += CV_EU * RPP) {
        float4 yin[CV_EU];
#pragma unroll
        for (int u = 0; u < CV_EU; u++) {
            const int nl = nb + u * RPP, n = n0 + nl, t = p.transposed ? n * p.stride + phase - p.pad : n;
            yin[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (vec && p.y && p.accumulate && nl < CV_BN && t >= 0 && t < p.Tout)
                yin[u] = *(const float4 *)(p.y + (size_t)t * p.Cout + o);
        }
#pragma unroll
        for (int u = 0; u < CV_EU; u++) {
            const int nl = nb + u * RPP, n = n0 + nl, t = p.transposed ? n * p.stride + phase - p.pad : n;
            if (nl >= CV_BN || t < 0 || t >= p.Tout) continue;
            const float4 a4 = *(const float4 *)&Es[nl * EP + ol];
            float r[4] = {a4.x + bias[0], a4.y + bias[1], a4.z + bias[2], a4.w + bias[3]};
            const size_t idx = (size_t)t * p.Cout + o;
            if (p.y) {
                if (vec) {
                    if (p.accumulate) r[0] += yin[u].x, r[1] += yin[u].y, r[2] += yin[u].z, r[3] += yin[u].w;
                    *(float4 *)(p.y + idx) = make_float4(r[0], r[1], r[2], r[3]);
                } else {
                    for (int e = 0; e < cnt; e++) {
                        if (p.accumulate) r[e] += p.y[idx + e];
                        p.y[idx + e] = r[e];
                    }
                }
            }
            if (p.ys) {
                if (p.alpha)
                    for (int e = 0; e < cnt; e++) r[e] = snake1(r[e], al[e], inv[e]);
                if (vec) {
                    __nv_bfloat162 lo = __floats2bfloat162_rn(r[0], r[1]), hi = __floats2bfloat162_rn(r[2], r[3]);
                    uint2 pk;
                    pk.x = *(uint32_t *)&lo, pk.y = *(uint32_t *)&hi;
                    *(uint2 *)(p.ys + idx) = pk;
                } else {
                    for (int e = 0; e < cnt; e++) p.ys[idx + e] = __float2bfloat16_rn(r[e]);
                }
            }
        }
    }
}

/* MI: m16 tiles per warp (BM = 32 MI channels per block); NS pipeline stages (2, or 4 where they
 * fit: few taps); BK input channels per chunk (32; 16: half the stage, for wide 7-tap tiles; 64:
 * more work per barrier for 1-tap and transposed convs). */
template <int MI, int NS, int BK> __global__ void __launch_bounds__(CV_THREADS, 2) k_conv_bf16(conv_params p) {
    constexpr int BM = 32 * MI, LD = BK + 8; /* LD: row pitch (conflict-free ldmatrix for 16 and 32) */
    extern __shared__ __align__(16) unsigned char cv_smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int mt = blockIdx.x % p.n_mtiles, rest = blockIdx.x / p.n_mtiles;
    const int phase = rest % p.n_phases, ct = rest / p.n_phases;
    const int o0 = mt * BM, n0 = ct * CV_BN;
    /* taps of this block: weight index k(tap), window row of column n = n + off(tap) */
    int ntaps, jb, win;
    if (p.transposed) {
        ntaps = phase < p.K ? (p.K - phase + p.stride - 1) / p.stride : 0; /* k = phase + tap stride < K */
        jb = n0 - (p.ntaps_max - 1); /* tap m reads x[q - m]: row n + (ntaps_max - 1 - m) */
        win = CV_BN + p.ntaps_max - 1;
    } else {
        ntaps = p.K;
        jb = n0 - p.pad; /* tap k reads x[t + k dil - pad]: row n + k dil */
        win = CV_BN + (p.K - 1) * p.dil;
    }
    /* NS stages of [ntaps_max][BM][LD] weights + [win][LD] window (row r = input position jb + r) */
    const int stage = (p.ntaps_max * BM + win) * LD;
    __nv_bfloat16 *smem = (__nv_bfloat16 *)cv_smem;
    const int wm = (warp & 1) * (16 * MI), wn = (warp >> 1) * 32;
    float acc[MI][4][4];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;
    const int nchunks = (p.Cin + BK - 1) / BK;
    /* prologue: chunks 0 .. NS-2 in flight (an empty group where there are fewer, so that group
     * counting stays uniform) */
#pragma unroll
    for (int i = 0; i < NS - 1; i++) {
        __nv_bfloat16 *st = smem + i * stage;
        if (i < nchunks) load_chunk<BM, BK>(p, st, st + p.ntaps_max * BM * LD, i * BK, o0, phase, ntaps, jb, win);
        else cp_async_commit();
    }
    for (int ci = 0; ci < nchunks; ci++) {
        /* chunk ci + NS - 1 into the stage freed at the end of iteration ci - 1 */
        const int nc = ci + NS - 1;
        __nv_bfloat16 *st = smem + (nc % NS) * stage;
        if (nc < nchunks) load_chunk<BM, BK>(p, st, st + p.ntaps_max * BM * LD, nc * BK, o0, phase, ntaps, jb, win);
        else cp_async_commit();
        cp_async_wait<NS - 1>(); /* chunk ci has landed */
        __syncthreads();
        const __nv_bfloat16 *Ws = smem + (ci % NS) * stage, *Xs = Ws + p.ntaps_max * BM * LD;
        for (int tap = 0; tap < ntaps; tap++) {
            const int off = p.transposed ? p.ntaps_max - 1 - tap : tap * p.dil;
            const __nv_bfloat16 *Wt = Ws + tap * BM * LD;
#pragma unroll
            for (int ks = 0; ks < BK; ks += 16) {
                uint32_t a[MI][4], b[4][2];
                /* ldmatrix: lane l addresses row l % 16 (A) or row l % 8 of n tile l / 16 (B), the
                 * 8 channels from ks + 8 ((l / 16) for A, (l / 8) % 2 for B); rows are 80 B apart */
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
                    ldsm_x4(a[mi], Wt + (wm + mi * 16 + (lane & 15)) * LD + ks + (lane >> 4) * 8);
#pragma unroll
                for (int ni = 0; ni < 4; ni += 2) {
                    uint32_t r[4];
                    ldsm_x4(r, Xs + (wn + (ni + (lane >> 4)) * 8 + (lane & 7) + off) * LD + ks + ((lane >> 3) & 1) * 8);
                    b[ni][0] = r[0], b[ni][1] = r[1], b[ni + 1][0] = r[2], b[ni + 1][1] = r[3];
                }
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni]);
            }
        }
        __syncthreads(); /* this stage is refilled on the next iteration */
    }
    conv_epilogue<MI>(p, acc, o0, n0, phase);
}

/* Few output channels (the decoder's last conv: Cout = 1, where a 64-channel tile would be 98%
 * padding): one thread per output time, taps and channels summed in f32. Stride-1 convs only. A
 * block's input window (its times plus the taps' reach, all channels: one contiguous piece of the
 * [T, Cin] input) is staged in shared memory, rows padded by 16 bytes (conflict-free 16-byte
 * reads); `staged` = 0 reads global memory directly (Cin not a multiple of 8, or too wide). */
#define CV_FEW 4
#define CV_FEW_T 256
static __device__ __forceinline__ void few_epilogue(const conv_params &p, int t, const float *acc) {
#pragma unroll
    for (int o = 0; o < CV_FEW; o++)
        if (o < p.Cout) {
            const size_t idx = (size_t)t * p.Cout + o;
            float v = acc[o] + (p.b ? cu_load(p.b, p.bdt, o) : 0.0f);
            if (p.y) {
                if (p.accumulate) v += p.y[idx];
                p.y[idx] = v;
            }
            if (p.ys) {
                if (p.alpha) {
                    const float a = cu_load(p.alpha, p.adt, o);
                    v = snake1(v, a, snake_inv(a));
                }
                p.ys[idx] = __float2bfloat16_rn(v);
            }
        }
}

__global__ void __launch_bounds__(CV_FEW_T) k_conv_few(conv_params p, int staged) {
    extern __shared__ __align__(16) unsigned char cv_smem[];
    __nv_bfloat16 *Xs = (__nv_bfloat16 *)cv_smem;
    const int t0 = blockIdx.x * CV_FEW_T, jb = t0 - p.pad, win = CV_FEW_T + (p.K - 1) * p.dil, pitch = p.Cin + 8;
    if (staged) {
        const int pieces = p.Cin / 8;
        for (int v = threadIdx.x; v < win * pieces; v += CV_FEW_T) {
            const int r = v / pieces, q = v % pieces, j = jb + r;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (j >= 0 && j < p.T) val = *(const uint4 *)(p.x + (size_t)j * p.Cin + q * 8);
            *(uint4 *)&Xs[r * pitch + q * 8] = val;
        }
        __syncthreads();
    }
    const int t = t0 + threadIdx.x;
    if (t >= p.Tout) return;
    float acc[CV_FEW] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k = 0; k < p.K; k++) {
        if (staged) {
            const __nv_bfloat16 *xr = Xs + (threadIdx.x + k * p.dil) * pitch;
            for (int c = 0; c < p.Cin; c += 8) {
                const uint4 xu = *(const uint4 *)(xr + c);
                const __nv_bfloat162 *xh = (const __nv_bfloat162 *)&xu;
#pragma unroll
                for (int o = 0; o < CV_FEW; o++)
                    if (o < p.Cout) {
                        const uint4 wu = __ldg((const uint4 *)(p.w + ((size_t)k * p.Cout + o) * p.Cin + c));
                        const __nv_bfloat162 *wh = (const __nv_bfloat162 *)&wu;
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const float2 xf = __bfloat1622float2(xh[e]), wf = __bfloat1622float2(wh[e]);
                            acc[o] += xf.x * wf.x + xf.y * wf.y;
                        }
                    }
            }
        } else {
            const int j = t + k * p.dil - p.pad;
            if (j < 0 || j >= p.T) continue;
            const __nv_bfloat16 *xr = p.x + (size_t)j * p.Cin;
            for (int c = 0; c < p.Cin; c++) {
                const float xv = __bfloat162float(xr[c]);
#pragma unroll
                for (int o = 0; o < CV_FEW; o++)
                    if (o < p.Cout) acc[o] += xv * __bfloat162float(p.w[((size_t)k * p.Cout + o) * p.Cin + c]);
            }
        }
    }
    few_epilogue(p, t, acc);
}

dia_status cu_conv_bf16(dia_backend *be, const dia_conv_args *a) {
    const dia_tensor *x = a->x, *w = a->w, *y = a->y ? a->y : a->ys;
    if (!y || x->ndim != 2 || w->ndim != 3 || y->ndim != 2 || x->dtype != DIA_BF16 || w->dtype != DIA_BF16 ||
        (a->y && a->y->dtype != DIA_F32) || (a->ys && a->ys->dtype != DIA_BF16) || (a->accumulate && !a->y) ||
        (a->b && !cu_is_float(a->b->dtype)) || (a->alpha_out && !cu_is_float(a->alpha_out->dtype)))
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: bad arguments (outputs, ndim or dtype)");
    const int64_t T = x->ne[0], Cin = x->ne[1], K = w->ne[0], Cout = w->ne[1];
    const int s = a->transposed ? a->stride : 1, dil = a->transposed ? 1 : a->dilation, pad = a->pad;
    if (s < 1 || dil < 1 || pad < 0 || K < 1)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: stride %d, dilation %d, pad %d, K %lld", s, dil, pad,
                        (long long)K);
    const int64_t Tout = a->transposed ? (T - 1) * s - 2 * (int64_t)pad + K : T + 2 * (int64_t)pad - dil * (K - 1);
    const int same = !a->y || !a->ys || (a->y->ne[0] == a->ys->ne[0] && a->y->ne[1] == a->ys->ne[1]);
    if (w->ne[2] != Cin || y->ne[0] != Tout || y->ne[1] != Cout || !same || Tout < 1 || T < 1 ||
        (a->b && dia_tensor_nelem(a->b) != Cout) || (a->alpha_out && dia_tensor_nelem(a->alpha_out) != Cout) ||
        T > INT32_MAX / 2 || Tout > INT32_MAX / 2 || Cin > 65536 || Cout > 65536)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16 shapes: x[%lld,%lld] w[%lld,%lld,%lld] y[%lld,%lld], Tout %lld "
                        "(x and y are [T, C])",
                        (long long)T, (long long)Cin, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2],
                        (long long)y->ne[0], (long long)y->ne[1], (long long)Tout);
    conv_params p;
    memset(&p, 0, sizeof p);
    p.x = (const __nv_bfloat16 *)cu_ptr(x);
    p.y = a->y ? (float *)cu_ptr(a->y) : NULL;
    p.ys = a->ys ? (__nv_bfloat16 *)cu_ptr(a->ys) : NULL;
    p.w = (const __nv_bfloat16 *)cu_ptr(w);
    p.b = a->b ? cu_ptr(a->b) : NULL;
    p.bdt = a->b ? (int)a->b->dtype : 0;
    p.alpha = a->alpha_out ? cu_ptr(a->alpha_out) : NULL;
    p.adt = a->alpha_out ? (int)a->alpha_out->dtype : 0;
    p.Cin = (int)Cin, p.Cout = (int)Cout, p.T = (int)T, p.Tout = (int)Tout, p.K = (int)K;
    p.dil = dil, p.pad = pad, p.stride = s;
    p.transposed = a->transposed ? 1 : 0;
    p.accumulate = a->accumulate ? 1 : 0;
    p.ntaps_max = a->transposed ? (int)((K + s - 1) / s) : (int)K;
    p.n_phases = a->transposed ? s : 1;
    if ((Cin % 8 == 0 && (((uintptr_t)p.w & 15) != 0 || ((uintptr_t)p.x & 15) != 0)) ||
        (Cout % 4 == 0 && ((p.y && ((uintptr_t)p.y & 15) != 0) || (p.ys && ((uintptr_t)p.ys & 7) != 0))))
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: a tensor is not aligned for vector access");
    cudaStream_t stream = cu_ctx(be)->stream;
    if (Cout <= CV_FEW && !a->transposed) {
        const size_t fsm = (size_t)(CV_FEW_T + (K - 1) * dil) * (size_t)(Cin + 8) * sizeof(__nv_bfloat16);
        const int staged = Cin % 8 == 0 && fsm <= 96 * 1024;
        CU_CHECK(cudaFuncSetAttribute(k_conv_few, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
        k_conv_few<<<cu_blocks(Tout, CV_FEW_T), CV_FEW_T, staged ? fsm : 0, stream>>>(p, staged);
        CU_LAUNCHED("conv_bf16 (few channels)");
        return DIA_OK;
    }
    /* tile of 96 channels where Cout is a multiple of 96 (every DAC width) and two blocks per SM
     * still fit, else 64, or 32 where that avoids a part-empty tile (Cout = 96 with 7 taps);
     * DIA_CUDA_CONV_BM=32|64|96 forces one (96 where Cout allows) */
    const int64_t ncols = a->transposed ? (Tout - 1 + pad) / s + 1 : Tout; /* q or t values */
    const int64_t win = a->transposed ? CV_BN + p.ntaps_max - 1 : CV_BN + (K - 1) * dil;
    /* Chunks of 32 channels, except where 16 lets a 96-channel tile fit twice per SM and the
     * alternative is 32-channel tiles (Cout = 96 with 7 taps: 360 vs 434 us at 10 s; 16-channel
     * chunks are slower wherever 64- or 96-channel tiles fit with 32); 64 for 1-tap and transposed convs
     * (little work per chunk otherwise). DIA_CUDA_CONV_BK=16|32|64 forces. */
    const char *env = getenv("DIA_CUDA_CONV_BM"), *kenv = getenv("DIA_CUDA_CONV_BK");
    const int few_taps = K == 1 || a->transposed; /* little work per chunk: wider chunks (64) */
    int bk = kenv ? (atoi(kenv) == 16 ? 16 : atoi(kenv) == 64 ? 64 : 32) : few_taps ? 64 : 32;
    const size_t s96_32 = ((size_t)p.ntaps_max * 96 + (size_t)win) * 40 * sizeof(__nv_bfloat16);
    const size_t s96_16 = ((size_t)p.ntaps_max * 96 + (size_t)win) * 24 * sizeof(__nv_bfloat16);
    if (!kenv && Cout % 96 == 0 && Cout % 64 != 0 && 2 * s96_32 > 110 * 1024 && 2 * s96_16 <= 110 * 1024) bk = 16;
    const size_t row = (size_t)(bk + 8) * sizeof(__nv_bfloat16);
    const size_t stage96 = ((size_t)p.ntaps_max * 96 + (size_t)win) * row;
    int mi = Cout % 96 == 0 && 2 * stage96 <= 110 * 1024 ? 3 : Cout % 64 != 0 && Cout % 32 == 0 ? 1 : 2;
    if (env && atoi(env) == 32) mi = 1;
    if (env && atoi(env) == 64) mi = 2;
    if (env && atoi(env) == 96 && Cout % 96 == 0) mi = 3;
    const int bm = 32 * mi;
    p.n_mtiles = (int)((Cout + bm - 1) / bm);
    const size_t stage = ((size_t)p.ntaps_max * bm + (size_t)win) * row;
    /* 4 (else 3) stages where two blocks per SM still fit */
    const int ns = 4 * stage <= 110 * 1024 ? 4 : 3 * stage <= 110 * 1024 && bk == 64 ? 3 : 2;
    size_t smem = ns * stage;
    const size_t ep = (size_t)CV_BN * (bm + 4) * sizeof(float); /* the epilogue's staging */
    if (smem < ep) smem = ep;
    if (smem > CV_MAX_SMEM)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: %lld taps with dilation %d need %zu bytes of shared memory",
                        (long long)K, dil, smem);
    const int64_t blocks = (int64_t)p.n_mtiles * p.n_phases * ((ncols + CV_BN - 1) / CV_BN);
    if (blocks > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: %lld blocks", (long long)blocks);
    void (*kern)(conv_params);
    if (bk == 16)
        kern = mi == 3   ? (ns == 4 ? k_conv_bf16<3, 4, 16> : k_conv_bf16<3, 2, 16>)
               : mi == 2 ? (ns == 4 ? k_conv_bf16<2, 4, 16> : k_conv_bf16<2, 2, 16>)
                         : (ns == 4 ? k_conv_bf16<1, 4, 16> : k_conv_bf16<1, 2, 16>);
    else if (bk == 64)
        kern = mi == 3   ? (ns == 4 ? k_conv_bf16<3, 4, 64> : ns == 3 ? k_conv_bf16<3, 3, 64> : k_conv_bf16<3, 2, 64>)
               : mi == 2 ? (ns == 4 ? k_conv_bf16<2, 4, 64> : ns == 3 ? k_conv_bf16<2, 3, 64> : k_conv_bf16<2, 2, 64>)
                         : (ns == 4 ? k_conv_bf16<1, 4, 64> : ns == 3 ? k_conv_bf16<1, 3, 64> : k_conv_bf16<1, 2, 64>);
    else
        kern = mi == 3   ? (ns == 4 ? k_conv_bf16<3, 4, 32> : k_conv_bf16<3, 2, 32>)
               : mi == 2 ? (ns == 4 ? k_conv_bf16<2, 4, 32> : k_conv_bf16<2, 2, 32>)
                         : (ns == 4 ? k_conv_bf16<1, 4, 32> : k_conv_bf16<1, 2, 32>);
    /* the opt-in above 48 KiB (per device, so every call; it is cheap) */
    CU_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, CV_MAX_SMEM));
    kern<<<(unsigned)blocks, CV_THREADS, smem, stream>>>(p);
    CU_LAUNCHED("conv_bf16");
    return DIA_OK;
}

/* ys[t, c] = bf16(alpha ? snake(x[c, t]) : x[c, t]): x f32 [C, T] to the conv operand layout */
__global__ void k_snake_bf16(__nv_bfloat16 *ys, const float *x, const void *alpha, int adt, int64_t C, int64_t T) {
    const int64_t n = C * T;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / C, c = i % C;
        const float v = x[c * T + t];
        float r = v;
        if (alpha) {
            const float a = cu_load(alpha, adt, c);
            r = snake1(v, a, snake_inv(a));
        }
        ys[i] = __float2bfloat16_rn(r);
    }
}

dia_status cu_snake_bf16(dia_backend *be, dia_tensor *ys, const dia_tensor *x, const dia_tensor *alpha) {
    if (x->ndim != 2 || ys->ndim != 2 || x->dtype != DIA_F32 || ys->dtype != DIA_BF16 || ys->ne[0] != x->ne[1] ||
        ys->ne[1] != x->ne[0] || (alpha && (dia_tensor_nelem(alpha) != x->ne[0] || !cu_is_float(alpha->dtype))))
        return dia_fail(DIA_ERR_INTERNAL, "snake_bf16: bad arguments (x [C, T] f32, ys [T, C] bf16)");
    const int64_t C = x->ne[0], T = x->ne[1];
    if (C * T == 0) return DIA_OK;
    int64_t blocks = (C * T + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    k_snake_bf16<<<(unsigned)blocks, 256, 0, cu_ctx(be)->stream>>>((__nv_bfloat16 *)cu_ptr(ys), (const float *)cu_ptr(x),
                                                                 alpha ? cu_ptr(alpha) : NULL,
                                                                 alpha ? (int)alpha->dtype : 0, C, T);
    CU_LAUNCHED("snake_bf16");
    return DIA_OK;
}
