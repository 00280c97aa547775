/* bench_red.cu - what it costs 132 blocks to add their partial sums of a [2, 2048] vector into one
 * accumulator in global memory (the reduction a column-split MLP down projection would need at the
 * end of each layer), against plain stores of the partials. Standalone:
 *   nvcc -O3 -arch=sm_90a -o /tmp/bench_red bench/bench_red.cu && /tmp/bench_red
 * Each kernel runs R rounds in one launch; a round is every thread's 16 adds (or stores) followed by
 * the block's release fence (what a grid barrier's arrival does), so the time per round is the
 * block's wait for its adds to be performed at L2 under everyone else's. */
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

#define N 4096 /* 2 rows x 2048 */
#define R 200

template <int MODE>
__global__ void k_red(unsigned long long *acc, float *accf, float *part, int rounds) {
    const int t = threadIdx.x, w = t >> 5, lane = t & 31;
    float y[16];
    for (int i = 0; i < 16; i++) y[i] = 1e-3f * (float)(blockIdx.x + i + t);
    for (int r = 0; r < rounds; r++) {
#pragma unroll
        for (int i = 0; i < 16; i++) {
            /* thread (w, lane) owns rows m = i >> 3, outputs w * 256 + (i & 7) * 32 + lane */
            const int k = (i >> 3) * 2048 + w * 256 + (i & 7) * 32 + lane;
            if (MODE == 0) {
                const long long v = __float2ll_rn(y[i] * 4294967296.0f);
                asm volatile("red.relaxed.gpu.global.add.u64 [%0], %1;" ::"l"(acc + k), "l"(v) : "memory");
            } else if (MODE == 1) {
                asm volatile("red.relaxed.gpu.global.add.f32 [%0], %1;" ::"l"(accf + k), "f"(y[i]) : "memory");
            } else {
                part[(size_t)blockIdx.x * N + k] = y[i];
            }
        }
        __syncthreads();
        if (t == 0) asm volatile("fence.acq_rel.gpu;" ::: "memory");
        __syncthreads();
    }
}

__global__ void k_empty(int rounds) {
    for (int r = 0; r < rounds; r++) {
        __syncthreads();
        if (threadIdx.x == 0) asm volatile("fence.acq_rel.gpu;" ::: "memory");
        __syncthreads();
    }
}

int main() {
    unsigned long long *acc;
    float *accf, *part;
    cudaMalloc(&acc, N * 8);
    cudaMalloc(&accf, N * 4);
    cudaMalloc(&part, (size_t)132 * N * 4);
    cudaMemset(acc, 0, N * 8);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    const char *names[4] = {"red.add.u64 (fixed point)", "red.add.f32", "st.f32 partials", "empty (fences only)"};
    for (int rep = 0; rep < 2; rep++)
        for (int mode = 0; mode < 4; mode++) {
            for (int warm = 0; warm < 2; warm++) {
                cudaEventRecord(e0);
                if (mode == 0) k_red<0><<<132, 256>>>(acc, accf, part, R);
                if (mode == 1) k_red<1><<<132, 256>>>(acc, accf, part, R);
                if (mode == 2) k_red<2><<<132, 256>>>(acc, accf, part, R);
                if (mode == 3) k_empty<<<132, 256>>>(R);
                cudaEventRecord(e1);
                cudaEventSynchronize(e1);
            }
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            printf("%-28s %8.3f us per round (132 blocks x 4096 values)\n", names[mode], 1000.0f * ms / R);
        }
    cudaError_t e = cudaGetLastError();
    printf("status: %s\n", cudaGetErrorString(e));
    return e != cudaSuccess;
}
