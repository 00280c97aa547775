/* cuda_gemm_wgmma.cu - the batch-decode GEMM on Hopper's warpgroup MMA (wgmma, sm_90a):
 *     y_i[M, N_i] (+)= xb[M, K] . W_i^T      for up to three bf16 nn.Linear weights W_i [N_i, K]
 * sharing one bf16 input, 4 < M <= 128 rows (B <= 64 items), the shapes of a batched decode step.
 * Same plan as cuda_gemm_rows.cu (cuda_splitk.cuh: split-K over a thread-block cluster, partial
 * tiles summed in rank order through distributed shared memory, deterministic), but the products run
 * on wgmma.m64n128k16 with both operands read from shared memory by the tensor cores (no ldmatrix
 * traffic, twice mma.sync's rate): a block is 2 warpgroups, each 64 rows x the block's 128
 * features. The input rows and weight rows of a 64-wide K chunk are staged by cp.async (4 stages)
 * as 128-byte rows in the 128-byte swizzled K-major layout (16-byte piece q of row r in slot
 * q ^ (r % 8)): whole cache lines per 8 threads and no bank conflicts. (The unswizzled core-matrix
 * layout needs 64-byte row pieces per warp to avoid bank conflicts, and ran at half the speed,
 * L2-request bound.) This file is compiled for sm_90a only (wgmma is an sm_90a feature); where the device
 * has no sm_90a image the kernel is reported unavailable and cuBLAS runs instead. */
#include "cuda_common.cuh"
#include "cuda_mma.cuh"
#include "cuda_splitk.cuh"

#define GW_BN SK_TILE     /* output features per block (the wgmma N) */
#define GW_BM SK_ROWS     /* rows per block: 2 warpgroups x 64 */
#define GW_BK SK_BK       /* K per chunk */
#define GW_NS 3           /* pipeline stages (96 KB: two blocks per SM) */
#define GW_THREADS 256
#define GW_TILE (GW_BM * GW_BK) /* elements of one operand tile (both are 128 x 64) */
#define GW_SMEM_PIPE ((size_t)GW_NS * 2 * GW_TILE * sizeof(__nv_bfloat16))
#define GW_SMEM_EPI ((size_t)GW_BM * SK_EP * sizeof(float))
#define GW_SMEM (GW_SMEM_PIPE > GW_SMEM_EPI ? GW_SMEM_PIPE : GW_SMEM_EPI)

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GW_HAVE_WGMMA 1
/* Shared-memory matrix descriptor: K-major, 128-byte swizzle (layout type 1 in bits 62-63),
 * stride byte offset 1024 (the next 8-row group of 128-byte rows); the leading byte offset is not
 * used by swizzled K-major layouts. A k16 step within the 64-wide chunk starts 32 bytes further. */
static __device__ __forceinline__ uint64_t gw_desc(const __nv_bfloat16 *p) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

/* d[64] += A[64 x 16] . B[128 x 16]^T (A rows = input rows, B rows = features) */
static __device__ __forceinline__ void gw_mma(float *d, uint64_t da, uint64_t db) {
    asm volatile("{\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, 1, 1, 1, 0, 0;\n"
                 "}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(da), "l"(db));
}
#endif

/* 16-byte piece (row r, k group q) of a 128 x 64 operand tile in the 128-byte swizzled layout:
 * row r at 64 r elements (128 bytes), its k group q stored in slot q ^ (r % 8). */
static __device__ __forceinline__ int gw_off(int r, int q) { return r * 64 + ((q ^ (r & 7)) << 3); }

/* Chunk c of the input rows (0 .. Mp-1, zeros past M) and of the weight rows f0 .. f0+127 (zeros
 * past N) into a stage: 8 threads per 128-byte row (whole cache lines; the swizzle spreads a
 * warp's 4 rows over all banks). One commit group. */
static __device__ __forceinline__ void gw_load(const splitk_params &p, const __nv_bfloat16 *W, int N, int f0, int Mp,
                                               __nv_bfloat16 *As, __nv_bfloat16 *Bs, int c) {
    const int k0 = c * GW_BK;
    for (int v = threadIdx.x; v < GW_BN * 8; v += GW_THREADS) {
        const int r = v >> 3, q = v & 7;
        const bool ok = f0 + r < N;
        cp_async16(Bs + gw_off(r, q), ok ? W + (size_t)(f0 + r) * p.K + k0 + q * 8 : W, ok);
    }
    for (int v = threadIdx.x; v < Mp * 8; v += GW_THREADS) {
        const int r = v >> 3, q = v & 7;
        const bool ok = r < p.M;
        cp_async16(As + gw_off(r, q), ok ? p.x + (size_t)r * p.K + k0 + q * 8 : p.x, ok);
    }
    cp_async_commit();
}

__global__ void __launch_bounds__(GW_THREADS, 2) k_gemm_wgmma(splitk_params p) {
#ifdef GW_HAVE_WGMMA
    extern __shared__ __align__(1024) unsigned char gw_smem[];
    __nv_bfloat16 *smem = (__nv_bfloat16 *)gw_smem;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
    const sk_tile t = sk_tile_of(p);
    const __nv_bfloat16 *W = t.W;
    const int N = t.N, f0 = t.f0, c0 = t.c0, c1 = t.c1;
    const int Mp = (p.M + 63) & ~63;
    const bool active = wg * 64 < p.M; /* warpgroup-uniform */
    float d[64];
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] = 0.0f;
#pragma unroll
    for (int i = 0; i < GW_NS - 1; i++) {
        __nv_bfloat16 *st = smem + i * 2 * GW_TILE;
        if (c0 + i < c1) gw_load(p, W, N, f0, Mp, st, st + GW_TILE, c0 + i);
        else cp_async_commit();
    }
    for (int c = c0; c < c1; c++) {
        cp_async_wait<GW_NS - 2>();
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); /* cp.async data -> wgmma's proxy */
        __syncthreads(); /* everyone's pieces landed; everyone's MMAs on chunk c - 1 are complete */
        const int nc = c + GW_NS - 1;
        __nv_bfloat16 *st = smem + ((nc - c0) % GW_NS) * 2 * GW_TILE;
        if (nc < c1) gw_load(p, W, N, f0, Mp, st, st + GW_TILE, nc);
        else cp_async_commit();
        if (active) {
            const __nv_bfloat16 *As = smem + ((c - c0) % GW_NS) * 2 * GW_TILE, *Bs = As + GW_TILE;
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
            for (int s = 0; s < GW_BK / 16; s++) /* k16 step s: 16 elements (32 bytes) on */
                gw_mma(d, gw_desc(As + wg * 4096 + s * 16), gw_desc(Bs + s * 16));
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        }
    }
    cp_async_wait<0>();
    __syncthreads();
    /* the partial tile as Es[row][feature]: warp w of warpgroup g holds rows 64 g + 16 (w % 4) +
     * lane / 4 (+ 8), features 8 j + 2 (lane % 4) (+ 1) in d[4 j .. 4 j + 3] */
    float *Es = (float *)gw_smem;
    if (active) {
        const int r0 = 64 * wg + 16 * (warp & 3) + (lane >> 2), c0f = 2 * (lane & 3);
#pragma unroll
        for (int j = 0; j < 16; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) Es[(r0 + 8 * (e >> 1)) * SK_EP + 8 * j + c0f + (e & 1)] = d[4 * j + e];
    }
    sk_reduce_store(p, t, Es);
#endif
}

/* Opt-in (DIA_CUDA_GEMM_WG=1): alone this kernel beat cuBLAS at 16 rows and for the logits head
 * (bench_cuda_ops --conv-linear 1), but whole B = 8 and B = 64 decode steps were 12-16% slower
 * with it (493.6 vs 436.2 and 293.7 vs 245.6 steps/s on the H100), so the default stays on cuBLAS
 * (and cuda_gemm_rows.cu for q|k|v). */
int cu_gemm_wgmma_ok(const __nv_bfloat16 *xb, int64_t M, int64_t K, int n, const dia_tensor *const *w,
                     const int *trans_w, dia_tensor *const *y) {
    const char *e = getenv("DIA_CUDA_GEMM_WG");
    if (!(e && e[0] == '1') || !sk_shapes_ok(xb, M, K, n, w, trans_w, y, 5)) return 0;
    /* the device has this file's sm_90a image (asked once) */
    static int avail; /* 0 unknown, 1 yes, -1 no */
    if (!avail) {
        cudaFuncAttributes fa;
        if (cudaFuncGetAttributes(&fa, k_gemm_wgmma) == cudaSuccess && fa.binaryVersion >= 90) avail = 1;
        else {
            (void)cudaGetLastError();
            avail = -1;
            dia_log(DIA_LOG_INFO, "cuda: no sm_90a image of the wgmma GEMM for this device; batched GEMMs use cuBLAS");
        }
    }
    return avail > 0;
}

dia_status cu_gemm_wgmma(dia_backend *be, const __nv_bfloat16 *xb, int64_t M, int64_t K, int n,
                         const dia_tensor *const *w, dia_tensor *const *y, int accumulate) {
    return sk_gemm(be, k_gemm_wgmma, GW_SMEM, "DIA_CUDA_GEMM_WG_S", "gemm_wgmma", xb, M, K, n, w, y,
                   accumulate, NULL);
}
