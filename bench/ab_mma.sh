#!/bin/bash
# bench/ab_mma.sh - twentieth session (wip/tile-cost): the projections of K <= 2048 on tensor cores
# (DIA_CUDA_DECODE_STEP_MMA=1: k_decode_layers<1, 1>, mma.m16n8k16 with x split into bf16 hi + lo, the tiles' rows
# copied 16 bytes apart for ldmatrix). The decode-step test with and without it, then dia_generate B = 1 interleaved
# against main's kernel built beside it (carry ab_old = bench_ab.sh prepare main), and block 0's profile.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel DIA_CUDA_DECODE_STEP_MMA=1 || echo "TEST (MMA) FAILED"
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda MM=DIA_CUDA_DECODE_STEP_MMA
ab_loop 2 20 "main (beside);BIN=$OLD" "this         ;" "mma          ;$MM=1"
ab_loop 1 1400 "main (beside);BIN=$OLD" "mma          ;$MM=1"
ab_whole "main (beside);BIN=$OLD" "mma          ;$MM=1"
echo "=== profile mma"
env $MM=1 DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
  --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | tail -1 | cut -c1-330
nvidia-smi --query-gpu=name --format=csv,noheader
