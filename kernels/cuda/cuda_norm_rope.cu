/* cuda_norm_rope.cu - RMSNorm (one block per row, sum of squares in double as on the CPU) and RoPE
 * (angles in double, as the CPU reference computes them). */
#include "cuda_common.cuh"

#define NORM_THREADS 256

template <typename OT>
__global__ void __launch_bounds__(NORM_THREADS)
    k_rmsnorm(OT *Y, const float *X, const void *W, int wdt, int64_t D, float eps) {
    __shared__ double part[NORM_THREADS / 32];
    const int64_t m = blockIdx.x;
    const float *xr = X + m * D;
    OT *yr = Y + m * D;
    cu_pdl_wait();
    double ss = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += NORM_THREADS) ss += (double)xr[d] * xr[d];
    ss = cu_warp_sum(ss);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    double tot = 0.0;
#pragma unroll
    for (int i = 0; i < NORM_THREADS / 32; i++) tot += part[i];
    const float r = (float)(1.0 / sqrt(tot / (double)D + (double)eps));
    for (int64_t d = threadIdx.x; d < D; d += NORM_THREADS) cu_put(yr + d, xr[d] * r * cu_load(W, wdt, d));
}

/* f32 weight, D = 4 * NORM_THREADS * NV, 16-byte aligned rows: each thread loads its NV float4 of
 * the row once (one memory round trip), sums squares in f32 over its 4 NV values, and the block
 * reduces in double. Output f32, or bf16 (the input of a bf16 GEMM). */
template <int NV, typename OT>
__global__ void __launch_bounds__(NORM_THREADS)
    k_rmsnorm4(OT *Y, const float4 *X, const float4 *W, int64_t D4, float eps) {
    __shared__ double part[NORM_THREADS / 32];
    const int64_t m = blockIdx.x;
    const float4 *xr = X + m * D4;
    float4 v[NV];
    float ss = 0.0f;
    cu_pdl_wait();
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int64_t d = threadIdx.x + (int64_t)i * NORM_THREADS;
        v[i] = d < D4 ? xr[d] : make_float4(0, 0, 0, 0);
        ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
    }
    double sd = ss;
    sd = cu_warp_sum(sd);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = sd;
    __syncthreads();
    double tot = 0.0;
#pragma unroll
    for (int i = 0; i < NORM_THREADS / 32; i++) tot += part[i];
    const float r = (float)(1.0 / sqrt(tot / (double)(4 * D4) + (double)eps));
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int64_t d = threadIdx.x + (int64_t)i * NORM_THREADS;
        if (d < D4) {
            const float4 wv = W[d];
            cu_store4(Y, m * D4 + d,
                      make_float4(v[i].x * r * wv.x, v[i].y * r * wv.y, v[i].z * r * wv.z, v[i].w * r * wv.w));
        }
    }
}

/* k_rmsnorm4 for rows of D = 4 D4 <= 4 * NORM_THREADS * 8 (NV = 1, 2, 4 or 8) */
template <typename OT>
static dia_status rmsnorm4_launch(cudaStream_t s, OT *Y, const float4 *X, const float4 *W, int64_t M, int64_t D4,
                                  float eps) {
    const int nv = (int)((D4 + NORM_THREADS - 1) / NORM_THREADS);
    void (*k)(OT *, const float4 *, const float4 *, int64_t, float) =
        nv <= 1 ? k_rmsnorm4<1, OT> : nv <= 2 ? k_rmsnorm4<2, OT> : nv <= 4 ? k_rmsnorm4<4, OT> : k_rmsnorm4<8, OT>;
    CU_CHECK(cu_launch(k, dim3((unsigned)M), dim3(NORM_THREADS), 0, s, Y, X, W, D4, eps));
    return DIA_OK;
}

/* rmsnorm(x) * w rounded to bf16 (the input of a bf16 GEMM), f32 scale; one block per row. */
dia_status cu_rmsnorm_bf16(dia_backend *be, __nv_bfloat16 *y, const dia_tensor *x, const dia_tensor *w, float eps) {
    const int64_t M = x->ne[0], D = x->ne[1];
    if (x->ndim != 2 || w->ne[0] != D || x->dtype != DIA_F32 || w->dtype != DIA_F32)
        return dia_fail(DIA_ERR_INTERNAL, "rmsnorm_bf16 shapes");
    if (M == 0) return DIA_OK;
    if (D % 4 == 0 && D <= 4 * NORM_THREADS * 8 && ((uintptr_t)y | (uintptr_t)cu_ptr(x) | (uintptr_t)cu_ptr(w)) % 16 == 0)
        return rmsnorm4_launch(cu_ctx(be)->stream, y, (const float4 *)cu_ptr(x), (const float4 *)cu_ptr(w), M, D / 4, eps);
    CU_CHECK(cu_launch(k_rmsnorm<__nv_bfloat16>, dim3((unsigned)M), dim3(NORM_THREADS), 0, cu_ctx(be)->stream, y,
                       (const float *)cu_ptr(x), (const void *)cu_ptr(w), (int)DIA_F32, D, eps));
    return DIA_OK;
}

dia_status cu_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps) {
    const int64_t M = x->ne[0], D = x->ne[1];
    if (w->ne[0] != D || y->ne[0] != M || y->ne[1] != D || x->dtype != DIA_F32 || y->dtype != DIA_F32 ||
        !cu_is_float(w->dtype))
        return dia_fail(DIA_ERR_INTERNAL, "rmsnorm shapes");
    if (M == 0) return DIA_OK;
    const int aligned = (((uintptr_t)cu_ptr(y) | (uintptr_t)cu_ptr(x) | (uintptr_t)cu_ptr(w)) % 16) == 0;
    if (w->dtype == DIA_F32 && D % 4 == 0 && aligned && D <= 4 * NORM_THREADS * 8) {
        return rmsnorm4_launch(cu_ctx(be)->stream, (float *)cu_ptr(y), (const float4 *)cu_ptr(x),
                               (const float4 *)cu_ptr(w), M, D / 4, eps);
    }
    k_rmsnorm<float><<<(unsigned)M, NORM_THREADS, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(y), (const float *)cu_ptr(x),
                                                                    cu_ptr(w), (int)w->dtype, D, eps);
    CU_LAUNCHED("rmsnorm");
    return DIA_OK;
}

/* One thread per (m, h, j < hd/2); the angle depends on m and j only and is recomputed per head
 * (in double, as the CPU computes it) so that every thread does one load, rotation and store. */
__global__ void k_rope(float *X, const int32_t *P, int64_t M, int64_t H, int64_t hd, double theta) {
    const int64_t half = hd / 2;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= M * H * half) return;
    const int64_t j = i % half, h = (i / half) % H, m = i / (half * H);
    double s, c;
    cu_rope_cs(theta, (int)j, (int)hd, P[m], &c, &s);
    float *v = X + (m * H + h) * hd;
    cu_rope_rot(c, s, v[j], v[j + half], &v[j], &v[j + half]);
}

dia_status cu_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta) {
    const int64_t M = x->ne[0], H = x->ne[1], hd = x->ne[2];
    if (x->ndim != 3 || pos->ne[0] != M || hd % 2 || x->dtype != DIA_F32 || pos->dtype != DIA_I32)
        return dia_fail(DIA_ERR_INTERNAL, "rope shapes");
    const int64_t n = M * H * (hd / 2);
    if (n == 0) return DIA_OK;
    k_rope<<<cu_blocks(n, 128), 128, 0, cu_ctx(be)->stream>>>((float *)cu_ptr(x), (const int32_t *)cu_ptr(pos), M, H,
                                                                hd, (double)theta);
    CU_LAUNCHED("rope");
    return DIA_OK;
}

/* rope(q), rope(k) in place, then k and v into the caches. Block (m, y) takes heads
 * [RKV_HEADS y, RKV_HEADS (y + 1)) of the list (q heads, then k heads; a k head also stores its v
 * head). The angles are computed once per block (in double, as k_rope does, so the rotated values
 * are bit-identical to rope + kv_store). */
#define RKV_HEADS 4
template <typename CT>
__global__ void k_rope_kv_store(float *__restrict__ Q, float *__restrict__ Kn, const float *__restrict__ Vn,
                                CT *__restrict__ Kc, CT *__restrict__ Vc, const int32_t *__restrict__ P,
                                const int32_t *__restrict__ start, int T, int H, int KV, int hd, int S, double theta) {
    extern __shared__ double cs[]; /* [hd / 2][2]: cos, sin */
    const int m = blockIdx.x, r = m / T, t = m - r * T, half = hd / 2;
    cu_pdl_wait();
    for (int j = threadIdx.x; j < half; j += blockDim.x) cu_rope_cs(theta, j, hd, P[m], &cs[2 * j], &cs[2 * j + 1]);
    __syncthreads();
    cu_pdl_trigger();
    const int64_t sp = (int64_t)start[r] + t;
    const int in_range = sp >= 0 && sp < S;
    const int h0 = blockIdx.y * RKV_HEADS;
    for (int i = threadIdx.x; i < RKV_HEADS * half; i += blockDim.x) {
        const int hh = h0 + i / half, j = i % half;
        if (hh >= H + KV) break;
        const int kvh = hh - H;
        float *v = kvh < 0 ? Q + ((size_t)m * H + hh) * hd : Kn + ((size_t)m * KV + kvh) * hd;
        float y1, y2;
        cu_rope_rot(cs[2 * j], cs[2 * j + 1], v[j], v[j + half], &y1, &y2);
        v[j] = y1;
        v[j + half] = y2;
        if (kvh >= 0 && in_range) {
            const size_t o = (((size_t)r * KV + kvh) * S + sp) * hd;
            const float *vs = Vn + ((size_t)m * KV + kvh) * hd;
            cu_put(Kc + o + j, y1);
            cu_put(Kc + o + j + half, y2);
            cu_put(Vc + o + j, vs[j]);
            cu_put(Vc + o + j + half, vs[j + half]);
        }
    }
}

dia_status cu_rope_kv_store(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                            dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start, float theta) {
    const int64_t M = q->ne[0], H = q->ne[1], hd = q->ne[2];
    const int64_t R = k->ne[0], T = k->ne[1], KV = k->ne[2], S = kcache->ne[2];
    if (q->ndim != 3 || k->ndim != 4 || v->ndim != 4 || R * T != M || k->ne[3] != hd || hd % 2 ||
        v->ne[0] != R || v->ne[1] != T || v->ne[2] != KV || v->ne[3] != hd || kcache->ne[0] != R ||
        kcache->ne[1] != KV || kcache->ne[3] != hd || vcache->ne[0] != R || vcache->ne[1] != KV ||
        vcache->ne[2] != S || vcache->ne[3] != hd || kcache->dtype != vcache->dtype ||
        (kcache->dtype != DIA_F32 && kcache->dtype != DIA_BF16) || q->dtype != DIA_F32 || k->dtype != DIA_F32 ||
        v->dtype != DIA_F32 || pos->dtype != DIA_I32 || pos->ne[0] != M || start->dtype != DIA_I32 ||
        M > INT32_MAX || S > INT32_MAX || H * hd > INT32_MAX)
        return dia_fail(DIA_ERR_INTERNAL, "rope_kv_store shapes");
    if (M == 0) return DIA_OK;
    cudaStream_t s = cu_ctx(be)->stream;
    const size_t smem = (size_t)hd * sizeof(double);
    const int32_t *pp = (const int32_t *)cu_ptr(pos), *p0 = (const int32_t *)cu_ptr(start);
    float *qp = (float *)cu_ptr(q), *kp = (float *)cu_ptr(k);
    const float *vp = (const float *)cu_ptr(v);
    const dim3 grid((unsigned)M, (unsigned)((H + KV + RKV_HEADS - 1) / RKV_HEADS));
    const dim3 blk((unsigned)(RKV_HEADS * hd / 2 < 1024 ? RKV_HEADS * hd / 2 : 1024));
    if (kcache->dtype == DIA_BF16)
        CU_CHECK(cu_launch(k_rope_kv_store<__nv_bfloat16>, grid, blk, smem, s, qp, kp, vp,
                           (__nv_bfloat16 *)cu_ptr(kcache), (__nv_bfloat16 *)cu_ptr(vcache), pp, p0, (int)T, (int)H,
                           (int)KV, (int)hd, (int)S, (double)theta));
    else
        CU_CHECK(cu_launch(k_rope_kv_store<float>, grid, blk, smem, s, qp, kp, vp,
                           (float *)cu_ptr(kcache), (float *)cu_ptr(vcache), pp, p0, (int)T, (int)H, (int)KV, (int)hd,
                           (int)S, (double)theta));
    return DIA_OK;
}
