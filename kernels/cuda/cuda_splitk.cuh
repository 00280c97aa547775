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
    cu_rope_epi rope;          /* rope.pos != NULL: weights q, k, v; RoPE on q and k, k and v into the caches */
} splitk_params;

/* The weight, output, width and first feature of a block's tile (selects, not indexing: the
 * parameters stay out of local memory), and its chunk range [c0, c1) of the K split. */
struct sk_tile {
    const __nv_bfloat16 *W;
    float *Y;
    int wi, N, f0, split, c0, c1;
};
static __device__ __forceinline__ sk_tile sk_tile_of(const splitk_params &p) {
    sk_tile t;
    const int tile = blockIdx.x / p.S;
    const int wi = tile < p.tile_end[0] ? 0 : p.nw > 1 && tile < p.tile_end[1] ? 1 : 2;
    const int first = wi == 0 ? 0 : wi == 1 ? p.tile_end[0] : p.tile_end[1];
    t.wi = wi;
    t.f0 = (tile - first) * SK_TILE;
    t.N = wi == 0 ? p.n[0] : wi == 1 ? p.n[1] : p.n[2];
    t.W = wi == 0 ? p.w[0] : wi == 1 ? p.w[1] : p.w[2];
    t.Y = wi == 0 ? p.y[0] : wi == 1 ? p.y[1] : p.y[2];
    t.split = blockIdx.x % p.S;
    const int nch = p.K / SK_BK;
    t.c0 = t.split * nch / p.S, t.c1 = (t.split + 1) * nch / p.S;
    return t;
}

/* The RoPE + cache-store epilogue for features fl .. fl + 3 of head `head` (one 128-feature tile)
 * of row m, weight wi (0 q, 1 k, 2 v), the values in s: q and k rotated in place (pair j with j +
 * 64 lives in lane ^ 16 of the same warp: the whole warp is on this row), k and v also stored at
 * cache position start[r] + t (skipped out of range, as kv_store does). The same helpers as
 * k_rope_kv_store: bit-identical results. cs0 holds (cos, sin) of the 64 pairs at position p0
 * (the position of row 0: in a decode step every row's), computed once per block; rows at another
 * position compute theirs. (Computing them for every row and head tile cost as much as the
 * separate RoPE kernel: 20 double-precision sincos per row and pair at B = 64.) */
static __device__ __forceinline__ void sk_rope_store(const cu_rope_epi &e, int wi, int m, int head, int fl, float4 &s,
                                                     const double *cs0, int p0) {
    if (wi < 2) {
        float4 o;
        o.x = __shfl_xor_sync(0xffffffffu, s.x, 16), o.y = __shfl_xor_sync(0xffffffffu, s.y, 16);
        o.z = __shfl_xor_sync(0xffffffffu, s.z, 16), o.w = __shfl_xor_sync(0xffffffffu, s.w, 16);
        const int hi = fl >= SK_TILE / 2, j0 = fl & (SK_TILE / 2 - 1), pos = e.pos[m];
        float v[4] = {s.x, s.y, s.z, s.w};
        const float u[4] = {o.x, o.y, o.z, o.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            double c, sn;
            if (pos == p0) c = cs0[2 * (j0 + i)], sn = cs0[2 * (j0 + i) + 1];
            else cu_rope_cs(e.theta, j0 + i, SK_TILE, pos, &c, &sn);
            float y1, y2;
            if (hi) cu_rope_rot(c, sn, u[i], v[i], &y1, &y2), v[i] = y2;
            else cu_rope_rot(c, sn, v[i], u[i], &y1, &y2), v[i] = y1;
        }
        s = make_float4(v[0], v[1], v[2], v[3]);
    }
    if (wi == 0) return;
    const int r = m / e.T, t = m - r * e.T;
    const int64_t sp = (int64_t)e.start[r] + t;
    if (sp < 0 || sp >= e.S) return;
    const size_t o = (((size_t)r * e.KV + head) * e.S + sp) * SK_TILE + fl;
    void *c = wi == 1 ? e.kc : e.vc;
    if (e.bf16) cu_store4((__nv_bfloat16 *)c, (int64_t)(o / 4), s);
    else cu_store4((float *)c, (int64_t)(o / 4), s);
}

/* After every block of the cluster staged its partial tile in Es [rows][SK_EP]: block `split` sums
 * rows split, split + S, ... over the S partials in rank order, adds the accumulated output and
 * stores (32 threads per row, 4 features each). Ends with a cluster barrier, so no block leaves
 * while another still reads its shared memory. */
static __device__ __forceinline__ void sk_reduce_store(const splitk_params &p, const sk_tile &t, float *Es) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __shared__ double rope_cs[SK_TILE]; /* (cos, sin) of pair j at row 0's position (RoPE epilogue) */
    const int p0 = p.rope.pos ? p.rope.pos[0] : 0;
    if (p.rope.pos && t.wi < 2)
        for (int j = threadIdx.x; j < SK_TILE / 2; j += blockDim.x) cu_rope_cs(p.rope.theta, j, SK_TILE, p0, &rope_cs[2 * j], &rope_cs[2 * j + 1]);
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
            if (p.rope.pos) sk_rope_store(p.rope, t.wi, r, t.f0 / SK_TILE, fl, s, rope_cs, p0);
            *yp = s;
        }
    if (p.S > 1) cluster.sync();
}

/* Host (cuda_gemm_rows.cu). The shapes both kernels take: 1..3 bf16 nn.Linear weights on the
 * device, 16-byte aligned, K a multiple of SK_BK, widths a multiple of 4, min_rows <= M <= 128. */
int sk_shapes_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                 const int *trans_w, dia_tensor *const *y, int64_t min_rows);
/* Run `kernel` (256 threads, smem bytes of dynamic shared memory, two blocks per SM) on the call
 * (rope: the RoPE + cache-store epilogue, or NULL):
 * tiles x S blocks in clusters of S, S as large as one wave allows (at most SK_MAXS per tile, one
 * chunk each, at most the value of the environment variable cap_env, and only cluster sizes the
 * device can run: cu_cluster_fits). */
dia_status sk_gemm(dia_backend *be, void (*kernel)(splitk_params), size_t smem, const char *cap_env,
                   const char *name, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                   dia_tensor *const *y, int accumulate, const cu_rope_epi *rope);

#endif
