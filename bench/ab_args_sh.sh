#!/bin/bash
# bench/ab_args_sh.sh - eighteenth session, one device call (wip/args-sh): OPT 2097152, the launch's arguments
# copied into shared memory at the start and read from there (the phases read them through an opaque pointer:
# generic loads through L1, to L2 where evicted). The decode-step test with the bit forced, then dia_generate
# B = 1 with and without it, interleaved, then block 0's profile of both.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=$((15 | 2097152)) || echo "TEST FAILED"
AB=("default          ;" "+ args in shared ;$O=2400013")
ab_loop 2 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
for o in 302861 2400013; do
  echo "=== OPT $o: block 0's profile, the 100 calls up to 200"
  env $O=$o DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | python3 bench/step_profile_diff.py 200
done
nvidia-smi --query-gpu=name --format=csv,noheader
