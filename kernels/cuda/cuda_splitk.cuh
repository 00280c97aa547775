/* cuda_splitk.cuh - what the two batch-decode GEMMs share (cuda_gemm_rows.cu on mma.sync,
 * cuda_gemm_wgmma.cu on wgmma): y_i[M, N_i] (+)= xb[M, K] . W_i^T for up to three bf16 nn.Linear
 * weights W_i [N_i, K] sharing one bf16 input, M <= 128 rows. The output features are cut into
 * tiles of SK_TILE (all weights of a call in one grid: block b works on tile b / S); the K range of
 * a tile is split over the S blocks of a thread-block cluster, which stage their partial tiles in
 * shared memory and sum them through distributed shared memory in rank order (deterministic, no
 * atomics, no workspace). Host helpers are defined in cuda_gemm_rows.cu. */
#ifndef DIA_CUDA_SPLITK_CUH
#define DIA_CUDA_SPLITK_CUH

#include <cooperative_groups.h>

#include "cuda_common.cuh"

#define SK_TILE 128 /* output features per block */
#define SK_ROWS 128 /* rows at most */
#define SK_BK 64    /* K per pipeline chunk */
#define SK_MAXS 8   /* portable cluster size */
#define SK_EP (SK_TILE + 4) /* pitch in floats of the staged partial tile Es[row][feature] */

typedef struct splitk_params {
    const __nv_bfloat16 *x;    /* [M, K] */
    const __nv_bfloat16 *w[3]; /* [N_i, K] */
    float *y[3];               /* [M, N_i] */
    int n[3];                  /* N_i */
    int tile_end[3];           /* cumulative feature tiles: weight i owns tiles [tile_end[i-1], tile_end[i]) */
    int nw, M, K, S, accumulate;
} splitk_params;

/* The weight, output, width and first feature of a block's tile (selects, not indexing: the
 * parameters stay out of local memory), and its chunk range [c0, c1) of the K split. */
struct sk_tile {
    const __nv_bfloat16 *W;
    float *Y;
    int N, f0, split, c0, c1;
};
static __device__ __forceinline__ sk_tile sk_tile_of(const splitk_params &p) {
    sk_tile t;
    const int tile = blockIdx.x / p.S;
    const int wi = tile < p.tile_end[0] ? 0 : p.nw > 1 && tile < p.tile_end[1] ? 1 : 2;
    const int first = wi == 0 ? 0 : wi == 1 ? p.tile_end[0] : p.tile_end[1];
    t.f0 = (tile - first) * SK_TILE;
    t.N = wi == 0 ? p.n[0] : wi == 1 ? p.n[1] : p.n[2];
    t.W = wi == 0 ? p.w[0] : wi == 1 ? p.w[1] : p.w[2];
    t.Y = wi == 0 ? p.y[0] : wi == 1 ? p.y[1] : p.y[2];
    t.split = blockIdx.x % p.S;
    const int nch = p.K / SK_BK;
    t.c0 = t.split * nch / p.S, t.c1 = (t.split + 1) * nch / p.S;
    return t;
}

/* After every block of the cluster staged its partial tile in Es [rows][SK_EP]: block `split` sums
 * rows split, split + S, ... over the S partials in rank order, adds the accumulated output and
 * stores (32 threads per row, 4 features each). Ends with a cluster barrier, so no block leaves
 * while another still reads its shared memory. */
static __device__ __forceinline__ void sk_reduce_store(const splitk_params &p, const sk_tile &t, float *Es) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    if (p.S > 1) cluster.sync();
    else __syncthreads();
    const int fl = (threadIdx.x & 31) * 4, f = t.f0 + fl, stride = p.S * (blockDim.x / 32);
    if (f < t.N)
        for (int r = t.split + p.S * (threadIdx.x >> 5); r < p.M; r += stride) {
            float4 s;
            if (p.S == 1) s = *(const float4 *)&Es[r * SK_EP + fl];
            else {
                s = *(const float4 *)(cluster.map_shared_rank(Es, 0) + r * SK_EP + fl);
                for (int q = 1; q < p.S; q++) {
                    const float4 u = *(const float4 *)(cluster.map_shared_rank(Es, q) + r * SK_EP + fl);
                    s.x += u.x, s.y += u.y, s.z += u.z, s.w += u.w;
                }
            }
            float4 *yp = (float4 *)(t.Y + (size_t)r * t.N + f);
            if (p.accumulate) {
                const float4 o = *yp;
                s.x += o.x, s.y += o.y, s.z += o.z, s.w += o.w;
            }
            *yp = s;
        }
    if (p.S > 1) cluster.sync();
}

/* Host (cuda_gemm_rows.cu). The shapes both kernels take: 1..3 bf16 nn.Linear weights on the
 * device, 16-byte aligned, K a multiple of SK_BK, widths a multiple of 4, min_rows <= M <= 128. */
int sk_shapes_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                 const int *trans_w, dia_tensor *const *y, int64_t min_rows);
/* Run `kernel` (256 threads, smem bytes of dynamic shared memory, two blocks per SM) on the call:
 * tiles x S blocks in clusters of S, S as large as one wave allows (at most SK_MAXS per tile, one
 * chunk each, at most the value of the environment variable cap_env, and only cluster sizes the
 * device can run: cu_cluster_fits). */
dia_status sk_gemm(dia_backend *be, void (*kernel)(splitk_params), size_t smem, const char *cap_env,
                   const char *name, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                   dia_tensor *const *y, int accumulate);

#endif
