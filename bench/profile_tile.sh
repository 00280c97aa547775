#!/bin/bash
# bench/profile_tile.sh - twentieth session (wip/tile-cost): what a projection tile's parts cost. Block 0's profile
# (DIA_CUDA_DECODE_STEP_DEBUG=8, frames 1..200) and dia_generate B = 1 (frames 20..220) with timing-only switches:
# 64 no products in the projections' tiles (the ring, the reductions and the epilogues stay), 1 no attention,
# 4 no epilogues (only with 1: the attention waits for q's epochs).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
for d in 0 64 1 65 5 69; do gen "DEBUG=$d" 200 DIA_CUDA_DECODE_STEP_DEBUG=$d; done
for d in 0 64 1 65 5 69; do echo "=== profile DEBUG=$((d | 8))"
  DIA_CUDA_DECODE_STEP_DEBUG=$((d | 8)) timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | tail -1 | cut -c1-330
done
nvidia-smi --query-gpu=name --format=csv,noheader
