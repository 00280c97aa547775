/* cuda_gemm_rows.cu - y_i[M, N_i] (+)= xb[M, K] . W_i^T for up to three bf16 nn.Linear weights
 * W_i [N_i, K] that share one bf16 input, at the row counts of a batched decode step (M <= 128:
 * 2 rows per item, B <= 64). There a GEMM is mostly a weight stream (128 rows x 2 bytes of weight
 * = 128 FLOP per byte), and cuBLAS's big tiles leave most SMs idle on the 2048-wide projections.
 *
 * A block computes 128 output features x all M rows on mma.sync m16n8k16 (bf16 in, f32
 * accumulate): 8 warps, 2 along the features (64 each) x 4 along the rows (32 each; warps whose
 * rows are all past M skip the math). The K dimension moves through shared memory in chunks of 64
 * (weights and input rows, cp.async, NS-stage pipeline, ldmatrix fragments). To fill the GPU, the
 * K range of a tile is split over S blocks (split-K, S <= 8) that form one thread-block cluster:
 * each stages its partial tile in its shared memory, and after a cluster barrier block r sums rows
 * r, r + S, ... of all S partials through distributed shared memory, in rank order, adds the
 * accumulated output and writes it. The result is therefore deterministic (the same bits on every
 * run) without atomics or a global workspace. All weights of a call are one grid (q, k and v of a
 * layer: one launch). */
#include <cooperative_groups.h>

#include "cuda_common.cuh"
#include "cuda_mma.cuh"

namespace cg = cooperative_groups;

#define GR_BM 128          /* output features per block */
#define GR_BN 128          /* rows per block: all of M */
#define GR_BK 64           /* K per chunk */
#define GR_LD (GR_BK + 8)  /* shared row pitch in elements (conflict-free ldmatrix) */
#define GR_NS 3            /* pipeline stages (two blocks per SM fit) */
#define GR_EP (GR_BM + 4)  /* epilogue pitch in floats: Es[row][feature] */
#define GR_THREADS 256
#define GR_MAXS 8          /* portable cluster size */
#define GR_STAGE ((GR_BM + GR_BN) * GR_LD) /* elements per stage */
#define GR_SMEM_PIPE ((size_t)GR_NS * GR_STAGE * sizeof(__nv_bfloat16))
#define GR_SMEM_EPI ((size_t)GR_BN * GR_EP * sizeof(float))
#define GR_SMEM (GR_SMEM_PIPE > GR_SMEM_EPI ? GR_SMEM_PIPE : GR_SMEM_EPI)

typedef struct gr_params {
    const __nv_bfloat16 *x;    /* [M, K] */
    const __nv_bfloat16 *w[3]; /* [N_i, K] */
    float *y[3];               /* [M, N_i] */
    int n[3];                  /* N_i */
    int tile_end[3];           /* cumulative feature tiles: weight i owns tiles [tile_end[i-1], tile_end[i]) */
    int nw, M, K, S, accumulate;
} gr_params;

/* Chunk c (K columns c*64 ..) of the tile's weight rows f0.. and of the input rows 0..Mp-1 into
 * one stage (rows past N or M are zeros; input rows past Mp are never read). One commit group. */
static __device__ __forceinline__ void gr_load(const gr_params &p, const __nv_bfloat16 *W, int N, int f0, int Mp,
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

__global__ void __launch_bounds__(GR_THREADS, 2) k_gemm_rows(gr_params p) {
    extern __shared__ __align__(16) unsigned char gr_smem[];
    __nv_bfloat16 *smem = (__nv_bfloat16 *)gr_smem;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int split = blockIdx.x % p.S, tile = blockIdx.x / p.S;
    /* which weight (selects, not indexing: the parameters stay out of local memory) */
    const int wi = tile < p.tile_end[0] ? 0 : p.nw > 1 && tile < p.tile_end[1] ? 1 : 2;
    const int first = wi == 0 ? 0 : wi == 1 ? p.tile_end[0] : p.tile_end[1];
    const int f0 = (tile - first) * GR_BM, N = wi == 0 ? p.n[0] : wi == 1 ? p.n[1] : p.n[2];
    const __nv_bfloat16 *W = wi == 0 ? p.w[0] : wi == 1 ? p.w[1] : p.w[2];
    float *Y = wi == 0 ? p.y[0] : wi == 1 ? p.y[1] : p.y[2];
    const int nch = p.K / GR_BK, c0 = split * nch / p.S, c1 = (split + 1) * nch / p.S;
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
                    Es[(wn + ni * 8 + 2 * tq + (e & 1)) * GR_EP + wm + mi * 16 + g + (e >> 1) * 8] = acc[mi][ni][e];
    }
    cg::cluster_group cluster = cg::this_cluster();
    if (p.S > 1) cluster.sync();
    else __syncthreads();
    /* rows split, r, r + S, ...: 32 threads per row, 4 features each (16-byte accesses) */
    const int fl = (tid & 31) * 4, f = f0 + fl;
    if (f < N)
        for (int r = split + p.S * (tid >> 5); r < p.M; r += p.S * (GR_THREADS / 32)) {
            float4 s;
            if (p.S == 1) s = *(const float4 *)&Es[r * GR_EP + fl];
            else {
                s = *(const float4 *)(cluster.map_shared_rank(Es, 0) + r * GR_EP + fl);
                for (int q = 1; q < p.S; q++) {
                    const float4 t = *(const float4 *)(cluster.map_shared_rank(Es, q) + r * GR_EP + fl);
                    s.x += t.x, s.y += t.y, s.z += t.z, s.w += t.w;
                }
            }
            float4 *yp = (float4 *)(Y + (size_t)r * N + f);
            if (p.accumulate) {
                const float4 o = *yp;
                s.x += o.x, s.y += o.y, s.z += o.z, s.w += o.w;
            }
            *yp = s;
        }
    if (p.S > 1) cluster.sync(); /* no block leaves while another still reads its shared memory */
}

static int aligned16(const void *q) { return ((uintptr_t)q & 15) == 0; }

/* DIA_CUDA_GEMM_ROWS: 0 never (cuBLAS), 2 every shape the kernel can take (tests, benchmarks),
 * else (default) where it measured faster on the H100: several weights on one input (q, k and v:
 * one launch instead of three cuBLAS GEMMs; at 128 rows 18.8 vs 39.0 us in bench_cuda_ops). Single
 * weights stay on cuBLAS: its kernels were faster at 128 rows, and at 16-64 rows, though this
 * kernel timed faster alone for the 2048-wide projections, whole decode steps at B = 8 and 32
 * were 1-4% slower with it. */
static int gr_mode(void) {
    const char *e = getenv("DIA_CUDA_GEMM_ROWS");
    return e && (e[0] == '0' || e[0] == '2') ? e[0] - '0' : 1;
}

int cu_gemm_rows_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                    const int *trans_w, dia_tensor *const *y) {
    const int mode = gr_mode();
    if (mode == 0 || n < 1 || n > 3 || M < 1 || M > GR_BN || K % GR_BK || K > INT32_MAX / 2 || !aligned16(xb))
        return 0;
    if (mode == 1 && n < 2) return 0;
    for (int i = 0; i < n; i++) {
        const dia_tensor *wi = w[i], *yi = y[i];
        if (!trans_w[i] || wi->dtype != DIA_BF16 || wi->ndim != 2 || wi->ne[1] != K || wi->ne[0] % 4 ||
            wi->ne[0] > INT32_MAX / 2 || wi->buf->host_mem || !aligned16(cu_ptr(wi)))
            return 0;
        if (yi->dtype != DIA_F32 || yi->ndim != 2 || yi->ne[0] != M || yi->ne[1] != wi->ne[0] || !aligned16(cu_ptr(yi)))
            return 0;
    }
    return 1;
}

/* Whether clusters of s blocks of k_gemm_rows can run on this device (asked once per size). */
static int gr_cluster_fits(cuda_ctx *c, int s) {
    if (cudaFuncSetAttribute(k_gemm_rows, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)GR_SMEM) != cudaSuccess)
        return (void)cudaGetLastError(), 0;
    static int known[GR_MAXS + 1]; /* 0 unknown, 1 yes, -1 no; one device per process in practice */
    if (s <= 1) return 1;
    if (known[s]) return known[s] > 0;
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = dim3((unsigned)s);
    cfg.blockDim = dim3(GR_THREADS);
    cfg.dynamicSmemBytes = GR_SMEM;
    cfg.stream = c->stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = (unsigned)s, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    int n = 0;
    if (cudaOccupancyMaxActiveClusters(&n, k_gemm_rows, &cfg) != cudaSuccess) {
        (void)cudaGetLastError();
        n = 0;
    }
    known[s] = n > 0 ? 1 : -1;
    if (n <= 0) dia_log(DIA_LOG_INFO, "cuda: clusters of %d GEMM blocks do not fit; smaller splits are used", s);
    return n > 0;
}

dia_status cu_gemm_rows(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                        const dia_tensor *const *w, dia_tensor *const *y, int accumulate) {
    cuda_ctx *c = cu_ctx(be);
    gr_params p;
    memset(&p, 0, sizeof p);
    p.x = xb;
    int tiles = 0;
    for (int i = 0; i < n; i++) {
        p.w[i] = (const __nv_bfloat16 *)cu_ptr(w[i]);
        p.y[i] = (float *)cu_ptr(y[i]);
        p.n[i] = (int)w[i]->ne[0];
        tiles += (p.n[i] + GR_BM - 1) / GR_BM;
        p.tile_end[i] = tiles;
    }
    p.nw = n, p.M = (int)M, p.K = (int)K, p.accumulate = accumulate ? 1 : 0;
    /* split-K: as many blocks as fit one wave (two blocks per SM), at most 8 per tile and one
     * chunk per block */
    const int nch = (int)(K / GR_BK);
    int s = 2 * c->sm_count / tiles;
    if (s > GR_MAXS) s = GR_MAXS;
    if (s > nch) s = nch;
    if (s < 1) s = 1;
    const char *fs = getenv("DIA_CUDA_GEMM_ROWS_S"); /* at most this split (measurements) */
    if (fs && atoi(fs) >= 1 && atoi(fs) < s) s = atoi(fs);
    while (s > 1 && !gr_cluster_fits(c, s)) s--;
    p.S = s;
    /* the opt-in above 48 KiB (per device, so every call; it is cheap) */
    CU_CHECK(cudaFuncSetAttribute(k_gemm_rows, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)GR_SMEM));
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = dim3((unsigned)(tiles * s));
    cfg.blockDim = dim3(GR_THREADS);
    cfg.dynamicSmemBytes = GR_SMEM;
    cfg.stream = c->stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = (unsigned)s, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    CU_CHECK(cudaLaunchKernelEx(&cfg, k_gemm_rows, p));
    CU_LAUNCHED("gemm_rows");
    return DIA_OK;
}
