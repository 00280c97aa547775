/* cuda_mma.cuh - the bf16 tensor-core building blocks shared by the DAC convolution
 * (cuda_dac_conv.cu) and the batch-decode GEMM (cuda_gemm_rows.cu): ldmatrix, mma.sync m16n8k16
 * with f32 accumulation, and cp.async global -> shared copies. */
#ifndef DIA_CUDA_MMA_CUH
#define DIA_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>

/* Four 8x8 bf16 matrices from shared memory, one 16-byte row address per lane (lanes 8i..8i+7
 * give matrix i's rows), in the mma.sync fragment layout. */
static __device__ __forceinline__ void ldsm_x4(uint32_t *r, const __nv_bfloat16 *p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

static __device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* 16 bytes global -> shared without registers; valid = 0 writes zeros (src is not read). */
static __device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
static __device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> static __device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif
