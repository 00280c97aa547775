/* cuda_dac_conv.cu - the DAC's bf16 tensor-core convolution (backend slots conv_bf16 and
 * snake_bf16, see dia_conv_args in lib/backend.h): an implicit GEMM
 *     out[o, t] = b[o] + sum_{tap, i} W[tap, o, i] . x[i, t + offset(tap)]
 * on mma.sync m16n8k16 (bf16 operands, f32 accumulation). No im2col buffer: a block stages the
 * bf16 input window its output tile needs (time-major in shared memory, so any tap offset is a row
 * shift) and the weights of every tap for a 32-channel chunk, then runs all taps over them. The
 * epilogue adds the bias, optionally accumulates into the f32 output, and writes the next layer's
 * operand (Snake, then bf16) so Snake runs once per element. A transposed conv (stride s) is s
 * stride-1 convolutions, one per output phase, each with ceil(K / s) taps; a block computes one. */
#include "cuda_common.cuh"

#define CV_BM 64       /* output channels per block (2 warps of 32) */
#define CV_BN 128      /* output columns per block (4 warps of 32) */
#define CV_BK 32       /* input channels per chunk */
#define CV_LD 40       /* shared-memory row pitch in bf16: 20 words, so fragment loads hit 32 banks */
#define CV_THREADS 256 /* 8 warps */
#define CV_MAX_SMEM (160 * 1024)

typedef struct conv_params {
    const __nv_bfloat16 *x;   /* [Cin, T] */
    float *y;                 /* [Cout, Tout] or NULL */
    __nv_bfloat16 *ys;        /* [Cout, Tout] or NULL */
    const __nv_bfloat16 *w;   /* [K, Cout, Cin] */
    const void *b, *alpha;    /* bias [Cout], alpha_out [Cout], or NULL */
    int bdt, adt;             /* their dtypes */
    int Cin, Cout, T, Tout, K;
    int dil, pad, stride;     /* stride: transposed only */
    int transposed, accumulate;
    int ntaps_max;            /* K, or ceil(K / stride) transposed */
    int n_mtiles, n_phases;   /* block index = (col tile, phase, m tile), m tile fastest */
} conv_params;

static __device__ __forceinline__ uint32_t lds32(const __nv_bfloat16 *p) { return *(const uint32_t *)p; }

static __device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* Snake of one value with 1 / (alpha + 1e-9) precomputed (the formula of k_snake). */
static __device__ __forceinline__ float snake1(float v, float a, float inv) {
    const float s = sinf(a * v);
    return v + inv * (s * s);
}

__global__ void __launch_bounds__(CV_THREADS, 2) k_conv_bf16(conv_params p) {
    extern __shared__ __align__(16) unsigned char cv_smem[];
    __nv_bfloat16 *Ws = (__nv_bfloat16 *)cv_smem;      /* [ntaps_max][BM][LD] */
    __nv_bfloat16 *Xs = Ws + p.ntaps_max * CV_BM * CV_LD; /* [win][LD]: row r = input position jb + r */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
    const int mt = blockIdx.x % p.n_mtiles, rest = blockIdx.x / p.n_mtiles;
    const int phase = rest % p.n_phases, ct = rest / p.n_phases;
    const int o0 = mt * CV_BM, n0 = ct * CV_BN;
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
    const int wm = (warp & 1) * 32, wn = (warp >> 1) * 32;
    float acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;
    const bool wvec = (p.Cin & 7) == 0;
    for (int c0 = 0; c0 < p.Cin; c0 += CV_BK) {
        __syncthreads(); /* the previous chunk's fragments are read */
        /* weights: ntaps x BM x BK, 8 bf16 per item */
        for (int v = tid; v < ntaps * CV_BM * 4; v += CV_THREADS) {
            const int q8 = (v & 3) * 8, o = (v >> 2) % CV_BM, tap = v / (CV_BM * 4);
            const int k = p.transposed ? phase + tap * p.stride : tap;
            const int oc = o0 + o, c = c0 + q8;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (oc < p.Cout) {
                const __nv_bfloat16 *src = p.w + ((size_t)k * p.Cout + oc) * p.Cin + c;
                if (wvec && c + 8 <= p.Cin) {
                    val = *(const uint4 *)src;
                } else {
                    __nv_bfloat16 tmp[8];
                    for (int e = 0; e < 8; e++) tmp[e] = c + e < p.Cin ? src[e] : __float2bfloat16(0.0f);
                    val = *(const uint4 *)tmp;
                }
            }
            *(uint4 *)&Ws[(tap * CV_BM + o) * CV_LD + q8] = val;
        }
        /* input window: a warp item covers 8 rows x 4 channel pairs (conflict-free 32-bit stores) */
        const int cp = ((tid >> 5) & 3) * 4 + (tid & 3), c = c0 + 2 * cp; /* the same every iteration */
        const __nv_bfloat16 zero = __float2bfloat16(0.0f);
        const int rows8 = (win + 7) >> 3;
        for (int v = tid; v < rows8 * 8 * 16; v += CV_THREADS) {
            const int r = (v >> 7) * 8 + ((v & 31) >> 2), j = jb + r;
            __nv_bfloat162 pr;
            pr.x = zero, pr.y = zero;
            if (r < win && j >= 0 && j < p.T) {
                if (c < p.Cin) pr.x = p.x[(size_t)c * p.T + j];
                if (c + 1 < p.Cin) pr.y = p.x[(size_t)(c + 1) * p.T + j];
            }
            *(__nv_bfloat162 *)&Xs[r * CV_LD + 2 * cp] = pr; /* .x (low half) = channel c */
        }
        __syncthreads();
        for (int tap = 0; tap < ntaps; tap++) {
            const int off = p.transposed ? p.ntaps_max - 1 - tap : tap * p.dil;
            const __nv_bfloat16 *Wt = Ws + tap * CV_BM * CV_LD;
#pragma unroll
            for (int ks = 0; ks < CV_BK; ks += 16) {
                uint32_t a[2][4], b[4][2];
#pragma unroll
                for (int mi = 0; mi < 2; mi++) {
                    const __nv_bfloat16 *pa = Wt + (wm + mi * 16 + g) * CV_LD + ks + 2 * tq;
                    a[mi][0] = lds32(pa);
                    a[mi][1] = lds32(pa + 8 * CV_LD);
                    a[mi][2] = lds32(pa + 8);
                    a[mi][3] = lds32(pa + 8 * CV_LD + 8);
                }
#pragma unroll
                for (int ni = 0; ni < 4; ni++) {
                    const __nv_bfloat16 *pb = Xs + (wn + ni * 8 + g + off) * CV_LD + ks + 2 * tq;
                    b[ni][0] = lds32(pb);
                    b[ni][1] = lds32(pb + 8);
                }
#pragma unroll
                for (int mi = 0; mi < 2; mi++)
#pragma unroll
                    for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni]);
            }
        }
    }
    /* epilogue: c0,c1 = (row g, cols 2tq, 2tq+1), c2,c3 = (row g + 8, same cols) */
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int o = o0 + wm + mi * 16 + g + h * 8;
            if (o >= p.Cout) continue;
            const float bias = p.b ? cu_load(p.b, p.bdt, o) : 0.0f;
            float a = 0.0f, inv = 0.0f;
            if (p.alpha) a = cu_load(p.alpha, p.adt, o), inv = (float)(1.0 / ((double)a + 1e-9));
            float *yr = p.y ? p.y + (size_t)o * p.Tout : NULL;
            __nv_bfloat16 *ysr = p.ys ? p.ys + (size_t)o * p.Tout : NULL;
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int n = n0 + wn + ni * 8 + 2 * tq + e;
                    const int t = p.transposed ? n * p.stride + phase - p.pad : n;
                    if (t < 0 || t >= p.Tout) continue;
                    float v = acc[mi][ni][h * 2 + e] + bias;
                    if (yr) {
                        if (p.accumulate) v += yr[t];
                        yr[t] = v;
                    }
                    if (ysr) ysr[t] = __float2bfloat16_rn(p.alpha ? snake1(v, a, inv) : v);
                }
        }
}

dia_status cu_conv_bf16(dia_backend *be, const dia_conv_args *a) {
    const dia_tensor *x = a->x, *w = a->w, *y = a->y ? a->y : a->ys;
    if (!y || x->ndim != 2 || w->ndim != 3 || y->ndim != 2 || x->dtype != DIA_BF16 || w->dtype != DIA_BF16 ||
        (a->y && a->y->dtype != DIA_F32) || (a->ys && a->ys->dtype != DIA_BF16) || (a->accumulate && !a->y) ||
        (a->b && !cu_is_float(a->b->dtype)) || (a->alpha_out && !cu_is_float(a->alpha_out->dtype)))
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: bad arguments (outputs, ndim or dtype)");
    const int64_t Cin = x->ne[0], T = x->ne[1], K = w->ne[0], Cout = w->ne[1];
    const int s = a->transposed ? a->stride : 1, dil = a->transposed ? 1 : a->dilation, pad = a->pad;
    if (s < 1 || dil < 1 || pad < 0 || K < 1)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: stride %d, dilation %d, pad %d, K %lld", s, dil, pad,
                        (long long)K);
    const int64_t Tout = a->transposed ? (T - 1) * s - 2 * (int64_t)pad + K : T + 2 * (int64_t)pad - dil * (K - 1);
    const int same = !a->y || !a->ys || (a->y->ne[0] == a->ys->ne[0] && a->y->ne[1] == a->ys->ne[1]);
    if (w->ne[2] != Cin || y->ne[0] != Cout || y->ne[1] != Tout || !same || Tout < 1 || T < 1 ||
        (a->b && dia_tensor_nelem(a->b) != Cout) || (a->alpha_out && dia_tensor_nelem(a->alpha_out) != Cout) ||
        T > INT32_MAX / 2 || Tout > INT32_MAX / 2 || Cin > 65536 || Cout > 65536)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16 shapes: x[%lld,%lld] w[%lld,%lld,%lld] y[%lld,%lld], Tout %lld",
                        (long long)Cin, (long long)T, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2],
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
    p.n_mtiles = (int)((Cout + CV_BM - 1) / CV_BM);
    p.n_phases = a->transposed ? s : 1;
    const int64_t ncols = a->transposed ? (Tout - 1 + pad) / s + 1 : Tout; /* q or t values */
    const int64_t win = a->transposed ? CV_BN + p.ntaps_max - 1 : CV_BN + (K - 1) * dil;
    const size_t smem = ((size_t)p.ntaps_max * CV_BM + (size_t)((win + 7) / 8 * 8)) * CV_LD * sizeof(__nv_bfloat16);
    if (smem > CV_MAX_SMEM)
        return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: %lld taps with dilation %d need %zu bytes of shared memory",
                        (long long)K, dil, smem);
    if (((uintptr_t)p.w & 15) != 0) return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: weight not 16-byte aligned");
    const int64_t blocks = (int64_t)p.n_mtiles * p.n_phases * ((ncols + CV_BN - 1) / CV_BN);
    if (blocks > INT32_MAX) return dia_fail(DIA_ERR_INTERNAL, "conv_bf16: %lld blocks", (long long)blocks);
    /* the opt-in above 48 KiB (per device, so every call; it is cheap) */
    CU_CHECK(cudaFuncSetAttribute(k_conv_bf16, cudaFuncAttributeMaxDynamicSharedMemorySize, CV_MAX_SMEM));
    k_conv_bf16<<<(unsigned)blocks, CV_THREADS, smem, cu_ctx(be)->stream>>>(p);
    CU_LAUNCHED("conv_bf16");
    return DIA_OK;
}

/* ys = bf16(alpha ? snake(x) : x), [C, T] */
__global__ void k_snake_bf16(__nv_bfloat16 *ys, const float *x, const void *alpha, int adt, int64_t C, int64_t T) {
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
        float a = 0.0f, inv = 0.0f;
        if (alpha) a = cu_load(alpha, adt, c), inv = (float)(1.0 / ((double)a + 1e-9));
        for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < T; t += (int64_t)gridDim.x * blockDim.x) {
            const float v = x[c * T + t];
            ys[c * T + t] = __float2bfloat16_rn(alpha ? snake1(v, a, inv) : v);
        }
    }
}

dia_status cu_snake_bf16(dia_backend *be, dia_tensor *ys, const dia_tensor *x, const dia_tensor *alpha) {
    if (x->ndim != 2 || ys->ndim != 2 || x->dtype != DIA_F32 || ys->dtype != DIA_BF16 || ys->ne[0] != x->ne[0] ||
        ys->ne[1] != x->ne[1] || (alpha && (dia_tensor_nelem(alpha) != x->ne[0] || !cu_is_float(alpha->dtype))))
        return dia_fail(DIA_ERR_INTERNAL, "snake_bf16: bad arguments");
    const int64_t C = x->ne[0], T = x->ne[1];
    if (C * T == 0) return DIA_OK;
    int64_t bx = (T + 255) / 256;
    if (bx > 1024) bx = 1024;
    const dim3 grid((unsigned)bx, (unsigned)(C < 65535 ? C : 65535));
    k_snake_bf16<<<grid, 256, 0, cu_ctx(be)->stream>>>((__nv_bfloat16 *)cu_ptr(ys), (const float *)cu_ptr(x),
                                                     alpha ? cu_ptr(alpha) : NULL, alpha ? (int)alpha->dtype : 0, C, T);
    CU_LAUNCHED("snake_bf16");
    return DIA_OK;
}
