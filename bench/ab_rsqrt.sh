#!/bin/bash
# bench/ab_rsqrt.sh - eighteenth session, one device call (wip/rsqrt): OPT 16777216, the RMSNorm factor as
# rsqrt(t * (1 / D) + eps) instead of 1 / sqrt(t / K + eps). The decode-step test with it forced, dia_generate
# B = 1 with and without it interleaved, then block 0's profile of the default (DEBUG=8, 101..200).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=$((15 | 2097152 | 4194304 | 16777216)) || echo "TEST FAILED"
D=6594317
AB=("default   ;" "+ rsqrt   ;$O=$((D | 16777216))")
ab_loop 3 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
  --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | python3 bench/step_profile_diff.py 200
nvidia-smi --query-gpu=name --format=csv,noheader
