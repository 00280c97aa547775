/* cuda_gemm_rows.cu - y_i[M, N_i] (+)= xb[M, K] . W_i^T for up to three bf16 nn.Linear weights
 * W_i [N_i, K] that share one bf16 input, at the row counts of a batched decode step (M <= 128:
 * 2 rows per item, B <= 64). There a GEMM is mostly a weight stream (128 rows x 2 bytes of weight
 * = 128 FLOP per byte), and cuBLAS's big tiles leave most SMs idle on the 2048-wide projections.
 *
 * A block computes 128 output features x all M rows on mma.sync m16n8k16 (bf16 in, f32
 * accumulate): 8 warps, 2 along the features (64 each) x 4 along the rows (32 each; warps whose
 * rows are all past M skip the math). The K dimension moves through shared memory in chunks of 64
 * (weights and input rows, cp.async, NS-stage pipeline, ldmatrix fragments). To fill the GPU, the
 * K range of a tile is split over the S <= 8 blocks of a cluster whose partial tiles are summed in
 * rank order (cuda_splitk.cuh: deterministic, no atomics). All weights of a call are one grid (q, k
 * and v of a layer: one launch). */
#include "cuda_common.cuh"
#include "cuda_mma.cuh"
#include "cuda_splitk.cuh"

#define GR_BM SK_TILE      /* output features per block */
#define GR_BN SK_ROWS      /* rows per block: all of M */
#define GR_BK SK_BK        /* K per chunk */
#define GR_LD (GR_BK + 8)  /* shared row pitch in elements (conflict-free ldmatrix) */
#define GR_NS 3            /* pipeline stages (two blocks per SM fit) */
#define GR_THREADS 256
#define GR_STAGE ((GR_BM + GR_BN) * GR_LD) /* elements per stage */
#define GR_SMEM_PIPE ((size_t)GR_NS * GR_STAGE * sizeof(__nv_bfloat16))
#define GR_SMEM_EPI ((size_t)GR_BN * SK_EP * sizeof(float))
#define GR_SMEM (GR_SMEM_PIPE > GR_SMEM_EPI ? GR_SMEM_PIPE : GR_SMEM_EPI)

/* Chunk c (K columns c*64 ..) of the tile's weight rows f0.. and of the input rows 0..Mp-1 into
 * one stage (rows past N or M are zeros; input rows past Mp are never read). One commit group. */
static __device__ __forceinline__ void gr_load(const splitk_params &p, const __nv_bfloat16 *W, int N, int f0, int Mp,
                                               __nv_bfloat16 *Ws, __nv_bfloat16 *Xs, int c) {
    const int k0 = c * GR_BK;
    for (int v = threadIdx.x; v < GR_BM * (GR_BK / 8); v += GR_THREADS) {
        const int o = v >> 3, q8 = (v & 7) * 8;
        const bool ok = f0 + o < N;
        cp_async16(&Ws[o * GR_LD + q8], ok ? W + (size_t)(f0 + o) * p.K + k0 + q8 : W, ok);
    }
    for (int v = threadIdx.x; v < Mp * (GR_BK / 8); v += GR_THREADS) {
        const int r = v >> 3, q8 = (v & 7) * 8;
        const bool ok = r < p.M;
        cp_async16(&Xs[r * GR_LD + q8], ok ? p.x + (size_t)r * p.K + k0 + q8 : p.x, ok);
    }
    cp_async_commit();
}

__global__ void __launch_bounds__(GR_THREADS, 2) k_gemm_rows(splitk_params p) {
    extern __shared__ __align__(16) unsigned char gr_smem[];
    __nv_bfloat16 *smem = (__nv_bfloat16 *)gr_smem;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const sk_tile t = sk_tile_of(p);
    const __nv_bfloat16 *W = t.W;
    const int N = t.N, f0 = t.f0, c0 = t.c0, c1 = t.c1;
    const int Mp = (p.M + 31) & ~31; /* rows the active warps read */
    const int wm = (warp & 1) * 64, wn = (warp >> 1) * 32;
    const bool active = wn < p.M;
    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;
#pragma unroll
    for (int i = 0; i < GR_NS - 1; i++) {
        __nv_bfloat16 *st = smem + i * GR_STAGE;
        if (c0 + i < c1) gr_load(p, W, N, f0, Mp, st, st + GR_BM * GR_LD, c0 + i);
        else cp_async_commit();
    }
    for (int c = c0; c < c1; c++) {
        cp_async_wait<GR_NS - 2>(); /* chunk c has landed (this thread's part) */
        __syncthreads();            /* everyone's part; and everyone is done with chunk c - 1 */
        /* chunk c + NS - 1 into the stage of chunk c - 1 */
        const int nc = c + GR_NS - 1;
        __nv_bfloat16 *st = smem + ((nc - c0) % GR_NS) * GR_STAGE;
        if (nc < c1) gr_load(p, W, N, f0, Mp, st, st + GR_BM * GR_LD, nc);
        else cp_async_commit();
        const __nv_bfloat16 *Ws = smem + ((c - c0) % GR_NS) * GR_STAGE, *Xs = Ws + GR_BM * GR_LD;
        if (active) {
#pragma unroll
            for (int ks = 0; ks < GR_BK; ks += 16) {
                uint32_t a[4][4], b[4][2];
#pragma unroll
                for (int mi = 0; mi < 4; mi++)
                    ldsm_x4(a[mi], Ws + (wm + mi * 16 + (lane & 15)) * GR_LD + ks + (lane >> 4) * 8);
#pragma unroll
                for (int ni = 0; ni < 4; ni += 2) {
                    uint32_t r[4];
                    ldsm_x4(r, Xs + (wn + (ni + (lane >> 4)) * 8 + (lane & 7)) * GR_LD + ks + ((lane >> 3) & 1) * 8);
                    b[ni][0] = r[0], b[ni][1] = r[1], b[ni + 1][0] = r[2], b[ni + 1][1] = r[3];
                }
#pragma unroll
                for (int mi = 0; mi < 4; mi++)
#pragma unroll
                    for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni]);
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();
    /* the partial tile as Es[row][feature] (fragment: feature wm + 16 mi + g (+8), row wn + 8 ni
     * + 2 tq (+1)) */
    float *Es = (float *)gr_smem;
    if (active) {
        const int g = lane >> 2, tq = lane & 3;
#pragma unroll
        for (int mi = 0; mi < 4; mi++)
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    Es[(wn + ni * 8 + 2 * tq + (e & 1)) * SK_EP + wm + mi * 16 + g + (e >> 1) * 8] = acc[mi][ni][e];
    }
    sk_reduce_store(p, t, Es);
}

int sk_shapes_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                 const int *trans_w, dia_tensor *const *y, int64_t min_rows) {
    if (n < 1 || n > 3 || M < min_rows || M > SK_ROWS || K % SK_BK || K > INT32_MAX / 2 || !cu_aligned16(xb)) return 0;
    for (int i = 0; i < n; i++) {
        const dia_tensor *wi = w[i], *yi = y[i];
        if (!trans_w[i] || wi->dtype != DIA_BF16 || wi->ndim != 2 || wi->ne[1] != K || wi->ne[0] % 4 ||
            wi->ne[0] > INT32_MAX / 2 || wi->buf->host_mem || !cu_aligned16(cu_ptr(wi)))
            return 0;
        if (yi->dtype != DIA_F32 || yi->ndim != 2 || yi->ne[0] != M || yi->ne[1] != wi->ne[0] || !cu_aligned16(cu_ptr(yi)))
            return 0;
    }
    return 1;
}

static int sk_params(splitk_params *p, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
              dia_tensor *const *y, int accumulate) {
    memset(p, 0, sizeof *p);
    p->x = xb;
    int tiles = 0;
    for (int i = 0; i < n; i++) {
        p->w[i] = (const __nv_bfloat16 *)cu_ptr(w[i]);
        p->y[i] = (float *)cu_ptr(y[i]);
        p->n[i] = (int)w[i]->ne[0];
        tiles += (p->n[i] + SK_TILE - 1) / SK_TILE;
        p->tile_end[i] = tiles;
    }
    p->nw = n, p->M = (int)M, p->K = (int)K, p->accumulate = accumulate ? 1 : 0;
    return tiles;
}

/* One launch configuration: grid blocks in clusters of s. */
static cudaLaunchConfig_t sk_config(cuda_ctx *c, unsigned grid, int s, size_t smem, cudaLaunchAttribute *attr) {
    const dim3 cluster((unsigned)s);
    return cu_config(dim3(grid), dim3(256), smem, c->stream, 0, &cluster, attr);
}

static int sk_split(cuda_ctx *c, void (*kernel)(splitk_params), size_t smem, int tiles, int64_t K, int blocks_per_sm,
             const char *cap_env) {
    const int nch = (int)(K / SK_BK);
    int s = blocks_per_sm * c->sm_count / tiles;
    if (s > SK_MAXS) s = SK_MAXS;
    if (s > nch) s = nch;
    if (s < 1) s = 1;
    const char *cap = getenv(cap_env);
    if (cap && atoi(cap) >= 1 && atoi(cap) < s) s = atoi(cap);
    for (; s > 1; s--) { /* only cluster sizes the device can run */
        cudaLaunchAttribute attr[2];
        const cudaLaunchConfig_t cfg = sk_config(c, (unsigned)s, s, smem, attr);
        if (cu_cluster_fits((const void *)kernel, &cfg)) break;
    }
    return s;
}

static dia_status sk_launch(cuda_ctx *c, void (*kernel)(splitk_params), const splitk_params *p, int tiles,
                            size_t smem, const char *name) {
    /* the opt-in above 48 KiB (per device, so every call; it is cheap) */
    CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    cudaLaunchAttribute attr[2];
    const cudaLaunchConfig_t cfg = sk_config(c, (unsigned)(tiles * p->S), p->S, smem, attr);
    CU_CHECK(cudaLaunchKernelEx(&cfg, kernel, *p));
    CU_LAUNCHED(name);
    return DIA_OK;
}

dia_status sk_gemm(dia_backend *be, void (*kernel)(splitk_params), size_t smem, const char *cap_env,
                   const char *name, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                   dia_tensor *const *y, int accumulate, const cu_rope_epi *rope) {
    cuda_ctx *c = cu_ctx(be);
    splitk_params p;
    const int tiles = sk_params(&p, xb, M, K, n, w, y, accumulate);
    if (rope) p.rope = *rope;
    p.S = sk_split(c, kernel, smem, tiles, K, 2, cap_env);
    return sk_launch(c, kernel, &p, tiles, smem, name);
}

/* DIA_CUDA_GEMM_ROWS: 0 never (cuBLAS), 2 every shape the kernel can take (tests, benchmarks),
 * else (default) where it measured faster on the H100: several weights on one input (q, k and v:
 * one launch instead of three cuBLAS GEMMs; at 128 rows 18.8 vs 39.0 us in bench_cuda_ops). Single
 * weights stay on cuBLAS: its kernels were faster at 128 rows, and at 16-64 rows, though this
 * kernel timed faster alone for the 2048-wide projections, whole decode steps at B = 8 and 32
 * were 1-4% slower with it. */
int cu_gemm_rows_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                    const int *trans_w, dia_tensor *const *y) {
    const char *e = getenv("DIA_CUDA_GEMM_ROWS");
    const int mode = e && (e[0] == '0' || e[0] == '2') ? e[0] - '0' : 1;
    if (mode == 0 || (mode == 1 && n < 2)) return 0;
    return sk_shapes_ok(xb, M, K, n, w, trans_w, y, 1);
}

dia_status cu_gemm_rows(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                        const dia_tensor *const *w, dia_tensor *const *y, int accumulate) {
    return sk_gemm(be, k_gemm_rows, GR_SMEM, "DIA_CUDA_GEMM_ROWS_S", "gemm_rows", xb, M, K, n, w, y,
                   accumulate, NULL);
}

/* q|k|v (y = q, k, v) with RoPE and the cache stores in the epilogue (the caller checked the shapes:
 * cu_gemm_rows_ok for the three weights, widths multiples of 128 = the head size). */
dia_status cu_gemm_rows_rope(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, const dia_tensor *const *w,
                             dia_tensor *const *y, const cu_rope_epi *rope) {
    return sk_gemm(be, k_gemm_rows, GR_SMEM, "DIA_CUDA_GEMM_ROWS_S", "gemm_rows_rope", xb, M, K, 3, w, y, 0,
                   rope);
}
